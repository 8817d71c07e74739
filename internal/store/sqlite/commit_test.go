package sqlite

import (
	"context"
	"fmt"
	"os"
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
	db := openTemp(t)

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

// TestWALRestarts checks that the WAL starts over under writes that never
// pause, with the writer's automatic checkpoint off: the checkpointer's
// passes and the committer's checkpoint of the tail (see checkpoints)
// alone keep it small.
func TestWALRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "calhook.db")
	// Restart at 1 MiB; 0 turns the writer's own checkpoint off.
	db, err := open(ctx, path, walLimits{every: 5 * time.Millisecond, restart: 256, tail: 16, writer: 0})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()

	// Two writers, each pausing far less than a checkpoint takes, for a
	// second: about 20 MiB of WAL frames.
	const writers, size, pause, span = 2, 4 << 10, 100 * time.Microsecond, time.Second
	value := make([]byte, size)
	end := time.Now().Add(span)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				err := db.bulkTx(ctx, func(ctx context.Context, tx *wtx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (name, value) VALUES (?, ?)`,
						fmt.Sprint(w, "-", i), value)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write: %v", err)
	}
	// The WAL file keeps the size it grew to.
	info, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatalf("stat WAL: %v", err)
	}
	if most := int64(8 << 20); info.Size() > most {
		t.Errorf("WAL grew to %d bytes; want at most %d", info.Size(), most)
	}
}
