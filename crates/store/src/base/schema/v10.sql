-- v10: reporter identity under keys of its own (see identity.rs). The values of
-- `tip_reporters` are sealed to an X25519 key of the commune (`identity_keys`); its secret
-- half exists only sealed to the box keys of officers who may see identity (`officer_keys`,
-- whose secret halves are wrapped under each officer's password in keys.json), one
-- `identity_grants` row per officer key. All three are synchronised within the unit: the
-- server relays them and never holds a key that opens an identity.
CREATE TABLE identity_keys (
    id         TEXT PRIMARY KEY,
    unit_code  TEXT NOT NULL,
    public     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX identity_keys_unit ON identity_keys(unit_code, created_at);

-- officer_id is NULL for the key of a station's recovery slot.
CREATE TABLE officer_keys (
    id         TEXT PRIMARY KEY,
    unit_code  TEXT NOT NULL,
    officer_id TEXT,
    station_id TEXT NOT NULL,
    public     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX officer_keys_unit ON officer_keys(unit_code);

CREATE TABLE identity_grants (
    id             TEXT PRIMARY KEY,
    unit_code      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    officer_key_id TEXT NOT NULL,
    sealed         TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;
CREATE INDEX identity_grants_to ON identity_grants(officer_key_id, key_id);
