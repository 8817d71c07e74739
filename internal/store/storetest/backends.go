package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/postgres"
	"github.com/calhook/calhook/internal/store/sqlite"
)

// PostgresEnv names the environment variable that holds the URL of a
// PostgreSQL database for tests, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Tests make their
// own schema in it and drop it afterwards.
const PostgresEnv = "CALHOOK_TEST_POSTGRES"

// Backend is a store implementation that tests can run against.
type Backend struct {
	Name string
	// Open returns a fresh, empty, migrated store that is closed (and
	// dropped) when the test ends.
	Open func(t testing.TB) store.Store
}

// Backends returns SQLite, and PostgreSQL when CALHOOK_TEST_POSTGRES is set.
// An unreachable PostgreSQL fails the test rather than skipping it: asking
// for it and not getting it must not pass silently.
func Backends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{{Name: "sqlite", Open: func(t testing.TB) store.Store { return OpenSQLite(t) }}}
	if u := os.Getenv(PostgresEnv); u != "" {
		checkPostgres(t, u)
		bs = append(bs, Backend{Name: "postgres", Open: func(t testing.TB) store.Store { return OpenPostgres(t, u) }})
	}
	return bs
}

// OpenSQLite returns a store on a new database file in a temporary
// directory.
func OpenSQLite(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatalf("open SQLite store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres returns a store on a new schema of the database at dbURL.
func OpenPostgres(t testing.TB, dbURL string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), PostgresSchema(t, dbURL), nil)
	if err != nil {
		t.Fatalf("open PostgreSQL store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresSchema creates an empty schema calhook_test_<random> in the
// database at dbURL, drops it when the test ends, and returns dbURL with
// the schema as its search_path, so tests in parallel never share tables.
func PostgresSchema(t testing.TB, dbURL string) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "calhook_test_" + hex.EncodeToString(b)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create test schema in PostgreSQL (%s): %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		if err := exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	return withSearchPath(dbURL, schema)
}

// withSearchPath sets search_path in a URL or a keyword/value connection
// string.
func withSearchPath(dbURL, schema string) string {
	if !strings.Contains(dbURL, "://") {
		return dbURL + " search_path=" + schema
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL // pgx will report it
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresURL returns the URL in CALHOOK_TEST_POSTGRES. It skips the test
// when the variable is unset and fails it when the server does not answer.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(PostgresEnv)
	if u == "" {
		t.Skip(PostgresEnv + " is not set; set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests")
	}
	checkPostgres(t, u)
	return u
}

func checkPostgres(t testing.TB, dbURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL is unreachable: %v", PostgresEnv, err)
	}
	conn.Close(ctx)
}
