package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/calhook/calhook/internal/fault"
)

func TestCodeOf(t *testing.T) {
	t.Parallel()
	notFound := &fault.Error{Code: fault.NotFound, Message: "not found"}
	tests := []struct {
		name string
		err  error
		want fault.Code
	}{
		{"plain", errors.New("disk on fire"), fault.Internal},
		{"nil", nil, fault.Internal},
		{"direct", notFound, fault.NotFound},
		{"wrapped", fmt.Errorf("get calendar c1: %w", notFound), fault.NotFound},
		{"invalid", fault.Invalidf("name", "is required"), fault.Invalid},
		{"conflict", fmt.Errorf("create: %w", fault.Conflictf(fault.DuplicateUID, "taken")), fault.Conflict},
	}
	for _, tt := range tests {
		if got := fault.CodeOf(tt.err); got != tt.want {
			t.Errorf("%s: CodeOf(%v) = %v; want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *fault.Error
		want string
	}{
		{fault.Invalidf("name", "is %s", "required"), "name: is required"},
		{fault.Invalidf("", "request body is empty"), "request body is empty"},
		{fault.Conflictf(fault.Exists, "the object already exists"), "the object already exists"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}

func TestSentinelsMatchByIdentity(t *testing.T) {
	t.Parallel()
	a := &fault.Error{Code: fault.Conflict, Reason: fault.ReadOnly, Message: "read-only"}
	b := &fault.Error{Code: fault.Conflict, Reason: fault.ReadOnly, Message: "read-only"}
	wrapped := fmt.Errorf("create event: %w", a)
	if !errors.Is(wrapped, a) {
		t.Errorf("errors.Is(wrapped a, a) = false; want true")
	}
	if errors.Is(wrapped, b) {
		t.Errorf("errors.Is(wrapped a, b) = true; want false")
	}
	if got := fault.As(wrapped); got != a {
		t.Errorf("As(wrapped a) = %p; want %p", got, a)
	}
}
