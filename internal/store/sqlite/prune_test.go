package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrunePlans: every statement of Prune and ExpireHooks follows an
// index or the rowid, without a table scan or a sort. (That a range read
// stops early, as the walk from the log's start does, is beyond a plan:
// see Prune.)
func TestPrunePlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTemp(t)
	for _, q := range []string{pruneAttempts, pruneMessages, pruneFirstNew, pruneBefore, pruneChanges, pruneHooks} {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = 1
		}
		plan := explain(ctx, t, db, q, args)
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") || strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("plan of %s = %q; want every step along an index", q, plan)
				break
			}
		}
	}
}

// TestRecoverClaimsPlan: the recovery of claims at start reads the queue's
// index (messages_due), not the delivery log.
func TestRecoverClaimsPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTemp(t)
	plan := explain(ctx, t, db, recoverClaimsSQL, []any{1})
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX messages_due") {
		t.Errorf("plan of RecoverClaims = %q; want messages_due alone", plan)
	}
}

// openTemp opens a database in a temporary directory, closed when t ends.
func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "calhook.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// explain returns the steps of q's query plan.
func explain(ctx context.Context, t *testing.T, db *DB, q string, args []any) []string {
	t.Helper()
	rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	return plan
}
