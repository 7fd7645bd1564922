//! Backups of a station: one file (a tar archive) that holds a consistent copy of the
//! database, still encrypted under the station's key, the key file that wraps that key for
//! each officer's password (and the recovery code), and a manifest. Nothing in it is
//! readable without an officer's password of the day it was made.
//!
//! A backup is restored only into an empty directory (nothing is overwritten), after the
//! copy has been unlocked with an officer's credentials, its checksum compared with the
//! manifest and SQLite's integrity check passed. A restored station that was enrolled no
//! longer holds the server's credentials: the province's sync already went past the copy
//! (its audit trail and register numbers), so the station is enrolled again with a new
//! provisioning file, and sync brings back what was sent after the backup.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;

use binhyen_domain::access::Permission;

use crate::audit::Action;
use crate::changes::meta_get;
use crate::keys::KeyFile;
use crate::station::{DB_FILE, KEYS_FILE};
use crate::{Credentials, Result, Station, StoreError};

const MANIFEST: &str = "binhyen-backup.json";
const FORMAT: u32 = 1;

/// What a backup says about itself (readable without a password: no tip, no name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BackupManifest {
    pub format: u32,
    pub station_id: String,
    pub unit_code: String,
    pub unit_name: String,
    pub device_no: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[ts(type = "number")]
    pub schema_version: i64,
    /// SHA-256 of the encrypted database in the archive.
    pub db_sha256: String,
    #[ts(type = "number")]
    pub db_bytes: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::io(path, source)
}

fn bad(m: impl Into<String>) -> StoreError {
    StoreError::BadBackup(m.into())
}

/// The directory a file goes in ("." for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Station {
    /// Writes a backup of the station to `out` (replacing it atomically if it exists) and
    /// records it in the audit trail.
    pub fn backup(&mut self, out: &Path, now: DateTime<Utc>) -> Result<BackupManifest> {
        self.require(Permission::Backup)?;
        let staging = tempfile::Builder::new()
            .prefix(".binhyen-backup-")
            .tempdir_in(parent_of(out))
            .map_err(io(out))?;
        let copy = staging.path().join(DB_FILE);
        // A consistent copy through this connection (committed data, the WAL included),
        // written encrypted under the same key.
        let copy_s = copy
            .to_str()
            .ok_or_else(|| bad("đường dẫn tệp sao lưu không hợp lệ"))?;
        self.conn
            .execute("VACUUM INTO ?1", [copy_s])
            .map_err(StoreError::Sqlite)?;
        let db = std::fs::read(&copy).map_err(io(&copy))?;
        if db.starts_with(b"SQLite format 3\0") {
            // The copy must never be readable: refuse rather than write it.
            return Err(bad("bản sao cơ sở dữ liệu không được mã hóa"));
        }
        let keys =
            std::fs::read(self.dir().join(KEYS_FILE)).map_err(io(&self.dir().join(KEYS_FILE)))?;
        let manifest = BackupManifest {
            format: FORMAT,
            station_id: self.info().station_id.to_string(),
            unit_code: self.info().unit_code.clone(),
            unit_name: self.info().unit_name.clone(),
            device_no: self.info().device_no,
            created_at: now,
            created_by: self.session.username.clone(),
            schema_version: self.info().schema_version,
            db_sha256: hex::encode(Sha256::digest(&db)),
            db_bytes: db.len() as u64,
        };
        let archive = staging.path().join("backup.tar");
        {
            let file = crate::private_files::create_private(&archive).map_err(io(&archive))?;
            let mut tar = tar::Builder::new(file);
            let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o600);
                header.set_mtime(now.timestamp().max(0) as u64);
                header.set_cksum();
                tar.append_data(&mut header, name, bytes)
            };
            add(MANIFEST, &serde_json::to_vec_pretty(&manifest)?).map_err(io(&archive))?;
            add(KEYS_FILE, &keys).map_err(io(&archive))?;
            add(DB_FILE, &db).map_err(io(&archive))?;
            let file = tar.into_inner().map_err(io(&archive))?;
            file.sync_all().map_err(io(&archive))?;
        }
        std::fs::rename(&archive, out).map_err(io(out))?;
        if let Ok(d) = std::fs::File::open(parent_of(out)) {
            let _ = d.sync_all();
        }
        self.audit(
            Action::BackupCreate,
            None,
            serde_json::json!({ "bytes": manifest.db_bytes, "sha256": manifest.db_sha256 }),
            now,
        )?;
        tracing::info!(bytes = manifest.db_bytes, "backup written");
        Ok(manifest)
    }

    /// What a backup file says about itself, without unlocking it.
    pub fn read_backup_manifest(file: &Path) -> Result<BackupManifest> {
        Ok(read_archive(file, false)?.0)
    }

    /// Restores a backup into `dir`, which must hold no station. The copy is unlocked with
    /// `credentials` (an officer's of the day the backup was made) and checked before it is
    /// moved into place; the station is returned signed in.
    pub fn restore(
        file: &Path,
        dir: &Path,
        credentials: &Credentials,
        now: DateTime<Utc>,
    ) -> Result<Station> {
        if Station::exists(dir) {
            return Err(StoreError::StationExists(dir.to_path_buf()));
        }
        let (manifest, keys, db) = read_archive(file, true)?;
        let (keys, db) = (keys.unwrap_or_default(), db.unwrap_or_default());
        if hex::encode(Sha256::digest(&db)) != manifest.db_sha256 {
            return Err(bad("tệp bị hỏng (mã kiểm tra không khớp)"));
        }
        serde_json::from_slice::<KeyFile>(&keys)
            .map_err(|e| bad(format!("tệp khóa trong bản sao lưu hỏng ({e})")))?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let staging = tempfile::Builder::new()
            .prefix(".binhyen-restore-")
            .tempdir_in(parent_of(dir))
            .map_err(io(dir))?;
        crate::private_files::write_private(&staging.path().join(DB_FILE), &db)
            .map_err(io(staging.path()))?;
        crate::private_files::write_private(&staging.path().join(KEYS_FILE), &keys)
            .map_err(io(staging.path()))?;
        {
            let mut copy = Station::open_revoked(staging.path(), credentials)?;
            let ok: String = copy
                .conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            if ok != "ok" {
                return Err(bad(format!("cơ sở dữ liệu trong bản sao lưu hỏng ({ok})")));
            }
            // The server's credentials of the copy are stale (see the module's note).
            let enrolled = meta_get(&copy.conn, "sync.station_id")?.is_some_and(|s| !s.is_empty());
            copy.conn.execute(
                "DELETE FROM meta WHERE key IN ('sync.station_id', 'sync.secret')",
                [],
            )?;
            copy.audit(
                Action::BackupRestore,
                None,
                serde_json::json!({
                    "created_at": manifest.created_at, "created_by": manifest.created_by,
                    "was_enrolled": enrolled,
                }),
                now,
            )?;
            copy.conn
                .pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        }
        for name in [KEYS_FILE, DB_FILE] {
            let from = staging.path().join(name);
            std::fs::rename(&from, dir.join(name)).map_err(io(&from))?;
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        tracing::info!(station = %manifest.station_id, "backup restored");
        Station::open(dir, credentials)
    }
}

/// (manifest, key file, database) of a backup; with `whole` false, the manifest only.
type Archive = (BackupManifest, Option<Vec<u8>>, Option<Vec<u8>>);

/// The most a backup's parts may hold: a file handed in on a USB stick is read whole into
/// memory only within these bounds, so that a forged one cannot exhaust the laptop.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
const MAX_KEYS_BYTES: u64 = 4 * 1024 * 1024;
/// A station of a few hundred thousand tips is well under 1 GiB.
const MAX_DB_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// A backup has three parts; an archive of many more is not one.
const MAX_ENTRIES: usize = 16;

/// Reads one part of the archive, refusing a part larger than `limit` (by its header and by
/// what it really holds).
fn read_part(entry: &mut impl Read, declared: u64, limit: u64, what: &str) -> Result<Vec<u8>> {
    let too_big = || {
        bad(format!(
            "phần {what} của tệp lớn bất thường; đây không phải bản sao lưu hợp lệ"
        ))
    };
    if declared > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    entry
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("không đọc được phần {what}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

fn read_archive(file: &Path, whole: bool) -> Result<Archive> {
    let f = std::fs::File::open(file).map_err(io(file))?;
    let mut tar = tar::Archive::new(f);
    let (mut manifest, mut keys, mut db) = (None, None, None);
    let not_backup = || {
        bad(format!(
            "{} không phải tệp sao lưu của Bình Yên",
            file.display()
        ))
    };
    for (n, entry) in tar.entries().map_err(|_| not_backup())?.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(not_backup());
        }
        let mut entry = entry.map_err(|_| not_backup())?;
        let name = entry
            .path()
            .map_err(|_| not_backup())?
            .to_string_lossy()
            .to_string();
        let declared = entry.header().size().map_err(|_| not_backup())?;
        let twice =
            || bad("tệp có một phần hai lần; đây không phải bản sao lưu hợp lệ".to_string());
        match name.as_str() {
            MANIFEST => {
                if manifest.is_some() {
                    return Err(twice());
                }
                let bytes = read_part(&mut entry, declared, MAX_MANIFEST_BYTES, "mô tả")?;
                let m: BackupManifest = serde_json::from_slice(&bytes).map_err(|_| not_backup())?;
                if m.format != FORMAT {
                    return Err(bad(format!(
                        "định dạng sao lưu {} chưa được hỗ trợ; hãy cài bản Bình Yên mới hơn",
                        m.format
                    )));
                }
                manifest = Some(m);
                if !whole {
                    break;
                }
            }
            KEYS_FILE if whole => {
                if keys.is_some() {
                    return Err(twice());
                }
                keys = Some(read_part(&mut entry, declared, MAX_KEYS_BYTES, "khóa")?);
            }
            DB_FILE if whole => {
                if db.is_some() {
                    return Err(twice());
                }
                db = Some(read_part(&mut entry, declared, MAX_DB_BYTES, "dữ liệu")?);
            }
            _ => {}
        }
    }
    let manifest = manifest.ok_or_else(not_backup)?;
    if whole && (keys.is_none() || db.is_none()) {
        return Err(bad("tệp thiếu phần dữ liệu (có thể đã bị cắt ngắn)"));
    }
    Ok((manifest, keys, db))
}
