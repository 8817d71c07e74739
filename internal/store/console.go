package store

import (
	"context"
	"time"
)

// ConsoleStore is the part of Store that named API keys, the web
// console's sessions and the portal's links use, with the reads the
// console's pages need beyond the API's.
type ConsoleStore interface {
	// CreateAPIKey stores a new named key of an account.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// ListAPIKeys returns an account's keys that are not revoked, oldest
	// first.
	ListAPIKeys(ctx context.Context, accountID string) ([]*APIKey, error)
	// APIKeyByHash returns the key that hashes to keyHash, unless it is
	// revoked.
	APIKeyByHash(ctx context.Context, keyHash string) (*APIKey, error)
	// RevokeAPIKey revokes one key of an account; its sessions end with it.
	RevokeAPIKey(ctx context.Context, accountID, id string, now time.Time) error
	// TouchAPIKey records that a key was used at now; it may skip the
	// write when the recorded time is less than a minute older.
	TouchAPIKey(ctx context.Context, id string, now time.Time) error

	// ListAccounts returns a page of every account, by id, after afterID.
	ListAccounts(ctx context.Context, afterID string, limit int) ([]*Account, error)

	// CreateSession stores a new console session.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with the given id unless it expired at
	// now, its idle time passed idle, or the key it was opened with was
	// revoked; it then returns ErrNotFound.
	Session(ctx context.Context, id string, now time.Time, idle time.Duration) (*Session, error)
	// TouchSession records activity on a session at now.
	TouchSession(ctx context.Context, id string, now time.Time) error
	// SetSessionAccount makes an admin session show another account.
	SetSessionAccount(ctx context.Context, id, accountID string) error
	// DeleteSession ends a session; ending one that does not exist is not
	// an error.
	DeleteSession(ctx context.Context, id string) error
	// PruneSessions deletes sessions and portal links that expired before
	// now or idled since before idleBefore, and returns how many.
	PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error)

	// CreatePortalLink stores a new portal link.
	CreatePortalLink(ctx context.Context, l *PortalLink) error
	// RedeemPortalLink marks a link used and returns it; a link already
	// used, expired at now, or whose key was revoked answers ErrNotFound,
	// so of two concurrent redemptions exactly one succeeds.
	RedeemPortalLink(ctx context.Context, id string, now time.Time) (*PortalLink, error)

	// ConsoleMessages returns a page of a subscription's messages, newest
	// first, filtered by status and event type when they are set, and the
	// Seq to continue after (0 at the end of the log). A filtered read
	// examines at most p.Scan messages, so it costs the same however rare
	// the match: a page may then hold fewer than p.Limit messages and still
	// have a next one.
	ConsoleMessages(ctx context.Context, p ConsoleMessagesParams) ([]*Message, int64, error)
	// EventsByStart returns up to p.Limit events of a calendar that start
	// in [p.From, p.To) (with p.Ongoing, also those that start before
	// p.From and end after it), by start time, after skipping p.Offset of
	// them. Only the fields a list shows are set: ID, CalendarID, Summary,
	// Location, Status, Start, End, AllDay, TimeZone and RRule.
	EventsByStart(ctx context.Context, p EventsByStartParams) ([]*Event, error)
	// EnqueueMessage stores one message for a subscription, due at its
	// NextAttemptAt, outside the change log (such as a test event).
	EnqueueMessage(ctx context.Context, m *Message) error
	// RecentChanges returns an account's newest changes, newest first.
	RecentChanges(ctx context.Context, accountID string, limit int) ([]*Change, error)
	// OpenConflictCounts returns how many open conflicts each of the
	// account's units among unitIDs has, by unit id, leaving out the units
	// without any; a nil unitIDs means every unit of the account.
	OpenConflictCounts(ctx context.Context, accountID string, unitIDs []string) (map[string]int, error)
	// LatestConflicts returns up to limit of a unit's conflicts in a state
	// (ConflictOpen or ConflictResolved), newest first.
	LatestConflicts(ctx context.Context, accountID, unitID, state string, limit int) ([]*Conflict, error)
	// ActivityMark returns a value that changes whenever a change or a
	// delivery attempt is recorded, for any account: live views compare
	// it to know when to look again.
	ActivityMark(ctx context.Context) (string, error)
}

// APIKey is one named key of an account. The key itself is never stored.
type APIKey struct {
	ID        string
	AccountID string
	Name      string
	// KeyHash is the hex SHA-256 of the key.
	KeyHash string
	// Prefix is the start of the key, to tell keys apart.
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// DefaultKeyID returns the id of the key an account is created with, its
// "default" named key.
func DefaultKeyID(accountID string) string { return "key_" + accountID }

// Session is a signed-in console (or portal) session.
type Session struct {
	// ID is the hash of the secret the cookie carries.
	ID string
	// AccountID is the account shown; empty for an admin session that has
	// not opened one.
	AccountID string
	// KeyID is the API key the session was opened with; empty for admin.
	KeyID string
	// AdminTokenHash is set for admin sessions.
	AdminTokenHash string
	// CSRF is the token every state-changing form carries.
	CSRF string
	// Portal restricts a portal session; nil for the console.
	Portal     *PortalScope
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// Admin reports whether the session was opened with the admin token.
func (s *Session) Admin() bool { return s.AdminTokenHash != "" }

// PortalScope is what a portal session may see and how it looks.
type PortalScope struct {
	// Feeds also opens the Feeds screen.
	Feeds bool `json:"feeds,omitempty"`
	// CalendarIDs, when set, limits the session to these calendars.
	CalendarIDs []string `json:"calendarIds,omitempty"`
	DisplayName string   `json:"displayName,omitempty"`
	// Accent is a #rrggbb colour.
	Accent  string `json:"accent,omitempty"`
	LogoURL string `json:"logoUrl,omitempty"`
}

// PortalLink is a single-use link that opens a portal session.
type PortalLink struct {
	// ID is the hash of the secret in the link.
	ID         string
	AccountID  string
	KeyID      string
	Scope      PortalScope
	SessionTTL time.Duration
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// ConsoleMessagesParams selects messages for ConsoleMessages.
type ConsoleMessagesParams struct {
	AccountID      string
	SubscriptionID string
	// Status and EventType filter when not empty.
	Status    string
	EventType string
	// Page.After is a Seq; pages go from newest to oldest.
	Page
	// Scan bounds the messages a filtered read examines; zero means
	// DefaultMessageScan.
	Scan int
}

// DefaultMessageScan is how many messages a filtered ConsoleMessages
// examines when Scan is not set.
const DefaultMessageScan = 1000

// EventsByStartParams selects events for EventsByStart.
type EventsByStartParams struct {
	AccountID  string
	CalendarID string
	From, To   time.Time
	// Ongoing also selects the events that start before From and end
	// after it (such as a stay that began before a month view's first
	// day).
	Ongoing bool
	Offset  int
	Limit   int
}
