package store

import (
	"context"
	"time"
)

// BatchStore is the part of Store that bulk writes to a native calendar
// use (the batch route and the replacement of a calendar by an uploaded
// .ics body): a read of the events a batch names, and one transaction
// that writes them all against the version that read saw.
type BatchStore interface {
	// FindEvents returns the events of an account's calendar whose id is
	// in p.IDs or whose UID is in p.UIDs, in no particular order; none
	// for a calendar that is not the account's.
	FindEvents(ctx context.Context, p FindEventsParams) ([]*Event, error)
	// WriteEvents writes p's events to a native calendar in one
	// transaction: deletes, then updates, then creates, each with its
	// change, and one version bump for the whole batch. When the calendar
	// is no longer at p.Version (another write came between the reads the
	// batch was decided from and now), it stores nothing and returns
	// ErrConflict; a calendar that is not the account's, or is not
	// native, is ErrNotFound. The changes come back in the order written.
	WriteEvents(ctx context.Context, p *WriteEventsParams) ([]*Change, error)
}

// FindEventsParams selects events for FindEvents.
type FindEventsParams struct {
	AccountID  string
	CalendarID string
	IDs        []string
	UIDs       []string
}

// WriteEventsParams is one batch of event writes to a native calendar.
type WriteEventsParams struct {
	AccountID  string
	CalendarID string
	// Version is the calendar's version the batch was decided against.
	Version int64
	// Create, Update and Delete are the events to write. Updated events
	// keep their ID; deleted ones are passed whole so their changes carry
	// what was removed.
	Create []*Event
	Update []*Event
	Delete []*Event
	// Now is the time of the changes.
	Now time.Time
}
