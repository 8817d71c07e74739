-- iCal Hooks registered by feed consumers with X-ICALHOOKS-URL. A hook is
-- armed by a GET with the header and disarmed by the ping it gets when its
-- feed changes (one-shot).
CREATE TABLE icalhooks (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- '' is the account's all-calendars feed.
    calendar_id         TEXT NOT NULL DEFAULT '',
    url                 TEXT NOT NULL,
    host                TEXT NOT NULL,
    -- SHA-256 of the feed token the registration came with.
    token_hash          TEXT NOT NULL,
    client_ip           TEXT NOT NULL DEFAULT '',
    user_agent          TEXT NOT NULL DEFAULT '',
    armed               INTEGER NOT NULL DEFAULT 0,
    -- verified is 0 while a challenge is pending (--icalhooks-verify).
    verified            INTEGER NOT NULL DEFAULT 1,
    -- served_version is the feed version the latest registration was
    -- served.
    served_version      INTEGER NOT NULL DEFAULT 0,
    first_registered_at INTEGER NOT NULL,
    last_registered_at  INTEGER NOT NULL,
    last_ping_at        INTEGER NOT NULL DEFAULT 0,
    last_ping_status    INTEGER NOT NULL DEFAULT 0,
    last_ping_error     TEXT NOT NULL DEFAULT '',
    failures            INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, calendar_id, url)
) STRICT;
CREATE INDEX icalhooks_feed ON icalhooks (account_id, calendar_id) WHERE armed = 1;
CREATE INDEX icalhooks_token ON icalhooks (token_hash);
CREATE INDEX icalhooks_host ON icalhooks (host);
CREATE INDEX icalhooks_last ON icalhooks (last_registered_at);

-- Rate limiter state (GCRA theoretical arrival time) per target host, so
-- no set of feeds can flood one host with pings.
CREATE TABLE host_rates (
    host TEXT PRIMARY KEY,
    tat  INTEGER NOT NULL
) STRICT;
