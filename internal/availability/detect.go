package availability

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/icalhooks"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
)

// Store is what the availability domain reads and writes.
type Store interface {
	store.UnitStore
	Calendar(ctx context.Context, accountID, id string) (*store.Calendar, error)
	Event(ctx context.Context, accountID, calendarID, id string) (*store.Event, error)
	FeedVersion(ctx context.Context, accountID, calendarID string) (*store.FeedState, error)
	FanOut(ctx context.Context, cursor string, limit int, build store.FanOutFunc) (store.FanOutResult, error)
	ArmedHooks(ctx context.Context, feeds []store.FeedKey) ([]*store.Hook, error)
}

// Detector finds conflicts. It is a consumer of the change log with its
// own durable cursor (store.AvailabilityCursor): each step reads the
// changes after it, works out which conflicts begin and end (and which
// export feeds to ping), and stores them with the new cursor position in
// one transaction, so a crash replays the step and the open-pair
// uniqueness keeps a replay from reporting anything twice. A step with
// nothing to store stores nothing, not even the cursor (see step). Each
// stored conflict or resolution is itself a change in the log, which the
// fan-out turns into webhooks.
//
// Detection is state-based: a step compares the conflicts that the
// current events imply with the open ones, for the events (or whole
// units) its changes touched. Overlaps that end before now are neither
// reported nor resolved.
type Detector struct {
	store   Store
	log     *slog.Logger
	now     func() time.Time
	horizon time.Duration
	batch   int
	stored  func()
	observe func(store.DetectResult)
	baseURL string
	bus     *notify.Bus

	wake chan struct{}
	loop lifecycle.Loop

	// mu serializes steps; resume is where the last one left off (nil:
	// read the stored cursor), unsaved how many changes it read past the
	// stored cursor.
	mu      sync.Mutex
	resume  *store.DetectResume
	unsaved int
}

// DetectorConfig configures a Detector.
type DetectorConfig struct {
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time
	// Horizon is how far ahead recurring events are expanded (default
	// two years).
	Horizon time.Duration
	// Batch is how many changes one step reads.
	Batch int
	// Bus wakes the detector when events changed (FeedsChanged), on any
	// node. Nil gives the Detector a Bus of its own.
	Bus *notify.Bus
	// Stored, if set, is called after a step stored conflicts or
	// resolutions: new changes are in the log (wire the fan-out's Notify).
	Stored func()
	// Observe, if set, is called with the outcome of every step that
	// succeeded (the metrics count the conflicts it stored).
	Observe func(store.DetectResult)
	// BaseURL is the public URL of this calhook, for the feed URLs of
	// export feed pings.
	BaseURL string
}

// DefaultHorizon is how far ahead recurring events block by default.
const DefaultHorizon = 2 * 365 * 24 * time.Hour

// endOfTime bounds the windows that look at every future event: the
// horizon caps recurring events only, and calhook keeps no time after it.
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// NewDetector returns a Detector; call Start to run it.
func NewDetector(cfg DetectorConfig) *Detector {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	d := &Detector{
		store: cfg.Store, log: cfg.Logger, now: cfg.Now, horizon: cfg.Horizon, batch: cfg.Batch, stored: cfg.Stored,
		observe: cfg.Observe, baseURL: cfg.BaseURL, bus: notify.Or(cfg.Bus), wake: make(chan struct{}, 1),
	}
	d.bus.FeedsChanged.Subscribe(func(notify.FeedChange) { d.Notify() })
	return d
}

// Notify tells the detector that new changes may be there. It never
// blocks.
func (d *Detector) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// pollInterval is the safety net for changes written without a note; a
// tick that finds the detector idle also stores its cursor.
const pollInterval = time.Second

// saveEvery bounds how many changes the detector reads past its stored
// cursor before it stores it without anything else to store: what a
// crash makes it read again.
const saveEvery = 5000

// Back-off bounds of the retries after a step left unsettled changes.
const (
	unsettledMin = time.Millisecond
	unsettledMax = 50 * time.Millisecond
)

// Start runs the detector until Stop or ctx ends.
func (d *Detector) Start(ctx context.Context) error {
	d.loop.Go(ctx, func(ctx context.Context) {
		lifecycle.RunSteps(ctx, lifecycle.Steps{
			Wake: d.wake, Poll: pollInterval, BackoffMin: unsettledMin, BackoffMax: unsettledMax,
			Failed: func(err error) { d.log.Error("conflict detection failed", "error", err) },
			Step: func(ctx context.Context, tick bool) (lifecycle.StepResult, error) {
				res, err := d.step(ctx, tick)
				return lifecycle.StepResult{
					Full: res.Changes >= d.batch, Progress: res.Changes > 0, Busy: res.Busy, Unsettled: res.Unsettled,
				}, err
			},
		})
	})
	return nil
}

// Stop ends the loop and waits for it (a lifecycle.Component). It is safe
// to call more than once, and before Start.
func (d *Detector) Stop(context.Context) { d.loop.Stop() }

// RunOnce runs one step (see step) and stores the cursor with it.
func (d *Detector) RunOnce(ctx context.Context) (store.DetectResult, error) {
	return d.step(ctx, false)
}

// step runs one step of detection and of the export feeds' iCal Hooks
// pings, both worked out from the same changes and stored together. The
// detector keeps its place in the log itself: a step that has nothing to
// store runs no write transaction (SQLite has one writer, which the
// webhook pipeline needs), and the cursor is stored with the next step
// that stores something, every saveEvery changes, or when save is set
// (the loop sets it on an idle tick).
func (d *Detector) step(ctx context.Context, save bool) (store.DetectResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := store.DetectParams{Limit: d.batch, Resume: d.resume, Save: save || d.unsaved >= saveEvery}
	res, err := d.store.DetectConflicts(ctx, p, func(ctx context.Context, changes []*store.Change) (*store.ConflictUpdate, error) {
		reads := newStepReads(d.store)
		up, err := d.detect(ctx, reads, changes)
		if err != nil {
			return nil, err
		}
		if up.Pings, err = d.pings(ctx, reads, changes); err != nil {
			return nil, fmt.Errorf("export feed pings: %w", err)
		}
		return up, nil
	})
	if err != nil {
		return res, err
	}
	d.resume = res.Resume
	switch {
	case res.Resume == nil:
		d.unsaved = 0
	case res.Resume.Stored == res.Resume.Read:
		d.unsaved = 0
	default:
		d.unsaved += res.Changes
	}
	if d.observe != nil {
		d.observe(res)
	}
	if res.Detected+res.Resolved > 0 && d.stored != nil {
		d.stored()
	}
	if res.Pings > 0 {
		d.bus.MessagesDue.Publish(notify.Due{})
	}
	return res, nil
}

// pings returns one iCal Hooks ping per armed hook of every export feed
// whose content changes may have changed: those of the other calendars
// of the unit of every calendar an event change touched, and of every
// calendar of a unit that changed itself. As in the fan-out, storing a
// ping disarms its hook, and a hook already served every change is left
// armed.
func (d *Detector) pings(ctx context.Context, reads *stepReads, changes []*store.Change) ([]*store.Message, error) {
	type acctCal struct{ accountID, id string }
	calsOf := map[string][]string{}
	for _, ch := range changes {
		if store.IsEventChange(ch.Type) && ch.CalendarID != "" {
			calsOf[ch.AccountID] = append(calsOf[ch.AccountID], ch.CalendarID)
		}
	}
	unitOf := map[acctCal]string{}
	units := map[string][]string{}
	for acct, cals := range calsOf {
		m, err := reads.CalendarUnits(ctx, acct, cals)
		if err != nil {
			return nil, err
		}
		for c, u := range m {
			unitOf[acctCal{acct, c}] = u
			units[acct] = append(units[acct], u)
		}
	}
	for _, ch := range changes {
		if ch.Type == store.ChangeUnitChanged {
			units[ch.AccountID] = append(units[ch.AccountID], ch.EventID)
		}
	}
	members := map[acctCal][]string{} // unit → its calendars
	for acct, us := range units {
		slices.Sort(us)
		cals, err := reads.UnitCalendars(ctx, acct, slices.Compact(us))
		if err != nil {
			return nil, err
		}
		for _, c := range cals {
			members[acctCal{acct, c.UnitID}] = append(members[acctCal{acct, c.UnitID}], c.ID)
		}
	}
	touched := map[store.FeedKey][]*store.Change{}
	var feeds []store.FeedKey
	touch := func(ch *store.Change, unitID, except string) {
		for _, c := range members[acctCal{ch.AccountID, unitID}] {
			if c == except {
				continue
			}
			k := store.FeedKey{AccountID: ch.AccountID, CalendarID: store.ExportFeedKey(c)}
			if _, ok := touched[k]; !ok {
				feeds = append(feeds, k)
			}
			touched[k] = append(touched[k], ch)
		}
	}
	for _, ch := range changes {
		switch {
		case ch.Type == store.ChangeUnitChanged:
			touch(ch, ch.EventID, "")
		case store.IsEventChange(ch.Type) && ch.CalendarID != "":
			if u, ok := unitOf[acctCal{ch.AccountID, ch.CalendarID}]; ok {
				touch(ch, u, ch.CalendarID)
			}
		}
	}
	if len(feeds) == 0 {
		return nil, nil
	}
	hooks, err := d.store.ArmedHooks(ctx, feeds)
	if err != nil {
		return nil, err
	}
	now := d.now().UTC()
	var msgs []*store.Message
	for _, h := range hooks {
		chs := touched[store.FeedKey{AccountID: h.AccountID, CalendarID: h.CalendarID}]
		if !slices.ContainsFunc(chs, h.Lacks) {
			continue
		}
		msgs = append(msgs, &store.Message{
			ID: id.UUID(), AccountID: h.AccountID, HookID: h.ID, ChangeID: chs[len(chs)-1].ID,
			EventType: store.PingEventType, Payload: []byte(icalhooks.FeedURL(d.baseURL, h.AccountID, h.CalendarID)),
			NextAttemptAt: now, CreatedAt: now,
		})
	}
	return msgs, nil
}

// group is the events of one UID of one calendar that a step looks at.
type group struct {
	accountID, calendarID, uid string
	// ids are the event ids the changes named (deleted ones included).
	ids []string
	// recurring is set when any change was of a series or an override:
	// the whole UID is evaluated together.
	recurring bool
}

type unitKey struct{ accountID, unitID string }

// detect works out what changes did to the conflicts.
func (d *Detector) detect(ctx context.Context, reads *stepReads, changes []*store.Change) (*store.ConflictUpdate, error) {
	now := d.now().UTC()
	units := map[unitKey]bool{}
	var unitOrder []unitKey
	groups := map[[3]string]*group{}
	var groupOrder []*group
	for _, ch := range changes {
		switch {
		case ch.Type == store.ChangeUnitChanged:
			k := unitKey{ch.AccountID, ch.EventID}
			if !units[k] {
				units[k] = true
				unitOrder = append(unitOrder, k)
			}
		case store.IsEventChange(ch.Type) && ch.CalendarID != "" && ch.EventID != "":
			k := [3]string{ch.AccountID, ch.CalendarID, ch.EventUID}
			g := groups[k]
			if g == nil {
				g = &group{accountID: ch.AccountID, calendarID: ch.CalendarID, uid: ch.EventUID}
				groups[k] = g
				groupOrder = append(groupOrder, g)
			}
			if !slices.Contains(g.ids, ch.EventID) {
				g.ids = append(g.ids, ch.EventID)
			}
			if e := ch.Event; e != nil && (e.RRule != "" || e.RecurrenceID != "") {
				g.recurring = true
			}
		}
	}
	up := &store.ConflictUpdate{}
	for _, k := range unitOrder {
		if err := d.reconcileUnit(ctx, reads, k, now, up); err != nil {
			return nil, err
		}
	}
	// The groups' units, one read per account.
	byAccount := map[string][]string{}
	for _, g := range groupOrder {
		byAccount[g.accountID] = append(byAccount[g.accountID], g.calendarID)
	}
	unitOf := map[[2]string]string{}
	for acct, cals := range byAccount {
		m, err := reads.CalendarUnits(ctx, acct, cals)
		if err != nil {
			return nil, err
		}
		for c, u := range m {
			unitOf[[2]string{acct, c}] = u
		}
	}
	// The groups' units and their calendars, one read of each per
	// account.
	need := map[string][]string{}
	for _, g := range groupOrder {
		if u := unitOf[[2]string{g.accountID, g.calendarID}]; u != "" && !units[unitKey{g.accountID, u}] {
			need[g.accountID] = append(need[g.accountID], u)
		}
	}
	unitByKey := map[unitKey]*store.Unit{}
	calsOf := map[unitKey][]*store.UnitCalendar{}
	for acct, ids := range need {
		slices.Sort(ids)
		ids = slices.Compact(ids)
		us, err := reads.Units(ctx, acct, ids)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			unitByKey[unitKey{acct, u.ID}] = u
		}
		cals, err := reads.UnitCalendars(ctx, acct, ids)
		if err != nil {
			return nil, err
		}
		for _, c := range cals {
			calsOf[unitKey{acct, c.UnitID}] = append(calsOf[unitKey{acct, c.UnitID}], c)
		}
	}
	// Events of calendars in no unit can only end conflicts (their
	// calendar left its unit, or was deleted): one read for them all.
	var loose []string
	for _, g := range groupOrder {
		u := unitOf[[2]string{g.accountID, g.calendarID}]
		switch {
		case u == "":
			loose = append(loose, g.ids...)
		case units[unitKey{g.accountID, u}]:
			// the whole unit was looked at
		default:
			k := unitKey{g.accountID, u}
			if err := d.reconcileGroup(ctx, g, unitByKey[k], calsOf[k], now, up); err != nil {
				return nil, err
			}
		}
	}
	if len(loose) > 0 {
		open, err := d.store.OpenConflicts(ctx, store.OpenConflictsParams{EventIDs: loose})
		if err != nil {
			return nil, err
		}
		d.diff(nil, nil, open, nil, now, up)
	}
	return up, nil
}

// reconcileUnit compares every overlap of a unit with its open conflicts.
func (d *Detector) reconcileUnit(ctx context.Context, reads *stepReads, k unitKey, now time.Time, up *store.ConflictUpdate) error {
	us, err := reads.Units(ctx, k.accountID, []string{k.unitID})
	if err != nil || len(us) == 0 {
		return err // a deleted unit took its conflicts with it
	}
	u := us[0]
	cals, err := reads.UnitCalendars(ctx, k.accountID, []string{u.ID})
	if err != nil {
		return err
	}
	kinds, calByID, ids := calendarIndex(cals)
	rules := RulesOf(u, now.Add(d.horizon))
	events, err := d.store.BlockingEvents(ctx, store.BlockingEventsParams{
		AccountID: k.accountID, CalendarIDs: ids, From: now, To: endOfTime,
	})
	if err != nil {
		return err
	}
	bs, err := Blocks(events, rules, now, endOfTime)
	if err != nil {
		return err
	}
	open, err := d.store.OpenConflicts(ctx, store.OpenConflictsParams{UnitID: u.ID})
	if err != nil {
		return err
	}
	d.diff(u, sweep(bs, kinds), open, calByID, now, up)
	return nil
}

// reconcileGroup compares the overlaps of one UID's events with the open
// conflicts that involve them. u is the unit of the group's calendar
// (nil if it is gone) and cals the unit's calendars.
func (d *Detector) reconcileGroup(ctx context.Context, g *group, u *store.Unit, cals []*store.UnitCalendar, now time.Time,
	up *store.ConflictUpdate) error {
	var subject []*store.Event
	ids := slices.Clone(g.ids)
	kinds, calByID, calIDs := calendarIndex(cals)
	var pairs map[[2]string]*pair
	if u != nil {
		rules := RulesOf(u, now.Add(d.horizon))
		if g.recurring {
			all, err := d.store.BlockingEvents(ctx, store.BlockingEventsParams{
				AccountID: g.accountID, CalendarIDs: []string{g.calendarID}, From: now, To: endOfTime,
			})
			if err != nil {
				return err
			}
			for _, e := range all {
				if e.UID == g.uid {
					subject = append(subject, e)
				}
			}
		} else {
			for _, eid := range g.ids {
				e, err := d.store.Event(ctx, g.accountID, g.calendarID, eid)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				subject = append(subject, e)
			}
		}
		for _, e := range subject {
			if !slices.Contains(ids, e.ID) {
				ids = append(ids, e.ID)
			}
		}
		sb, err := Blocks(subject, rules, now, endOfTime)
		if err != nil {
			return err
		}
		pairs = map[[2]string]*pair{}
		if len(sb) > 0 {
			from, to := sb[0].Start, sb[0].End
			for _, b := range sb {
				to = maxTime(to, b.End)
			}
			// The window reaches a day further each way: another
			// event's turnover extension may reach into it.
			others, err := d.store.BlockingEvents(ctx, store.BlockingEventsParams{
				AccountID: g.accountID, CalendarIDs: calIDs, From: from.Add(-48 * time.Hour), To: to.Add(48 * time.Hour),
			})
			if err != nil {
				return err
			}
			others = slices.DeleteFunc(others, func(e *store.Event) bool {
				return e.CalendarID == g.calendarID && e.UID == g.uid
			})
			ob, err := Blocks(others, rules, maxTime(now, from.Add(-48*time.Hour)), to.Add(48*time.Hour))
			if err != nil {
				return err
			}
			pairs = cross(sb, ob, kinds)
		}
	}
	open, err := d.store.OpenConflicts(ctx, store.OpenConflictsParams{EventIDs: ids})
	if err != nil {
		return err
	}
	d.diff(u, pairs, open, calByID, now, up)
	return nil
}

// calendarIndex returns the kinds of a unit's calendars and the calendars
// by id and their ids.
func calendarIndex(cals []*store.UnitCalendar) (map[string]string, map[string]*store.Calendar, []string) {
	kinds := make(map[string]string, len(cals))
	byID := make(map[string]*store.Calendar, len(cals))
	ids := make([]string, 0, len(cals))
	for _, c := range cals {
		kinds[c.ID], byID[c.ID] = c.Kind, c.Calendar
		ids = append(ids, c.ID)
	}
	return kinds, byID, ids
}

// diff adds to up the pairs that have no open conflict and the open
// conflicts that no pair holds up any more (unless their overlap is in
// the past). A nil u has no pairs.
func (d *Detector) diff(u *store.Unit, pairs map[[2]string]*pair, open []*store.Conflict, cals map[string]*store.Calendar,
	now time.Time, up *store.ConflictUpdate) {
	isOpen := make(map[[2]string]bool, len(open))
	for _, c := range open {
		isOpen[c.Pair()] = true
		if _, ok := pairs[c.Pair()]; ok && u != nil && c.UnitID == u.ID {
			continue
		}
		if !c.OverlapEnd.After(now) {
			continue // a conflict in the past is history, not news
		}
		r := *c
		r.State, r.ResolvedAt = store.ConflictResolved, now
		up.Resolved = append(up.Resolved, &r)
	}
	keys := make([][2]string, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := pairs[a].overlap.Start.Compare(pairs[b].overlap.Start); c != 0 {
			return c
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		return cmp.Compare(a[1], b[1])
	})
	for _, k := range keys {
		p := pairs[k]
		if isOpen[k] && !resolving(up, k) {
			continue
		}
		up.Detected = append(up.Detected, &store.Conflict{
			ID: id.New("cfl"), AccountID: u.AccountID, UnitID: u.ID,
			A: side(p.a, cals), B: side(p.b, cals), State: store.ConflictOpen,
			OverlapStart: p.overlap.Start, OverlapEnd: p.overlap.End, DetectedAt: now,
		})
	}
}

// resolving reports whether up resolves an open conflict of the pair
// (it belonged to another unit): the pair is then detected anew.
func resolving(up *store.ConflictUpdate, k [2]string) bool {
	return slices.ContainsFunc(up.Resolved, func(c *store.Conflict) bool { return c.Pair() == k })
}

// side describes the event of a block for a conflict.
func side(b Block, cals map[string]*store.Calendar) store.ConflictSide {
	e := b.Event
	s := store.ConflictSide{
		CalendarID: e.CalendarID, EventID: e.ID, UID: e.UID, RecurrenceID: e.RecurrenceID,
		Start: b.OccStart, End: b.OccEnd, AllDay: e.AllDay, TimeZone: e.TimeZone, Status: e.Status,
		Recurring: e.RRule != "",
	}
	if c := cals[e.CalendarID]; c != nil {
		s.Kind, s.SourceURL = c.Kind, c.SourceURL
	}
	return s
}

// stepReads remembers, for one step, the unit of each calendar, the units
// and the calendars of each unit it read, so that detection and pings
// read each once; a calendar's unit comes with the unit and all of its
// calendars (Store.CalendarMembership).
type stepReads struct {
	store  Store
	unitOf map[[2]string]string                // (account, calendar) → unit, "" for none
	units  map[[2]string]*store.Unit           // (account, unit) → unit, nil if gone
	cals   map[[2]string][]*store.UnitCalendar // (account, unit) → its calendars
}

func newStepReads(s Store) *stepReads {
	return &stepReads{store: s, unitOf: map[[2]string]string{}, units: map[[2]string]*store.Unit{},
		cals: map[[2]string][]*store.UnitCalendar{}}
}

// CalendarUnits is Store.CalendarUnits, reading only calendars not read
// before in the step; it remembers their units and the units' calendars
// too.
func (r *stepReads) CalendarUnits(ctx context.Context, accountID string, calendarIDs []string) (map[string]string, error) {
	var missing []string
	for _, c := range calendarIDs {
		if _, ok := r.unitOf[[2]string{accountID, c}]; !ok && !slices.Contains(missing, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		m, err := r.store.CalendarMembership(ctx, accountID, missing)
		if err != nil {
			return nil, err
		}
		for _, c := range missing {
			r.unitOf[[2]string{accountID, c}] = "" // unless among the members below
		}
		for _, u := range m.Units {
			r.units[[2]string{accountID, u.ID}] = u
			r.cals[[2]string{accountID, u.ID}] = []*store.UnitCalendar{}
		}
		for _, c := range m.Calendars {
			k := [2]string{accountID, c.UnitID}
			r.unitOf[[2]string{accountID, c.ID}] = c.UnitID
			r.cals[k] = append(r.cals[k], c)
		}
	}
	out := make(map[string]string, len(calendarIDs))
	for _, c := range calendarIDs {
		if u := r.unitOf[[2]string{accountID, c}]; u != "" {
			out[c] = u
		}
	}
	return out, nil
}

// Units is Store.UnitsByID, reading only units not read before in the
// step.
func (r *stepReads) Units(ctx context.Context, accountID string, unitIDs []string) ([]*store.Unit, error) {
	var missing []string
	for _, u := range unitIDs {
		if _, ok := r.units[[2]string{accountID, u}]; !ok && !slices.Contains(missing, u) {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		us, err := r.store.UnitsByID(ctx, accountID, missing)
		if err != nil {
			return nil, err
		}
		for _, u := range missing {
			r.units[[2]string{accountID, u}] = nil
		}
		for _, u := range us {
			r.units[[2]string{accountID, u.ID}] = u
		}
	}
	var out []*store.Unit
	for _, u := range unitIDs {
		if x := r.units[[2]string{accountID, u}]; x != nil && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out, nil
}

// UnitCalendars is Store.UnitCalendars, reading only units not read
// before in the step; the calendars come unit by unit, each unit's in
// creation order.
func (r *stepReads) UnitCalendars(ctx context.Context, accountID string, unitIDs []string) ([]*store.UnitCalendar, error) {
	var missing []string
	for _, u := range unitIDs {
		if _, ok := r.cals[[2]string{accountID, u}]; !ok && !slices.Contains(missing, u) {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		cals, err := r.store.UnitCalendars(ctx, accountID, missing)
		if err != nil {
			return nil, err
		}
		for _, u := range missing {
			r.cals[[2]string{accountID, u}] = []*store.UnitCalendar{}
		}
		for _, c := range cals {
			k := [2]string{accountID, c.UnitID}
			r.cals[k] = append(r.cals[k], c)
		}
	}
	var out []*store.UnitCalendar
	seen := map[string]bool{}
	for _, u := range unitIDs {
		if !seen[u] {
			seen[u] = true
			out = append(out, r.cals[[2]string{accountID, u}]...)
		}
	}
	return out, nil
}
