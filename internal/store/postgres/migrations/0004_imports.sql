-- The sync state of imported calendars. It lives on the calendar row so
-- that every read of a calendar (API, feeds) sees it without a join.
-- NULL times are "never".

-- source_host is the lowercased host of source_url: the key of the
-- per-host politeness limit, so the claim can skip busy hosts.
ALTER TABLE calendars ADD COLUMN source_host text NOT NULL DEFAULT '';
-- hook_token is the secret of the calendar's /hooks/in/{token} URL.
ALTER TABLE calendars ADD COLUMN hook_token text NOT NULL DEFAULT '';
-- Validators of the last full response, for conditional GETs, and the
-- SHA-256 of the last parsed body.
ALTER TABLE calendars ADD COLUMN sync_etag text NOT NULL DEFAULT '';
ALTER TABLE calendars ADD COLUMN sync_last_modified text NOT NULL DEFAULT '';
ALTER TABLE calendars ADD COLUMN sync_body_hash text NOT NULL DEFAULT '';
ALTER TABLE calendars ADD COLUMN last_sync_at timestamptz;
ALTER TABLE calendars ADD COLUMN last_success_at timestamptz;
ALTER TABLE calendars ADD COLUMN last_change_at timestamptz;
ALTER TABLE calendars ADD COLUMN last_error text NOT NULL DEFAULT '';
-- sync_failures counts failed polls in a row; > 0 means an outage is
-- under way (calendar.sync.failed was recorded).
ALTER TABLE calendars ADD COLUMN sync_failures integer NOT NULL DEFAULT 0;
ALTER TABLE calendars ADD COLUMN event_count integer NOT NULL DEFAULT 0;
-- The due-time index: next_poll_at is when the calendar is due (the epoch
-- when it was never scheduled, as SQLite's 0). A claim moves it to the end
-- of the lease (lease_until), so a calendar whose poller died becomes due
-- again by itself; recording the poll sets the real next time and clears
-- the lease.
ALTER TABLE calendars ADD COLUMN next_poll_at timestamptz NOT NULL DEFAULT 'epoch';
ALTER TABLE calendars ADD COLUMN lease_until timestamptz;
-- requested_poll_at is the earliest poll asked for (sync API, iCal Hooks
-- ping) that no claim has served yet; NULL when none. A request during a
-- poll survives that poll and brings the next one forward.
ALTER TABLE calendars ADD COLUMN requested_poll_at timestamptz;

CREATE INDEX calendars_next_poll ON calendars (next_poll_at) WHERE kind = 'imported';
CREATE UNIQUE INDEX calendars_hook_token ON calendars (hook_token) WHERE hook_token <> '';
