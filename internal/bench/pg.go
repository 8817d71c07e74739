package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the environment variable the pg-* scenarios read
// their default --postgres URL from; the tests use the same one.
const PostgresEnv = "CALHOOK_TEST_POSTGRES"

// pgSchema is an empty schema made for one round of one target.
type pgSchema struct {
	admin string // the database URL as given
	name  string
	// URL is admin with the schema as its search_path: what calhook's
	// --db gets.
	URL string
}

// createPGSchema makes an empty schema calhookbench_<random> in the
// database at dbURL.
func createPGSchema(ctx context.Context, dbURL string) (*pgSchema, error) {
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return nil, fmt.Errorf("postgres %q: want a postgres:// URL, as calhook's --db takes", redactURL(dbURL))
	}
	s := &pgSchema{admin: dbURL, name: "calhookbench_" + randomHex(8)}
	u, err := withSearchPath(dbURL, s.name)
	if err != nil {
		return nil, err
	}
	s.URL = u
	if err := pgExec(ctx, dbURL, `CREATE SCHEMA `+s.name); err != nil {
		return nil, fmt.Errorf("create schema in PostgreSQL at %s: %w", redactURL(dbURL), err)
	}
	return s, nil
}

// drop removes the schema and everything in it. It runs after the round,
// whatever the round's context says.
func (s *pgSchema) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pgExec(ctx, s.admin, `DROP SCHEMA `+s.name+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", s.name, err)
	}
	return nil
}

// pgExec runs one statement on a connection of its own.
func pgExec(ctx context.Context, dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgQueryRow runs one query on a connection of its own and scans its row.
func pgQueryRow(ctx context.Context, dbURL, sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

// withSearchPath returns dbURL with search_path set to schema, which
// calhook's store passes on to PostgreSQL as a run-time parameter.
func withSearchPath(dbURL, schema string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("postgres URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// startNode starts bin serving the database db (a SQLite path or a
// postgres:// URL) on a free loopback port, with adminToken, its log in
// dir, and extra flags after serve's own; it returns once /readyz answers.
// The nodes of one cluster share the admin token, so any of them takes any
// request.
func startNode(ctx context.Context, bin, dir, db, adminToken string, extra ...string) (*calhookServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return serveSpec{
		name: "calhook " + filepath.Base(dir), bin: bin, dir: dir, db: db, addr: addr,
		adminToken: adminToken, extra: extra,
	}.start(ctx)
}

// postgresCPU returns the CPU time used so far by every process named
// postgres on the machine (the server's backends and helpers) by pid. A
// backend that exits between two readings takes its time with it; the
// connections of calhook's pools live through a measured run.
func postgresCPU() map[int]time.Duration {
	out := map[int]time.Duration{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if d, err := procCPU(pid); err == nil {
			out[pid] = d
		}
	}
	return out
}

// cpuSince returns the CPU time the processes of now used since before; a
// process that is new counts from zero.
func cpuSince(before, now map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range now {
		d += t - before[pid]
	}
	return d
}

// clusterCPU measures the CPU time of a cluster's nodes, of PostgreSQL
// and of the bench over a span.
type clusterCPU struct {
	nodes    []int
	start    map[int]time.Duration
	pgStart  map[int]time.Duration
	benchCPU time.Duration
}

func startClusterCPU(nodes []*calhookServer) *clusterCPU {
	m := &clusterCPU{start: map[int]time.Duration{}, pgStart: postgresCPU(), benchCPU: selfCPU()}
	for _, n := range nodes {
		pid := n.cmd.Process.Pid
		m.nodes = append(m.nodes, pid)
		if d, err := procCPU(pid); err == nil {
			m.start[pid] = d
		}
	}
	return m
}

// stop returns the CPU time the nodes (together), PostgreSQL and the
// bench used since start.
func (m *clusterCPU) stop() (calhook, postgres, bench time.Duration, err error) {
	bench = selfCPU() - m.benchCPU
	postgres = cpuSince(m.pgStart, postgresCPU())
	var errs []error
	for _, pid := range m.nodes {
		d, err := procCPU(pid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		calhook += d - m.start[pid]
	}
	return calhook, postgres, bench, errors.Join(errs...)
}
