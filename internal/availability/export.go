package availability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/calhook/calhook/internal/feed"
	"github.com/calhook/calhook/internal/memo"
	"github.com/calhook/calhook/internal/store"
)

// ExportFeed returns the blocked-dates feed of a calendar of a unit: the
// busy time of every other calendar of the unit, as opaque events whose
// SUMMARY is the unit's ExportSummary, with no summary, description or
// location of the source events, and UIDs derived from the source events
// (and occurrence), so consumers see no churn. A calendar's own events
// are left out, so no channel gets its own bookings echoed back.
//
// A wrong token is feed.ErrForbidden; a calendar in no unit is
// store.ErrNotFound. Feeds are cached until a change of the account's
// calendars or units drops them. The feed's Version is the account's feed
// version (see store.ExportFeedCalendar), for iCal Hooks registrations.
func (s *Service) ExportFeed(ctx context.Context, accountID, calendarID, token string) (*feed.Feed, error) {
	if token == "" {
		return nil, feed.ErrForbidden
	}
	k := exportKey{accountID, calendarID}
	now := s.now().UTC()
	day := now.Truncate(24 * time.Hour)
	if e, ok := s.exports.Get(k); ok && e.day.Equal(day) {
		if subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
			return nil, feed.ErrForbidden
		}
		if e.err != nil {
			return nil, e.err
		}
		return e.feed, nil
	}
	epoch := s.exports.Epoch(accountID)
	st, err := s.store.FeedVersion(ctx, accountID, "")
	if errors.Is(err, store.ErrNotFound) {
		return nil, feed.ErrForbidden
	}
	if err != nil {
		return nil, fmt.Errorf("read feed token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(st.FeedToken), []byte(token)) != 1 {
		return nil, feed.ErrForbidden
	}
	f, err := s.renderExport(ctx, accountID, calendarID, st, now, day)
	if errors.Is(err, feed.ErrAccountDisabled) || errors.Is(err, feed.ErrCalendarDisabled) {
		s.exports.Put(k, epoch, &exportEntry{token: st.FeedToken, err: err, day: day})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	s.exports.Put(k, epoch, &exportEntry{token: st.FeedToken, feed: f, day: day})
	return f, nil
}

// renderExport renders the export feed of calendarID, or answers the
// feed switch: an export feed follows its account's and its calendar's.
func (s *Service) renderExport(ctx context.Context, accountID, calendarID string, st *store.FeedState, now, day time.Time) (*feed.Feed, error) {
	if err := feed.Disabled(st); err != nil {
		return nil, err
	}
	m, err := s.store.CalendarMembership(ctx, accountID, []string{calendarID})
	if err != nil {
		return nil, err
	}
	if len(m.Units) == 0 {
		return nil, fmt.Errorf("calendar %s is in no unit: %w", calendarID, store.ErrNotFound)
	}
	u, cals := m.Units[0], m.Calendars
	var others []string
	for _, c := range cals {
		if c.ID != calendarID {
			others = append(others, c.ID)
		} else if c.FeedDisabled {
			return nil, feed.ErrCalendarDisabled
		}
	}
	// From the day before today: a stay that ends today still shows.
	from := day.Add(-24 * time.Hour)
	rules := RulesOf(u, now.Add(s.horizon))
	events, err := s.store.BlockingEvents(ctx, store.BlockingEventsParams{
		AccountID: accountID, CalendarIDs: others, From: from, To: endOfTime,
	})
	if err != nil {
		return nil, err
	}
	bs, err := Blocks(events, rules, from, endOfTime)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Event, 0, len(bs))
	lastModified := u.UpdatedAt
	for _, b := range bs {
		out = append(out, exportEvent(b, u, calendarID))
		if b.Event.UpdatedAt.After(lastModified) {
			lastModified = b.Event.UpdatedAt
		}
	}
	var buf bytes.Buffer
	err = feed.Render(&buf, out, feed.RenderOptions{
		ProdID: s.opts.ProdID, Name: u.Name + " (blocked dates)", TimeZone: u.TimeZone, RefreshInterval: s.opts.RefreshInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("render export feed: %w", err)
	}
	return feed.New(buf.Bytes(), lastModified, st.Version), nil
}

// exportEvent is the opaque event of a block in an export feed. All-day
// blocks stay dates; timed ones are absolute times in UTC.
func exportEvent(b Block, u *store.Unit, calendarID string) *store.Event {
	src := b.Event
	key := src.ID
	if src.RRule != "" {
		key += "/" + strconv.FormatInt(b.OccStart.Unix(), 10)
	}
	sum := sha256.Sum256([]byte(key))
	e := &store.Event{
		CalendarID: calendarID, UID: hex.EncodeToString(sum[:12]) + "@blocked.calhook",
		Summary: u.ExportSummary, Status: store.StatusConfirmed, Sequence: src.Sequence,
		AllDay: src.AllDay, CreatedAt: src.CreatedAt, UpdatedAt: src.UpdatedAt,
		Extra: map[string]string{"TRANSP": "OPAQUE"},
	}
	if src.AllDay {
		e.Start, e.End = b.OccStart, b.OccEnd
		if !u.SameDayTurnover {
			e.End = e.End.AddDate(0, 0, 1)
		}
	} else {
		e.Start, e.End = b.Start, b.End
	}
	return e
}

type exportKey struct{ accountID, calendarID string }

type exportEntry struct {
	token string
	feed  *feed.Feed
	// err is the answer of a disabled export feed instead of feed.
	err error
	// day is the UTC day the feed was rendered on: the window moves
	// with the date.
	day time.Time
}

// maxExports bounds the cached export feeds.
const maxExports = 10000

// newExportCache returns the cache of rendered export feeds. A unit's
// export feeds depend on every calendar of the unit, so any change of the
// account drops all of its entries.
func newExportCache() *memo.ByAccount[exportKey, *exportEntry] {
	return memo.NewByAccount[exportKey, *exportEntry](maxExports, func(k exportKey) string { return k.accountID })
}
