//! The HTTP API (see `binhyen_protocol::wire`). Handlers parse and authenticate, then hand
//! the work to the storage backend on a blocking thread. Every refusal is JSON with a code
//! and a Vietnamese message, and nothing of a refused request is applied.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use chrono::Utc;
use rand::RngCore;
use serde::Deserialize;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;
use tower_http::CompressionLevel;

use binhyen_protocol::wire::{
    ApiError, AuditPush, AuditPushResponse, ChecksumResponse, EnrollRequest, EnrollResponse,
    PullResponse, PushRequest, PushResponse, RecordsResponse, RecoveryEscrow,
    RecoveryEscrowResponse, MAX_BATCH, MAX_BODY_BYTES,
};

use crate::db::{sha256_hex, Backend, Code, DbError, StationRow};

pub type Shared = Arc<dyn Backend>;

pub struct Failure(StatusCode, ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

fn fail(status: u16, code: &str, message: impl Into<String>) -> Failure {
    Failure(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        ApiError {
            code: code.into(),
            message: message.into(),
        },
    )
}

/// The HTTP status each refusal travels with: decided here, and only here.
pub fn status_of(code: Code) -> u16 {
    match code {
        Code::BadChange | Code::BadCsv | Code::BadHash => 400,
        Code::BadToken => 401,
        Code::OutOfScope | Code::Revoked | Code::UnauthorisedGrant => 403,
        Code::UnknownAccount | Code::UnknownAttachment | Code::UnknownUnit => 404,
        Code::AuditBroken
        | Code::AuditRewritten
        | Code::DeviceTaken
        | Code::LastManager
        | Code::ReleaseExists
        | Code::TokenUsed
        | Code::UsernameTaken => 409,
        Code::TooLarge => 413,
        Code::BadFormat
        | Code::BadRole
        | Code::BadUsername
        | Code::ClockAhead
        | Code::NameRequired
        | Code::NotSealed => 422,
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Failure {
        match e {
            DbError::Refused(r) => fail(status_of(r.code), r.code.as_str(), r.message),
            // Text PostgreSQL cannot hold (a NUL character), wherever in a request: the
            // request's fault, refused whole (the transaction it was in rolled back).
            DbError::Postgres(e)
                if e.code().is_some_and(|c| {
                    *c == ::postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE
                        || *c == ::postgres::error::SqlState::UNTRANSLATABLE_CHARACTER
                }) =>
            {
                fail(
                    400,
                    "bad_text",
                    "Yêu cầu chứa ký tự không hợp lệ (ký tự NUL); không có gì được ghi.",
                )
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                fail(
                    500,
                    "server_error",
                    "Máy chủ gặp lỗi lưu trữ; không có gì được ghi. Hãy thử lại sau.",
                )
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| fail(500, "server_error", "Máy chủ gặp lỗi; hãy thử lại sau."))?
        .map_err(Failure::from)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        fail(
            400,
            "bad_json",
            format!("Yêu cầu không phải JSON hợp lệ: {e}"),
        )
    })
}

/// A query string read as `T`, or the API's own refusal (400 `bad_query`, JSON like every
/// other) when it is not one: never the framework's plain-text answer.
struct Params<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Params(q))
            .map_err(|e| {
                fail(
                    400,
                    "bad_query",
                    format!("Tham số của yêu cầu không hợp lệ: {}", e.body_text()),
                )
            })
    }
}

/// A path's parameter, likewise refused in the API's own words.
struct Segment<T>(T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Segment<T>
{
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Failure> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Segment(p))
            .map_err(|e| {
                fail(
                    400,
                    "bad_path",
                    format!("Đường dẫn của yêu cầu không hợp lệ: {}", e.body_text()),
                )
            })
    }
}

/// Authenticates `Authorization: Bearer STATION_ID.SECRET`.
async fn station(db: &Shared, headers: &HeaderMap) -> Result<StationRow, Failure> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| fail(401, "unauthenticated", "Thiếu thông tin xác thực của trạm."))?;
    let (id, secret) = header.split_once('.').ok_or_else(|| {
        fail(
            401,
            "unauthenticated",
            "Thông tin xác thực của trạm không đúng dạng.",
        )
    })?;
    let (db2, id, hash) = (db.clone(), id.to_string(), sha256_hex(secret));
    let row = blocking(move || db2.station_by_secret(&id, &hash)).await?;
    let row = row.ok_or_else(|| {
        fail(
            401,
            "unauthenticated",
            "Thông tin xác thực của trạm không đúng.",
        )
    })?;
    if row.revoked_at.is_some() {
        return Err(fail(
            403,
            "revoked",
            "Trạm này đã bị thu hồi; liên hệ Công an tỉnh.",
        ));
    }
    Ok(row)
}

/// The station a request was authenticated as (by [`gate`], before its body was read).
#[derive(Clone)]
pub struct Authed(pub StationRow);

/// The version the station's program reported (absent from stations older than version
/// reporting, which speak this same protocol).
#[derive(Clone)]
pub struct Reported(pub Option<String>);

fn station_version(headers: &HeaderMap) -> Option<String> {
    headers
        .get(binhyen_protocol::wire::VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().chars().take(40).collect::<String>())
        .filter(|v| !v.is_empty())
}

/// Requests one station may have in flight at once: a sync sends one at a time (uploads and
/// downloads of files beside it); more is a fault or an attack, refused at once.
const PER_STATION: usize = 4;
/// Full checksum scans (each reads the station's whole scope) run at most this many at once
/// across the server, one per station.
const FULL_SCANS: usize = 2;
/// Station requests at work at once across the server (pushes take their turn on the
/// database anyway; two cores make no more of more).
const WORKING: usize = 16;
/// How long a request waits for its turn before it is told the server is busy (503): less
/// than the two minutes a station waits for an answer.
const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a request may take, from its headers to its answer: a stations' client gives up
/// after two minutes; a request still open long after is not a station waiting.
const REQUEST_TIME: std::time::Duration = std::time::Duration::from_secs(300);

/// What bounds the work done for each station.
#[derive(Default)]
pub struct Limits {
    in_flight: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
    scanning: std::sync::Mutex<std::collections::HashSet<String>>,
    full_scans: Option<Arc<tokio::sync::Semaphore>>,
    /// Requests at work at once across the server (their bodies read, their answers made):
    /// the others wait their turn holding only their connection, so that the server's
    /// memory does not grow with the number of stations syncing at once.
    working: Option<Arc<tokio::sync::Semaphore>>,
    /// The oldest station version served (see `wire::MIN_STATION_VERSION`).
    min_version: String,
}

impl Limits {
    fn new(min_version: &str) -> Limits {
        Limits {
            full_scans: Some(Arc::new(tokio::sync::Semaphore::new(FULL_SCANS))),
            working: Some(Arc::new(tokio::sync::Semaphore::new(WORKING))),
            min_version: min_version.to_string(),
            ..Limits::default()
        }
    }

    /// A place for one more request of `station`, or none if it has too many in flight.
    fn enter(&self, station: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(station.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_STATION)))
            .clone();
        semaphore.try_acquire_owned().ok()
    }
}

/// Which requests need a station: the whole API but enrolment (which carries its one-time
/// token in its body).
fn needs_station(path: &str) -> bool {
    path.starts_with("/api/v1/") && path != "/api/v1/enroll"
}

/// Authenticates every request that needs a station from its headers alone, before its body
/// is read or decompressed: a stranger's request costs one lookup and is refused at once. It
/// then bounds the station's requests in flight and their time.
async fn gate(
    State((db, limits)): State<(Shared, Arc<Limits>)>,
    mut req: Request,
    next: Next,
) -> Response {
    if !needs_station(req.uri().path()) {
        return next.run(req).await;
    }
    let st = match station(&db, req.headers()).await {
        Ok(st) => st,
        Err(f) => return f.into_response(),
    };
    let version = station_version(req.headers());
    // A station too old to sync may still fetch the update that makes it new enough.
    let updating = req.uri().path().starts_with("/api/v1/release");
    if let Some(v) = version.as_ref().filter(|_| !updating) {
        if binhyen_protocol::release::older(v, &limits.min_version) {
            tracing::warn!(station = %st.id, version = %v, "station too old for this server");
            return fail(
                426,
                "update_required",
                format!(
                    "Bình Yên trên máy này (bản {v}) đã quá cũ để đồng bộ với máy chủ tỉnh (cần từ bản {}). Hãy cập nhật: Cài đặt › Cập nhật từ USB, hoặc nhờ Công an tỉnh gửi bản cập nhật. Dữ liệu vẫn an toàn trên máy.",
                    limits.min_version
                ),
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(Reported(version));
    let Some(permit) = limits.enter(&st.id) else {
        tracing::warn!(station = %st.id, "too many requests in flight");
        return fail(
            429,
            "too_many_requests",
            "Trạm đang gửi quá nhiều yêu cầu cùng lúc; hãy đợi các yêu cầu trước xong.",
        )
        .into_response();
    };
    req.extensions_mut().insert(Authed(st));
    req.extensions_mut().insert(limits.clone());
    // A turn among the requests at work (not for files, which a slow link may take
    // minutes to carry): waited for at most TURN_WAIT, less than a station waits.
    let turn = match &limits.working {
        Some(w) if !req.uri().path().starts_with("/api/v1/attachments/") => {
            match tokio::time::timeout(TURN_WAIT, w.clone().acquire_owned()).await {
                Ok(Ok(turn)) => Some(turn),
                _ => {
                    tracing::warn!("the server is busy: a request waited too long for its turn");
                    return fail(
                        503,
                        "busy",
                        "Máy chủ tỉnh đang bận; chưa có gì của yêu cầu này được ghi. Hãy đồng bộ lại sau ít phút.",
                    )
                    .into_response();
                }
            }
        }
        _ => None,
    };
    let answer = tokio::time::timeout(REQUEST_TIME, next.run(req)).await;
    drop(turn);
    drop(permit);
    answer.unwrap_or_else(|_| {
        fail(
            408,
            "request_timeout",
            "Yêu cầu kéo dài quá lâu nên máy chủ đã ngừng chờ. Hãy đồng bộ lại: những gì đã được ghi sẽ không bị ghi hai lần.",
        )
        .into_response()
    })
}

/// Whether the server can serve: the database answers (a question it asks each scrape of
/// the metrics too). 503 with the reason otherwise.
async fn healthz(State(db): State<Shared>) -> Response {
    // One lookup by key (cheap, unauthenticated as it is), bounded in time.
    let asked = tokio::task::spawn_blocking(move || db.meta_get("checksum_sums"));
    match tokio::time::timeout(std::time::Duration::from_secs(5), asked).await {
        Ok(Ok(Ok(_))) => "ok".into_response(),
        Err(_) => fail(
            503,
            "database_unavailable",
            "Cơ sở dữ liệu của máy chủ không trả lời kịp; máy chủ tạm không phục vụ được.",
        )
        .into_response(),
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "health: the database did not answer");
            fail(
                503,
                "database_unavailable",
                "Cơ sở dữ liệu của máy chủ không trả lời; máy chủ tạm không phục vụ được.",
            )
            .into_response()
        }
        Ok(Err(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn openapi() -> impl IntoResponse {
    (
        [("content-type", "application/json")],
        include_str!("openapi.json"),
    )
}

async fn enroll(State(db): State<Shared>, body: Bytes) -> Result<Json<EnrollResponse>, Failure> {
    let req: EnrollRequest = parse_json(&body)?;
    // A station that exported an enrolment bundle before reaching the server chose its
    // secret then; the server keeps it, so that both ways agree.
    let secret = match req.secret {
        Some(s) if binhyen_protocol::wire::is_station_secret(&s) => s,
        Some(_) => {
            return Err(fail(
                400,
                "bad_request",
                "Khóa bí mật của trạm không hợp lệ (cần 64 chữ số hệ 16).",
            ))
        }
        None => {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            hex::encode(secret)
        }
    };
    let (token_hash, secret_hash) = (sha256_hex(&req.token), sha256_hex(&secret));
    let bundle_key = hex::encode(binhyen_protocol::bundle::bundle_key(&secret));
    let row = blocking(move || db.enroll(&token_hash, &secret_hash, &bundle_key, None, Utc::now()))
        .await?;
    tracing::info!(station = %row.id, unit = %row.unit_code, "station enrolled");
    Ok(Json(EnrollResponse {
        station_id: row.id,
        secret,
        unit_code: row.unit_code,
        device_no: row.device_no,
    }))
}

async fn push(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PushResponse>, Failure> {
    let mut req: PushRequest = parse_json(&body)?;
    req.remaining = headers
        .get(binhyen_protocol::wire::REMAINING_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if req.changes.len() > MAX_BATCH {
        return Err(fail(
            413,
            "batch_too_large",
            format!("Một lần gửi tối đa {MAX_BATCH} thay đổi."),
        ));
    }
    let n = req.changes.len();
    let out = blocking(move || {
        let out = db.push(&st, &req.changes, Utc::now())?;
        if let Some(remaining) = req.remaining {
            // Committed already: what the station said is only for the station list.
            if let Err(e) = db.station_waiting(&st.id, remaining, Utc::now()) {
                tracing::warn!(error = %e, "what the station still holds was not kept");
            }
        }
        Ok(out)
    })
    .await?;
    tracing::info!(
        changes = n,
        accepted = out.accepted,
        duplicates = out.duplicates,
        "push"
    );
    Ok(Json(PushResponse {
        accepted: out.accepted,
        duplicates: out.duplicates,
        conflicts: out.conflicts,
    }))
}

#[derive(Deserialize)]
struct PullQuery {
    #[serde(default)]
    after: i64,
    limit: Option<u32>,
}

async fn pull(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    Params(q): Params<PullQuery>,
) -> Result<Json<PullResponse>, Failure> {
    let limit = q.limit.unwrap_or(500).clamp(1, 5_000);
    let (changes, next, more) = blocking(move || db.pull(&st, q.after.max(0), limit)).await?;
    Ok(Json(PullResponse {
        changes,
        next,
        more,
    }))
}

#[derive(Deserialize)]
struct ChecksumQuery {
    /// 2: from the running sums (`v2:…`); absent: the first version, by a scan.
    v: Option<u32>,
}

async fn checksum(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    Extension(limits): Extension<Arc<Limits>>,
    Extension(Reported(version)): Extension<Reported>,
    Params(q): Params<ChecksumQuery>,
) -> Result<Json<ChecksumResponse>, Failure> {
    // The checksum closes every sync: the station's version and the time are kept for
    // `station list` (an older station reports no version).
    let (db2, id, version) = (db.clone(), st.id.clone(), version.unwrap_or_default());
    blocking(move || db2.station_seen(&id, &version, Utc::now())).await?;
    let sums = match q.v {
        None | Some(1) => false,
        Some(2) => true,
        Some(v) => {
            return Err(fail(
                400,
                "bad_request",
                format!("Phiên bản tổng kiểm {v} không có; máy chủ biết phiên bản 1 và 2."),
            ))
        }
    };
    if sums {
        let (checksum, records) = blocking(move || db.checksum_sums(&st)).await?;
        return Ok(Json(ChecksumResponse { checksum, records }));
    }
    // The full scan reads the station's whole scope: one at a time per station, and a few
    // at once across the server (the others wait their turn).
    let id = st.id.clone();
    let first = limits
        .scanning
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id.clone());
    if !first {
        return Err(fail(
            429,
            "checksum_busy",
            "Máy chủ đang so tổng kiểm toàn bộ cho trạm này; hãy đợi lần so trước xong.",
        ));
    }
    struct Scanning(Arc<Limits>, String);
    impl Drop for Scanning {
        fn drop(&mut self) {
            self.0
                .scanning
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&self.1);
        }
    }
    let scanning = Scanning(limits.clone(), id);
    let turn = match &limits.full_scans {
        Some(s) => Some(
            s.clone()
                .acquire_owned()
                .await
                .map_err(|_| fail(503, "server_error", "Máy chủ đang dừng; hãy thử lại sau."))?,
        ),
        None => None,
    };
    // The guards go with the work: a request given up on (its time ran out) keeps its
    // place until the scan it started has ended.
    let (checksum, records) = blocking(move || {
        let _held = (scanning, turn);
        db.checksum(&st)
    })
    .await?;
    Ok(Json(ChecksumResponse { checksum, records }))
}

#[derive(Deserialize)]
struct RecordsQuery {
    #[serde(default)]
    after_entity: String,
    #[serde(default)]
    after_id: String,
    limit: Option<u32>,
}

async fn records(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    Params(q): Params<RecordsQuery>,
) -> Result<Json<RecordsResponse>, Failure> {
    let limit = q.limit.unwrap_or(1_000).clamp(1, 5_000);
    let after = (!q.after_entity.is_empty()).then_some((q.after_entity, q.after_id));
    let records = blocking(move || db.records(&st, after, limit)).await?;
    let more = records.len() as u32 == limit;
    Ok(Json(RecordsResponse { records, more }))
}

async fn audit(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    body: Bytes,
) -> Result<Json<AuditPushResponse>, Failure> {
    let req: AuditPush = parse_json(&body)?;
    if req.entries.len() > MAX_BATCH {
        return Err(fail(
            413,
            "batch_too_large",
            format!("Một lần gửi tối đa {MAX_BATCH} mục nhật ký."),
        ));
    }
    let id = st.id.clone();
    let acked_seq = blocking(move || db.push_audit(&st, &req, Utc::now()))
        .await
        .inspect_err(|f| {
            tracing::warn!(station = %id, code = %f.1.code, "audit chain refused");
        })?;
    Ok(Json(AuditPushResponse { acked_seq }))
}

/// Whether `code` has the form stations make (five groups of five Crockford base32
/// characters).
fn recovery_code_ok(code: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let groups: Vec<&str> = code.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .all(|g| g.len() == 5 && g.chars().all(|c| ALPHABET.contains(c)))
}

async fn recovery(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    body: Bytes,
) -> Result<Json<RecoveryEscrowResponse>, Failure> {
    let req: RecoveryEscrow = parse_json(&body)?;
    if !recovery_code_ok(&req.code) {
        return Err(fail(
            422,
            "bad_recovery_code",
            "Mã khôi phục không đúng dạng (5 nhóm 5 ký tự).",
        ));
    }
    let now = Utc::now();
    let id = st.id.clone();
    blocking(move || db.set_recovery_code(&st.id, &req.code, now)).await?;
    tracing::info!(station = %id, "recovery code stored");
    Ok(Json(RecoveryEscrowResponse {
        stored_at: now.to_rfc3339(),
    }))
}

/// A station uploads the content of an attachment it recorded (after pushing the record),
/// sealed for its commune.
async fn put_attachment(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    Segment(sha256): Segment<String>,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    let now = Utc::now();
    let (id, size) = (st.id.clone(), body.len());
    blocking(move || crate::db::put_attachment(db.as_ref(), &st, &sha256, &body, now)).await?;
    tracing::info!(station = %id, bytes = size, "attachment content stored");
    Ok(StatusCode::NO_CONTENT)
}

/// The content of an attachment of the station's own unit. A province-level station gets
/// none: photos and scans stay in their commune.
async fn get_attachment(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    Segment(sha256): Segment<String>,
) -> Result<Response, Failure> {
    if !binhyen_domain::attachment::is_content_hash(&sha256) {
        return Err(fail(
            400,
            "bad_hash",
            "Tên tệp đính kèm phải là mã SHA-256 (64 ký tự hex thường).",
        ));
    }
    let unit = st.unit_code.clone();
    let data = blocking(move || db.attachment(&unit, &sha256)).await?;
    match data {
        Some(d) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            d,
        )
            .into_response()),
        None => Err(fail(
            404,
            "attachment_not_here",
            "Máy chủ chưa có tệp đính kèm này cho đơn vị của trạm (máy đã đính kèm chưa gửi lên).",
        )),
    }
}

async fn not_found() -> Failure {
    fail(404, "not_found", "Không có địa chỉ này.")
}

/// The station's unit's identity keys the province anchored, each certified (see
/// `crate::anchor`).
async fn identity_anchors(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
) -> Result<Json<binhyen_protocol::wire::IdentityAnchors>, Failure> {
    Ok(Json(
        blocking(move || crate::anchor::for_station(&*db, &st)).await?,
    ))
}

/// A release this station may download: the newest one that goes to it, or none (204).
async fn release_offer(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
) -> Result<Response, Failure> {
    match blocking(move || crate::release::offer_for(&*db, &st)).await? {
        Some(offer) => Ok(Json(offer).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Deserialize)]
struct PieceQuery {
    offset: u64,
    len: Option<u32>,
}

/// A piece of a release's package: a download that drops goes on from where it stopped.
/// Only a release that goes to this station, and is not withdrawn (410), is served.
async fn release_piece(
    State(db): State<Shared>,
    Extension(Authed(st)): Extension<Authed>,
    Segment(version): Segment<String>,
    Params(q): Params<PieceQuery>,
) -> Result<Response, Failure> {
    let len = q
        .len
        .unwrap_or(binhyen_protocol::wire::RELEASE_PIECE_BYTES)
        .clamp(1, binhyen_protocol::wire::RELEASE_PIECE_BYTES);
    let piece = blocking(move || {
        let Some(release) = db.releases()?.into_iter().find(|r| r.version == version) else {
            return Ok(Err(fail(
                404,
                "unknown_release",
                "Máy chủ không có bản cập nhật này.",
            )));
        };
        if release.withdrawn_at.is_some() {
            return Ok(Err(fail(
                410,
                "release_withdrawn",
                format!(
                    "Bản cập nhật {} đã bị Công an tỉnh rút lại; không cài bản này.",
                    release.version
                ),
            )));
        }
        if !crate::release::reaches(&release, &st) {
            return Ok(Err(fail(
                404,
                "unknown_release",
                "Bản cập nhật này chưa dành cho trạm của xã.",
            )));
        }
        if q.offset >= release.size {
            return Ok(Err(fail(
                416,
                "bad_range",
                "Vị trí tải vượt quá độ dài gói cập nhật.",
            )));
        }
        Ok(Ok(db
            .release_piece(&release.version, q.offset, len)?
            .unwrap_or_default()))
    })
    .await??;
    Ok(([("content-type", "application/octet-stream")], piece).into_response())
}

/// The server with the oldest station version it serves by default.
pub fn router(db: Shared) -> Router {
    router_with(db, binhyen_protocol::wire::MIN_STATION_VERSION)
}

/// The server, refusing stations older than `min_station_version` (426 `update_required`).
pub fn router_with(db: Shared, min_station_version: &str) -> Router {
    router_measured(db, min_station_version, Default::default())
}

/// [`router_with`], its requests counted and timed in `metrics`.
pub fn router_measured(
    db: Shared,
    min_station_version: &str,
    metrics: Arc<crate::metrics::Metrics>,
) -> Router {
    let limits = Arc::new(Limits::new(min_station_version));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/enroll", post(enroll))
        .route("/api/v1/push", post(push))
        .route("/api/v1/pull", get(pull))
        .route("/api/v1/checksum", get(checksum))
        .route("/api/v1/records", get(records))
        .route("/api/v1/audit", post(audit))
        .route("/api/v1/recovery", post(recovery))
        .route("/api/v1/identity-anchors", get(identity_anchors))
        .route("/api/v1/release", get(release_offer))
        .route("/api/v1/release/{version}/piece", get(release_piece))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(
            Router::new()
                .route(
                    "/api/v1/attachments/{sha256}",
                    get(get_attachment).put(put_attachment),
                )
                .layer(DefaultBodyLimit::max(
                    binhyen_domain::attachment::sealed::MAX_BYTES + 1024,
                )),
        )
        // zstd to stations (see `ANSWER_ZSTD_LEVEL`), gzip to others.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(
            binhyen_protocol::wire::ANSWER_ZSTD_LEVEL,
        )))
        // Stations compress what they push (zstd; gzip from older ones), which matters on a
        // 256 kbit/s link; the body limit applies to the decompressed bytes.
        .layer(RequestDecompressionLayer::new())
        // Outside the decompression and the body limits: nothing of a request is read
        // before its station is known.
        .layer(axum::middleware::from_fn_with_state(
            (db.clone(), limits),
            gate,
        ))
        .layer(TraceLayer::new_for_http())
        // Outermost: every request counted, refusals at the gate too.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
        .with_state(db)
}
