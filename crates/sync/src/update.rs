//! Updates of the station's own program: learnt of at sync, downloaded in pieces that a
//! dropped link does not lose, checked against the release key this program was built with
//! (`binhyen_protocol::release`), and installed with the system's own package tool; or
//! taken from a USB stick.
//!
//! Files live in the data folder's `updates/`: `FILE.part` while downloading (its length is
//! how far the download got), then `FILE` and `FILE.minisig` once checked. The offer is
//! kept in the encrypted database (`update.offer`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use binhyen_protocol::release::{check_version, read_signature, verify, ReleaseInfo};
use binhyen_protocol::wire::{ReleaseOffer, RELEASE_PIECE_BYTES};
use binhyen_store::Station;

use crate::error::SyncError;
use crate::transport::{client_for, Transport};

const OFFER: &str = "update.offer";
const ERROR: &str = "update.error";
/// A version whose download failed its check: not downloaded again.
const REFUSED: &str = "update.refused";

/// How long one sync goes on downloading an update before it stops (the next sync goes on
/// from there): a sync is not held up for long on a slow link.
pub const DOWNLOAD_BUDGET: Duration = Duration::from_secs(120);

/// Where an update stands, for `binhyen update status` and the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct UpdateStatus {
    /// This program's version.
    pub installed: String,
    /// The version the provincial server offers, if any.
    #[ts(optional)]
    pub offered: Option<String>,
    #[ts(type = "number")]
    pub size: u64,
    #[ts(type = "number")]
    pub downloaded: u64,
    /// Downloaded and checked: ready to install.
    pub ready: bool,
    /// The checked package, when ready.
    #[ts(optional)]
    pub file: Option<String>,
    /// Why the last download or check failed.
    #[ts(optional)]
    pub error: Option<String>,
    /// This program trusts only the development release key (not a release build).
    pub development_key: bool,
    /// What the last installation from the window did (it runs as the window closes).
    #[ts(optional)]
    pub last_install: Option<String>,
}

const LAST_INSTALL: &str = "last-install.txt";

/// Keeps what an installation did, for the window to say at its next start.
pub fn record_install(data_dir: &Path, version: &str, result: &Result<(), SyncError>) {
    let text = match result {
        Ok(()) => format!(
            "Đã cài bản {version} lúc {}.",
            Utc::now()
                .with_timezone(&binhyen_domain::time::VN_TZ)
                .format("%H:%M %d/%m/%Y")
        ),
        Err(e) => e.to_string(),
    };
    let dir = data_dir.join("updates");
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(LAST_INSTALL), text))
    {
        tracing::warn!(error = %e, "the installation's result was not kept");
    }
}

fn dir(station: &Station) -> PathBuf {
    station.dir().join("updates")
}

fn offer(station: &Station) -> Result<Option<ReleaseOffer>, SyncError> {
    Ok(station
        .sync_get(OFFER)?
        .filter(|t| !t.is_empty())
        .and_then(|t| serde_json::from_str(&t).ok()))
}

/// The file name an offer is kept under: the signed name, with nothing that could leave the
/// folder.
fn file_name(o: &ReleaseOffer) -> String {
    safe_file_name(&o.file_name, &o.version)
}

/// A file name with nothing that could leave its folder (`binhyen_VERSION.deb` if nothing
/// is left).
pub fn safe_file_name(name: &str, version: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.trim_start_matches('.') {
        "" => format!("binhyen_{version}.deb"),
        n => n.to_string(),
    }
}

/// After the window installed an update as it closed: the first sign-in of the new version
/// checks the station (`doctor`) once and adds what it found to what the Cài đặt screen
/// says of the installation.
pub fn check_after_install(station: &Station) {
    let file = dir(station).join(LAST_INSTALL);
    let Ok(said) = std::fs::read_to_string(&file) else {
        return;
    };
    let installed_here = format!("Đã cài bản {} ", binhyen_domain::VERSION);
    if !said.starts_with(&installed_here) || said.contains(CHECKED) {
        return;
    }
    let verdict = match station.doctor() {
        Ok(checks) if checks.iter().all(|c| c.ok) => format!("{CHECKED}: không có lỗi."),
        Ok(checks) => format!(
            "{CHECKED}: có lỗi ({}); hãy báo cán bộ kỹ thuật Công an tỉnh (màn hình Đồng bộ, «Chép thông tin»).",
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("{CHECKED}: không chạy được ({e})."),
    };
    tracing::info!(verdict = %verdict, "the station checked after an update");
    if let Err(e) = std::fs::write(&file, format!("{} {verdict}", said.trim_end())) {
        tracing::warn!(error = %e, "the check after the update was not kept");
    }
}

/// How the check after an installation is named in what the window shows.
const CHECKED: &str = "Kiểm tra trạm bằng bản mới";

/// A package and its signature from a USB stick, picked in the window: kept in
/// `updates/usb/` and checked as [`prepare`] does.
pub fn prepare_from_bytes(
    station: &mut Station,
    file_name: &str,
    package: &[u8],
    signature: &str,
    now: DateTime<Utc>,
) -> Result<Prepared, SyncError> {
    if package.len() as u64 > binhyen_protocol::release::MAX_PACKAGE_BYTES {
        return Err(binhyen_protocol::release::ReleaseError::TooLarge.into());
    }
    if signature.len() > binhyen_protocol::release::MAX_SIGNATURE_BYTES {
        return Err(binhyen_protocol::release::ReleaseError::Unreadable(
            "tệp chữ ký quá lớn".into(),
        )
        .into());
    }
    let usb = dir(station).join("usb");
    std::fs::create_dir_all(&usb).map_err(io)?;
    let path = usb.join(safe_file_name(file_name, "usb"));
    std::fs::write(&path, package).map_err(io)?;
    let sig = with_ext(&path, ".minisig");
    std::fs::write(&sig, signature).map_err(io)?;
    let prepared = prepare(station, Some(&path), Some(&sig), now);
    if prepared.is_err() {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&sig);
    }
    prepared
}

fn part_path(station: &Station, o: &ReleaseOffer) -> PathBuf {
    dir(station).join(format!("{}.part", file_name(o)))
}

fn ready_path(station: &Station, o: &ReleaseOffer) -> PathBuf {
    dir(station).join(file_name(o))
}

fn with_ext(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ext);
    PathBuf::from(p)
}

/// Where the update stands.
pub fn status(station: &Station) -> Result<UpdateStatus, SyncError> {
    let o = offer(station)?;
    let (downloaded, ready, file) = match &o {
        Some(o) => {
            let ready = ready_path(station, o);
            if ready.exists() {
                (o.size, true, Some(ready.display().to_string()))
            } else {
                let part = std::fs::metadata(part_path(station, o))
                    .map(|m| m.len())
                    .unwrap_or(0);
                (part, false, None)
            }
        }
        None => (0, false, None),
    };
    Ok(UpdateStatus {
        installed: binhyen_domain::VERSION.to_string(),
        offered: o.as_ref().map(|o| o.version.clone()),
        size: o.as_ref().map(|o| o.size).unwrap_or(0),
        downloaded,
        ready,
        file,
        error: station.sync_get(ERROR)?.filter(|e| !e.is_empty()),
        development_key: binhyen_protocol::release::trusts_development_key(),
        last_install: std::fs::read_to_string(dir(station).join(LAST_INSTALL))
            .ok()
            .filter(|t| !t.trim().is_empty()),
    })
}

/// Forgets the offer and removes what was downloaded of it.
fn discard(station: &Station) -> Result<(), SyncError> {
    if let Some(o) = offer(station)? {
        for p in [
            part_path(station, &o),
            ready_path(station, &o),
            with_ext(&ready_path(station, &o), ".minisig"),
        ] {
            let _ = std::fs::remove_file(p);
        }
    }
    station.sync_set(OFFER, "")?;
    Ok(())
}

/// At the end of a sync: asks the server for a release, and downloads it for up to
/// `budget`. What goes wrong is kept for the window and `update status`, and never fails
/// the sync itself.
pub(crate) fn fetch_quietly(station: &Station, client: &mut dyn Transport, budget: Duration) {
    if let Err(e) = fetch(station, client, budget) {
        tracing::warn!(error = %e, code = e.code(), "update not downloaded this time");
        let _ = station.sync_set(ERROR, &e.to_string());
    }
}

/// `binhyen update download`: asks the server and downloads now (for up to `budget`).
pub fn download(station: &Station, budget: Duration) -> Result<UpdateStatus, SyncError> {
    let mut client = client_for(station)?;
    fetch(station, &mut client, budget)?;
    status(station)
}

fn fetch(station: &Station, client: &mut dyn Transport, budget: Duration) -> Result<(), SyncError> {
    let Some(offered) = client.release_offer()? else {
        // Nothing offered (or what was offered is withdrawn): nothing is kept of it.
        if offer(station)?.is_some() {
            tracing::info!("the offered update is no longer offered: discarded");
            discard(station)?;
        }
        return Ok(());
    };
    // What the offer's signed comment says; checked against the key once downloaded.
    let Some(offered) = as_signed(offered)? else {
        // Not for this laptop (not newer, or the server's description disagrees with the
        // signed one): not downloaded.
        if offer(station)?.is_some() {
            discard(station)?;
        }
        return Ok(());
    };
    if station.sync_get(REFUSED)?.as_deref() == Some(offered.version.as_str()) {
        return Ok(());
    }
    match offer(station)? {
        Some(old) if old == offered => {}
        Some(_) => {
            discard(station)?;
            keep_offer(station, &offered)?;
        }
        None => keep_offer(station, &offered)?,
    }
    let ready = ready_path(station, &offered);
    if ready.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir(station)).map_err(io)?;
    let part = part_path(station, &offered);
    let mut have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have > offered.size {
        let _ = std::fs::remove_file(&part);
        have = 0;
    }
    let started = Instant::now();
    while have < offered.size {
        if started.elapsed() >= budget {
            tracing::info!(
                have,
                size = offered.size,
                "update download paused until the next sync"
            );
            return Ok(());
        }
        let want = (offered.size - have).min(u64::from(RELEASE_PIECE_BYTES)) as u32;
        let piece = match client.release_piece(&offered.version, have, want) {
            Ok(p) => p,
            Err(SyncError::Refused { error, .. }) if error.code == "release_withdrawn" => {
                tracing::info!(version = %offered.version, "update withdrawn: discarded");
                discard(station)?;
                station.sync_set(ERROR, &error.message)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if piece.is_empty() || piece.len() > want as usize {
            return Err(SyncError::BadResponse(
                "máy chủ gửi một phần gói cập nhật không đúng độ dài".into(),
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(io)?;
        f.write_all(&piece).map_err(io)?;
        f.sync_data().map_err(io)?;
        have += piece.len() as u64;
    }
    // Whole: checked before it may be offered for installation.
    let checked = std::fs::File::open(&part)
        .map_err(io)
        .and_then(|mut f| Ok(verify(&mut f, &offered.signature)?))
        .and_then(|info| {
            check_version(&info, binhyen_domain::VERSION)?;
            Ok(info)
        });
    match checked {
        Ok(info) => {
            std::fs::write(with_ext(&ready, ".minisig"), &offered.signature).map_err(io)?;
            std::fs::rename(&part, &ready).map_err(io)?;
            station.sync_set(ERROR, "")?;
            tracing::info!(version = %info.version, "update downloaded and checked");
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            station.sync_set(REFUSED, &offered.version)?;
            Err(e)
        }
    }
}

/// The offer as its signed comment describes it (size, SHA-256, file name), so that the
/// download is bounded by what was signed, not by what the server says; `None` where it is
/// not for this laptop (not newer, larger than any package, or another version than the
/// server claims).
fn as_signed(offered: ReleaseOffer) -> Result<Option<ReleaseOffer>, SyncError> {
    let (_, info) = read_signature(&offered.signature)?;
    if info.version != offered.version
        || info.size > binhyen_protocol::release::MAX_PACKAGE_BYTES
        || check_version(&info, binhyen_domain::VERSION).is_err()
    {
        return Ok(None);
    }
    Ok(Some(ReleaseOffer {
        size: info.size,
        sha256: info.sha256,
        file_name: info.file,
        ..offered
    }))
}

fn keep_offer(station: &Station, o: &ReleaseOffer) -> Result<(), SyncError> {
    station.sync_set(
        OFFER,
        &serde_json::to_string(o).map_err(|e| SyncError::BadResponse(e.to_string()))?,
    )?;
    station.sync_set(ERROR, "")?;
    Ok(())
}

fn io(e: std::io::Error) -> SyncError {
    SyncError::Update(format!("Không ghi/đọc được tệp cập nhật: {e}"))
}

/// A package checked and about to be installed.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    pub package: PathBuf,
    pub info: ReleaseInfo,
    /// The signature's text, to check the package again just before it is installed.
    #[serde(skip)]
    pub signature: String,
    /// The encrypted backup made before anything is installed.
    pub backup: PathBuf,
}

/// Checks a package (the one downloaded, or `file` from a USB stick with its signature
/// `sig`, by default `FILE.minisig` beside it) and makes an encrypted backup of the station
/// before anything is installed. Refuses, with the reason, a package the release key did
/// not sign, a signature of another file, an older version.
pub fn prepare(
    station: &mut Station,
    file: Option<&Path>,
    sig: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Prepared, SyncError> {
    let package = match file {
        Some(f) => f.to_path_buf(),
        None => {
            let s = status(station)?;
            match s.file {
                Some(f) if s.ready => PathBuf::from(f),
                _ => {
                    return Err(SyncError::Update(
                        "Chưa có bản cập nhật nào đã tải xong trên máy này.".into(),
                    ))
                }
            }
        }
    };
    let signature = binhyen_protocol::release::signature_beside(&package, sig)?;
    let mut f = std::fs::File::open(&package)
        .map_err(|e| SyncError::Update(format!("Không mở được gói {}: {e}", package.display())))?;
    let info = verify(&mut f, &signature)?;
    check_version(&info, binhyen_domain::VERSION)?;
    let backups = station.dir().join("backups");
    std::fs::create_dir_all(&backups).map_err(io)?;
    let backup = backups.join(format!(
        "truoc-cap-nhat-{}-{}.bybk",
        info.version,
        now.format("%Y%m%d-%H%M%S")
    ));
    station.backup(&backup, now)?;
    Ok(Prepared {
        package,
        info,
        signature,
        backup,
    })
}

/// The command that installs a package: `BINHYEN_INSTALL_COMMAND` (words, the package's
/// path added last) where set; else apt-get, through pkexec (the system's authorisation
/// prompt) unless already root.
pub fn install_command(package: &Path, downgrade: bool) -> Vec<String> {
    let mut words: Vec<String> = match std::env::var("BINHYEN_INSTALL_COMMAND") {
        Ok(c) if !c.trim().is_empty() => c.split_whitespace().map(str::to_string).collect(),
        _ => {
            let mut w = Vec::new();
            if !is_root() {
                w.push("pkexec".to_string());
            }
            w.extend(
                ["apt-get", "install", "-y", "--no-install-recommends"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            // A signed roll-back installs an older version: apt-get must be told.
            if downgrade {
                w.push("--allow-downgrades".to_string());
            }
            w
        }
    };
    let abs = std::fs::canonicalize(package).unwrap_or_else(|_| package.to_path_buf());
    words.push(abs.display().to_string());
    words
}

fn is_root() -> bool {
    // The effective user, as the package tool sees it (no libc call: /proc says it).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Installs a prepared package with the system's package tool. A failure leaves the
/// installed version as it was (the package tool installs whole or not at all) and says
/// so, with where the backup is.
pub fn install(prepared: &Prepared) -> Result<(), SyncError> {
    // Checked again now: the file may have changed since it was chosen (the window installs
    // as it closes, possibly hours later).
    let mut f = std::fs::File::open(&prepared.package).map_err(|e| {
        SyncError::Update(format!(
            "Không mở được gói {}: {e}",
            prepared.package.display()
        ))
    })?;
    let info = verify(&mut f, &prepared.signature)?;
    if info != prepared.info {
        return Err(binhyen_protocol::release::ReleaseError::BadSignature.into());
    }
    let words = install_command(&prepared.package, info.downgrade);
    tracing::info!(command = ?words, version = %prepared.info.version, "installing an update");
    let out = std::process::Command::new(&words[0])
        .args(&words[1..])
        .stdin(std::process::Stdio::null())
        .output();
    let failed = |why: String| {
        SyncError::Update(format!(
            "Cài bản {} không thành công: {why}. Bản {} vẫn dùng được như trước; bản sao lưu trước khi cập nhật ở {}.",
            prepared.info.version,
            binhyen_domain::VERSION,
            prepared.backup.display()
        ))
    };
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(failed(format!("{} trả về {}: {last}", words[0], o.status)))
        }
        Err(e) => Err(failed(format!("không chạy được {}: {e}", words[0]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNATURE: &str =
        include_str!("../../protocol/tests/fixtures/binhyen_0.2.0_amd64.deb.minisig");

    fn offer(version: &str, size: u64, name: &str) -> ReleaseOffer {
        ReleaseOffer {
            version: version.into(),
            file_name: name.into(),
            size,
            sha256: "00".into(),
            signature: SIGNATURE.into(),
        }
    }

    #[test]
    fn an_offer_is_bounded_by_what_was_signed_not_by_what_the_server_says() {
        // A server claiming ten gigabytes and another name: the download stops at the
        // signed size, under the signed name.
        let o = as_signed(offer("0.2.0", 10 << 30, "../../station.db"))
            .unwrap()
            .unwrap();
        assert_eq!(o.size, 780);
        assert_eq!(o.file_name, "binhyen_0.2.0_amd64.deb");
        assert_eq!(o.sha256.len(), 64);
        // A version the signature does not name is not downloaded.
        assert_eq!(as_signed(offer("9.9.9", 780, "x.deb")).unwrap(), None);
        // Nor an offer with no signature.
        let unsigned = ReleaseOffer {
            signature: String::new(),
            ..offer("0.2.0", 780, "x.deb")
        };
        assert!(as_signed(unsigned).is_err());
        assert_eq!(safe_file_name("../../.ssh/x", "1"), "_.._.ssh_x");
    }
}
