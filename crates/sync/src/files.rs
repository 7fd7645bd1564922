//! Moving attachments' content, sealed to the commune's identity key.

use chrono::{DateTime, Utc};

use binhyen_store::{Station, StoreError};

use crate::engine::SyncReport;
use crate::error::SyncError;
use crate::transport::Transport;

/// Moves attachments' content: uploads what this laptop attached (their records are pushed
/// by now), downloads what the commune's other laptops attached, drops what was removed.
/// Content the server does not hold yet (the laptop that attached it has not synced since)
/// is simply asked for again next time. Each file is committed on its own, so a cut keeps
/// what came through. Content travels sealed to the commune's identity key (the server
/// keeps what it cannot read); what arrives sealed to a key the signed-in officer does not
/// hold waits on the laptop until one who holds it signs in or syncs.
pub(crate) fn exchange_files(
    station: &mut Station,
    client: &mut dyn Transport,
    report: &mut SyncReport,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    station.open_waiting_files()?;
    let mut unsealed = 0;
    for sha in station.attachments_to_upload()? {
        // Sealed for the commune: the server keeps it without reading it.
        let Some(data) = station.content_for_upload(&sha, now)? else {
            unsealed += 1;
            continue;
        };
        match client.put_attachment(&sha, &data) {
            Ok(()) => {
                station.mark_content_uploaded(&sha)?;
                report.files_sent += 1;
            }
            // Its record was set aside by the server: the file waits with it.
            Err(SyncError::Refused { error, .. }) if error.code == "unknown_attachment" => {
                tracing::warn!(%sha, "the server knows no record of this attachment yet");
            }
            Err(e) => return Err(e),
        }
    }
    if unsealed > 0 {
        tracing::warn!(
            files = unsealed,
            "files wait for the commune's identity key before they are uploaded"
        );
    }
    for sha in station.attachments_missing()? {
        if let Some(data) = client.get_attachment(&sha)? {
            keep_file(station, &sha, &data, report)?;
        }
    }
    station.prune_attachment_content()?;
    report.files_waiting = station.files_waiting_for_key()? + unsealed;
    Ok(())
}

/// Keeps one file received from the server. One that does not open to what its name says
/// (damaged, or parked under that name by a laptop of the commune: the server cannot check
/// what it cannot read) is refused, counted and logged, and the sync goes on: one bad file
/// must not hold back the rest.
pub(crate) fn keep_file(
    station: &mut Station,
    sha: &str,
    data: &[u8],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    match station.store_downloaded_content(sha, data) {
        Ok(_) => report.files_received += 1,
        Err(StoreError::Corrupt(why)) => {
            tracing::warn!(%sha, %why, "a file from the server is not what its name says; refused");
            report.files_refused += 1;
        }
        Err(e) => return Err(SyncError::BadResponse(e.to_string())),
    }
    Ok(())
}
