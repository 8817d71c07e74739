package store

import (
	"errors"
	"fmt"

	"github.com/calhook/calhook/internal/fault"
)

// ErrStorageFull marks a write that failed because the database has no
// room for it: the disk is full, or the database went read-only. Nothing
// was written; the same write succeeds once space is freed.
var ErrStorageFull error = &fault.Error{Code: fault.Unavailable, Reason: fault.StorageFull,
	Message: "the database is out of storage space: nothing was written; retry later"}

// ErrUnavailable marks a call that failed because the database did not
// answer (it is restarting, or the connection was lost). A write that
// fails so was not acknowledged; retrying it is safe where the write is.
var ErrUnavailable error = &fault.Error{Code: fault.Unavailable, Reason: fault.DatabaseDown,
	Message: "the database is not available: retry later"}

// MarkCondition returns err marked with cond (ErrStorageFull or
// ErrUnavailable) in its chain, keeping err's own chain for logs; nil
// stays nil, and an err marked already is returned as it is.
func MarkCondition(err, cond error) error {
	if err == nil || errors.Is(err, cond) {
		return err
	}
	return &conditionError{cond: cond, err: err}
}

// conditionError is an error of a driver marked with a condition.
type conditionError struct {
	cond, err error
}

func (e *conditionError) Error() string { return fmt.Sprintf("%v: %v", e.cond, e.err) }

// Unwrap returns the condition first, so that fault.As finds it.
func (e *conditionError) Unwrap() []error { return []error{e.cond, e.err} }
