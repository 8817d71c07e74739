package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/storetest"
)

// postgresURL returns the test database's URL, or skips the test.
func postgresURL(t *testing.T) string {
	t.Helper()
	return storetest.PostgresURL(t)
}

func TestStore(t *testing.T) {
	u := postgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenPostgres(t, u) })
}

// open opens a store on an existing schema URL, as a second node would.
func open(t *testing.T, schemaURL string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), schemaURL, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// connect opens a plain connection, for playing another client.
func connect(t *testing.T, schemaURL string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, schemaURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// migrationCount returns how many migrations there are and the number
// of the newest: numbers may have gaps while branches that take the
// numbers between are not merged yet.
func migrationCount(t *testing.T) (count, newest int) {
	t.Helper()
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		n, err := strconv.Atoi(strings.SplitN(f.Name(), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s has no number: %v", f.Name(), err)
		}
		newest = max(newest, n)
	}
	return len(files), newest
}

// TestMigrateConcurrently starts four nodes on a fresh schema at once: all
// must come up, and each migration must have run exactly once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchema(t, postgresURL(t))
	const nodes = 4
	var wg sync.WaitGroup
	dbs := make([]*postgres.DB, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dbs[i], errs[i] = postgres.Open(context.Background(), u, nil)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open on node %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	want, newest := migrationCount(t)
	var rows, distinct int
	err := connect(t, u).QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != want || distinct != want {
		t.Errorf("schema_migrations has %d rows (%d versions); want %d, one per migration", rows, distinct, want)
	}
	if errs[0] == nil {
		if v, err := dbs[0].SchemaVersion(context.Background()); err != nil || v != newest {
			t.Errorf("SchemaVersion = %d, %v; want %d", v, err, newest)
		}
		if err := dbs[0].Migrate(context.Background()); err != nil {
			t.Errorf("Migrate again: %v", err)
		}
	}
}

// TestOpenSchemaMigratedBefore opens a schema migrated the way calhook
// did before the shared runner (each file applied and recorded with that
// runner's statements): the records must be read as they are, so Open
// applies nothing again (a second CREATE TABLE would fail) and keeps them.
func TestOpenSchemaMigratedBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	conn := connect(t, u)
	files, newest := applyRaw(t, conn, 1<<30)
	db, err := postgres.Open(ctx, u, nil)
	if err != nil {
		t.Fatalf("Open on a schema migrated before: %v", err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != newest {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, newest)
	}
	var rows, kept int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE applied_at = '2026-01-01Z') FROM schema_migrations`).
		Scan(&rows, &kept); err != nil {
		t.Fatal(err)
	}
	if rows != files || kept != files {
		t.Errorf("schema_migrations has %d rows, %d as recorded before; want %d, all kept", rows, kept, files)
	}
}

// applyRaw applies the migration files below version upTo on conn, each
// recorded as applied on 2026-01-01, the way calhook did before the
// shared runner. It returns how many it applied and the newest version.
func applyRaw(t *testing.T, conn *pgx.Conn, upTo int) (applied, newest int) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		version, err := strconv.Atoi(strings.SplitN(f.Name(), "_", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		if version >= upTo {
			continue
		}
		body, err := os.ReadFile(filepath.Join("migrations", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body)); err != nil {
			t.Fatalf("apply %s: %v", f.Name(), err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, '2026-01-01Z')`,
			version, f.Name()); err != nil {
			t.Fatal(err)
		}
		applied, newest = applied+1, max(newest, version)
	}
	return applied, newest
}

// TestUpgradeAttemptsBySeq opens a schema whose attempts name their
// messages by id (before migration 21): every attempt is kept, under its
// message's seq, and reads back as the message's.
func TestUpgradeAttemptsBySeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	conn := connect(t, u)
	applyRaw(t, conn, 21)
	// Without foreign key triggers: the messages need no account or
	// subscription.
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	for i, m := range storetest.UpgradedAttempts {
		if _, err := conn.Exec(ctx, `INSERT INTO messages (id, account_id, subscription_id, change_id, event_type, payload,
			created_at, updated_at) VALUES ($1, 'acc', 'sub', $2, 'calendar.event.created', '{}', now(), now())`,
			m.MessageID, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range storetest.UpgradedAttemptOrder {
		if _, err := conn.Exec(ctx, `INSERT INTO attempts (message_id, delivery_id, attempted_at, status_code)
			VALUES ($1, 'dlv', now(), $2)`, a.MessageID, a.Code); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `SET session_replication_role = DEFAULT`); err != nil {
		t.Fatal(err)
	}
	db := open(t, u)
	storetest.CheckUpgradedAttempts(t, db)
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback refuses at once.
	if _, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", nil); err == nil {
		t.Errorf("Open(unreachable) = nil error; want one")
	}
}

type fixture struct {
	account  *store.Account
	calendar *store.Calendar
}

var base = time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, s store.Store) fixture {
	t.Helper()
	ctx := context.Background()
	a := &store.Account{ID: id.New("acc"), Name: "T", APIKeyHash: id.HashKey(id.APIKey()), FeedToken: id.FeedToken(),
		CreatedAt: base, UpdatedAt: base}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	c := &store.Calendar{ID: id.New("cal"), AccountID: a.ID, Name: "C", TimeZone: "UTC", Kind: store.KindNative,
		CreatedAt: base, UpdatedAt: base}
	if err := s.CreateCalendar(ctx, c); err != nil {
		t.Fatalf("CreateCalendar: %v", err)
	}
	return fixture{a, c}
}

// newEvent returns a new event of the fixture's calendar.
func (f fixture) newEvent() *store.Event {
	return &store.Event{ID: id.New("evt"), AccountID: f.account.ID, CalendarID: f.calendar.ID, UID: id.New("uid"),
		Summary: "x", Start: base, End: base.Add(time.Hour), Status: store.StatusConfirmed, CreatedAt: base, UpdatedAt: base}
}

func (f fixture) event(t *testing.T, s store.Store) *store.Change {
	t.Helper()
	ch, err := s.CreateEvent(context.Background(), f.newEvent())
	if err != nil {
		t.Fatalf("CreateEvent: %v", err)
	}
	return ch
}

// holdChange begins a transaction on its own connection to u that appends
// a change of the fixture's calendar, of type typ, and stays open: a
// writer in flight. The test commits it or leaves it to roll back.
func (f fixture) holdChange(t *testing.T, u, typ string) (pgx.Tx, *store.Change) {
	t.Helper()
	ctx := context.Background()
	tx, err := connect(t, u).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	var ch store.Change
	if err := tx.QueryRow(ctx, `INSERT INTO changes (account_id, calendar_id, event_id, event_uid, type, event, occurred_at)
		VALUES ($1, $2, '', '', $3, '{}', now()) RETURNING id, xid`,
		f.account.ID, f.calendar.ID, typ).Scan(&ch.ID, &ch.TxID); err != nil {
		t.Fatal(err)
	}
	return tx, &ch
}

// hookParams registers a hook of the fixture's calendar feed, served at
// version served.
func (f fixture) hookParams(served int64) store.RegisterHookParams {
	return store.RegisterHookParams{
		Hook: store.Hook{AccountID: f.account.ID, CalendarID: f.calendar.ID, URL: "https://example.com/hook",
			Host: "example.com", TokenHash: "t", ServedVersion: served},
		Count: []store.HookScope{store.HooksOfFeed, store.HooksOfToken, store.HooksOfHost},
		Admit: func(counts []int) error {
			if slices.Max(counts) >= 10 {
				return errors.New("too many hooks")
			}
			return nil
		},
		Ping: func(h *store.Hook, changeID int64) *store.Message {
			return &store.Message{ID: id.UUID(), AccountID: h.AccountID, HookID: h.ID, ChangeID: changeID,
				EventType: store.PingEventType, Payload: []byte("feed"), NextAttemptAt: base, CreatedAt: base}
		},
		Now: base,
	}
}

// registerServed registers a hook of the fixture's calendar feed as served
// at its current version; the hook must be armed, unpinged.
func (f fixture) registerServed(t *testing.T, db *postgres.DB) *store.Hook {
	t.Helper()
	ctx := context.Background()
	st, err := db.FeedVersion(ctx, f.account.ID, f.calendar.ID)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := db.RegisterHook(ctx, f.hookParams(st.Version))
	if err != nil || reg.Pinged || !reg.Hook.Armed {
		t.Fatalf("RegisterHook = %+v, %v; want armed, no ping", reg, err)
	}
	return reg.Hook
}

// recv waits for want on ch, skipping other values.
func recv(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q notification within 10 s", want)
		}
	}
}

// listen runs db.Listen until the test ends and returns what its callbacks
// report: "account:calendar" for changes, "messages" for messages.
func listen(t *testing.T, db *postgres.DB) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1000)
	send := func(s string) {
		select {
		case got <- s:
		default: // the test reads what it needs; never block Listen
		}
	}
	done := make(chan error, 1)
	go func() {
		bus := &notify.Bus{}
		bus.FeedsChanged.Subscribe(func(c notify.FeedChange) {
			s := c.AccountID + ":" + c.CalendarID
			if c.Calendar {
				s += " (calendar)"
			}
			send(s)
		})
		bus.MessagesDue.Subscribe(func(notify.Due) { send("messages") })
		done <- db.Listen(ctx, bus)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Listen = %v; want nil after cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Listen did not return after its context ended")
		}
	})
	recv(t, got, ":") // connected: "anything may have changed"
	return got
}

// TestListen checks that a write through one node's pool reaches another
// node's listener.
func TestListen(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchema(t, postgresURL(t))
	writer, listener := open(t, u), open(t, u)
	got := listen(t, listener)
	f := newFixture(t, writer)
	recv(t, got, f.account.ID+":"+f.calendar.ID+" (calendar)")
	ch := f.event(t, writer)
	recv(t, got, f.account.ID+":"+f.calendar.ID)

	sub := &store.Subscription{ID: id.New("sub"), AccountID: f.account.ID, URL: "https://example.com/", Secret: "s",
		CreatedAt: base, UpdatedAt: base}
	if err := writer.CreateSubscription(context.Background(), sub, nil); err != nil {
		t.Fatal(err)
	}
	storetest.FanOut(t, writer, func(changes []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, c := range changes {
			if c.ID == ch.ID {
				msgs = append(msgs, message(sub, c, base))
			}
		}
		return msgs
	})
	recv(t, got, "messages")

	if err := writer.SetFeedToken(context.Background(), f.account.ID, id.FeedToken(), base); err != nil {
		t.Fatal(err)
	}
	recv(t, got, f.account.ID+":")
}

// TestNotesRideOnLaterWrites checks that notifications queued within a
// window go out with the next write after it, and that the queued ones a
// write took go back when its commit fails, to go out with the next.
func TestNotesRideOnLaterWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	app := "calhook_test_" + id.New("n")
	writer, listener := open(t, u+"&application_name="+app), open(t, u)
	var failNext atomic.Bool
	kill := connect(t, u)
	writer.PauseBeforeCommit(func() {
		if failNext.Swap(false) {
			var killed int
			if err := kill.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
				WHERE application_name = $1 AND state = 'idle in transaction'`, app).Scan(&killed); err != nil || killed != 1 {
				t.Errorf("kill the committing connection: killed %d, %v", killed, err)
			}
		}
	})
	got := listen(t, listener)
	f1, f2, f3 := newFixture(t, writer), newFixture(t, writer), newFixture(t, writer)
	key := func(f fixture) string { return f.account.ID + ":" + f.calendar.ID }

	recv(t, got, key(f3)+" (calendar)") // the notifier has sent everything
	// Nothing goes out alone: only writes carry notifications.
	writer.SetNotifyWindow(time.Hour, time.Hour)
	writer.EndNotifyWindow()
	f1.event(t, writer)
	recv(t, got, key(f1))
	f2.event(t, writer) // within the window: queued

	writer.EndNotifyWindow()
	failNext.Store(true)
	if _, err := writer.CreateEvent(ctx, f3.newEvent()); err == nil {
		t.Fatal("CreateEvent committed on a terminated connection")
	}
	select {
	case n := <-got:
		if n == key(f2) {
			t.Fatalf("%s was notified by a write that did not commit (f1 %s, f3 %s)", n, key(f1), key(f3))
		}
	case <-time.After(100 * time.Millisecond):
	}

	writer.EndNotifyWindow()
	f1.event(t, writer)
	recv(t, got, key(f2))
}

// TestListenReconnects kills the listening connection and checks that
// Listen comes back, says so, and receives again.
func TestListenReconnects(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchema(t, postgresURL(t))
	app := "calhook_test_" + id.New("l")
	listenerURL := u + "&application_name=" + app
	writer, listener := open(t, u), open(t, listenerURL)
	got := listen(t, listener)

	var killed int
	err := connect(t, u).QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listening connections, %v; want 1", killed, err)
	}
	recv(t, got, ":") // reconnected
	f := newFixture(t, writer)
	recv(t, got, f.account.ID+":"+f.calendar.ID+" (calendar)")
}

// message is a webhook of ch for sub, due at due.
func message(sub *store.Subscription, ch *store.Change, due time.Time) *store.Message {
	return &store.Message{ID: id.UUID(), AccountID: ch.AccountID, SubscriptionID: sub.ID, ChangeID: ch.ID,
		EventType: ch.Type, Payload: []byte(`{}`), NextAttemptAt: due, CreatedAt: due}
}

// readIDs runs one fan-out step that stores nothing and returns the ids of
// the changes it read.
func readIDs(t *testing.T, db *postgres.DB) ([]int64, store.FanOutResult) {
	t.Helper()
	var ids []int64
	res, err := db.FanOut(context.Background(), store.FanOutCursor, 100, func(_ context.Context, changes []*store.Change) ([]*store.Message, error) {
		for _, ch := range changes {
			ids = append(ids, ch.ID)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("FanOut: %v", err)
	}
	return ids, res
}

// TestFanOutWaitsForInFlightWriters plays a writer that holds change id n
// uncommitted while another commits n+1: the fan-out must not move past n
// until it commits, or it would skip n for good; it says it left the
// committed n+1 unread (Unsettled) so that its loop comes back.
func TestFanOutWaitsForInFlightWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	db := open(t, u)
	slow, fast := newFixture(t, db), newFixture(t, db)
	readIDs(t, db) // past the setup's changes (none, but the step must run)

	tx, held := slow.holdChange(t, u, store.ChangeSyncFailed)
	inflight := held.ID
	later := fast.event(t, db)
	if later.ID <= inflight {
		t.Fatalf("committed change %d is not after the in-flight %d", later.ID, inflight)
	}
	ids, res := readIDs(t, db)
	if len(ids) != 0 || !res.Unsettled {
		t.Fatalf("FanOut while change %d was in flight = %v, %+v; want nothing read, unsettled", inflight, ids, res)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var all []int64
	for deadline := time.Now().Add(10 * time.Second); len(all) < 2 && time.Now().Before(deadline); {
		ids, _ := readIDs(t, db)
		all = append(all, ids...)
	}
	if fmt.Sprint(all) != fmt.Sprint([]int64{inflight, later.ID}) {
		t.Errorf("FanOut after the commit read %v; want %d, then %d (in commit order)", all, inflight, later.ID)
	}
}

// TestListChangesWaitsForInFlightWriters plays a writer that holds a
// change of a calendar uncommitted while a later write of the same
// calendar commits: ListChanges must not list the later one first, or a
// client following its cursor would skip the earlier one for good. It
// waits (up to its bound) for the writer, then lists what is settled; once
// the writer commits, both follow in (xid, id) order.
func TestListChangesWaitsForInFlightWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	db := open(t, u)
	// Tests that run alongside wait for this test's open transaction too:
	// keep it short.
	db.SetSettleWait(200 * time.Millisecond)
	f := newFixture(t, db)
	list := func(after store.ChangePos) []*store.Change {
		t.Helper()
		chs, err := db.ListChanges(ctx, store.ListChangesParams{AccountID: f.account.ID, CalendarID: f.calendar.ID, After: after, Limit: 10})
		if err != nil {
			t.Fatalf("ListChanges: %v", err)
		}
		return chs
	}
	cursor, err := db.ChangeCursor(ctx, f.account.ID)
	if err != nil {
		t.Fatal(err)
	}

	tx, held := f.holdChange(t, u, store.ChangeSyncFailed)
	inflight := held.ID
	later := f.event(t, db)
	start := time.Now()
	if chs := list(cursor); len(chs) != 0 {
		t.Fatalf("ListChanges while change %d was in flight = %d changes, the first %d; want none", inflight, len(chs), chs[0].ID)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("ListChanges gave up after %v; want it to wait for the writer first", waited)
	}

	// A writer that commits while ListChanges waits is listed at once.
	committed := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		committed <- tx.Commit(ctx)
	}()
	chs := list(cursor)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 || chs[0].ID != inflight || chs[1].ID != later.ID {
		t.Fatalf("ListChanges after the commit = %d changes; want %d, then %d", len(chs), inflight, later.ID)
	}
	if !chs[0].Pos().Before(chs[1].Pos()) || !cursor.Before(chs[0].Pos()) {
		t.Errorf("positions cursor %+v, %+v, %+v; want increasing", cursor, chs[0].Pos(), chs[1].Pos())
	}
	if more := list(chs[1].Pos()); len(more) != 0 {
		t.Errorf("ListChanges after the last = %d changes; want none", len(more))
	}
}

// TestNodesWriteOneCalendarAtOnce holds one node's write of a calendar
// between its statements and its commit. Another node's write of the same
// calendar must commit meanwhile: writers no longer queue on the
// calendar's version row. An iCal Hooks registration of the calendar's
// feed must wait for the held write, and then see the version it made:
// otherwise a consumer served the feed without that write would get no
// ping for it.
func TestNodesWriteOneCalendarAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	a, b := open(t, u), open(t, u)
	// Groups that pick the same version slot do queue on its row: keep
	// the two nodes on different ones.
	a.SetVersionSlot(0)
	b.SetVersionSlot(1)
	f := newFixture(t, b)
	st, err := b.FeedVersion(ctx, f.account.ID, f.calendar.ID)
	if err != nil {
		t.Fatal(err)
	}
	v0 := st.Version

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.PauseBeforeCommit(func() {
		once.Do(func() {
			close(held)
			<-release
		})
	})
	released := sync.OnceFunc(func() { close(release) })
	defer released()
	heldDone := make(chan error, 1)
	go func() {
		_, err := a.CreateEvent(ctx, f.newEvent())
		heldDone <- err
	}()
	<-held

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.CreateEvent(wctx, f.newEvent()); err != nil {
		t.Fatalf("write while another node's write of the calendar was in flight: %v", err)
	}

	registered := make(chan *store.HookRegistration, 1)
	go func() {
		reg, err := b.RegisterHook(ctx, f.hookParams(v0+1))
		if err != nil {
			t.Errorf("RegisterHook: %v", err)
		}
		registered <- reg
	}()
	select {
	case <-registered:
		t.Fatal("RegisterHook returned while a write of the feed was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	released()
	if err := <-heldDone; err != nil {
		t.Fatalf("held write: %v", err)
	}
	// Served the feed at v0+1 (the other node's write), the consumer
	// lacks the held write: the registration must ping at once.
	if reg := <-registered; reg == nil || !reg.Pinged {
		t.Errorf("registration at version %d after the held write committed = %+v; want a ping", v0+1, reg)
	}
	if st, err := b.FeedVersion(ctx, f.account.ID, f.calendar.ID); err != nil || st.Version != v0+2 {
		t.Errorf("feed version after both writes = %+v, %v; want %d", st, err, v0+2)
	}
}

// TestHookArmedAt: a hook registered after a change committed is not
// pinged by it, even while an older transaction (of any test) still runs;
// every change that commits later pings it, even one of a transaction that
// was already running.
func TestHookArmedAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	db := open(t, u)
	f := newFixture(t, db)

	older, err := connect(t, u).Begin(ctx) // holds the cluster's xmin back
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx)
	var olderXID uint64
	if err := older.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&olderXID); err != nil {
		t.Fatal(err)
	}
	tx, late := f.holdChange(t, u, store.ChangeCreated) // running during the registration
	before := f.event(t, db)
	if before.TxID <= late.TxID || late.TxID <= olderXID {
		t.Fatalf("transactions %d, %d and the change %+v, begun in this order, are out of order", olderXID, late.TxID, before.Pos())
	}
	hook := f.registerServed(t, db)
	if hook.Lacks(before) {
		t.Errorf("hook armed at %+v, running %v, lacks the change %+v its consumer was served", hook.ArmedAt,
			hook.ArmedRunning, before.Pos())
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.event(t, db)
	for _, ch := range []*store.Change{late, after} {
		if !hook.Lacks(ch) {
			t.Errorf("hook armed at %+v, running %v, has the change %+v, committed after the registration",
				hook.ArmedAt, hook.ArmedRunning, ch.Pos())
		}
	}
	hooks, err := db.ArmedHooks(ctx, []store.FeedKey{{AccountID: f.account.ID, CalendarID: f.calendar.ID}})
	if err != nil || len(hooks) != 1 || hooks[0].ArmedAt != hook.ArmedAt || !slices.Equal(hooks[0].ArmedRunning, hook.ArmedRunning) {
		t.Errorf("ArmedHooks = %v, %v; want the hook armed at %+v, running %v", hooks, err, hook.ArmedAt, hook.ArmedRunning)
	}
}

// TestHookPingedByWriteRunningAtRegistration: a hook is registered while
// a transaction that writes its feed later is still running, after a
// newer one committed. Fan-out lists both changes in one batch, the
// consumer's copy holding only the newer one (the batch's last): the
// older change must ping the hook.
func TestHookPingedByWriteRunningAtRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	db := open(t, u)
	f := newFixture(t, db)
	tx, _ := f.holdChange(t, u, store.ChangeCreated)
	f.event(t, db)
	f.registerServed(t, db)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	fan := delivery.NewFanOut(delivery.FanOutConfig{Store: db, BaseURL: "https://calhook.example"})
	feed := []store.FeedKey{{AccountID: f.account.ID, CalendarID: f.calendar.ID}}
	// The changes are listed once the transactions before them ended,
	// and those may be other tests'.
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := fan.RunOnce(ctx)
		if err != nil {
			t.Fatalf("fan-out: %v", err)
		}
		if res.Changes == 0 && !res.Unsettled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fan-out never caught up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if hooks, err := db.ArmedHooks(ctx, feed); err != nil || len(hooks) != 0 {
		t.Errorf("after fan-out of a change the consumer lacks, armed hooks = %v, %v; want the hook pinged (disarmed)", hooks, err)
	}
}

// TestFanOutAcrossNodes has three nodes run fan-out steps at once while
// changes are written: every change must get its message exactly once.
func TestFanOutAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	nodes := []*postgres.DB{open(t, u), open(t, u), open(t, u)}
	f := newFixture(t, nodes[0])
	sub := &store.Subscription{ID: id.New("sub"), AccountID: f.account.ID, URL: "https://example.com/", Secret: "s",
		CreatedAt: base, UpdatedAt: base}
	if err := nodes[0].CreateSubscription(ctx, sub, nil); err != nil {
		t.Fatal(err)
	}
	const changes = 200
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := range changes {
			f.event(t, nodes[i%len(nodes)])
		}
	}()
	var mu sync.Mutex
	built := map[int64]int{}
	busy := 0
	var wg sync.WaitGroup
	for _, db := range nodes {
		wg.Go(func() {
			for {
				select {
				case <-written:
					return
				default:
				}
				res, err := db.FanOut(ctx, store.FanOutCursor, 7, func(_ context.Context, chs []*store.Change) ([]*store.Message, error) {
					var msgs []*store.Message
					for _, ch := range chs {
						msgs = append(msgs, message(sub, ch, base))
					}
					return msgs, nil
				})
				if err != nil {
					t.Errorf("FanOut: %v", err)
					return
				}
				mu.Lock()
				if res.Busy {
					busy++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	storetest.FanOut(t, nodes[0], func(chs []*store.Change) []*store.Message {
		var msgs []*store.Message
		for _, ch := range chs {
			msgs = append(msgs, message(sub, ch, base))
		}
		return msgs
	})
	var after int64
	for {
		msgs, err := nodes[1].ListMessages(ctx, store.ListMessagesParams{AccountID: f.account.ID, SubscriptionID: sub.ID,
			Page: store.Page{After: after, Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			built[m.ChangeID]++
		}
		if len(msgs) < 100 {
			break
		}
		after = msgs[len(msgs)-1].Seq
	}
	for id, n := range built {
		if n != 1 {
			t.Errorf("change %d has %d messages", id, n)
		}
	}
	if len(built) != changes {
		t.Errorf("%d of %d changes got a message", len(built), changes)
	}
	t.Logf("%d fan-out steps found another node holding the cursor", busy)
}

// TestClaimRateLimitAcrossNodes has four nodes claim one subscription's
// queue at the same instants: together they must keep to its rate.
func TestClaimRateLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.PostgresSchema(t, postgresURL(t))
	var nodes []*postgres.DB
	for range 4 {
		nodes = append(nodes, open(t, u))
	}
	f := newFixture(t, nodes[0])
	sub := &store.Subscription{ID: id.New("sub"), AccountID: f.account.ID, URL: "https://example.com/", Secret: "s",
		RateLimit: 1, CreatedAt: base, UpdatedAt: base}
	if err := nodes[0].CreateSubscription(ctx, sub, nil); err != nil {
		t.Fatal(err)
	}
	fanOut := func(n int, due time.Time) {
		t.Helper()
		for range n {
			f.event(t, nodes[0])
		}
		storetest.FanOut(t, nodes[0], func(changes []*store.Change) []*store.Message {
			var msgs []*store.Message
			for _, ch := range changes {
				if ch.EventID != "" {
					msgs = append(msgs, message(sub, ch, due))
				}
			}
			return msgs
		})
	}
	// One message earlier, so that the limiter's row exists when the
	// nodes race (creating it would serialize them by itself).
	fanOut(1, base.Add(-10*time.Second))
	if c, err := nodes[0].ClaimMessages(ctx, store.ClaimParams{Now: base.Add(-10 * time.Second), Limit: 5, Lease: time.Hour}); err != nil || len(c.Deliveries) != 1 {
		t.Fatalf("first claim = %+v, %v; want 1", c, err)
	}
	fanOut(20, base)

	var mu sync.Mutex
	var sent []time.Duration
	for now := base; now.Before(base.Add(3500 * time.Millisecond)); now = now.Add(250 * time.Millisecond) {
		var wg sync.WaitGroup
		for _, db := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := db.ClaimMessages(ctx, store.ClaimParams{Now: now, Limit: 5, Lease: time.Hour})
				if err != nil {
					t.Errorf("ClaimMessages: %v", err)
					return
				}
				mu.Lock()
				for range c.Deliveries {
					sent = append(sent, now.Sub(base))
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	sort.Slice(sent, func(i, j int) bool { return sent[i] < sent[j] })
	want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}
	if fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Errorf("claims at 1/s by 4 nodes went out at %v; want %v", sent, want)
	}
}

// TestBackends checks the helper other packages' tests run against every
// driver.
func TestBackends(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			if err := b.Open(t).Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

// TestGroupFailureIsolated writes events at once, one of which PostgreSQL
// rejects (text with a NUL byte): committed in groups, the failure must
// reach that write alone, and every other write must commit once.
func TestGroupFailureIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t, storetest.PostgresSchema(t, postgresURL(t)))
	f := newFixture(t, db)
	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			e := &store.Event{ID: id.New("evt"), AccountID: f.account.ID, CalendarID: f.calendar.ID, UID: fmt.Sprintf("u%d", i),
				Summary: "ok", Start: base, End: base.Add(time.Hour), Status: store.StatusConfirmed, CreatedAt: base, UpdatedAt: base}
			if i == n/2 {
				e.Summary = "bad\x00byte"
			}
			<-start
			_, errs[i] = db.CreateEvent(ctx, e)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == n/2) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	events, err := db.ListEvents(ctx, store.ListEventsParams{AccountID: f.account.ID, CalendarID: f.calendar.ID, Page: store.Page{Limit: 100}})
	if err != nil || len(events) != n-1 {
		t.Errorf("%d events stored, %v; want %d", len(events), err, n-1)
	}
	changes, err := db.ListChanges(ctx, store.ListChangesParams{AccountID: f.account.ID, CalendarID: f.calendar.ID, Limit: 100})
	if err != nil || len(changes) != n-1 {
		t.Errorf("%d changes stored, %v; want %d", len(changes), err, n-1)
	}
}

// TestCreateGroupOutcomes commits creates as one group, which runs as one
// statement: each write gets its own outcome, including a UID taken by an
// earlier write of the same group; versions count the events stored, and
// change ids follow the writes' order.
func TestCreateGroupOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t, storetest.PostgresSchema(t, postgresURL(t)))
	fa, fb := newFixture(t, db), newFixture(t, db)
	takenChange := fa.event(t, db)
	taken := takenChange.Event
	startA, _ := db.Calendar(ctx, fa.account.ID, fa.calendar.ID)
	startB, _ := db.Calendar(ctx, fb.account.ID, fb.calendar.ID)
	accA, _ := db.Account(ctx, fa.account.ID)

	event := func(f fixture, uid string) *store.Event {
		return &store.Event{ID: id.New("evt"), AccountID: f.account.ID, CalendarID: f.calendar.ID, UID: uid,
			Summary: "s " + uid, Start: base, End: base.Add(time.Hour), Status: store.StatusConfirmed,
			CreatedAt: base, UpdatedAt: base.Add(time.Second)}
	}
	rich := event(fa, "rich")
	rich.RecurrenceID, rich.RRule, rich.TimeZone, rich.AllDay, rich.Sequence = "20261201T100000Z", "FREQ=DAILY", "Europe/Berlin", true, 3
	rich.ExDates = []time.Time{base.AddDate(0, 0, 1), base.AddDate(0, 0, 2).Add(1234567 * time.Nanosecond)}
	rich.Metadata, rich.Extra = map[string]string{"booking": "42", "quote": `"x"`}, map[string]string{"X-FOO": "bar"}
	intruder := event(fb, "intruder")
	intruder.AccountID = fa.account.ID

	writes := []struct {
		name  string
		event *store.Event
		want  error
	}{
		{"rich event", rich, nil},
		{"UID stored before", event(fa, taken.UID), store.ErrConflict},
		{"UID of an earlier write of the group", func() *store.Event {
			e := event(fa, "rich")
			e.RecurrenceID = rich.RecurrenceID
			return e
		}(), store.ErrConflict},
		{"another account's calendar", intruder, store.ErrNotFound},
		{"other account", event(fb, "b1"), nil},
		{"same UID, other instance", event(fa, "rich"), nil},
	}
	events := make([]*store.Event, len(writes))
	for i, w := range writes {
		events[i] = w.event
	}
	changes, errs := db.CreateTogether(ctx, events)
	var lastID int64
	for i, w := range writes {
		if !errors.Is(errs[i], w.want) || (w.want == nil) != (errs[i] == nil) {
			t.Errorf("%s: %v; want %v", w.name, errs[i], w.want)
			continue
		}
		if w.want != nil {
			if changes[i] != nil {
				t.Errorf("%s: change %+v for a failed write", w.name, changes[i])
			}
			continue
		}
		ch := changes[i]
		if ch.ID <= lastID || ch.Type != store.ChangeCreated || ch.EventID != w.event.ID || w.event.Seq == 0 {
			t.Errorf("%s: change %+v (after id %d), seq %d", w.name, ch, lastID, w.event.Seq)
		}
		lastID = ch.ID
	}

	got, err := db.Event(ctx, fa.account.ID, fa.calendar.ID, rich.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := *rich
	want.ExDates = []time.Time{rich.ExDates[0], rich.ExDates[1].Truncate(time.Microsecond)}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("stored event = %+v; want %+v", got, &want)
	}
	logged, err := db.ListChanges(ctx, store.ListChangesParams{AccountID: fa.account.ID, CalendarID: fa.calendar.ID, After: takenChange.Pos(), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != 2 || logged[0].ID != changes[0].ID || logged[1].ID != changes[5].ID {
		t.Fatalf("change log of calendar A after the group: %d changes; want those of writes 0 and 5", len(logged))
	}
	if snap := logged[0].Event; snap.Metadata["quote"] != `"x"` || !snap.ExDates[1].Equal(rich.ExDates[1]) || snap.RRule != rich.RRule {
		t.Errorf("change snapshot = %+v", snap)
	}
	for _, c := range []struct {
		f     fixture
		start int64
		n     int64
	}{{fa, startA.Version, 2}, {fb, startB.Version, 1}} {
		if cal, _ := db.Calendar(ctx, c.f.account.ID, c.f.calendar.ID); cal.Version != c.start+c.n {
			t.Errorf("calendar version = %d; want %d", cal.Version, c.start+c.n)
		}
	}
	if acc, _ := db.Account(ctx, fa.account.ID); acc.FeedVersion != accA.FeedVersion+2 {
		t.Errorf("account feed version = %d; want %d", acc.FeedVersion, accA.FeedVersion+2)
	}
}

// TestPrunePlans: every statement of Prune and ExpireHooks can follow an
// index (with sequential scans priced out, as on a big table), without a
// sort. (That a range read stops early, as the walk from the log's start
// does, is beyond a plan: see Prune.)
func TestPrunePlans(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchema(t, postgresURL(t))
	open(t, u) // migrates
	conn := connect(t, u)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for q, args := range postgres.PruneStatements(time.Now()) {
		rows, err := conn.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		if p := strings.Join(plan, "\n"); strings.Contains(p, "Seq Scan") || strings.Contains(p, "Sort") {
			t.Errorf("plan of %s:\n%s\nwant every step along an index", q, p)
		}
	}
}
