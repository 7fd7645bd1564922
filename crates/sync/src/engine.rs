//! One sync, in order: push the outbox and pull the scope ([`crate::push`], [`crate::pull`]),
//! anchor the audit trail, escrow the recovery code, grant and seal what the pull brought,
//! move the files, then compare checksums and repair ([`crate::verify`]). Each step commits
//! locally before the next, so a cut anywhere resumes where it stopped: acknowledged changes
//! are not sent again, applied pages are not applied again.

use chrono::{DateTime, Utc};
use serde::Serialize;

use binhyen_store::Station;

use crate::audit::push_audit;
use crate::error::SyncError;
use crate::escrow::escrow_recovery;
use crate::files::exchange_files;
use crate::push::exchange;
use crate::transport::{client_for, Transport};
use crate::verify::{full_check_due, repair, verify, FULL_CHECK_AT};

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub pushed: usize,
    /// Changes the server refused for good, now set aside (see `binhyen status`).
    pub rejected: usize,
    pub pulled: usize,
    pub conflicts: usize,
    pub checksum_ok: bool,
    pub checksum: String,
    /// Records put right after a checksum mismatch (sent again, or taken from the server).
    pub repaired: usize,
    /// Attachments' content sent to the server, and received from it.
    pub files_sent: usize,
    pub files_received: usize,
    /// Files that wait on this laptop for the commune's identity key: received sealed while
    /// the signed-in officer holds no key, or attached here while the commune has no key to
    /// seal them with (the chief's next sync makes one).
    pub files_waiting: usize,
    /// Files received that did not open to what their name says: refused, asked for again
    /// at the next sync (see `binhyen-sync`'s `files.rs`).
    pub files_refused: usize,
}

impl SyncReport {
    /// Adds a further exchange of the same sync (the checksum is compared after the last).
    fn add(&mut self, again: SyncReport) {
        self.pushed += again.pushed;
        self.rejected += again.rejected;
        self.pulled += again.pulled;
        self.conflicts += again.conflicts;
    }
}

/// One full sync: push everything pending, pull everything new, compare checksums. The
/// outcome (success time, or the failure's reason) is kept for `binhyen status`.
pub fn sync_once(station: &mut Station, now: DateTime<Utc>) -> Result<SyncReport, SyncError> {
    // A station set up with no network on site enrols at its first sync.
    let result = crate::enrol::finish_pending(station, now)
        .and_then(|()| client_for(station))
        .and_then(|mut client| {
            let report = sync_with(station, &mut client, now)?;
            // The program's own update, if the province offers one: a piece at a time,
            // never failing the sync.
            crate::update::fetch_quietly(station, &mut client, crate::update::DOWNLOAD_BUDGET);
            Ok(report)
        });
    let attempt = binhyen_store::replica::SyncAttempt {
        at: now,
        ok: result.is_ok(),
        pushed: result.as_ref().map(|r| r.pushed as u64).unwrap_or(0),
        pulled: result.as_ref().map(|r| r.pulled as u64).unwrap_or(0),
        conflicts: result.as_ref().map(|r| r.conflicts as u64).unwrap_or(0),
        error: result.as_ref().err().map(|e| e.to_string()),
    };
    station.record_sync_attempt(attempt)?;
    match &result {
        Ok(_) => {
            station.sync_set("last_success", &now.to_rfc3339())?;
            station.sync_set("last_error", "")?;
        }
        Err(e) => {
            station.sync_set("last_error", &e.to_string())?;
            station.sync_set("last_error_at", &now.to_rfc3339())?;
            if e.code() == "revoked" {
                // The province revoked this station: lock its data at once. Nothing is
                // deleted; a new provisioning file lifts the lock.
                tracing::warn!("the server says this station is revoked; locking it");
                station.lock_revoked(now)?;
            }
        }
    }
    result
}

/// One full sync over any transport (see [`sync_once`] for the bookkeeping around it).
/// When the checksums differ afterwards, the scope is compared record by record and put
/// right ([`repair`]), then compared again.
pub fn sync_with(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let mut report = exchange(station, client, now)?;
    push_audit(station, client)?;
    // The province's certificates of the commune's identity keys, before anything is sealed
    // below: a key planted in this laptop's database is then never sealed to.
    match client.identity_anchors() {
        Ok(Some(anchors)) => {
            station.receive_anchors(&anchors)?;
        }
        Ok(None) => {}
        // An older server has none: nothing changes.
        Err(e) => tracing::warn!(error = %e, "identity anchors not fetched"),
    }
    escrow_recovery(station, client, now)?;
    // Keys the pull brought (a new officer, a new laptop of the commune, a recovery slot)
    // are granted the commune's identity key by a session that holds it, and identities
    // that arrived in clear from a laptop not yet updated are sealed. What that wrote, and
    // the recovery slot's key, go out at once.
    station.share_identity_keys(now)?;
    station.seal_clear_identities(now)?;
    // Files to upload are sealed to the commune's key: where the commune has none yet, a
    // chief's sync makes it now, so that its record goes out with this exchange.
    station.key_for_uploads(now)?;
    if station.pending_count()? > 0 {
        let again = exchange(station, client, now)?;
        report.add(again);
    }
    exchange_files(station, client, &mut report, now)?;
    let full = full_check_due(station, now)?;
    verify(station, client, now, &mut report, full)?;
    if !report.checksum_ok {
        let repaired = repair(station, client, now)?;
        tracing::warn!(repaired, "checksum mismatch: scope repaired");
        let again = exchange(station, client, now)?;
        report.add(again);
        // The repair rewrote records as this laptop held them; if one had been changed
        // outside this program, the running sums did not know its old state. (A full
        // comparison puts them right itself.)
        if !full {
            station.refill_checksum_sums()?;
        }
        verify(station, client, now, &mut report, full)?;
        report.repaired = repaired;
    }
    if full && report.checksum_ok {
        station.sync_set(FULL_CHECK_AT, &now.to_rfc3339())?;
    }
    // Accounts disabled at the province (or on another laptop) lose their password here.
    station.sync_key_slots()?;
    Ok(report)
}
