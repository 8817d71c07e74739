package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrInUse is returned by Restore when another connection (a running
// calhook serve, say) has the database open.
var ErrInUse = errors.New("database is in use")

// fileURI is the URI of the database file at path with the given query.
func fileURI(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	if !filepath.IsAbs(path) {
		// A relative path stays relative: file:calhook.db, not file:///….
		u = url.URL{Scheme: "file", Opaque: path, RawQuery: q.Encode()}
	}
	return u.String()
}

// Backup writes a consistent copy of the database at path to dst, which
// must not exist, while other connections (calhook serve) go on reading
// and writing: VACUUM INTO reads one snapshot in a read transaction, which
// in WAL mode neither blocks nor waits for the writer, so the copy holds
// every transaction committed before it started and none after. The copy
// is written beside dst and renamed into place once complete and synced,
// so dst is never a partial file. It returns the size of the copy.
func Backup(ctx context.Context, path, dst string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("backup: %s already exists", dst)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", fileURI(path, q))
	if err != nil {
		return 0, fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer db.Close()
	if err := checkCalhookDB(ctx, db); err != nil {
		return 0, fmt.Errorf("backup: %s: %w", path, err)
	}

	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".partial")
	os.Remove(tmp) // a leftover of an interrupted backup
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup: vacuum %s into %s: %w", path, tmp, err)
	}
	size, err := syncFile(tmp)
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return size, nil
}

// Restore replaces the database at path with the backup at src, after
// checking that src is an intact calhook database. It answers ErrInUse,
// changing nothing, when any other connection has path open: it takes
// SQLite's exclusive lock on path first and holds it while SQLite's
// online backup API copies src in, so no calhook can open the database
// half restored. A missing path is created.
func Restore(ctx context.Context, src, path string) error {
	sdb, err := sql.Open("sqlite", fileURI(src, nil))
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", src, err)
	}
	err = checkIntegrity(ctx, sdb)
	if err == nil {
		err = checkCalhookDB(ctx, sdb)
	}
	sdb.Close()
	if err != nil {
		return fmt.Errorf("restore: %s: %w", src, err)
	}

	// locking_mode=EXCLUSIVE keeps the lock of the first write
	// transaction until the connection closes; busy_timeout=0 fails at
	// once instead of waiting for a server that will not go away.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(0)")
	q.Add("_pragma", "locking_mode(EXCLUSIVE)")
	db, err := sql.Open("sqlite", fileURI(path, q))
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", path, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		if isBusy(err) {
			return fmt.Errorf("restore: %s: %w (stop calhook first)", path, ErrInUse)
		}
		return fmt.Errorf("restore: lock %s: %w", path, err)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("restore: lock %s: %w", path, err)
	}
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(interface {
			NewRestore(string) (*sqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("driver connection %T cannot restore", dc)
		}
		b, err := r.NewRestore(fileURI(src, nil))
		if err != nil {
			return err
		}
		for {
			more, err := b.Step(1024)
			if err == nil && more && ctx.Err() != nil {
				err = ctx.Err()
			}
			if err != nil || !more {
				return errors.Join(err, b.Finish())
			}
		}
	})
	if err != nil {
		return fmt.Errorf("restore: copy %s to %s: %w", src, path, err)
	}
	// The copy came from VACUUM INTO, in rollback-journal mode: put the
	// restored database back in WAL mode, as calhook runs it.
	if _, err := conn.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
		return fmt.Errorf("restore: %s: %w", path, err)
	}
	return checkIntegrity(ctx, conn)
}

// checkIntegrity runs PRAGMA integrity_check.
func checkIntegrity(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity check failed: %v", problems)
	}
	return nil
}

// checkCalhookDB makes sure db holds calhook's schema, so that a backup
// or restore of the wrong file fails before it copies anything.
func checkCalhookDB(ctx context.Context, db *sql.DB) error {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	if n == 0 {
		return errors.New("not a calhook database (no schema_migrations table)")
	}
	return nil
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// syncFile flushes the file at path to disk and returns its size.
func syncFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
