-- iCal Hooks registered by feed consumers with X-ICALHOOKS-URL. A hook is
-- armed by a GET with the header and disarmed by the ping it gets when its
-- feed changes (one-shot).
CREATE TABLE icalhooks (
    seq                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  text NOT NULL UNIQUE,
    account_id          text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- '' is the account's all-calendars feed.
    calendar_id         text NOT NULL DEFAULT '',
    url                 text NOT NULL,
    host                text NOT NULL,
    -- SHA-256 of the feed token the registration came with.
    token_hash          text NOT NULL,
    client_ip           text NOT NULL DEFAULT '',
    user_agent          text NOT NULL DEFAULT '',
    armed               boolean NOT NULL DEFAULT false,
    -- verified is false while a challenge is pending (--icalhooks-verify).
    verified            boolean NOT NULL DEFAULT true,
    -- served_version is the feed version the latest registration was
    -- served.
    served_version      bigint NOT NULL DEFAULT 0,
    first_registered_at timestamptz NOT NULL,
    last_registered_at  timestamptz NOT NULL,
    last_ping_at        timestamptz,
    last_ping_status    integer NOT NULL DEFAULT 0,
    last_ping_error     text NOT NULL DEFAULT '',
    failures            integer NOT NULL DEFAULT 0,
    UNIQUE (account_id, calendar_id, url)
);
CREATE INDEX icalhooks_feed ON icalhooks (account_id, calendar_id) WHERE armed;
CREATE INDEX icalhooks_token ON icalhooks (token_hash);
CREATE INDEX icalhooks_host ON icalhooks (host);
CREATE INDEX icalhooks_last ON icalhooks (last_registered_at);

ALTER TABLE messages ADD CONSTRAINT messages_hook_id_fkey
    FOREIGN KEY (hook_id) REFERENCES icalhooks (id) ON DELETE CASCADE;
