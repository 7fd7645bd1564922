//! Enrolment with a provisioning file, and the fingerprint of the authority a station pins.

use std::path::Path;

use chrono::{DateTime, Utc};

use binhyen_domain::access::Role;
use binhyen_protocol::wire::{EnrollRequest, EnrollResponse, Provisioning};
use binhyen_store::{Credentials, FirstOfficer, InitOptions, Station};

use crate::error::SyncError;
use crate::escrow::escrow_recovery;
use crate::transport::{client_for, Client};

/// Meta key: a provisioning file whose enrolment did not reach the server when the station
/// was set up from it (no network on site). The station works meanwhile; its first sync
/// finishes the enrolment ([`finish_pending`]).
const PENDING: &str = "pending_enrolment";

/// Enrols this laptop with the provincial server from a provisioning file's text (see
/// [`read_file`]): creates the station in `dir` if there is
/// none (bound to the provisioned unit and laptop number), and stores its credentials in the
/// encrypted database. Where the server cannot be reached, a station it created stays, with
/// the enrolment kept for its first sync, and the error says so.
pub fn enroll(
    dir: &Path,
    provisioning: &str,
    code: Option<&str>,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<Station, SyncError> {
    match enroll_text(dir, provisioning, code, credentials, None, now)? {
        (station, Enrolment::Done) => Ok(station),
        (_, Enrolment::AtFirstSync(e)) => Err(e),
    }
}

/// How an enrolment ended.
#[derive(Debug)]
pub enum Enrolment {
    /// The server took it: the station syncs from now on.
    Done,
    /// The station was set up, but the server could not be reached (the error says why):
    /// its first sync enrols it.
    AtFirstSync(SyncError),
}

/// Reads a provisioning file from disk (a few kilobytes; a larger file is not one).
pub fn read_file(provisioning: &Path) -> Result<String, SyncError> {
    let size = std::fs::metadata(provisioning)
        .map_err(|e| SyncError::Provisioning(format!("{}: {e}", provisioning.display())))?
        .len();
    if size > 256 * 1024 {
        return Err(SyncError::Provisioning(format!(
            "{} quá lớn để là tệp cấp phép",
            provisioning.display()
        )));
    }
    std::fs::read_to_string(provisioning)
        .map_err(|e| SyncError::Provisioning(format!("{}: {e}", provisioning.display())))
}

/// Whether a provisioning file's text is sealed under a code (see
/// `binhyen_protocol::provisioning`): the installer is asked for the code.
pub fn needs_code(text: &str) -> bool {
    binhyen_protocol::provisioning::is_sealed(text)
}

/// [`enroll`] from the provisioning file's text (the window reads the file the installer
/// picks) and, for a sealed file, the code the province reads out; `full_name` names the
/// first account where the file does not.
pub fn enroll_text(
    dir: &Path,
    text: &str,
    code: Option<&str>,
    credentials: &Credentials,
    full_name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Station, Enrolment), SyncError> {
    let p = parse(text, code)?;
    let created = !Station::exists(dir);
    let station = if !created {
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
                full_name: full_name
                    .map(str::to_string)
                    .unwrap_or_else(|| credentials.username.clone()),
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
    let mut station = station;
    match register(&mut station, &p, now) {
        Ok(()) => Ok((station, Enrolment::Done)),
        Err(e @ SyncError::Unreachable { .. }) => {
            // Kept, in the encrypted database (the file holds a one-time token), for the
            // first sync; a station that existed keeps the enrolment it had.
            if created {
                let plain = serde_json::to_string(&p)
                    .map_err(|e| SyncError::Provisioning(e.to_string()))?;
                station.sync_set(PENDING, &plain)?;
                tracing::warn!("server unreachable: the station enrols at its first sync");
            }
            Ok((station, Enrolment::AtFirstSync(e)))
        }
        Err(e) => Err(e),
    }
}

fn parse(text: &str, code: Option<&str>) -> Result<Provisioning, SyncError> {
    let p = binhyen_protocol::provisioning::open(text, code).map_err(|e| match e {
        binhyen_protocol::provisioning::ProvisioningError::Unreadable(m) => {
            SyncError::Provisioning(m)
        }
        other => SyncError::SealedProvisioning(other),
    })?;
    if p.version != 1 {
        return Err(SyncError::Provisioning(format!(
            "phiên bản {} chưa được hỗ trợ",
            p.version
        )));
    }
    check_ca_fingerprint(&p)?;
    Ok(p)
}

/// Whether this station was set up from a provisioning file and waits for its first sync
/// to enrol.
pub fn enrolment_pending(station: &Station) -> Result<bool, SyncError> {
    Ok(station.sync_get(PENDING)?.is_some_and(|t| !t.is_empty()))
}

/// Finishes an enrolment kept for the first sync (see [`enroll_text`]); nothing to do for a
/// station enrolled already or never provisioned.
pub(crate) fn finish_pending(station: &mut Station, now: DateTime<Utc>) -> Result<(), SyncError> {
    let Some(text) = station.sync_get(PENDING)?.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let p = parse(&text, None)?;
    register(station, &p, now)
}

/// The enrolment itself: the one-time token handed to the server, the station's
/// credentials stored, the recovery code escrowed.
fn register(station: &mut Station, p: &Provisioning, now: DateTime<Utc>) -> Result<(), SyncError> {
    let client = Client::new(&p.server_url, None, p.server_ca_pem.as_deref())?;
    let resp: EnrollResponse = client.post(
        "/enroll",
        &EnrollRequest {
            token: p.token.clone(),
            // Chosen already where an enrolment bundle went out: both ways must agree.
            secret: station.sync_get(PENDING_SECRET)?.filter(|s| !s.is_empty()),
        },
    )?;
    store_enrolment(station, p, &resp.station_id, &resp.secret, now)?;
    if let Err(e) = client_for(station).and_then(|mut c| escrow_recovery(station, &mut c, now)) {
        tracing::warn!(error = %e, "recovery code not handed over yet; the next sync retries");
    }
    Ok(())
}

/// Meta key: the secret this station chose for an enrolment carried in its offline bundle
/// (kept until the enrolment is done, online or by the server's reply).
const PENDING_SECRET: &str = "pending_secret";

/// What a station that was set up with no network and has not enrolled yet puts in its
/// offline bundle: its id at the server, the key the bundle is sealed with (the file's, for
/// the exchange before enrolment only: from then on both sides derive it from the secret),
/// and the enrolment (the file's token, and a secret chosen once and kept). `None` where no
/// enrolment waits; an error where the file predates offline enrolment.
pub(crate) fn pending_bundle_enrolment(
    station: &mut Station,
) -> Result<Option<(String, [u8; 32], EnrollRequest)>, SyncError> {
    let Some(text) = station.sync_get(PENDING)?.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let p = parse(&text, None)?;
    let (Some(id), Some(key)) = (p.station_id.clone(), provisioned_bundle_key(&p)) else {
        return Err(SyncError::Provisioning(
            "tệp cấp phép này làm trước khi có đăng ký bằng gói ngoại tuyến: trạm cần đồng bộ trực tuyến một lần, hoặc xin Công an tỉnh tệp cấp phép mới".into(),
        ));
    };
    let secret = match station.sync_get(PENDING_SECRET)?.filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let s = hex::encode(b);
            station.sync_set(PENDING_SECRET, &s)?;
            s
        }
    };
    Ok(Some((
        id,
        key,
        EnrollRequest {
            token: p.token,
            secret: Some(secret),
        },
    )))
}

/// The server took the enrolment carried by this station's bundle (its reply says so):
/// the station keeps its credentials as an online enrolment would, and syncs online from
/// now on too.
pub(crate) fn finish_from_bundle(
    station: &mut Station,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let Some(text) = station.sync_get(PENDING)?.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let p = parse(&text, None)?;
    let (Some(id), Some(secret)) = (
        p.station_id.clone(),
        station.sync_get(PENDING_SECRET)?.filter(|s| !s.is_empty()),
    ) else {
        return Err(SyncError::BadResponse(
            "máy chủ báo đã đăng ký nhưng trạm không giữ yêu cầu đăng ký nào".into(),
        ));
    };
    store_enrolment(station, &p, &id, &secret, now)
}

fn provisioned_bundle_key(p: &Provisioning) -> Option<[u8; 32]> {
    p.bundle_key
        .as_deref()
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| k.try_into().ok())
}

/// Keeps what an enrolment gave the station, whichever way it came.
fn store_enrolment(
    station: &mut Station,
    p: &Provisioning,
    station_id: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    station.sync_set("server_url", &p.server_url)?;
    station.sync_set("server_ca", p.server_ca_pem.as_deref().unwrap_or(""))?;
    station.sync_set("station_id", station_id)?;
    station.sync_set("secret", secret)?;
    station.sync_set("cursor", "0")?;
    station.sync_set("audit_acked", "0")?;
    station.sync_set("enrolled_at", &now.to_rfc3339())?;
    station.sync_set("revoked_at", "")?;
    // The server's station record is new: it holds no recovery code yet.
    station.sync_set("recovery_escrowed", "")?;
    // Whichever way it came (a sync, a bundle, or the file given again), nothing waits any
    // more.
    station.sync_set(PENDING, "")?;
    station.sync_set(PENDING_SECRET, "")?;
    tracing::info!(station = %station_id, "enrolled");
    Ok(())
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
pub(crate) fn check_ca_fingerprint(p: &Provisioning) -> Result<(), SyncError> {
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
