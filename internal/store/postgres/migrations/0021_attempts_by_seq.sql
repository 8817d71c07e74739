-- Attempts refer to their message by its seq, not its id: the id is a
-- random UUID, so an index on it takes every attempt to a random page of
-- its own (hundreds of MB with a 30-day delivery log), while seqs only
-- grow and their indexes are written at their end.
CREATE UNIQUE INDEX messages_seq ON messages (seq);
ALTER TABLE attempts ADD COLUMN message_seq bigint;
UPDATE attempts a SET message_seq = m.seq FROM messages m WHERE m.id = a.message_id;
ALTER TABLE attempts ALTER COLUMN message_seq SET NOT NULL;
ALTER TABLE attempts ADD CONSTRAINT attempts_message_seq_fkey
    FOREIGN KEY (message_seq) REFERENCES messages (seq) ON DELETE CASCADE;
DROP INDEX attempts_message;
ALTER TABLE attempts DROP COLUMN message_id;
CREATE INDEX attempts_message ON attempts (message_seq, id);
