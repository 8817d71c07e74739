package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/calhook/calhook/internal/lifecycle"
	"github.com/calhook/calhook/internal/store"
)

// PruneStore is what a Pruner prunes.
type PruneStore interface {
	Prune(ctx context.Context, before time.Time) (store.PruneStats, error)
	ExpireHooks(ctx context.Context, before time.Time) (int64, error)
	RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
}

// PrunerConfig configures a Pruner.
type PrunerConfig struct {
	Store  PruneStore
	Logger *slog.Logger
	// Retention is how long attempts, finished messages and changes are
	// kept.
	Retention time.Duration
	// HookLease deletes iCal hooks not registered again for this long;
	// zero keeps them.
	HookLease time.Duration
	// Every is how often to prune (default an hour).
	Every time.Duration
	Now   func() time.Time
}

// Pruner deletes delivery attempts, finished messages and changes older
// than the retention, once at start and then periodically, on one node
// of a cluster at a time.
type Pruner struct {
	cfg  PrunerConfig
	loop lifecycle.Loop
}

// NewPruner returns a Pruner with defaults filled in; call Start to run it.
func NewPruner(cfg PrunerConfig) *Pruner {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pruner{cfg: cfg}
}

// Start runs the pruner until Stop.
func (p *Pruner) Start(ctx context.Context) error {
	p.loop.Go(ctx, p.run)
	return nil
}

// Stop ends the pruner and waits for it; safe before Start and twice.
func (p *Pruner) Stop(context.Context) { p.loop.Stop() }

func (p *Pruner) run(ctx context.Context) {
	ticker := time.NewTicker(p.cfg.Every)
	defer ticker.Stop()
	for {
		if _, err := p.cfg.Store.RunExclusive(ctx, "prune", p.runOnce); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("prune", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// runOnce prunes and expires once; it logs rather than returns errors so
// one failing part does not stop the other.
func (p *Pruner) runOnce(ctx context.Context) error {
	st, err := p.cfg.Store.Prune(ctx, p.cfg.Now().Add(-p.cfg.Retention))
	switch {
	case err != nil && ctx.Err() == nil:
		p.cfg.Logger.Error("prune", "error", err)
	case st.Attempts+st.Messages+st.Changes > 0:
		p.cfg.Logger.Info("pruned", "attempts", st.Attempts, "messages", st.Messages, "changes", st.Changes)
	}
	if p.cfg.HookLease > 0 {
		n, err := p.cfg.Store.ExpireHooks(ctx, p.cfg.Now().Add(-p.cfg.HookLease))
		switch {
		case err != nil && ctx.Err() == nil:
			p.cfg.Logger.Error("expire icalhooks", "error", err)
		case n > 0:
			p.cfg.Logger.Info("icalhooks expired: not registered again within their lease", "hooks", n)
		}
	}
	return nil
}
