//! The change log (outbox). Every create, update and delete of a synchronised record goes
//! through a [`Writer`], which writes the change record in the same SQLite transaction as
//! the data, stamped with the station's hybrid logical clock. Nothing written bypasses it,
//! so nothing written is invisible to sync.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use binhyen_domain::hlc::Hlc;

use crate::sql::ts;
use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One change record, as sync will send it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub seq: i64,
    pub change_id: Uuid,
    pub hlc: String,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
    pub data: serde_json::Value,
    pub created_at: String,
    /// For updates and deletes: the versions (field → clock value) the edit started from.
    pub base: Option<serde_json::Value>,
    /// For deletes: the unit the record belonged to (it cannot be looked up once gone).
    pub unit_code: Option<String>,
}

pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// A write transaction that records its changes. Dropped without [`Writer::commit`], it
/// rolls back: data and change records go together or not at all.
pub struct Writer<'c> {
    tx: Transaction<'c>,
    hlc: Hlc,
    now: DateTime<Utc>,
    actor: String,
    /// The checksum sums' changes, added at commit.
    sums: crate::sums::SumsDelta,
}

impl<'c> Writer<'c> {
    pub(crate) fn begin(
        conn: &'c mut Connection,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Writer<'c>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let node = meta_get(&tx, "node_id")?.unwrap_or_else(|| "00000000".into());
        let hlc = meta_get(&tx, "hlc")?
            .and_then(|s| Hlc::parse(&s))
            .unwrap_or_else(|| Hlc::zero(&node));
        Ok(Writer {
            tx,
            hlc,
            now,
            actor: actor.to_string(),
            sums: Default::default(),
        })
    }

    pub fn conn(&self) -> &Transaction<'c> {
        &self.tx
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Adds an audit entry to this transaction: it commits with the write it records.
    pub fn audit(
        &self,
        action: crate::audit::Action,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<()> {
        crate::audit::append(&self.tx, &self.actor, action, target, &detail, self.now)
    }

    /// Records one change of one record; `data` holds the fields written (all of them for
    /// an insert, the changed ones for an update, none for a delete). The fields' versions
    /// move to the new clock value, and the versions they had become the change's `base`.
    /// A delete is recorded before the row goes: its unit is read from the row then.
    pub fn record(
        &mut self,
        entity: &str,
        entity_id: &str,
        op: Op,
        data: serde_json::Value,
    ) -> Result<()> {
        self.hlc = self.hlc.tick(self.now.timestamp_millis());
        let hlc = self.hlc.to_string();
        let old = crate::sums::stored_row(&self.tx, entity, entity_id)?;
        let mut versions = old
            .as_ref()
            .map(|(fields, _)| binhyen_domain::versions::parse(fields))
            .unwrap_or_default();
        let fields: Vec<String> = data
            .as_object()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        let base: Option<serde_json::Map<String, serde_json::Value>> = match op {
            Op::Insert => None,
            Op::Update => Some(
                fields
                    .iter()
                    .filter_map(|k| versions.get(k).map(|v| (k.clone(), v.clone())))
                    .collect(),
            ),
            Op::Delete => Some(versions.clone()),
        };
        for k in &fields {
            versions.insert(k.clone(), serde_json::Value::String(hlc.clone()));
        }
        let deleted = (op == Op::Delete).then(|| hlc.clone());
        let unit = match op {
            Op::Delete => record_unit(&self.tx, entity, entity_id)?,
            _ => None,
        };
        let stored = binhyen_domain::versions::stored(&versions);
        let old_share = old.as_ref().map(|(f, d)| {
            binhyen_domain::checksum::Sums::of_record(entity, entity_id, f, d.as_deref())
        });
        let new_share = binhyen_domain::checksum::Sums::share_of_map(
            entity,
            entity_id,
            &versions,
            &stored,
            deleted.as_deref(),
        );
        crate::sums::put_versions(
            &self.tx,
            &mut self.sums,
            entity,
            entity_id,
            &stored,
            deleted.as_deref(),
            old_share.as_ref(),
            &new_share,
        )?;
        self.tx
            .prepare_cached(
                "INSERT INTO changes(change_id, hlc, entity, entity_id, op, data, created_at, base, unit_code)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                Uuid::now_v7().to_string(),
                hlc,
                entity,
                entity_id,
                op.as_str(),
                data.to_string(),
                ts(self.now),
                base.map(|b| serde_json::Value::Object(b).to_string()),
                unit
            ])?;
        Ok(())
    }

    pub fn commit(mut self) -> Result<()> {
        meta_set(&self.tx, "hlc", &self.hlc.to_string())?;
        self.sums.write(&self.tx)?;
        self.tx.commit()?;
        Ok(())
    }
}

/// The outbox as the sync engine and the shells read it: they ask the station, never its
/// connection.
impl crate::Station {
    /// Changes not yet acknowledged by the server, oldest first.
    pub fn pending_changes(&self, limit: u32) -> Result<Vec<Change>> {
        pending(&self.conn, limit)
    }

    /// Changes not yet acknowledged, after the one numbered `after_seq`.
    pub fn pending_changes_after(&self, after_seq: i64, limit: u32) -> Result<Vec<Change>> {
        pending_after(&self.conn, after_seq, limit)
    }

    /// How many changes wait for the server.
    pub fn pending_count(&self) -> Result<u64> {
        pending_count(&self.conn)
    }

    /// How many changes wait for the server after the one numbered `seq`.
    pub fn pending_count_after(&self, seq: i64) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM changes
             WHERE seq > ?1 AND acked_at IS NULL AND rejected_at IS NULL",
            [seq],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// How many changes the server refused for good.
    pub fn rejected_count(&self) -> Result<u64> {
        rejected_count(&self.conn)
    }

    /// The versions (field → clock value) of one record; empty for a record never written.
    pub fn field_versions(
        &self,
        entity: &str,
        entity_id: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        load_versions(&self.conn, entity, entity_id)
    }

    /// The unit a record belongs to (see [`record_unit`]).
    pub fn record_unit(&self, entity: &str, entity_id: &str) -> Result<Option<String>> {
        record_unit(&self.conn, entity, entity_id)
    }
}

/// The versions (field → clock value) of one record; empty for a record never written.
pub fn load_versions(
    conn: &Connection,
    entity: &str,
    entity_id: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT fields FROM versions WHERE entity = ?1 AND entity_id = ?2")?
        .query_row(params![entity, entity_id], |r| r.get(0))
        .optional()?;
    Ok(versions_from(text))
}

/// A record's versions from the text of `versions.fields` (empty for none), in either form
/// (see [`binhyen_domain::versions`]).
pub(crate) fn versions_from(text: Option<String>) -> serde_json::Map<String, serde_json::Value> {
    text.map(|t| binhyen_domain::versions::parse(&t))
        .unwrap_or_default()
}

/// Changes not yet acknowledged by the server, oldest first.
pub fn pending(conn: &Connection, limit: u32) -> Result<Vec<Change>> {
    pending_after(conn, 0, limit)
}

/// Changes not yet acknowledged, after the one numbered `after_seq`: the batch that follows
/// one still on its way to the server.
pub fn pending_after(conn: &Connection, after_seq: i64, limit: u32) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, change_id, hlc, entity, entity_id, op, data, created_at, base, unit_code
         FROM changes WHERE seq > ?1 AND acked_at IS NULL AND rejected_at IS NULL
         ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after_seq, limit], |r| {
        let data: String = r.get(6)?;
        Ok(Change {
            seq: r.get(0)?,
            change_id: crate::sql::get_uuid(r, 1)?,
            hlc: r.get(2)?,
            entity: r.get(3)?,
            entity_id: r.get(4)?,
            op: r.get(5)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            created_at: r.get(7)?,
            base: r
                .get::<_, Option<String>>(8)?
                .and_then(|b| serde_json::from_str(&b).ok()),
            unit_code: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn pending_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM changes WHERE acked_at IS NULL AND rejected_at IS NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// Changes the server refused for good: kept, with the server's reason, for a person.
pub fn rejected_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM changes WHERE rejected_at IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// The unit a record belongs to (the scope its changes travel in), found through the
/// record itself or its parent.
pub fn record_unit(conn: &Connection, entity_name: &str, id: &str) -> Result<Option<String>> {
    let sql = match entity_name {
        "tip" => "SELECT unit_code FROM tips WHERE id = ?1",
        "tip_reporter" => "SELECT unit_code FROM tips WHERE id = ?1",
        "tip_action" => "SELECT t.unit_code FROM tip_actions a JOIN tips t ON t.id = a.tip_id WHERE a.id = ?1",
        "attachment" => "SELECT t.unit_code FROM attachments a JOIN tips t ON t.id = a.tip_id WHERE a.id = ?1",
        "tip_link" => "SELECT t.unit_code FROM tip_links l JOIN tips t ON t.id = l.tip_id WHERE l.id = ?1",
        "hamlet" => "SELECT unit_code FROM hamlets WHERE id = ?1",
        "roster_person" => "SELECT unit_code FROM roster_people WHERE id = ?1",
        "online_group" => "SELECT h.unit_code FROM online_groups g JOIN hamlets h ON h.id = g.hamlet_id WHERE g.id = ?1",
        "group_member_count" => {
            "SELECT h.unit_code FROM group_member_counts c JOIN online_groups g ON g.id = c.group_id
             JOIN hamlets h ON h.id = g.hamlet_id WHERE c.id = ?1"
        }
        "channel" => "SELECT unit_code FROM channels WHERE id = ?1",
        "channel_metric" => "SELECT c.unit_code FROM channel_metrics m JOIN channels c ON c.id = m.channel_id WHERE m.id = ?1",
        "officer" => "SELECT unit_code FROM officers WHERE id = ?1",
        "identity_key" => "SELECT unit_code FROM identity_keys WHERE id = ?1",
        "officer_key" => "SELECT unit_code FROM officer_keys WHERE id = ?1",
        "identity_grant" => "SELECT unit_code FROM identity_grants WHERE id = ?1",
        _ => return Ok(None),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |r| r.get(0))
        .optional()?)
}
