package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// snapshot is the stored JSON form of an event inside a change record. Its
// field names are part of the database format: change them only with a
// migration.
type snapshot struct {
	ID           string            `json:"id"`
	UID          string            `json:"uid"`
	RecurrenceID string            `json:"recurrenceId,omitempty"`
	Summary      string            `json:"summary,omitempty"`
	Description  string            `json:"description,omitempty"`
	Location     string            `json:"location,omitempty"`
	Start        time.Time         `json:"start"`
	End          time.Time         `json:"end"`
	AllDay       bool              `json:"allDay,omitempty"`
	TimeZone     string            `json:"timeZone,omitempty"`
	Status       string            `json:"status"`
	RRule        string            `json:"rrule,omitempty"`
	ExDates      []time.Time       `json:"exdates,omitempty"`
	Sequence     int               `json:"sequence"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	UpdatedAt    time.Time         `json:"updatedAt"`
}

// MarshalSnapshot encodes the state of an event kept with a change record.
func MarshalSnapshot(e *Event) ([]byte, error) {
	b, err := json.Marshal(snapshot{
		ID: e.ID, UID: e.UID, RecurrenceID: e.RecurrenceID,
		Summary: e.Summary, Description: e.Description, Location: e.Location,
		Start: e.Start, End: e.End, AllDay: e.AllDay, TimeZone: e.TimeZone,
		Status: e.Status, RRule: e.RRule, ExDates: e.ExDates, Sequence: e.Sequence,
		Metadata: e.Metadata, UpdatedAt: e.UpdatedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("encode event snapshot: %w", err)
	}
	return b, nil
}

// UnmarshalSnapshot decodes what MarshalSnapshot encoded for a change of the
// given account and calendar.
func UnmarshalSnapshot(data []byte, accountID, calendarID string) (*Event, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode event snapshot: %w", err)
	}
	return &Event{
		ID: s.ID, AccountID: accountID, CalendarID: calendarID,
		UID: s.UID, RecurrenceID: s.RecurrenceID,
		Summary: s.Summary, Description: s.Description, Location: s.Location,
		Start: s.Start, End: s.End, AllDay: s.AllDay, TimeZone: s.TimeZone,
		Status: s.Status, RRule: s.RRule, ExDates: s.ExDates, Sequence: s.Sequence,
		Metadata: s.Metadata, UpdatedAt: s.UpdatedAt,
	}, nil
}
