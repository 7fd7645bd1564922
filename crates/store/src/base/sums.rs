//! The checksum's running sums on a station (schema v14): every write of a record's versions
//! adds its effect here, in its own transaction, so that the checksum compared after each
//! sync costs a read of a few rows instead of a scan of every record. `doctor` and the tests
//! compare them with a scan ([`scan`]).

use std::collections::BTreeMap;

use binhyen_domain::checksum::Sums;
use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

/// The sums' changes made by one transaction, per entity, written just before it commits.
#[derive(Debug, Default)]
pub(crate) struct SumsDelta(BTreeMap<String, Sums>);

impl SumsDelta {
    /// A record's versions rewritten: its old share (if it had one) out, its new one in.
    pub(crate) fn change(&mut self, entity: &str, old: Option<&Sums>, new: &Sums) {
        let sums = self.0.entry(entity.to_string()).or_default();
        if let Some(old) = old {
            sums.sub(old);
        }
        sums.add(new);
    }

    /// Adds the changes to the stored sums (in the caller's transaction).
    pub(crate) fn write(&mut self, conn: &Connection) -> Result<()> {
        for (entity, s) in std::mem::take(&mut self.0) {
            add(conn, &entity, &s)?;
        }
        Ok(())
    }
}

fn add(conn: &Connection, entity: &str, s: &Sums) -> Result<()> {
    if s.is_zero() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO checksum_sums(entity, n, a, b, c, d) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(entity) DO UPDATE SET n = n + excluded.n, a = a + excluded.a,
             b = b + excluded.b, c = c + excluded.c, d = d + excluded.d",
    )?
    .execute(params![
        entity, s.n, s.lanes[0], s.lanes[1], s.lanes[2], s.lanes[3]
    ])?;
    Ok(())
}

/// Writes a record's versions and tombstone (`fields` as stored), and their effect on the
/// sums: `old` is the record's share before ([`share`]), `None` for a record never written;
/// `new` its share now.
#[allow(clippy::too_many_arguments)]
pub(crate) fn put_versions(
    conn: &Connection,
    sums: &mut SumsDelta,
    entity: &str,
    id: &str,
    fields: &str,
    deleted: Option<&str>,
    old: Option<&Sums>,
    new: &Sums,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO versions(entity, entity_id, fields, deleted) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(entity, entity_id) DO UPDATE SET fields = excluded.fields, deleted = excluded.deleted",
    )?
    .execute(params![entity, id, fields, deleted])?;
    sums.change(entity, old, new);
    Ok(())
}

/// A record's versions row as stored: (fields, deleted).
pub(crate) fn stored_row(
    conn: &Connection,
    entity: &str,
    id: &str,
) -> Result<Option<(String, Option<String>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT fields, deleted FROM versions WHERE entity = ?1 AND entity_id = ?2",
        )?
        .query_row(params![entity, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The stored sums, per entity (those at zero left out).
pub fn stored(conn: &Connection) -> Result<BTreeMap<String, Sums>> {
    let mut stmt = conn.prepare_cached("SELECT entity, n, a, b, c, d FROM checksum_sums")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Sums {
                n: r.get(1)?,
                lanes: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            },
        ))
    })?;
    let mut out: BTreeMap<String, Sums> = rows.collect::<rusqlite::Result<_>>()?;
    out.retain(|_, s| !s.is_zero());
    Ok(out)
}

/// The sums computed from every versions row, per entity: what [`stored`] must equal.
pub fn scan(conn: &Connection) -> Result<BTreeMap<String, Sums>> {
    let mut stmt =
        conn.prepare("SELECT entity, entity_id, fields, deleted FROM versions ORDER BY entity")?;
    let mut rows = stmt.query([])?;
    let mut out: BTreeMap<String, Sums> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let entity: String = r.get(0)?;
        let record = Sums::of_record(
            &entity,
            &r.get::<_, String>(1)?,
            &r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?.as_deref(),
        );
        out.entry(entity).or_default().add(&record);
    }
    out.retain(|_, s| !s.is_zero());
    Ok(out)
}

/// Sets the stored sums to a scan's (the migration that creates them).
pub(crate) fn fill(conn: &Connection) -> Result<()> {
    replace(conn, &scan(conn)?)
}

/// Sets the stored sums to `sums` (per entity).
fn replace(conn: &Connection, sums: &BTreeMap<String, Sums>) -> Result<()> {
    conn.execute("DELETE FROM checksum_sums", [])?;
    for (entity, s) in sums {
        add(conn, entity, s)?;
    }
    Ok(())
}

/// Sets the stored sums to `scanned` (what a scan of every record gave) where they differ,
/// and says whether they did: a record changed outside this program (a restored file, a
/// hand edit) left them wrong.
pub(crate) fn put_right(conn: &Connection, scanned: &BTreeMap<String, Sums>) -> Result<bool> {
    let differed = stored(conn)? != *scanned;
    if differed {
        tracing::warn!("the checksum's running sums differed from the records; refilled");
        replace(conn, scanned)?;
    }
    Ok(differed)
}
