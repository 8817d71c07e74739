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

func (c *stmtCache) close() { closeStmts(&c.mu, c.prepared) }

// closeStmts closes and forgets the prepared statements, holding mu.
func closeStmts(mu *sync.Mutex, prepared map[string]*sql.Stmt) {
	mu.Lock()
	defer mu.Unlock()
	for _, s := range prepared {
		s.Close()
	}
	clear(prepared)
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

// readCache runs reads on the reader pool as prepared statements, each
// prepared on first use and kept (database/sql prepares it again on each
// connection that runs it): parsing the SQL was half the time of the
// conflict detector's step. Only queries with a fixed text belong here;
// a query built with a variable number of placeholders would fill it.
type readCache struct {
	pool     *sql.DB
	mu       sync.Mutex
	prepared map[string]*sql.Stmt
}

func newReadCache(pool *sql.DB) *readCache {
	return &readCache{pool: pool, prepared: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement of query, or nil when it cannot be
// prepared or the cache is full (the caller then runs the text).
func (c *readCache) stmt(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.prepared[query]; ok {
		return s
	}
	if len(c.prepared) >= maxPrepared {
		return nil
	}
	s, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil // running the text reports the error
	}
	c.prepared[query] = s
	return s
}

// QueryContext runs query as a prepared statement.
func (c *readCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := c.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return c.pool.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query as a prepared statement.
func (c *readCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := c.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return c.pool.QueryRowContext(ctx, query, args...)
}

func (c *readCache) close() { closeStmts(&c.mu, c.prepared) }
