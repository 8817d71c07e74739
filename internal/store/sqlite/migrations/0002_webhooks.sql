-- Webhook subscriptions. Secrets are kept because every attempt is signed
-- with them; prev_secret keeps signing until prev_secret_expires_at after a
-- rotation.
CREATE TABLE subscriptions (
    seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
    id                     TEXT NOT NULL UNIQUE,
    account_id             TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- NULL: every calendar of the account.
    calendar_id            TEXT REFERENCES calendars (id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    event_types            TEXT NOT NULL DEFAULT '[]',
    rate_limit             INTEGER NOT NULL DEFAULT 0,
    secret                 TEXT NOT NULL,
    prev_secret            TEXT NOT NULL DEFAULT '',
    prev_secret_expires_at INTEGER NOT NULL DEFAULT 0,
    disabled               INTEGER NOT NULL DEFAULT 0,
    disabled_reason        TEXT NOT NULL DEFAULT '',
    disabled_at            INTEGER NOT NULL DEFAULT 0,
    -- failing_since is the first failed attempt since the last success; 0
    -- while healthy.
    failing_since          INTEGER NOT NULL DEFAULT 0,
    -- rate_tat is the rate limiter's theoretical arrival time (GCRA): the
    -- earliest moment the next message may go out.
    rate_tat               INTEGER NOT NULL DEFAULT 0,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
) STRICT;
CREATE INDEX subscriptions_account_seq ON subscriptions (account_id, seq);

-- The durable delivery queue: one message per (change, subscription), or
-- one iCal Hooks ping per (change, hook) — hooks are created by migration 3
-- (SQLite resolves foreign keys when they are used).
CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    subscription_id TEXT REFERENCES subscriptions (id) ON DELETE CASCADE,
    hook_id         TEXT REFERENCES icalhooks (id) ON DELETE CASCADE,
    change_id       INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    payload         BLOB NOT NULL,
    -- pending, delivering (claimed; next_attempt_at is the lease end),
    -- delivered or undeliverable.
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- schedule_pos counts the attempts of the current retry cycle; a
    -- redelivery starts a new cycle.
    schedule_pos    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- slot_reserved: the rate limiter already gave this message its send
    -- time, so claiming it at next_attempt_at does not consume another.
    slot_reserved   INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (change_id, subscription_id),
    UNIQUE (change_id, hook_id),
    CHECK ((subscription_id IS NULL) <> (hook_id IS NULL))
) STRICT;
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status IN ('pending', 'delivering');
CREATE INDEX messages_subscription_seq ON messages (subscription_id, seq);
CREATE INDEX messages_hook ON messages (hook_id);
CREATE INDEX messages_updated ON messages (updated_at) WHERE status IN ('delivered', 'undeliverable');

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    delivery_id     TEXT NOT NULL,
    attempted_at    INTEGER NOT NULL,
    status_code     INTEGER NOT NULL DEFAULT 0,
    latency_us      INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    response        TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX attempts_message ON attempts (message_id, id);
CREATE INDEX attempts_time ON attempts (attempted_at);

-- Named cursors into the change log, e.g. the fan-out's position; and the
-- retention horizon below which change cursors answer 410.
CREATE TABLE cursors (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;
