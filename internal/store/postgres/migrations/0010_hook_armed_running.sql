-- The transactions running when a hook's latest registration read its
-- feed: their changes ping the hook though they come before armed_xid
-- (see store.Hook.ArmedRunning).
ALTER TABLE icalhooks ADD COLUMN armed_running xid8[] NOT NULL DEFAULT '{}';
