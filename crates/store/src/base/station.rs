//! A station: its data directory, the unlocked database connection, who it is (unit,
//! laptop number, clock node) and who is signed in. The one place a connection is made.
//! Creating, opening and recovering a station are in `lifecycle/open.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use ts_rs::TS;
use uuid::Uuid;

use crate::changes::{meta_get, meta_set, Writer};
use crate::keys::{BoxSecret, DbKey, KeyFile};
use crate::session::{Ring, Session};
use crate::{migrate, units, Result, StoreError};

pub const DB_FILE: &str = "station.db";
/// The layout of the search index; a station with an older one is re-indexed when opened.
pub(crate) const SEARCH_INDEX_VERSION: &str = "2";
pub const KEYS_FILE: &str = "keys.json";

/// Who this station is.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct StationInfo {
    pub station_id: Uuid,
    pub unit_code: String,
    pub unit_name: String,
    pub unit_type: String,
    pub province_code: Option<String>,
    pub province_name: Option<String>,
    pub device_no: u32,
    pub node_id: String,
    pub created_at: DateTime<Utc>,
    pub demo: bool,
    #[ts(type = "number")]
    pub schema_version: i64,
}

/// An open, unlocked station.
pub struct Station {
    pub(crate) conn: Connection,
    pub(crate) dir: PathBuf,
    info: StationInfo,
    /// Who acts, as the audit trail names them (the signed-in officer's username).
    pub(crate) actor: String,
    pub(crate) session: Session,
    /// The database key, to wrap it for a new password (accounts) and derive subkeys.
    pub(crate) key: DbKey,
    /// The keys that open reporter identity for this session (see `identity.rs`).
    pub(crate) ring: Ring,
}

/// What a second connection of the same session needs (the desktop's sync thread): the
/// database key, and the officer's box key for reporter identity.
#[derive(Clone)]
pub struct SessionKey {
    pub(crate) db: DbKey,
    pub(crate) own_box: Option<BoxSecret>,
    /// The province's anchor key pinned in the officer's slot.
    pub(crate) anchor: Option<String>,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("dir", &self.dir)
            .field("info", &self.info)
            .finish()
    }
}

/// Opens the database file and unlocks it; the one place a connection is made.
pub(crate) fn connect(path: &Path, key: &DbKey, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    if create {
        // Before anything is written: SQLite gives its journal files the database's mode.
        crate::private_files::make_private(path).map_err(|e| StoreError::io(path, e))?;
    }
    key.apply(&conn)?;
    // The first read proves the key (the key file already did, so a failure here means a
    // damaged or foreign file).
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::WrongCredentials,
        _ => StoreError::Sqlite(e),
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed change survives power loss, which on a station laptop is routine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 32 MiB of page cache: SQLCipher decrypts each page it reads, so hits matter.
    conn.pragma_update(None, "cache_size", -32_000)?;
    // A long pull lets the WAL grow while a second connection copies it back (see
    // `Station::checkpointer`); once copied, the file is cut back to this.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Station {
    /// Whether `dir` holds a station (or the remains of one, which must not be overwritten).
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).exists() || dir.join(KEYS_FILE).exists()
    }

    /// Whether `username` of the station in `dir` still has the public demo password (the
    /// demo station of a fresh install, whose sign-in screen says so).
    pub fn has_demo_account(dir: &Path, username: &str) -> bool {
        KeyFile::read(&dir.join(KEYS_FILE))
            .map(|k| k.has_demo_account(username))
            .unwrap_or(false)
    }

    /// The usernames of the station in `dir` that still have the public demo password.
    pub fn demo_usernames(dir: &Path) -> Vec<String> {
        KeyFile::read(&dir.join(KEYS_FILE))
            .map(|k| k.demo_usernames())
            .unwrap_or_default()
    }

    /// When the server said this station is revoked, if it has.
    pub fn revoked_at(&self) -> Result<Option<String>> {
        Ok(meta_get(&self.conn, "sync.revoked_at")?.filter(|s| !s.is_empty()))
    }

    /// Locks the station: the server refused it as revoked. Nothing is deleted.
    pub fn lock_revoked(&self, at: DateTime<Utc>) -> Result<()> {
        meta_set(&self.conn, "sync.revoked_at", &at.to_rfc3339())
    }

    /// The keys of this open session, for [`Station::open_with_key`].
    pub fn session_key(&self) -> SessionKey {
        SessionKey {
            db: self.key.clone(),
            own_box: self.ring.own().cloned(),
            anchor: self.ring.slot_anchor.clone(),
        }
    }

    pub(crate) fn from_conn(
        conn: Connection,
        dir: &Path,
        session: Session,
        key: DbKey,
        ring: Ring,
    ) -> Result<Station> {
        let get = |k: &str| -> Result<String> {
            meta_get(&conn, k)?.ok_or_else(|| StoreError::not_found("thông tin trạm", k))
        };
        let unit_code = get("unit_code")?;
        let unit = units::get(&conn, &unit_code)?
            .ok_or_else(|| StoreError::UnknownUnit(unit_code.clone()))?;
        let province = match &unit.parent_code {
            Some(p) => units::get(&conn, p)?,
            None => None,
        };
        let info = StationInfo {
            station_id: Uuid::parse_str(&get("station_id")?).map_err(|e| StoreError::KeyFile {
                path: dir.join(DB_FILE),
                reason: e.to_string(),
            })?,
            unit_code,
            unit_name: unit.name,
            unit_type: unit.unit_type,
            province_code: province.as_ref().map(|p| p.code.clone()),
            province_name: province.map(|p| p.name),
            device_no: get("device_no")?.parse().unwrap_or(1),
            node_id: get("node_id")?,
            created_at: crate::sql::parse_ts(0, &get("created_at")?)?,
            demo: get("demo")? == "1",
            schema_version: migrate::user_version(&conn)?,
        };
        Ok(Station {
            conn,
            dir: dir.to_path_buf(),
            info,
            actor: session.username.clone(),
            session,
            key,
            ring,
        })
    }

    pub fn info(&self) -> &StationInfo {
        &self.info
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The connection itself, for tests and benchmarks that read or tamper with the file
    /// directly: only with the `test-support` feature, which only dev-dependencies enable.
    /// Callers outside the store ask the station through its methods.
    #[cfg(feature = "test-support")]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts a write transaction that records its changes.
    pub fn writer(&mut self, now: DateTime<Utc>) -> Result<Writer<'_>> {
        Writer::begin(&mut self.conn, now, &self.actor)
    }

    /// A second connection that copies committed pages from the WAL into the database file
    /// while this one goes on writing (a long pull), and this connection's own copying
    /// turned off until [`Station::resume_checkpoints`].
    pub fn checkpointer(&self) -> Result<Checkpointer> {
        let conn = connect(&self.dir.join(DB_FILE), &self.key, false)?;
        let limit: i64 = self
            .conn
            .query_row("PRAGMA journal_size_limit", [], |r| r.get(0))?;
        let limit = if limit > 0 { limit } else { WAL_SIZE_LIMIT };
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(Checkpointer {
            conn,
            longest: 4 * limit / PAGE_SIZE,
        })
    }

    /// This connection's own copying from the WAL back on.
    pub fn resume_checkpoints(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
        Ok(())
    }
}

/// SQLite's default: a commit that leaves the WAL above this many pages copies it back.
const WAL_AUTOCHECKPOINT: i64 = 1000;

/// The WAL file kept on disk once copied back, in bytes.
pub const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// SQLCipher 4's page size, which this store never changes: a WAL frame holds one page.
const PAGE_SIZE: i64 = 4096;

/// See [`Station::checkpointer`]. Checkpoints are PASSIVE: they copy what no reader still
/// needs and never wait for, nor block, the writer.
///
/// Copied beside a writer that never pauses, the WAL is never started again from its
/// beginning: SQLite does that only when a write transaction begins with the WAL copied
/// whole and no one else using it. So the WAL would grow by all a pull writes. Once it is
/// longer than four times the size it is cut back to (`journal_size_limit`, 16 MiB by
/// default: 64 MiB; [`Checkpointer::too_long`]), it is copied whole and emptied between two
/// pages ([`Checkpointer::shorten`]).
#[derive(Debug)]
pub struct Checkpointer {
    conn: Connection,
    /// Frames past which the WAL is too long.
    longest: i64,
}

impl Checkpointer {
    /// Copies every committed page it can; returns (pages in the WAL, pages copied).
    pub fn checkpoint(&mut self) -> Result<(i64, i64)> {
        Ok(self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })?)
    }

    /// Whether a WAL of `frames` (as [`Checkpointer::checkpoint`] found it) is to be
    /// shortened before the writer's next transaction.
    pub fn too_long(&self, frames: i64) -> bool {
        frames > self.longest
    }

    /// Copies the whole WAL and empties it (a TRUNCATE checkpoint), waiting (up to the busy
    /// timeout) for readers still using it; to be called while the writer is between two
    /// transactions. A reader that stayed leaves it for another time; nothing is lost either
    /// way.
    pub fn shorten(&mut self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}
