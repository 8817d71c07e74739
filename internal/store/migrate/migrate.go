// Package migrate is the one migration runner of calhook's store
// adapters. Migrations are numbered plain SQL files (NNNN_what.sql) that
// an adapter embeds; Run applies those not applied yet, in order, each in
// its own transaction, and records each in the table schema_migrations
// (version, name, applied_at), so a database is never migrated twice. An
// adapter supplies an Executor: its SQL dialect for the record table and
// its transactions.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one numbered SQL file.
type Migration struct {
	// Version is the number the file name starts with.
	Version int
	// Name is the file name, such as "0001_init.sql".
	Name string
	// SQL is the file's content: one or more statements.
	SQL string
}

// Executor runs migrations on one database, in its dialect.
type Executor interface {
	// Init creates the table that records applied migrations, if it
	// does not exist.
	Init(ctx context.Context) error
	// InTx runs fn in one transaction and commits it if fn returns nil;
	// fn uses the context it is given for the transaction's statements.
	// A database that several processes share serializes InTx across
	// them, so that each migration is applied once.
	InTx(ctx context.Context, fn func(context.Context, Tx) error) error
}

// Tx is a migration's transaction.
type Tx interface {
	// Applied reports whether the migration of the version is recorded.
	Applied(ctx context.Context, version int) (bool, error)
	// Exec runs a migration's SQL.
	Exec(ctx context.Context, sql string) error
	// Record records m as applied.
	Record(ctx context.Context, m Migration) error
}

// Load returns the migrations of the .sql files in dir of fsys, in
// version order. Every file name must start with a number, and no two
// with the same one.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var out []Migration
	for _, name := range names {
		base := path.Base(name)
		prefix, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(prefix)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		out = append(out, Migration{Version: version, Name: base, SQL: string(body)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Run applies the migrations in dir of fsys that ex's database has not
// recorded, in version order, each in its own transaction. It stops at
// the first that fails, leaving it and those after it unapplied.
func Run(ctx context.Context, fsys fs.FS, dir string, ex Executor) error {
	if err := ex.Init(ctx); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	migrations, err := Load(fsys, dir)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		err := ex.InTx(ctx, func(ctx context.Context, tx Tx) error {
			done, err := tx.Applied(ctx, m.Version)
			if err != nil || done {
				return err
			}
			if err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			return tx.Record(ctx, m)
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}
