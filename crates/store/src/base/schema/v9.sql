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

-- The tips list pages in its three orders by walking an index, however deep the page: the
-- newest (or oldest) first with the register number as tie-break, and by urgency (the same
-- expression as the list's ORDER BY, so that SQLite can use it). The (received_at) index
-- is a prefix of the first and goes.
CREATE INDEX tips_received_no ON tips(received_at, register_no);
DROP INDEX tips_received;
CREATE INDEX tips_urgency_order ON tips(
    (CASE urgency WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END) ASC,
    received_at DESC, register_no DESC);
-- The list's filters walk their index in the list's order too (the register number breaks
-- ties), and the officer handling a tip gets one.
DROP INDEX tips_status;
CREATE INDEX tips_status ON tips(status, received_at, register_no);
DROP INDEX tips_category;
CREATE INDEX tips_category ON tips(category, received_at, register_no);
DROP INDEX tips_channel;
CREATE INDEX tips_channel ON tips(channel, received_at, register_no);
DROP INDEX tips_hamlet;
CREATE INDEX tips_hamlet ON tips(hamlet_id, received_at, register_no);
CREATE INDEX tips_assigned ON tips(assigned_to, received_at, register_no);
-- Crime tips still being handled, in time order, with their hamlet (for the remote-hamlet
-- deadline): the overdue filter and the Today screen read only this small index. Its WHERE
-- is word for word the filter's (SQLite uses a partial index only then).
CREATE INDEX tips_open_crime ON tips(received_at, register_no, hamlet_id)
    WHERE category IN ('crime_denunciation','crime_report') AND status IN ('received','verifying');
