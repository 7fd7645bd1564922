-- v13: `versions` becomes an ordinary (rowid) table. WITHOUT ROWID, a row is kept in the
-- primary key's b-tree, whose cells hold about 1,000 bytes before the rest spills to an
-- overflow page of its own: a tip's versions (one clock per field, about 1,000 bytes) took
-- a whole 4 KiB overflow page each, so the table was about 3.5 times its data, and every
-- page written is encrypted, written to the WAL and checkpointed. A rowid table keeps rows
-- of up to about 4,000 bytes in its leaves; the key (entity, entity_id) stays unique
-- through its index.
CREATE TABLE versions_v13 (
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL, -- JSON object: field -> HLC
    deleted   TEXT,          -- HLC of the delete (a tombstone), or NULL
    PRIMARY KEY (entity, entity_id)
) STRICT;
INSERT INTO versions_v13(entity, entity_id, fields, deleted)
    SELECT entity, entity_id, fields, deleted FROM versions ORDER BY entity, entity_id;
DROP TABLE versions;
ALTER TABLE versions_v13 RENAME TO versions;
