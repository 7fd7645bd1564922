//! The station's sync engine: enrol with a provisioning file, then push the outbox in
//! batches, pull the scope's changes page by page, and compare checksums. Each step commits
//! locally before the next, so a cut anywhere resumes where it stopped: acknowledged
//! changes are not sent again, applied pages are not applied again.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use binhyen_store::changes::pending;
use binhyen_store::replica::RemoteChange;
use binhyen_store::{InitOptions, Station, StoreError};

use crate::protocol::{
    ApiError, ChecksumResponse, EnrollRequest, EnrollResponse, Provisioning, PullResponse,
    PushRequest, PushResponse, WireChange, API,
};

const PUSH_BATCH: u32 = 500;
const PULL_PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "Không kết nối được máy chủ {url}: {reason}. Dữ liệu vẫn an toàn trên máy; sẽ thử lại."
    )]
    Unreachable { url: String, reason: String },
    #[error("Máy chủ từ chối ({status}): {}", .error.message)]
    Refused { status: u16, error: ApiError },
    #[error("Trạm chưa đăng ký với máy chủ tỉnh: hãy chạy `binhyen enroll TỆP_CẤP_PHÉP`.")]
    NotEnrolled,
    #[error("Tệp cấp phép không hợp lệ: {0}")]
    Provisioning(String),
    #[error("Trả lời của máy chủ không đọc được: {0}")]
    BadResponse(String),
}

impl SyncError {
    pub fn code(&self) -> &str {
        match self {
            SyncError::Store(e) => e.code(),
            SyncError::Unreachable { .. } => "unreachable",
            SyncError::Refused { error, .. } => &error.code,
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::Provisioning(_) => "bad_provisioning",
            SyncError::BadResponse(_) => "bad_response",
        }
    }
}

/// A refusal that sending again will not change: the change itself is at fault.
fn refused_for_good_code(code: &str) -> bool {
    matches!(code, "bad_change" | "out_of_scope")
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
}

struct Client {
    base: String,
    auth: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    fn new(base: &str, auth: Option<String>) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            auth,
            agent: config.into(),
        }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> SyncError {
        SyncError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T, SyncError> {
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        if status >= 400 {
            let error = serde_json::from_slice::<ApiError>(&body).unwrap_or(ApiError {
                code: "http_error".into(),
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
            return Err(SyncError::Refused { status, error });
        }
        serde_json::from_slice(&body).map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, SyncError> {
        let mut req = self.agent.post(format!("{}{API}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send_json(body).map_err(|e| self.unreachable(e))?;
        self.read(resp)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, SyncError> {
        let mut req = self.agent.get(format!("{}{API}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        self.read(resp)
    }
}

/// Enrols this laptop with the provincial server: creates the station in `dir` if there is
/// none (bound to the provisioned unit and laptop number), and stores its credentials in the
/// encrypted database.
pub fn enroll(
    dir: &Path,
    provisioning: &Path,
    passphrase: &str,
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
    let station = if Station::exists(dir) {
        let s = Station::open(dir, passphrase)?;
        if s.info().unit_code != p.unit_code {
            return Err(SyncError::Provisioning(format!(
                "tệp dành cho đơn vị {} nhưng trạm này thuộc {}",
                p.unit_code,
                s.info().unit_code
            )));
        }
        s
    } else {
        let opts = InitOptions {
            unit_code: p.unit_code.clone(),
            passphrase: passphrase.to_string(),
            device_no: p.device_no,
            demo: false,
        };
        Station::init(dir, &opts, now)?
    };
    let client = Client::new(&p.server_url, None);
    let resp: EnrollResponse = client.post(
        "/enroll",
        &EnrollRequest {
            token: p.token.clone(),
        },
    )?;
    station.sync_set("server_url", &p.server_url)?;
    station.sync_set("station_id", &resp.station_id)?;
    station.sync_set("secret", &resp.secret)?;
    station.sync_set("cursor", "0")?;
    station.sync_set("enrolled_at", &now.to_rfc3339())?;
    tracing::info!(station = %resp.station_id, "enrolled");
    Ok(station)
}

/// How the engine reaches the server: HTTP in the product, an in-process link with injected
/// faults in the simulation tests.
pub trait Transport {
    fn push(&mut self, req: &PushRequest) -> Result<PushResponse, SyncError>;
    fn pull(&mut self, after: i64, limit: u32) -> Result<PullResponse, SyncError>;
    fn checksum(&mut self) -> Result<ChecksumResponse, SyncError>;
}

impl Transport for Client {
    fn push(&mut self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.post("/push", req)
    }

    fn pull(&mut self, after: i64, limit: u32) -> Result<PullResponse, SyncError> {
        self.get(&format!("/pull?after={after}&limit={limit}"))
    }

    fn checksum(&mut self) -> Result<ChecksumResponse, SyncError> {
        self.get("/checksum")
    }
}

fn client_for(station: &Station) -> Result<Client, SyncError> {
    let url = station
        .sync_get("server_url")?
        .ok_or(SyncError::NotEnrolled)?;
    let id = station
        .sync_get("station_id")?
        .ok_or(SyncError::NotEnrolled)?;
    let secret = station.sync_get("secret")?.ok_or(SyncError::NotEnrolled)?;
    Ok(Client::new(&url, Some(format!("Bearer {id}.{secret}"))))
}

/// One full sync: push everything pending, pull everything new, compare checksums. The
/// outcome (success time, or the failure's reason) is kept for `binhyen status`.
pub fn sync_once(station: &mut Station, now: DateTime<Utc>) -> Result<SyncReport, SyncError> {
    let result = client_for(station).and_then(|mut client| sync_with(station, &mut client, now));
    match &result {
        Ok(_) => {
            station.sync_set("last_success", &now.to_rfc3339())?;
            station.sync_set("last_error", "")?;
        }
        Err(e) => {
            station.sync_set("last_error", &e.to_string())?;
            station.sync_set("last_error_at", &now.to_rfc3339())?;
        }
    }
    result
}

/// One full sync over any transport (see [`sync_once`] for the bookkeeping around it).
pub fn sync_with(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let unit = station.info().unit_code.clone();
    let mut report = SyncReport::default();
    loop {
        let batch = pending(station.conn(), PUSH_BATCH)?;
        let Some(last) = batch.last() else { break };
        let last_seq = last.seq;
        // The batch id names the batch by its content, so a resend after a cut is the same
        // batch; the server skips changes it already has either way.
        let batch_id = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}-{}", batch[0].change_id, last.change_id).as_bytes(),
        );
        let mut changes: Vec<WireChange> = Vec::with_capacity(batch.len());
        for c in &batch {
            // A change travels in the scope of the record it touches, which for a
            // province station editing a commune's tip is the commune's.
            let record_unit =
                binhyen_store::replica::record_unit(station.conn(), &c.entity, &c.entity_id)?;
            let data_unit = c
                .data
                .get("unit_code")
                .and_then(|u| u.as_str())
                .map(str::to_string);
            changes.push(WireChange {
                change_id: c.change_id.to_string(),
                hlc: c.hlc.clone(),
                entity: c.entity.clone(),
                entity_id: c.entity_id.clone(),
                op: c.op.clone(),
                unit_code: record_unit.or(data_unit).unwrap_or_else(|| unit.clone()),
                data: c.data.as_object().cloned().unwrap_or_default(),
                base: c.base.as_ref().and_then(|b| b.as_object().cloned()),
            });
        }
        let request = PushRequest {
            batch_id: batch_id.to_string(),
            changes,
        };
        match client.push(&request) {
            Ok(resp) => {
                station.mark_acked(last_seq, now)?;
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
    }
    let mut cursor: i64 = station
        .sync_get("cursor")?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    loop {
        let page = client.pull(cursor, PULL_PAGE)?;
        let changes: Vec<RemoteChange> = page
            .changes
            .iter()
            .map(|p| RemoteChange {
                seq: p.seq,
                change_id: p.change.change_id.clone(),
                hlc: p.change.hlc.clone(),
                entity: p.change.entity.clone(),
                entity_id: p.change.entity_id.clone(),
                op: p.change.op.clone(),
                data: p.change.data.clone(),
                base: p.change.base.clone(),
            })
            .collect();
        let applied = station.apply_remote(&changes, now)?;
        report.pulled += applied.applied;
        report.conflicts += applied.conflicts;
        cursor = page.next;
        station.sync_set("cursor", &cursor.to_string())?;
        if !page.more {
            break;
        }
    }
    let server = client.checksum()?;
    let with_identity = binhyen_domain::unit::is_commune_code(&unit);
    let (local, _) = station.checksum(with_identity)?;
    report.checksum_ok = local == server.checksum;
    report.checksum = local;
    if !report.checksum_ok {
        tracing::warn!(local = %report.checksum, server = %server.checksum, "checksum mismatch");
    }
    Ok(report)
}
