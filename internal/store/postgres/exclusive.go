package postgres

import (
	"context"
	"fmt"
)

// RunExclusive runs fn if no other node is running the job of that name,
// and reports whether it ran. Periodic jobs (pruning, hook expiry) use it
// to run once per cluster rather than once per node. The lock is a
// session advisory lock held on one pooled connection while fn runs.
func (db *DB) RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("run %s exclusively: %w", name, err)
	}
	defer conn.Release()
	key := lockKey("job", name, db.schema)
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("run %s exclusively: %w", name, err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		// A failed unlock is not fn's failure; the lock then ends with
		// the connection's session.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	}()
	return true, fn(ctx)
}
