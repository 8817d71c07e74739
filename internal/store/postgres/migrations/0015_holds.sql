-- Holds: short reservations of a unit's interval, each kept as a tentative
-- event of the unit's native calendar until it is confirmed, released or
-- expires. Ended holds stay so a late confirmation gets a clear answer.
CREATE TABLE holds (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    unit_id      text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    calendar_id  text NOT NULL,
    event_id     text NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    all_day      boolean NOT NULL,
    summary      text NOT NULL,
    external_ref text NOT NULL,
    state        text NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX holds_unit ON holds (unit_id, seq);
CREATE INDEX holds_held ON holds (unit_id, end_at) WHERE state = 'held';
CREATE INDEX holds_expiry ON holds (expires_at) WHERE state = 'held';

-- The first answer to a request made with an Idempotency-Key, per account
-- and key, kept 24 hours; status 0 while the request is being answered.
CREATE TABLE idempotency_keys (
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    status      integer NOT NULL,
    body        bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, key)
);
