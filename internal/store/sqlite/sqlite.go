// Package sqlite implements store.Store on an embedded SQLite database file
// (modernc.org/sqlite, pure Go, no cgo).
//
// SQLite allows one writer at a time, so the store keeps two pools: a single
// writer connection whose transactions start with BEGIN IMMEDIATE (no
// SQLITE_BUSY upgrades mid-transaction), and a pool of readers that WAL mode
// lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/calhook/calhook/internal/notify"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store backed by one SQLite file.
type DB struct {
	write *sql.DB
	read  *sql.DB
	// reads runs the hot reads (units, availability, the change log's
	// cursors) on read as prepared statements.
	reads *readCache
	// ckpt is the checkpointer's connection (see checkpoints).
	ckpt *sql.DB

	// jobs feeds the group committer: write transactions that arrive
	// together share one SQLite transaction (and its WAL frames). bulk
	// feeds it the big background writes (import chunks, fan-out steps),
	// which run alone and only when no job waits (see bulkTx).
	jobs    chan *writeJob
	bulk    chan *writeJob
	stmts   *stmtCache
	stop    chan struct{}
	stopped chan struct{}
	// checkpointed is closed when the checkpointer has stopped.
	checkpointed chan struct{}
	// wal holds the WAL sizes checkpoints work to; restart carries the
	// checkpointer's request that the committer checkpoint the WAL's
	// tail (see checkpoints).
	wal     walLimits
	restart chan chan struct{}
	once    sync.Once
}

var _ store.Store = (*DB)(nil)

// pragmas are applied to every connection.
//   - journal_mode=WAL: readers never block the writer and vice versa.
//   - synchronous=NORMAL: in WAL mode a commit survives a process crash
//     (kill -9); only an OS crash or power loss can lose the last commits.
//   - busy_timeout: a connection waits for a lock instead of failing with
//     SQLITE_BUSY (needed when a second process, such as the CLI, writes).
//   - foreign_keys: deleting an account or calendar cascades.
//   - temp_store=MEMORY: statement and savepoint journals stay in memory;
//     in a file they cost a write syscall for every page a big import or a
//     group of writes touches (a seventh of a big import's CPU).
var pragmas = []string{
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"busy_timeout(10000)",
	"foreign_keys(1)",
	"temp_store(MEMORY)",
}

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, defaultWAL)
}

// open is Open with the WAL sizes that checkpoints work to.
func open(ctx context.Context, path string, wal walLimits) (*DB, error) {
	dsn := func(extra string) string {
		q := url.Values{}
		for _, p := range pragmas {
			q.Add("_pragma", p)
		}
		if extra != "" {
			q.Set("_txlock", extra)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// The writer checkpoints by itself only once the WAL holds
	// wal.writer pages (see checkpoints).
	write, err := sql.Open("sqlite", dsn("immediate")+
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", wal.writer))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	// The checkpointer has a connection of its own, so that a slow
	// checkpoint never takes a reader from the requests.
	ckpt, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	db := &DB{
		write: write, read: read, reads: newReadCache(read), ckpt: ckpt, jobs: make(chan *writeJob, maxGroup),
		bulk: make(chan *writeJob), stmts: newStmtCache(),
		stop: make(chan struct{}), stopped: make(chan struct{}), checkpointed: make(chan struct{}),
		wal: wal, restart: make(chan chan struct{}),
	}
	go db.commitLoop()
	go db.checkpoints()
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Migrate applies the embedded migrations that have not run yet, each in its
// own transaction, and records them in schema_migrations.
func (db *DB) Migrate(ctx context.Context) error {
	return migrate.Run(ctx, migrations, "migrations", migrator{db})
}

// migrator runs migrations on the database (see migrate.Executor).
type migrator struct{ db *DB }

func (m migrator) Init(ctx context.Context) error {
	_, err := m.db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`)
	return err
}

func (m migrator) InTx(ctx context.Context, fn func(context.Context, migrate.Tx) error) error {
	return m.db.tx(ctx, func(ctx context.Context, tx *wtx) error { return fn(ctx, migrationTx{tx}) })
}

// migrationTx is a migration's transaction (see migrate.Tx).
type migrationTx struct{ tx *wtx }

func (t migrationTx) Applied(ctx context.Context, version int) (bool, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n)
	return n > 0, err
}

func (t migrationTx) Exec(ctx context.Context, sql string) error {
	_, err := t.tx.ExecContext(ctx, sql)
	return err
}

func (t migrationTx) Record(ctx context.Context, m migrate.Migration) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixMicro())
	return err
}

// SchemaVersion returns the number of the newest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// RunExclusive runs fn and reports that it ran: only this process uses a
// SQLite database, so no other node can be running the job.
func (db *DB) RunExclusive(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// Listen returns nil at once: only this process writes to a SQLite
// database, and its services publish their own writes.
func (db *DB) Listen(context.Context, *notify.Bus) error { return nil }

// Close stops the committer and the checkpointer and closes the pools.
func (db *DB) Close() error {
	db.once.Do(func() {
		close(db.stop)
		<-db.stopped
		<-db.checkpointed
		db.stmts.close()
		db.reads.close()
	})
	return errors.Join(db.read.Close(), db.write.Close(), db.ckpt.Close())
}

// walLimits are how often the checkpointer runs and the WAL sizes, in
// pages, that checkpoints work to.
type walLimits struct {
	// every is how often the checkpointer copies the WAL into the
	// database file. A checkpoint with nothing to copy costs nothing, so
	// a short interval costs an idle server nothing; under a flood of
	// writes it keeps the part of the WAL not yet copied short.
	every time.Duration
	// restart is the WAL size at which the checkpointer has the writer
	// restart the WAL (see checkpoints).
	restart int
	// tail is the most pages a checkpoint pass may have copied for the
	// checkpointer to call the rest of the WAL short enough for the
	// writer to copy.
	tail int
	// writer is the WAL size at which the writer's own automatic
	// checkpoint runs in a commit: only if the restart keeps failing.
	writer int
}

// defaultWAL checkpoints ten times a second and restarts the WAL at
// 64 MiB (on a 4 KiB page), asking the writer to copy about 1 MiB; the
// writer's automatic checkpoint waits for 256 MiB.
var defaultWAL = walLimits{every: 100 * time.Millisecond, restart: 16384, tail: 256, writer: 65536}

// restartPasses bounds the checkpoint passes run back to back while the
// tail shrinks: under writes faster than a pass can sync, the tail never
// gets under walLimits.tail, and the writer copies what the last pass
// left.
const restartPasses = 4

// checkpoints runs a PASSIVE checkpoint on a connection of its own every
// walLimits.every until Close: it copies what no reader still needs into
// the database file and syncs it without taking the write lock, so
// writers go on meanwhile.
//
// A checkpoint that runs while writers append can never copy the last
// frames, and only a write transaction that starts with all of the WAL
// copied restarts the WAL; without that the WAL grew past 1 GB in a
// minute of the fairness scenario. So once the WAL holds walLimits.restart
// pages, the checkpointer runs passes back to back, each copying what was
// written during the one before, until one copied at most walLimits.tail
// pages (or restartPasses ran), and then asks the committer to checkpoint
// on the writer between two transactions (see restartWAL): that copies
// and syncs only the short tail, and the next transaction restarts the
// WAL. The writer's automatic checkpoint used to do this alone, inside a
// commit, with up to a tenth of a second of frames left to copy and sync:
// in the fairness scenario (a tenant's import fanned out to 100
// subscriptions) the WAL reached 64 MiB about twice a second, and each
// such commit held every writer for 20-250 ms on a shared disk.
func (db *DB) checkpoints() {
	defer close(db.checkpointed)
	tick := time.NewTicker(db.wal.every)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-db.stop
		cancel()
	}()
	passes, done := 0, 0
	for {
		if passes == 0 {
			select {
			case <-db.stop:
				return
			case <-tick.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		// A failed checkpoint is tried again at the next tick; the WAL
		// only grows meanwhile. busy is set while the writer checkpoints.
		var busy, frames, copied int
		before := done
		err := db.ckpt.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
		if err != nil || busy != 0 || frames < db.wal.restart || db.wal.restart == 0 {
			passes, done = 0, 0
			continue
		}
		if copied = done; passes > 0 && done >= before {
			copied = done - before
		}
		passes++
		if passes > 1 && copied <= db.wal.tail || passes >= restartPasses {
			// Wait for the committer's checkpoint: one of ours meanwhile
			// would make it fail.
			ack := make(chan struct{})
			select {
			case db.restart <- ack:
				<-ack
			case <-db.stop:
				return
			}
			passes = 0
		}
	}
}

// restartWAL checkpoints on the writer, between two transactions, what the
// checkpointer has left of the WAL: a short tail, so the writer is held
// for little more than two syncs. With all of the WAL copied, the next
// write transaction starts the WAL over (unless a reader still reads an
// older snapshot; the checkpointer then asks again).
func (db *DB) restartWAL() {
	// A failed checkpoint leaves the WAL as it was, to be restarted at
	// the next request.
	_, _ = db.write.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
}

// writeJob is one write transaction waiting for the group committer.
type writeJob struct {
	ctx  context.Context
	fn   func(context.Context, *wtx) error
	done chan error
}

// maxGroup bounds how many write transactions share one commit.
const maxGroup = 64

// tx runs fn in a write transaction and commits it if fn returns nil.
//
// Writes are group-committed: the committer runs every job that is queued
// when it starts a transaction, each inside its own SAVEPOINT (so a failing
// job rolls back alone), and commits them together. SQLite allows one
// writer anyway; sharing the commit means pages that every write touches
// (the account's and calendar's rows, index pages) reach the WAL once per
// group instead of once per write.
//
// fn gets ctx without its cancellation: interrupting SQLite inside a
// transaction would roll back every job of the group.
func (db *DB) tx(ctx context.Context, fn func(context.Context, *wtx) error) error {
	return db.run(ctx, db.jobs, fn)
}

// bulkTx is tx for a big background write (a chunk of an import, a
// fan-out step): it runs in a transaction of its own, and only when no
// other write is waiting, so an API write waits for at most the one bulk
// write in progress, never for a queue of them. Under a steady stream of
// API writes that never leaves the queue empty, bulk writes wait.
func (db *DB) bulkTx(ctx context.Context, fn func(context.Context, *wtx) error) error {
	return db.run(ctx, db.bulk, fn)
}

// run queues fn on queue and waits for its outcome.
func (db *DB) run(ctx context.Context, queue chan<- *writeJob, fn func(context.Context, *wtx) error) error {
	job := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case queue <- job:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.stop:
		return errors.New("sqlite: store closed")
	}
	// Once queued, the job runs to its end: the caller waits for the
	// outcome so it never reports failure for a write that committed.
	return classify(<-job.done)
}

// exec runs one statement on the writer, outside the group committer.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.write.ExecContext(ctx, query, args...)
	return res, classify(err)
}

// classify marks an error of SQLite that says the database has no room
// (SQLITE_FULL: the disk or its quota is full, or the file reached
// max_page_count) with store.ErrStorageFull.
func classify(err error) error {
	if err == nil {
		return nil // before errors.As, whose target would escape
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return store.MarkCondition(err, store.ErrStorageFull)
	}
	return err
}

// commitLoop runs queued write jobs in groups until Close.
func (db *DB) commitLoop() {
	defer close(db.stopped)
	batch := make([]*writeJob, 0, maxGroup)
	for {
		var job, bulk *writeJob
		select {
		case job = <-db.jobs:
		default:
			select {
			case <-db.stop:
				return
			case job = <-db.jobs:
			case bulk = <-db.bulk:
				// A job that came at the same moment still goes first.
				select {
				case job = <-db.jobs:
				default:
				}
			case done := <-db.restart:
				// Like a bulk write, only when no job waits.
				db.restartWAL()
				close(done)
				continue
			}
		}
		if job != nil {
			db.runGroup(append(batch[:0], job))
		}
		if bulk != nil {
			db.commitGroup([]*writeJob{bulk})
			db.stmts.prepare(context.Background(), db.write)
		}
	}
}

// runGroup adds the jobs that are queued to batch, up to maxGroup, and
// commits them together.
func (db *DB) runGroup(batch []*writeJob) {
fill:
	for len(batch) < maxGroup {
		select {
		case job := <-db.jobs:
			batch = append(batch, job)
		default:
			break fill
		}
	}
	db.commitGroup(batch)
	// Between groups the writer connection is free to prepare the
	// statements the jobs used.
	db.stmts.prepare(context.Background(), db.write)
}

// commitGroup runs jobs in one transaction and reports each outcome.
func (db *DB) commitGroup(jobs []*writeJob) {
	errs := make([]error, len(jobs))
	fail := func(err error) {
		for _, j := range jobs {
			j.done <- err
		}
	}
	ctx := context.Background()
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	tx := &wtx{Tx: sqlTx, cache: db.stmts}
	single := len(jobs) == 1
	for i, j := range jobs {
		if single {
			errs[i] = j.fn(context.WithoutCancel(j.ctx), tx)
			break
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT job"); err != nil {
			tx.Rollback()
			fail(fmt.Errorf("savepoint: %w", err))
			return
		}
		if errs[i] = j.fn(context.WithoutCancel(j.ctx), tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO job"); err != nil {
				tx.Rollback()
				fail(fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE job"); err != nil {
			tx.Rollback()
			fail(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if single && errs[0] != nil {
		tx.Rollback()
		jobs[0].done <- errs[0]
		return
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	for i, j := range jobs {
		j.done <- errs[i]
	}
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// notFound maps sql.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Pragmas returns the connection settings that matter for durability and
// concurrency, as the database reports them.
func (db *DB) Pragmas(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range []string{"journal_mode", "foreign_keys", "synchronous", "busy_timeout"} {
		var v string
		if err := db.write.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
			return nil, fmt.Errorf("read pragma %s: %w", p, err)
		}
		out[p] = v
	}
	return out, nil
}

// ServerSecret returns the named secret, storing value first if there is
// none.
func (db *DB) ServerSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	var out []byte
	err := db.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = ?`, name).Scan(&out)
	})
	if err != nil {
		return nil, fmt.Errorf("server secret %s: %w", name, err)
	}
	return out, nil
}
