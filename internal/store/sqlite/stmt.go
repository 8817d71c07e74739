package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// wtx is a write transaction that runs statements it has seen before as
// prepared statements: parsing SQL was a fifth of the single writer's time.
// A statement is prepared on the writer connection between two groups (it
// cannot be while a transaction holds the only connection), and reused from
// then on.
type wtx struct {
	*sql.Tx
	cache *stmtCache
}

// stmtCache holds the writer connection's prepared statements.
type stmtCache struct {
	mu       sync.Mutex
	prepared map[string]*sql.Stmt
	wanted   map[string]bool
}

func newStmtCache() *stmtCache {
	return &stmtCache{prepared: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// lookup returns the prepared statement of query, or nil after noting that
// it is wanted.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.prepared[query]; ok {
		return s
	}
	c.wanted[query] = true
	return nil
}

// maxPrepared bounds the cache; queries built with a variable number of
// placeholders are not worth keeping beyond it.
const maxPrepared = 256

// prepare prepares the wanted statements on pool, whose only connection
// must be free.
func (c *stmtCache) prepare(ctx context.Context, pool *sql.DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q := range c.wanted {
		delete(c.wanted, q)
		if len(c.prepared) >= maxPrepared {
			continue
		}
		if s, err := pool.PrepareContext(ctx, q); err == nil {
			c.prepared[q] = s
		}
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.prepared {
		s.Close()
	}
	clear(c.prepared)
}

// ExecContext runs query, prepared if it was seen before.
func (t *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.cache.lookup(query); s != nil {
		return t.Tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs query, prepared if it was seen before.
func (t *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.cache.lookup(query); s != nil {
		return t.Tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query, prepared if it was seen before.
func (t *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.cache.lookup(query); s != nil {
		return t.Tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
