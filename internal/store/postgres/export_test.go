package postgres

// ChangesLockKey exposes the advisory lock key that orders change ids, so
// tests can play an in-flight writer.
func (db *DB) ChangesLockKey() int64 { return db.changesKey }
