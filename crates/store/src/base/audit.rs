//! The audit trail: who did what on this laptop (unlocked the station, recorded or changed a
//! tip, looked at a reporter's identity, imported or exported, changed the passphrase).
//!
//! Append-only (triggers refuse updates and deletes) and hash-chained: every entry carries
//! the SHA-256 of the one before it, and the head (last sequence number and hash) is kept in
//! `meta`, written in the same transaction. [`Station::verify_audit`] detects an edited,
//! removed, inserted or reordered entry, and a cut tail.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;
use ts_rs::TS;

use crate::changes::{meta_get, meta_set};
use crate::sql::ts;
use crate::{Result, Station};

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Unlock,
    TipCreate,
    TipUpdate,
    TipImport,
    IdentityView,
    RosterImport,
    RosterExport,
    BundleExport,
    BundleImport,
    Update,
    PassphraseChange,
    ConflictResolve,
    ReportExport,
    SettingsChange,
    RosterChange,
    DocumentPrint,
    SignIn,
    PasswordChange,
    AccountChange,
    RecoveryUse,
    TipAssign,
    BackupCreate,
    BackupRestore,
    AttachmentAdd,
    AttachmentExport,
    AttachmentRemove,
    IdentityGrant,
    RegisterExport,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Unlock => "unlock",
            Action::TipCreate => "tip.create",
            Action::TipUpdate => "tip.update",
            Action::TipImport => "tip.import",
            Action::IdentityView => "identity.view",
            Action::RosterImport => "roster.import",
            Action::RosterExport => "roster.export",
            Action::BundleExport => "bundle.export",
            Action::BundleImport => "bundle.import",
            Action::Update => "update.apply",
            Action::PassphraseChange => "passphrase.change",
            Action::ConflictResolve => "conflict.resolve",
            Action::ReportExport => "report.export",
            Action::RegisterExport => "register.export",
            Action::SettingsChange => "settings.change",
            Action::RosterChange => "roster.change",
            Action::DocumentPrint => "document.print",
            Action::SignIn => "sign_in",
            Action::TipAssign => "tip.assign",
            Action::BackupCreate => "backup.create",
            Action::BackupRestore => "backup.restore",
            Action::PasswordChange => "password.change",
            Action::AccountChange => "account.change",
            Action::RecoveryUse => "recovery.use",
            Action::AttachmentAdd => "attachment.add",
            Action::AttachmentExport => "attachment.export",
            Action::AttachmentRemove => "attachment.remove",
            Action::IdentityGrant => "identity.grant",
        }
    }
}

/// One entry as `binhyen audit list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct AuditEntry {
    #[ts(type = "number")]
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub hash: String,
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditCheck {
    pub ok: bool,
    pub entries: u64,
    /// The first entry that does not hold, if any.
    pub first_bad_seq: Option<i64>,
    /// What is wrong, in Vietnamese.
    pub problem: Option<String>,
}

use binhyen_domain::audit::{entry_hash, genesis, AuditRecord};

/// The last entry's number and hash, as recorded in `meta` (`"SEQ:HASH"`).
fn head(conn: &Connection) -> Result<Option<(i64, String)>> {
    Ok(meta_get(conn, "audit.head")?.and_then(|h| {
        h.split_once(':')
            .and_then(|(s, h)| Some((s.parse().ok()?, h.to_string())))
    }))
}

/// Appends an entry on `conn` (inside the caller's transaction when there is one, so the
/// entry and what it records commit together).
pub(crate) fn append(
    conn: &Connection,
    actor: &str,
    action: Action,
    target: Option<&str>,
    detail: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let (last_seq, prev) = match head(conn)? {
        Some(h) => h,
        None => (
            0,
            genesis(&meta_get(conn, "station_id")?.unwrap_or_default()),
        ),
    };
    let seq = last_seq + 1;
    let at = ts(now);
    let detail = detail.to_string();
    let hash = entry_hash(&prev, seq, &at, actor, action.as_str(), target, &detail);
    conn.prepare_cached(
        "INSERT INTO audit_log(seq, at, actor, action, target, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq,
        at,
        actor,
        action.as_str(),
        target,
        detail,
        prev,
        hash
    ])?;
    meta_set(conn, "audit.head", &format!("{seq}:{hash}"))
}

impl Station {
    /// Records an action in the audit trail, in its own transaction.
    pub fn audit(
        &mut self,
        action: Action,
        target: Option<&str>,
        detail: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // Immediate: a deferred transaction that reads then writes cannot wait for another
        // writer (SQLite answers "locked" at once); this one waits its turn.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        append(&tx, &self.actor, action, target, &detail, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The audit trail, newest first.
    pub fn audit_entries(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.require(binhyen_domain::access::Permission::AuditView)?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, actor, action, target, detail, hash FROM audit_log ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: r.get(5)?,
                    hash: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Walks the chain from the start: every entry must follow the one before it (numbers
    /// without gaps, the previous hash, its own hash), and the last must be the recorded head.
    pub fn verify_audit(&self) -> Result<AuditCheck> {
        self.require(binhyen_domain::access::Permission::AuditView)?;
        let station_id = meta_get(&self.conn, "station_id")?.unwrap_or_default();
        let records = self.audit_records_after(0, u32::MAX)?;
        let n = records.len() as u64;
        let bad = |seq: i64, problem: String| AuditCheck {
            ok: false,
            entries: n,
            first_bad_seq: Some(seq),
            problem: Some(problem),
        };
        let start = genesis(&station_id);
        if let Some(first) = records.first() {
            if first.seq != 1 {
                return Ok(bad(
                    first.seq,
                    format!("mục số 1 bị xóa (nhật ký bắt đầu ở mục {})", first.seq),
                ));
            }
        }
        if let Err((seq, problem)) =
            binhyen_domain::audit::check_chain(Some((0, start.as_str())), &records)
        {
            return Ok(bad(seq, problem));
        }
        let last = records.last().map(|r| (r.seq, r.hash.clone()));
        let recorded = head(&self.conn)?;
        if recorded != last {
            let head_seq = recorded.map_or(0, |(s, _)| s);
            let have = records.last().map_or(0, |r| r.seq);
            return Ok(bad(
                have + 1,
                format!(
                    "nhật ký dừng ở mục {have} nhưng đã ghi tới mục {head_seq} (phần cuối bị xóa)"
                ),
            ));
        }
        Ok(AuditCheck {
            ok: true,
            entries: n,
            first_bad_seq: None,
            problem: None,
        })
    }

    /// Entries after `seq`, in order (what the server has not received yet).
    pub fn audit_records_after(&self, seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![seq, limit], |r| {
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

    /// The last entry's number and hash, as recorded.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        head(&self.conn)
    }
}
