//! The station as a replica: applying changes pulled from the server (through the shared
//! per-field merge), keeping conflicts for a person, the per-scope checksum, and the sync
//! bookkeeping (server, credentials, cursor, last success, last failure).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;

use binhyen_domain::catalog::{entity, EntityDef};
use binhyen_domain::hlc::Hlc;
use binhyen_domain::merge::{merge, ChangeOp, Incoming, RecordState};
use binhyen_domain::versions;
use binhyen_domain::Invalid;

use binhyen_domain::checksum::Sums;

pub use crate::changes::record_unit;
use crate::changes::{meta_get, meta_set, Op};
use crate::roster::to_sql;
use crate::search::{self, FtsBatch};
use crate::sql::ts;
use crate::{Result, Station, StoreError};

mod readable;

/// A change pulled from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteChange {
    pub seq: i64,
    pub change_id: String,
    pub hlc: String,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
    pub data: Map<String, Value>,
    pub base: Option<Map<String, Value>>,
}

impl From<binhyen_protocol::wire::PulledChange> for RemoteChange {
    fn from(p: binhyen_protocol::wire::PulledChange) -> RemoteChange {
        RemoteChange {
            seq: p.seq,
            change_id: p.change.change_id,
            hlc: p.change.hlc,
            entity: p.change.entity,
            entity_id: p.change.entity_id,
            op: p.change.op,
            data: p.change.data,
            base: p.change.base,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub applied: usize,
    pub skipped: usize,
    pub conflicts: usize,
}

/// A conflict as the officer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ConflictView {
    pub id: String,
    pub entity: String,
    pub entity_id: String,
    pub field: String,
    pub kind: String,
    #[ts(type = "unknown")]
    pub local_value: Value,
    #[ts(type = "unknown")]
    pub remote_value: Value,
    /// Which value the record holds until someone decides: "local" or "remote".
    pub winner: String,
    /// Which value this laptop wrote, if either: "local" or "remote". ("local" and
    /// "remote" are the server's order: the value it held, and the one that came after.)
    pub mine: Option<String>,
    pub detected_at: String,
    pub resolved_at: Option<String>,
    /// The field is part of a reporter's identity: its values are withheld until revealed
    /// with a stated reason ([`Station::reveal_conflict`]).
    pub identity: bool,
    /// The values shown are placeholders, not the values.
    pub withheld: bool,
    /// The record as the station names it: "Nguồn tin số 0012/2026/M1", "Thôn Hòa Bình"
    /// (none when it is gone).
    pub subject: Option<String>,
    /// The field as the forms name it ("Loại nguồn tin").
    pub field_label: String,
    /// Each value in Vietnamese: a category's name, a hamlet's, an officer's, a time in
    /// Vietnam time; never a code or an id.
    pub local_text: String,
    pub remote_text: String,
    /// When each side was written (Vietnam time), and on which laptop.
    pub local_at: Option<String>,
    pub local_by: String,
    pub remote_at: Option<String>,
    pub remote_by: String,
}

/// How an officer resolves a conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Take {
    Local,
    Server,
    Value(Value),
}

/// Which way an officer chose in the conflicts view (the window sends it with the value
/// typed, for [`Choice::Value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Choice {
    /// This laptop's value.
    Local,
    /// The value that came from the server.
    Server,
    /// A value typed by the officer.
    Value,
}

impl Choice {
    /// The resolution, with the value typed for [`Choice::Value`]; `None` where that value
    /// is missing.
    pub fn take(self, value: Option<Value>) -> Option<Take> {
        match (self, value) {
            (Choice::Local, _) => Some(Take::Local),
            (Choice::Server, _) => Some(Take::Server),
            (Choice::Value, Some(v)) => Some(Take::Value(v)),
            (Choice::Value, None) => None,
        }
    }
}

fn from_sql(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Real(f) => Value::from(f),
        SqlValue::Text(s) => Value::String(s),
        SqlValue::Blob(b) => Value::String(hex::encode(b)),
    }
}

fn refuse(message: String) -> StoreError {
    StoreError::Invalid(Invalid::one("change", "bad_change", message))
}

/// The entity and its fields, checked against the catalogue: nothing unknown reaches SQL.
pub fn check_change(
    entity_name: &str,
    op: &str,
    data: &Map<String, Value>,
) -> Result<(&'static EntityDef, ChangeOp)> {
    binhyen_domain::catalog::check_change(entity_name, op, data)
        .map_err(|m| refuse(format!("Thay đổi không hợp lệ: {m}.")))
}

/// A record's state for the merge, and its versions row as stored (fields, deleted), which
/// the checksum's sums take out when the row is rewritten.
type StoredVersions = Option<(String, Option<String>)>;

fn load_state(
    conn: &Connection,
    def: &EntityDef,
    id: &str,
) -> Result<(RecordState, StoredVersions)> {
    let cols = def.fields.join(", ");
    let values: Option<Map<String, Value>> = conn
        .prepare_cached(&format!(
            "SELECT {cols} FROM {} WHERE {} = ?1",
            def.table, def.key
        ))?
        .query_row([id], |r| {
            let mut m = Map::new();
            for (i, f) in def.fields.iter().enumerate() {
                m.insert((*f).to_string(), from_sql(r.get::<_, SqlValue>(i)?));
            }
            Ok(m)
        })
        .optional()?;
    let stored = crate::sums::stored_row(conn, def.name, id)?;
    let state = RecordState {
        exists: values.is_some(),
        values: values.unwrap_or_default(),
        versions: stored
            .as_ref()
            .map(|(fields, _)| versions::parse(fields))
            .unwrap_or_default(),
        deleted: stored.as_ref().and_then(|(_, d)| d.clone()),
    };
    Ok((state, stored))
}

/// Rebuilds the search document of a record changed by sync.
fn reindex(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    def: &EntityDef,
    id: &str,
) -> Result<()> {
    match def.name {
        "tip" => crate::tips::reindex_tip(conn, batch, id),
        "hamlet" | "roster_person" => crate::roster::reindex(conn, batch, def.name, id),
        _ => Ok(()),
    }
}

/// Deletes a record's row and its search document.
fn delete_record(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    def: &EntityDef,
    id: &str,
) -> Result<()> {
    conn.prepare_cached(&format!("DELETE FROM {} WHERE {} = ?1", def.table, def.key))?
        .execute([id])?;
    match search::doc_kind(def.name) {
        Some(kind) => search::unindex(conn, batch, kind, id),
        None => Ok(()),
    }
}

/// Applies a conflict event from the server: a new conflict, or the end of one.
fn apply_conflict_event(conn: &Connection, c: &RemoteChange) -> Result<usize> {
    let text = |k: &str| c.data.get(k).and_then(Value::as_str).map(str::to_string);
    if c.op == "insert" {
        let n = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO conflicts(id, entity, entity_id, field, kind, local_value, local_hlc,
                    remote_value, remote_hlc, winner, detected_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                c.entity_id,
                text("entity").unwrap_or_default(),
                text("entity_id").unwrap_or_default(),
                text("field").unwrap_or_default(),
                text("kind").unwrap_or_else(|| "field".into()),
                text("local_value"),
                text("local_hlc").unwrap_or_default(),
                text("remote_value"),
                text("remote_hlc").unwrap_or_default(),
                text("winner").unwrap_or_else(|| "remote".into()),
                text("detected_at").unwrap_or_default()
            ])?;
        Ok(n)
    } else {
        conn.prepare_cached("UPDATE conflicts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1 AND resolved_at IS NULL")?
            .execute(params![c.entity_id, text("resolved_at").unwrap_or_default(), text("resolution")])?;
        Ok(0)
    }
}

/// Writes `set` (field → value) into the record's row: an update of an existing row, or
/// the insert of a new one; then refreshes its search document (now, or with `batch`).
fn write_values(
    tx: &Connection,
    batch: Option<&mut FtsBatch>,
    def: &EntityDef,
    id: &str,
    exists: bool,
    set: &BTreeMap<&str, &Value>,
) -> Result<()> {
    let cols: Vec<&str> = set.keys().copied().collect();
    let mut values = vec![SqlValue::Text(id.to_string())];
    values.extend(set.values().map(|v| to_sql(v)));
    let sql = if exists {
        let sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ?{}", i + 2))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {} = ?1",
            def.table,
            sets.join(", "),
            def.key
        )
    } else {
        let marks: Vec<String> = (2..=cols.len() + 1).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {}({}, {}) VALUES (?1, {})",
            def.table,
            def.key,
            cols.join(", "),
            marks.join(", ")
        )
    };
    tx.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    reindex(tx, batch, def, id)
}

/// (entity, id, versions as stored, tombstone) of one record.
pub type VersionRow = (String, String, String, Option<String>);

/// One record as the server holds it, for a repair after a checksum mismatch.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    pub entity: String,
    pub entity_id: String,
    pub data: Map<String, Value>,
    pub versions: Map<String, Value>,
    pub deleted: Option<String>,
}

impl Station {
    /// Applies a page of changes pulled from the server, in order, in one transaction.
    /// A change seen before (own or applied) is skipped; a bad one refuses the page whole.
    pub fn apply_remote(
        &mut self,
        changes: &[RemoteChange],
        now: DateTime<Utc>,
    ) -> Result<ApplyReport> {
        self.apply_page(changes, None, now)
    }

    /// [`Station::apply_remote`], and the pull cursor moved to `cursor` in the same
    /// transaction: a page is applied and remembered together, or not at all.
    pub fn apply_page(
        &mut self,
        changes: &[RemoteChange],
        cursor: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        // A pulled page moves the pull cursor in its own transaction: should power fail
        // before it reaches the disk, the page is simply pulled again. So it needs no sync
        // of its own (WAL, synchronous=NORMAL keeps the file consistent); own writes keep
        // FULL.
        if cursor.is_some() {
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let result = self.apply_in_tx(changes, cursor, now, &mut report);
        if cursor.is_some() {
            self.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        result.map(|()| report)
    }

    fn apply_in_tx(
        &mut self,
        changes: &[RemoteChange],
        cursor: Option<i64>,
        now: DateTime<Utc>,
        report: &mut ApplyReport,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut clock = meta_get(&tx, "hlc")?
            .and_then(|s| Hlc::parse(&s))
            .unwrap_or_else(|| {
                Hlc::zero(&meta_get(&tx, "node_id").ok().flatten().unwrap_or_default())
            });
        // The page's search documents are written together at its end (see `FtsBatch`).
        let mut fts = FtsBatch::default();
        let mut sums = crate::sums::SumsDelta::default();
        for c in changes {
            let seen: bool = tx
                .prepare_cached(
                    "SELECT EXISTS(SELECT 1 FROM applied_changes WHERE change_id = ?1)
                         OR EXISTS(SELECT 1 FROM changes WHERE change_id = ?1)",
                )?
                .query_row([&c.change_id], |r| r.get(0))?;
            if seen {
                report.skipped += 1;
                continue;
            }
            if c.entity == "conflict" || c.entity == "conflict_identity" {
                report.conflicts += apply_conflict_event(&tx, c)?;
                tx.prepare_cached(
                    "INSERT INTO applied_changes(change_id, server_seq) VALUES (?1, ?2)",
                )?
                .execute(params![c.change_id, c.seq])?;
                report.applied += 1;
                continue;
            }
            let (def, op) = check_change(&c.entity, &c.op, &c.data)?;
            let remote = Hlc::parse(&c.hlc)
                .ok_or_else(|| refuse(format!("Dấu thời gian \"{}\" không hợp lệ.", c.hlc)))?;
            clock = clock.observe(&remote, now.timestamp_millis());
            let (state, stored) = load_state(&tx, def, &c.entity_id)?;
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
            if outcome.delete.is_some() {
                delete_record(&tx, Some(&mut fts), def, &c.entity_id)?;
            } else if !outcome.set.is_empty() {
                write_values(
                    &tx,
                    Some(&mut fts),
                    def,
                    &c.entity_id,
                    state.exists,
                    &outcome.set,
                )?;
                // An identity in clear (from a laptop not yet updated) is sealed after
                // this sync: the next scan must run.
                if def.identity
                    && outcome.set.iter().any(|(k, v)| {
                        *k != "secret" && v.as_str().is_some_and(|v| !crate::identity::is_sealed(v))
                    })
                {
                    meta_set(&tx, crate::identity::SEALED_ALL, "0")?;
                }
            }
            let deleted = outcome.delete.clone().or(if outcome.undelete {
                None
            } else {
                state.deleted.clone()
            });
            let fields = versions::stored_from(&outcome.versions);
            let old_share = stored.as_ref().map(|(f, d)| {
                Sums::share_of_map(def.name, &c.entity_id, &state.versions, f, d.as_deref())
            });
            let new_share = Sums::share_of_outcome(
                def.name,
                &c.entity_id,
                &outcome.versions,
                &fields,
                deleted.as_deref(),
            );
            crate::sums::put_versions(
                &tx,
                &mut sums,
                def.name,
                &c.entity_id,
                &fields,
                deleted.as_deref(),
                old_share.as_ref(),
                &new_share,
            )?;
            // Conflicts are decided by the server, in its one order, and arrive as events
            // (see `apply_conflict_event`), so that every replica holds the same ones.
            tx.prepare_cached(
                "INSERT INTO applied_changes(change_id, server_seq) VALUES (?1, ?2)",
            )?
            .execute(params![c.change_id, c.seq])?;
            report.applied += 1;
        }
        fts.write(&tx)?;
        sums.write(&tx)?;
        meta_set(&tx, "hlc", &clock.to_string())?;
        if let Some(c) = cursor {
            meta_set(&tx, "sync.cursor", &c.to_string())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks own changes, by id, as acknowledged (an offline bundle's reply).
    pub fn mark_acked_ids(&mut self, ids: &[String], now: DateTime<Utc>) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut n = 0;
        for id in ids {
            n += tx
                .prepare_cached(
                    "UPDATE changes SET acked_at = ?2 WHERE change_id = ?1 AND acked_at IS NULL AND rejected_at IS NULL",
                )?
                .execute(params![id, ts(now)])?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Sets aside an own change, by id, that the server refused for good.
    pub fn mark_rejected_id(&mut self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "UPDATE changes SET rejected_at = ?2, rejected_reason = ?3 WHERE change_id = ?1 AND acked_at IS NULL",
            params![id, ts(now), reason],
        )?;
        Ok(())
    }

    /// Every record's versions, (entity, id, versions as stored, deleted) in (entity, id)
    /// order: what the checksum counts, for comparing record by record. The versions text is
    /// in either form of [`binhyen_domain::versions`]; `versions::parse` reads both.
    pub fn version_rows(&self) -> Result<Vec<VersionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT entity, entity_id, fields, deleted FROM versions ORDER BY entity, entity_id",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Whether own changes to a record are still waiting to be sent.
    pub fn has_pending(&self, entity_name: &str, id: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM changes WHERE entity = ?1 AND entity_id = ?2
                                                  AND acked_at IS NULL AND rejected_at IS NULL)",
            params![entity_name, id],
            |r| r.get(0),
        )?)
    }

    /// Sends a record's own changes again (the server skips those it holds): the repair for
    /// a record the server lacks or holds older than this station.
    pub fn requeue(&mut self, entity_name: &str, id: &str) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE changes SET acked_at = NULL
             WHERE entity = ?1 AND entity_id = ?2 AND acked_at IS NOT NULL AND rejected_at IS NULL",
            params![entity_name, id],
        )?)
    }

    /// Takes the server's state of a record (values, versions, tombstone) as it is: the
    /// repair for a record this station holds differently and has nothing newer for.
    pub fn adopt(&mut self, record: &ServerRecord) -> Result<()> {
        let def = entity(&record.entity)
            .ok_or_else(|| refuse(format!("Loại bản ghi \"{}\" không có.", record.entity)))?;
        let data: BTreeMap<&str, &Value> = record
            .data
            .iter()
            .filter(|(k, _)| def.fields.contains(&k.as_str()) && k.as_str() != def.key)
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (state, stored) = load_state(&tx, def, &record.entity_id)?;
        if record.deleted.is_some() {
            delete_record(&tx, None, def, &record.entity_id)?;
        } else if !data.is_empty() {
            write_values(&tx, None, def, &record.entity_id, state.exists, &data)?;
        }
        let mut sums = crate::sums::SumsDelta::default();
        let fields = versions::stored(&record.versions);
        let old_share = stored
            .as_ref()
            .map(|(f, d)| Sums::of_record(def.name, &record.entity_id, f, d.as_deref()));
        let new_share = Sums::of_record(
            def.name,
            &record.entity_id,
            &fields,
            record.deleted.as_deref(),
        );
        crate::sums::put_versions(
            &tx,
            &mut sums,
            def.name,
            &record.entity_id,
            &fields,
            record.deleted.as_deref(),
            old_share.as_ref(),
            &new_share,
        )?;
        sums.write(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Marks own changes up to `seq` as acknowledged by the server.
    pub fn mark_acked(&mut self, up_to_seq: i64, now: DateTime<Utc>) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE changes SET acked_at = ?2 WHERE seq <= ?1 AND acked_at IS NULL AND rejected_at IS NULL",
            params![up_to_seq, ts(now)],
        )?)
    }

    /// Sets one change aside: the server refused it for good (`reason`). It stays in the
    /// change log and its data stays in the tables; it is no longer sent.
    pub fn mark_rejected(&mut self, seq: i64, reason: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "UPDATE changes SET rejected_at = ?2, rejected_reason = ?3 WHERE seq = ?1 AND acked_at IS NULL",
            params![seq, ts(now), reason],
        )?;
        Ok(())
    }

    /// Sync bookkeeping, kept in the encrypted database (the station's secret included).
    pub fn sync_get(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, &format!("sync.{key}"))
    }

    pub fn sync_set(&self, key: &str, value: &str) -> Result<()> {
        meta_set(&self.conn, &format!("sync.{key}"), value)
    }

    /// The conflicts this station knows, as the signed-in officer may see them: the values
    /// of a conflict about reporter identity are hidden from roles that may not see identity.
    pub fn conflicts(&self, open_only: bool) -> Result<Vec<ConflictView>> {
        self.require(binhyen_domain::access::Permission::TipRead)?;
        let mut all = self.load_conflicts(open_only)?;
        let may_see = self
            .session()
            .role
            .allows(binhyen_domain::access::Permission::IdentityView);
        // An identity field's values are withheld: that there is a conflict shows, what the
        // two sides hold only through the reasoned, audited reveal.
        let placeholder = if may_see {
            "(danh tính người tố giác: bấm Xem và ghi lý do)"
        } else {
            "(ẩn danh tính)"
        };
        for c in all
            .iter_mut()
            .filter(|c| binhyen_domain::catalog::is_identity(&c.entity))
        {
            c.identity = true;
            c.withheld = true;
            for v in [&mut c.local_value, &mut c.remote_value] {
                if !v.is_null() {
                    *v = Value::String(placeholder.into());
                }
            }
        }
        let here = self.here()?;
        for c in &mut all {
            self.describe(c, &here)?;
        }
        Ok(all)
    }

    /// Fills in what a person reads of a conflict (see `readable.rs`), from the values it
    /// holds now (a withheld identity's placeholder stays one).
    /// This laptop's clock node and number, which say which side of a conflict was written here.
    fn here(&self) -> Result<(String, u32)> {
        Ok((
            meta_get(&self.conn, "node_id")?.unwrap_or_default(),
            self.info().device_no,
        ))
    }

    fn describe(&self, c: &mut ConflictView, (node, device): &(String, u32)) -> Result<()> {
        c.subject = readable::subject(&self.conn, &c.entity, &c.entity_id)?;
        // `local_at` and `remote_at` hold the two clock values until described.
        let side = |hlc: Option<&str>| {
            readable::side(&self.conn, &c.entity, &c.entity_id, hlc, node, *device)
        };
        let (local_at, local_by) = side(c.local_at.as_deref())?;
        let (remote_at, remote_by) = side(c.remote_at.as_deref())?;
        (c.local_at, c.local_by, c.remote_at, c.remote_by) =
            (local_at, local_by, remote_at, remote_by);
        c.field_label = readable::field_label(&c.field);
        if c.withheld {
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                _ => "(đã xóa hoặc để trống)".to_string(),
            };
            c.local_text = text(&c.local_value);
            c.remote_text = text(&c.remote_value);
        } else {
            c.local_text = readable::value_text(&self.conn, &c.entity, &c.field, &c.local_value)?;
            c.remote_text = readable::value_text(&self.conn, &c.entity, &c.field, &c.remote_value)?;
        }
        Ok(())
    }

    /// A conflict on a reporter's identity with its two values, for someone who may see
    /// identity and states why: the look is written to the audit trail with the reason, like
    /// [`Station::reveal_tip`].
    pub fn reveal_conflict(
        &mut self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ConflictView> {
        self.require(binhyen_domain::access::Permission::IdentityView)?;
        let reason = crate::tips::reveal_reason(reason)?;
        let mut c = self
            .load_conflicts(false)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| StoreError::not_found("xung đột", id))?;
        if !binhyen_domain::catalog::is_identity(&c.entity) {
            self.describe(&mut c, &self.here()?)?;
            return Ok(c);
        }
        c.identity = true;
        for v in [&mut c.local_value, &mut c.remote_value] {
            if let Value::String(s) = &*v {
                if crate::identity::is_sealed(s) {
                    *v = Value::String(match self.open_identity_value(s)? {
                        Some(p) => p,
                        None => "(danh tính niêm phong, máy này chưa có khóa)".into(),
                    });
                }
            }
        }
        self.audit(
            crate::audit::Action::IdentityView,
            Some(&c.entity_id),
            serde_json::json!({ "reason": reason, "conflict": c.id, "field": c.field }),
            now,
        )?;
        self.describe(&mut c, &self.here()?)?;
        Ok(c)
    }

    /// How many conflicts wait for a decision (a count reveals nothing: every role sees it).
    pub fn open_conflict_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM conflicts WHERE resolved_at IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    fn load_conflicts(&self, open_only: bool) -> Result<Vec<ConflictView>> {
        let sql = format!(
            "SELECT id, entity, entity_id, field, kind, local_value, remote_value, winner, detected_at, resolved_at,
                    local_hlc, remote_hlc
             FROM conflicts {} ORDER BY detected_at, id",
            if open_only { "WHERE resolved_at IS NULL" } else { "" }
        );
        let node = meta_get(&self.conn, "node_id")?.unwrap_or_default();
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            let local_hlc: Option<String> = r.get(10)?;
            let remote_hlc: Option<String> = r.get(11)?;
            let written_here = |i: usize| -> rusqlite::Result<bool> {
                let hlc: Option<String> = r.get(i)?;
                Ok(hlc
                    .as_deref()
                    .and_then(Hlc::parse)
                    .is_some_and(|h| !node.is_empty() && h.node == node))
            };
            let mine = if written_here(10)? {
                Some("local".to_string())
            } else if written_here(11)? {
                Some("remote".to_string())
            } else {
                None
            };
            let json = |i: usize| -> rusqlite::Result<Value> {
                let s: Option<String> = r.get(i)?;
                Ok(s.and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(Value::Null))
            };
            Ok(ConflictView {
                id: r.get(0)?,
                entity: r.get(1)?,
                entity_id: r.get(2)?,
                field: r.get(3)?,
                kind: r.get(4)?,
                local_value: json(5)?,
                remote_value: json(6)?,
                winner: r.get(7)?,
                detected_at: r.get(8)?,
                resolved_at: r.get(9)?,
                mine,
                identity: false,
                withheld: false,
                subject: None,
                field_label: String::new(),
                local_text: String::new(),
                remote_text: String::new(),
                local_at: local_hlc,
                local_by: String::new(),
                remote_at: remote_hlc,
                remote_by: String::new(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Resolves a conflict by writing the chosen value as a new edit of the field: it
    /// follows the version every replica holds, so it applies everywhere without conflict.
    pub fn resolve_conflict(&mut self, id: &str, take: Take, now: DateTime<Utc>) -> Result<()> {
        self.require(binhyen_domain::access::Permission::ConflictResolve)?;
        let conflict = self
            .load_conflicts(false)?
            .into_iter()
            .find(|c| c.id == id || c.id.starts_with(id))
            .ok_or_else(|| StoreError::not_found("xung đột", id))?;
        if conflict.resolved_at.is_some() {
            return Err(refuse("Xung đột này đã được giải quyết.".into()));
        }
        if binhyen_domain::catalog::is_identity(&conflict.entity) {
            self.require(binhyen_domain::access::Permission::IdentityView)?;
        }
        let def =
            entity(&conflict.entity).ok_or_else(|| refuse("Loại bản ghi không hợp lệ.".into()))?;
        let value = match take {
            Take::Local => conflict.local_value.clone(),
            Take::Server => conflict.remote_value.clone(),
            // A value typed for an identity field is sealed like any other identity.
            Take::Value(Value::String(v))
                if binhyen_domain::catalog::is_identity(&conflict.entity)
                    && conflict.field != "secret" =>
            {
                Value::String(self.identity_sealer(now)?.seal(&v)?)
            }
            Take::Value(v) => v,
        };
        let mut w = self.writer(now)?;
        if conflict.field != "*" && def.has_field(&conflict.field) {
            let sql = format!(
                "UPDATE {} SET {} = ?2 WHERE {} = ?1",
                def.table, conflict.field, def.key
            );
            w.conn()
                .execute(&sql, params![conflict.entity_id, to_sql(&value)])?;
            let mut data = Map::new();
            data.insert(conflict.field.clone(), value.clone());
            w.record(
                def.name,
                &conflict.entity_id,
                Op::Update,
                Value::Object(data),
            )?;
            reindex(w.conn(), None, def, &conflict.entity_id)?;
        }
        w.conn().execute(
            "UPDATE conflicts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1",
            params![conflict.id, ts(now), value.to_string()],
        )?;
        w.audit(
            crate::audit::Action::ConflictResolve,
            Some(&conflict.entity_id),
            serde_json::json!({ "conflict": conflict.id, "field": conflict.field }),
        )?;
        w.commit()
    }

    /// A digest of every synchronised record's versions: equal on two replicas exactly
    /// when they hold the same writes. `with_identity` counts reporter identity records.
    /// Records whose creation the server refused (set aside) are left out: the server never
    /// held them, and they are shown to the officer instead.
    pub fn checksum(&self, with_identity: bool) -> Result<(String, u64)> {
        // A record at a time: a province-level station holds the province's records.
        let mut digest = binhyen_domain::checksum::FullDigest::new(with_identity);
        let mut stmt = self.conn.prepare(CHECKSUM_SQL)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            digest.add(
                &r.get::<_, String>(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?.as_deref(),
            );
        }
        Ok(digest.finish())
    }

    /// The checksum's second version ([`binhyen_domain::checksum::Sums`]), read from the
    /// running sums: the same records as [`Station::checksum`] counts, without a scan.
    pub fn checksum_sums(&self, with_identity: bool) -> Result<(String, u64)> {
        let mut total = binhyen_domain::checksum::Sums::default();
        for (entity, s) in crate::sums::stored(&self.conn)? {
            if with_identity || !binhyen_domain::catalog::is_identity(&entity) {
                total.add(&s);
            }
        }
        let mut stmt = self.conn.prepare_cached(REFUSED_SQL)?;
        let refused = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        total.sub(&binhyen_domain::checksum::sums_of(refused, with_identity));
        Ok(total.checksum())
    }

    /// The daily full comparison's side on this laptop, in one scan of every record: the
    /// first version's digest of what the checksum counts (as [`Station::checksum`]), and
    /// the running sums set to what the records give where they differ (a record changed
    /// outside this program: a restored file, a hand edit).
    pub fn full_checksum(&mut self, with_identity: bool) -> Result<(String, u64)> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut digest = binhyen_domain::checksum::FullDigest::new(with_identity);
        let mut sums: std::collections::BTreeMap<String, binhyen_domain::checksum::Sums> =
            Default::default();
        {
            let mut stmt = tx.prepare(FULL_SCAN_SQL)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let entity: String = r.get(0)?;
                let (id, fields): (String, String) = (r.get(1)?, r.get(2)?);
                let deleted: Option<String> = r.get(3)?;
                let share = binhyen_domain::checksum::Sums::of_record(
                    &entity,
                    &id,
                    &fields,
                    deleted.as_deref(),
                );
                if !r.get::<_, bool>(4)? {
                    digest.add(&entity, &id, &fields, deleted.as_deref());
                }
                sums.entry(entity).or_default().add(&share);
            }
        }
        sums.retain(|_, s| !s.is_zero());
        crate::sums::put_right(&tx, &sums)?;
        tx.commit()?;
        Ok(digest.finish())
    }

    /// Sets the running sums to what a scan of every record gives, and says whether they
    /// differed: the daily full comparison's part on this laptop, which also puts right sums
    /// left wrong by a record changed outside this program (a restored file, a hand edit).
    pub fn refill_checksum_sums(&mut self) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let differed = crate::sums::put_right(&tx, &crate::sums::scan(&tx)?)?;
        tx.commit()?;
        Ok(differed)
    }
}

/// The records [`CHECKSUM_SQL`] leaves out: created here, their creation refused by the server.
const REFUSED_SQL: &str = "SELECT v.entity, v.entity_id, v.fields, v.deleted FROM versions v
     WHERE EXISTS (SELECT 1 FROM changes c WHERE c.entity = v.entity
                     AND c.entity_id = v.entity_id AND c.op = 'insert'
                     AND c.rejected_at IS NOT NULL)";

/// What the checksum counts: every record's versions, but those whose creation the server
/// refused (found through the `changes_refused_inserts` index, schema v11).
pub const CHECKSUM_SQL: &str = "SELECT v.entity, v.entity_id, v.fields, v.deleted FROM versions v
     WHERE NOT EXISTS (SELECT 1 FROM changes c WHERE c.entity = v.entity
                         AND c.entity_id = v.entity_id AND c.op = 'insert'
                         AND c.rejected_at IS NOT NULL)
     ORDER BY v.entity, v.entity_id";

/// Every record's versions in the checksum's order, each with whether [`CHECKSUM_SQL`] leaves
/// it out (its creation refused): the running sums count every record, the digest not those.
pub const FULL_SCAN_SQL: &str = "SELECT v.entity, v.entity_id, v.fields, v.deleted,
            EXISTS (SELECT 1 FROM changes c WHERE c.entity = v.entity
                      AND c.entity_id = v.entity_id AND c.op = 'insert'
                      AND c.rejected_at IS NOT NULL)
     FROM versions v ORDER BY v.entity, v.entity_id";

/// One sync attempt as the Sync screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SyncAttempt {
    pub at: DateTime<Utc>,
    pub ok: bool,
    #[ts(type = "number")]
    pub pushed: u64,
    #[ts(type = "number")]
    pub pulled: u64,
    #[ts(type = "number")]
    pub conflicts: u64,
    /// Why it failed, in Vietnamese.
    pub error: Option<String>,
}

/// How many attempts the history keeps.
const SYNC_HISTORY: usize = 30;

impl Station {
    /// The latest sync attempts, newest first.
    pub fn sync_history(&self) -> Result<Vec<SyncAttempt>> {
        Ok(match self.sync_get("history")? {
            Some(v) => serde_json::from_str(&v)?,
            None => Vec::new(),
        })
    }

    /// Adds an attempt to the history (the oldest beyond thirty are dropped).
    pub fn record_sync_attempt(&self, attempt: SyncAttempt) -> Result<()> {
        let mut history = self.sync_history().unwrap_or_default();
        history.insert(0, attempt);
        history.truncate(SYNC_HISTORY);
        self.sync_set("history", &serde_json::to_string(&history)?)
    }
}
