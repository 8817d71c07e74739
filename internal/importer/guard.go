package importer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

// Guard is the mass-deletion guard. An imported calendar is usually a
// booking channel, where every deleted event tells consumers that dates
// are free again; a glitch of the channel's export (an empty calendar, a
// half-written file) must not free them. So when a poll would delete at
// least Fraction of a calendar's events and at least MinDeletes of them,
// or all of them, the poll applies its creates and updates but holds the
// deletes: they are applied only by a fetch at least Delay later that
// still lacks those events, or when an operator confirms them. A fetch
// that has them again drops them from the hold, and nothing is sent.
type Guard struct {
	// Disabled turns the guard off: every poll applies its deletes.
	Disabled bool
	// MinDeletes is the least number of deletes that can be held
	// (default 2); deleting every event is held whatever their number.
	MinDeletes int
	// Fraction is the share of the calendar's events whose deletion is
	// held (default 0.5).
	Fraction float64
	// Delay is how long a held deletion waits for the confirming fetch
	// (default 2 min, never below the schedule's floor).
	Delay time.Duration
}

// Defaults of Guard.
const (
	DefaultGuardMinDeletes = 2
	DefaultGuardFraction   = 0.5
	DefaultGuardDelay      = 2 * time.Minute
)

func (g Guard) withDefaults(floor time.Duration) Guard {
	if g.MinDeletes <= 0 {
		g.MinDeletes = DefaultGuardMinDeletes
	}
	if g.Fraction <= 0 || g.Fraction > 1 {
		g.Fraction = DefaultGuardFraction
	}
	if g.Delay <= 0 {
		g.Delay = DefaultGuardDelay
	}
	g.Delay = max(g.Delay, floor)
	return g
}

// massive reports whether deleting n of total events must be held, and
// why.
func (g Guard) massive(n, total int) (string, bool) {
	switch {
	case n == 0 || total == 0:
		return "", false
	case n == total:
		return fmt.Sprintf("the feed no longer lists any of the calendar's %d events", total), true
	case n >= g.MinDeletes && float64(n) >= g.Fraction*float64(total):
		return fmt.Sprintf("the feed no longer lists %d of the calendar's %d events", n, total), true
	}
	return "", false
}

// deletePlan is what a poll does with the deletes of its diff.
type deletePlan struct {
	// apply are the deletes to write now.
	apply []*store.Event
	// held is the hold the calendar is left with, nil for none.
	held *store.HeldDeletes
	// started reports a new hold, which sends calendar.sync.held.
	started bool
}

// plan splits a poll's deletes into those applied now and those held.
// prev is the calendar's current hold, total the number of its stored
// events. A held event that the feed lists again is no longer among the
// deletes, so it simply drops out of the hold and nothing is sent for it.
func (g Guard) plan(prev *store.HeldDeletes, deletes []*store.Event, total int, now time.Time) deletePlan {
	if g.Disabled {
		return deletePlan{apply: deletes}
	}
	heldKeys := map[store.EventKey]bool{}
	due := false
	if prev != nil {
		for _, k := range prev.Events {
			heldKeys[k] = true
		}
		due = !now.Before(prev.Since.Add(g.Delay))
	}
	var p deletePlan
	var stillHeld, fresh []*store.Event
	for _, e := range deletes {
		switch k := keyOf(e); {
		case heldKeys[k] && due:
			p.apply = append(p.apply, e) // confirmed by a fetch after the delay
		case heldKeys[k]:
			stillHeld = append(stillHeld, e) // waiting for that fetch
		default:
			fresh = append(fresh, e)
		}
	}
	reason, massive := g.massive(len(fresh), total)
	if !massive {
		p.apply = append(p.apply, fresh...)
		fresh = nil
	}
	switch {
	case len(fresh) > 0 && len(stillHeld) > 0:
		// A waiting hold grows: its delay starts again.
		p.held = &store.HeldDeletes{Events: keysOf(stillHeld, fresh), Since: now, Reason: prev.Reason}
	case len(fresh) > 0:
		p.held = &store.HeldDeletes{Events: keysOf(fresh), Since: now, Reason: reason}
		p.started = true
	case len(stillHeld) > 0:
		p.held = &store.HeldDeletes{Events: keysOf(stillHeld), Since: prev.Since, Reason: prev.Reason}
	}
	return p
}

func keyOf(e *store.Event) store.EventKey {
	return store.EventKey{UID: e.UID, RecurrenceID: e.RecurrenceID}
}

func keysOf(lists ...[]*store.Event) []store.EventKey {
	var out []store.EventKey
	for _, l := range lists {
		for _, e := range l {
			out = append(out, keyOf(e))
		}
	}
	return out
}

// ErrNothingHeld is returned when deletes are confirmed for a calendar
// that holds none.
var ErrNothingHeld error = &fault.Error{Code: fault.Conflict, Reason: fault.NothingHeld,
	Message: "the calendar holds no deletes to confirm"}

// ConfirmHeld applies the deletes an imported calendar holds at once, for
// an operator who knows the channel really cancelled those events. Held
// events that are no longer stored are skipped. It returns the calendar's
// outcome like a poll.
func (i *Importer) ConfirmHeld(ctx context.Context, accountID, calendarID string) (*Result, error) {
	for attempt := 0; ; attempt++ {
		c, err := i.store.Calendar(ctx, accountID, calendarID)
		if err != nil {
			return nil, err
		}
		if c.Kind != store.KindImported {
			return nil, ErrNotImported
		}
		if c.Import.Held == nil {
			return nil, ErrNothingHeld
		}
		fc, err := i.store.FeedContent(ctx, accountID, calendarID)
		if err != nil {
			return nil, fmt.Errorf("read events of %s: %w", calendarID, err)
		}
		held := map[store.EventKey]bool{}
		for _, k := range c.Import.Held.Events {
			held[k] = true
		}
		var deletes []*store.Event
		for _, e := range fc.Events {
			if held[keyOf(e)] {
				deletes = append(deletes, e)
			}
		}
		now := i.cfg.Now()
		st := c.Import
		st.Held = nil
		if len(deletes) > 0 {
			st.LastChangeAt = now
		}
		_, err = i.store.ApplyImport(ctx, &store.ApplyImportParams{
			AccountID: accountID, CalendarID: calendarID, Version: fc.Version, Delete: deletes, State: st, Now: now,
		})
		if errors.Is(err, store.ErrConflict) && attempt < maxConflictRetries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("confirm held deletes of %s: %w", calendarID, err)
		}
		if len(deletes) > 0 {
			i.changed(accountID, calendarID)
		}
		st.EventCount = c.Import.EventCount - len(deletes)
		status := StatusUnchanged
		if len(deletes) > 0 {
			status = StatusChanged
		}
		return &Result{Status: status, Deleted: len(deletes), Calendar: after(c, st)}, nil
	}
}
