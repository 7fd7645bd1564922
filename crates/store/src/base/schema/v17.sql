-- v17: the province anchors each commune's identity keys (see the server's `anchor.rs` and
-- the store's `identity.rs`). A key made to replace or join a key of the unit carries that
-- key's endorsement (its grant authority's signature over the new key), synchronised with it.
-- `identity_anchors` keeps the certificates the server gave this laptop for the unit's keys;
-- `anchor_pins` the anchor an officer's own sync received, signed with that officer's
-- personal key, until their next sign-in binds it into their slot of `keys.json`. Neither
-- is synchronised; a row written by anyone else is not believed.
ALTER TABLE identity_keys ADD COLUMN endorsed_by TEXT;
ALTER TABLE identity_keys ADD COLUMN endorsement TEXT;
CREATE TABLE identity_anchors (
    key_id      TEXT PRIMARY KEY,
    unit_code   TEXT NOT NULL,
    public      TEXT NOT NULL,
    authority   TEXT NOT NULL,
    anchor      TEXT NOT NULL,
    certificate TEXT NOT NULL
) STRICT;
CREATE TABLE anchor_pins (
    officer_key_id TEXT PRIMARY KEY,
    anchor         TEXT NOT NULL,
    signature      TEXT NOT NULL
) STRICT;
