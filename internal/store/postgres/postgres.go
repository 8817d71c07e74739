// Package postgres implements store.Store on PostgreSQL (pgx/v5, pgxpool),
// for running several calhook nodes against one database.
//
// It keeps the semantics of the SQLite adapter, which has one writer, under
// concurrent writers on many nodes:
//
//   - Event writes are group-committed (see commitGroup). They count
//     towards versions in slot rows, a random slot per group, under KEY
//     SHARE locks of the calendar and account rows, so writers of one
//     calendar on several nodes do not queue on one row; what needs a
//     version with no write in flight (iCal Hooks registrations, imports)
//     locks the row FOR UPDATE. A deadlock or serialization failure is
//     retried with the whole transaction.
//   - A change id is drawn before its transaction commits, so ids need not
//     follow commit order. The change log is read in transaction order
//     instead, (xid, id), up to the oldest transaction still running: by
//     the fan-out (see FanOut) and by incremental sync, whose cursors carry
//     both (see ListChanges).
//   - Claims lock queue rows with FOR UPDATE SKIP LOCKED, and rate limiter
//     rows in key order, so two nodes never hand out the same rate slot.
//   - Writes notify other nodes, at a bounded rate and mostly from inside
//     the writing transactions (see Listen and notifier).
//   - The hot paths send their statements in pipelined batches: a round
//     trip costs more than most statements (see pipeTx).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store backed by a PostgreSQL database (one schema of it).
type DB struct {
	pool *pgxpool.Pool
	// log receives the errors that background work recovers from (given
	// to Open; never nil).
	log *slog.Logger

	// Advisory lock keys, derived from the schema so that several calhook
	// installations (or test schemas) in one database do not contend.
	migrateKey int64
	schema     string

	notifier *notifier
	// writes feeds the group committer of event writes (commitLoop).
	writes    chan *eventWrite
	closing   chan struct{}
	committed chan struct{}
	closeOnce sync.Once

	// versionSlot picks the version slot of each group of event writes
	// (randomSlot; tests fix it).
	versionSlot func() int16
	// settleWait bounds how long ListChanges waits for older
	// transactions to end.
	settleWait time.Duration
	// beforeCommit, set only by tests, runs in every pipelined
	// transaction once all its statements but COMMIT have run.
	beforeCommit func()
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url (postgres:// or postgresql://; pgx
// options such as pool_max_conns, and run-time parameters such as
// search_path, are accepted as query parameters) and applies pending
// migrations. The pool holds at most pool_max_conns connections (default
// 4 per CPU, at least 10); Listen uses one more. log receives the errors
// that background work recovers from (lost notification connections,
// failed notifications); nil discards them.
func Open(ctx context.Context, url string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (the number of CPUs, at least 4) is sized for
		// CPU-bound work; store calls mostly wait on the network, and the
		// API, fan-out, delivery and importer share the pool.
		cfg.MaxConns = int32(max(10, 4*runtime.GOMAXPROCS(0)))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	db := &DB{
		pool: pool, log: log, versionSlot: randomSlot, settleWait: settleWait,
		writes: make(chan *eventWrite), closing: make(chan struct{}), committed: make(chan struct{}),
	}
	db.notifier = newNotifier(pool, db.logger)
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if schema == nil {
		pool.Close()
		return nil, errors.New("open PostgreSQL store: no schema of the search_path exists")
	}
	db.schema = *schema
	db.migrateKey = lockKey("migrate", db.schema)
	if err := db.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	go db.commitLoop()
	go db.notifier.run()
	return db, nil
}

// lockKey returns an advisory lock key for a purpose within a schema.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	h.Write([]byte("calhook"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return int64(h.Sum64())
}

// Migrate applies the embedded migrations that have not run yet, each in its
// own transaction, and records them in schema_migrations. Every transaction
// first takes a transaction-scoped advisory lock, so nodes starting at once
// apply each migration exactly once, one after the other.
func (db *DB) Migrate(ctx context.Context) error {
	return migrate.Run(ctx, migrations, "migrations", migrator{db})
}

// migrator runs migrations on the database (see migrate.Executor).
type migrator struct{ db *DB }

func (m migrator) Init(ctx context.Context) error {
	return m.InTx(ctx, func(ctx context.Context, tx migrate.Tx) error {
		return tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	})
}

func (m migrator) InTx(ctx context.Context, fn func(context.Context, migrate.Tx) error) error {
	return pgx.BeginFunc(ctx, m.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, m.db.migrateKey); err != nil {
			return err
		}
		return fn(ctx, migrationTx{tx})
	})
}

// migrationTx is a migration's transaction (see migrate.Tx).
type migrationTx struct{ tx pgx.Tx }

func (t migrationTx) Applied(ctx context.Context, version int) (bool, error) {
	var done bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done)
	return done, err
}

// Exec runs sql without arguments, so with the simple protocol, which
// runs a file of several statements.
func (t migrationTx) Exec(ctx context.Context, sql string) error {
	_, err := t.tx.Exec(ctx, sql)
	return err
}

func (t migrationTx) Record(ctx context.Context, m migrate.Migration) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
	return err
}

// SchemaVersion returns the number of the newest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// logger returns the logger given to Open.
func (db *DB) logger() *slog.Logger { return db.log }

// RecoverClaims recovers nothing: other nodes share the database, so a
// claim may be a live node's, and only its lease's end makes it due again.
func (db *DB) RecoverClaims(context.Context, time.Time) (int64, error) { return 0, nil }

// Close stops taking writes, lets the group being committed finish, and
// closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		<-db.committed
		db.notifier.close()
		db.pool.Close()
	})
	return nil
}

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// errRetry asks tx to run the transaction again: a concurrent writer got in
// between a read and a write that depends on it.
var errRetry = errors.New("concurrent write, retry")

// maxTxAttempts bounds how often tx runs a transaction that keeps failing
// with a retryable error.
const maxTxAttempts = 5

// outbox holds the notifications a transaction sends once it has
// committed; txn and pipeTx embed it.
type outbox struct {
	notes []note
}

// notifyChange tells listening nodes, once the transaction commits, of a
// change (see Change).
func (o *outbox) notifyChange(c Change) {
	o.notes = append(o.notes, note{changesChannel, changePayload(c)})
}

// notifyMessages tells listening nodes, once the transaction commits,
// that messages became due.
func (o *outbox) notifyMessages() {
	o.notes = append(o.notes, note{messagesChannel, ""})
}

// txn is a transaction run by db.tx.
type txn struct {
	pgx.Tx
	outbox
}

// tx runs fn in a read-committed transaction and commits it if fn returns
// nil; then it sends the notifications fn asked for. Deadlocks and
// serialization failures roll back and run fn again, so fn must reset
// anything it accumulates.
func (db *DB) tx(ctx context.Context, fn func(*txn) error) error {
	return db.retry(ctx, func() error {
		var t *txn
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			t = &txn{Tx: tx}
			return fn(t)
		})
		if err == nil {
			db.notifier.send(t.notes...)
		}
		return err
	})
}

// pipeTx is a transaction whose statements travel in pipelined batches:
// BEGIN goes out with the first batch and COMMIT with the last, so a
// transaction of n batches costs n round trips where pgx.Tx costs n+2. On
// the hot paths round trips are most of the cost: each one is two context
// switches for the server process, and more on a virtual machine.
type pipeTx struct {
	conn         *pgxpool.Conn
	notifier     *notifier
	beforeCommit func()
	begun        bool
	outbox
	// unsent are the notifications a failed commit was to send.
	unsent []note
}

// send runs b as the transaction's next batch.
func (t *pipeTx) send(ctx context.Context, b *pgx.Batch) error {
	if !t.begun {
		b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: "BEGIN"}}, b.QueuedQueries...)
		t.begun = true
	}
	return t.conn.SendBatch(ctx, b).Close()
}

// commit runs b as the transaction's last batch and commits it.
//
// The notifications the transaction asked for ride in it, with what the
// node's other writes queued since, when the notifier's window is over
// (see notifier): PostgreSQL sends them when, and only if, it commits.
// Otherwise, or if the commit fails, db.pipe hands them to the notifier.
func (t *pipeTx) commit(ctx context.Context, b *pgx.Batch) error {
	if t.beforeCommit != nil {
		if err := t.send(ctx, b); err != nil {
			return err
		}
		t.beforeCommit()
		b = &pgx.Batch{}
	}
	var riding []note
	if len(t.notes) > 0 {
		if riding = t.notifier.ride(t.notes); riding != nil {
			queueNotify(b, riding)
		}
	}
	committed := false
	b.Queue("COMMIT").Exec(func(pgconn.CommandTag) error {
		committed = true
		return nil
	})
	err := t.send(ctx, b)
	if st := t.conn.Conn().PgConn().TxStatus(); committed && st == 'I' {
		if riding != nil {
			t.notes = nil // sent
		}
		return nil
	} else if err == nil {
		err = fmt.Errorf("commit left the transaction in state %c", st)
	}
	// The queued notes of other writes, which did commit, go back. So do
	// the transaction's own: its outcome may be unknown, and a needless
	// notification costs a cache refill at worst.
	t.unsent = riding
	return err
}

// pipe runs fn in a pipelined transaction on one pooled connection; fn
// ends it with commit. A transaction fn leaves open is rolled back, as is
// one whose fn fails; deadlocks and serialization failures run fn again.
// Once it committed, the notifications fn asked for go out.
func (db *DB) pipe(ctx context.Context, fn func(*pipeTx) error) error {
	return db.retry(ctx, func() error {
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		t := &pipeTx{conn: conn, notifier: db.notifier, beforeCommit: db.beforeCommit}
		err = fn(t)
		if st := conn.Conn().PgConn().TxStatus(); st != 'I' {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops it
			}
			if err == nil {
				err = errors.New("pipelined transaction left open")
			}
		}
		if err == nil {
			db.notifier.send(t.notes...)
		} else {
			db.notifier.send(t.unsent...)
		}
		return err
	})
}

// batch runs b as one implicit transaction (PostgreSQL commits the
// statements of a pipeline up to its Sync together, or none): one round
// trip. Deadlocks and serialization failures send it again; b's callbacks
// must tolerate running twice. Then notes go out.
func (db *DB) batch(ctx context.Context, b func() *pgx.Batch, notes ...note) error {
	err := db.retry(ctx, func() error { return db.pool.SendBatch(ctx, b()).Close() })
	if err == nil {
		db.notifier.send(notes...)
	}
	return err
}

// retry runs fn again after a deadlock or serialization failure, a few
// times, with a short random wait.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			return classify(err)
		}
		wait := time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isForeignKey reports whether err is a foreign key violation: the row
// referred to was deleted meanwhile.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// notFound maps pgx.ErrNoRows to store.ErrNotFound, and marks the
// errors classify knows.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return classify(err)
}

// exec runs one statement on a pooled connection.
func (db *DB) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := db.pool.Exec(ctx, sql, args...)
	return tag, classify(err)
}

// query runs a query on a pooled connection.
func (db *DB) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	return rows, classify(err)
}

// classify marks the errors that say the database has no room for a
// write with store.ErrStorageFull (disk_full; read_only_sql_transaction,
// as on a standby or a server set read-only when its disk filled up), and
// those that say it does not answer with store.ErrUnavailable: a
// connection that failed or broke, and a server that is shutting down,
// starting up or out of connections.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100" || pe.Code == "25006":
			return store.MarkCondition(err, store.ErrStorageFull)
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"), pe.Code == "53300":
			// connection_exception; admin_shutdown, crash_shutdown,
			// cannot_connect_now; too_many_connections.
			return store.MarkCondition(err, store.ErrUnavailable)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return store.MarkCondition(err, store.ErrUnavailable)
	}
	return err
}

// mustAffect returns store.ErrNotFound when tag changed no row.
func mustAffect(tag pgconn.CommandTag, what string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// parked is the due time of messages whose subscription is disabled: they
// stay queued, out of the claim query's way, until it is enabled again. It
// is the same instant as the SQLite adapter's.
var parked = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// epoch stands for "never scheduled" in calendars.next_poll_at, like 0 in
// SQLite: such a calendar is due at once.
var epoch = time.Unix(0, 0).UTC()

// oneOf returns the condition that column is one of vals, with vals as
// parameter $n, and that parameter. A single value gets a plain equality:
// PostgreSQL plans a prepared `= ANY($n)` afresh on every run (a custom
// plan for the array at hand always looks cheaper than the generic one),
// which costs more than the run when the array holds one id, as it mostly
// does.
func oneOf(column string, n int, vals []string) (string, any) {
	if len(vals) == 1 {
		return fmt.Sprintf("%s = $%d", column, n), vals[0]
	}
	return fmt.Sprintf("%s = ANY($%d)", column, n), vals
}

// utc returns t in UTC: pgx returns timestamptz values in the local zone,
// and records must equal what was stored (the SQLite adapter returns UTC).
func utc(t time.Time) time.Time { return t.UTC() }

// opt maps the zero time to NULL.
func opt(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromOpt maps NULL to the zero time.
func fromOpt(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// pollTime maps the zero time to the epoch for next_poll_at.
func pollTime(t time.Time) time.Time {
	if t.IsZero() {
		return epoch
	}
	return t
}

// fromPollTime maps the epoch back to the zero time.
func fromPollTime(t time.Time) time.Time {
	if t.Equal(epoch) {
		return time.Time{}
	}
	return t.UTC()
}

// Notification channels; see Listen.
const (
	changesChannel  = "calhook_changes"
	messagesChannel = "calhook_messages"
)

// ServerSecret returns the named secret, storing value first if there is
// none; nodes that start together agree on the first one stored.
func (db *DB) ServerSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := db.pool.Exec(ctx, `INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, value); err != nil {
		return nil, fmt.Errorf("server secret %s: %w", name, err)
	}
	var out []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM server_secrets WHERE name = $1`, name).Scan(&out); err != nil {
		return nil, fmt.Errorf("server secret %s: %w", name, err)
	}
	return out, nil
}
