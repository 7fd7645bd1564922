//! Offline bundles at the server (`binhyen-server bundle import`): open a station's push
//! bundle with that station's key, apply it exactly as an online push would be, and seal the
//! reply. A bundle applied twice changes nothing (changes are known by their ids).

use chrono::{DateTime, Utc};

use binhyen_protocol::bundle::{
    open, read_header, seal, BundleFile, BundleHeader, BundleKind, PushBundle, RejectedChange,
    ReplyBundle,
};
use binhyen_protocol::wire::{WireChange, MAX_BATCH};

use crate::db::{Backend, DbError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Bundle(#[from] binhyen_protocol::bundle::BundleError),
    #[error("Gói đồng bộ của trạm {0} không có trên máy chủ này.")]
    UnknownStation(String),
    #[error("Trạm {0} đã bị thu hồi; gói của trạm không được áp dụng.")]
    Revoked(String),
    #[error("Trạm {0} đăng ký trước khi có gói đồng bộ ngoại tuyến; hãy cấp lại tệp cấp phép.")]
    NoKey(String),
    #[error("Trạm {0} chưa đăng ký và gói của trạm không mang yêu cầu đăng ký; hãy đồng bộ trực tuyến hoặc thiết lập lại trạm từ tệp cấp phép.")]
    NotEnrolled(String),
    #[error(
        "Trạm {0} đã đăng ký với một khóa bí mật khác; gói đăng ký này không còn được áp dụng."
    )]
    EnrolledOtherwise(String),
    #[error("Gói đồng bộ đã bị sửa, hoặc được làm trước khi trạm {0} đăng ký, hoặc trên một máy khác: không mở được, không có gì được áp dụng. Hãy xuất gói mới từ máy của trạm.")]
    MadeBeforeEnrolment(String),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// What one import did, for the operator.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportSummary {
    pub station_id: String,
    pub unit_code: String,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub reply_changes: usize,
    /// Attachments' content received from the station, and sent back to it.
    pub files_received: usize,
    pub files_sent: usize,
}

/// Applies a push bundle and returns the sealed reply.
pub fn import(
    db: &dyn Backend,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<(Vec<u8>, ImportSummary), ImportError> {
    let header = read_header(bytes)?;
    let (station, key) = db
        .station_with_key(&header.station_id)?
        .ok_or_else(|| ImportError::UnknownStation(header.station_id.clone()))?;
    if station.revoked_at.is_some() {
        return Err(ImportError::Revoked(station.id));
    }
    let key: [u8; 32] = key
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ImportError::NoKey(station.id.clone()))?;
    let (_, push): (_, PushBundle) = match open(&key, bytes, BundleKind::Push) {
        Ok(opened) => opened,
        // An enrolled station's bundles are sealed with the key derived from its secret: a
        // bundle made before its enrolment (sealed with its provisioning file's key), or on
        // another laptop set up from the same file, no longer opens.
        Err(binhyen_protocol::bundle::BundleError::Tampered) if station.enrolled_at.is_some() => {
            return Err(ImportError::MadeBeforeEnrolment(station.id))
        }
        Err(e) => return Err(e.into()),
    };
    let (station, enrolled) = enrol(db, station, push.enrol.as_ref(), now)?;

    let mut summary = ImportSummary {
        station_id: station.id.clone(),
        unit_code: station.unit_code.clone(),
        ..Default::default()
    };
    // The audit trail first: a trail rewritten on the laptop refuses the bundle whole.
    let audit_acked = match &push.audit {
        Some(audit) => Some(db.push_audit(&station, audit, now)?),
        None => None,
    };
    let mut acked = Vec::new();
    let mut rejected = Vec::new();
    for chunk in push.changes.chunks(MAX_BATCH) {
        match db.push(&station, chunk, now) {
            Ok(out) => {
                summary.accepted += out.accepted;
                summary.duplicates += out.duplicates;
                acked.extend(chunk.iter().map(|c| c.change_id.clone()));
            }
            Err(DbError::Refused(r))
                if binhyen_protocol::wire::refused_for_good(r.code.as_str()) =>
            {
                // As online: one refused change must not hold back the others.
                for c in chunk {
                    apply_one(
                        db,
                        &station,
                        c,
                        now,
                        &mut summary,
                        &mut acked,
                        &mut rejected,
                    )?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    summary.rejected = rejected.len();

    let mut changes = Vec::new();
    let mut after = push.cursor.max(0);
    loop {
        let (page, next, more) = db.pull(&station, after, 2_000)?;
        changes.extend(page);
        after = next;
        if !more {
            break;
        }
    }
    summary.reply_changes = changes.len();
    let (checksum, _) = db.checksum(&station)?;

    // Files, as online: content is kept only when an attachment record of the station's
    // unit names it and it hashes to its name; a refused file is left to the next time.
    let mut files_acked = Vec::new();
    for f in &push.files {
        let Some(data) = f.bytes() else { continue };
        match crate::db::put_attachment(db, &station, &f.sha256, &data, now) {
            Ok(()) => files_acked.push(f.sha256.clone()),
            Err(DbError::Refused(r)) => {
                tracing::warn!(sha = %f.sha256, code = r.code.as_str(), "bundle file not kept");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // What the station asked for, and the files of attachments arriving in this reply; only
    // the station's own unit's (a province-level station holds none).
    let mut wanted: Vec<String> = push.wanted.clone();
    wanted.extend(changes.iter().filter_map(|c| {
        (c.change.entity == "attachment")
            .then(|| c.change.data.get("sha256").and_then(|v| v.as_str()))
            .flatten()
            .map(str::to_string)
    }));
    wanted.sort();
    wanted.dedup();
    let mut files = Vec::new();
    for sha in wanted {
        if !binhyen_domain::attachment::is_content_hash(&sha) {
            continue;
        }
        if let Some(data) = db.attachment(&station.unit_code, &sha)? {
            files.push(BundleFile::new(&sha, &data));
        }
    }
    summary.files_received = files_acked.len();
    summary.files_sent = files.len();
    let reply = ReplyBundle {
        in_reply_to: header.bundle_id.clone(),
        acked,
        rejected,
        changes,
        next: after,
        checksum,
        files_acked,
        files,
        audit_acked,
        enrolled,
        // After the push: a commune's first key, carried in this bundle, is anchored now.
        anchors: if push.wants_anchors {
            Some(crate::anchor::for_station(db, &station)?)
        } else {
            None
        },
    };
    let reply_header = BundleHeader {
        kind: BundleKind::Reply,
        station_id: station.id,
        bundle_id: uuid::Uuid::new_v4().to_string(),
        created_at: now.to_rfc3339(),
    };
    Ok((seal(&key, &reply_header, &reply)?, summary))
}

/// A station set up from its provisioning file with no network on site enrols by its
/// bundle: the file's one-time token is taken (it must be this station's), and the secret
/// the station chose is kept. The same bundle imported again, or a later one carrying the
/// same enrolment, finds the station enrolled with that secret and goes on; a station not
/// enrolled whose bundle carries none is refused.
fn enrol(
    db: &dyn Backend,
    station: crate::db::StationRow,
    request: Option<&binhyen_protocol::wire::EnrollRequest>,
    now: DateTime<Utc>,
) -> Result<(crate::db::StationRow, bool), ImportError> {
    use crate::db::sha256_hex;
    let Some(request) = request else {
        if station.enrolled_at.is_none() {
            return Err(ImportError::NotEnrolled(station.id));
        }
        return Ok((station, false));
    };
    let secret = request
        .secret
        .as_deref()
        .filter(|s| binhyen_protocol::wire::is_station_secret(s))
        .ok_or(binhyen_protocol::bundle::BundleError::Tampered)?;
    let secret_hash = sha256_hex(secret);
    if station.enrolled_at.is_some() {
        // Opened with the station's current key, yet carrying an enrolment: only a bundle
        // made before enrolment did, sealed with the file's key, which no longer opens.
        return match db.station_by_secret(&station.id, &secret_hash)? {
            Some(row) => Ok((row, true)),
            None => Err(ImportError::EnrolledOtherwise(station.id)),
        };
    }
    // From now on the station's bundles are sealed with a key derived from its secret (the
    // file's key, which a copy of the file gives, sealed only this first exchange: its reply
    // is sealed with it once more).
    let derived = hex::encode(binhyen_protocol::bundle::bundle_key(secret));
    let row = db.enroll(
        &sha256_hex(&request.token),
        &secret_hash,
        &derived,
        Some(&station.id),
        now,
    )?;
    tracing::info!(station = %row.id, unit = %row.unit_code, "station enrolled by its offline bundle");
    Ok((row, true))
}

fn apply_one(
    db: &dyn Backend,
    station: &crate::db::StationRow,
    c: &WireChange,
    now: DateTime<Utc>,
    summary: &mut ImportSummary,
    acked: &mut Vec<String>,
    rejected: &mut Vec<RejectedChange>,
) -> Result<(), ImportError> {
    match db.push(station, std::slice::from_ref(c), now) {
        Ok(out) => {
            summary.accepted += out.accepted;
            summary.duplicates += out.duplicates;
            acked.push(c.change_id.clone());
        }
        Err(DbError::Refused(r)) if binhyen_protocol::wire::refused_for_good(r.code.as_str()) => {
            rejected.push(RejectedChange {
                change_id: c.change_id.clone(),
                message: r.message,
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
