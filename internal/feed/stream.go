package feed

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/calhook/calhook/internal/ical"
	"github.com/calhook/calhook/internal/store"
)

// streamPage is how many events a streamed feed reads at a time.
const streamPage = 500

// PageStore is what a streamed feed reads: its calendars' events, a page
// at a time.
type PageStore interface {
	FeedEvents(ctx context.Context, c *store.Calendar, w store.FeedWindow, pos store.FeedPos, limit int) ([]*store.Event, store.FeedPos, error)
}

// streamSource is what a streamed feed renders from: its calendars,
// whose events are read page by page as the feed is written.
type streamSource struct {
	store     PageStore
	calendars []*store.Calendar
	window    store.FeedWindow
	opts      RenderOptions
}

// each calls fn with each event the store reads for the feed, calendar
// by calendar, a page at a time, with its calendar's cutoff: fn leaves
// out those that keep does not. It stops at fn's first error.
func (src *streamSource) each(ctx context.Context, fn func(e *store.Event, cut time.Time) error) error {
	for _, c := range src.calendars {
		cut := src.window.Cutoff(c)
		for pos := (store.FeedPos{}); !pos.Done; {
			if err := ctx.Err(); err != nil {
				return err
			}
			page, next, err := src.store.FeedEvents(ctx, c, src.window, pos, streamPage)
			if err != nil {
				return err
			}
			for _, e := range page {
				if err := fn(e, cut); err != nil {
					return err
				}
			}
			pos = next
		}
	}
	return nil
}

// renderStream writes the feed as Render does, but holding one page of
// events at a time, in the order the store pages them (store.FeedPos):
// a first pass finds the zones the events use, whose VTIMEZONEs come
// before any event, and a second writes the events.
//
// Each page is a read of its own, so a write during the render may show
// in it though not in the feed's ETag, which was set before; the next
// request brings the write's version and the whole feed again. An event
// in a zone that only that write brought in goes out in UTC, as it has no
// VTIMEZONE.
func renderStream(ctx context.Context, w io.Writer, src *streamSource) error {
	zones := zoneCache{}
	spans := zoneSpans{}
	err := src.each(ctx, func(e *store.Event, cut time.Time) error {
		// keep walks a recurrence rule: only for an event that would
		// widen its zone's span.
		if !spans.covers(e, zones) && keep(e, cut) {
			spans.add(e, zones)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read feed zones: %w", err)
	}
	enc := ical.NewEncoder(w)
	writeHeader(enc, src.opts, spans.sorted())
	// Only an all-calendars feed can hold one UID twice.
	var seen map[string]string
	if len(src.calendars) > 1 {
		seen = map[string]string{}
	}
	err = src.each(ctx, func(e *store.Event, cut time.Time) error {
		if e.Status == store.StatusCancelled || !keep(e, cut) {
			return nil
		}
		uid := e.UID
		if seen != nil {
			uid = uniqueUID(seen, e)
		}
		loc := zones.of(e)
		if loc != nil && spans[loc.String()] == nil {
			loc = nil
		}
		writeEvent(enc, e, uid, loc)
		return enc.Err()
	})
	if err != nil {
		return fmt.Errorf("stream feed: %w", err)
	}
	enc.End("VCALENDAR")
	return enc.Flush()
}
