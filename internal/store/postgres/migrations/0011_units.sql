-- Units: one bookable thing (a rental, a room) grouping its calendars.
CREATE TABLE units (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text NOT NULL UNIQUE,
    account_id        text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name              text NOT NULL,
    time_zone         text NOT NULL,
    same_day_turnover boolean NOT NULL DEFAULT true,
    export_summary    text NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX units_account_seq ON units (account_id, seq);

-- A calendar belongs to at most one unit (the primary key); the row goes
-- with either of them.
CREATE TABLE unit_calendars (
    calendar_id text PRIMARY KEY REFERENCES calendars (id) ON DELETE CASCADE,
    unit_id     text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    account_id  text NOT NULL
);
CREATE INDEX unit_calendars_unit ON unit_calendars (unit_id);

-- Conflicts: two blocking events of one unit that overlap, named by the two
-- event ids in order (event_a < event_b); at most one conflict of a pair is
-- open at a time, so a replayed detection step stores nothing twice.
CREATE TABLE conflicts (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text NOT NULL UNIQUE,
    account_id    text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    unit_id       text NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    event_a       text NOT NULL,
    event_b       text NOT NULL,
    state         text NOT NULL,
    -- the two sides, as they were when the conflict was detected
    sides         jsonb NOT NULL,
    overlap_start timestamptz NOT NULL,
    overlap_end   timestamptz NOT NULL,
    detected_at   timestamptz NOT NULL,
    resolved_at   timestamptz
);
CREATE UNIQUE INDEX conflicts_open_pair ON conflicts (event_a, event_b) WHERE state = 'open';
CREATE INDEX conflicts_open_b ON conflicts (event_b) WHERE state = 'open';
CREATE INDEX conflicts_unit ON conflicts (unit_id, state, seq);

-- Overlap queries of a unit's calendars read events by start time.
CREATE INDEX events_calendar_start ON events (calendar_id, start_at);

-- BlockingEvents finds a window's events along three indexes: the single
-- events that start at most store.LongEvent (32 days) before it, the
-- longer ones, and the recurring ones with their overrides.
CREATE INDEX events_long ON events (calendar_id) WHERE end_at - start_at > interval '2764800 seconds';
CREATE INDEX events_recurring ON events (calendar_id) WHERE rrule <> '' OR recurrence_id <> '';

-- The conflict detector's cursor starts at this migration's transaction:
-- no unit existed before it.
INSERT INTO cursors (name, position, xid) VALUES ('availability', 0, pg_current_xact_id())
    ON CONFLICT (name) DO NOTHING;
INSERT INTO cursors (name, position, xid) VALUES ('exportpings', 0, pg_current_xact_id())
    ON CONFLICT (name) DO NOTHING;
