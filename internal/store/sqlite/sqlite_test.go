package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
	"github.com/calhook/calhook/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "calhook.db")
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	// The newest migration's number: numbers may have gaps while branches
	// that take the numbers between are not merged yet.
	want := 0
	for _, f := range files {
		n, err := strconv.Atoi(strings.SplitN(f.Name(), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s has no number: %v", f.Name(), err)
		}
		want = max(want, n)
	}
	for i := range 2 {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil || v != want {
			t.Errorf("SchemaVersion #%d = %d, %v; want %d", i+1, v, err, want)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Errorf("Migrate again: %v", err)
		}
		db.Close()
	}
}

// TestOpenFileMigratedBefore opens a database file migrated the way
// calhook did before the shared runner (each file applied and recorded
// with that runner's statements): the records must be read as they are,
// so Open applies nothing again (a second CREATE TABLE would fail) and
// keeps them.
func TestOpenFileMigratedBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "calhook.db")
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	const appliedAt = 1767225600000000 // 2026-01-01, in microseconds
	files, newest := applyRaw(t, raw, 1<<30, appliedAt)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open on a file migrated before: %v", err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != newest {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, newest)
	}
	var rows, kept int
	if err := raw.QueryRow(`SELECT count(*), sum(applied_at = ?) FROM schema_migrations`, appliedAt).Scan(&rows, &kept); err != nil {
		t.Fatal(err)
	}
	if rows != files || kept != files {
		t.Errorf("schema_migrations has %d rows, %d as recorded before; want %d, all kept", rows, kept, files)
	}
}

// applyRaw applies the migration files below version upTo to raw, each
// recorded as applied at appliedAt (microseconds), the way calhook did
// before the shared runner. It returns how many it applied and the newest
// version.
func applyRaw(t *testing.T, raw *sql.DB, upTo int, appliedAt int64) (applied, newest int) {
	t.Helper()
	if _, err := raw.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
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
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("apply %s: %v", f.Name(), err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			version, f.Name(), appliedAt); err != nil {
			t.Fatal(err)
		}
		applied, newest = applied+1, max(newest, version)
	}
	return applied, newest
}

// TestUpgradeAttemptsBySeq opens a file whose attempts name their messages
// by id (before migration 18): every attempt is kept, under its message's
// seq, and reads back as the message's.
func TestUpgradeAttemptsBySeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "calhook.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	applyRaw(t, raw, 18, 1767225600000000)
	// Foreign keys are off on raw: the messages need no account.
	for i, m := range storetest.UpgradedAttempts {
		if _, err := raw.Exec(`INSERT INTO messages (id, account_id, subscription_id, change_id, event_type, payload,
			next_attempt_at, created_at, updated_at) VALUES (?, 'acc', 'sub', ?, 'calendar.event.created', x'7b7d', 0, 0, 0)`,
			m.MessageID, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range storetest.UpgradedAttemptOrder {
		if _, err := raw.Exec(`INSERT INTO attempts (message_id, delivery_id, attempted_at, status_code)
			VALUES (?, 'dlv', 0, ?)`, a.MessageID, a.Code); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	storetest.CheckUpgradedAttempts(t, db)
	// The attempts' ids keep counting from where they were.
	var seq int64
	if err := raw.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'attempts'`).Scan(&seq); err != nil || seq != 3 {
		t.Errorf("attempts' sequence after the upgrade = %d, %v; want 3", seq, err)
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	db := open(t).(*sqlite.DB)
	got, err := db.Pragmas(context.Background())
	if err != nil {
		t.Fatalf("Pragmas: %v", err)
	}
	want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "10000"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("PRAGMA %s = %q; want %q", k, got[k], v)
		}
	}
}
