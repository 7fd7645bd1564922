//! The wire protocol, version 1. JSON over HTTP; the server compresses responses.
//!
//! - `POST /api/v1/enroll` (one-time token) → the station's identity and secret.
//! - `POST /api/v1/push` (Bearer) → a batch of the station's changes, applied whole or not
//!   at all; a change already received is skipped, so a replayed batch changes nothing.
//! - `GET /api/v1/pull?after=SEQ&limit=N` (Bearer) → changes of the station's scope, in
//!   the server's order, from other stations.
//! - `GET /api/v1/checksum` (Bearer) → the digest of the scope, to compare after a sync.
//! - `POST /api/v1/audit` (Bearer) → the station's new audit entries and its head; the
//!   server keeps a copy of each station's chain and refuses one that does not follow on.
//! - `GET /api/v1/records?after_entity=E&after_id=ID&limit=N` (Bearer) → the scope's
//!   records as the server holds them, in checksum order: the repair after a mismatch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const API: &str = "/api/v1";
/// The zstd level of a station's pushes: at about the work of gzip's default level, a tenth
/// fewer bytes, which is a tenth less time on a 256 kbit/s link. (The server reads gzip
/// too, from stations not yet updated.)
pub const ZSTD_LEVEL: i32 = 9;
/// The zstd level of the server's answers (to a station that asks for zstd; gzip to
/// others). The server answers many stations at once, so its level is chosen by the memory
/// a compressor takes: on a 5,000-change pull page, level 8 writes 6 % fewer bytes than 6
/// (what a rural link's catch-up waits for) for hash tables about 3 MiB larger per answer
/// being compressed (in the benchmark the server's peak went from 58–65 to 63–83 MiB); 9
/// writes no fewer than 8, with tables twice as large again.
pub const ANSWER_ZSTD_LEVEL: i32 = 8;
/// Whether a refusal of one change is for good: the change itself is at fault (sending it
/// again changes nothing), so it is set aside and the others go on. The station's sync and
/// the server's bundle import share this one list.
pub fn refused_for_good(code: &str) -> bool {
    matches!(
        code,
        "bad_change" | "out_of_scope" | "unauthorised_grant" | "clock_ahead"
    )
}

/// Most changes one push may carry; larger batches are refused (413).
pub const MAX_BATCH: usize = 1_000;
/// Largest request body the server reads.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The header every station request carries its program's version in: the server keeps it
/// (`binhyen-server station list`) and refuses a station too old for its protocol.
pub const VERSION_HEADER: &str = "x-binhyen-version";
/// On a push: how many of the station's changes wait behind the batch.
pub const REMAINING_HEADER: &str = "x-binhyen-remaining";
/// The oldest station version this protocol serves (the server's default; a province may
/// raise it with `serve --min-station-version`).
pub const MIN_STATION_VERSION: &str = "0.1.0";
/// The largest piece of a release package one request downloads: about 16 s at
/// 256 kbit/s, so that a link that drops loses little.
pub const RELEASE_PIECE_BYTES: u32 = 512 * 1024;

/// A release the server offers this station (`GET /release`): the package is downloaded in
/// pieces (`GET /release/{version}/piece?offset=&len=`) and checked against `signature`
/// with the release key the station was built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseOffer {
    pub version: String,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    /// The minisign signature file's text.
    pub signature: String,
}

/// What an installer carries to a station: how to reach the server, and a one-time token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provisioning {
    pub version: u32,
    pub server_url: String,
    pub unit_code: String,
    pub unit_name: String,
    pub device_no: u32,
    pub token: String,
    /// The server's certificate authority (PEM), pinned by the station: the only one it
    /// trusts for this server. None for a loopback server running plain HTTP.
    #[serde(default)]
    pub server_ca_pem: Option<String>,
    /// SHA-256 of the authority's certificate (hex), for reading out over the phone.
    #[serde(default)]
    pub server_ca_sha256: Option<String>,
    /// The station's first account (usually its chief), when the province names it: the
    /// installer enrols with this username and a password the chief then changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_officer: Option<ProvisionedOfficer>,
    /// The station's id at the server, and the key (hex) its offline bundles are sealed
    /// with from the start: a station set up with no network can enrol by a bundle carried
    /// on the stick. None in files from before offline enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_key: Option<String>,
}

/// The first account named in a provisioning file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionedOfficer {
    pub username: String,
    pub full_name: String,
}

/// One record of a scope, as the server holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeRecord {
    pub entity: String,
    pub entity_id: String,
    pub data: Map<String, Value>,
    pub versions: Map<String, Value>,
    pub deleted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordsResponse {
    pub records: Vec<ScopeRecord>,
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token: String,
    /// The secret the station chose (64 hex digits), where it first enrolled by an offline
    /// bundle (see `bundle::PushBundle::enrol`): the server keeps it instead of making one,
    /// so that a bundle's enrolment and a later online one agree. None: the server makes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Whether a secret a station chose is one: 64 lowercase hex digits (256 random bits).
pub fn is_station_secret(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub station_id: String,
    pub secret: String,
    pub unit_code: String,
    pub device_no: u32,
}

/// One change on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireChange {
    pub change_id: String,
    pub hlc: String,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
    /// The unit whose record this is (the scope it travels in).
    pub unit_code: String,
    pub data: Map<String, Value>,
    #[serde(default)]
    pub base: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub batch_id: String,
    pub changes: Vec<WireChange>,
    /// How many of the station's changes wait behind this batch, for the province's station
    /// list. It travels as the [`REMAINING_HEADER`] header, not in the body (whose fields an
    /// older server checks strictly); absent from older stations.
    #[serde(skip)]
    pub remaining: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub conflicts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledChange {
    pub seq: i64,
    pub origin: String,
    pub change: WireChange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub changes: Vec<PulledChange>,
    /// Ask from here next time.
    pub next: i64,
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksumResponse {
    pub checksum: String,
    pub records: u64,
}

/// A station's audit entries the server has not acknowledged, and its head (last number
/// and hash), which must match the server's copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPush {
    pub entries: Vec<binhyen_domain::audit::AuditRecord>,
    pub head_seq: i64,
    pub head_hash: String,
    /// The station's own id, whose genesis hash the chain's first entry hangs on (absent
    /// from a station not yet updated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPushResponse {
    /// The last entry the server holds for this station.
    pub acked_seq: i64,
}

/// The station's recovery code, for the province to keep: read out to the station when
/// every password there is forgotten (`binhyen-server station recovery-code`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryEscrow {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryEscrowResponse {
    /// When the server stored the code (RFC 3339).
    pub stored_at: String,
}

/// The station's unit's identity keys the province anchored, each certified by the server's
/// anchor key (`GET /api/v1/identity-anchors`): a laptop seals new identities only to these
/// (see the store's `identity.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityAnchors {
    /// The anchor key's public half (hex, Ed25519).
    pub anchor: String,
    /// The release key's signatures of the anchor, one per province it serves (see
    /// `release::verify_anchor`): a station trusts the anchor only with one for its own.
    #[serde(default)]
    pub signatures: Vec<String>,
    pub unit_code: String,
    pub keys: Vec<AnchoredKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchoredKey {
    pub key_id: String,
    /// The identity key's public half and its grant authority (hex), as certified.
    pub public: String,
    pub authority: String,
    /// The anchor's signature over the unit and these (hex).
    pub certificate: String,
}

/// Every refusal: a stable code and a Vietnamese message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}
