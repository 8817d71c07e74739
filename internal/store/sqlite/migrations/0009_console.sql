-- Named API keys: an account may hold several, so a key can be rotated
-- without downtime. Only the SHA-256 of a key is kept. The key an account
-- was created with is copied here as "default"; from now on, keys are
-- looked up here only, so revoking it works like revoking any other.
CREATE TABLE api_keys (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    -- prefix is the start of the key, shown so a person can tell keys apart.
    prefix       TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX api_keys_account_seq ON api_keys (account_id, seq);
INSERT INTO api_keys (id, account_id, name, key_hash, created_at)
    SELECT 'key_' || id, id, 'default', api_key_hash, created_at FROM accounts;

-- Console sessions live in the database, so any node serves them. id is the
-- SHA-256 of the cookie's secret. A session opened with an API key (or a
-- portal link made with one) names it and ends when it is revoked; an admin
-- session names no key and records the hash of the admin token it was
-- opened with, so it ends when the operator changes the token.
CREATE TABLE console_sessions (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL DEFAULT '',
    key_id           TEXT NOT NULL DEFAULT '',
    admin_token_hash TEXT NOT NULL DEFAULT '',
    csrf             TEXT NOT NULL,
    -- portal is the JSON scope of a portal session; empty for the console.
    portal           TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Portal links are single use: used_at is set by the one request that
-- opens a session with the link.
CREATE TABLE portal_links (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL,
    portal     TEXT NOT NULL,
    session_ttl_seconds INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX portal_links_expires ON portal_links (expires_at);

-- The console's agenda reads events by calendar and start along
-- events_calendar_start, made by the units migration before this one.
