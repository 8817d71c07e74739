-- Accounts are tenants. API keys are stored only as SHA-256 hashes; the
-- feed token is kept because GET /v1/feed-token returns it.
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    api_key_hash    TEXT NOT NULL UNIQUE,
    feed_token      TEXT NOT NULL,
    -- feed_version increases with every change to any feed of the account
    -- and drives the all-calendars feed's ETag.
    feed_version    INTEGER NOT NULL DEFAULT 1,
    feed_updated_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- Times are INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE calendars (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    time_zone             TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    source_url            TEXT NOT NULL DEFAULT '',
    poll_interval_seconds INTEGER NOT NULL DEFAULT 0,
    version               INTEGER NOT NULL DEFAULT 1,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX calendars_account_seq ON calendars (account_id, seq);

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    calendar_id   TEXT NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL,
    uid           TEXT NOT NULL,
    recurrence_id TEXT NOT NULL DEFAULT '',
    summary       TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    location      TEXT NOT NULL DEFAULT '',
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    all_day       INTEGER NOT NULL DEFAULT 0,
    time_zone     TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    rrule         TEXT NOT NULL DEFAULT '',
    exdates       TEXT NOT NULL DEFAULT '[]',
    sequence      INTEGER NOT NULL DEFAULT 0,
    metadata      TEXT NOT NULL DEFAULT '{}',
    extra         TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (calendar_id, uid, recurrence_id)
) STRICT;
CREATE INDEX events_calendar_seq ON events (calendar_id, seq);

-- The append-only change log: outbox for deliveries and source of sync
-- cursors. It outlives deleted calendars so their deletions still go out.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    calendar_id TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_uid   TEXT NOT NULL,
    type        TEXT NOT NULL,
    event       BLOB NOT NULL,
    occurred_at INTEGER NOT NULL
) STRICT;
CREATE INDEX changes_calendar_id ON changes (calendar_id, id);
CREATE INDEX changes_account_id ON changes (account_id, id);
