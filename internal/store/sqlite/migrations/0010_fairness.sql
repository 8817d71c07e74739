-- Secrets the server keeps for itself, made once and shared by every run
-- (for example the key that makes change cursors opaque per account).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
