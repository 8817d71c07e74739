package importer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

// maxReplaceAttempts bounds how often a replacement is diffed again after
// another write moved the calendar's version under it.
const maxReplaceAttempts = 4

// Replace makes a native calendar hold exactly the events of an uploaded
// iCalendar body, the way a poll makes an imported one follow its feed:
// the body is parsed with the same tolerant parser, diffed against the
// stored events by (UID, RECURRENCE-ID) over the fields that matter, and
// only the differences are written — in one transaction, each with its
// change — so uploading the same content again changes nothing. Unlike a
// poll it holds no mass deletion (the caller asked for exactly this
// content), and it refuses, with a clear error and changing nothing, a
// body that is not a calendar, holds more than MaxEvents events, or holds
// an event calhook cannot represent. Events created through the API keep
// their metadata when the upload updates them.
func (i *Importer) Replace(ctx context.Context, accountID, calendarID string, body []byte) (*Result, error) {
	c, err := i.store.Calendar(ctx, accountID, calendarID)
	if err != nil {
		return nil, err
	}
	if c.Kind != store.KindNative {
		return nil, calendar.ErrReadOnly
	}
	events, skipped, _, err := parseFeed(string(body), c, i.cfg.MaxBytes, i.log)
	if err != nil {
		msg := err.Error()
		if fe := (*FetchError)(nil); errors.As(err, &fe) {
			msg = strings.Replace(fe.Msg, "unparsable feed", "the body is not an iCalendar file", 1)
		}
		return nil, fault.Invalidf("", "%s", msg)
	}
	if skipped != nil {
		e := skipped.Events[0]
		return nil, fault.Invalidf("", "%d events cannot be stored; the first, uid %q: %s", skipped.Count, e.UID, e.Reason)
	}
	if len(events) > i.cfg.MaxEvents {
		return nil, fault.Invalidf("", "the body has %d events, more than the %d a calendar may receive at once", len(events), i.cfg.MaxEvents)
	}
	for attempt := 1; ; attempt++ {
		fc, err := i.store.FeedContent(ctx, accountID, calendarID)
		if err != nil {
			return nil, fmt.Errorf("read events of %s: %w", calendarID, err)
		}
		now := i.cfg.Now().UTC()
		d := diffEvents(fc.Events, events, nil, now) // safe to repeat after a conflict: diffEvents leaves events as they are
		res := &Result{Status: StatusUnchanged, Calendar: c}
		if d.empty() {
			return res, nil
		}
		_, err = i.store.WriteEvents(ctx, &store.WriteEventsParams{
			AccountID: accountID, CalendarID: calendarID, Version: fc.Version, Now: now,
			Create: d.storeCreates(c, d.create), Update: d.storeUpdates(c, d.update), Delete: d.delete,
		})
		switch {
		case errors.Is(err, store.ErrConflict) && attempt < maxReplaceAttempts:
			continue // another write came between the read and the write
		case errors.Is(err, store.ErrConflict):
			return nil, fault.Conflictf("", "the calendar changed %d times while the upload was being written: retry it", attempt)
		case err != nil:
			return nil, fmt.Errorf("replace events of %s: %w", calendarID, err)
		}
		i.changed(accountID, calendarID)
		res.Status, res.Created, res.Updated, res.Deleted = StatusChanged, len(d.create), len(d.update), len(d.delete)
		return res, nil
	}
}
