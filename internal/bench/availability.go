package bench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
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
	log.Info("push to conflict", "samples", len(push), "p50_ms", round2(pctOf(push, 50)), "p99_ms", round2(pctOf(push, 99)))
	unitInfo := map[string]any{"calendars": cfg.Calendars, "events_per_calendar": cfg.Events, "samples": cfg.Changes}
	return []Result{
		{Scenario: availabilityName, Metric: "detect_p50_ms", Value: round2(pctOf(in.detect, 50)), Unit: "ms", Info: unitInfo},
		{Scenario: availabilityName, Metric: "detect_p99_ms", Value: round2(pctOf(in.detect, 99)), Unit: "ms",
			Target: targetOf(detectTargetMS), Info: unitInfo},
		{Scenario: availabilityName, Metric: "year_query_p99_ms", Value: round2(pctOf(in.year, 99)), Unit: "ms",
			Target: targetOf(yearQueryTargetMS), Info: unitInfo},
		{Scenario: availabilityName, Metric: "many_units_month_p99_ms", Value: round2(pctOf(in.many, 99)), Unit: "ms",
			Target: targetOf(manyUnitsTargetMS), Info: map[string]any{"units": cfg.Units, "samples": len(in.many)}},
		{Scenario: availabilityName, Metric: "push_to_conflict_p50_ms", Value: round2(pctOf(push, 50)), Unit: "ms",
			Info: map[string]any{"samples": len(push)}},
		{Scenario: availabilityName, Metric: "push_to_conflict_p99_ms", Value: round2(pctOf(push, 99)), Unit: "ms",
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

// inProcess is what the in-process part measured, in ms.
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

// measurePushConflict runs the real binary: each sample adds a booking to
// an imported feed that overlaps a native booking, pushes it with iCal
// Hooks and times the conflict webhook.
func measurePushConflict(ctx context.Context, cfg Config, env *webhookEnv) ([]float64, error) {
	feeds, err := newUpstreamFeeds()
	if err != nil {
		return nil, err
	}
	defer feeds.Close()
	rcv := env.rcv
	rcv.reset(true)
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
	secret, err := api.createAccountSubscription(ctx, acc.APIKey, rcv.URL+"/conflicts", "availability.conflict.detected")
	if err != nil {
		return nil, err
	}
	rcv.addEndpoint("/conflicts", secret)
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
		if _, err := waitArrival(ctx, rcv, "seed-"+strconv.Itoa(i), srv.proc); err != nil {
			return nil, fmt.Errorf("first import of %s: %w; calhook log: %s", p, err, srv.logTail(20))
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var out []float64
	for k := range cfg.Changes {
		t0, at, err := pushSample(ctx, client, feeds, rcv, srv.proc, paths[k%len(paths)], fmt.Sprintf("push-%d@channel", k))
		if err != nil {
			return nil, err
		}
		out = append(out, ms(at.Sub(t0)))
		if err := sleepCtx(ctx, pushPace); err != nil {
			return nil, err
		}
	}
	if st, _, problem := rcv.stats(); st.errors() > 0 {
		return nil, fmt.Errorf("%d unexpected webhooks at the conflict receiver: %s", st.errors(), problem)
	}
	return out, nil
}
