//! Comparing checksums with the server (from the running sums, or by a full scan once a
//! day) and repairing a mismatch record by record.

use chrono::{DateTime, Utc};

use binhyen_store::replica::ServerRecord;
use binhyen_store::Station;

use crate::engine::SyncReport;
use crate::error::SyncError;
use crate::pull::pull_all;
use crate::transport::Transport;

pub(crate) const RECORDS_PAGE: u32 = 1_000;

/// Compares the scope record by record with the server's and puts each difference right:
/// a record this station holds newer (or the server lacks) has its changes sent again; a
/// record the server holds differently, with nothing newer here, is taken from the server.
/// Records with changes still waiting are left to the next push. Returns how many records
/// were put right.
pub fn repair(
    station: &mut Station,
    client: &mut dyn Transport,
    _now: DateTime<Utc>,
) -> Result<usize, SyncError> {
    use std::collections::BTreeMap;
    let with_identity = binhyen_domain::unit::is_commune_code(&station.info().unit_code);
    let mut local: BTreeMap<(String, String), (String, Option<String>)> = station
        .version_rows()?
        .into_iter()
        .filter(|(e, ..)| with_identity || !binhyen_domain::catalog::is_identity(e))
        .map(|(e, id, v, d)| ((e, id), (v, d)))
        .collect();
    let mut repaired = 0;
    let mut after: Option<(String, String)> = None;
    loop {
        let page = client.records(
            after.as_ref().map(|(e, i)| (e.as_str(), i.as_str())),
            RECORDS_PAGE,
        )?;
        for r in &page.records {
            let key = (r.entity.clone(), r.entity_id.clone());
            let same = local.remove(&key).is_some_and(|(v, d)| {
                binhyen_domain::versions::parse(&v) == r.versions && d == r.deleted
            });
            if same || station.has_pending(&r.entity, &r.entity_id)? {
                continue;
            }
            let local_versions = station.field_versions(&r.entity, &r.entity_id)?;
            let newer_here = local_versions.iter().any(|(field, v)| {
                let theirs = r.versions.get(field).and_then(|t| t.as_str()).unwrap_or("");
                v.as_str().is_some_and(|mine| mine > theirs)
            });
            if newer_here && station.requeue(&r.entity, &r.entity_id)? > 0 {
                repaired += 1;
                continue;
            }
            station.adopt(&ServerRecord {
                entity: r.entity.clone(),
                entity_id: r.entity_id.clone(),
                data: r.data.clone(),
                versions: r.versions.clone(),
                deleted: r.deleted.clone(),
            })?;
            repaired += 1;
        }
        after = page
            .records
            .last()
            .map(|r| (r.entity.clone(), r.entity_id.clone()));
        if !page.more || after.is_none() {
            break;
        }
    }
    // What the server does not hold at all: send it again.
    for (entity_name, id) in local.keys() {
        if !station.has_pending(entity_name, id)? && station.requeue(entity_name, id)? > 0 {
            repaired += 1;
        }
    }
    Ok(repaired)
}

/// When the last full comparison succeeded (sync bookkeeping key).
pub(crate) const FULL_CHECK_AT: &str = "full_check_at";

/// How often the checksum is compared by a full scan on both sides rather than from the
/// running sums: the sums follow every write made through this program, the scan also sees a
/// record changed outside it (a file restored from a backup, a hand edit, a damaged disk).
pub(crate) const FULL_CHECK_EVERY: chrono::Duration = chrono::Duration::hours(24);

/// Whether this sync compares the checksum by a full scan (see [`FULL_CHECK_EVERY`]): a day
/// after the last one, or after the enrolment (everything since was written by this program).
pub(crate) fn full_check_due(station: &Station, now: DateTime<Utc>) -> Result<bool, SyncError> {
    let last = match station.sync_get(FULL_CHECK_AT)? {
        Some(t) => Some(t),
        None => station.sync_get("enrolled_at")?,
    };
    let last = last
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    // A clock set back makes the last one look in the future: compare in full then too.
    Ok(last.is_none_or(|t| now - t >= FULL_CHECK_EVERY || t > now))
}

/// This laptop's checksum for a comparison: by a scan when `full` (its running sums put right
/// on the way), else from its running sums.
pub(crate) fn local_checksum(
    station: &mut Station,
    with_identity: bool,
    full: bool,
) -> Result<String, SyncError> {
    if full {
        Ok(station.full_checksum(with_identity)?.0)
    } else {
        Ok(station.checksum_sums(with_identity)?.0)
    }
}

/// Compares this station's checksum with the server's (each computed at the same time, on
/// either side). Another station may push between the last page and the checksum: pull
/// again before calling it a mismatch.
pub(crate) fn verify(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
    report: &mut SyncReport,
    full: bool,
) -> Result<(), SyncError> {
    let with_identity = binhyen_domain::unit::is_commune_code(&station.info().unit_code);
    for attempt in 0..3 {
        let (server, local) = std::thread::scope(|s| {
            let server = s.spawn(|| client.checksum(full));
            let local = local_checksum(station, with_identity, full);
            (server.join().expect("the checksum thread panicked"), local)
        });
        let (server, mut local) = (server?, local?);
        // A server not yet updated answers a comparison of the sums with the first version.
        if !full
            && !server
                .checksum
                .starts_with(binhyen_domain::checksum::V2_PREFIX)
        {
            local = station.checksum(with_identity)?.0;
        }
        report.checksum_ok = local == server.checksum;
        report.checksum = local;
        if report.checksum_ok || attempt == 2 {
            if !report.checksum_ok {
                tracing::warn!(local = %report.checksum, server = %server.checksum, "checksum mismatch");
            }
            break;
        }
        if pull_all(station, client, now, report)? == 0 {
            break;
        }
    }
    Ok(())
}
