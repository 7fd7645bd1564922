-- Version 2: links between related tips, and attachments (photos, scanned documents).

CREATE TABLE tip_links (
    id         TEXT PRIMARY KEY,
    tip_id     TEXT NOT NULL REFERENCES tips(id),
    related_id TEXT NOT NULL REFERENCES tips(id),
    relation   TEXT NOT NULL CHECK (relation IN ('related','duplicate_of')),
    created_at TEXT NOT NULL,
    UNIQUE (tip_id, related_id),
    CHECK (tip_id <> related_id)
) STRICT;

CREATE TABLE attachments (
    id         TEXT PRIMARY KEY,
    tip_id     TEXT NOT NULL REFERENCES tips(id),
    file_name  TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX attachments_tip ON attachments(tip_id);
