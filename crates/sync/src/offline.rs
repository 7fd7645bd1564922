//! Offline bundles: sync carried on a USB stick.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use binhyen_store::replica::RemoteChange;
use binhyen_store::Station;

use crate::audit::audit_push;
use crate::engine::SyncReport;
use crate::error::SyncError;
use crate::pull::{pull_cursor, PULL_PAGE};
use crate::push::wire_changes;

/// What writing an offline bundle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BundleExport {
    pub bundle_id: String,
    pub changes: usize,
    /// Attachments' content carried (attached here, not yet on the server).
    pub files: usize,
    pub bytes: usize,
}

pub(crate) fn bundle_credentials(station: &Station) -> Result<(String, [u8; 32]), SyncError> {
    let id = station
        .sync_get("station_id")?
        .filter(|s| !s.is_empty())
        .ok_or(SyncError::NotEnrolled)?;
    let secret = station
        .sync_get("secret")?
        .filter(|s| !s.is_empty())
        .ok_or(SyncError::NotEnrolled)?;
    Ok((id, binhyen_protocol::bundle::bundle_key(&secret)))
}

/// The bundle's credentials: the station's own once enrolled; before that, where it was
/// set up from a provisioning file with no network, those the file carried, with the
/// enrolment the bundle takes to the server.
type Credentials = (
    String,
    [u8; 32],
    Option<binhyen_protocol::wire::EnrollRequest>,
);

fn credentials(station: &mut Station) -> Result<Credentials, SyncError> {
    match bundle_credentials(station) {
        Err(SyncError::NotEnrolled) => match crate::enrol::pending_bundle_enrolment(station)? {
            Some((id, key, enrol)) => Ok((id, key, Some(enrol))),
            None => Err(SyncError::NotEnrolled),
        },
        Ok((id, key)) => Ok((id, key, None)),
        Err(e) => Err(e),
    }
}

/// Writes every pending change, and where this station's pull stands, into a bundle sealed
/// for the server (`binhyen bundle export`). Nothing is marked sent: the changes stay pending
/// until the server's reply is imported (or an online sync sends them).
pub fn export_bundle(
    station: &mut Station,
    now: DateTime<Utc>,
) -> Result<(Vec<u8>, BundleExport), SyncError> {
    use binhyen_protocol::bundle::{seal, BundleHeader, BundleKind, PushBundle};
    let (station_id, key, enrol) = credentials(station)?;
    // The commune's key the files are sealed with travels in the same bundle.
    station.key_for_uploads(now)?;
    let batch = station.pending_changes(u32::MAX)?;
    let changes = wire_changes(station, &batch)?;
    let cursor = pull_cursor(station)?;
    let bundle_id = Uuid::new_v4().to_string();
    let header = BundleHeader {
        kind: BundleKind::Push,
        station_id,
        bundle_id: bundle_id.clone(),
        created_at: now.to_rfc3339(),
    };
    let n = changes.len();
    let mut files = Vec::new();
    for sha in station.attachments_to_upload()? {
        // Sealed for the commune, as online.
        if let Some(data) = station.content_for_upload(&sha, now)? {
            files.push(binhyen_protocol::bundle::BundleFile::new(&sha, &data));
        }
    }
    let wanted = station.attachments_missing()?;
    let n_files = files.len();
    let bytes = seal(
        &key,
        &header,
        &PushBundle {
            cursor,
            changes,
            files,
            wanted,
            audit: Some(audit_push(station, u32::MAX, false)?.0),
            enrol,
            wants_anchors: true,
        },
    )?;
    let info = BundleExport {
        bundle_id,
        changes: n,
        files: n_files,
        bytes: bytes.len(),
    };
    station.audit(
        binhyen_store::audit::Action::BundleExport,
        None,
        serde_json::json!({ "changes": info.changes, "bundle": info.bundle_id }),
        now,
    )?;
    Ok((bytes, info))
}

/// Applies the server's reply bundle (`binhyen bundle import`): marks what the server holds
/// as sent, sets aside what it refused, applies the scope's changes, and compares the
/// checksum. Importing the same reply twice changes nothing.
pub fn import_reply(
    station: &mut Station,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    use binhyen_protocol::bundle::{open, BundleError, BundleKind, ReplyBundle};
    let (station_id, key, enrol) = credentials(station)?;
    let header = binhyen_protocol::bundle::read_header(bytes)?;
    if header.station_id != station_id {
        return Err(BundleError::Tampered.into());
    }
    let (_, reply): (_, ReplyBundle) = open(&key, bytes, BundleKind::Reply)?;
    if enrol.is_some() {
        if !reply.enrolled {
            return Err(SyncError::BadResponse(
                "máy chủ chưa nhận yêu cầu đăng ký của trạm trong gói này".into(),
            ));
        }
        crate::enrol::finish_from_bundle(station, now)?;
    }
    let mut report = SyncReport::default();
    for r in &reply.rejected {
        station.mark_rejected_id(&r.change_id, &r.message, now)?;
        report.rejected += 1;
    }
    report.pushed = station.mark_acked_ids(&reply.acked, now)?;
    for page in reply.changes.chunks(PULL_PAGE as usize) {
        let changes: Vec<RemoteChange> = page.iter().cloned().map(RemoteChange::from).collect();
        let applied = station.apply_remote(&changes, now)?;
        report.pulled += applied.applied;
        report.conflicts += applied.conflicts;
    }
    let cursor = pull_cursor(station)?;
    // An older reply imported after a newer sync must not move the cursor back.
    if reply.next > cursor {
        station.sync_set("cursor", &reply.next.to_string())?;
    }
    let with_identity = binhyen_domain::unit::is_commune_code(&station.info().unit_code);
    let (local, _) = station.checksum(with_identity)?;
    report.checksum_ok = local == reply.checksum;
    report.checksum = local;
    // Files: what the server now holds is uploaded; what it sent is stored (each checked
    // against its name), once its record is here.
    for sha in &reply.files_acked {
        station.mark_content_uploaded(sha)?;
    }
    // The province's certificates of the commune's identity keys (the importing officer's
    // pin, if they had none: a station with no network anchors its keys by its bundles).
    if let Some(anchors) = &reply.anchors {
        station.receive_anchors(anchors)?;
    }
    station.open_waiting_files()?;
    for f in &reply.files {
        let data = f
            .bytes()
            .ok_or_else(|| SyncError::BadResponse(format!("tệp {} hỏng trong gói", f.sha256)))?;
        crate::files::keep_file(station, &f.sha256, &data, &mut report)?;
    }
    report.files_waiting = station.files_waiting_for_key()?;
    report.files_sent = reply.files_acked.len();
    if let Some(acked) = reply.audit_acked {
        station.sync_set("audit_acked", &acked.to_string())?;
    }
    station.prune_attachment_content()?;
    station.sync_set("last_bundle_import", &now.to_rfc3339())?;
    station.audit(
        binhyen_store::audit::Action::BundleImport,
        None,
        serde_json::json!({ "acknowledged": report.pushed, "received": report.pulled }),
        now,
    )?;
    Ok(report)
}
