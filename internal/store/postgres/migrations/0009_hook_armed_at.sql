-- The change log position, (xid, id), from which changes ping a hook:
-- every change before it was in the feed its latest registration was
-- served (see store.Hook.ArmedAt).
ALTER TABLE icalhooks ADD COLUMN armed_xid xid8 NOT NULL DEFAULT '0',
    ADD COLUMN armed_id bigint NOT NULL DEFAULT 0;
