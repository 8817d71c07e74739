package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/calhook/calhook/internal/store/sqlite"
)

// sqlitePath returns the file of a SQLite database setting, or an error
// pointing PostgreSQL users at pg_dump.
func sqlitePath(dsn string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "", errors.New("backup and restore are for SQLite databases; back PostgreSQL up with pg_dump and restore it with pg_restore")
	}
	return strings.TrimPrefix(dsn, "sqlite://"), nil
}

// backupCmd writes a consistent copy of a SQLite database, live or not.
func backupCmd(ctx context.Context, env Env, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := bindCommon(fs, &cfg, env.Getenv); err != nil {
		return err
	}
	to := fs.String("to", "", "file to write the copy to; must not exist (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("backup: --to FILE is required")
	}
	path, err := sqlitePath(cfg.DB)
	if err != nil {
		return err
	}
	size, err := sqlite.Backup(ctx, path, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "backed up %s to %s (%d bytes)\n", path, *to, size)
	return nil
}

// restoreCmd puts a backup in place of a SQLite database that no process
// has open.
func restoreCmd(ctx context.Context, env Env, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := bindCommon(fs, &cfg, env.Getenv); err != nil {
		return err
	}
	from := fs.String("from", "", "backup file to restore (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("restore: --from FILE is required")
	}
	path, err := sqlitePath(cfg.DB)
	if err != nil {
		return err
	}
	if err := sqlite.Restore(ctx, *from, path); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "restored %s from %s\n", path, *from)
	return nil
}
