package calendar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
)

// MaxBatch is the most items one batch may hold.
const MaxBatch = 1000

// Batch operations.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// BatchItem is one write of a batch: a create (Event required, UID
// optional, as on the single route), or an update or delete of the event
// named by ID or UID (an update takes Event, a delete none).
type BatchItem struct {
	Op    string
	ID    string
	UID   string
	Event *EventInput
}

// BatchResult is the outcome of one item: the event written (for a
// delete, the event removed), or why the item was refused.
type BatchResult struct {
	Op    string
	Event *store.Event
	Err   error
}

// maxBatchAttempts bounds how often a batch is decided again after a
// concurrent write moved the calendar's version under it.
const maxBatchAttempts = 4

// WriteBatch applies a batch of event writes to a native calendar. Each
// item is checked on its own — its input, that its event exists, that
// its UID is free, that no other item of the batch writes the same event
// or UID — and the items that pass are written in one transaction, with a
// change each, against the calendar's version the checks read: either all
// of them are committed or none. The results are in item order; an item
// refused has Err set and changes nothing. A batch with too many items, or
// to a calendar that is not the account's or not native, is an error for
// the whole request.
func (s *Service) WriteBatch(ctx context.Context, accountID, calendarID string, items []BatchItem) ([]BatchResult, error) {
	switch {
	case len(items) == 0:
		return nil, invalid("items", "must hold at least one item")
	case len(items) > MaxBatch:
		return nil, invalid("items", "may hold at most %d items; got %d: split the batch", MaxBatch, len(items))
	}
	// Batches of one calendar take turns on this node: each would
	// otherwise move the version the others were decided against.
	unlock, err := s.batches.lock(ctx, calendarKey{accountID, calendarID})
	if err != nil {
		return nil, err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		res, err := s.writeBatch(ctx, accountID, calendarID, items)
		if !errors.Is(err, store.ErrConflict) {
			return res, err
		}
		if attempt == maxBatchAttempts {
			return nil, fault.Conflictf("", "the calendar changed %d times while the batch was being written: retry it", attempt)
		}
		// Another write came between the checks and the commit: decide
		// the batch again against what is stored now.
	}
}

// writeBatch decides and writes a batch once; store.ErrConflict means the
// calendar moved and the batch may be decided again.
func (s *Service) writeBatch(ctx context.Context, accountID, calendarID string, items []BatchItem) ([]BatchResult, error) {
	cal, err := s.store.Calendar(ctx, accountID, calendarID)
	if err != nil {
		return nil, err
	}
	if cal.Kind == store.KindImported {
		return nil, ErrReadOnly
	}
	res := make([]BatchResult, len(items))
	var ids, uids []string
	for k, it := range items {
		res[k].Op = it.Op
		res[k].Err = checkItem(it)
		if res[k].Err != nil {
			continue
		}
		if it.ID != "" {
			ids = append(ids, it.ID)
		}
		if u := itemUID(it); u != "" {
			uids = append(uids, u)
		}
	}
	found, err := s.store.FindEvents(ctx, store.FindEventsParams{AccountID: accountID, CalendarID: calendarID, IDs: ids, UIDs: uids})
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Event, len(found))
	byUID := make(map[string]*store.Event, len(found))
	for _, e := range found {
		byID[e.ID] = e
		if e.RecurrenceID == "" {
			byUID[e.UID] = e
		}
	}
	now := s.now().UTC()
	b := &batch{byUID: byUID, claims: map[string][]int{}}
	for k, it := range items {
		if res[k].Err != nil {
			continue
		}
		res[k].Event, res[k].Err = b.decide(it, cal, byID, now)
		if res[k].Err == nil {
			b.claim(k, it, res[k].Event, byID[res[k].Event.ID])
		}
	}
	// An event or UID that two items write is refused in all of them:
	// which one should win is not the server's guess.
	for key, ks := range b.claims {
		if len(ks) < 2 {
			continue
		}
		for _, k := range ks {
			if res[k].Err == nil {
				res[k].Err = fault.Conflictf(fault.InBatch, "items %s of the batch all write %s: send one item per event", itemList(ks), key)
			}
		}
	}
	b.deleted = map[string]bool{}
	for k := range res {
		if res[k].Err == nil && res[k].Op == OpDelete {
			b.deleted[res[k].Event.ID] = true
		}
	}
	for k := range res {
		if res[k].Err == nil && res[k].Op != OpDelete {
			res[k].Err = b.taken(res[k].Event)
		}
	}
	p := &store.WriteEventsParams{AccountID: accountID, CalendarID: calendarID, Version: cal.Version, Now: now}
	for k := range res {
		if res[k].Err != nil {
			continue
		}
		switch items[k].Op {
		case OpCreate:
			p.Create = append(p.Create, res[k].Event)
		case OpUpdate:
			p.Update = append(p.Update, res[k].Event)
		case OpDelete:
			p.Delete = append(p.Delete, res[k].Event)
		}
	}
	if _, err := s.store.WriteEvents(ctx, p); err != nil {
		return nil, err
	}
	if len(p.Create)+len(p.Update)+len(p.Delete) > 0 {
		s.changed(accountID, calendarID)
	}
	return res, nil
}

// checkItem refuses an item whose shape does not fit its operation.
func checkItem(it BatchItem) error {
	switch it.Op {
	case OpCreate:
		if it.Event == nil {
			return invalid("event", "is required to create an event")
		}
		if it.ID != "" {
			return invalid("id", "is assigned by the server: leave it out of a create")
		}
		if it.UID != "" && it.Event.UID != nil && *it.Event.UID != it.UID {
			return invalid("uid", "differs from event.uid: give the UID once")
		}
	case OpUpdate, OpDelete:
		if (it.ID == "") == (it.UID == "") {
			return invalid("id", "or uid (one of them) names the event to %s", it.Op)
		}
		if it.Op == OpUpdate && it.Event == nil {
			return invalid("event", "is required to update an event")
		}
		if it.Op == OpDelete && it.Event != nil {
			return invalid("event", "must be left out of a delete")
		}
	default:
		return invalid("op", "must be one of create, update, delete; got %q", it.Op)
	}
	return nil
}

// itemUID is the UID an item names or writes, if any.
func itemUID(it BatchItem) string {
	if it.UID != "" {
		return it.UID
	}
	if it.Event != nil && it.Event.UID != nil {
		return *it.Event.UID
	}
	return ""
}

// batch is what deciding a batch's items keeps.
type batch struct {
	// byUID holds the stored events the batch names by UID.
	byUID map[string]*store.Event
	// claims lists, per event id or UID, the items that write it.
	claims map[string][]int
	// deleted are the ids of the stored events the batch deletes.
	deleted map[string]bool
}

// decide validates one item against the stored events and returns the
// event it writes.
func (b *batch) decide(it BatchItem, cal *store.Calendar, byID map[string]*store.Event, now time.Time) (*store.Event, error) {
	if it.Op == OpCreate {
		in := *it.Event
		if it.UID != "" {
			in.UID = &it.UID
		}
		e := &store.Event{
			ID: id.Sorted("evt"), AccountID: cal.AccountID, CalendarID: cal.ID,
			Status: store.StatusConfirmed, TimeZone: cal.TimeZone, CreatedAt: now, UpdatedAt: now,
		}
		if in.UID == nil {
			e.UID = id.UUIDv7() + "@calhook"
		}
		return e, applyEvent(e, in, true)
	}
	var stored *store.Event
	if it.ID != "" {
		stored = byID[it.ID]
	} else {
		stored = b.byUID[it.UID]
	}
	if stored == nil {
		return nil, batchNotFound(it, cal.ID)
	}
	if it.Op == OpDelete {
		return stored, nil
	}
	e := *stored
	if err := applyEvent(&e, *it.Event, false); err != nil {
		return nil, err
	}
	e.Sequence++
	e.UpdatedAt = now
	return &e, nil
}

// claim records the event id and the UID item k writes: a create's UID,
// and an update's when it changes the stored one.
func (b *batch) claim(k int, it BatchItem, e, stored *store.Event) {
	if it.Op != OpCreate {
		b.claims["event "+e.ID] = append(b.claims["event "+e.ID], k)
	}
	if it.Op == OpCreate || it.Op == OpUpdate && e.UID != stored.UID {
		key := fmt.Sprintf("uid %q", e.UID)
		b.claims[key] = append(b.claims[key], k)
	}
}

// taken refuses an event created or updated by the batch when its UID
// belongs to a stored event that the batch does not delete (an update
// may keep its own).
func (b *batch) taken(e *store.Event) error {
	if other := b.byUID[e.UID]; other != nil && other.ID != e.ID && !b.deleted[other.ID] {
		return fmt.Errorf("uid %q: %w", e.UID, ErrDuplicateUID)
	}
	return nil
}

// calendarLocks serialises the batches of each calendar on this node. The
// zero value is ready to use.
type calendarLocks struct {
	mu sync.Mutex
	m  map[calendarKey]*calendarLock
}

type calendarLock struct {
	turn    chan struct{} // holds a token while the lock is taken
	waiters int
}

// lock takes the calendar's lock, or gives up when ctx ends; the returned
// func releases it.
func (l *calendarLocks) lock(ctx context.Context, k calendarKey) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[calendarKey]*calendarLock{}
	}
	c := l.m[k]
	if c == nil {
		c = &calendarLock{turn: make(chan struct{}, 1)}
		l.m[k] = c
	}
	c.waiters++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if c.waiters--; c.waiters == 0 {
			delete(l.m, k)
		}
		l.mu.Unlock()
	}
	select {
	case c.turn <- struct{}{}:
		return func() { <-c.turn; release() }, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("wait for the calendar's other batches: %w", ctx.Err())
	}
}

// batchNotFound is the error of an update or delete whose event is not in
// the calendar (another calendar's or account's event included).
func batchNotFound(it BatchItem, calendarID string) error {
	what := "id " + it.ID
	if it.ID == "" {
		what = fmt.Sprintf("uid %q", it.UID)
	}
	return &fault.Error{Code: fault.NotFound, Message: fmt.Sprintf("no event with %s in calendar %s", what, calendarID)}
}

// itemList formats item indexes for a message: "0, 3 and 7".
func itemList(ks []int) string {
	s := ""
	for i, k := range ks {
		switch {
		case i == 0:
		case i == len(ks)-1:
			s += " and "
		default:
			s += ", "
		}
		s += fmt.Sprint(k)
	}
	return s
}
