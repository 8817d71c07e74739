-- Attempts refer to their message by its seq (the rowid), not its id: the
-- id is a random UUID, so an index on it takes every attempt to a random
-- page of its own (hundreds of MB with a 30-day delivery log), while seqs
-- only grow and the index is written at its end.
CREATE TABLE attempts_by_seq (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_seq     INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
    delivery_id     TEXT NOT NULL,
    attempted_at    INTEGER NOT NULL,
    status_code     INTEGER NOT NULL DEFAULT 0,
    latency_us      INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    response        TEXT NOT NULL DEFAULT ''
) STRICT;
INSERT INTO attempts_by_seq (id, message_seq, delivery_id, attempted_at, status_code, latency_us, error, response)
    SELECT a.id, m.seq, a.delivery_id, a.attempted_at, a.status_code, a.latency_us, a.error, a.response
    FROM attempts a JOIN messages m ON m.id = a.message_id
    ORDER BY a.id;
DROP TABLE attempts;
ALTER TABLE attempts_by_seq RENAME TO attempts;
CREATE INDEX attempts_message ON attempts (message_seq, id);
CREATE INDEX attempts_time ON attempts (attempted_at);
