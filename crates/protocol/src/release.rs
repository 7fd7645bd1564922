//! Signed releases: what a station checks before it installs anything, whoever handed it
//! the package (the provincial server, or a USB stick).
//!
//! A release is the station package and a minisign signature (`PACKAGE.minisig`) made with
//! the release key, which the people who build releases keep offline
//! (`scripts/sign-release.sh`). The signature's *trusted comment*, signed with the package,
//! names what the package is:
//!
//! ```text
//! binhyen-release v1 package=binhyen version=0.2.0 file=binhyen_0.2.0_amd64.deb size=21300000 sha256=… downgrade=0
//! ```
//!
//! Only the release key's public half is in the programs ([`RELEASE_PUBLIC_KEY`]): the
//! provincial server relays releases but cannot make one, nor pass an older one off as new
//! (the version is signed; going back needs a release signed with `downgrade=1`).

use std::io::Read;

use minisign_verify::{PublicKey, Signature};
use sha2::{Digest, Sha256};

/// The release key's public half (minisign): `BINHYEN_RELEASE_PUBLIC_KEY` when the programs
/// are built for a release (`scripts/package.sh`), else the development key in
/// `packaging/release/`, whose secret half is in the repository and signs nothing real.
pub const RELEASE_PUBLIC_KEY: &str = match option_env!("BINHYEN_RELEASE_PUBLIC_KEY") {
    Some(k) => k,
    None => DEV_PUBLIC_KEY,
};

/// The development release key (its secret half is `packaging/release/dev-release.key`).
const DEV_PUBLIC_KEY: &str = "RWSyAFXEH7aUpQB+vML6i/WSZp8st1q9uUqAtcIJKluLVx4A2fIoUBAq";

/// Whether these programs trust only the development release key (not a release build).
pub fn trusts_development_key() -> bool {
    RELEASE_PUBLIC_KEY.trim() == DEV_PUBLIC_KEY
}

/// The largest signature file read (a real one is about 300 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// The largest package accepted (the station package is about 21 MB).
pub const MAX_PACKAGE_BYTES: u64 = 512 * 1024 * 1024;

/// What a release's signed comment says it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseInfo {
    /// The package's name (`binhyen`).
    pub package: String,
    pub version: String,
    /// The file name it was signed as.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    /// Signed to replace a newer version (a release that rolls one back).
    pub downgrade: bool,
}

/// Why a release is refused. Each message says what was wrong, in Vietnamese, for the
/// officer and the installer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error(
        "Thiếu chữ ký của bản cập nhật (tệp .minisig đi kèm gói); không cài gói không có chữ ký."
    )]
    MissingSignature,
    #[error("Chữ ký của bản cập nhật không đọc được: {0}")]
    Unreadable(String),
    #[error("Chữ ký không hợp lệ: gói này không do bộ phận phát hành Bình Yên ký, hoặc đã bị sửa sau khi ký. Không cài gì cả.")]
    BadSignature,
    #[error("Chữ ký này dành cho một tệp khác ({0}), không phải gói này. Không cài gì cả.")]
    OtherFile(String),
    #[error("Gói {found} không phải gói trạm Bình Yên ({expected}).")]
    OtherPackage { expected: String, found: String },
    #[error("Bản {offered} cũ hơn bản đang dùng ({installed}); không quay về bản cũ khi không có bản phát hành được ký cho phép điều đó.")]
    Older { offered: String, installed: String },
    #[error("Máy này đã dùng bản {0}.")]
    Same(String),
    #[error("Phiên bản {0:?} không hợp lệ.")]
    BadVersion(String),
    #[error("Gói quá lớn để là gói trạm Bình Yên.")]
    TooLarge,
    #[error("Không đọc được gói: {0}")]
    Io(String),
}

impl ReleaseError {
    /// A stable code for scripts and the window.
    pub fn code(&self) -> &'static str {
        match self {
            ReleaseError::MissingSignature => "release_unsigned",
            ReleaseError::Unreadable(_) => "release_signature_unreadable",
            ReleaseError::BadSignature => "release_bad_signature",
            ReleaseError::OtherFile(_) => "release_other_file",
            ReleaseError::OtherPackage { .. } => "release_other_package",
            ReleaseError::Older { .. } => "release_older",
            ReleaseError::Same(_) => "release_same",
            ReleaseError::BadVersion(_) => "release_bad_version",
            ReleaseError::TooLarge => "release_too_large",
            ReleaseError::Io(_) => "release_io",
        }
    }
}

/// The signature file of `package`: `sig` where given, else `PACKAGE.minisig` beside it.
/// Its text, or empty where there is none (which [`verify`] refuses as unsigned); a file too
/// large to be one is refused before it is read.
pub fn signature_beside(
    package: &std::path::Path,
    sig: Option<&std::path::Path>,
) -> Result<String, ReleaseError> {
    let path = match sig {
        Some(p) => p.to_path_buf(),
        None => {
            let mut p = package.as_os_str().to_owned();
            p.push(".minisig");
            std::path::PathBuf::from(p)
        }
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > MAX_SIGNATURE_BYTES as u64 => {
            Err(ReleaseError::Unreadable("tệp chữ ký quá lớn".into()))
        }
        Ok(_) => std::fs::read_to_string(&path).map_err(|e| ReleaseError::Io(e.to_string())),
        Err(_) => Ok(String::new()),
    }
}

/// The signed comment's fields, from a signature file's text: what the release says it is,
/// **not yet checked** against the key (see [`verify`]).
pub fn read_signature(text: &str) -> Result<(Signature, ReleaseInfo), ReleaseError> {
    if text.trim().is_empty() {
        return Err(ReleaseError::MissingSignature);
    }
    if text.len() > MAX_SIGNATURE_BYTES {
        return Err(ReleaseError::Unreadable("tệp chữ ký quá lớn".into()));
    }
    let sig = Signature::decode(text).map_err(|e| ReleaseError::Unreadable(e.to_string()))?;
    let info = parse_comment(sig.trusted_comment())?;
    Ok((sig, info))
}

fn parse_comment(comment: &str) -> Result<ReleaseInfo, ReleaseError> {
    let mut words = comment.split_whitespace();
    if words.next() != Some("binhyen-release") || words.next() != Some("v1") {
        return Err(ReleaseError::Unreadable(
            "chữ ký không mang thông tin bản phát hành Bình Yên".into(),
        ));
    }
    let fields: std::collections::BTreeMap<&str, &str> =
        words.filter_map(|w| w.split_once('=')).collect();
    let field = |k: &str| {
        fields
            .get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| ReleaseError::Unreadable(format!("thiếu {k}")))
    };
    let version = field("version")?;
    parse_version(&version)?;
    Ok(ReleaseInfo {
        package: field("package")?,
        version,
        file: field("file")?,
        size: field("size")?
            .parse()
            .map_err(|_| ReleaseError::Unreadable("size".into()))?,
        sha256: field("sha256")?.to_ascii_lowercase(),
        downgrade: field("downgrade")? == "1",
    })
}

fn parse_version(v: &str) -> Result<semver::Version, ReleaseError> {
    semver::Version::parse(v).map_err(|_| ReleaseError::BadVersion(v.to_string()))
}

/// The release key's word on a provincial server's **anchor** (the key that certifies the
/// communes' identity keys, see the server's `anchor.rs`): a minisign signature over the
/// anchor's public half (its hex, as the file `scripts/sign-anchor.sh` signs), whose signed
/// comment names the province it serves. A station trusts an anchor only with it, so that
/// someone who points the laptop at a server of their own (its address and authority are in
/// the database) cannot bring an anchor of their own.
pub fn anchor_comment(province: &str, anchor_hex: &str) -> String {
    format!("binhyen-anchor v1 province={province} anchor={anchor_hex}")
}

/// Whether `signature` is the release key's signature of `anchor_hex` for `province`.
pub fn verify_anchor(anchor_hex: &str, province: &str, signature: &str) -> bool {
    if signature.len() > MAX_SIGNATURE_BYTES {
        return false;
    }
    let (Ok(sig), Ok(key)) = (
        Signature::decode(signature),
        PublicKey::from_base64(RELEASE_PUBLIC_KEY.trim()),
    ) else {
        return false;
    };
    key.verify(anchor_hex.as_bytes(), &sig, false).is_ok()
        && sig.trusted_comment() == anchor_comment(province, anchor_hex)
}

/// Checks a package against its signature with the release key: the signature (over the
/// package and its comment), then that the comment names this very content (size and
/// SHA-256) and the station package. Reads the package once, in pieces.
pub fn verify(package: &mut dyn Read, signature: &str) -> Result<ReleaseInfo, ReleaseError> {
    let (sig, info) = read_signature(signature)?;
    let key = PublicKey::from_base64(RELEASE_PUBLIC_KEY.trim())
        .map_err(|e| ReleaseError::Unreadable(format!("khóa phát hành: {e}")))?;
    let mut stream = key
        .verify_stream(&sig)
        .map_err(|_| ReleaseError::BadSignature)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = package
            .read(&mut buf)
            .map_err(|e| ReleaseError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > MAX_PACKAGE_BYTES {
            return Err(ReleaseError::TooLarge);
        }
        stream.update(&buf[..n]);
        hash.update(&buf[..n]);
    }
    stream.finalize().map_err(|_| ReleaseError::BadSignature)?;
    // The signature holds; the comment is the signer's word on what it signed.
    if size != info.size || hex::encode(hash.finalize()) != info.sha256 {
        return Err(ReleaseError::OtherFile(info.file));
    }
    if info.package != "binhyen" {
        return Err(ReleaseError::OtherPackage {
            expected: "binhyen".into(),
            found: info.package,
        });
    }
    Ok(info)
}

/// Whether a verified release may replace `installed`: a newer version, or an older one
/// signed as a roll-back.
pub fn check_version(info: &ReleaseInfo, installed: &str) -> Result<(), ReleaseError> {
    let offered = parse_version(&info.version)?;
    let current = parse_version(installed)?;
    if offered == current {
        return Err(ReleaseError::Same(info.version.clone()));
    }
    if offered < current && !info.downgrade {
        return Err(ReleaseError::Older {
            offered: info.version.clone(),
            installed: installed.to_string(),
        });
    }
    Ok(())
}

/// Whether version `a` is older than `b` (versions that do not read as such compare as
/// text).
pub fn older(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a < b,
        _ => a < b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Signed with the development key by scripts/sign-release.sh (see tests/fixtures).
    const PACKAGE: &[u8] = include_bytes!("../tests/fixtures/binhyen_0.2.0_amd64.deb");
    const SIGNATURE: &str = include_str!("../tests/fixtures/binhyen_0.2.0_amd64.deb.minisig");
    const OLDER: &[u8] = include_bytes!("../tests/fixtures/binhyen_0.0.9_amd64.deb");
    const OLDER_SIGNATURE: &str = include_str!("../tests/fixtures/binhyen_0.0.9_amd64.deb.minisig");

    #[test]
    fn a_signed_release_verifies_and_says_what_it_is() {
        let info = verify(&mut &PACKAGE[..], SIGNATURE).unwrap();
        assert_eq!(info.package, "binhyen");
        assert_eq!(info.version, "0.2.0");
        assert_eq!(info.file, "binhyen_0.2.0_amd64.deb");
        assert!(!info.downgrade);
        check_version(&info, "0.1.0").unwrap();
        assert_eq!(
            check_version(&info, "0.2.0").unwrap_err(),
            ReleaseError::Same("0.2.0".into())
        );
    }

    #[test]
    fn a_changed_package_a_signature_of_another_file_and_none_are_refused() {
        let mut changed = PACKAGE.to_vec();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_eq!(
            verify(&mut &changed[..], SIGNATURE).unwrap_err(),
            ReleaseError::BadSignature
        );
        assert_eq!(
            verify(&mut &OLDER[..], SIGNATURE).unwrap_err(),
            ReleaseError::BadSignature
        );
        assert_eq!(
            verify(&mut &PACKAGE[..], "").unwrap_err(),
            ReleaseError::MissingSignature
        );
        // A signed comment edited (to claim a newer version) breaks the signature.
        let forged = SIGNATURE.replace("version=0.2.0", "version=9.0.0");
        assert_eq!(
            verify(&mut &PACKAGE[..], &forged).unwrap_err(),
            ReleaseError::BadSignature
        );
        assert!(matches!(
            verify(&mut &PACKAGE[..], "not a signature").unwrap_err(),
            ReleaseError::Unreadable(_)
        ));
    }

    #[test]
    fn an_older_release_is_refused_unless_signed_as_a_roll_back() {
        let info = verify(&mut &OLDER[..], OLDER_SIGNATURE).unwrap();
        assert_eq!(
            check_version(&info, "0.1.0").unwrap_err().code(),
            "release_older"
        );
        let roll_back = ReleaseInfo {
            downgrade: true,
            ..info
        };
        check_version(&roll_back, "0.1.0").unwrap();
        assert!(older("0.9.0", "0.10.0"));
    }
}
