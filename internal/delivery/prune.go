package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// PruneStore is what a Pruner prunes.
type PruneStore interface {
	Prune(ctx context.Context, before time.Time) (store.PruneStats, error)
	ExpireHooks(ctx context.Context, before time.Time) (int64, error)
	RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
}

// Pruner deletes delivery attempts, finished messages and changes older
// than the retention, once at start and then periodically.
type Pruner struct {
	Store     PruneStore
	Logger    *slog.Logger
	Retention time.Duration
	// HookLease deletes iCal hooks not registered again for this long;
	// zero keeps them.
	HookLease time.Duration
	Every     time.Duration
	Now       func() time.Time

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start runs the pruner until Stop.
func (p *Pruner) Start(ctx context.Context) error {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Every <= 0 {
		p.Every = time.Hour
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		ticker := time.NewTicker(p.Every)
		defer ticker.Stop()
		for {
			if _, err := p.Store.RunExclusive(ctx, "prune", p.runOnce); err != nil && ctx.Err() == nil {
				p.Logger.Error("prune", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return nil
}

// Stop ends the pruner and waits for it; safe before Start and twice.
func (p *Pruner) Stop() {
	p.once.Do(func() {
		if p.cancel != nil {
			p.cancel()
			<-p.done
		}
	})
}

// runOnce prunes and expires once; it logs rather than returns errors so
// one failing part does not stop the other.
func (p *Pruner) runOnce(ctx context.Context) error {
	st, err := p.Store.Prune(ctx, p.Now().Add(-p.Retention))
	switch {
	case err != nil && ctx.Err() == nil:
		p.Logger.Error("prune", "error", err)
	case st.Attempts+st.Messages+st.Changes > 0:
		p.Logger.Info("pruned", "attempts", st.Attempts, "messages", st.Messages, "changes", st.Changes)
	}
	if p.HookLease > 0 {
		n, err := p.Store.ExpireHooks(ctx, p.Now().Add(-p.HookLease))
		switch {
		case err != nil && ctx.Err() == nil:
			p.Logger.Error("expire icalhooks", "error", err)
		case n > 0:
			p.Logger.Info("icalhooks expired: not registered again within their lease", "hooks", n)
		}
	}
	return nil
}
