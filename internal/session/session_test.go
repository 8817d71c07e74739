package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/session"
	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t)
			clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			accounts := account.NewService(db, clk.now, nil)
			a, err := accounts.Create(ctx, "Acme")
			if err != nil {
				t.Fatal(err)
			}
			svc := session.New(session.Config{Store: db, Now: clk.now, Idle: time.Hour, AdminToken: "admin"})

			o, err := svc.OpenWithKey(ctx, a.ID, store.DefaultKeyID(a.ID))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := svc.Lookup(ctx, o.Secret); err != nil || got.AccountID != a.ID || got.CSRF == "" {
				t.Fatalf("Lookup = %+v, %v", got, err)
			}
			if !session.CSRFValid(o.Session, o.CSRF) || session.CSRFValid(o.Session, "") || session.CSRFValid(o.Session, o.CSRF+"x") {
				t.Error("CSRFValid accepts a wrong token or refuses the right one")
			}
			// Activity keeps it alive; an idle hour ends it.
			clk.advance(50 * time.Minute)
			if _, err := svc.Lookup(ctx, o.Secret); err != nil {
				t.Fatalf("Lookup after 50 min: %v", err)
			}
			clk.advance(50 * time.Minute)
			if _, err := svc.Lookup(ctx, o.Secret); err != nil {
				t.Errorf("Lookup 50 min after the last: %v; want it alive", err)
			}
			clk.advance(61 * time.Minute)
			if _, err := svc.Lookup(ctx, o.Secret); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Lookup after an idle hour = %v; want ErrNotFound", err)
			}
			if _, err := svc.Lookup(ctx, "chk_not_a_session"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Lookup(unknown) = %v; want ErrNotFound", err)
			}

			// Admin sessions end when the admin token changes.
			if _, err := svc.OpenAdmin(ctx, "wrong"); !errors.Is(err, session.ErrBadCredential) {
				t.Errorf("OpenAdmin(wrong) = %v", err)
			}
			adm, err := svc.OpenAdmin(ctx, "admin")
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.UseAccount(ctx, adm.Session, a.ID); err != nil {
				t.Fatal(err)
			}
			if got, err := svc.Lookup(ctx, adm.Secret); err != nil || got.AccountID != a.ID {
				t.Errorf("admin Lookup = %+v, %v", got, err)
			}
			other := session.New(session.Config{Store: db, Now: clk.now, Idle: time.Hour, AdminToken: "new-admin"})
			if _, err := other.Lookup(ctx, adm.Secret); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Lookup after the admin token changed = %v; want ErrNotFound", err)
			}
			if err := svc.End(ctx, adm.Session); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Lookup(ctx, adm.Secret); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Lookup after End = %v; want ErrNotFound", err)
			}

			// Portal links: defaults, single use, session lifetime.
			l, err := svc.CreatePortalLink(ctx, a.ID, store.DefaultKeyID(a.ID), session.PortalInput{DisplayName: " Acme ", Accent: "#AABBCC"})
			if err != nil {
				t.Fatal(err)
			}
			if want := clk.now().Add(session.DefaultLinkTTL); !l.ExpiresAt.Equal(want) {
				t.Errorf("link expires at %v; want %v", l.ExpiresAt, want)
			}
			p, err := svc.RedeemPortalLink(ctx, l.Secret)
			if err != nil || p.Portal == nil || p.Portal.DisplayName != "Acme" || p.Portal.Accent != "#aabbcc" {
				t.Fatalf("RedeemPortalLink = %+v, %v", p, err)
			}
			if _, err := svc.RedeemPortalLink(ctx, l.Secret); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("second RedeemPortalLink = %v; want ErrNotFound", err)
			}
			if !p.ExpiresAt.Equal(clk.now().Add(session.DefaultPortalTTL)) {
				t.Errorf("portal session expires at %v; want in %v", p.ExpiresAt, session.DefaultPortalTTL)
			}
			l2, err := svc.CreatePortalLink(ctx, a.ID, store.DefaultKeyID(a.ID), session.PortalInput{})
			if err != nil {
				t.Fatal(err)
			}
			clk.advance(session.DefaultLinkTTL + time.Second)
			if _, err := svc.RedeemPortalLink(ctx, l2.Secret); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RedeemPortalLink after 10 min = %v; want ErrNotFound", err)
			}
		})
	}
}

func TestPortalInput(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	a, err := account.NewService(db, nil, nil).Create(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	svc := session.New(session.Config{Store: db})
	tests := []struct {
		name string
		in   session.PortalInput
		ok   bool
	}{
		{"empty", session.PortalInput{}, true},
		{"all set", session.PortalInput{Feeds: true, DisplayName: "Acme", Accent: "#112233", LogoURL: "https://x.example/l.png"}, true},
		{"accent css", session.PortalInput{Accent: "red; background: url(x)"}, false},
		{"accent short", session.PortalInput{Accent: "#fff"}, false},
		{"logo javascript", session.PortalInput{LogoURL: "javascript:alert(1)"}, false},
		{"logo data", session.PortalInput{LogoURL: "data:image/png;base64,AA"}, false},
		{"name control", session.PortalInput{DisplayName: "a\nb"}, false},
		{"unknown calendar", session.PortalInput{CalendarIDs: []string{"cal_nope"}}, false},
		{"link ttl", session.PortalInput{LinkTTL: 2 * time.Hour}, false},
		{"session ttl", session.PortalInput{SessionTTL: 8 * 24 * time.Hour}, false},
	}
	for _, tt := range tests {
		_, err := svc.CreatePortalLink(ctx, a.ID, store.DefaultKeyID(a.ID), tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CreatePortalLink(%+v) = %v; want ok %v", tt.name, tt.in, err, tt.ok)
		}
	}
}
