-- What the last poll of an imported calendar left out (events calhook
-- cannot represent) and the mass deletion it holds until a later fetch
-- confirms it: JSON (see store.MarshalImportNotes), '' for none.
ALTER TABLE calendars ADD COLUMN sync_skipped TEXT NOT NULL DEFAULT '';
ALTER TABLE calendars ADD COLUMN sync_held TEXT NOT NULL DEFAULT '';
