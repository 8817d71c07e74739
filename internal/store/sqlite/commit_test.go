package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBulkWritesYield checks the order the committer runs writes in: a
// write queued while a bulk write (an import chunk) holds the writer runs
// before the next bulk write, even one that was queued earlier, and in a
// transaction of its own.
func TestBulkWritesYield(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()

	var mu sync.Mutex
	var order []string
	record := func(name string) func(context.Context, *wtx) error {
		return func(ctx context.Context, tx *wtx) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			_, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (name, value) VALUES (?, X'00')`, name)
			return err
		}
	}
	running, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		errs <- db.bulkTx(ctx, func(ctx context.Context, tx *wtx) error {
			close(running)
			<-release
			return record("chunk 1")(ctx, tx)
		})
	})
	<-running
	wg.Go(func() { errs <- db.bulkTx(ctx, record("chunk 2")) })
	// A goroutine blocked sending on a channel cannot be observed: give
	// the second chunk time to queue before the API write does.
	time.Sleep(100 * time.Millisecond)
	wg.Go(func() { errs <- db.tx(ctx, record("api write")) })
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if want := []string{"chunk 1", "api write", "chunk 2"}; !slices.Equal(order, want) {
		t.Errorf("writes ran in the order %q; want %q", order, want)
	}
}
