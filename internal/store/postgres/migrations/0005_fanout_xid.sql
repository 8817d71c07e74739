-- The fan-out reads the change log in the order its transactions became
-- visible, without locks: a change id is drawn when the row is inserted,
-- not when it commits, so reading by id alone could skip an id that
-- commits after a higher one was read. Every change records the id of the
-- transaction that wrote it; the fan-out reads in (xid, id) order only the
-- changes of transactions older than the oldest one still running
-- (pg_snapshot_xmin), which can never gain a row before its position.
ALTER TABLE changes ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX changes_xid ON changes (xid, id);

-- A cursor's position is (xid, position). Rows already in the log were all
-- given this migration's xid above, so a cursor at id P keeps its place as
-- (this xid, P): the older rows after P come next, then every newer
-- transaction's rows.
ALTER TABLE cursors ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
UPDATE cursors SET xid = pg_current_xact_id() WHERE name <> 'horizon';
-- The fan-out cursor always exists, so that a fan-out step can lock it
-- with SKIP LOCKED: one node fans out at a time, the others skip at once.
INSERT INTO cursors (name, position) VALUES ('fanout', 0) ON CONFLICT (name) DO NOTHING;

-- The rate limiters also keep the earliest time the next message may go
-- out (the last send plus the interval), so that reserved slots that came
-- due together are sent spaced, not in a burst (see store.RateState).
ALTER TABLE rate_limits ADD COLUMN next timestamptz NOT NULL DEFAULT 'epoch';
