//! The HTTP client a station talks to its server with (the pinned authority, zstd or gzip
//! pushes, bounded answers), behind the [`Transport`] trait the engine uses (the server's
//! simulation test drives the engine through its own), and the pacing of batches and pages.

use std::time::Duration;

use serde::Serialize;

use binhyen_protocol::wire::{
    ApiError, AuditPush, AuditPushResponse, ChecksumResponse, IdentityAnchors, PullResponse,
    PushRequest, PushResponse, RecordsResponse, RecoveryEscrow, RecoveryEscrowResponse,
    ReleaseOffer, API,
};
use binhyen_store::Station;

use crate::error::SyncError;

/// A request body as a station sends it: JSON, serialised whole, then compressed with zstd
/// in one call.
pub(crate) fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, SyncError> {
    let json = serde_json::to_vec(body).map_err(|e| SyncError::BadResponse(e.to_string()))?;
    zstd::bulk::compress(&json, binhyen_protocol::wire::ZSTD_LEVEL)
        .map_err(|e| SyncError::BadResponse(e.to_string()))
}

/// Batch sizes that follow the link: a first batch small enough to cross a 256 kbit/s link
/// in a few seconds (so a cut loses little), doubled while round trips stay short (so a
/// fast link is not held back by round trips and commits), halved when they grow long.
pub(crate) struct Pace {
    pub(crate) size: u32,
    max: u32,
}

impl Pace {
    const START: u32 = 250;
    const MIN: u32 = 50;

    pub(crate) fn new(max: u32) -> Pace {
        Pace {
            size: Pace::START,
            max,
        }
    }

    pub(crate) fn after(&mut self, took: Duration) {
        if took < Duration::from_millis(1_500) {
            self.size = (self.size * 2).min(self.max);
        } else if took > Duration::from_secs(8) {
            self.size = (self.size / 2).max(Pace::MIN);
        }
    }
}

pub(crate) struct Client {
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
    pub(crate) fn new(
        base: &str,
        auth: Option<String>,
        ca_pem: Option<&str>,
    ) -> Result<Client, SyncError> {
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

    pub(crate) fn unreachable(&self, e: impl std::fmt::Display) -> SyncError {
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

    pub(crate) fn read<T: serde::de::DeserializeOwned>(
        &self,
        resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T, SyncError> {
        let body = self.raw(resp)?;
        serde_json::from_slice(&body).map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    /// A response's body, or the server's refusal.
    pub(crate) fn raw(
        &self,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<Vec<u8>, SyncError> {
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

    pub(crate) fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, SyncError> {
        self.post_encoded(path, &encode(body)?, None)
    }

    /// POSTs a body [`encode`]d already, with one more header if given. A server not yet
    /// updated refuses zstd (415): the same body goes again in gzip, and so does every later
    /// one of this client.
    pub(crate) fn post_encoded<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        bytes: &[u8],
        header: Option<(&str, String)>,
    ) -> Result<T, SyncError> {
        use std::sync::atomic::Ordering;
        let send = |encoding: &str, body: &[u8]| {
            let mut req = self
                .agent
                .post(format!("{}{API}{path}", self.base))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", encoding);
            if let Some((name, value)) = &header {
                req = req.header(*name, value);
            }
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

    pub(crate) fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, SyncError> {
        serde_json::from_slice(&self.get_raw(path)?)
            .map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    /// A GET's body as it came, or the server's refusal.
    pub(crate) fn get_raw(&self, path: &str) -> Result<Vec<u8>, SyncError> {
        let req = self.authorized(self.agent.get(format!("{}{API}{path}", self.base)));
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        self.raw(resp)
    }

    /// The station's credentials on a request (none while enrolling), and its program's
    /// version (the server refuses one too old for its protocol).
    pub(crate) fn authorized<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let req = req.header(
            binhyen_protocol::wire::VERSION_HEADER,
            binhyen_domain::VERSION,
        );
        match &self.auth {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }
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
    /// The unit's identity keys the province anchored, certified (a transport that cannot
    /// ask, the offline bundle, gives none).
    fn identity_anchors(&mut self) -> Result<Option<IdentityAnchors>, SyncError> {
        Ok(None)
    }
    /// The release the server offers this station, if any (a transport with no update
    /// channel offers none).
    fn release_offer(&mut self) -> Result<Option<ReleaseOffer>, SyncError> {
        Ok(None)
    }
    /// A piece of a release's package.
    fn release_piece(
        &mut self,
        _version: &str,
        _offset: u64,
        _len: u32,
    ) -> Result<Vec<u8>, SyncError> {
        Err(SyncError::BadResponse("no update channel".into()))
    }
}

impl Transport for Client {
    fn push(&mut self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.push_encoded(req, &encode(req)?)
    }

    fn push_encoded(
        &mut self,
        req: &PushRequest,
        encoded: &[u8],
    ) -> Result<PushResponse, SyncError> {
        let remaining = req
            .remaining
            .map(|n| (binhyen_protocol::wire::REMAINING_HEADER, n.to_string()));
        self.post_encoded("/push", encoded, remaining)
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

    fn identity_anchors(&mut self) -> Result<Option<IdentityAnchors>, SyncError> {
        self.get("/identity-anchors").map(Some)
    }

    fn release_offer(&mut self) -> Result<Option<ReleaseOffer>, SyncError> {
        let body = self.get_raw("/release")?;
        if body.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    fn release_piece(
        &mut self,
        version: &str,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, SyncError> {
        self.get_raw(&format!(
            "/release/{}/piece?offset={offset}&len={len}",
            query_escape(version)
        ))
    }
}

/// Percent-encodes a query value (ids are ASCII; anything else is escaped byte by byte).
pub(crate) fn query_escape(s: &str) -> String {
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

/// The station's own HTTPS client (its server, credentials and pinned authority) as a
/// [`Transport`], for [`crate::sync_with`]: the load harness (`bench/load`) times each
/// request through it.
pub fn transport_for(station: &Station) -> Result<Box<dyn Transport>, SyncError> {
    Ok(Box::new(client_for(station)?))
}

pub(crate) fn client_for(station: &Station) -> Result<Client, SyncError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use binhyen_protocol::wire::WireChange;
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
            remaining: None,
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
