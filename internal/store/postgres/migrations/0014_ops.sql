-- What operators watch (store.StatsStore) and what a delivery reports.

-- changed_at is when the change a message is about occurred, so that a
-- delivery can tell the time from the write to the receiver (NULL for
-- messages stored before this migration).
ALTER TABLE messages ADD COLUMN changed_at timestamptz;

-- The scrape-time counts read only the rows they count.
CREATE INDEX messages_undeliverable ON messages (updated_at) WHERE status = 'undeliverable';
CREATE INDEX subscriptions_disabled ON subscriptions (id) WHERE disabled;

-- trace is the W3C traceparent of the span that made a change (the API
-- write, the import poll), and of a message the change it is about: the
-- fan-out's and the deliveries' spans link to it. '' when tracing is off.
ALTER TABLE changes ADD COLUMN trace text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN trace text NOT NULL DEFAULT '';
