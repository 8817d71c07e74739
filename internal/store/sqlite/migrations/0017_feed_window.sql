-- Feeds that stay small: a calendar's feed leaves out the events that
-- ended more than feed_window_days days ago (NULL: the server's default;
-- 0: keep all history), and the index lets a windowed read skip them.
ALTER TABLE calendars ADD COLUMN feed_window_days INTEGER;
CREATE INDEX events_calendar_end ON events (calendar_id, end_at);
