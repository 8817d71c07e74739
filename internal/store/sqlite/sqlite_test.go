package sqlite_test

import (
	"context"
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
