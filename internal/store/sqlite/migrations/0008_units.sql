-- Units: one bookable thing (a rental, a room) grouping its calendars.
-- Times are INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE units (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    time_zone         TEXT NOT NULL,
    same_day_turnover INTEGER NOT NULL DEFAULT 1,
    export_summary    TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX units_account_seq ON units (account_id, seq);

-- A calendar belongs to at most one unit (the primary key); the row goes
-- with either of them.
CREATE TABLE unit_calendars (
    calendar_id TEXT PRIMARY KEY REFERENCES calendars (id) ON DELETE CASCADE,
    unit_id     TEXT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL
) STRICT;
CREATE INDEX unit_calendars_unit ON unit_calendars (unit_id);

-- Conflicts: two blocking events of one unit that overlap, named by the two
-- event ids in order (event_a < event_b); at most one conflict of a pair is
-- open at a time, so a replayed detection step stores nothing twice.
CREATE TABLE conflicts (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    unit_id       TEXT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    event_a       TEXT NOT NULL,
    event_b       TEXT NOT NULL,
    state         TEXT NOT NULL,
    -- the two sides (JSON), as they were when the conflict was detected
    sides         TEXT NOT NULL,
    overlap_start INTEGER NOT NULL,
    overlap_end   INTEGER NOT NULL,
    detected_at   INTEGER NOT NULL,
    resolved_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX conflicts_open_pair ON conflicts (event_a, event_b) WHERE state = 'open';
CREATE INDEX conflicts_open_b ON conflicts (event_b) WHERE state = 'open';
CREATE INDEX conflicts_unit ON conflicts (unit_id, state, seq);

-- Overlap queries of a unit's calendars read events by start time.
CREATE INDEX events_calendar_start ON events (calendar_id, start_at);

-- BlockingEvents finds a window's events along three indexes: the single
-- events that start at most store.LongEvent (32 days) before it, the
-- longer ones, and the recurring ones with their overrides.
CREATE INDEX events_long ON events (calendar_id) WHERE end_at - start_at > 2764800000000;
CREATE INDEX events_recurring ON events (calendar_id) WHERE rrule <> '' OR recurrence_id <> '';

-- The conflict detector's cursor starts at the end of the log: no unit
-- existed before this migration.
INSERT INTO cursors (name, position) SELECT 'availability', coalesce(max(id), 0) FROM changes
    WHERE true ON CONFLICT (name) DO NOTHING;

-- The export feeds' iCal Hooks pings read the log from its end as well.
INSERT INTO cursors (name, position) SELECT 'exportpings', coalesce(max(id), 0) FROM changes
    WHERE true ON CONFLICT (name) DO NOTHING;
