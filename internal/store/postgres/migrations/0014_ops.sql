-- What operators watch (store.StatsStore) and what a delivery reports.

-- changed_at is when the change a message is about occurred, so that a
-- delivery can tell the time from the write to the receiver (NULL for
-- messages stored before this migration).
ALTER TABLE messages ADD COLUMN changed_at timestamptz;

-- The scrape-time counts read only the rows they count.
CREATE INDEX messages_undeliverable ON messages (updated_at) WHERE status = 'undeliverable';
CREATE INDEX subscriptions_disabled ON subscriptions (id) WHERE disabled;
