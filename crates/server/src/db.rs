//! Server storage. [`Backend`] is the interface the HTTP layer uses; [`SqliteBackend`] is
//! the embedded default. Every push is applied in one transaction: all of it or none.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use binhyen_domain::catalog::entity;
use binhyen_domain::merge::{merge, ChangeOp, Incoming, RecordState};
use binhyen_sync::protocol::{PulledChange, WireChange};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Other(String),
}

/// A request refused whole, with the HTTP status and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> DbError {
    DbError::Refused(Refusal {
        status,
        code,
        message: message.into(),
    })
}

pub type DbResult<T> = Result<T, DbError>;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StationRow {
    pub id: String,
    pub unit_code: String,
    pub device_no: u32,
    pub created_at: String,
    pub enrolled_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub conflicts: usize,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// What the HTTP layer needs from storage.
pub trait Backend: Send + Sync {
    fn import_units(&self, csv: &str) -> DbResult<usize>;
    fn unit_exists(&self, code: &str) -> DbResult<bool>;
    /// Creates a station awaiting enrolment; returns its id. `token_hash` is the one-time
    /// token's SHA-256.
    fn create_station(
        &self,
        unit_code: &str,
        device_no: Option<u32>,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<(String, u32)>;
    fn stations(&self) -> DbResult<Vec<StationRow>>;
    fn revoke(&self, id: &str, now: DateTime<Utc>) -> DbResult<bool>;
    /// Consumes a one-time token and stores the station's secret hash.
    fn enroll(
        &self,
        token_hash: &str,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<StationRow>;
    fn station_by_secret(&self, id: &str, secret_hash: &str) -> DbResult<Option<StationRow>>;
    fn push(
        &self,
        station: &StationRow,
        changes: &[WireChange],
        now: DateTime<Utc>,
    ) -> DbResult<PushOutcome>;
    fn pull(
        &self,
        station: &StationRow,
        after: i64,
        limit: u32,
    ) -> DbResult<(Vec<PulledChange>, i64, bool)>;
    fn checksum(&self, station: &StationRow) -> DbResult<(String, u64)>;
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS units (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, parent_code TEXT REFERENCES units(code));
CREATE TABLE IF NOT EXISTS stations (
    id TEXT PRIMARY KEY, unit_code TEXT NOT NULL REFERENCES units(code), device_no INTEGER NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, secret_hash TEXT UNIQUE,
    created_at TEXT NOT NULL, enrolled_at TEXT, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, change_id TEXT NOT NULL UNIQUE, origin TEXT NOT NULL,
    unit_code TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, op TEXT NOT NULL,
    hlc TEXT NOT NULL, data TEXT NOT NULL, base TEXT, received_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS changes_scope ON changes(unit_code, seq);
CREATE TABLE IF NOT EXISTS records (
    entity TEXT NOT NULL, entity_id TEXT NOT NULL, unit_code TEXT NOT NULL,
    vals TEXT NOT NULL, versions TEXT NOT NULL, deleted TEXT,
    PRIMARY KEY (entity, entity_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_scope ON records(unit_code);
CREATE TABLE IF NOT EXISTS conflicts (
    id TEXT PRIMARY KEY, entity TEXT NOT NULL, entity_id TEXT NOT NULL, field TEXT NOT NULL,
    kind TEXT NOT NULL, detected_at TEXT NOT NULL);
";

/// The embedded default: one SQLite file.
pub struct SqliteBackend {
    conn: Mutex<Connection>,
}

fn parse_obj(s: &str) -> Map<String, Value> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
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
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Other(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteBackend {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The units a station may see: its own and, for a province, its communes.
    fn scope_units(conn: &Connection, unit: &str) -> DbResult<Vec<String>> {
        let mut stmt =
            conn.prepare("SELECT code FROM units WHERE code = ?1 OR parent_code = ?1")?;
        let units = stmt
            .query_map([unit], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(units)
    }
}

impl Backend for SqliteBackend {
    fn import_units(&self, csv_text: &str) -> DbResult<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let mut n = 0;
        for rec in reader.records() {
            let rec = rec.map_err(|e| refuse(400, "bad_csv", format!("Tệp đơn vị hỏng: {e}")))?;
            let (pc, pn, cc, cn) = (&rec[0], &rec[1], &rec[2], &rec[3]);
            n += tx.execute(
                "INSERT OR IGNORE INTO units(code, name, parent_code) VALUES (?1, ?2, NULL)",
                params![pc, pn],
            )?;
            tx.execute(
                "INSERT INTO units(code, name, parent_code) VALUES (?1, ?2, ?3)
                 ON CONFLICT(code) DO UPDATE SET name = excluded.name, parent_code = excluded.parent_code",
                params![cc, cn, pc],
            )?;
            n += 1;
        }
        tx.commit()?;
        Ok(n)
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
        let conn = self.lock();
        let known: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM units WHERE code = ?1)",
            [unit_code],
            |r| r.get(0),
        )?;
        if !known {
            return Err(refuse(
                400,
                "unknown_unit",
                format!("Mã đơn vị {unit_code} không có; hãy nhập danh mục đơn vị trước."),
            ));
        }
        let device = match device_no {
            Some(d) => d,
            None => conn.query_row(
                "SELECT COALESCE(max(device_no), 0) + 1 FROM stations WHERE unit_code = ?1",
                [unit_code],
                |r| r.get(0),
            )?,
        };
        let taken: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM stations WHERE unit_code = ?1 AND device_no = ?2 AND revoked_at IS NULL)",
            params![unit_code, device],
            |r| r.get(0),
        )?;
        if taken {
            return Err(refuse(
                409,
                "device_taken",
                format!("Máy số {device} của đơn vị {unit_code} đã được cấp."),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        conn.execute(
            "INSERT INTO stations(id, unit_code, device_no, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, unit_code, device, token_hash, now.to_rfc3339()],
        )?;
        Ok((id, device))
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
        now: DateTime<Utc>,
    ) -> DbResult<StationRow> {
        let conn = self.lock();
        let row: Option<StationRow> = conn
            .query_row(
                &format!("SELECT {STATION_COLS} FROM stations WHERE token_hash = ?1"),
                [token_hash],
                row_station,
            )
            .optional()?;
        let Some(row) = row else {
            return Err(refuse(401, "bad_token", "Mã cấp phép không đúng."));
        };
        if row.revoked_at.is_some() {
            return Err(refuse(403, "revoked", "Trạm này đã bị thu hồi."));
        }
        if row.enrolled_at.is_some() {
            return Err(refuse(
                409,
                "token_used",
                "Mã cấp phép này đã được dùng; hãy xin tệp cấp phép mới.",
            ));
        }
        conn.execute(
            "UPDATE stations SET secret_hash = ?2, enrolled_at = ?3 WHERE id = ?1",
            params![row.id, secret_hash, now.to_rfc3339()],
        )?;
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
        let scope = SqliteBackend::scope_units(&conn, &station.unit_code)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = PushOutcome::default();
        for (i, c) in changes.iter().enumerate() {
            let at =
                |m: String| format!("Thay đổi thứ {} ({} {}): {m}", i + 1, c.entity, c.entity_id);
            let def = entity(&c.entity).ok_or_else(|| {
                refuse(
                    400,
                    "bad_change",
                    at(format!("loại bản ghi \"{}\" không được đồng bộ", c.entity)),
                )
            })?;
            let op = ChangeOp::parse(&c.op).ok_or_else(|| {
                refuse(
                    400,
                    "bad_change",
                    at(format!("thao tác \"{}\" không hợp lệ", c.op)),
                )
            })?;
            if let Some(bad) = c.data.keys().find(|k| !def.has_field(k)) {
                return Err(refuse(
                    400,
                    "bad_change",
                    at(format!("trường \"{bad}\" không thuộc bản ghi")),
                ));
            }
            if binhyen_domain::hlc::Hlc::parse(&c.hlc).is_none()
                || c.change_id.is_empty()
                || c.entity_id.is_empty()
            {
                return Err(refuse(
                    400,
                    "bad_change",
                    at("thiếu mã thay đổi, mã bản ghi hoặc dấu thời gian hợp lệ".into()),
                ));
            }
            if !scope.contains(&c.unit_code) {
                return Err(refuse(
                    403,
                    "out_of_scope",
                    at(format!(
                        "đơn vị {} nằm ngoài phạm vi của trạm ({})",
                        c.unit_code, station.unit_code
                    )),
                ));
            }
            if let Some(u) = c.data.get("unit_code").and_then(Value::as_str) {
                if u != c.unit_code {
                    return Err(refuse(
                        403,
                        "out_of_scope",
                        at(format!(
                            "bản ghi ghi cho đơn vị {u}, ngoài phạm vi {}",
                            c.unit_code
                        )),
                    ));
                }
            }
            let dup: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM changes WHERE change_id = ?1)",
                [&c.change_id],
                |r| r.get(0),
            )?;
            if dup {
                out.duplicates += 1;
                continue;
            }
            let existing: Option<(String, String, String, Option<String>)> = tx
                .query_row(
                    "SELECT unit_code, vals, versions, deleted FROM records WHERE entity = ?1 AND entity_id = ?2",
                    params![c.entity, c.entity_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let state = match &existing {
                Some((unit, vals, versions, deleted)) => {
                    if *unit != c.unit_code {
                        return Err(refuse(
                            403,
                            "out_of_scope",
                            at(format!(
                                "bản ghi thuộc đơn vị {unit}, không thể sửa từ {}",
                                c.unit_code
                            )),
                        ));
                    }
                    RecordState {
                        exists: deleted.is_none(),
                        values: parse_obj(vals),
                        versions: parse_obj(versions),
                        deleted: deleted.clone(),
                    }
                }
                None => RecordState::default(),
            };
            let outcome = merge(
                &state,
                &Incoming {
                    entity: def.name,
                    entity_id: &c.entity_id,
                    hlc: &c.hlc,
                    op,
                    data: &c.data,
                    base: c.base.as_ref(),
                },
            );
            let mut values = state.values.clone();
            for (k, v) in &outcome.set {
                values.insert(k.clone(), v.clone());
            }
            let deleted = outcome.delete.clone().or(if outcome.undelete {
                None
            } else {
                state.deleted.clone()
            });
            tx.execute(
                "INSERT INTO records(entity, entity_id, unit_code, vals, versions, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(entity, entity_id) DO UPDATE SET vals = excluded.vals, versions = excluded.versions, deleted = excluded.deleted",
                params![def.name, c.entity_id, c.unit_code, Value::Object(values).to_string(), Value::Object(outcome.versions).to_string(), deleted],
            )?;
            for k in &outcome.conflicts {
                out.conflicts += tx.execute(
                    "INSERT OR IGNORE INTO conflicts(id, entity, entity_id, field, kind, detected_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![k.id.to_string(), def.name, c.entity_id, k.field, k.kind.as_str(), now.to_rfc3339()],
                )?;
            }
            tx.execute(
                "INSERT INTO changes(change_id, origin, unit_code, entity, entity_id, op, hlc, data, base, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    c.change_id,
                    station.id,
                    c.unit_code,
                    c.entity,
                    c.entity_id,
                    c.op,
                    c.hlc,
                    Value::Object(c.data.clone()).to_string(),
                    c.base.as_ref().map(|b| Value::Object(b.clone()).to_string()),
                    now.to_rfc3339()
                ],
            )?;
            out.accepted += 1;
        }
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
        // Reporter identity travels only within the commune it belongs to.
        let mut stmt = conn.prepare_cached(
            "SELECT seq, change_id, origin, unit_code, entity, entity_id, op, hlc, data, base FROM changes
             WHERE seq > ?1 AND origin <> ?2
               AND (unit_code = ?3 OR (unit_code IN (SELECT code FROM units WHERE parent_code = ?3) AND entity <> 'tip_reporter'))
             ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(params![after, station.id, station.unit_code, limit], |r| {
                let data: String = r.get(8)?;
                let base: Option<String> = r.get(9)?;
                Ok(PulledChange {
                    seq: r.get(0)?,
                    origin: r.get(2)?,
                    change: WireChange {
                        change_id: r.get(1)?,
                        unit_code: r.get(3)?,
                        entity: r.get(4)?,
                        entity_id: r.get(5)?,
                        op: r.get(6)?,
                        hlc: r.get(7)?,
                        data: parse_obj(&data),
                        base: base.map(|b| parse_obj(&b)),
                    },
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let more = rows.len() as u32 == limit;
        let next = if more {
            rows.last().map(|c| c.seq).unwrap_or(after)
        } else {
            conn.query_row("SELECT COALESCE(max(seq), 0) FROM changes", [], |r| {
                r.get::<_, i64>(0)
            })?
            .max(after)
        };
        Ok((rows, next, more))
    }

    fn checksum(&self, station: &StationRow) -> DbResult<(String, u64)> {
        let conn = self.lock();
        let commune = binhyen_domain::unit::is_commune_code(&station.unit_code);
        let mut stmt = conn.prepare(
            "SELECT entity, entity_id, versions, deleted FROM records
             WHERE unit_code = ?1 OR unit_code IN (SELECT code FROM units WHERE parent_code = ?1)
             ORDER BY entity, entity_id",
        )?;
        let mut rows = stmt.query([&station.unit_code])?;
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let entity_name: String = r.get(0)?;
            if !commune && entity(&entity_name).is_some_and(|d| d.identity) {
                continue;
            }
            let versions: String = r.get(2)?;
            let deleted: Option<String> = r.get(3)?;
            let canonical = serde_json::from_str::<Value>(&versions)
                .map(|v| v.to_string())
                .unwrap_or(versions);
            hasher.update(format!(
                "{entity_name}\u{1f}{}\u{1f}{canonical}\u{1f}{}\n",
                r.get::<_, String>(1)?,
                deleted.unwrap_or_default()
            ));
            n += 1;
        }
        Ok((hex::encode(hasher.finalize()), n))
    }
}
