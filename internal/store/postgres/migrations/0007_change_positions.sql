-- Incremental sync lists a calendar's changes in the log's (xid, id)
-- order, as the fan-out reads the log, so that change ids need not be
-- drawn in commit order (see ListChanges).
CREATE INDEX changes_calendar_xid ON changes (calendar_id, xid, id);
DROP INDEX changes_calendar_id;
