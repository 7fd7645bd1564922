-- v9: the content of attachments (photos, scans), inside the encrypted database so that it
-- is encrypted, backed up and written atomically with its record like everything else.
-- Named by its SHA-256: the same photo attached twice is kept once. `uploaded` says the
-- provincial server has it (content travels apart from the change log, and only within the
-- commune). Never synchronised as records: `attachments` (v2) is the synchronised part.
CREATE TABLE attachment_content (
    sha256   TEXT PRIMARY KEY,
    data     BLOB NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0 CHECK (uploaded IN (0, 1))
) STRICT;

-- A delete's change keeps the unit of the record it removed (the record cannot be looked up
-- once gone), so that it travels in the right scope: a province station removing a link
-- between a commune's tips sends it in the commune's scope.
ALTER TABLE changes ADD COLUMN unit_code TEXT;

-- The police officer in charge of each hamlet (công an phụ trách địa bàn), synchronised
-- with the hamlet. No foreign key: the officer's record may arrive after the hamlet's.
ALTER TABLE hamlets ADD COLUMN area_officer_id TEXT;
