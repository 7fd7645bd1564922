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
    fields    TEXT NOT NULL, -- field -> HLC, grouped by HLC (see below)
    deleted   TEXT,          -- HLC of the delete (a tombstone), or NULL
    PRIMARY KEY (entity, entity_id)
) STRICT;
-- And versions are stored grouped by clock value, `[["HLC", "field", …], …]`
-- (binhyen_domain::versions): a tip's take about 300 bytes, against 1,000 as an object.
-- Versions it cannot stand for exactly (a value not a string; a name or a value that JSON
-- escapes) stay an object, which is still read.
INSERT INTO versions_v13(entity, entity_id, fields, deleted)
SELECT v.entity, v.entity_id,
    CASE WHEN json_valid(v.fields) AND json_type(v.fields) = 'object' AND NOT EXISTS (
            SELECT 1 FROM json_each(v.fields) j
            WHERE j.type != 'text' OR json_quote(j.key) != '"' || j.key || '"'
               OR json_quote(j.value) != '"' || j.value || '"')
    THEN (SELECT '[' || COALESCE(group_concat(g, ','), '') || ']' FROM (
            SELECT '[' || json_quote(j.value) || ',' || group_concat(json_quote(j.key), ',') || ']' AS g
            FROM json_each(v.fields) j GROUP BY j.value))
    ELSE v.fields END,
    v.deleted
FROM versions v ORDER BY v.entity, v.entity_id;
DROP TABLE versions;
ALTER TABLE versions_v13 RENAME TO versions;
