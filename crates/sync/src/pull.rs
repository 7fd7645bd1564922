//! Pulling the scope's changes page by page, the next fetched while one is applied.

use std::time::Duration;

use chrono::{DateTime, Utc};

use binhyen_protocol::wire::PullResponse;
use binhyen_store::replica::RemoteChange;
use binhyen_store::Station;

use crate::engine::SyncReport;
use crate::error::SyncError;
use crate::transport::{Pace, Transport};

pub(crate) const PULL_PAGE: u32 = 250;

/// Where this station's pull stands: the last server sequence number it applied.
pub(crate) fn pull_cursor(station: &Station) -> Result<i64, SyncError> {
    Ok(station
        .sync_get("cursor")?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// Pulls every page after the cursor; returns how many changes were applied. The next page
/// is fetched (and decompressed and parsed) while this one is applied: the server and the
/// network work while the laptop writes. A page fetched ahead and not applied (the apply
/// failed) is simply dropped: pulling changes nothing on the server. A pull of more than one
/// page also has the pages it committed copied from the WAL into the database file on a
/// second connection while it applies the next ([`Station::checkpointer`]); this connection
/// copies by itself again once the pull ends, however it ends.
pub(crate) fn pull_all(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<usize, SyncError> {
    let mut pace = Pace::new(5_000);
    let (first, took) = fetch(client, pull_cursor(station)?, pace.size)?;
    pace.after(took);
    // Without a second connection the station copies its WAL itself, as for one page.
    let mut checkpointer = first
        .more
        .then(|| {
            station
                .checkpointer()
                .map_err(|e| tracing::warn!(error = %e, "no second connection to copy the WAL"))
                .ok()
        })
        .flatten();
    let pulled = pull_pages(
        station,
        client,
        first,
        &mut pace,
        checkpointer.as_mut(),
        now,
        report,
    );
    let Some(mut checkpointer) = checkpointer else {
        return pulled;
    };
    let copied = checkpointer.checkpoint();
    let resumed = station.resume_checkpoints();
    let pulled = pulled?;
    copied?;
    resumed?;
    Ok(pulled)
}

/// A page of changes and how long it took to come.
pub(crate) fn fetch(
    client: &mut dyn Transport,
    after: i64,
    size: u32,
) -> Result<(PullResponse, Duration), SyncError> {
    let started = std::time::Instant::now();
    client
        .pull(after, size)
        .map(|page| (page, started.elapsed()))
}

/// [`pull_all`]'s pages, from the one in hand.
pub(crate) fn pull_pages(
    station: &mut Station,
    client: &mut dyn Transport,
    mut page: PullResponse,
    pace: &mut Pace,
    mut checkpointer: Option<&mut binhyen_store::Checkpointer>,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<usize, SyncError> {
    let mut applied_total = 0;
    // The page applied last: freeing its thousands of small values is left to the thread
    // that fetches, off the apply thread (the pull's critical path).
    let mut spent: Vec<RemoteChange> = Vec::new();
    loop {
        let (next, more, size) = (page.next, page.more, pace.size);
        // Taken apart, not copied: a page in hand and the one fetched ahead are all the
        // pull holds.
        let changes: Vec<RemoteChange> = page.changes.into_iter().map(RemoteChange::from).collect();
        let freed = std::mem::take(&mut spent);
        let started = std::time::Instant::now();
        let mut applying = Duration::ZERO;
        let (applied, ahead, wal) = std::thread::scope(|s| {
            let ahead = more.then(|| {
                s.spawn(|| {
                    drop(freed);
                    fetch(&mut *client, next, size)
                })
            });
            let copying = checkpointer
                .as_deref_mut()
                .map(|c| s.spawn(move || c.checkpoint()));
            let applied = station.apply_page(&changes, Some(next), now);
            applying = started.elapsed();
            // A checkpoint that fails (or finds nothing to copy) is only a missed chance: the
            // WAL keeps every page until one succeeds.
            let wal = copying
                .and_then(|h| h.join().ok())
                .and_then(Result::ok)
                .map(|(frames, _)| frames);
            (
                applied,
                ahead.map(|h| h.join().expect("the pull thread panicked")),
                wal,
            )
        });
        tracing::debug!(
            changes = changes.len(),
            apply_ms = applying.as_millis() as u64,
            waited_ms = started.elapsed().saturating_sub(applying).as_millis() as u64,
            "pulled page applied"
        );
        spent = changes;
        let applied = applied?;
        // A WAL grown too long is copied whole and emptied now, between two pages (see
        // `Checkpointer`).
        if let (Some(c), Some(frames)) = (checkpointer.as_deref_mut(), wal) {
            if c.too_long(frames) {
                c.shorten()?;
            }
        }
        applied_total += applied.applied;
        report.pulled += applied.applied;
        report.conflicts += applied.conflicts;
        let Some(ahead) = ahead else { break };
        let (following, took) = ahead?;
        pace.after(took);
        page = following;
    }
    Ok(applied_total)
}
