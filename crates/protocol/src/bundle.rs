//! Offline bundles: sync carried on a USB stick when a station has no network at all.
//!
//! A station writes its pending changes into a push bundle; the server applies it and writes
//! a reply bundle (what it accepted, what it refused, the scope's changes the station has
//! not seen, the checksum); the station applies the reply. Both are sealed with
//! XChaCha20-Poly1305 under a key only the station and the server know (derived from the
//! station's secret at enrolment), so a bundle is private on the stick and any change to it
//! is detected. Applying any bundle twice changes nothing: changes are known by their ids.
//!
//! Layout: `MAGIC | header length (u32, big-endian) | header JSON | nonce (24) | sealed
//! gzip(JSON payload)`; the magic and header are authenticated as associated data.

use std::io::{Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::wire::{PulledChange, WireChange};

const MAGIC: &[u8; 8] = b"BYBUNDL1";
const NONCE_LEN: usize = 24;
/// Largest header accepted; a real one is a few hundred bytes.
const MAX_HEADER: usize = 4096;
/// Largest payload accepted once decompressed.
const MAX_PAYLOAD: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleKind {
    /// From a station to the server.
    Push,
    /// From the server back to a station.
    Reply,
}

/// What is readable without the key: who the bundle is from or for, and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    pub kind: BundleKind,
    pub station_id: String,
    pub bundle_id: String,
    pub created_at: String,
}

/// An attachment's content carried in a bundle (photos and scans travel on the stick too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    pub sha256: String,
    /// The content, base64.
    pub data: String,
}

impl BundleFile {
    pub fn new(sha256: &str, data: &[u8]) -> BundleFile {
        use base64::Engine;
        BundleFile {
            sha256: sha256.to_string(),
            data: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    /// The content, or None where the text is not base64 (the seal makes that unlikely).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .ok()
    }
}

/// A station's pending changes, and where its pull cursor stands; the content of the files
/// it attached that the server does not hold yet, and the files it lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushBundle {
    pub cursor: i64,
    pub changes: Vec<WireChange>,
    #[serde(default)]
    pub files: Vec<BundleFile>,
    /// Attachments whose record this station holds and whose content it does not.
    #[serde(default)]
    pub wanted: Vec<String>,
    /// The audit entries the server has not acknowledged, with the station's head: a
    /// station that never sees the network anchors its trail too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::wire::AuditPush>,
    /// A station set up from a provisioning file that has never reached the server enrols
    /// by its bundle: the file's one-time token, and the secret the station chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrol: Option<crate::wire::EnrollRequest>,
    /// The station reads the province's certificates of its identity keys in the reply
    /// (stations from before them do not ask, and refuse a reply field they do not know).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wants_anchors: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedChange {
    pub change_id: String,
    pub message: String,
}

/// The server's answer to one push bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBundle {
    pub in_reply_to: String,
    /// Changes the server holds now (new or already known).
    pub acked: Vec<String>,
    /// Changes refused for good, with the reason.
    pub rejected: Vec<RejectedChange>,
    /// The scope's changes after the bundle's cursor.
    pub changes: Vec<PulledChange>,
    pub next: i64,
    pub checksum: String,
    /// Files of the push bundle the server now holds.
    #[serde(default)]
    pub files_acked: Vec<String>,
    /// Content the station lacks: what it asked for, and the files of the attachments in
    /// `changes` (never beyond the station's own unit).
    #[serde(default)]
    pub files: Vec<BundleFile>,
    /// The last audit entry the server holds for the station, when the bundle carried its
    /// trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_acked: Option<i64>,
    /// The bundle's enrolment was taken (or had been): the station is enrolled with the
    /// secret it chose and syncs online from now on as well.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enrolled: bool,
    /// The unit's identity keys the province anchored, certified (when the bundle asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<crate::wire::IdentityAnchors>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BundleError {
    #[error("Tệp không phải gói đồng bộ Bình Yên.")]
    NotABundle,
    #[error("Gói đồng bộ bị cắt cụt (chép chưa hết?); hãy chép lại từ máy gốc.")]
    Truncated,
    #[error("Gói đồng bộ đã bị sửa hoặc không dành cho trạm này; không có gì được áp dụng.")]
    Tampered,
    #[error("Gói đồng bộ không đúng loại: cần gói {expected}, đây là gói {found}.")]
    WrongKind { expected: String, found: String },
    #[error("Nội dung gói đồng bộ không đọc được: {0}")]
    Payload(String),
}

impl BundleError {
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::NotABundle => "not_a_bundle",
            BundleError::Truncated => "bundle_truncated",
            BundleError::Tampered => "bundle_tampered",
            BundleError::WrongKind { .. } => "bundle_wrong_kind",
            BundleError::Payload(_) => "bundle_payload",
        }
    }
}

fn kind_name(k: BundleKind) -> &'static str {
    match k {
        BundleKind::Push => "gửi lên (từ trạm)",
        BundleKind::Reply => "trả lời (từ máy chủ)",
    }
}

/// The bundle key of a station, from the secret it received at enrolment. The server keeps
/// this key (never the secret itself).
pub fn bundle_key(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"binhyen bundle key v1\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// `bytes` gzip-compressed (the default level), in one write: a bundle's payload, and a
/// push to a server that reads no zstd.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::default(),
    );
    gz.write_all(bytes)?;
    gz.finish()
}

/// Seals `payload` under `key`.
pub fn seal<T: Serialize>(
    key: &[u8; 32],
    header: &BundleHeader,
    payload: &T,
) -> Result<Vec<u8>, BundleError> {
    let header_json =
        serde_json::to_vec(header).map_err(|e| BundleError::Payload(e.to_string()))?;
    let json = serde_json::to_vec(payload).map_err(|e| BundleError::Payload(e.to_string()))?;
    let plain = gzip(&json).map_err(|e| BundleError::Payload(e.to_string()))?;

    let mut out = Vec::with_capacity(plain.len() + header_json.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&header_json);
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &out,
            },
        )
        .map_err(|_| BundleError::Payload("encryption failed".into()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn split(bytes: &[u8]) -> Result<(BundleHeader, usize), BundleError> {
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
            BundleError::Truncated
        } else {
            BundleError::NotABundle
        });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(BundleError::NotABundle);
    }
    let len_at = MAGIC.len();
    let len_bytes: [u8; 4] = bytes
        .get(len_at..len_at + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(BundleError::Truncated)?;
    let header_len = u32::from_be_bytes(len_bytes) as usize;
    if header_len > MAX_HEADER {
        return Err(BundleError::NotABundle);
    }
    let header_end = len_at + 4 + header_len;
    let header_bytes = bytes
        .get(len_at + 4..header_end)
        .ok_or(BundleError::Truncated)?;
    let header: BundleHeader =
        serde_json::from_slice(header_bytes).map_err(|_| BundleError::NotABundle)?;
    Ok((header, header_end))
}

/// The header, read without the key (to find the station's key).
pub fn read_header(bytes: &[u8]) -> Result<BundleHeader, BundleError> {
    split(bytes).map(|(h, _)| h)
}

/// Opens a bundle of the `expected` kind sealed under `key`.
pub fn open<T: DeserializeOwned>(
    key: &[u8; 32],
    bytes: &[u8],
    expected: BundleKind,
) -> Result<(BundleHeader, T), BundleError> {
    let (header, header_end) = split(bytes)?;
    if header.kind != expected {
        return Err(BundleError::WrongKind {
            expected: kind_name(expected).into(),
            found: kind_name(header.kind).into(),
        });
    }
    let nonce = bytes
        .get(header_end..header_end + NONCE_LEN)
        .ok_or(BundleError::Truncated)?;
    let sealed = &bytes[header_end + NONCE_LEN..];
    if sealed.len() < 16 {
        return Err(BundleError::Truncated);
    }
    let plain = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &bytes[..header_end],
            },
        )
        .map_err(|_| BundleError::Tampered)?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(plain.as_slice())
        .take(MAX_PAYLOAD)
        .read_to_end(&mut json)
        .map_err(|e| BundleError::Payload(e.to_string()))?;
    let payload = serde_json::from_slice(&json).map_err(|e| BundleError::Payload(e.to_string()))?;
    Ok((header, payload))
}

/// Writes a file whole or not at all: a temporary file beside it, synced, then renamed.
pub fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BundleHeader {
        BundleHeader {
            kind: BundleKind::Push,
            station_id: "st-1".into(),
            bundle_id: "b-1".into(),
            created_at: "2026-11-28T00:00:00Z".into(),
        }
    }

    fn sample() -> PushBundle {
        PushBundle {
            cursor: 7,
            changes: vec![],
            files: vec![BundleFile::new("ab", b"\x89PNG photo")],
            wanted: vec!["cd".into()],
            audit: None,
            enrol: Some(crate::wire::EnrollRequest {
                token: "t".into(),
                secret: Some("ab".repeat(32)),
            }),
            wants_anchors: true,
        }
    }

    #[test]
    fn a_sealed_bundle_opens_with_its_key_only() {
        let key = bundle_key("secret");
        let bytes = seal(&key, &header(), &sample()).unwrap();
        let (h, p): (BundleHeader, PushBundle) = open(&key, &bytes, BundleKind::Push).unwrap();
        assert_eq!(h, header());
        assert_eq!(p, sample());
        assert_eq!(
            open::<PushBundle>(&bundle_key("other"), &bytes, BundleKind::Push).unwrap_err(),
            BundleError::Tampered
        );
        assert!(matches!(
            open::<PushBundle>(&key, &bytes, BundleKind::Reply).unwrap_err(),
            BundleError::WrongKind { .. }
        ));
    }

    #[test]
    fn any_edit_or_cut_is_detected() {
        let key = bundle_key("secret");
        let bytes = seal(&key, &header(), &sample()).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(
                open::<PushBundle>(&key, &b, BundleKind::Push).is_err(),
                "flipped byte {i} went unnoticed"
            );
        }
        for n in 0..bytes.len() {
            assert!(open::<PushBundle>(&key, &bytes[..n], BundleKind::Push).is_err());
        }
        assert_eq!(
            open::<PushBundle>(&key, b"PK\x03\x04 a zip file", BundleKind::Push).unwrap_err(),
            BundleError::NotABundle
        );
    }
}
