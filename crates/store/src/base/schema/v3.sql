-- Version 3: what synchronisation needs to merge field by field.

-- The clock value of the last write of every field of every record: the version an edit
-- starts from ("base"), and what a concurrent edit is compared against.
CREATE TABLE versions (
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL, -- JSON object: field -> HLC
    deleted   TEXT,          -- HLC of the delete (a tombstone), or NULL
    PRIMARY KEY (entity, entity_id)
) STRICT, WITHOUT ROWID;

-- The versions an update or delete started from, per field (JSON object), so that the
-- receiver can tell a follow-up edit from a concurrent one.
ALTER TABLE changes ADD COLUMN base TEXT;

-- Changes received from the server (own changes are in `changes`): applying one twice
-- changes nothing.
CREATE TABLE applied_changes (
    change_id  TEXT PRIMARY KEY,
    server_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Concurrent edits of one field (or a delete concurrent with an edit), kept for a person.
CREATE TABLE conflicts (
    id           TEXT PRIMARY KEY,
    entity       TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    field        TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('field','delete_vs_edit')),
    local_value  TEXT,
    local_hlc    TEXT NOT NULL,
    remote_value TEXT,
    remote_hlc   TEXT NOT NULL,
    winner       TEXT NOT NULL CHECK (winner IN ('local','remote')),
    detected_at  TEXT NOT NULL,
    resolved_at  TEXT,
    resolution   TEXT
) STRICT;
CREATE INDEX conflicts_open ON conflicts(entity, entity_id) WHERE resolved_at IS NULL;

-- Version 1 recorded new tips without `updated_at`: another replica could not insert them.
UPDATE changes SET data = json_set(data, '$.updated_at', json_extract(data, '$.created_at'))
WHERE entity = 'tip' AND op = 'insert' AND json_extract(data, '$.updated_at') IS NULL;

-- Every record written so far gets its versions from the change log.
INSERT INTO versions(entity, entity_id, fields)
SELECT entity, entity_id, json_group_object(key, hlc)
FROM (SELECT c.entity, c.entity_id, j.key, max(c.hlc) AS hlc
      FROM changes c, json_each(c.data) j
      GROUP BY c.entity, c.entity_id, j.key)
GROUP BY entity, entity_id;
