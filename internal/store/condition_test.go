package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

func TestMarkCondition(t *testing.T) {
	t.Parallel()
	driver := errors.New("database or disk is full (13)")
	tests := []struct {
		name       string
		err, cond  error
		wantReason fault.Reason
	}{
		{"storage full", fmt.Errorf("create event: %w", driver), store.ErrStorageFull, fault.StorageFull},
		{"unavailable", driver, store.ErrUnavailable, fault.DatabaseDown},
		{"marked twice", store.MarkCondition(driver, store.ErrStorageFull), store.ErrStorageFull, fault.StorageFull},
	}
	for _, tt := range tests {
		err := store.MarkCondition(tt.err, tt.cond)
		fe := fault.As(err)
		if fe == nil || fe.Code != fault.Unavailable || fe.Reason != tt.wantReason {
			t.Errorf("%s: fault.As(MarkCondition(…)) = %+v; want Unavailable, %s", tt.name, fe, tt.wantReason)
		}
		if !errors.Is(err, driver) || !errors.Is(err, tt.cond) {
			t.Errorf("%s: MarkCondition(…) = %v; want the driver's error and the condition in its chain", tt.name, err)
		}
	}
	if err := store.MarkCondition(nil, store.ErrStorageFull); err != nil {
		t.Errorf("MarkCondition(nil) = %v; want nil", err)
	}
}
