//! Attachments of a tip: photos and scanned papers, kept inside the station's encrypted
//! database. What a file is, is read from its bytes, never from its name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;
use uuid::Uuid;

use crate::{FieldError, Invalid};

/// The largest file taken: a phone photo or a multi-page scan fits; a video does not.
pub const MAX_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;
/// How many files one tip may carry.
pub const MAX_ATTACHMENTS_PER_TIP: usize = 30;

/// The kinds of file a station keeps: photos and scans.
pub const ACCEPTED_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heif",
    "image/tiff",
    "application/pdf",
];

/// A file attached to a tip, as lists show it (the content is read on its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Attachment {
    pub id: Uuid,
    pub tip_id: Uuid,
    pub file_name: String,
    pub media_type: String,
    #[ts(type = "number")]
    pub size_bytes: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// Whether this laptop holds the content (a file attached on another laptop arrives
    /// with the next sync after that laptop has sent it).
    pub available: bool,
}

/// A file to attach, as chosen by the officer.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct NewAttachment {
    pub file_name: String,
    /// The content, base64 (the window sends it so).
    pub data_base64: String,
}

/// A file checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAttachment {
    pub file_name: String,
    pub media_type: String,
    pub sha256: String,
    pub data: Vec<u8>,
}

/// The SHA-256 of some content, in lower-case hex (what names content everywhere).
pub fn content_hash(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Whether `s` is a SHA-256 in lower-case hex.
pub fn is_content_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How an attachment's content travels through the server: sealed to one of the commune's
/// identity keys (a scanned denunciation carries its author's name), so that neither the
/// server nor a province-level station can read it. The envelope is the magic, the key id
/// (32 lower-case hex characters) and the sealed box (X25519, XSalsa20-Poly1305: the
/// `crypto_box` crate's `seal`, 48 bytes more than the content).
pub mod sealed {
    /// What every sealed envelope starts with.
    pub const MAGIC: &[u8] = b"binhyen-file-sealed1:";
    const KEY_ID_LEN: usize = 32;
    /// What the seal adds to the content: the magic, the key id, the box's ephemeral key
    /// and tag.
    pub const OVERHEAD: usize = MAGIC.len() + KEY_ID_LEN + 1 + 48;
    /// The largest envelope the server keeps.
    pub const MAX_BYTES: usize = super::MAX_ATTACHMENT_BYTES + OVERHEAD;

    /// The envelope of `sealed_box`, sealed to key `key_id`.
    pub fn envelope(key_id: &str, sealed_box: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + key_id.len() + 1 + sealed_box.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(key_id.as_bytes());
        out.push(b':');
        out.extend_from_slice(sealed_box);
        out
    }

    /// The key id and the sealed box of an envelope; `None` for anything else (content in
    /// clear among it).
    pub fn parse(data: &[u8]) -> Option<(&str, &[u8])> {
        let rest = data.strip_prefix(MAGIC)?;
        if rest.len() < KEY_ID_LEN + 1 + 48 || rest[KEY_ID_LEN] != b':' {
            return None;
        }
        let id = std::str::from_utf8(&rest[..KEY_ID_LEN]).ok()?;
        if !id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        Some((id, &rest[KEY_ID_LEN + 1..]))
    }
}

fn human_size(n: usize) -> String {
    format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)).replace('.', ",")
}

/// A file name as kept: its last path part, NFC, without control characters, at most 200
/// characters (the extension kept).
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = crate::text::normalize_line(last)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.chars().count() <= 200 {
        return clean;
    }
    let (stem, ext) = match clean.rsplit_once('.') {
        Some((s, e)) if e.chars().count() <= 10 => (s.to_string(), format!(".{e}")),
        _ => (clean.clone(), String::new()),
    };
    let keep = 200 - ext.chars().count();
    format!("{}{ext}", stem.chars().take(keep).collect::<String>())
}

/// Checks one file: not empty, not too large, a photo or a PDF by its content.
pub fn validate(
    index: usize,
    file_name: &str,
    data: Vec<u8>,
) -> Result<ValidAttachment, FieldError> {
    let field = format!("attachments.{index}");
    let name = clean_file_name(file_name);
    let shown = if name.is_empty() {
        "tệp"
    } else {
        name.as_str()
    };
    if data.is_empty() {
        return Err(FieldError::new(
            field,
            "empty_file",
            format!("Tệp \"{shown}\" trống (0 byte); hãy chọn lại tệp ảnh hoặc bản quét."),
        ));
    }
    if data.len() > MAX_ATTACHMENT_BYTES {
        return Err(FieldError::new(
            field,
            "file_too_large",
            format!(
                "Tệp \"{shown}\" nặng {}, quá giới hạn {}; hãy chụp lại ở độ phân giải thấp hơn hoặc quét từng trang.",
                human_size(data.len()),
                human_size(MAX_ATTACHMENT_BYTES)
            ),
        ));
    }
    let media_type = infer::get(&data)
        .map(|k| k.mime_type().to_string())
        .filter(|m| ACCEPTED_TYPES.contains(&m.as_str()))
        .ok_or_else(|| {
            FieldError::new(
                field.clone(),
                "file_type",
                format!("Tệp \"{shown}\" không phải ảnh (JPEG, PNG, WebP, HEIC, TIFF) hay PDF; chỉ nhận ảnh chụp và bản quét."),
            )
        })?;
    let name = if name.is_empty() {
        let ext = infer::get(&data).map(|k| k.extension()).unwrap_or("bin");
        format!("tep-dinh-kem.{ext}")
    } else {
        name
    };
    Ok(ValidAttachment {
        file_name: name,
        media_type,
        sha256: content_hash(&data),
        data,
    })
}

/// Checks every file given (all errors at once), decoding the window's base64.
pub fn validate_all(files: &[NewAttachment]) -> Result<Vec<ValidAttachment>, Invalid> {
    use base64::Engine;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    if files.len() > MAX_ATTACHMENTS_PER_TIP {
        return Err(Invalid(vec![FieldError::new(
            "attachments",
            "too_many_files",
            format!("Một nguồn tin đính kèm tối đa {MAX_ATTACHMENTS_PER_TIP} tệp."),
        )]));
    }
    for (i, f) in files.iter().enumerate() {
        let data = match base64::engine::general_purpose::STANDARD.decode(f.data_base64.trim()) {
            Ok(d) => d,
            Err(_) => {
                errors.push(FieldError::new(
                    format!("attachments.{i}"),
                    "bad_file",
                    format!(
                        "Không đọc được tệp \"{}\"; hãy chọn lại.",
                        clean_file_name(&f.file_name)
                    ),
                ));
                continue;
            }
        };
        match validate(i, &f.file_name, data) {
            Ok(v) => out.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

    #[test]
    fn type_comes_from_content_not_name() {
        let v = validate(0, "anh-hien-truong.pdf", PNG.to_vec()).unwrap();
        assert_eq!(v.media_type, "image/png");
        let e = validate(0, "anh.jpg", b"MZ\x90\0 not a photo".to_vec()).unwrap_err();
        assert_eq!(e.code, "file_type");
        assert!(e.message.contains("anh.jpg"));
        let pdf = validate(0, "don.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec()).unwrap();
        assert_eq!(pdf.media_type, "application/pdf");
    }

    #[test]
    fn empty_and_large_files_are_refused_with_their_size() {
        assert_eq!(
            validate(0, "a.png", Vec::new()).unwrap_err().code,
            "empty_file"
        );
        let mut big = PNG.to_vec();
        big.resize(MAX_ATTACHMENT_BYTES + 1, 0);
        let e = validate(2, "to.png", big).unwrap_err();
        assert_eq!(e.code, "file_too_large");
        assert_eq!(e.field, "attachments.2");
        assert!(e.message.contains("20,0 MB"), "{}", e.message);
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(
            clean_file_name("C:\\Users\\cb\\Ảnh\\ho\u{0300}a.jpg"),
            "hòa.jpg"
        );
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\u{7}b.png"), "ab.png");
        let long = format!("{}.jpeg", "x".repeat(300));
        let c = clean_file_name(&long);
        assert_eq!(c.chars().count(), 200);
        assert!(c.ends_with(".jpeg"));
        let v = validate(0, "", PNG.to_vec()).unwrap();
        assert_eq!(v.file_name, "tep-dinh-kem.png");
    }

    #[test]
    fn all_errors_at_once_and_bad_base64() {
        let files = vec![
            NewAttachment {
                file_name: "a.png".into(),
                data_base64: "!!!".into(),
            },
            NewAttachment {
                file_name: "b.txt".into(),
                data_base64: "aGVsbG8=".into(),
            },
        ];
        let e = validate_all(&files).unwrap_err();
        let codes: Vec<&str> = e.0.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["bad_file", "file_type"]);
    }

    #[test]
    fn hashes_are_lower_hex() {
        let h = content_hash(b"abc");
        assert!(is_content_hash(&h));
        assert!(!is_content_hash(&h.to_uppercase()));
        assert!(!is_content_hash("../x"));
    }

    #[test]
    fn a_sealed_envelope_reads_back_and_nothing_else_passes_for_one() {
        let id = "0123456789abcdef0123456789abcdef";
        let body = vec![7u8; 60];
        let env = sealed::envelope(id, &body);
        assert_eq!(sealed::parse(&env), Some((id, body.as_slice())));
        assert_eq!(env.len(), body.len() + sealed::OVERHEAD - 48);
        // Content in clear, a short or misnamed envelope: not sealed.
        assert_eq!(sealed::parse(b"%PDF-1.7 a scan"), None);
        assert_eq!(sealed::parse(&sealed::envelope(id, &[1; 10])), None);
        assert_eq!(
            sealed::parse(&sealed::envelope("0123456789ABCDEF0123456789ABCDEF", &body)),
            None
        );
        assert_eq!(sealed::parse(&sealed::envelope("short", &body)), None);
    }
}
