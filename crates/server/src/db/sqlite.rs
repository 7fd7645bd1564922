//! The embedded default backend: one SQLite file, one connection behind a mutex (pushes
//! are serialised, so the server's order is the commit order).

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use binhyen_domain::audit::AuditRecord;
use binhyen_protocol::wire::{AuditPush, PulledChange, WireChange};

use binhyen_domain::checksum::Sums;

use super::{
    push_with, scope_checksum, wire_change, Backend, DbError, DbResult, PushOutcome, ReleaseRow,
    ScopeRecord, ScopeScan, ScopeSums, ServerStats, StationRow, StoredRecord, StoredSums, Tx,
    SCHEMA,
};
use std::collections::BTreeMap;

pub struct SqliteBackend {
    conn: Mutex<Connection>,
}

fn row_station(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationRow> {
    Ok(StationRow {
        id: r.get(0)?,
        unit_code: r.get(1)?,
        device_no: r.get(2)?,
        created_at: r.get(3)?,
        enrolled_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

const STATION_COLS: &str = "id, unit_code, device_no, created_at, enrolled_at, revoked_at";

impl SqliteBackend {
    pub fn open(path: &Path) -> DbResult<SqliteBackend> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Other(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        // Stations' secrets' hashes, their audit trails, sealed identities: the owner's only.
        binhyen_store::private_files::make_private(path)
            .map_err(|e| DbError::Other(format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS changes (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, change_id TEXT NOT NULL UNIQUE, origin TEXT NOT NULL,
                unit_code TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, op TEXT NOT NULL,
                hlc TEXT NOT NULL, data TEXT NOT NULL, base TEXT, received_at TEXT NOT NULL)",
        )?;
        for sql in SCHEMA {
            conn.execute_batch(sql)?;
        }
        fill_sums(&mut conn)?;
        Ok(SqliteBackend {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fills the checksum's running sums from every record, once (a database from before them).
fn fill_sums(conn: &mut Connection) -> DbResult<()> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM server_meta WHERE key = 'checksum_sums')",
        [],
        |r| r.get(0),
    )?;
    if !done {
        // Read a record at a time: a province's server may hold millions.
        let mut sums = ScopeSums::default();
        {
            let mut stmt =
                tx.prepare("SELECT unit_code, entity, entity_id, versions, deleted FROM records")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                sums.add(
                    &r.get::<_, String>(0)?,
                    &r.get::<_, String>(1)?,
                    &r.get::<_, String>(2)?,
                    &r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?.as_deref(),
                );
            }
        }
        tx.execute("DELETE FROM checksum_sums", [])?;
        for ((unit, entity), s) in &sums.finish() {
            tx.add_sums(unit, entity, s)?;
        }
        tx.execute(
            "INSERT INTO server_meta(key, value) VALUES ('checksum_sums', '1')",
            [],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The stored running sums of a unit and its communes, per (unit, entity), zeros left out.
fn stored_sums(
    conn: &Connection,
    unit: &str,
) -> DbResult<std::collections::BTreeMap<(String, String), Sums>> {
    let mut stmt = conn.prepare_cached(
        "SELECT unit_code, entity, n, a, b, c, d FROM checksum_sums
         WHERE unit_code = ?1 OR unit_code IN (SELECT code FROM units WHERE parent_code = ?1)",
    )?;
    let rows = stmt
        .query_map([unit], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                Sums {
                    n: r.get(2)?,
                    lanes: [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                },
            ))
        })?
        .collect::<rusqlite::Result<std::collections::BTreeMap<_, _>>>()?;
    Ok(rows.into_iter().filter(|(_, s)| !s.is_zero()).collect())
}

impl Tx for Transaction<'_> {
    fn unit_records(&mut self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>> {
        let rows = self
            .prepare_cached(
                "SELECT entity_id, vals FROM records
                 WHERE unit_code = ?1 AND entity = ?2 AND deleted IS NULL ORDER BY entity_id",
            )?
            .query_map(params![unit, entity], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn meta_set(&mut self, key: &str, value: &str) -> DbResult<()> {
        self.execute(
            "INSERT INTO server_meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn meta_init(&mut self, key: &str, value: &str) -> DbResult<String> {
        self.execute(
            "INSERT INTO server_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
            params![key, value],
        )?;
        Ok(
            self.query_row("SELECT value FROM server_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })?,
        )
    }

    fn insert_unit_if_absent(&mut self, code: &str, name: &str) -> DbResult<usize> {
        Ok(self.execute(
            "INSERT OR IGNORE INTO units(code, name, parent_code) VALUES (?1, ?2, NULL)",
            params![code, name],
        )?)
    }

    fn upsert_unit(&mut self, code: &str, name: &str, parent: &str) -> DbResult<()> {
        self.execute(
            "INSERT INTO units(code, name, parent_code) VALUES (?1, ?2, ?3)
             ON CONFLICT(code) DO UPDATE SET name = excluded.name, parent_code = excluded.parent_code",
            params![code, name, parent],
        )?;
        Ok(())
    }

    fn unit_known(&mut self, code: &str) -> DbResult<bool> {
        Ok(self.query_row(
            "SELECT EXISTS(SELECT 1 FROM units WHERE code = ?1)",
            [code],
            |r| r.get(0),
        )?)
    }

    fn next_device(&mut self, unit: &str) -> DbResult<u32> {
        Ok(self.query_row(
            "SELECT COALESCE(max(device_no), 0) + 1 FROM stations WHERE unit_code = ?1",
            [unit],
            |r| r.get(0),
        )?)
    }

    fn device_taken(&mut self, unit: &str, device: u32) -> DbResult<bool> {
        Ok(self.query_row(
            "SELECT EXISTS(SELECT 1 FROM stations WHERE unit_code = ?1 AND device_no = ?2 AND revoked_at IS NULL)",
            params![unit, device],
            |r| r.get(0),
        )?)
    }

    fn insert_station(
        &mut self,
        id: &str,
        unit: &str,
        device: u32,
        token_hash: &str,
        at: &str,
    ) -> DbResult<()> {
        self.execute(
            "INSERT INTO stations(id, unit_code, device_no, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, unit, device, token_hash, at],
        )?;
        Ok(())
    }

    fn scan_scope(&mut self, unit: &str, scan: &mut ScopeScan) -> DbResult<()> {
        let mut stmt = self.prepare(super::CHECKSUM_SQL_SQLITE)?;
        let mut rows = stmt.query([unit])?;
        while let Some(r) = rows.next()? {
            scan.add(
                &r.get::<_, String>(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?.as_deref(),
            );
        }
        Ok(())
    }

    fn stored_sums(&mut self, unit: &str) -> DbResult<StoredSums> {
        stored_sums(self, unit)
    }

    fn clear_sums(&mut self, unit: &str) -> DbResult<()> {
        self.execute(
            "DELETE FROM checksum_sums
             WHERE unit_code = ?1 OR unit_code IN (SELECT code FROM units WHERE parent_code = ?1)",
            [unit],
        )?;
        Ok(())
    }

    fn audit_last(&mut self, station_id: &str) -> DbResult<Option<(i64, String)>> {
        Ok(self
            .query_row(
                "SELECT seq, hash FROM audit_entries WHERE station_id = ?1 ORDER BY seq DESC LIMIT 1",
                [station_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn audit_hash(&mut self, station_id: &str, seq: i64) -> DbResult<Option<String>> {
        Ok(self
            .prepare_cached("SELECT hash FROM audit_entries WHERE station_id = ?1 AND seq = ?2")?
            .query_row(params![station_id, seq], |r| r.get(0))
            .optional()?)
    }

    fn insert_audit(
        &mut self,
        station_id: &str,
        e: &AuditRecord,
        received_at: &str,
    ) -> DbResult<()> {
        self.prepare_cached(
            "INSERT INTO audit_entries(station_id, seq, at, actor, action, target, detail, prev_hash, hash, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            station_id, e.seq, e.at, e.actor, e.action, e.target, e.detail, e.prev_hash, e.hash, received_at
        ])?;
        Ok(())
    }

    fn add_sums(&mut self, unit: &str, entity: &str, s: &Sums) -> DbResult<()> {
        self.prepare_cached(
            "INSERT INTO checksum_sums(unit_code, entity, n, a, b, c, d) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(unit_code, entity) DO UPDATE SET n = n + excluded.n, a = a + excluded.a,
                 b = b + excluded.b, c = c + excluded.c, d = d + excluded.d",
        )?
        .execute(params![unit, entity, s.n, s.lanes[0], s.lanes[1], s.lanes[2], s.lanes[3]])?;
        Ok(())
    }

    fn scope_units(&mut self, unit: &str) -> DbResult<Vec<String>> {
        let mut stmt =
            self.prepare_cached("SELECT code FROM units WHERE code = ?1 OR parent_code = ?1")?;
        let units = stmt
            .query_map([unit], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(units)
    }

    fn change_exists(&mut self, change_id: &str) -> DbResult<bool> {
        Ok(self
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM changes WHERE change_id = ?1)")?
            .query_row([change_id], |r| r.get(0))?)
    }

    fn record(&mut self, entity: &str, id: &str) -> DbResult<Option<StoredRecord>> {
        Ok(self
            .prepare_cached(
                "SELECT unit_code, vals, versions, deleted FROM records WHERE entity = ?1 AND entity_id = ?2",
            )?
            .query_row(
                params![entity, id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
    }

    fn put_record(
        &mut self,
        entity: &str,
        id: &str,
        unit: &str,
        vals: &str,
        versions: &str,
        deleted: Option<&str>,
    ) -> DbResult<()> {
        self.prepare_cached(
            "INSERT INTO records(entity, entity_id, unit_code, vals, versions, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(entity, entity_id) DO UPDATE SET vals = excluded.vals, versions = excluded.versions, deleted = excluded.deleted")?
            .execute(
            params![entity, id, unit, vals, versions, deleted],
        )?;
        Ok(())
    }

    fn insert_conflict(
        &mut self,
        id: &str,
        entity: &str,
        entity_id: &str,
        field: &str,
        kind: &str,
        at: &str,
    ) -> DbResult<usize> {
        Ok(self.prepare_cached(
            "INSERT OR IGNORE INTO conflicts(id, entity, entity_id, field, kind, detected_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(
            params![id, entity, entity_id, field, kind, at],
        )?)
    }

    fn insert_change(&mut self, c: &WireChange, origin: &str, at: &str) -> DbResult<()> {
        let data = super::object_text(&c.data)?;
        let base = c.base.as_ref().map(super::object_text).transpose()?;
        self.prepare_cached(
            "INSERT INTO changes(change_id, origin, unit_code, entity, entity_id, op, hlc, data, base, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?
            .execute(
            params![
                c.change_id,
                origin,
                c.unit_code,
                c.entity,
                c.entity_id,
                c.op,
                c.hlc,
                data,
                base,
                at
            ],
        )?;
        Ok(())
    }

    fn open_conflicts(&mut self, entity: &str, entity_id: &str) -> DbResult<Vec<(String, String)>> {
        let mut stmt = self.prepare_cached(
            "SELECT id, field FROM conflicts WHERE entity = ?1 AND entity_id = ?2 AND resolved_at IS NULL ORDER BY id",
        )?;
        let ids = stmt
            .query_map(params![entity, entity_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    fn close_conflict(&mut self, id: &str, at: &str) -> DbResult<()> {
        self.prepare_cached("UPDATE conflicts SET resolved_at = ?2 WHERE id = ?1")?
            .execute(params![id, at])?;
        Ok(())
    }
}

impl Backend for SqliteBackend {
    fn import_units(&self, csv_text: &str) -> DbResult<usize> {
        let mut conn = self.lock();
        let mut tx = conn.transaction()?;
        let n = super::rules::import_units(&mut tx, csv_text)?;
        tx.commit()?;
        Ok(n)
    }

    fn unit_name(&self, code: &str) -> DbResult<Option<String>> {
        Ok(self
            .lock()
            .query_row("SELECT name FROM units WHERE code = ?1", [code], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn unit_exists(&self, code: &str) -> DbResult<bool> {
        Ok(self.lock().query_row(
            "SELECT EXISTS(SELECT 1 FROM units WHERE code = ?1)",
            [code],
            |r| r.get(0),
        )?)
    }

    fn create_station(
        &self,
        unit_code: &str,
        device_no: Option<u32>,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<(String, u32)> {
        let mut conn = self.lock();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = super::rules::create_station(&mut tx, unit_code, device_no, token_hash, now)?;
        tx.commit()?;
        Ok(out)
    }

    fn stations(&self) -> DbResult<Vec<StationRow>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {STATION_COLS} FROM stations ORDER BY unit_code, device_no"
        ))?;
        let rows = stmt
            .query_map([], row_station)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn revoke(&self, id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        Ok(self.lock().execute(
            "UPDATE stations SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now.to_rfc3339()],
        )? == 1)
    }

    fn enroll(
        &self,
        token_hash: &str,
        secret_hash: &str,
        bundle_key: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<StationRow> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<StationRow> = tx
            .query_row(
                &format!("SELECT {STATION_COLS} FROM stations WHERE token_hash = ?1"),
                [token_hash],
                row_station,
            )
            .optional()?;
        if let Some(r) = row.as_ref().filter(|r| super::enrolled_before(r, only)) {
            // The same enrolment again (its reply was lost): the station proves the secret.
            let same: bool = tx.query_row(
                "SELECT secret_hash IS ?2 FROM stations WHERE id = ?1",
                params![r.id, secret_hash],
                |x| x.get(0),
            )?;
            if same {
                return Ok(r.clone());
            }
        }
        let row = super::check_enrollable(row, only)?;
        tx.execute(
            "UPDATE stations SET secret_hash = ?2, enrolled_at = ?3 WHERE id = ?1",
            params![row.id, secret_hash, now.to_rfc3339()],
        )?;
        tx.execute(
            "INSERT INTO station_keys(station_id, bundle_key) VALUES (?1, ?2)
             ON CONFLICT(station_id) DO UPDATE SET bundle_key = excluded.bundle_key",
            params![row.id, bundle_key],
        )?;
        tx.commit()?;
        Ok(StationRow {
            enrolled_at: Some(now.to_rfc3339()),
            ..row
        })
    }

    fn station_by_secret(&self, id: &str, secret_hash: &str) -> DbResult<Option<StationRow>> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {STATION_COLS} FROM stations WHERE id = ?1 AND secret_hash = ?2"),
                params![id, secret_hash],
                row_station,
            )
            .optional()?)
    }

    fn push(
        &self,
        station: &StationRow,
        changes: &[WireChange],
        now: DateTime<Utc>,
    ) -> DbResult<PushOutcome> {
        let mut conn = self.lock();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = push_with(&mut tx, station, changes, now)?;
        tx.commit()?;
        Ok(out)
    }

    fn pull(
        &self,
        station: &StationRow,
        after: i64,
        limit: u32,
    ) -> DbResult<(Vec<PulledChange>, i64, bool)> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(super::PULL_SQL_SQLITE)?;
        let rows = stmt
            .query_map(params![after, station.id, station.unit_code, limit], |r| {
                let data: String = r.get(8)?;
                Ok(PulledChange {
                    seq: r.get(0)?,
                    origin: r.get(2)?,
                    change: wire_change(
                        r.get(1)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        &data,
                        r.get(9)?,
                    ),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let max: i64 = conn.query_row("SELECT COALESCE(max(seq), 0) FROM changes", [], |r| {
            r.get(0)
        })?;
        Ok(super::page(rows, after, limit, max))
    }

    fn checksum(&self, station: &StationRow) -> DbResult<(String, u64)> {
        let mut conn = self.lock();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let digest = super::rules::checksum(&mut tx, station)?;
        tx.commit()?;
        Ok(digest)
    }

    fn checksum_sums(&self, station: &StationRow) -> DbResult<(String, u64)> {
        let conn = self.lock();
        let rows = stored_sums(&conn, &station.unit_code)?
            .into_iter()
            .map(|((_, entity), s)| (entity, s))
            .collect();
        Ok(scope_checksum(
            rows,
            binhyen_domain::unit::is_commune_code(&station.unit_code),
        ))
    }

    fn records(
        &self,
        station: &StationRow,
        after: Option<(String, String)>,
        limit: u32,
    ) -> DbResult<Vec<ScopeRecord>> {
        let (e, id) = after.unwrap_or_default();
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(super::RECORDS_SQL_SQLITE)?;
        let rows = stmt
            .query_map(
                params![
                    station.unit_code,
                    e,
                    id,
                    limit,
                    binhyen_domain::unit::is_commune_code(&station.unit_code)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(super::scope_records(rows))
    }

    fn station_with_key(&self, id: &str) -> DbResult<Option<(StationRow, Option<String>)>> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("SELECT {STATION_COLS} FROM stations WHERE id = ?1"),
                [id],
                row_station,
            )
            .optional()?;
        let Some(row) = row else { return Ok(None) };
        let key = conn
            .query_row(
                "SELECT bundle_key FROM station_keys WHERE station_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Some((row, key)))
    }

    fn push_audit(
        &self,
        station: &StationRow,
        push: &AuditPush,
        now: DateTime<Utc>,
    ) -> DbResult<i64> {
        let mut conn = self.lock();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last = super::rules::push_audit(&mut tx, station, push, now)?;
        tx.commit()?;
        Ok(last)
    }

    fn audit_chain(&self, station_id: &str) -> DbResult<Vec<AuditRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_entries
             WHERE station_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([station_id], |r| {
                Ok(AuditRecord {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: r.get(5)?,
                    prev_hash: r.get(6)?,
                    hash: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn meta_get(&self, key: &str) -> DbResult<Option<String>> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM server_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn meta_set(&self, key: &str, value: &str) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO server_meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn set_recovery_code(&self, station_id: &str, code: &str, now: DateTime<Utc>) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO station_recovery(station_id, code, stored_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(station_id) DO UPDATE SET code = excluded.code, stored_at = excluded.stored_at",
            params![station_id, code, now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn set_bundle_key(&self, station_id: &str, bundle_key: &str) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO station_keys(station_id, bundle_key) VALUES (?1, ?2)
             ON CONFLICT(station_id) DO UPDATE SET bundle_key = excluded.bundle_key",
            params![station_id, bundle_key],
        )?;
        Ok(())
    }

    fn record_event(
        &self,
        at: DateTime<Utc>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO server_events(at, action, target, detail) VALUES (?1, ?2, ?3, ?4)",
            params![at.to_rfc3339(), action, target, detail],
        )?;
        Ok(())
    }

    fn events(&self, limit: u32) -> DbResult<Vec<(String, String, String, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT at, action, target, detail FROM server_events ORDER BY rowid DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn station_seen(&self, station_id: &str, version: &str, now: DateTime<Utc>) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO station_seen(station_id, version, seen_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(station_id) DO UPDATE SET version = excluded.version, seen_at = excluded.seen_at",
            params![station_id, version, now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn unit_records(&self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>> {
        let mut conn = self.lock();
        let mut tx = conn.transaction()?;
        Tx::unit_records(&mut tx, unit, entity)
    }

    fn entity_records(&self, entity: &str) -> DbResult<Vec<(String, String, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT unit_code, entity_id, vals FROM records
             WHERE entity = ?1 AND deleted IS NULL ORDER BY unit_code, entity_id",
        )?;
        let rows = stmt
            .query_map([entity], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn stations_seen(&self) -> DbResult<BTreeMap<String, (String, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT station_id, version, seen_at FROM station_seen")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn station_waiting(
        &self,
        station_id: &str,
        remaining: u64,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO station_waiting(station_id, remaining, reported_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(station_id) DO UPDATE SET remaining = excluded.remaining, reported_at = excluded.reported_at",
            params![station_id, remaining.min(i64::MAX as u64) as i64, now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn stations_waiting(&self) -> DbResult<BTreeMap<String, (u64, String)>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT station_id, remaining, reported_at FROM station_waiting")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, (r.get::<_, i64>(1)?.max(0) as u64, r.get(2)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn stats(&self) -> DbResult<ServerStats> {
        let conn = self.lock();
        let open_conflicts: i64 = conn.query_row(
            "SELECT count(*) FROM conflicts WHERE resolved_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        let database_bytes: i64 = conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )?;
        Ok(ServerStats {
            open_conflicts: open_conflicts.max(0) as u64,
            database_bytes: database_bytes.max(0) as u64,
        })
    }

    fn audit_heads(&self) -> DbResult<BTreeMap<String, (i64, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT a.station_id, a.seq, a.at FROM audit_entries a
             JOIN (SELECT station_id, max(seq) AS seq FROM audit_entries GROUP BY station_id) m
               ON m.station_id = a.station_id AND m.seq = a.seq",
        )?;
        let heads = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(heads)
    }

    fn publish_release(&self, release: &ReleaseRow, data: &[u8]) -> DbResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let known: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM releases WHERE version = ?1)",
            [&release.version],
            |r| r.get(0),
        )?;
        if known {
            return Err(super::release_exists(&release.version));
        }
        tx.execute(
            "INSERT INTO releases(version, file_name, size_bytes, sha256, signature, units, percent,
                                  published_at, withdrawn_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
            params![
                release.version,
                release.file_name,
                release.size as i64,
                release.sha256,
                release.signature,
                release.units,
                release.percent,
                release.published_at
            ],
        )?;
        tx.execute(
            "INSERT INTO release_content(version, data) VALUES (?1, ?2)",
            params![release.version, data],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn releases(&self) -> DbResult<Vec<ReleaseRow>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT version, file_name, size_bytes, sha256, signature, units, percent, published_at,
                    withdrawn_at
             FROM releases ORDER BY published_at DESC, version DESC",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ReleaseRow {
                    version: r.get(0)?,
                    file_name: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    sha256: r.get(3)?,
                    signature: r.get(4)?,
                    units: r.get(5)?,
                    percent: r.get(6)?,
                    published_at: r.get(7)?,
                    withdrawn_at: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn withdraw_release(&self, version: &str, now: DateTime<Utc>) -> DbResult<bool> {
        Ok(self.lock().execute(
            "UPDATE releases SET withdrawn_at = ?2 WHERE version = ?1 AND withdrawn_at IS NULL",
            params![version, now.to_rfc3339()],
        )? == 1)
    }

    fn release_piece(&self, version: &str, offset: u64, len: u32) -> DbResult<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT substr(data, ?2, ?3) FROM release_content WHERE version = ?1",
                params![version, offset as i64 + 1, len],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn recovery_code(&self, station_id: &str) -> DbResult<Option<(String, String)>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT code, stored_at FROM station_recovery WHERE station_id = ?1",
                [station_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn attachment_named(&self, unit: &str, sha256: &str) -> DbResult<bool> {
        Ok(self.lock().query_row(
            "SELECT EXISTS(SELECT 1 FROM records WHERE unit_code = ?1 AND entity = 'attachment'
               AND deleted IS NULL AND json_extract(vals, '$.sha256') = ?2)",
            params![unit, sha256],
            |r| r.get(0),
        )?)
    }

    fn store_attachment(
        &self,
        unit: &str,
        sha256: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO attachment_content(unit_code, sha256, data, size_bytes, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(unit_code, sha256) DO NOTHING",
            params![unit, sha256, data, data.len() as i64, now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn attachment(&self, unit: &str, sha256: &str) -> DbResult<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT data FROM attachment_content WHERE unit_code = ?1 AND sha256 = ?2",
                params![unit, sha256],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn meta_init(&self, key: &str, value: &str) -> DbResult<String> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO server_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
            params![key, value],
        )?;
        Ok(
            conn.query_row("SELECT value FROM server_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })?,
        )
    }
}
