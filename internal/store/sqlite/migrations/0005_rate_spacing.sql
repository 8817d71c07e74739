-- The rate limiters also keep the earliest time the next message may go
-- out (the last send plus the interval), so that reserved slots that came
-- due together are sent spaced, not in a burst (see store.RateState).
ALTER TABLE subscriptions ADD COLUMN rate_next INTEGER NOT NULL DEFAULT 0;
ALTER TABLE host_rates ADD COLUMN next INTEGER NOT NULL DEFAULT 0;
