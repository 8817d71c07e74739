-- Accounts are tenants. API keys are stored only as SHA-256 hashes; the
-- feed token is kept because GET /v1/feed-token returns it.
CREATE TABLE accounts (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    api_key_hash    text NOT NULL UNIQUE,
    feed_token      text NOT NULL,
    -- feed_version increases with every change to any feed of the account
    -- and drives the all-calendars feed's ETag.
    feed_version    bigint NOT NULL DEFAULT 1,
    feed_updated_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- seq columns are the list order (and page cursors) of the API.
CREATE TABLE calendars (
    seq                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    text NOT NULL UNIQUE,
    account_id            text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    time_zone             text NOT NULL,
    kind                  text NOT NULL,
    source_url            text NOT NULL DEFAULT '',
    poll_interval_seconds bigint NOT NULL DEFAULT 0,
    version               bigint NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX calendars_account_seq ON calendars (account_id, seq);

-- uid and recurrence_id sort bytewise (COLLATE "C"), as in SQLite, so
-- feeds list events in the same order on both drivers whatever the
-- database's locale.
CREATE TABLE events (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text NOT NULL UNIQUE,
    calendar_id   text NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    account_id    text NOT NULL,
    uid           text COLLATE "C" NOT NULL,
    recurrence_id text COLLATE "C" NOT NULL DEFAULT '',
    summary       text NOT NULL,
    description   text NOT NULL DEFAULT '',
    location      text NOT NULL DEFAULT '',
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL,
    all_day       boolean NOT NULL DEFAULT false,
    time_zone     text NOT NULL DEFAULT '',
    status        text NOT NULL,
    rrule         text NOT NULL DEFAULT '',
    exdates       timestamptz[] NOT NULL DEFAULT '{}',
    sequence      integer NOT NULL DEFAULT 0,
    metadata      jsonb NOT NULL DEFAULT '{}',
    extra         jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (calendar_id, uid, recurrence_id)
);
CREATE INDEX events_calendar_seq ON events (calendar_id, seq);
CREATE INDEX events_account ON events (account_id);

-- The append-only change log: outbox for deliveries and source of sync
-- cursors. It outlives deleted calendars so their deletions still go out.
-- Change ids of one account are handed out in commit order (writers hold
-- the account row's lock); across accounts the fan-out reads behind a
-- barrier (see ReadChanges).
CREATE TABLE changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    calendar_id text NOT NULL,
    event_id    text NOT NULL,
    event_uid   text NOT NULL,
    type        text NOT NULL,
    event       jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX changes_calendar_id ON changes (calendar_id, id);
CREATE INDEX changes_account_id ON changes (account_id, id);
