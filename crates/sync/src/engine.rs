//! The station's sync engine: enrol with a provisioning file, then push the outbox in
//! batches, pull the scope's changes page by page, and compare checksums. Each step commits
//! locally before the next, so a cut anywhere resumes where it stopped: acknowledged
//! changes are not sent again, applied pages are not applied again.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use binhyen_domain::access::Role;
use binhyen_store::changes::pending;
use binhyen_store::replica::RemoteChange;
use binhyen_store::{Credentials, FirstOfficer, InitOptions, Station, StoreError};

use binhyen_store::changes::Change;
use binhyen_store::replica::ServerRecord;

use binhyen_protocol::wire::{
    ApiError, AuditPush, AuditPushResponse, ChecksumResponse, EnrollRequest, EnrollResponse,
    Provisioning, PullResponse, PushRequest, PushResponse, RecordsResponse, RecoveryEscrow,
    RecoveryEscrowResponse, WireChange, API,
};

const PULL_PAGE: u32 = 250;

/// Batch sizes that follow the link: a first batch small enough to cross a 256 kbit/s link
/// in a few seconds (so a cut loses little), doubled while round trips stay short (so a
/// fast link is not held back by round trips and commits), halved when they grow long.
struct Pace {
    size: u32,
    max: u32,
}

impl Pace {
    const START: u32 = 250;
    const MIN: u32 = 50;

    fn new(max: u32) -> Pace {
        Pace {
            size: Pace::START,
            max,
        }
    }

    fn after(&mut self, took: Duration) {
        if took < Duration::from_millis(1_500) {
            self.size = (self.size * 2).min(self.max);
        } else if took > Duration::from_secs(8) {
            self.size = (self.size / 2).max(Pace::MIN);
        }
    }
}
const RECORDS_PAGE: u32 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "Không kết nối được máy chủ {url}: {reason}. Dữ liệu vẫn an toàn trên máy; sẽ thử lại."
    )]
    Unreachable { url: String, reason: String },
    #[error("Máy chủ {url} không xuất trình đúng chứng chỉ đã ghim trong tệp cấp phép ({reason}). Có thể đã kết nối nhầm máy chủ hoặc bị giả mạo; không có dữ liệu nào được gửi. Hãy báo Công an tỉnh.")]
    Untrusted { url: String, reason: String },
    #[error("Máy chủ từ chối ({status}): {}", .error.message)]
    Refused { status: u16, error: ApiError },
    #[error("Trạm chưa đăng ký với máy chủ tỉnh: hãy chạy `binhyen enroll TỆP_CẤP_PHÉP`.")]
    NotEnrolled,
    #[error("Tệp cấp phép không hợp lệ: {0}")]
    Provisioning(String),
    #[error("Đây là trạm dùng thử với dữ liệu mẫu: không bao giờ được đăng ký với máy chủ tỉnh, để dữ liệu mẫu không lẫn vào dữ liệu thật. Hãy thiết lập trạm thật từ tệp cấp phép trên một thư mục dữ liệu mới.")]
    DemoStation,
    #[error("Trả lời của máy chủ không đọc được: {0}")]
    BadResponse(String),
    #[error("{0}")]
    Bundle(#[from] binhyen_protocol::bundle::BundleError),
}

impl SyncError {
    pub fn code(&self) -> &str {
        match self {
            SyncError::Store(e) => e.code(),
            SyncError::Unreachable { .. } => "unreachable",
            SyncError::Untrusted { .. } => "untrusted_server",
            SyncError::Refused { error, .. } => &error.code,
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::Provisioning(_) => "bad_provisioning",
            SyncError::DemoStation => "demo_station",
            SyncError::BadResponse(_) => "bad_response",
            SyncError::Bundle(e) => e.code(),
        }
    }
}

/// A refusal that sending again will not change: the change itself is at fault.
fn refused_for_good_code(code: &str) -> bool {
    binhyen_protocol::wire::refused_for_good(code)
}

fn refused_for_good(e: &SyncError) -> bool {
    matches!(e, SyncError::Refused { error, .. } if refused_for_good_code(&error.code))
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub pushed: usize,
    /// Changes the server refused for good, now set aside (see `binhyen status`).
    pub rejected: usize,
    pub pulled: usize,
    pub conflicts: usize,
    pub checksum_ok: bool,
    pub checksum: String,
    /// Records put right after a checksum mismatch (sent again, or taken from the server).
    pub repaired: usize,
    /// Attachments' content sent to the server, and received from it.
    pub files_sent: usize,
    pub files_received: usize,
    /// Files that wait on this laptop for the commune's identity key: received sealed while
    /// the signed-in officer holds no key, or attached here while the commune has no key to
    /// seal them with (the chief's next sync makes one).
    pub files_waiting: usize,
}

impl SyncReport {
    /// Adds a further exchange of the same sync (the checksum is compared after the last).
    fn add(&mut self, again: SyncReport) {
        self.pushed += again.pushed;
        self.rejected += again.rejected;
        self.pulled += again.pulled;
        self.conflicts += again.conflicts;
    }
}

struct Client {
    base: String,
    auth: Option<String>,
    agent: ureq::Agent,
    /// Set once the server has refused a zstd body (415: a server not yet updated, which
    /// reads gzip only); this client sends gzip from then on.
    gzip_only: std::sync::atomic::AtomicBool,
}

impl Client {
    /// A client for `base`. Over HTTPS it trusts only the pinned authority `ca_pem` (from the
    /// provisioning file), never the system's list; plain HTTP only to this machine.
    fn new(base: &str, auth: Option<String>, ca_pem: Option<&str>) -> Result<Client, SyncError> {
        let base = base.trim_end_matches('/').to_string();
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_connect(Some(Duration::from_secs(20)))
            // zstd where the server has it (decoded in `raw`), gzip from an older one.
            .accept_encoding("zstd, gzip;q=0.5")
            .http_status_as_error(false);
        if base.starts_with("https://") {
            let pem = ca_pem.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
                SyncError::Provisioning(
                    "thiếu chứng chỉ của máy chủ tỉnh (server_ca_pem) để ghim; hãy xin tệp cấp phép mới".into(),
                )
            })?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem.as_bytes())
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(SyncError::Provisioning(
                    "chứng chỉ của máy chủ tỉnh (server_ca_pem) không đọc được".into(),
                ));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                    .build(),
            );
        } else if base.starts_with("http://") {
            if !binhyen_protocol::is_loopback_url(&base) {
                return Err(SyncError::Provisioning(format!(
                    "máy chủ {base} phải dùng HTTPS; HTTP thường chỉ được dùng trên chính máy này"
                )));
            }
        } else {
            return Err(SyncError::Provisioning(format!(
                "địa chỉ máy chủ {base:?} phải bắt đầu bằng https://"
            )));
        }
        Ok(Client {
            base,
            auth,
            agent: config.build().into(),
            gzip_only: Default::default(),
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> SyncError {
        let reason = e.to_string();
        // A certificate that does not chain to the pinned authority is not a network
        // hiccup to retry quietly: it is named for what it is.
        if reason.contains("rustls")
            || reason.contains("certificate")
            || reason.contains("Certificate")
        {
            return SyncError::Untrusted {
                url: self.base.clone(),
                reason,
            };
        }
        SyncError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T, SyncError> {
        let body = self.raw(resp)?;
        serde_json::from_slice(&body).map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    /// A response's body, or the server's refusal.
    fn raw(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<Vec<u8>, SyncError> {
        const LIMIT: u64 = 64 * 1024 * 1024;
        let status = resp.status().as_u16();
        let zstd = resp
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd"));
        let mut body = resp
            .body_mut()
            .with_config()
            .limit(LIMIT)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        // ureq decodes gzip itself; zstd is decoded here, to the same limit.
        if zstd {
            let mut plain = Vec::with_capacity(body.len() * 8);
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| SyncError::BadResponse(e.to_string()))?;
            std::io::Read::read_to_end(&mut std::io::Read::take(decoder, LIMIT + 1), &mut plain)
                .map_err(|e| SyncError::BadResponse(e.to_string()))?;
            if plain.len() as u64 > LIMIT {
                return Err(SyncError::BadResponse(
                    "trả lời của máy chủ quá lớn sau khi giải nén".into(),
                ));
            }
            body = plain;
        }
        if status >= 400 {
            let error = serde_json::from_slice::<ApiError>(&body).unwrap_or(ApiError {
                code: "http_error".into(),
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
            return Err(SyncError::Refused { status, error });
        }
        Ok(body)
    }

    fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, SyncError> {
        self.post_encoded(path, &encode(body)?)
    }

    /// POSTs a body [`encode`]d already. A server not yet updated refuses zstd (415): the
    /// same body goes again in gzip, and so does every later one of this client.
    fn post_encoded<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        bytes: &[u8],
    ) -> Result<T, SyncError> {
        use std::sync::atomic::Ordering;
        let send = |encoding: &str, body: &[u8]| {
            let req = self
                .agent
                .post(format!("{}{API}{path}", self.base))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", encoding);
            self.authorized(req)
                .send(body)
                .map_err(|e| self.unreachable(e))
        };
        if !self.gzip_only.load(Ordering::Relaxed) {
            let resp = send("zstd", bytes)?;
            if resp.status() != ureq::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
                return self.read(resp);
            }
            tracing::info!("the server reads no zstd (not yet updated): sending gzip");
            self.gzip_only.store(true, Ordering::Relaxed);
        }
        let zipped = zstd::stream::decode_all(bytes)
            .and_then(|json| binhyen_protocol::bundle::gzip(&json))
            .map_err(|e| SyncError::BadResponse(e.to_string()))?;
        self.read(send("gzip", &zipped)?)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, SyncError> {
        serde_json::from_slice(&self.get_raw(path)?)
            .map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    /// A GET's body as it came, or the server's refusal.
    fn get_raw(&self, path: &str) -> Result<Vec<u8>, SyncError> {
        let req = self.authorized(self.agent.get(format!("{}{API}{path}", self.base)));
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        self.raw(resp)
    }

    /// The station's credentials on a request (none while enrolling).
    fn authorized<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }
}

/// Enrols this laptop with the provincial server: creates the station in `dir` if there is
/// none (bound to the provisioned unit and laptop number), and stores its credentials in the
/// encrypted database.
pub fn enroll(
    dir: &Path,
    provisioning: &Path,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<Station, SyncError> {
    let text = std::fs::read_to_string(provisioning)
        .map_err(|e| SyncError::Provisioning(format!("{}: {e}", provisioning.display())))?;
    let p: Provisioning =
        serde_json::from_str(&text).map_err(|e| SyncError::Provisioning(e.to_string()))?;
    if p.version != 1 {
        return Err(SyncError::Provisioning(format!(
            "phiên bản {} chưa được hỗ trợ",
            p.version
        )));
    }
    check_ca_fingerprint(&p)?;
    let station = if Station::exists(dir) {
        // A new provisioning file is also how the province lifts a revoked station's lock.
        let s = Station::open_revoked(dir, credentials)?;
        if s.info().demo {
            return Err(SyncError::DemoStation);
        }
        if s.info().unit_code != p.unit_code {
            return Err(SyncError::Provisioning(format!(
                "tệp dành cho đơn vị {} nhưng trạm này thuộc {}",
                p.unit_code,
                s.info().unit_code
            )));
        }
        if s.info().device_no != p.device_no {
            return Err(SyncError::Provisioning(format!(
                "tệp dành cho máy số {} nhưng máy này là máy số {} của trạm; hãy xin tệp cấp lại với --device {}",
                p.device_no,
                s.info().device_no,
                s.info().device_no
            )));
        }
        s
    } else {
        let first_officer = match &p.first_officer {
            Some(o)
                if !credentials.username.is_empty()
                    && credentials.username != o.username.trim().to_lowercase() =>
            {
                return Err(SyncError::Provisioning(format!(
                    "tệp cấp phép dành cho tài khoản \"{}\" ({}), không phải \"{}\"",
                    o.username, o.full_name, credentials.username
                )))
            }
            Some(o) => FirstOfficer {
                username: o.username.clone(),
                full_name: o.full_name.clone(),
                password: credentials.password.to_string(),
                role: Role::Chief,
            },
            None => FirstOfficer {
                username: credentials.username.clone(),
                full_name: credentials.username.clone(),
                password: credentials.password.to_string(),
                role: Role::Chief,
            },
        };
        let opts = InitOptions {
            unit_code: p.unit_code.clone(),
            first_officer,
            device_no: p.device_no,
            demo: false,
        };
        Station::init(dir, &opts, now)?
    };
    let client = Client::new(&p.server_url, None, p.server_ca_pem.as_deref())?;
    let resp: EnrollResponse = client.post(
        "/enroll",
        &EnrollRequest {
            token: p.token.clone(),
        },
    )?;
    station.sync_set("server_url", &p.server_url)?;
    station.sync_set("server_ca", p.server_ca_pem.as_deref().unwrap_or(""))?;
    station.sync_set("station_id", &resp.station_id)?;
    station.sync_set("secret", &resp.secret)?;
    station.sync_set("cursor", "0")?;
    station.sync_set("audit_acked", "0")?;
    station.sync_set("enrolled_at", &now.to_rfc3339())?;
    station.sync_set("revoked_at", "")?;
    // The server's station record is new: it holds no recovery code yet.
    station.sync_set("recovery_escrowed", "")?;
    tracing::info!(station = %resp.station_id, "enrolled");
    let mut station = station;
    if let Err(e) = client_for(&station).and_then(|mut c| escrow_recovery(&mut station, &mut c)) {
        tracing::warn!(error = %e, "recovery code not handed over yet; the next sync retries");
    }
    Ok(station)
}

/// The SHA-256 (hex) of the first certificate in `pem`: the fingerprint the province reads
/// out over the phone.
pub fn ca_fingerprint(pem: &str) -> Option<String> {
    let first = ureq::tls::parse_pem(pem.as_bytes()).find_map(|item| match item {
        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
        _ => None,
    })?;
    use sha2::Digest;
    Some(hex::encode(sha2::Sha256::digest(first.der())))
}

/// The fingerprint of the authority this station trusts for its server (none for a server
/// on this machine over plain HTTP, or a station not enrolled), for the sync screen and
/// `binhyen status`: the installer compares it with the one the province reads out.
pub fn pinned_fingerprint(station: &Station) -> Result<Option<String>, SyncError> {
    Ok(station
        .sync_get("server_ca")?
        .filter(|p| !p.trim().is_empty())
        .and_then(|pem| ca_fingerprint(&pem)))
}

/// The pinned authority in a provisioning file must be the one its fingerprint names (the
/// fingerprint is what the province reads out over the phone and prints on the round's
/// sheet): a file whose certificate was swapped is refused before anything is sent.
fn check_ca_fingerprint(p: &Provisioning) -> Result<(), SyncError> {
    let Some(pem) = p.server_ca_pem.as_deref().filter(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    let expected: String = p
        .server_ca_sha256
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase();
    if expected.is_empty() {
        return Err(SyncError::Provisioning(
            "thiếu dấu vân tay (server_ca_sha256) của chứng chỉ máy chủ tỉnh; hãy xin tệp cấp phép mới".into(),
        ));
    }
    let Some(actual) = ca_fingerprint(pem) else {
        return Err(SyncError::Provisioning(
            "chứng chỉ của máy chủ tỉnh (server_ca_pem) không đọc được".into(),
        ));
    };
    if actual != expected {
        return Err(SyncError::Provisioning(
            "chứng chỉ máy chủ tỉnh trong tệp không khớp dấu vân tay ghi cùng tệp: tệp đã bị sửa hoặc hỏng; không có gì được gửi đi. Hãy xin Công an tỉnh tệp cấp phép mới.".into(),
        ));
    }
    Ok(())
}

/// How the engine reaches the server: HTTP in the product, an in-process link with injected
/// faults in the simulation tests.
pub trait Transport: Send {
    fn push(&mut self, req: &PushRequest) -> Result<PushResponse, SyncError>;
    /// Sends a push whose body `encoded` holds, made from `req` by `encode` (so that the
    /// work is done while the batch before travels). The HTTP client sends those bytes; a
    /// transport that has no use for them sends `req`.
    fn push_encoded(
        &mut self,
        req: &PushRequest,
        encoded: &[u8],
    ) -> Result<PushResponse, SyncError> {
        let _ = encoded;
        self.push(req)
    }
    fn pull(&mut self, after: i64, limit: u32) -> Result<PullResponse, SyncError>;
    /// The scope's checksum: by a scan of every record when `full` (the first version, which
    /// also puts right the server's running sums), else from its running sums (the second,
    /// `v2:`; a server not yet updated answers with the first).
    fn checksum(&mut self, full: bool) -> Result<ChecksumResponse, SyncError>;
    /// The scope's records after (entity, id), in checksum order.
    fn records(
        &mut self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<RecordsResponse, SyncError>;
    /// Hands the server the audit entries it has not acknowledged.
    fn push_audit(&mut self, req: &AuditPush) -> Result<AuditPushResponse, SyncError>;
    /// Hands the server the station's recovery code to keep.
    fn escrow_recovery(
        &mut self,
        req: &RecoveryEscrow,
    ) -> Result<RecoveryEscrowResponse, SyncError>;
    /// Uploads an attachment's content (its record pushed before).
    fn put_attachment(&mut self, sha256: &str, data: &[u8]) -> Result<(), SyncError>;
    /// An attachment's content, or `None` when the server does not hold it yet.
    fn get_attachment(&mut self, sha256: &str) -> Result<Option<Vec<u8>>, SyncError>;
}

impl Transport for Client {
    fn push(&mut self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.post("/push", req)
    }

    fn push_encoded(
        &mut self,
        _req: &PushRequest,
        encoded: &[u8],
    ) -> Result<PushResponse, SyncError> {
        self.post_encoded("/push", encoded)
    }

    fn pull(&mut self, after: i64, limit: u32) -> Result<PullResponse, SyncError> {
        self.get(&format!("/pull?after={after}&limit={limit}"))
    }

    fn checksum(&mut self, full: bool) -> Result<ChecksumResponse, SyncError> {
        self.get(if full { "/checksum" } else { "/checksum?v=2" })
    }

    fn records(
        &mut self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<RecordsResponse, SyncError> {
        let (e, id) = after.unwrap_or(("", ""));
        self.get(&format!(
            "/records?after_entity={}&after_id={}&limit={limit}",
            query_escape(e),
            query_escape(id)
        ))
    }

    fn push_audit(&mut self, req: &AuditPush) -> Result<AuditPushResponse, SyncError> {
        self.post("/audit", req)
    }

    fn escrow_recovery(
        &mut self,
        req: &RecoveryEscrow,
    ) -> Result<RecoveryEscrowResponse, SyncError> {
        self.post("/recovery", req)
    }

    fn put_attachment(&mut self, sha256: &str, data: &[u8]) -> Result<(), SyncError> {
        let req = self.authorized(
            self.agent
                .put(format!("{}{API}/attachments/{sha256}", self.base))
                .header("Content-Type", "application/octet-stream"),
        );
        let resp = req.send(data).map_err(|e| self.unreachable(e))?;
        self.raw(resp).map(|_| ())
    }

    fn get_attachment(&mut self, sha256: &str) -> Result<Option<Vec<u8>>, SyncError> {
        match self.get_raw(&format!("/attachments/{sha256}")) {
            Ok(body) => Ok(Some(body)),
            Err(SyncError::Refused { error, .. }) if error.code == "attachment_not_here" => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Percent-encodes a query value (ids are ASCII; anything else is escaped byte by byte).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn client_for(station: &Station) -> Result<Client, SyncError> {
    let url = station
        .sync_get("server_url")?
        .ok_or(SyncError::NotEnrolled)?;
    let id = station
        .sync_get("station_id")?
        .ok_or(SyncError::NotEnrolled)?;
    let secret = station.sync_get("secret")?.ok_or(SyncError::NotEnrolled)?;
    let ca = station.sync_get("server_ca")?;
    Client::new(&url, Some(format!("Bearer {id}.{secret}")), ca.as_deref())
}

/// One full sync: push everything pending, pull everything new, compare checksums. The
/// outcome (success time, or the failure's reason) is kept for `binhyen status`.
pub fn sync_once(station: &mut Station, now: DateTime<Utc>) -> Result<SyncReport, SyncError> {
    let result = client_for(station).and_then(|mut client| sync_with(station, &mut client, now));
    let attempt = binhyen_store::replica::SyncAttempt {
        at: now,
        ok: result.is_ok(),
        pushed: result.as_ref().map(|r| r.pushed as u64).unwrap_or(0),
        pulled: result.as_ref().map(|r| r.pulled as u64).unwrap_or(0),
        conflicts: result.as_ref().map(|r| r.conflicts as u64).unwrap_or(0),
        error: result.as_ref().err().map(|e| e.to_string()),
    };
    station.record_sync_attempt(attempt)?;
    match &result {
        Ok(_) => {
            station.sync_set("last_success", &now.to_rfc3339())?;
            station.sync_set("last_error", "")?;
        }
        Err(e) => {
            station.sync_set("last_error", &e.to_string())?;
            station.sync_set("last_error_at", &now.to_rfc3339())?;
            if e.code() == "revoked" {
                // The province revoked this station: lock its data at once. Nothing is
                // deleted; a new provisioning file lifts the lock.
                tracing::warn!("the server says this station is revoked; locking it");
                station.lock_revoked(now)?;
            }
        }
    }
    result
}

/// Own changes as they travel. A change travels in the scope of the record it touches,
/// which for a province station editing a commune's tip is the commune's.
fn wire_changes(station: &Station, batch: &[Change]) -> Result<Vec<WireChange>, SyncError> {
    let unit = &station.info().unit_code;
    let mut changes: Vec<WireChange> = Vec::with_capacity(batch.len());
    for c in batch {
        // A delete keeps the unit of the row it removed; a record that names its unit (a
        // unit never changes) travels in it; any other is looked up through its parent.
        let data_unit = c
            .data
            .get("unit_code")
            .and_then(|u| u.as_str())
            .map(str::to_string);
        let unit_code = match c.unit_code.clone().or(data_unit) {
            Some(u) => u,
            None => binhyen_store::replica::record_unit(station.conn(), &c.entity, &c.entity_id)?
                .unwrap_or_else(|| unit.clone()),
        };
        changes.push(WireChange {
            change_id: c.change_id.to_string(),
            hlc: c.hlc.clone(),
            entity: c.entity.clone(),
            entity_id: c.entity_id.clone(),
            op: c.op.clone(),
            unit_code,
            data: c.data.as_object().cloned().unwrap_or_default(),
            base: c.base.as_ref().and_then(|b| b.as_object().cloned()),
        });
    }
    Ok(changes)
}

/// One full sync over any transport (see [`sync_once`] for the bookkeeping around it).
/// When the checksums differ afterwards, the scope is compared record by record and put
/// right ([`repair`]), then compared again.
pub fn sync_with(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let mut report = exchange(station, client, now)?;
    push_audit(station, client)?;
    escrow_recovery(station, client)?;
    // Keys the pull brought (a new officer, a new laptop of the commune, a recovery slot)
    // are granted the commune's identity key by a session that holds it, and identities
    // that arrived in clear from a laptop not yet updated are sealed. What that wrote, and
    // the recovery slot's key, go out at once.
    station.share_identity_keys(now)?;
    station.seal_clear_identities(now)?;
    // Files to upload are sealed to the commune's key: where the commune has none yet, a
    // chief's sync makes it now, so that its record goes out with this exchange.
    station.key_for_uploads(now)?;
    if binhyen_store::changes::pending_count(station.conn())? > 0 {
        let again = exchange(station, client, now)?;
        report.add(again);
    }
    exchange_files(station, client, &mut report, now)?;
    let full = full_check_due(station, now)?;
    verify(station, client, now, &mut report, full)?;
    if !report.checksum_ok {
        let repaired = repair(station, client, now)?;
        tracing::warn!(repaired, "checksum mismatch: scope repaired");
        let again = exchange(station, client, now)?;
        report.add(again);
        // The repair rewrote records as this laptop held them; if one had been changed
        // outside this program, the running sums did not know its old state. (A full
        // comparison puts them right itself.)
        if !full {
            station.refill_checksum_sums()?;
        }
        verify(station, client, now, &mut report, full)?;
        report.repaired = repaired;
    }
    if full && report.checksum_ok {
        station.sync_set(FULL_CHECK_AT, &now.to_rfc3339())?;
    }
    // Accounts disabled at the province (or on another laptop) lose their password here.
    station.sync_key_slots()?;
    Ok(report)
}

/// Moves attachments' content: uploads what this laptop attached (their records are pushed
/// by now), downloads what the commune's other laptops attached, drops what was removed.
/// Content the server does not hold yet (the laptop that attached it has not synced since)
/// is simply asked for again next time. Each file is committed on its own, so a cut keeps
/// what came through. Content travels sealed to the commune's identity key (the server
/// keeps what it cannot read); what arrives sealed to a key the signed-in officer does not
/// hold waits on the laptop until one who holds it signs in or syncs.
fn exchange_files(
    station: &mut Station,
    client: &mut dyn Transport,
    report: &mut SyncReport,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    station.open_waiting_files()?;
    let mut unsealed = 0;
    for sha in station.attachments_to_upload()? {
        // Sealed for the commune: the server keeps it without reading it.
        let Some(data) = station.content_for_upload(&sha, now)? else {
            unsealed += 1;
            continue;
        };
        match client.put_attachment(&sha, &data) {
            Ok(()) => {
                station.mark_content_uploaded(&sha)?;
                report.files_sent += 1;
            }
            // Its record was set aside by the server: the file waits with it.
            Err(SyncError::Refused { error, .. }) if error.code == "unknown_attachment" => {
                tracing::warn!(%sha, "the server knows no record of this attachment yet");
            }
            Err(e) => return Err(e),
        }
    }
    if unsealed > 0 {
        tracing::warn!(
            files = unsealed,
            "files wait for the commune's identity key before they are uploaded"
        );
    }
    for sha in station.attachments_missing()? {
        if let Some(data) = client.get_attachment(&sha)? {
            station
                .store_downloaded_content(&sha, &data)
                .map_err(|e| SyncError::BadResponse(e.to_string()))?;
            report.files_received += 1;
        }
    }
    station.prune_attachment_content()?;
    report.files_waiting = station.files_waiting_for_key()? + unsealed;
    Ok(())
}

/// Sends the audit entries the server has not acknowledged, with this laptop's head: the
/// server keeps a copy of the chain and refuses one rewritten since it last saw it.
fn push_audit(station: &mut Station, client: &mut dyn Transport) -> Result<(), SyncError> {
    loop {
        let (push, acked) = audit_push(station, 500)?;
        let done = push.entries.len() < 500;
        let resp = client.push_audit(&push)?;
        station.sync_set("audit_acked", &resp.acked_seq.to_string())?;
        if done || resp.acked_seq <= acked {
            return Ok(());
        }
    }
}

/// The audit entries after the last one the server acknowledged (at most `limit`), with
/// this laptop's head and the id its chain starts from; and that acknowledged entry.
fn audit_push(station: &Station, limit: u32) -> Result<(AuditPush, i64), SyncError> {
    let (head_seq, head_hash) = station.audit_head()?.unwrap_or((0, String::new()));
    let acked: i64 = station
        .sync_get("audit_acked")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let entries = station.audit_records_after(acked, limit)?;
    Ok((
        AuditPush {
            entries,
            head_seq,
            head_hash,
            chain: Some(station.info().station_id.to_string()),
        },
        acked,
    ))
}

/// Makes sure the provincial server holds the code that unlocks this station when every
/// password is forgotten: a code is made once (and again after it has been used), wrapped
/// around the database key here, and sent until the server has confirmed it. Until then the
/// same code is sent again, so the server and the key file always end on the same code.
fn escrow_recovery(station: &mut Station, client: &mut dyn Transport) -> Result<(), SyncError> {
    if station.sync_get("recovery_escrowed")?.as_deref() == Some("1") {
        return Ok(());
    }
    let code = match station
        .sync_get("recovery_pending")?
        .filter(|c| !c.is_empty())
    {
        Some(code) => code,
        None => {
            let code = binhyen_store::keys::new_recovery_code();
            // Remembered before the key file changes: a crash in between leaves a code that
            // is sent and wrapped again next time, never a wrapped code nobody knows.
            station.sync_set("recovery_pending", &code)?;
            station.set_recovery_code(&code, Utc::now())?;
            code
        }
    };
    client.escrow_recovery(&RecoveryEscrow { code })?;
    station.sync_set("recovery_escrowed", "1")?;
    station.sync_set("recovery_pending", "")?;
    tracing::info!("recovery code handed to the provincial server");
    Ok(())
}

/// Compares the scope record by record with the server's and puts each difference right:
/// a record this station holds newer (or the server lacks) has its changes sent again; a
/// record the server holds differently, with nothing newer here, is taken from the server.
/// Records with changes still waiting are left to the next push. Returns how many records
/// were put right.
pub fn repair(
    station: &mut Station,
    client: &mut dyn Transport,
    _now: DateTime<Utc>,
) -> Result<usize, SyncError> {
    use std::collections::BTreeMap;
    let with_identity = binhyen_domain::unit::is_commune_code(&station.info().unit_code);
    let mut local: BTreeMap<(String, String), (String, Option<String>)> = station
        .version_rows()?
        .into_iter()
        .filter(|(e, ..)| with_identity || !binhyen_domain::catalog::is_identity(e))
        .map(|(e, id, v, d)| ((e, id), (v, d)))
        .collect();
    let mut repaired = 0;
    let mut after: Option<(String, String)> = None;
    loop {
        let page = client.records(
            after.as_ref().map(|(e, i)| (e.as_str(), i.as_str())),
            RECORDS_PAGE,
        )?;
        for r in &page.records {
            let key = (r.entity.clone(), r.entity_id.clone());
            let same = local.remove(&key).is_some_and(|(v, d)| {
                binhyen_domain::versions::parse(&v) == r.versions && d == r.deleted
            });
            if same || station.has_pending(&r.entity, &r.entity_id)? {
                continue;
            }
            let local_versions =
                binhyen_store::changes::load_versions(station.conn(), &r.entity, &r.entity_id)?;
            let newer_here = local_versions.iter().any(|(field, v)| {
                let theirs = r.versions.get(field).and_then(|t| t.as_str()).unwrap_or("");
                v.as_str().is_some_and(|mine| mine > theirs)
            });
            if newer_here && station.requeue(&r.entity, &r.entity_id)? > 0 {
                repaired += 1;
                continue;
            }
            station.adopt(&ServerRecord {
                entity: r.entity.clone(),
                entity_id: r.entity_id.clone(),
                data: r.data.clone(),
                versions: r.versions.clone(),
                deleted: r.deleted.clone(),
            })?;
            repaired += 1;
        }
        after = page
            .records
            .last()
            .map(|r| (r.entity.clone(), r.entity_id.clone()));
        if !page.more || after.is_none() {
            break;
        }
    }
    // What the server does not hold at all: send it again.
    for (entity_name, id) in local.keys() {
        if !station.has_pending(entity_name, id)? && station.requeue(entity_name, id)? > 0 {
            repaired += 1;
        }
    }
    Ok(repaired)
}

/// Where this station's pull stands: the last server sequence number it applied.
fn pull_cursor(station: &Station) -> Result<i64, SyncError> {
    Ok(station
        .sync_get("cursor")?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// Pulls every page after the cursor; returns how many changes were applied. The next page
/// is fetched (and decompressed and parsed) while this one is applied: the server and the
/// network work while the laptop writes. A page fetched ahead and not applied (the apply
/// failed) is simply dropped: pulling changes nothing on the server. A pull of more than one
/// page also has the pages it committed copied from the WAL into the database file on a
/// second connection while it applies the next ([`Station::checkpointer`]); this connection
/// copies by itself again once the pull ends, however it ends.
fn pull_all(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<usize, SyncError> {
    let mut pace = Pace::new(5_000);
    let (first, took) = fetch(client, pull_cursor(station)?, pace.size)?;
    pace.after(took);
    // Without a second connection the station copies its WAL itself, as for one page.
    let mut checkpointer = first
        .more
        .then(|| {
            station
                .checkpointer()
                .map_err(|e| tracing::warn!(error = %e, "no second connection to copy the WAL"))
                .ok()
        })
        .flatten();
    let pulled = pull_pages(
        station,
        client,
        first,
        &mut pace,
        checkpointer.as_mut(),
        now,
        report,
    );
    let Some(mut checkpointer) = checkpointer else {
        return pulled;
    };
    let copied = checkpointer.checkpoint();
    let resumed = station.resume_checkpoints();
    let pulled = pulled?;
    copied?;
    resumed?;
    Ok(pulled)
}

/// A page of changes and how long it took to come.
fn fetch(
    client: &mut dyn Transport,
    after: i64,
    size: u32,
) -> Result<(PullResponse, Duration), SyncError> {
    let started = std::time::Instant::now();
    client
        .pull(after, size)
        .map(|page| (page, started.elapsed()))
}

/// [`pull_all`]'s pages, from the one in hand.
fn pull_pages(
    station: &mut Station,
    client: &mut dyn Transport,
    mut page: PullResponse,
    pace: &mut Pace,
    mut checkpointer: Option<&mut binhyen_store::Checkpointer>,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<usize, SyncError> {
    let mut applied_total = 0;
    // The page applied last: freeing its thousands of small values is left to the thread
    // that fetches, off the apply thread (the pull's critical path).
    let mut spent: Vec<RemoteChange> = Vec::new();
    loop {
        let (next, more, size) = (page.next, page.more, pace.size);
        // Taken apart, not copied: a page in hand and the one fetched ahead are all the
        // pull holds.
        let changes: Vec<RemoteChange> = page.changes.into_iter().map(RemoteChange::from).collect();
        let freed = std::mem::take(&mut spent);
        let started = std::time::Instant::now();
        let mut applying = Duration::ZERO;
        let (applied, ahead, wal) = std::thread::scope(|s| {
            let ahead = more.then(|| {
                s.spawn(|| {
                    drop(freed);
                    fetch(&mut *client, next, size)
                })
            });
            let copying = checkpointer
                .as_deref_mut()
                .map(|c| s.spawn(move || c.checkpoint()));
            let applied = station.apply_page(&changes, Some(next), now);
            applying = started.elapsed();
            // A checkpoint that fails (or finds nothing to copy) is only a missed chance: the
            // WAL keeps every page until one succeeds.
            let wal = copying
                .and_then(|h| h.join().ok())
                .and_then(Result::ok)
                .map(|(frames, _)| frames);
            (
                applied,
                ahead.map(|h| h.join().expect("the pull thread panicked")),
                wal,
            )
        });
        tracing::debug!(
            changes = changes.len(),
            apply_ms = applying.as_millis() as u64,
            waited_ms = started.elapsed().saturating_sub(applying).as_millis() as u64,
            "pulled page applied"
        );
        spent = changes;
        let applied = applied?;
        // A WAL grown too long is copied whole and emptied now, between two pages (see
        // `Checkpointer`).
        if let (Some(c), Some(frames)) = (checkpointer.as_deref_mut(), wal) {
            if c.too_long(frames) {
                c.shorten()?;
            }
        }
        applied_total += applied.applied;
        report.pulled += applied.applied;
        report.conflicts += applied.conflicts;
        let Some(ahead) = ahead else { break };
        let (following, took) = ahead?;
        pace.after(took);
        page = following;
    }
    Ok(applied_total)
}

/// One batch of own changes ready to go: the changes (for the bookkeeping) and the request.
struct Outgoing {
    batch: Vec<Change>,
    request: PushRequest,
    /// The request as it travels ([`encode`]).
    encoded: Vec<u8>,
}

/// A request body as a station sends it: JSON, serialised whole, then compressed with zstd
/// in one call.
fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, SyncError> {
    let json = serde_json::to_vec(body).map_err(|e| SyncError::BadResponse(e.to_string()))?;
    zstd::bulk::compress(&json, binhyen_protocol::wire::ZSTD_LEVEL)
        .map_err(|e| SyncError::BadResponse(e.to_string()))
}

/// The next `size` pending changes after `after_seq`, as a push request. The batch id names
/// the batch by its content, so a resend after a cut is the same batch; the server skips
/// changes it already has either way.
fn outgoing(station: &Station, after_seq: i64, size: u32) -> Result<Option<Outgoing>, SyncError> {
    let batch = binhyen_store::changes::pending_after(station.conn(), after_seq, size)?;
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(None);
    };
    let batch_id = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{}-{}", first.change_id, last.change_id).as_bytes(),
    );
    let request = PushRequest {
        batch_id: batch_id.to_string(),
        changes: wire_changes(station, &batch)?,
    };
    let encoded = encode(&request)?;
    Ok(Some(Outgoing {
        batch,
        request,
        encoded,
    }))
}

/// Push, then pull. While one batch is on its way (sent, and applied by the server), the
/// batch answered before it is marked acknowledged and the next is read, serialised and
/// compressed here. One batch is in flight at a time and batches are marked in order, each
/// as soon as the next has left, so a cut loses nothing and re-sends only what the server
/// had answered in the moment before it (and skips). The checksum is compared once the
/// whole sync is done ([`verify`]).
fn exchange(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let mut pace = Pace::new(binhyen_protocol::wire::MAX_BATCH as u32);
    let mut next = outgoing(station, 0, pace.size)?;
    // The last change of a batch the server has acknowledged, not yet marked here.
    let mut answered: Option<i64> = None;
    while let Some(Outgoing {
        batch,
        request,
        encoded,
    }) = next.take()
    {
        let last_seq = batch.last().map(|c| c.seq).unwrap_or_default();
        let size = pace.size;
        let (pushed, following) = std::thread::scope(|s| {
            let sending = s.spawn(|| {
                let started = std::time::Instant::now();
                (client.push_encoded(&request, &encoded), started.elapsed())
            });
            let mut meanwhile = || {
                if let Some(seq) = answered.take() {
                    station.mark_acked(seq, now)?;
                }
                outgoing(station, last_seq, size)
            };
            let following = meanwhile();
            (sending.join().expect("the push thread panicked"), following)
        });
        let (pushed, took) = pushed;
        pace.after(took);
        match pushed {
            Ok(resp) => {
                answered = Some(last_seq);
                report.pushed += resp.accepted + resp.duplicates;
            }
            Err(e) if refused_for_good(&e) => {
                // One bad change must not hold back the others: send them one by one and
                // set aside (keep, never delete) each one the server refuses on its own.
                for (c, wire) in batch.iter().zip(request.changes) {
                    let single = PushRequest {
                        batch_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, wire.change_id.as_bytes())
                            .to_string(),
                        changes: vec![wire],
                    };
                    match client.push(&single) {
                        Ok(resp) => {
                            station.mark_acked(c.seq, now)?;
                            report.pushed += resp.accepted + resp.duplicates;
                        }
                        Err(SyncError::Refused { error, .. })
                            if refused_for_good_code(&error.code) =>
                        {
                            tracing::warn!(seq = c.seq, code = %error.code, "change refused by the server; set aside");
                            station.mark_rejected(c.seq, &error.message, now)?;
                            report.rejected += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        // Prepared at the size the pace had before this answer; the one after follows it.
        next = following?;
    }
    if let Some(seq) = answered {
        station.mark_acked(seq, now)?;
    }
    pull_all(station, client, now, &mut report)?;
    Ok(report)
}

/// Compares this station's checksum with the server's (each computed at the same time, on
/// either side). Another station may push between the last page and the checksum: pull
/// again before calling it a mismatch.
/// When the last full comparison succeeded (sync bookkeeping key).
const FULL_CHECK_AT: &str = "full_check_at";

/// How often the checksum is compared by a full scan on both sides rather than from the
/// running sums: the sums follow every write made through this program, the scan also sees a
/// record changed outside it (a file restored from a backup, a hand edit, a damaged disk).
const FULL_CHECK_EVERY: chrono::Duration = chrono::Duration::hours(24);

/// Whether this sync compares the checksum by a full scan (see [`FULL_CHECK_EVERY`]): a day
/// after the last one, or after the enrolment (everything since was written by this program).
fn full_check_due(station: &Station, now: DateTime<Utc>) -> Result<bool, SyncError> {
    let last = match station.sync_get(FULL_CHECK_AT)? {
        Some(t) => Some(t),
        None => station.sync_get("enrolled_at")?,
    };
    let last = last
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    // A clock set back makes the last one look in the future: compare in full then too.
    Ok(last.is_none_or(|t| now - t >= FULL_CHECK_EVERY || t > now))
}

/// This laptop's checksum for a comparison: by a scan when `full` (its running sums put right
/// on the way), else from its running sums.
fn local_checksum(
    station: &mut Station,
    with_identity: bool,
    full: bool,
) -> Result<String, SyncError> {
    if full {
        Ok(station.full_checksum(with_identity)?.0)
    } else {
        Ok(station.checksum_sums(with_identity)?.0)
    }
}

fn verify(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
    report: &mut SyncReport,
    full: bool,
) -> Result<(), SyncError> {
    let with_identity = binhyen_domain::unit::is_commune_code(&station.info().unit_code);
    for attempt in 0..3 {
        let (server, local) = std::thread::scope(|s| {
            let server = s.spawn(|| client.checksum(full));
            let local = local_checksum(station, with_identity, full);
            (server.join().expect("the checksum thread panicked"), local)
        });
        let (server, mut local) = (server?, local?);
        // A server not yet updated answers a comparison of the sums with the first version.
        if !full
            && !server
                .checksum
                .starts_with(binhyen_domain::checksum::V2_PREFIX)
        {
            local = station.checksum(with_identity)?.0;
        }
        report.checksum_ok = local == server.checksum;
        report.checksum = local;
        if report.checksum_ok || attempt == 2 {
            if !report.checksum_ok {
                tracing::warn!(local = %report.checksum, server = %server.checksum, "checksum mismatch");
            }
            break;
        }
        if pull_all(station, client, now, report)? == 0 {
            break;
        }
    }
    Ok(())
}

/// What writing an offline bundle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BundleExport {
    pub bundle_id: String,
    pub changes: usize,
    /// Attachments' content carried (attached here, not yet on the server).
    pub files: usize,
    pub bytes: usize,
}

fn bundle_credentials(station: &Station) -> Result<(String, [u8; 32]), SyncError> {
    let id = station
        .sync_get("station_id")?
        .filter(|s| !s.is_empty())
        .ok_or(SyncError::NotEnrolled)?;
    let secret = station
        .sync_get("secret")?
        .filter(|s| !s.is_empty())
        .ok_or(SyncError::NotEnrolled)?;
    Ok((id, binhyen_protocol::bundle::bundle_key(&secret)))
}

/// Writes every pending change, and where this station's pull stands, into a bundle sealed
/// for the server (`binhyen bundle export`). Nothing is marked sent: the changes stay pending
/// until the server's reply is imported (or an online sync sends them).
pub fn export_bundle(
    station: &mut Station,
    now: DateTime<Utc>,
) -> Result<(Vec<u8>, BundleExport), SyncError> {
    use binhyen_protocol::bundle::{seal, BundleHeader, BundleKind, PushBundle};
    let (station_id, key) = bundle_credentials(station)?;
    // The commune's key the files are sealed with travels in the same bundle.
    station.key_for_uploads(now)?;
    let batch = pending(station.conn(), u32::MAX)?;
    let changes = wire_changes(station, &batch)?;
    let cursor = pull_cursor(station)?;
    let bundle_id = Uuid::new_v4().to_string();
    let header = BundleHeader {
        kind: BundleKind::Push,
        station_id,
        bundle_id: bundle_id.clone(),
        created_at: now.to_rfc3339(),
    };
    let n = changes.len();
    let mut files = Vec::new();
    for sha in station.attachments_to_upload()? {
        // Sealed for the commune, as online.
        if let Some(data) = station.content_for_upload(&sha, now)? {
            files.push(binhyen_protocol::bundle::BundleFile::new(&sha, &data));
        }
    }
    let wanted = station.attachments_missing()?;
    let n_files = files.len();
    let bytes = seal(
        &key,
        &header,
        &PushBundle {
            cursor,
            changes,
            files,
            wanted,
            audit: Some(audit_push(station, u32::MAX)?.0),
        },
    )?;
    let info = BundleExport {
        bundle_id,
        changes: n,
        files: n_files,
        bytes: bytes.len(),
    };
    Ok((bytes, info))
}

/// Applies the server's reply bundle (`binhyen bundle import`): marks what the server holds
/// as sent, sets aside what it refused, applies the scope's changes, and compares the
/// checksum. Importing the same reply twice changes nothing.
pub fn import_reply(
    station: &mut Station,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    use binhyen_protocol::bundle::{open, BundleError, BundleKind, ReplyBundle};
    let (station_id, key) = bundle_credentials(station)?;
    let header = binhyen_protocol::bundle::read_header(bytes)?;
    if header.station_id != station_id {
        return Err(BundleError::Tampered.into());
    }
    let (_, reply): (_, ReplyBundle) = open(&key, bytes, BundleKind::Reply)?;
    let mut report = SyncReport::default();
    for r in &reply.rejected {
        station.mark_rejected_id(&r.change_id, &r.message, now)?;
        report.rejected += 1;
    }
    report.pushed = station.mark_acked_ids(&reply.acked, now)?;
    for page in reply.changes.chunks(PULL_PAGE as usize) {
        let changes: Vec<RemoteChange> = page.iter().cloned().map(RemoteChange::from).collect();
        let applied = station.apply_remote(&changes, now)?;
        report.pulled += applied.applied;
        report.conflicts += applied.conflicts;
    }
    let cursor = pull_cursor(station)?;
    // An older reply imported after a newer sync must not move the cursor back.
    if reply.next > cursor {
        station.sync_set("cursor", &reply.next.to_string())?;
    }
    let with_identity = binhyen_domain::unit::is_commune_code(&station.info().unit_code);
    let (local, _) = station.checksum(with_identity)?;
    report.checksum_ok = local == reply.checksum;
    report.checksum = local;
    // Files: what the server now holds is uploaded; what it sent is stored (each checked
    // against its name), once its record is here.
    for sha in &reply.files_acked {
        station.mark_content_uploaded(sha)?;
    }
    station.open_waiting_files()?;
    for f in &reply.files {
        let data = f
            .bytes()
            .ok_or_else(|| SyncError::BadResponse(format!("tệp {} hỏng trong gói", f.sha256)))?;
        station
            .store_downloaded_content(&f.sha256, &data)
            .map_err(|e| SyncError::BadResponse(e.to_string()))?;
        report.files_received += 1;
    }
    report.files_waiting = station.files_waiting_for_key()?;
    report.files_sent = reply.files_acked.len();
    if let Some(acked) = reply.audit_acked {
        station.sync_set("audit_acked", &acked.to_string())?;
    }
    station.prune_attachment_content()?;
    station.sync_set("last_bundle_import", &now.to_rfc3339())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    /// A provincial server not yet updated: it reads gzip pushes only and refuses zstd with
    /// 415, as its request decompression does. It answers each push with the number of
    /// changes it read, and returns the encodings it was sent.
    fn server_without_zstd(requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut encoding) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if let Some(v) = line.strip_prefix("content-encoding:") {
                        encoding = v.trim().to_string();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.push(encoding.clone());
                let answer = if encoding == "gzip" {
                    let mut json = Vec::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_end(&mut json)
                        .unwrap();
                    let push: PushRequest = serde_json::from_slice(&json).unwrap();
                    let text = format!(
                        r#"{{"accepted":{},"duplicates":0,"conflicts":0}}"#,
                        push.changes.len()
                    );
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    )
                } else {
                    "HTTP/1.1 415 Unsupported Media Type\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                };
                stream.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        (url, handle)
    }

    fn one_change(id: &str) -> PushRequest {
        PushRequest {
            batch_id: format!("batch-{id}"),
            changes: vec![WireChange {
                change_id: id.into(),
                hlc: "001764000000000-00000000-node1".into(),
                entity: "hamlet".into(),
                entity_id: format!("h-{id}"),
                op: "insert".into(),
                unit_code: "24280".into(),
                data: serde_json::json!({"name": "Thôn Một", "kind": "thon", "unit_code": "24280"})
                    .as_object()
                    .cloned()
                    .unwrap(),
                base: None,
            }],
        }
    }

    #[test]
    fn a_server_not_yet_updated_is_sent_gzip() {
        let (url, server) = server_without_zstd(3);
        let mut client = Client::new(&url, Some("Bearer s.t".into()), None).unwrap();
        for id in ["c1", "c2"] {
            let request = one_change(id);
            let encoded = encode(&request).unwrap();
            let answer = client.push_encoded(&request, &encoded).unwrap();
            assert_eq!(answer.accepted, 1);
        }
        // Refused once in zstd, the first push went again in gzip; the second went in gzip.
        assert_eq!(server.join().unwrap(), ["zstd", "gzip", "gzip"]);
    }
}
