-- Where changes start to ping a hook: from the change log position
-- (xid, id) on, and those of the transactions in armed_running, which were
-- running when its latest registration read the feed; every other change
-- was in the feed that registration was served (see store.Hook.ArmedAt).
ALTER TABLE icalhooks ADD COLUMN armed_xid xid8 NOT NULL DEFAULT '0',
    ADD COLUMN armed_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN armed_running xid8[] NOT NULL DEFAULT '{}';
