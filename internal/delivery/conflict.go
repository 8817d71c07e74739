package delivery

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/calhook/calhook/internal/calendar"
	"github.com/calhook/calhook/internal/store"
)

// conflictMatches reports whether a subscription receives a conflict's
// messages: one for every calendar, or for either calendar of the
// conflict.
func conflictMatches(s *store.Subscription, c *store.Conflict) bool {
	return s.CalendarID == "" || s.CalendarID == c.A.CalendarID || s.CalendarID == c.B.CalendarID
}

// ConflictPayload is the JSON body of an availability.conflict.* webhook.
type ConflictPayload struct {
	WebhookID string       `json:"webhookId"`
	EventType string       `json:"eventType"`
	Timestamp string       `json:"timestamp"`
	Data      ConflictData `json:"data"`
}

// ConflictData identifies a conflict and both of its events.
type ConflictData struct {
	AccountID  string          `json:"accountId"`
	ConflictID string          `json:"conflictId"`
	UnitID     string          `json:"unitId"`
	Overlap    ConflictOverlap `json:"overlap"`
	DetectedAt string          `json:"detectedAt"`
	ResolvedAt string          `json:"resolvedAt,omitempty"`
	Events     []ConflictEvent `json:"events"`
	Links      ConflictLinks   `json:"links"`
}

// ConflictOverlap is the first stretch of time both events block.
type ConflictOverlap struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// ConflictEvent is one event of a conflict, as it was when detected.
type ConflictEvent struct {
	CalendarID   string `json:"calendarId"`
	EventID      string `json:"eventId"`
	UID          string `json:"uid"`
	RecurrenceID string `json:"recurrenceId,omitempty"`
	// Source is "native" or "imported"; SourceURL an imported calendar's
	// origin.
	Source    string `json:"source"`
	SourceURL string `json:"sourceUrl,omitempty"`
	Start     string `json:"start"`
	End       string `json:"end"`
	AllDay    bool   `json:"allDay,omitempty"`
	Status    string `json:"status"`
	Self      string `json:"self"`
}

// ConflictLinks point at the API resources of a conflict.
type ConflictLinks struct {
	Self string `json:"self"`
	Unit string `json:"unit"`
}

func (f *FanOut) conflictPayload(m *store.Message, ch *store.Change, c *store.Conflict) ([]byte, error) {
	esc := url.PathEscape
	unit := f.baseURL + "/v1/units/" + esc(c.UnitID)
	p := ConflictPayload{
		WebhookID: m.ID, EventType: m.EventType, Timestamp: ch.OccurredAt.UTC().Format(time.RFC3339Nano),
		Data: ConflictData{
			AccountID: c.AccountID, ConflictID: c.ID, UnitID: c.UnitID,
			Overlap:    ConflictOverlap{Start: c.OverlapStart.UTC().Format(time.RFC3339), End: c.OverlapEnd.UTC().Format(time.RFC3339)},
			DetectedAt: c.DetectedAt.UTC().Format(time.RFC3339Nano),
			Links:      ConflictLinks{Self: unit + "/conflicts/" + esc(c.ID), Unit: unit},
		},
	}
	if ch.Type == store.ChangeConflictResolved && !c.ResolvedAt.IsZero() {
		p.Data.ResolvedAt = c.ResolvedAt.UTC().Format(time.RFC3339Nano)
	}
	for _, s := range []store.ConflictSide{c.A, c.B} {
		p.Data.Events = append(p.Data.Events, ConflictEvent{
			CalendarID: s.CalendarID, EventID: s.EventID, UID: s.UID, RecurrenceID: s.RecurrenceID,
			Source: s.Kind, SourceURL: s.SourceURL,
			Start:  calendar.FormatTime(s.Start, s.AllDay, s.TimeZone),
			End:    calendar.FormatTime(s.End, s.AllDay, s.TimeZone),
			AllDay: s.AllDay, Status: s.Status,
			Self: f.baseURL + "/v1/calendars/" + esc(s.CalendarID) + "/events/" + esc(s.EventID),
		})
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode conflict payload: %w", err)
	}
	return b, nil
}
