-- Holds: short reservations of a unit's interval, each kept as a tentative
-- event of the unit's native calendar until it is confirmed, released or
-- expires. Ended holds stay so a late confirmation gets a clear answer.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE holds (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    unit_id      TEXT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    calendar_id  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    start_at     INTEGER NOT NULL,
    end_at       INTEGER NOT NULL,
    all_day      INTEGER NOT NULL,
    summary      TEXT NOT NULL,
    external_ref TEXT NOT NULL,
    state        TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    ended_at     INTEGER
) STRICT;
CREATE INDEX holds_unit ON holds (unit_id, seq);
CREATE INDEX holds_held ON holds (unit_id, end_at) WHERE state = 'held';
CREATE INDEX holds_expiry ON holds (expires_at) WHERE state = 'held';

-- The first answer to a request made with an Idempotency-Key, per account
-- and key, kept 24 hours; status 0 while the request is being answered.
CREATE TABLE idempotency_keys (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
) STRICT;
