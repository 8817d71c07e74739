package migrate_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"

	"github.com/calhook/calhook/internal/store/migrate"
)

// executor runs migrations on a SQLite database through database/sql.
type executor struct{ db *sql.DB }

func (e executor) Init(ctx context.Context) error {
	_, err := e.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`)
	return err
}

func (e executor) InTx(ctx context.Context, fn func(context.Context, migrate.Tx) error) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(ctx, sqlTx{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Applied(ctx context.Context, version int) (bool, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n)
	return n > 0, err
}

func (t sqlTx) Exec(ctx context.Context, sql string) error {
	_, err := t.tx.ExecContext(ctx, sql)
	return err
}

func (t sqlTx) Record(ctx context.Context, m migrate.Migration) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`, m.Version, m.Name)
	return err
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func recorded(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestLoad(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []int
		wantErr string
	}{
		{"in version order", fstest.MapFS{
			"m/0010_c.sql": file("c"), "m/0002_b.sql": file("b"), "m/0001_a.sql": file("a"), "m/README": file("not SQL"),
		}, []int{1, 2, 10}, ""},
		{"empty", fstest.MapFS{"m/README": file("")}, nil, ""},
		{"no number", fstest.MapFS{"m/init.sql": file("")}, nil, "migration init.sql: name must start with a number"},
		{"same number", fstest.MapFS{"m/0001_a.sql": file(""), "m/1_b.sql": file("")}, nil, "have the same number"},
	}
	for _, tt := range tests {
		ms, err := migrate.Load(tt.fs, "m")
		var got []int
		for _, m := range ms {
			got = append(got, m.Version)
		}
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: Load = %v, %v; want error %q", tt.name, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("%s: Load = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestRunAppliesEachOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	fsys := fstest.MapFS{
		"m/0001_t.sql": {Data: []byte(`CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);`)},
		"m/0002_u.sql": {Data: []byte(`INSERT INTO t VALUES (2)`)},
	}
	for range 2 {
		if err := migrate.Run(ctx, fsys, "m", executor{db}); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows of t = %d, %v; want 2 (each migration applied once)", n, err)
	}
	if got, want := recorded(t, db), []string{"0001_t.sql", "0002_u.sql"}; !slices.Equal(got, want) {
		t.Errorf("recorded %v; want %v", got, want)
	}

	// A new migration is applied by the next Run, after the others.
	fsys["m/0003_v.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO t VALUES (3)`)}
	if err := migrate.Run(ctx, fsys, "m", executor{db}); err != nil {
		t.Fatalf("Run with a new migration: %v", err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Errorf("rows of t = %d, %v; want 3", n, err)
	}
}

func TestRunStopsAtAFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	fsys := fstest.MapFS{
		"m/0001_t.sql":   {Data: []byte(`CREATE TABLE t (n INTEGER)`)},
		"m/0002_bad.sql": {Data: []byte(`INSERT INTO t VALUES (1); INSERT INTO nosuch VALUES (1)`)},
		"m/0003_u.sql":   {Data: []byte(`INSERT INTO t VALUES (3)`)},
	}
	err := migrate.Run(ctx, fsys, "m", executor{db})
	if err == nil || !strings.Contains(err.Error(), "apply migration 0002_bad.sql") {
		t.Fatalf("Run = %v; want the failing migration named", err)
	}
	if got, want := recorded(t, db), []string{"0001_t.sql"}; !slices.Equal(got, want) {
		t.Errorf("recorded %v; want %v", got, want)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of t = %d, %v; want 0 (the failed migration rolled back, the next not run)", n, err)
	}
}
