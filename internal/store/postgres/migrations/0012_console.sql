-- Named API keys: an account may hold several, so a key can be rotated
-- without downtime. Only the SHA-256 of a key is kept. The key an account
-- was created with is copied here as "default"; from now on, keys are
-- looked up here only, so revoking it works like revoking any other.
CREATE TABLE api_keys (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    -- prefix is the start of the key, shown so a person can tell keys apart.
    prefix       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_account_seq ON api_keys (account_id, seq);
INSERT INTO api_keys (id, account_id, name, key_hash, created_at)
    SELECT 'key_' || id, id, 'default', api_key_hash, created_at FROM accounts;

-- Console sessions live in the database, so any node serves them. id is the
-- SHA-256 of the cookie's secret. A session opened with an API key (or a
-- portal link made with one) names it and ends when it is revoked; an admin
-- session names no key and records the hash of the admin token it was
-- opened with, so it ends when the operator changes the token.
CREATE TABLE console_sessions (
    id               text PRIMARY KEY,
    account_id       text NOT NULL DEFAULT '',
    key_id           text NOT NULL DEFAULT '',
    admin_token_hash text NOT NULL DEFAULT '',
    csrf             text NOT NULL,
    -- portal is the JSON scope of a portal session; empty for the console.
    portal           text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    last_seen_at     timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Portal links are single use: used_at is set by the one request that
-- opens a session with the link.
CREATE TABLE portal_links (
    id         text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_id     text NOT NULL,
    portal     text NOT NULL,
    session_ttl_seconds bigint NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX portal_links_expires ON portal_links (expires_at);

-- The console's agenda reads events by calendar and start along
-- events_calendar_start, made by the units migration before this one.
