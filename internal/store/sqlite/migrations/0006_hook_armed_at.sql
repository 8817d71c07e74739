-- The change log position from which changes ping a hook: every change
-- before it was in the feed its latest registration was served (see
-- store.Hook.ArmedAt).
ALTER TABLE icalhooks ADD COLUMN armed_at INTEGER NOT NULL DEFAULT 0;
