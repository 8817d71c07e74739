package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/availability"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

// Settings and targets of the availability scenario.
const (
	availabilityName = "availability"
	// DefaultAvailabilityCalendars and DefaultAvailabilityEvents shape the
	// big unit: that many calendars of that many events each.
	DefaultAvailabilityCalendars = 10
	DefaultAvailabilityEvents    = 1000
	// DefaultAvailabilityUnits is how many units the many-unit query
	// names.
	DefaultAvailabilityUnits = 500
	// DefaultAvailabilitySamples is how many changes, queries and pushes
	// each part measures.
	DefaultAvailabilitySamples = 200
	// Targets, in milliseconds.
	detectTargetMS      = 1
	yearQueryTargetMS   = 5
	manyUnitsTargetMS   = 50
	pushConflictTargetM = 50
	// conflictCalendars spreads the pushed bookings over imported
	// calendars, as import-latency does, so that no calendar is pinged
	// twice within calhook's coalescing window.
	conflictCalendars = 20
)

// availabilityFlags registers the flags of availability.
func availabilityFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Calendars, "calendars", DefaultAvailabilityCalendars, "calendars of the big unit")
	fs.IntVar(&cfg.Events, "events", DefaultAvailabilityEvents, "events of each calendar of the big unit")
	fs.IntVar(&cfg.Units, "units", DefaultAvailabilityUnits, "units of the many-unit query")
	fs.IntVar(&cfg.Changes, "samples", DefaultAvailabilitySamples, "changes, queries and pushes measured in each part")
}

// runAvailability is the availability scenario, in two parts.
//
// In process, on a SQLite file: a unit of --calendars calendars of
// --events stays each (none overlapping). detect_p99_ms is the time the
// conflict detector (its detection and export-ping steps) takes for one
// change, each change an event moved within its calendar;
// year_query_p99_ms is the availability query of that unit over one year;
// many_units_month_p99_ms the query of --units small units over a month.
//
// On the real binary: a unit with a native calendar booked every day and
// 20 imported calendars served by the bench, which pushes each new
// overlapping booking with iCal Hooks; push_to_conflict_p99_ms is the time
// from the upstream change to the availability.conflict.detected webhook
// at a loopback receiver.
func runAvailability(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.Calendars = cmpOrInt(cfg.Calendars, DefaultAvailabilityCalendars)
	cfg.Events = cmpOrInt(cfg.Events, DefaultAvailabilityEvents)
	cfg.Units = cmpOrInt(cfg.Units, DefaultAvailabilityUnits)
	cfg.Changes = cmpOrInt(cfg.Changes, DefaultAvailabilitySamples)
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, availabilityName, 1)
	if err != nil {
		return nil, err
	}
	defer env.close()
	log := env.log

	in, err := measureInProcess(ctx, cfg, env.dir, log.Info)
	if err != nil {
		return nil, err
	}
	push, err := measurePushConflict(ctx, cfg, env)
	if err != nil {
		return nil, fmt.Errorf("push to conflict: %w", err)
	}
	slices.Sort(push)
	log.Info("push to conflict", "samples", len(push), "p50_ms", round2(percentile(push, 50)), "p99_ms", round2(percentile(push, 99)))
	unitInfo := map[string]any{"calendars": cfg.Calendars, "events_per_calendar": cfg.Events, "samples": cfg.Changes}
	return []Result{
		{Scenario: availabilityName, Metric: "detect_p50_ms", Value: round2(percentile(in.detect, 50)), Unit: "ms", Info: unitInfo},
		{Scenario: availabilityName, Metric: "detect_p99_ms", Value: round2(percentile(in.detect, 99)), Unit: "ms",
			Target: targetOf(detectTargetMS), Info: unitInfo},
		{Scenario: availabilityName, Metric: "year_query_p99_ms", Value: round2(percentile(in.year, 99)), Unit: "ms",
			Target: targetOf(yearQueryTargetMS), Info: unitInfo},
		{Scenario: availabilityName, Metric: "many_units_month_p99_ms", Value: round2(percentile(in.many, 99)), Unit: "ms",
			Target: targetOf(manyUnitsTargetMS), Info: map[string]any{"units": cfg.Units, "samples": len(in.many)}},
		{Scenario: availabilityName, Metric: "push_to_conflict_p50_ms", Value: round2(percentile(push, 50)), Unit: "ms",
			Info: map[string]any{"samples": len(push)}},
		{Scenario: availabilityName, Metric: "push_to_conflict_p99_ms", Value: round2(percentile(push, 99)), Unit: "ms",
			Target: targetOf(pushConflictTargetM), Info: map[string]any{"samples": len(push)}},
		hostResult(availabilityName),
	}, nil
}

func cmpOrInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// inProcess is what the in-process part measured, each sorted, in ms.
type inProcess struct {
	detect, year, many []float64
}

// benchNow is the clock of the in-process part: the stays are after it.
var benchNow = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func measureInProcess(ctx context.Context, cfg Config, dir string, logf func(string, ...any)) (*inProcess, error) {
	db, err := sqlite.Open(ctx, filepath.Join(dir, "availability.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	now := func() time.Time { return benchNow }
	acct := &store.Account{ID: id.New("acc"), Name: "bench", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: benchNow, UpdatedAt: benchNow}
	if err := db.CreateAccount(ctx, acct); err != nil {
		return nil, err
	}
	svc := availability.NewService(db, availability.Options{Now: now})
	det := availability.NewDetector(availability.DetectorConfig{Store: db, Now: now})
	name := "Big"
	unit, err := svc.CreateUnit(ctx, acct.ID, availability.UnitInput{Name: &name})
	if err != nil {
		return nil, err
	}
	// Calendar c's stay i is the night of day 2(i*calendars+c)+1: the
	// calendars interleave, with a free night after each stay.
	var events [][]*store.Event
	for c := range cfg.Calendars {
		cal, err := benchCalendar(ctx, db, svc, acct.ID, unit.ID, "Channel "+strconv.Itoa(c))
		if err != nil {
			return nil, err
		}
		var evs []*store.Event
		for i := range cfg.Events {
			day := benchNow.AddDate(0, 0, 1+2*(i*cfg.Calendars+c))
			e := benchStay(acct.ID, cal.ID, fmt.Sprintf("c%d-%d", c, i), day, day.AddDate(0, 0, 1))
			if _, err := db.CreateEvent(ctx, e); err != nil {
				return nil, err
			}
			evs = append(evs, e)
		}
		events = append(events, evs)
	}
	if err := catchUp(ctx, det); err != nil {
		return nil, err
	}
	logf("big unit stored", "calendars", cfg.Calendars, "events", cfg.Calendars*cfg.Events)

	out := &inProcess{}
	// One change at a time: a stay moves into the free night after it
	// and back (touching its neighbours, overlapping none), then the
	// detector's step for it is timed.
	for k := range cfg.Changes {
		e := events[(k/2)%cfg.Calendars][(k/2*7919)%cfg.Events]
		shift := 1
		if k%2 == 1 {
			shift = -1
		}
		e.UpdatedAt = e.UpdatedAt.Add(time.Second)
		e.Start, e.End = e.Start.AddDate(0, 0, shift), e.End.AddDate(0, 0, shift)
		if _, err := db.UpdateEvent(ctx, e); err != nil {
			return nil, err
		}
		t0 := time.Now()
		res, err := det.RunOnce(ctx)
		if err != nil {
			return nil, err
		}
		out.detect = append(out.detect, ms(time.Since(t0)))
		if res.Changes != 1 || res.Detected != 0 {
			return nil, fmt.Errorf("detector step read %d changes and found %d conflicts; want 1 and 0", res.Changes, res.Detected)
		}
	}
	logf("detection", "p50_ms", round2(median(out.detect)))

	span := 2 * cfg.Calendars * cfg.Events
	for k := range cfg.Changes {
		from := benchNow.AddDate(0, 0, (k*97)%max(1, span-365))
		t0 := time.Now()
		if _, err := svc.Availability(ctx, acct.ID, []string{unit.ID}, from, from.AddDate(1, 0, 0)); err != nil {
			return nil, err
		}
		out.year = append(out.year, ms(time.Since(t0)))
	}
	logf("year query", "p50_ms", round2(median(out.year)))

	// Many small units: two calendars each, a stay a week in each.
	var ids []string
	for u := range cfg.Units {
		n := "Room " + strconv.Itoa(u)
		small, err := svc.CreateUnit(ctx, acct.ID, availability.UnitInput{Name: &n})
		if err != nil {
			return nil, err
		}
		ids = append(ids, small.ID)
		for c := range 2 {
			cal, err := benchCalendar(ctx, db, svc, acct.ID, small.ID, n+" channel "+strconv.Itoa(c))
			if err != nil {
				return nil, err
			}
			for w := range 5 {
				day := benchNow.AddDate(0, 1, 7*w+3*c)
				if _, err := db.CreateEvent(ctx, benchStay(acct.ID, cal.ID, fmt.Sprintf("u%d-%d-%d", u, c, w), day, day.AddDate(0, 0, 2))); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := catchUp(ctx, det); err != nil {
		return nil, err
	}
	month := benchNow.AddDate(0, 1, 0)
	for range max(10, cfg.Changes/10) {
		t0 := time.Now()
		res, err := svc.Availability(ctx, acct.ID, ids, month, month.AddDate(0, 1, 0))
		if err != nil {
			return nil, err
		}
		out.many = append(out.many, ms(time.Since(t0)))
		if len(res) != len(ids) {
			return nil, fmt.Errorf("many-unit query answered %d units; want %d", len(res), len(ids))
		}
	}
	logf("many-unit query", "units", len(ids), "p50_ms", round2(median(out.many)))
	slices.Sort(out.detect)
	slices.Sort(out.year)
	slices.Sort(out.many)
	return out, nil
}

func benchCalendar(ctx context.Context, db store.Store, svc *availability.Service, accountID, unitID, name string) (*store.Calendar, error) {
	cal := &store.Calendar{ID: id.New("cal"), AccountID: accountID, Name: name, TimeZone: "UTC", Kind: store.KindNative,
		CreatedAt: benchNow, UpdatedAt: benchNow}
	if err := db.CreateCalendar(ctx, cal); err != nil {
		return nil, err
	}
	return cal, svc.SetCalendarUnit(ctx, accountID, cal.ID, unitID)
}

func benchStay(accountID, calendarID, uid string, start, end time.Time) *store.Event {
	return &store.Event{
		ID: id.New("evt"), AccountID: accountID, CalendarID: calendarID, UID: uid, Summary: "Stay",
		Start: start, End: end, AllDay: true, Status: store.StatusConfirmed, CreatedAt: benchNow, UpdatedAt: benchNow,
	}
}

// catchUp runs the detector until it has read the whole change log.
func catchUp(ctx context.Context, det *availability.Detector) error {
	for {
		res, err := det.RunOnce(ctx)
		if err != nil {
			return err
		}
		if res.Changes == 0 {
			return nil
		}
	}
}

// conflictReceiver records when the first conflict webhook naming each
// event UID arrived.
type conflictReceiver struct {
	URL string
	srv *http.Server

	mu      sync.Mutex
	arrived map[string]time.Time
	bad     int
}

func newConflictReceiver() (*conflictReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cr := &conflictReceiver{URL: "http://" + ln.Addr().String(), arrived: map[string]time.Time{}}
	cr.srv = &http.Server{Handler: cr, ReadHeaderTimeout: 10 * time.Second}
	go cr.srv.Serve(ln)
	return cr, nil
}

func (cr *conflictReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var p struct {
		EventType string `json:"eventType"`
		Data      struct {
			Events []struct {
				UID string `json:"uid"`
			} `json:"events"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(r.Body)
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if err := json.Unmarshal(body, &p); err != nil || p.EventType != "availability.conflict.detected" {
		cr.bad++
	}
	for _, e := range p.Data.Events {
		if _, ok := cr.arrived[e.UID]; !ok {
			cr.arrived[e.UID] = at
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (cr *conflictReceiver) arrival(uid string) (time.Time, bool) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	t, ok := cr.arrived[uid]
	return t, ok
}

func (cr *conflictReceiver) waitArrival(ctx context.Context, uid string) (time.Time, error) {
	deadline := time.Now().Add(sampleTimeout)
	for {
		if at, ok := cr.arrival(uid); ok {
			return at, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no conflict webhook for %s within %v", uid, sampleTimeout)
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// measurePushConflict runs the real binary: each sample adds a booking to
// an imported feed that overlaps a native booking, pushes it with iCal
// Hooks and times the conflict webhook.
func measurePushConflict(ctx context.Context, cfg Config, env *webhookEnv) ([]float64, error) {
	feeds, err := newUpstreamFeeds()
	if err != nil {
		return nil, err
	}
	defer feeds.Close()
	rcv, err := newConflictReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.srv.Close()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := startCalhookAt(ctx, env.bin, filepath.Join(env.dir, "server"), addr,
		"--log-level", "warn", "--public-url", "http://"+addr,
		"--allow-http-feeds", "--allow-http-webhooks", "--allow-private-cidr", "127.0.0.1/32")
	if err != nil {
		return nil, err
	}
	defer env.stopCalhook(srv)
	api := newAPIClient(srv.baseURL, 8)
	acc, err := api.createAccount(ctx, srv.adminToken, "calhookbench")
	if err != nil {
		return nil, err
	}
	var unit struct{ ID string }
	if err := api.do(ctx, http.MethodPost, "/v1/units", acc.APIKey, map[string]string{"name": "Bench unit"}, &unit, http.StatusCreated); err != nil {
		return nil, err
	}
	in := map[string]any{"webhookUrl": rcv.URL + "/conflicts", "eventTypes": []string{"availability.conflict.detected"}}
	if err := api.do(ctx, http.MethodPost, "/v1/subscriptions", acc.APIKey, in, nil, http.StatusCreated); err != nil {
		return nil, err
	}
	attach := func(calID string) error {
		return api.do(ctx, http.MethodPatch, "/v1/calendars/"+calID, acc.APIKey, map[string]any{"unitId": unit.ID}, nil, http.StatusOK)
	}
	// The native calendar is booked 10:00-12:00 UTC every day the feeds
	// use (see benchFeed.render): every upstream booking conflicts.
	native, err := api.createCalendar(ctx, acc.APIKey, "Direct", "UTC")
	if err != nil {
		return nil, err
	}
	if err := attach(native.ID); err != nil {
		return nil, err
	}
	days := cfg.Changes/conflictCalendars + 2
	var bookings []eventInput
	for d := range days {
		start := time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC).AddDate(0, 0, d)
		bookings = append(bookings, eventInput{UID: "direct-" + strconv.Itoa(d), Summary: "Direct",
			Start: start.Format(time.RFC3339), End: start.Add(2 * time.Hour).Format(time.RFC3339)})
	}
	if err := api.createEvents(ctx, acc.APIKey, native.ID, bookings, 4); err != nil {
		return nil, err
	}
	var paths []string
	for i := range conflictCalendars {
		p := "/channel/" + strconv.Itoa(i) + ".ics"
		feeds.add(p, []string{"seed-" + strconv.Itoa(i)}, false)
		paths = append(paths, p)
		cal, err := api.createImported(ctx, acc.APIKey, "Channel "+strconv.Itoa(i), feeds.URL+p, time.Hour)
		if err != nil {
			return nil, err
		}
		if err := attach(cal.ID); err != nil {
			return nil, err
		}
	}
	// Each seed conflicts with the direct booking of day 0: its webhook
	// says the first import is done and the feed knows its hook URL.
	for i, p := range paths {
		if _, err := rcv.waitArrival(ctx, "seed-"+strconv.Itoa(i)); err != nil {
			return nil, fmt.Errorf("first import of %s: %w; calhook log: %s", p, err, srv.logTail(20))
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var out []float64
	for k := range cfg.Changes {
		p := paths[k%len(paths)]
		uid := fmt.Sprintf("push-%d@channel", k)
		t0 := time.Now()
		hook := feeds.addEvent(p, uid)
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, hook, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("push %s: %w", hook, err)
		}
		resp.Body.Close()
		at, err := rcv.waitArrival(ctx, uid)
		if err != nil {
			return nil, err
		}
		out = append(out, ms(at.Sub(t0)))
		if err := sleepCtx(ctx, pushPace); err != nil {
			return nil, err
		}
	}
	rcv.mu.Lock()
	bad := rcv.bad
	rcv.mu.Unlock()
	if bad > 0 {
		return nil, fmt.Errorf("%d unexpected webhooks at the conflict receiver", bad)
	}
	return out, nil
}
