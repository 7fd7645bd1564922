-- v16: attachments travel through the server sealed to the commune's identity key. Content
-- that reached this laptop sealed while the signed-in officer held no key waits here, as
-- it came, until an officer who holds the key signs in or syncs; then it is opened,
-- checked against its name and moved to `attachment_content`. Never synchronised.
CREATE TABLE attachment_sealed (
    sha256 TEXT PRIMARY KEY,
    data   BLOB NOT NULL
) STRICT;
