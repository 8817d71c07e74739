-- The feed switch (NetterTech's "Enable iCal feed"): an account's feeds can
-- be turned off as a whole, and one calendar's feed (with its export feed)
-- on its own. A disabled feed answers 403 with the reason.
ALTER TABLE accounts ADD COLUMN feeds_disabled boolean NOT NULL DEFAULT false;
ALTER TABLE calendars ADD COLUMN feed_disabled boolean NOT NULL DEFAULT false;
