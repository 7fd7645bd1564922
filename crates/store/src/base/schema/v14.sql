-- v14: the checksum's running sums (`binhyen_domain::checksum::Sums`), one row per entity,
-- kept by every write of `versions` in the same transaction, so that the checksum compared
-- after a sync is read, not computed by a scan of every record. Filled from `versions` by
-- the migration (`crate::sums::fill`). Lanes are plain 64-bit sums; see `Sums`.
CREATE TABLE checksum_sums (
    entity TEXT PRIMARY KEY,
    n      INTEGER NOT NULL,
    a      INTEGER NOT NULL,
    b      INTEGER NOT NULL,
    c      INTEGER NOT NULL,
    d      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
