package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/sqlite"
)

func newAccount(i int) *store.Account {
	now := time.Now().UTC()
	return &store.Account{ID: fmt.Sprintf("acc_%06d", i), Name: "a", APIKeyHash: fmt.Sprintf("%064d", i),
		FeedToken: fmt.Sprintf("%064x", i), CreatedAt: now, UpdatedAt: now}
}

// TestBackupWhileWriting copies a database that a writer keeps changing:
// the copy holds every account stored before the backup began, and
// restores into a database calhook opens.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	live, err := sqlite.Open(ctx, filepath.Join(dir, "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	stop, done := make(chan struct{}), make(chan int)
	var acked int // accounts stored before Backup starts, read after done
	ackedAt := make(chan int, 1)
	go func() {
		i := 0
		defer func() { done <- i }()
		for ; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := live.CreateAccount(ctx, newAccount(i)); err != nil {
				t.Errorf("CreateAccount %d: %v", i, err)
				return
			}
			if i == 200 {
				ackedAt <- i + 1
			}
		}
	}()
	acked = <-ackedAt
	backup := filepath.Join(dir, "backup.db")
	size, err := sqlite.Backup(ctx, filepath.Join(dir, "live.db"), backup)
	close(stop)
	total := <-done
	if err != nil || size == 0 {
		t.Fatalf("Backup = %d, %v", size, err)
	}
	if _, err := sqlite.Backup(ctx, filepath.Join(dir, "live.db"), backup); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Backup onto an existing file = %v; want a refusal", err)
	}

	// The live database is in use: restoring over it is refused.
	if err := sqlite.Restore(ctx, backup, filepath.Join(dir, "live.db")); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("Restore over an open database = %v; want ErrInUse", err)
	}

	restored := filepath.Join(dir, "restored.db")
	if err := sqlite.Restore(ctx, backup, restored); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	db, err := sqlite.Open(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < acked; i++ {
		if _, err := db.Account(ctx, fmt.Sprintf("acc_%06d", i)); err != nil {
			t.Fatalf("account %d, stored before the backup: %v", i, err)
		}
	}
	p, err := db.Pragmas(ctx)
	if err != nil || p["journal_mode"] != "wal" {
		t.Errorf("restored journal_mode = %q, %v; want wal", p["journal_mode"], err)
	}
	inBackup := countAccounts(t, db, total)

	// Once stopped, the live database can be rolled back to the backup:
	// the accounts written after it are gone, even those still in the WAL.
	live.Close()
	if err := sqlite.Restore(ctx, backup, filepath.Join(dir, "live.db")); err != nil {
		t.Fatalf("Restore over a closed database: %v", err)
	}
	back, err := sqlite.Open(ctx, filepath.Join(dir, "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if got := countAccounts(t, back, total); got != inBackup {
		t.Errorf("after restoring over the live database: %d accounts; want the backup's %d", got, inBackup)
	}
	t.Logf("%d accounts written, %d before the backup, %d in it", total, acked, inBackup)
}

// countAccounts counts the accounts among the first n of newAccount.
func countAccounts(t *testing.T, db *sqlite.DB, n int) int {
	t.Helper()
	found := 0
	for i := 0; i < n; i++ {
		_, err := db.Account(context.Background(), fmt.Sprintf("acc_%06d", i))
		switch {
		case err == nil:
			found++
		case !errors.Is(err, store.ErrNotFound):
			t.Fatalf("Account %d: %v", i, err)
		}
	}
	return found
}

func TestRestoreRefusesOtherFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	other := filepath.Join(dir, "other.db")
	odb, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odb.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	odb.Close()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not sqlite ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{other, garbage, filepath.Join(dir, "missing.db")} {
		target := filepath.Join(dir, "target.db")
		if err := sqlite.Restore(ctx, src, target); err == nil {
			t.Errorf("Restore(%s) = nil; want an error", filepath.Base(src))
		}
		if _, err := sqlite.Backup(ctx, src, filepath.Join(dir, "b.db")); err == nil {
			t.Errorf("Backup(%s) = nil; want an error", filepath.Base(src))
		}
	}
}
