-- Version 4: changes the server refused for good are set aside (kept, with the reason),
-- so that one bad change cannot hold back every change queued behind it.
ALTER TABLE changes ADD COLUMN rejected_at TEXT;
ALTER TABLE changes ADD COLUMN rejected_reason TEXT;
DROP INDEX changes_pending;
CREATE INDEX changes_pending ON changes(seq) WHERE acked_at IS NULL AND rejected_at IS NULL;
