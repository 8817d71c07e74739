-- Webhook subscriptions. Secrets are kept because every attempt is signed
-- with them; prev_secret keeps signing until prev_secret_expires_at after a
-- rotation. NULL times are "never".
CREATE TABLE subscriptions (
    seq                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                     text NOT NULL UNIQUE,
    account_id             text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- NULL: every calendar of the account.
    calendar_id            text REFERENCES calendars (id) ON DELETE CASCADE,
    url                    text NOT NULL,
    description            text NOT NULL DEFAULT '',
    event_types            text[] NOT NULL DEFAULT '{}',
    rate_limit             integer NOT NULL DEFAULT 0,
    secret                 text NOT NULL,
    prev_secret            text NOT NULL DEFAULT '',
    prev_secret_expires_at timestamptz,
    disabled               boolean NOT NULL DEFAULT false,
    disabled_reason        text NOT NULL DEFAULT '',
    disabled_at            timestamptz,
    -- failing_since is the first failed attempt since the last success;
    -- NULL while healthy.
    failing_since          timestamptz,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX subscriptions_account_seq ON subscriptions (account_id, seq);

-- The durable delivery queue: one message per (change, subscription), or
-- one iCal Hooks ping per (change, hook); the hook foreign key is added by
-- migration 3, which creates icalhooks.
CREATE TABLE messages (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    account_id      text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    subscription_id text REFERENCES subscriptions (id) ON DELETE CASCADE,
    hook_id         text,
    change_id       bigint NOT NULL,
    event_type      text NOT NULL,
    payload         bytea NOT NULL,
    -- pending, delivering (claimed; next_attempt_at is the lease end),
    -- delivered or undeliverable.
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    -- schedule_pos counts the attempts of the current retry cycle; a
    -- redelivery starts a new cycle.
    schedule_pos    integer NOT NULL DEFAULT 0,
    -- NULL once the message is finished. Messages of a disabled
    -- subscription are parked at 9999-12-31.
    next_attempt_at timestamptz,
    -- slot_reserved: the rate limiter already gave this message its send
    -- time, so claiming it at next_attempt_at does not consume another.
    slot_reserved   boolean NOT NULL DEFAULT false,
    last_status     integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (change_id, subscription_id),
    UNIQUE (change_id, hook_id),
    CHECK ((subscription_id IS NULL) <> (hook_id IS NULL))
);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status IN ('pending', 'delivering');
CREATE INDEX messages_subscription_seq ON messages (subscription_id, seq);
CREATE INDEX messages_hook ON messages (hook_id);
CREATE INDEX messages_updated ON messages (updated_at) WHERE status IN ('delivered', 'undeliverable');

CREATE TABLE attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    delivery_id  text NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code  integer NOT NULL DEFAULT 0,
    latency_us   bigint NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    response     text NOT NULL DEFAULT ''
);
CREATE INDEX attempts_message ON attempts (message_id, id);
CREATE INDEX attempts_time ON attempts (attempted_at);

-- Named cursors into the change log, e.g. the fan-out's position; and the
-- retention horizon below which change cursors answer 410.
CREATE TABLE cursors (
    name     text PRIMARY KEY,
    position bigint NOT NULL
);

-- Rate limiter state (GCRA theoretical arrival time), one row per key:
-- 'sub:<subscription id>' or 'host:<ping target host>'. It is kept apart
-- from subscriptions so that a claim, which locks these rows in key order
-- to update them, never waits on a lock that a subscription update holds.
CREATE TABLE rate_limits (
    key text COLLATE "C" PRIMARY KEY,
    tat timestamptz NOT NULL
);
