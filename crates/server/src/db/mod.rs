//! Server storage. [`Backend`] is the interface the HTTP layer uses; [`SqliteBackend`] is
//! the embedded default. Every push is applied in one transaction: all of it or none.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use std::collections::{BTreeMap, HashMap, HashSet};

use binhyen_domain::checksum::Sums;
use binhyen_domain::merge::{merge, Incoming, RecordState};
use binhyen_protocol::wire::{PulledChange, WireChange};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("{0}")]
    Other(String),
}

/// Why a request is refused: a stable code the station and the window read. Which HTTP
/// status each travels with is decided in one place, the HTTP layer (`api::status_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    AuditBroken,
    AuditRewritten,
    BadChange,
    BadCsv,
    BadFormat,
    BadHash,
    BadRole,
    BadToken,
    BadUsername,
    ClockAhead,
    DeviceTaken,
    LastManager,
    NameRequired,
    NotSealed,
    OutOfScope,
    ReleaseExists,
    Revoked,
    TokenUsed,
    TooLarge,
    UnauthorisedGrant,
    UnknownAccount,
    UnknownAttachment,
    UnknownUnit,
    UsernameTaken,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AuditBroken => "audit_broken",
            Code::AuditRewritten => "audit_rewritten",
            Code::BadChange => "bad_change",
            Code::BadCsv => "bad_csv",
            Code::BadFormat => "bad_format",
            Code::BadHash => "bad_hash",
            Code::BadRole => "bad_role",
            Code::BadToken => "bad_token",
            Code::BadUsername => "bad_username",
            Code::ClockAhead => "clock_ahead",
            Code::DeviceTaken => "device_taken",
            Code::LastManager => "last_manager",
            Code::NameRequired => "name_required",
            Code::NotSealed => "not_sealed",
            Code::OutOfScope => "out_of_scope",
            Code::ReleaseExists => "release_exists",
            Code::Revoked => "revoked",
            Code::TokenUsed => "token_used",
            Code::TooLarge => "too_large",
            Code::UnauthorisedGrant => "unauthorised_grant",
            Code::UnknownAccount => "unknown_account",
            Code::UnknownAttachment => "unknown_attachment",
            Code::UnknownUnit => "unknown_unit",
            Code::UsernameTaken => "username_taken",
        }
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request refused whole, with its code and a reason in Vietnamese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) fn refuse(code: Code, message: impl Into<String>) -> DbError {
    DbError::Refused(Refusal {
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

/// What the province's IT staff watch, read at each scrape of `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStats {
    /// Conflicts no station has resolved yet.
    pub open_conflicts: u64,
    /// The database's size on disk (SQLite: its pages; PostgreSQL: `pg_database_size`).
    pub database_bytes: u64,
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
    /// The official name of a unit ("Xã Cư M'gar").
    fn unit_name(&self, code: &str) -> DbResult<Option<String>>;
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
    /// Consumes a one-time token and stores the station's secret hash; `bundle_key` (derived
    /// from the secret) replaces the one the provisioning file carried, which sealed only the
    /// bundles before enrolment. The same token with the same secret again (a station whose
    /// first answer was lost) is the same enrolment, and changes nothing.
    /// `only`: the token must be this station's (an enrolment carried in its bundle).
    fn enroll(
        &self,
        token_hash: &str,
        secret_hash: &str,
        bundle_key: &str,
        only: Option<&str>,
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
    /// The scope's checksum, first version: a scan of every record of the scope. The scan
    /// also sets the scope's running sums to what it found (the daily full comparison puts
    /// right sums that a record changed outside this program left wrong).
    fn checksum(&self, station: &StationRow) -> DbResult<(String, u64)>;
    /// The scope's checksum, second version: its running sums added up, no scan.
    fn checksum_sums(&self, station: &StationRow) -> DbResult<(String, u64)>;
    /// The scope's records in (entity, id) order after `after`, as the checksum counts them:
    /// what a station compares against when its checksum differs.
    fn records(
        &self,
        station: &StationRow,
        after: Option<(String, String)>,
        limit: u32,
    ) -> DbResult<Vec<ScopeRecord>>;
    /// A station by id, with the key its offline bundles are sealed with.
    fn station_with_key(&self, id: &str) -> DbResult<Option<(StationRow, Option<String>)>>;
    /// Keeps a station's audit entries after checking that they follow on from the copy
    /// held, and that the station's head matches it. Returns the last entry held.
    fn push_audit(
        &self,
        station: &StationRow,
        push: &AuditPush,
        now: DateTime<Utc>,
    ) -> DbResult<i64>;
    /// Every station's audit chain as held, for `binhyen-server audit verify`.
    fn audit_chain(&self, station_id: &str) -> DbResult<Vec<AuditRecord>>;
    /// Keeps (replacing any earlier one) the code that unlocks a station whose passwords are
    /// all forgotten.
    fn set_recovery_code(&self, station_id: &str, code: &str, now: DateTime<Utc>) -> DbResult<()>;
    /// A station's recovery code and when it was stored.
    fn recovery_code(&self, station_id: &str) -> DbResult<Option<(String, String)>>;
    /// Whether a live attachment record of `unit` names this content.
    fn attachment_named(&self, unit: &str, sha256: &str) -> DbResult<bool>;
    /// Keeps an attachment's content for a unit (keeping it again changes nothing).
    fn store_attachment(
        &self,
        unit: &str,
        sha256: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> DbResult<()>;
    /// An attachment's content as kept for a unit.
    fn attachment(&self, unit: &str, sha256: &str) -> DbResult<Option<Vec<u8>>>;
    /// Server settings (the certificate authority lives here).
    fn meta_get(&self, key: &str) -> DbResult<Option<String>>;
    fn meta_set(&self, key: &str, value: &str) -> DbResult<()>;
    /// Stores `value` unless the key is set already; returns what is stored.
    fn meta_init(&self, key: &str, value: &str) -> DbResult<String>;
    /// Sets (or replaces) the key a station's offline bundles are sealed with (as stored: the
    /// vault seals it).
    fn set_bundle_key(&self, station_id: &str, bundle_key: &str) -> DbResult<()>;
    /// Keeps a record of something done at the server that must stay on the record (a
    /// recovery code read out): when, what, about what, and the details.
    fn record_event(
        &self,
        at: DateTime<Utc>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> DbResult<()>;
    /// The latest such records, newest first: (at, action, target, detail).
    fn events(&self, limit: u32) -> DbResult<Vec<(String, String, String, String)>>;
    /// Keeps the version a station reported at the end of a sync, and when.
    fn station_seen(&self, station_id: &str, version: &str, now: DateTime<Utc>) -> DbResult<()>;
    /// Every station's reported version and last sync: station id -> (version, seen_at).
    fn stations_seen(&self) -> DbResult<BTreeMap<String, (String, String)>>;
    /// Keeps how many of a station's changes wait behind the batch it just pushed, as the
    /// station reported it.
    fn station_waiting(&self, station_id: &str, remaining: u64, now: DateTime<Utc>)
        -> DbResult<()>;
    /// Every station's changes not yet received, as last reported: id -> (count, when).
    fn stations_waiting(&self) -> DbResult<BTreeMap<String, (u64, String)>>;
    /// Open conflicts and the database's size, for each scrape of the metrics.
    fn stats(&self) -> DbResult<ServerStats>;
    /// Each station's last audit entry the server holds (anchored): its number and time.
    fn audit_heads(&self) -> DbResult<BTreeMap<String, (i64, String)>>;
    /// The live records of one entity of one unit: (id, values JSON), in id order (a
    /// commune's identity keys, for the anchor).
    fn unit_records(&self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>>;
    /// Every live record of one entity, of any unit: (unit, id, values JSON).
    fn entity_records(&self, entity: &str) -> DbResult<Vec<(String, String, String)>>;
    /// Keeps a release and its content; a version published before is refused
    /// (`release_exists`).
    fn publish_release(&self, release: &ReleaseRow, data: &[u8]) -> DbResult<()>;
    /// Every release, newest publication first.
    fn releases(&self) -> DbResult<Vec<ReleaseRow>>;
    /// Withdraws a release (stations stop downloading it and discard what they had).
    fn withdraw_release(&self, version: &str, now: DateTime<Utc>) -> DbResult<bool>;
    /// Up to `len` bytes of a release's content from `offset`.
    fn release_piece(&self, version: &str, offset: u64, len: u32) -> DbResult<Option<Vec<u8>>>;
}

pub use binhyen_protocol::wire::ScopeRecord;

use binhyen_domain::audit::AuditRecord;
use binhyen_protocol::wire::AuditPush;

/// Which of a push's audit entries are new, after checking them against the copy held:
/// `held(seq)` is the hash held for an entry, `last` the last one held. An entry held with
/// another hash, a head that disagrees, or new entries that do not follow on are refused.
/// The first entries a station ever sends must start the chain (entry 1, hanging on the
/// genesis of the id the station names): a trail cut at its start is refused, and a laptop
/// enrolled again hands over its whole trail again (the earlier enrolment's copy is kept
/// as it was: a laptop restored from a backup legitimately goes on from an earlier point).
pub(crate) fn audit_new<'a>(
    push: &'a AuditPush,
    last: Option<(i64, String)>,
    held: &mut dyn FnMut(i64) -> DbResult<Option<String>>,
) -> DbResult<Vec<&'a AuditRecord>> {
    let rewritten = |seq: i64| {
        refuse(
            Code::AuditRewritten,
            format!("Nhật ký kiểm tra của trạm khác với bản máy chủ đã nhận (mục {seq}): nhật ký trên máy đã bị sửa. Không nhận thêm; hãy báo Công an tỉnh."),
        )
    };
    if push.head_seq > 0 {
        if let Some(h) = held(push.head_seq)? {
            if h != push.head_hash {
                return Err(rewritten(push.head_seq));
            }
        }
    }
    let last_seq = last.as_ref().map_or(0, |(s, _)| *s);
    let mut fresh = Vec::new();
    for e in &push.entries {
        if e.seq <= last_seq {
            match held(e.seq)? {
                Some(h) if h == e.hash => continue,
                _ => return Err(rewritten(e.seq)),
            }
        }
        fresh.push(e);
    }
    // New entries that do not hang on the last one held mean the history the server holds
    // was rewritten on the laptop.
    if let (Some((s, h)), Some(first)) = (&last, fresh.first()) {
        if first.seq == s + 1 && &first.prev_hash != h {
            return Err(rewritten(*s));
        }
    }
    if last.is_none() {
        if let Some(first) = fresh.first() {
            let genesis = push.chain.as_deref().map(binhyen_domain::audit::genesis);
            if first.seq != 1 || genesis.is_some_and(|g| first.prev_hash != g) {
                return Err(refuse(
                    Code::AuditRewritten,
                    format!("Nhật ký kiểm tra của trạm không bắt đầu từ mục đầu tiên (gặp mục {}): phần đầu đã bị cắt hoặc thay. Không nhận; hãy báo Công an tỉnh.", first.seq),
                ));
            }
        }
    }
    // The first entry ever received is taken as the anchor (its own hash is still checked).
    let after = last.as_ref().map(|(s, h)| (*s, h.as_str()));
    if let Err((_, problem)) = binhyen_domain::audit::check_chain(after, fresh.iter().copied()) {
        return Err(refuse(
            Code::AuditBroken,
            format!("Nhật ký kiểm tra gửi lên không liền mạch: {problem}."),
        ));
    }
    Ok(fresh)
}

/// Keeps the content of an attachment a station uploads, after checking it: named by a
/// SHA-256, not too large, sealed for the commune (see the domain's `attachment::sealed`:
/// the server never holds a commune's file in clear, and cannot check the content against
/// its name, which the laptop that opens it does), and named by an attachment record of the
/// station's unit (pushed before: a station cannot park arbitrary files on the server).
pub fn put_attachment(
    db: &dyn Backend,
    station: &StationRow,
    sha256: &str,
    data: &[u8],
    now: DateTime<Utc>,
) -> DbResult<()> {
    use binhyen_domain::attachment::{is_content_hash, sealed};
    if !is_content_hash(sha256) {
        return Err(refuse(
            Code::BadHash,
            "Tên tệp đính kèm phải là mã SHA-256 (64 ký tự hex thường).",
        ));
    }
    if data.len() > sealed::MAX_BYTES {
        return Err(refuse(
            Code::TooLarge,
            format!("Tệp đính kèm quá lớn (tối đa {} byte).", sealed::MAX_BYTES),
        ));
    }
    if sealed::parse(data).is_none() {
        return Err(refuse(
            Code::NotSealed,
            "Tệp đính kèm phải được niêm phong bằng khóa danh tính của xã trước khi gửi lên máy chủ; máy chủ không giữ tệp của xã ở dạng đọc được. Không có gì được ghi.",
        ));
    }
    if !db.attachment_named(&station.unit_code, sha256)? {
        return Err(refuse(
            Code::UnknownAttachment,
            "Không có tệp đính kèm nào của đơn vị mang mã này; hãy đồng bộ bản ghi trước rồi gửi tệp.",
        ));
    }
    db.store_attachment(&station.unit_code, sha256, data, now)
}

mod postgres;
mod rights;
mod rules;
mod sqlite;
pub mod vault;

pub use self::postgres::PgBackend;
pub use self::sqlite::SqliteBackend;

/// Opens the backend named by `--db`: `sqlite:PATH` or `postgres://…`.
pub fn open(spec: &str) -> DbResult<std::sync::Arc<dyn Backend>> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteBackend::open(
            std::path::Path::new(path),
        )?));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PgBackend::open(spec, None)?));
    }
    Err(DbError::Other(format!(
        "--db must be sqlite:PATH or postgres://…, not {spec:?}"
    )))
}

/// The storage both backends share: same tables, same meaning.
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS units (
        code TEXT PRIMARY KEY, name TEXT NOT NULL, parent_code TEXT REFERENCES units(code))",
    "CREATE TABLE IF NOT EXISTS stations (
        id TEXT PRIMARY KEY, unit_code TEXT NOT NULL REFERENCES units(code), device_no INTEGER NOT NULL,
        token_hash TEXT NOT NULL UNIQUE, secret_hash TEXT UNIQUE,
        created_at TEXT NOT NULL, enrolled_at TEXT, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS records (
        entity TEXT NOT NULL, entity_id TEXT NOT NULL, unit_code TEXT NOT NULL,
        vals TEXT NOT NULL, versions TEXT NOT NULL, deleted TEXT,
        PRIMARY KEY (entity, entity_id))",
    "CREATE INDEX IF NOT EXISTS records_scope ON records(unit_code)",
    // The checksum's running sums (`binhyen_domain::checksum::Sums`) per unit and entity,
    // kept by every push in its transaction; filled from `records` when first created
    // (`checksum_sums` in `server_meta` says they were).
    "CREATE TABLE IF NOT EXISTS checksum_sums (
        unit_code TEXT NOT NULL, entity TEXT NOT NULL, n BIGINT NOT NULL,
        a BIGINT NOT NULL, b BIGINT NOT NULL, c BIGINT NOT NULL, d BIGINT NOT NULL,
        PRIMARY KEY (unit_code, entity))",
    "CREATE TABLE IF NOT EXISTS conflicts (
        id TEXT PRIMARY KEY, entity TEXT NOT NULL, entity_id TEXT NOT NULL, field TEXT NOT NULL,
        kind TEXT NOT NULL, detected_at TEXT NOT NULL, resolved_at TEXT)",
    "CREATE INDEX IF NOT EXISTS conflicts_record ON conflicts(entity, entity_id)",
    "CREATE INDEX IF NOT EXISTS changes_scope ON changes(unit_code, seq)",
    "CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_entries (
        station_id TEXT NOT NULL REFERENCES stations(id), seq BIGINT NOT NULL, at TEXT NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL, received_at TEXT NOT NULL,
        PRIMARY KEY (station_id, seq))",
    "CREATE TABLE IF NOT EXISTS station_keys (
        station_id TEXT PRIMARY KEY REFERENCES stations(id), bundle_key TEXT NOT NULL)",
    // What was done at the server that must stay on the record (a recovery code read out).
    "CREATE TABLE IF NOT EXISTS server_events (
        at TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS station_recovery (
        station_id TEXT PRIMARY KEY REFERENCES stations(id), code TEXT NOT NULL,
        stored_at TEXT NOT NULL)",
    // Attachments' content, per commune: a laptop uploads what it attached, the commune's
    // other laptops download it. Named by SHA-256 (BYTEA is a blob to SQLite too).
    "CREATE TABLE IF NOT EXISTS attachment_content (
        unit_code TEXT NOT NULL, sha256 TEXT NOT NULL, data BYTEA NOT NULL,
        size_bytes BIGINT NOT NULL, stored_at TEXT NOT NULL,
        PRIMARY KEY (unit_code, sha256))",
    // Each station's program version and its last sync, as the station reported them.
    "CREATE TABLE IF NOT EXISTS station_seen (
        station_id TEXT PRIMARY KEY REFERENCES stations(id), version TEXT NOT NULL,
        seen_at TEXT NOT NULL)",
    // How many of its changes a station still had to send after its last push, as it said.
    "CREATE TABLE IF NOT EXISTS station_waiting (
        station_id TEXT PRIMARY KEY REFERENCES stations(id), remaining BIGINT NOT NULL,
        reported_at TEXT NOT NULL)",
    // Signed releases of the station package the server relays (`release publish`): to all
    // stations, to the units named, or to a share of the stations.
    "CREATE TABLE IF NOT EXISTS releases (
        version TEXT PRIMARY KEY, file_name TEXT NOT NULL, size_bytes BIGINT NOT NULL,
        sha256 TEXT NOT NULL, signature TEXT NOT NULL, units TEXT, percent INTEGER,
        published_at TEXT NOT NULL, withdrawn_at TEXT)",
    "CREATE TABLE IF NOT EXISTS release_content (
        version TEXT PRIMARY KEY REFERENCES releases(version), data BYTEA NOT NULL)",
];

/// A release as the server keeps it (its content apart).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReleaseRow {
    pub version: String,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub signature: String,
    /// The units it goes to first (commune or province codes, comma-separated); None: all.
    pub units: Option<String>,
    /// The share of stations it goes to (by a hash of the station id); None: all.
    pub percent: Option<u32>,
    pub published_at: String,
    pub withdrawn_at: Option<String>,
}

/// A stored record: (unit_code, values JSON, versions as stored, deleted clock value). Versions
/// are stored grouped by clock value, as on a station; an older server wrote them as an
/// object, and `binhyen_domain::versions::parse` reads both.
pub(crate) type StoredRecord = (String, String, String, Option<String>);

/// The running sums as stored, per (unit, entity), zeros left out.
pub(crate) type StoredSums = BTreeMap<(String, String), Sums>;

/// One transaction of a backend: the small SQL primitives the server's rules (the push here,
/// the rest in `rules.rs`) are written over, once for both backends.
pub(crate) trait Tx {
    fn insert_unit_if_absent(&mut self, code: &str, name: &str) -> DbResult<usize>;
    fn upsert_unit(&mut self, code: &str, name: &str, parent: &str) -> DbResult<()>;
    fn unit_known(&mut self, code: &str) -> DbResult<bool>;
    /// The laptop number after the highest of the unit's stations.
    fn next_device(&mut self, unit: &str) -> DbResult<u32>;
    /// Whether an unrevoked station of the unit has this laptop number.
    fn device_taken(&mut self, unit: &str, device: u32) -> DbResult<bool>;
    fn insert_station(
        &mut self,
        id: &str,
        unit: &str,
        device: u32,
        token_hash: &str,
        at: &str,
    ) -> DbResult<()>;
    /// Feeds every record of a unit and its communes to the scan, ordered by entity and id
    /// (bytewise).
    fn scan_scope(&mut self, unit: &str, scan: &mut ScopeScan) -> DbResult<()>;
    fn stored_sums(&mut self, unit: &str) -> DbResult<StoredSums>;
    /// Removes the running sums of a unit and its communes.
    fn clear_sums(&mut self, unit: &str) -> DbResult<()>;
    /// The last audit entry held of a station: (seq, hash).
    fn audit_last(&mut self, station_id: &str) -> DbResult<Option<(i64, String)>>;
    fn audit_hash(&mut self, station_id: &str, seq: i64) -> DbResult<Option<String>>;
    fn insert_audit(
        &mut self,
        station_id: &str,
        e: &AuditRecord,
        received_at: &str,
    ) -> DbResult<()>;
    fn scope_units(&mut self, unit: &str) -> DbResult<Vec<String>>;
    fn change_exists(&mut self, change_id: &str) -> DbResult<bool>;
    /// Which of `ids` the server holds already: a query each here, one in all where the
    /// backend is a round trip away (PostgreSQL).
    fn changes_known(&mut self, ids: &[&str]) -> DbResult<HashSet<String>> {
        let mut known = HashSet::new();
        for id in ids {
            if self.change_exists(id)? {
                known.insert(id.to_string());
            }
        }
        Ok(known)
    }
    /// (unit_code, vals, versions, deleted)
    fn record(&mut self, entity: &str, id: &str) -> DbResult<Option<StoredRecord>>;
    /// The records stored under `keys` (entity, id), likewise read at once where it counts.
    fn records_many(
        &mut self,
        keys: &[(&str, &str)],
    ) -> DbResult<HashMap<(String, String), StoredRecord>> {
        let mut out = HashMap::new();
        for (entity, id) in keys {
            if let Some(r) = self.record(entity, id)? {
                out.insert((entity.to_string(), id.to_string()), r);
            }
        }
        Ok(out)
    }
    #[allow(clippy::too_many_arguments)]
    fn put_record(
        &mut self,
        entity: &str,
        id: &str,
        unit: &str,
        vals: &str,
        versions: &str,
        deleted: Option<&str>,
    ) -> DbResult<()>;
    fn insert_conflict(
        &mut self,
        id: &str,
        entity: &str,
        entity_id: &str,
        field: &str,
        kind: &str,
        at: &str,
    ) -> DbResult<usize>;
    fn insert_change(&mut self, c: &WireChange, origin: &str, at: &str) -> DbResult<()>;
    /// Adds to the running sums of one unit's records of one entity.
    fn add_sums(&mut self, unit: &str, entity: &str, sums: &Sums) -> DbResult<()>;
    /// The open conflicts of one record: (id, field), in id order.
    fn open_conflicts(&mut self, entity: &str, entity_id: &str) -> DbResult<Vec<(String, String)>>;
    fn close_conflict(&mut self, id: &str, at: &str) -> DbResult<()>;
    /// The live records of one entity of one unit: (id, values JSON), in id order.
    fn unit_records(&mut self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>>;
    /// Stores a server setting unless it is set already; returns what is stored.
    fn meta_init(&mut self, key: &str, value: &str) -> DbResult<String>;
    fn meta_set(&mut self, key: &str, value: &str) -> DbResult<()>;
}

/// The log entry that tells every station of the scope about a conflict or its end. Conflicts
/// are decided here, in the one order, so every station sees the same ones; identity
/// conflicts have their own name so that they stay in their commune.
fn conflict_event(c: &WireChange, identity: bool, id: &str, open: bool, data: Value) -> WireChange {
    WireChange {
        change_id: format!("{id}:{}", if open { "open" } else { "closed" }),
        hlc: c.hlc.clone(),
        entity: if identity {
            "conflict_identity"
        } else {
            "conflict"
        }
        .into(),
        entity_id: id.into(),
        op: if open { "insert" } else { "update" }.into(),
        unit_code: c.unit_code.clone(),
        data: match data {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        base: None,
    }
}

/// A JSON object as text, the same text as `Value::Object(..).to_string()`, without a copy
/// of it made first.
pub(crate) fn object_text<T: serde::Serialize + ?Sized>(object: &T) -> DbResult<String> {
    serde_json::to_string(object).map_err(|e| DbError::Other(e.to_string()))
}

fn parse_obj(s: &str) -> Map<String, Value> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// How far ahead of the server's clock a change's stamp may be: stations' clocks drift by
/// hours; a week ahead is a broken clock, and its changes are set aside on the station (kept,
/// shown for review) rather than allowed to win every merge until that day.
pub const MAX_CLOCK_AHEAD: chrono::Duration = chrono::Duration::days(7);

/// Checks, merges and stores a batch inside one transaction of either backend. Any refusal
/// returns before the caller commits, so nothing of a refused batch is applied.
/// Whether a JSON value holds a NUL character in any string or key.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(holds_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

pub(crate) fn push_with(
    tx: &mut dyn Tx,
    station: &StationRow,
    changes: &[WireChange],
    now: DateTime<Utc>,
) -> DbResult<PushOutcome> {
    let scope = tx.scope_units(&station.unit_code)?;
    let now_s = now.to_rfc3339();
    let mut out = PushOutcome::default();
    let mut sums: BTreeMap<(&str, &str), Sums> = BTreeMap::new();
    // Every change checked on its own first (what it is, its stamp, its scope), before
    // anything is read for the batch: what is refused is refused before any query.
    let mut checked = Vec::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        let at = |m: String| format!("Thay đổi thứ {} ({} {}): {m}", i + 1, c.entity, c.entity_id);
        let (def, op) = binhyen_domain::catalog::check_change(&c.entity, &c.op, &c.data)
            .map_err(|m| refuse(Code::BadChange, at(m)))?;
        let Some(hlc) = binhyen_domain::hlc::Hlc::parse(&c.hlc)
            .filter(|_| !c.change_id.is_empty() && !c.entity_id.is_empty())
            // Text a database cannot hold (PostgreSQL refuses NUL) is no name, and no value:
            // the server reads stored values back as JSON, which holds no NUL either.
            .filter(|_| !c.change_id.contains('\0') && !c.entity_id.contains('\0'))
            .filter(|_| !c.data.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)))
            .filter(|_| {
                !c.base
                    .iter()
                    .flatten()
                    .any(|(k, v)| k.contains('\0') || holds_nul(v))
            })
        else {
            return Err(refuse(
                Code::BadChange,
                at("thiếu mã thay đổi, mã bản ghi hoặc dấu thời gian hợp lệ, hoặc có ký tự không hợp lệ (NUL)".into()),
            ));
        };
        // A stamp far in the future would win every merge of its fields until that day: a
        // clock that wrong is broken (or made so). Hours of skew are normal and pass. The
        // reference is the later of the time given and the server's own clock, so that a
        // stamp is never refused for being ahead of a time only a caller assumed.
        let reference = now.max(Utc::now()).timestamp_millis();
        if hlc.wall_ms > reference + MAX_CLOCK_AHEAD.num_milliseconds() {
            return Err(refuse(
                Code::ClockAhead,
                at(format!(
                    "dấu thời gian của thay đổi ({}) nhanh hơn giờ máy chủ hơn {} ngày: đồng hồ của máy đã ghi nó bị sai. Thay đổi được giữ lại trên máy để xem lại; hãy chỉnh ngày giờ của máy",
                    chrono::DateTime::from_timestamp_millis(hlc.wall_ms)
                        .map(|d| d.to_rfc3339())
                        .unwrap_or_default(),
                    MAX_CLOCK_AHEAD.num_days()
                )),
            ));
        }
        if !scope.contains(&c.unit_code) {
            return Err(refuse(
                Code::OutOfScope,
                at(format!(
                    "đơn vị {} nằm ngoài phạm vi của trạm ({})",
                    c.unit_code, station.unit_code
                )),
            ));
        }
        if let Some(u) = c.data.get("unit_code").and_then(Value::as_str) {
            if u != c.unit_code {
                return Err(refuse(
                    Code::OutOfScope,
                    at(format!(
                        "bản ghi ghi cho đơn vị {u}, ngoài phạm vi {}",
                        c.unit_code
                    )),
                ));
            }
        }
        checked.push((def, op));
    }
    // What the batch finds stored, read at once; kept up to date as the batch writes.
    let ids: Vec<&str> = changes.iter().map(|c| c.change_id.as_str()).collect();
    let mut known = tx.changes_known(&ids)?;
    let keys: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c.entity.as_str(), c.entity_id.as_str()))
        .collect();
    let mut stored = tx.records_many(&keys)?;
    for ((i, c), (def, op)) in changes.iter().enumerate().zip(checked) {
        let at = |m: String| format!("Thay đổi thứ {} ({} {}): {m}", i + 1, c.entity, c.entity_id);
        if known.contains(&c.change_id) {
            out.duplicates += 1;
            continue;
        }
        let key = (c.entity.clone(), c.entity_id.clone());
        let existing = stored.get(&key).cloned();
        let state = match &existing {
            Some((unit, vals, versions, deleted)) => {
                if *unit != c.unit_code {
                    return Err(refuse(
                        Code::OutOfScope,
                        at(format!(
                            "bản ghi thuộc đơn vị {unit}, không thể sửa từ {}",
                            c.unit_code
                        )),
                    ));
                }
                RecordState {
                    exists: deleted.is_none(),
                    values: parse_obj(vals),
                    versions: binhyen_domain::versions::parse(versions),
                    deleted: deleted.clone(),
                }
            }
            None => RecordState::default(),
        };
        rights::check(tx, station, def, op, c, existing.as_ref()).map_err(|e| match e {
            DbError::Refused(mut f) => {
                f.message = at(f.message);
                DbError::Refused(f)
            }
            other => other,
        })?;
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
        // The record's values after the change: those it held, overlaid with those set (in
        // the same key order as a JSON object).
        let mut values: std::collections::BTreeMap<&str, &Value> =
            state.values.iter().map(|(k, v)| (k.as_str(), v)).collect();
        values.extend(outcome.set.iter().map(|(k, v)| (*k, *v)));
        let deleted = outcome.delete.clone().or(if outcome.undelete {
            None
        } else {
            state.deleted.clone()
        });
        let versions = binhyen_domain::versions::stored_from(&outcome.versions);
        let vals = object_text(&values)?;
        tx.put_record(
            def.name,
            &c.entity_id,
            &c.unit_code,
            &vals,
            &versions,
            deleted.as_deref(),
        )?;
        let share = sums.entry((c.unit_code.as_str(), def.name)).or_default();
        if let Some((_, _, old, old_deleted)) = &existing {
            share.sub(&Sums::share_of_map(
                def.name,
                &c.entity_id,
                &state.versions,
                old,
                old_deleted.as_deref(),
            ));
        }
        share.add(&Sums::share_of_outcome(
            def.name,
            &c.entity_id,
            &outcome.versions,
            &versions,
            deleted.as_deref(),
        ));
        tx.insert_change(c, &station.id, &now_s)?;
        known.insert(c.change_id.clone());
        stored.insert(
            key,
            (c.unit_code.clone(), vals, versions.clone(), deleted.clone()),
        );
        // A clean write of a field ends its open conflict; a new conflict replaces it. A
        // record new to the server has none: they are read once per record, not per field.
        let mut open = match &existing {
            Some(_) => tx.open_conflicts(def.name, &c.entity_id)?,
            None => Vec::new(),
        };
        // The conflict events written here are changes of the batch too (known from now on).
        let events = std::cell::RefCell::new(Vec::new());
        let mut close = |tx: &mut dyn Tx, field: &str, resolution: Value| -> DbResult<()> {
            let (closing, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut open)
                .into_iter()
                .partition(|(_, f)| f == field);
            open = rest;
            for (id, _) in closing {
                tx.close_conflict(&id, &now_s)?;
                let data = json!({"resolved_at": now_s, "resolution": resolution.to_string()});
                let event = conflict_event(c, def.identity, &id, false, data);
                tx.insert_change(&event, "server", &now_s)?;
                events.borrow_mut().push(event.change_id);
            }
            Ok(())
        };
        for (field, value) in &outcome.set {
            if !outcome.conflicts.iter().any(|k| k.field == *field) {
                close(tx, field, (*value).clone())?;
            }
        }
        for k in &outcome.conflicts {
            let id = k.id.to_string();
            close(tx, &k.field, Value::String("superseded".into()))?;
            if tx.insert_conflict(
                &id,
                def.name,
                &c.entity_id,
                &k.field,
                k.kind.as_str(),
                &now_s,
            )? == 0
            {
                continue;
            }
            out.conflicts += 1;
            let data = json!({
                "entity": def.name, "entity_id": c.entity_id, "field": k.field, "kind": k.kind.as_str(),
                "local_value": k.local_value.to_string(), "local_hlc": k.local_hlc,
                "remote_value": k.remote_value.to_string(), "remote_hlc": k.remote_hlc,
                "winner": if k.remote_wins { "remote" } else { "local" }, "detected_at": now_s,
            });
            let event = conflict_event(c, def.identity, &id, true, data);
            tx.insert_change(&event, "server", &now_s)?;
            events.borrow_mut().push(event.change_id);
        }
        known.extend(events.into_inner());
        out.accepted += 1;
    }
    for ((unit, entity), s) in &sums {
        if !s.is_zero() {
            tx.add_sums(unit, entity, s)?;
        }
    }
    Ok(out)
}

/// Running sums per (unit, entity) computed from records read one at a time (the fill at
/// first start, the full checksum's scan): what the stored sums must equal.
#[derive(Default)]
pub(crate) struct ScopeSums(BTreeMap<(String, String), Sums>);

impl ScopeSums {
    pub(crate) fn add(
        &mut self,
        unit: &str,
        entity: &str,
        id: &str,
        versions: &str,
        deleted: Option<&str>,
    ) {
        let share = Sums::of_record(entity, id, versions, deleted);
        match self.0.get_mut(&(unit.to_string(), entity.to_string())) {
            Some(s) => s.add(&share),
            None => {
                self.0.insert((unit.to_string(), entity.to_string()), share);
            }
        }
    }

    pub(crate) fn finish(self) -> BTreeMap<(String, String), Sums> {
        self.0
    }
}

/// The full checksum's scan of a scope, a record at a time (a province-level station's
/// scope may hold millions): its first-version digest, and the running sums its records make
/// per (unit, entity), which replace the stored ones.
pub(crate) struct ScopeScan {
    digest: binhyen_domain::checksum::FullDigest,
    sums: ScopeSums,
}

impl ScopeScan {
    pub(crate) fn new(with_identity: bool) -> ScopeScan {
        ScopeScan {
            digest: binhyen_domain::checksum::FullDigest::new(with_identity),
            sums: ScopeSums::default(),
        }
    }

    /// One record of the scope, in (entity, id) order.
    pub(crate) fn add(
        &mut self,
        unit: &str,
        entity: &str,
        id: &str,
        versions: &str,
        deleted: Option<&str>,
    ) {
        self.sums.add(unit, entity, id, versions, deleted);
        self.digest.add(entity, id, versions, deleted);
    }

    /// The first version's digest and the running sums per (unit, entity).
    pub(crate) fn finish(self) -> ((String, u64), BTreeMap<(String, String), Sums>) {
        (self.digest.finish(), self.sums.finish())
    }
}

/// A scope's checksum from its stored running sums ((entity, sums) rows of its units).
pub(crate) fn scope_checksum(rows: Vec<(String, Sums)>, with_identity: bool) -> (String, u64) {
    let mut total = Sums::default();
    for (entity, s) in rows {
        if with_identity || !binhyen_domain::catalog::is_identity(&entity) {
            total.add(&s);
        }
    }
    total.checksum()
}

/// A change as stored, back into its wire form (one argument per column).
#[allow(clippy::too_many_arguments)]
pub(crate) fn wire_change(
    change_id: String,
    unit_code: String,
    entity: String,
    entity_id: String,
    op: String,
    hlc: String,
    data: &str,
    base: Option<String>,
) -> WireChange {
    WireChange {
        change_id,
        unit_code,
        entity,
        entity_id,
        op,
        hlc,
        data: parse_obj(data),
        base: base.map(|b| parse_obj(&b)),
    }
}

/// Changes a station may pull: its unit's, and for a province its communes' (never
/// reporter identity: it stays in its commune). Pushes are serialised, so no change can
/// commit behind a cursor.
pub(crate) const PULL_SQL_SQLITE: &str =
    "SELECT seq, change_id, origin, unit_code, entity, entity_id, op, hlc, data, base
     FROM changes
     WHERE seq > ?1 AND origin <> ?2
       AND (unit_code = ?3 OR (unit_code IN (SELECT code FROM units WHERE parent_code = ?3)
                               AND entity NOT IN ('tip_reporter', 'conflict_identity')))
     ORDER BY seq LIMIT ?4";

pub(crate) const CHECKSUM_SQL_SQLITE: &str =
    "SELECT unit_code, entity, entity_id, versions, deleted FROM records
     WHERE unit_code = ?1 OR unit_code IN (SELECT code FROM units WHERE parent_code = ?1)
     ORDER BY entity, entity_id";

/// The scope's records, as the backends' `RECORDS` queries return them (in the checksum's
/// order, reporter identity already left out for a province): (entity, id, vals, versions,
/// deleted) rows become [`ScopeRecord`]s.
pub(crate) fn scope_records(
    rows: Vec<(String, String, String, String, Option<String>)>,
) -> Vec<ScopeRecord> {
    rows.into_iter()
        .map(|(entity, entity_id, vals, versions, deleted)| ScopeRecord {
            entity,
            entity_id,
            data: parse_obj(&vals),
            versions: binhyen_domain::versions::parse(&versions),
            deleted,
        })
        .collect()
}

pub(crate) const RECORDS_SQL_SQLITE: &str =
    "SELECT entity, entity_id, vals, versions, deleted FROM records
     WHERE (unit_code = ?1 OR unit_code IN (SELECT code FROM units WHERE parent_code = ?1))
       AND (entity > ?2 OR (entity = ?2 AND entity_id > ?3))
       AND (?5 OR entity <> 'tip_reporter')
     ORDER BY entity, entity_id LIMIT ?4";

/// A page of pulled changes and where to continue.
pub(crate) fn page(
    rows: Vec<PulledChange>,
    after: i64,
    limit: u32,
    max_seq: i64,
) -> (Vec<PulledChange>, i64, bool) {
    let more = rows.len() as u32 == limit;
    let next = if more {
        rows.last().map(|c| c.seq).unwrap_or(after)
    } else {
        max_seq.max(after)
    };
    (rows, next, more)
}

/// Whether a station found by its token may enrol now.
pub(crate) fn release_exists(version: &str) -> DbError {
    refuse(
        Code::ReleaseExists,
        format!("Bản {version} đã được phát hành trước đây; một phiên bản chỉ phát hành một lần (hãy làm bản mới hơn)."),
    )
}

/// Whether a station found by its token enrolled before (and may be enrolling again with
/// the same secret, its first answer lost).
pub(crate) fn enrolled_before(row: &StationRow, only: Option<&str>) -> bool {
    row.enrolled_at.is_some() && row.revoked_at.is_none() && only.is_none_or(|id| row.id == id)
}

pub(crate) fn check_enrollable(
    row: Option<StationRow>,
    only: Option<&str>,
) -> DbResult<StationRow> {
    let Some(row) = row.filter(|r| only.is_none_or(|id| r.id == id)) else {
        return Err(refuse(Code::BadToken, "Mã cấp phép không đúng."));
    };
    if row.revoked_at.is_some() {
        return Err(refuse(Code::Revoked, "Trạm này đã bị thu hồi."));
    }
    if row.enrolled_at.is_some() {
        return Err(refuse(
            Code::TokenUsed,
            "Mã cấp phép này đã được dùng; hãy xin tệp cấp phép mới.",
        ));
    }
    Ok(row)
}
