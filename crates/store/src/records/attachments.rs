//! Attachments of a tip (photos, scans). The record (`attachments`, synchronised like any
//! other) names the content by its SHA-256; the content itself lives in
//! `attachment_content`, inside the encrypted database, so it is encrypted, backed up and
//! written in the same transaction as its record. Content travels to the other laptops of
//! the commune through the server's attachment store (see `binhyen_sync`'s `files.rs`), never to
//! a province-level station: a scanned denunciation carries its author's name.

use binhyen_domain::access::Permission;
use binhyen_domain::attachment::{
    content_hash, validate_all, Attachment, NewAttachment, ValidAttachment,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use uuid::Uuid;

use crate::changes::{Op, Writer};
use crate::sql::{get_ts, get_uuid, ts};
use crate::{Result, Station, StoreError};

const COLUMNS: &str = "a.id, a.tip_id, a.file_name, a.media_type, a.size_bytes, a.sha256,
    a.created_at, c.sha256 IS NOT NULL";

fn row_to_attachment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attachment> {
    Ok(Attachment {
        id: get_uuid(r, 0)?,
        tip_id: get_uuid(r, 1)?,
        file_name: r.get(2)?,
        media_type: r.get(3)?,
        size_bytes: r.get::<_, i64>(4)?.max(0) as u64,
        sha256: r.get(5)?,
        created_at: get_ts(r, 6)?,
        available: r.get(7)?,
    })
}

/// A tip's attachments, oldest first.
pub(crate) fn tip_attachments(conn: &Connection, tip_id: &str) -> Result<Vec<Attachment>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM attachments a LEFT JOIN attachment_content c ON c.sha256 = a.sha256
         WHERE a.tip_id = ?1 ORDER BY a.created_at, a.id"
    ))?;
    let rows = stmt.query_map([tip_id], row_to_attachment)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores files as attachments of a tip, in the writer's transaction: the records (with
/// their change records) and the content together.
pub(crate) fn insert_attachments(
    w: &mut Writer<'_>,
    tip_id: &str,
    files: Vec<ValidAttachment>,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let held: i64 = w.conn().query_row(
        "SELECT count(*) FROM attachments WHERE tip_id = ?1",
        [tip_id],
        |r| r.get(0),
    )?;
    if held as usize + files.len() > binhyen_domain::attachment::MAX_ATTACHMENTS_PER_TIP {
        return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
            "attachments",
            "too_many_files",
            format!(
                "Nguồn tin đã có {held} tệp; mỗi nguồn tin đính kèm tối đa {} tệp.",
                binhyen_domain::attachment::MAX_ATTACHMENTS_PER_TIP
            ),
        )));
    }
    let mut ids = Vec::with_capacity(files.len());
    for f in files {
        let id = Uuid::now_v7().to_string();
        let size = f.data.len() as i64;
        w.conn()
            .prepare_cached(
                "INSERT INTO attachment_content(sha256, data) VALUES (?1, ?2) ON CONFLICT(sha256) DO NOTHING",
            )?
            .execute(params![f.sha256, f.data])?;
        w.conn()
            .prepare_cached(
                "INSERT INTO attachments(id, tip_id, file_name, media_type, size_bytes, sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![id, tip_id, f.file_name, f.media_type, size, f.sha256, ts(now)])?;
        w.record(
            "attachment",
            &id,
            Op::Insert,
            json!({
                "tip_id": tip_id, "file_name": f.file_name, "media_type": f.media_type,
                "size_bytes": size, "sha256": f.sha256, "created_at": ts(now),
            }),
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// Drops content that no attachment names any more (after a removal here or elsewhere).
pub(crate) fn prune_content(conn: &Connection) -> Result<usize> {
    conn.execute(
        "DELETE FROM attachment_sealed WHERE sha256 NOT IN (SELECT sha256 FROM attachments)",
        [],
    )?;
    Ok(conn.execute(
        "DELETE FROM attachment_content WHERE sha256 NOT IN (SELECT sha256 FROM attachments)",
        [],
    )?)
}

impl Station {
    /// Photos and scans are kept in their commune: a province-level station sees that a
    /// commune's tip has files but neither holds, adds nor removes them.
    fn own_unit_tip(&self, tip_id: &str) -> Result<()> {
        let unit: String =
            self.conn
                .query_row("SELECT unit_code FROM tips WHERE id = ?1", [tip_id], |r| {
                    r.get(0)
                })?;
        if unit != self.info().unit_code {
            return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                "attachments",
                "other_unit",
                format!("Tệp đính kèm của nguồn tin do Công an xã (mã {unit}) giữ; trạm cấp tỉnh không thêm hay xóa được."),
            )));
        }
        Ok(())
    }

    /// Attaches files to a tip, all or none: every file is checked first (type from its
    /// content, size), and one refused file refuses them all.
    pub fn attach_files(
        &mut self,
        tip_key: &str,
        files: &[NewAttachment],
        now: DateTime<Utc>,
    ) -> Result<Vec<Attachment>> {
        self.require(Permission::TipEdit)?;
        let tip = self.load_tip(tip_key, false)?;
        self.own_unit_tip(&tip.id.to_string())?;
        let valid = validate_all(files)?;
        if valid.is_empty() {
            return Ok(tip.attachments);
        }
        let tip_id = tip.id.to_string();
        // The key the files will travel sealed to (a chief makes the commune's first).
        self.file_sealer(now)?;
        let mut w = self.writer(now)?;
        let ids = insert_attachments(&mut w, &tip_id, valid, now)?;
        w.audit(
            crate::audit::Action::AttachmentAdd,
            Some(&tip_id),
            json!({ "attachments": ids }),
        )?;
        w.commit()?;
        tracing::info!(tip = %tip_id, count = ids.len(), "files attached");
        tip_attachments(&self.conn, &tip_id)
    }

    /// One attachment with its content. An attachment whose content has not reached this
    /// laptop yet is `attachment_missing`; one that came sealed to a key this session does not
    /// hold, `attachment_sealed`.
    pub fn attachment_content(&self, id: &str) -> Result<(Attachment, Vec<u8>)> {
        self.require(Permission::TipRead)?;
        let found = self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS}, c.data FROM attachments a
                     LEFT JOIN attachment_content c ON c.sha256 = a.sha256 WHERE a.id = ?1"
                ),
                [id],
                |r| Ok((row_to_attachment(r)?, r.get::<_, Option<Vec<u8>>>(8)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found("tệp đính kèm", id))?;
        match found {
            (a, Some(data)) => Ok((a, data)),
            (a, None) => {
                let sealed: bool = self.conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM attachment_sealed WHERE sha256 = ?1)",
                    [&a.sha256],
                    |r| r.get(0),
                )?;
                Err(match sealed {
                    true => StoreError::AttachmentSealed(a.file_name),
                    false => StoreError::AttachmentMissing(a.file_name),
                })
            }
        }
    }

    /// Writes a copy of an attachment out of the station (for the investigating agency, a
    /// printer): an export, so only for those who may export, and logged.
    pub fn export_attachment(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Attachment, Vec<u8>)> {
        self.require(Permission::Export)?;
        let (a, data) = self.attachment_content(id)?;
        let w = self.writer(now)?;
        w.audit(
            crate::audit::Action::AttachmentExport,
            Some(&a.tip_id.to_string()),
            json!({ "attachment": a.id, "bytes": a.size_bytes }),
        )?;
        w.commit()?;
        Ok((a, data))
    }

    /// Removes an attachment (a tombstone for the other laptops); its content goes when no
    /// other attachment names it.
    pub fn remove_attachment(&mut self, id: &str, now: DateTime<Utc>) -> Result<Vec<Attachment>> {
        self.require(Permission::TipEdit)?;
        let tip_id: String = self
            .conn
            .query_row("SELECT tip_id FROM attachments WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::not_found("tệp đính kèm", id))?;
        self.own_unit_tip(&tip_id)?;
        let mut w = self.writer(now)?;
        w.record("attachment", id, Op::Delete, json!({}))?;
        w.conn()
            .execute("DELETE FROM attachments WHERE id = ?1", [id])?;
        prune_content(w.conn())?;
        w.audit(
            crate::audit::Action::AttachmentRemove,
            Some(&tip_id),
            json!({ "attachment": id }),
        )?;
        w.commit()?;
        tip_attachments(&self.conn, &tip_id)
    }

    /// Content this laptop holds that the server has not confirmed, for attachments of the
    /// station's own unit: what the next sync uploads (sha256 values).
    pub fn attachments_to_upload(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT c.sha256 FROM attachment_content c
             JOIN attachments a ON a.sha256 = c.sha256 JOIN tips t ON t.id = a.tip_id
             WHERE c.uploaded = 0 AND t.unit_code = ?1 ORDER BY c.sha256",
        )?;
        let rows = stmt.query_map([&self.info().unit_code], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The content named by `sha256` sealed for the server (see the domain's
    /// `attachment::sealed`): the server and a province-level station never read it.
    /// `Ok(None)` where the content is not held, or the unit has no identity key yet and
    /// this session may not make it (the file waits for the chief's sync).
    pub fn content_for_upload(
        &mut self,
        sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>> {
        let Some(plain) = self
            .conn
            .query_row(
                "SELECT data FROM attachment_content WHERE sha256 = ?1",
                [sha256],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
        else {
            return Ok(None);
        };
        let plain = zeroize::Zeroizing::new(plain);
        match self.file_sealer(now)? {
            Some(sealer) => Ok(Some(sealer.seal_file(&plain)?)),
            None => Ok(None),
        }
    }

    /// Makes sure the files waiting for upload can be sealed: where the commune has no
    /// identity key yet and this is a chief's session, the key is made now (before the
    /// changes are sent, so that its record travels with them). Returns whether they can.
    pub fn key_for_uploads(&mut self, now: DateTime<Utc>) -> Result<bool> {
        if self.attachments_to_upload()?.is_empty() {
            return Ok(true);
        }
        Ok(self.file_sealer(now)?.is_some())
    }

    /// Notes that the server holds this content.
    pub fn mark_content_uploaded(&self, sha256: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE attachment_content SET uploaded = 1 WHERE sha256 = ?1",
            [sha256],
        )?;
        Ok(())
    }

    /// Attachments of the station's own unit whose content this laptop lacks: what the
    /// next sync downloads (sha256 values). A province-level station gets none: content
    /// stays in its commune.
    pub fn attachments_missing(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT a.sha256 FROM attachments a JOIN tips t ON t.id = a.tip_id
             WHERE t.unit_code = ?1 AND a.sha256 NOT IN (SELECT sha256 FROM attachment_content)
               AND a.sha256 NOT IN (SELECT sha256 FROM attachment_sealed)
             ORDER BY a.sha256",
        )?;
        let rows = stmt.query_map([&self.info().unit_code], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Keeps content that arrived from the server. Sealed content (see the domain's
    /// `attachment::sealed`) is opened with the commune's identity key; where this session
    /// holds none, it waits as it came ([`Received::Waiting`]) until an officer who holds
    /// the key signs in or syncs ([`Station::open_waiting_files`]). Opened content must be
    /// what its name says: anything else is refused and nothing is stored. It came from the
    /// server, so it is not uploaded again.
    pub fn store_downloaded_content(&mut self, sha256: &str, data: &[u8]) -> Result<Received> {
        if binhyen_domain::attachment::sealed::parse(data).is_some() {
            return match self.open_file(data)? {
                Some(plain) => {
                    self.keep_content(sha256, &zeroize::Zeroizing::new(plain))?;
                    Ok(Received::Opened)
                }
                None => {
                    self.conn.execute(
                        "INSERT INTO attachment_sealed(sha256, data) VALUES (?1, ?2)
                         ON CONFLICT(sha256) DO UPDATE SET data = excluded.data",
                        params![sha256, data],
                    )?;
                    Ok(Received::Waiting)
                }
            };
        }
        // Content uploaded in clear before attachments were sealed.
        self.keep_content(sha256, data)?;
        Ok(Received::Opened)
    }

    fn keep_content(&self, sha256: &str, plain: &[u8]) -> Result<()> {
        if content_hash(plain) != sha256 {
            return Err(StoreError::Corrupt(format!(
                "tệp đính kèm {sha256} nhận từ máy chủ không đúng nội dung"
            )));
        }
        self.conn.execute(
            "INSERT INTO attachment_content(sha256, data, uploaded) VALUES (?1, ?2, 1)
             ON CONFLICT(sha256) DO UPDATE SET uploaded = 1",
            params![sha256, plain],
        )?;
        self.conn
            .execute("DELETE FROM attachment_sealed WHERE sha256 = ?1", [sha256])?;
        Ok(())
    }

    /// Opens the files that arrived sealed while no key was at hand, with the keys this
    /// session holds. Returns how many were opened; those it cannot open keep waiting. A
    /// file that opens to something other than its name is dropped (the next sync fetches
    /// it again) and logged.
    pub fn open_waiting_files(&mut self) -> Result<usize> {
        let waiting: Vec<(String, Vec<u8>)> = self
            .conn
            .prepare("SELECT sha256, data FROM attachment_sealed ORDER BY sha256")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut opened = 0;
        for (sha, data) in waiting {
            let kept = match self.open_file(&data) {
                Ok(None) => continue,
                Ok(Some(plain)) => self.keep_content(&sha, &zeroize::Zeroizing::new(plain)),
                Err(e) => Err(e),
            };
            match kept {
                Ok(()) => opened += 1,
                Err(StoreError::Corrupt(why)) => {
                    tracing::warn!(%sha, %why, "a sealed file did not open to its content");
                    self.conn
                        .execute("DELETE FROM attachment_sealed WHERE sha256 = ?1", [&sha])?;
                }
                Err(e) => return Err(e),
            }
        }
        if opened > 0 {
            tracing::info!(opened, "sealed files opened");
        }
        Ok(opened)
    }

    /// How many files reached this laptop sealed and wait for an officer who holds the
    /// commune's identity key.
    pub fn files_waiting_for_key(&self) -> Result<usize> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM attachment_sealed", [], |r| {
                r.get::<_, i64>(0)
            })? as usize)
    }

    /// Drops content no attachment names any more (removed on another laptop).
    pub fn prune_attachment_content(&self) -> Result<usize> {
        prune_content(&self.conn)
    }
}

/// What became of a file received from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Opened, checked and kept.
    Opened,
    /// Sealed to a key this session does not hold: kept as it came, to open later.
    Waiting,
}
