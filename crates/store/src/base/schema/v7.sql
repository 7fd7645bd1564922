-- v7: officers become accounts. A username to sign in with and a role that says what the
-- account may do (crates/domain/src/access.rs). Passwords are not here: each officer's
-- password wraps the database key in keys.json. No UNIQUE index on username: two laptops
-- may each create one before they sync, and replication must never fail on it (the
-- slot in keys.json names the officer's id, which is unique).
ALTER TABLE officers ADD COLUMN username TEXT;
ALTER TABLE officers ADD COLUMN role TEXT NOT NULL DEFAULT 'officer'
    CHECK (role IN ('officer', 'chief', 'analyst', 'admin'));
CREATE INDEX officers_username ON officers(username);
