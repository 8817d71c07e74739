-- Event writes count towards their calendar's and account's versions in
-- slot rows, not in the calendars and accounts rows themselves: a version
-- is the row's own count (calendar creation, renames, imports, token
-- rotation) plus the sum of its slots. A group of writes adds to one slot,
-- picked at random, so groups of several nodes writing one calendar rarely
-- wait for each other's commits, where every writer used to queue on the
-- one version row.
CREATE TABLE calendar_versions (
    calendar_id text NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    slot        smallint NOT NULL,
    n           bigint NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (calendar_id, slot)
);
CREATE TABLE account_versions (
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot       smallint NOT NULL,
    n          bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, slot)
);
