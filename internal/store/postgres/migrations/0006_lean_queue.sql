-- A message row is written three times (stored, claimed, recorded), and
-- the claim and the record change indexed columns, so each write adds an
-- entry to every index of the table: keep only the entries reads need.

-- Deleting an account reaches its messages through their subscription or
-- hook (both ON DELETE CASCADE), so the account's foreign key is
-- redundant; it also locked the account's row, which every event write
-- updates, once per message stored.
ALTER TABLE messages DROP CONSTRAINT messages_account_id_fkey;

-- A message has a subscription or a hook, never both: index each only
-- where it is set.
ALTER TABLE messages DROP CONSTRAINT messages_change_id_subscription_id_key;
ALTER TABLE messages DROP CONSTRAINT messages_change_id_hook_id_key;
CREATE UNIQUE INDEX messages_change_subscription ON messages (change_id, subscription_id) WHERE subscription_id IS NOT NULL;
CREATE UNIQUE INDEX messages_change_hook ON messages (change_id, hook_id) WHERE hook_id IS NOT NULL;
DROP INDEX messages_hook;
CREATE INDEX messages_hook ON messages (hook_id) WHERE hook_id IS NOT NULL;
DROP INDEX messages_subscription_seq;
CREATE INDEX messages_subscription_seq ON messages (subscription_id, seq) WHERE subscription_id IS NOT NULL;

-- id, which attempts and the API refer to, becomes the primary key; seq
-- only orders lists (messages_subscription_seq).
ALTER TABLE attempts DROP CONSTRAINT attempts_message_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_pkey;
ALTER TABLE messages DROP CONSTRAINT messages_id_key;
ALTER TABLE messages ADD PRIMARY KEY (id);
ALTER TABLE attempts ADD CONSTRAINT attempts_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
