-- Secrets the server keeps for itself, made once and shared by every node
-- (for example the key that makes change cursors opaque per account).
CREATE TABLE server_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
