//! A provisioning file sealed under a short code, so that a USB stick lost between the
//! province and the commune gives away nothing but which unit and laptop it was for: the
//! server's address, its pinned authority and the one-time enrolment token are sealed
//! (XChaCha20-Poly1305) under a key derived with Argon2id from a 12-digit code that the
//! province reads out to the installer over the phone. The clear part (unit name, laptop
//! number) is bound into the seal, so it cannot be altered either.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::wire::Provisioning;

/// The version of a sealed file (a plain one is version 1).
pub const SEALED_VERSION: u32 = 2;

/// A sealed provisioning file as written on the stick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedProvisioning {
    pub version: u32,
    /// Shown to the installer before the code is typed.
    pub unit_code: String,
    pub unit_name: String,
    pub device_no: u32,
    /// Base64: the Argon2id salt, the nonce, and the sealed plain file.
    pub salt: String,
    pub nonce: String,
    pub sealed: String,
}

/// Why a provisioning file does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProvisioningError {
    #[error("tệp cấp phép không đọc được: {0}")]
    Unreadable(String),
    #[error("tệp cấp phép đã được niêm phong: cần mã mở tệp 12 chữ số do Công an tỉnh đọc qua điện thoại")]
    CodeNeeded,
    #[error(
        "mã mở tệp không đúng (hoặc tệp đã bị sửa): hãy kiểm tra lại 12 chữ số với Công an tỉnh"
    )]
    WrongCode,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A new code: 12 random digits in groups of four (about 40 bits: with Argon2id, far beyond
/// what guessing can reach while the token waits to be used).
pub fn new_code() -> String {
    let mut digits = String::new();
    let mut rng = rand::rngs::OsRng;
    while digits.len() < 12 {
        let mut b = [0u8; 1];
        rng.fill_bytes(&mut b);
        // 250 = 25 × 10: no digit is likelier than another.
        if b[0] < 250 {
            digits.push(char::from(b'0' + b[0] % 10));
        }
    }
    format!("{}-{}-{}", &digits[..4], &digits[4..8], &digits[8..])
}

/// The code as typed, with spaces, dashes or dots between the groups.
fn digits(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

fn key(code: &str, salt: &[u8]) -> Result<[u8; 32], ProvisioningError> {
    // Argon2id, 64 MiB, 3 passes: about half a second on a cheap laptop, once per set-up.
    let params = argon2::Params::new(64 * 1024, 3, 1, Some(32))
        .map_err(|e| ProvisioningError::Unreadable(e.to_string()))?;
    let mut out = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(digits(code).as_bytes(), salt, &mut out)
        .map_err(|e| ProvisioningError::Unreadable(e.to_string()))?;
    Ok(out)
}

/// What the seal binds besides the file: the clear part.
fn aad(unit_code: &str, unit_name: &str, device_no: u32) -> Vec<u8> {
    serde_json::to_vec(&("binhyen provisioning v2", unit_code, unit_name, device_no))
        .unwrap_or_default()
}

/// Seals `p` under `code`.
pub fn seal(p: &Provisioning, code: &str) -> Result<SealedProvisioning, ProvisioningError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(&key(code, &salt)?.into());
    let plain = serde_json::to_vec(p).map_err(|e| ProvisioningError::Unreadable(e.to_string()))?;
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad(&p.unit_code, &p.unit_name, p.device_no),
            },
        )
        .map_err(|e| ProvisioningError::Unreadable(e.to_string()))?;
    Ok(SealedProvisioning {
        version: SEALED_VERSION,
        unit_code: p.unit_code.clone(),
        unit_name: p.unit_name.clone(),
        device_no: p.device_no,
        salt: b64().encode(salt),
        nonce: b64().encode(nonce),
        sealed: b64().encode(sealed),
    })
}

/// Whether the text of a provisioning file is a sealed one.
pub fn is_sealed(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v["version"] == SEALED_VERSION && v.get("sealed").is_some())
}

/// Reads a provisioning file, plain or sealed (then with its code). The version and the
/// fingerprint of a plain file are the caller's to check.
pub fn open(text: &str, code: Option<&str>) -> Result<Provisioning, ProvisioningError> {
    if !is_sealed(text) {
        return serde_json::from_str(text)
            .map_err(|e| ProvisioningError::Unreadable(e.to_string()));
    }
    let s: SealedProvisioning =
        serde_json::from_str(text).map_err(|e| ProvisioningError::Unreadable(e.to_string()))?;
    let code = code
        .filter(|c| !digits(c).is_empty())
        .ok_or(ProvisioningError::CodeNeeded)?;
    let bytes = |b: &str| {
        b64()
            .decode(b)
            .map_err(|e| ProvisioningError::Unreadable(e.to_string()))
    };
    let (salt, nonce, sealed) = (bytes(&s.salt)?, bytes(&s.nonce)?, bytes(&s.sealed)?);
    if nonce.len() != 24 || salt.len() < 8 {
        return Err(ProvisioningError::Unreadable("salt or nonce".into()));
    }
    let cipher = XChaCha20Poly1305::new(&key(code, &salt)?.into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &sealed,
                aad: &aad(&s.unit_code, &s.unit_name, s.device_no),
            },
        )
        .map_err(|_| ProvisioningError::WrongCode)?;
    let p: Provisioning =
        serde_json::from_slice(&plain).map_err(|e| ProvisioningError::Unreadable(e.to_string()))?;
    if p.unit_code != s.unit_code || p.device_no != s.device_no {
        return Err(ProvisioningError::WrongCode);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Provisioning {
        Provisioning {
            version: 1,
            server_url: "https://tinh.example.vn:8443".into(),
            unit_code: "24280".into(),
            unit_name: "Xã Cư M'gar".into(),
            device_no: 2,
            token: "a1b2c3".into(),
            server_ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            server_ca_sha256: Some("ab".repeat(32)),
            first_officer: None,
            station_id: Some("st-1".into()),
            bundle_key: Some("cd".repeat(32)),
        }
    }

    #[test]
    fn a_sealed_file_opens_with_its_code_only() {
        let code = new_code();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(digits(&code).len(), 12);
        let text = serde_json::to_string(&seal(&file(), &code).unwrap()).unwrap();
        assert!(is_sealed(&text));
        // Nothing secret in clear.
        for secret in ["tinh.example.vn", "a1b2c3", "BEGIN CERTIFICATE"] {
            assert!(!text.contains(secret), "{secret} in clear: {text}");
        }
        assert_eq!(open(&text, None), Err(ProvisioningError::CodeNeeded));
        assert_eq!(
            open(&text, Some("0000-0000-0000")),
            Err(ProvisioningError::WrongCode)
        );
        // Typed with spaces instead of dashes: the same code.
        let spaced = code.replace('-', " ");
        assert_eq!(open(&text, Some(&spaced)).unwrap(), file());
    }

    #[test]
    fn the_clear_part_cannot_be_altered_and_a_plain_file_still_reads() {
        let code = new_code();
        let mut sealed = seal(&file(), &code).unwrap();
        sealed.device_no = 1;
        let text = serde_json::to_string(&sealed).unwrap();
        assert_eq!(open(&text, Some(&code)), Err(ProvisioningError::WrongCode));
        let plain = serde_json::to_string(&file()).unwrap();
        assert!(!is_sealed(&plain));
        assert_eq!(open(&plain, None).unwrap(), file());
        assert!(matches!(
            open("không phải json", None),
            Err(ProvisioningError::Unreadable(_))
        ));
    }

    #[test]
    fn codes_are_uniform_digits() {
        let mut counts = [0u32; 10];
        for _ in 0..200 {
            for d in digits(&new_code()).bytes() {
                counts[usize::from(d - b'0')] += 1;
            }
        }
        // 2,400 digits: each about 240; none far off.
        assert!(
            counts.iter().all(|&n| (150..350).contains(&n)),
            "{counts:?}"
        );
    }
}
