-- v13: versions are stored grouped by clock value, `[["HLC", "field", …], …]`
-- (binhyen_domain::versions): the fields written together share one clock value (every
-- field of a record inserted, say), so a tip's versions take about 300 bytes, against
-- 1,000 as an object (field -> HLC). Kept as objects, a tip's were more than a WITHOUT ROWID
-- table's cell holds (about 980 bytes with SQLCipher's page reserve), so each spilled into
-- a 4 KiB overflow page of its own, most of it empty: the table was about 3.5 times its
-- data, and every page written is encrypted, written to the WAL and checkpointed. Grouped,
-- they fit in the cells, and the table stays WITHOUT ROWID (one b-tree written per record,
-- not a table and its key's index); only a record whose fields were each written at a
-- different time, many times over, still spills.
CREATE TABLE versions_v13 (
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL, -- field -> HLC, grouped by HLC (see above)
    deleted   TEXT,          -- HLC of the delete (a tombstone), or NULL
    PRIMARY KEY (entity, entity_id)
) STRICT, WITHOUT ROWID;
-- Versions the grouped form cannot stand for exactly (a value not a string; a name or a
-- value that JSON escapes) stay an object, which is still read.
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
