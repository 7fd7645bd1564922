//! Pushing the outbox in batches, the next prepared while one is on its way.

use chrono::{DateTime, Utc};

use uuid::Uuid;

use binhyen_protocol::wire::{PushRequest, WireChange};
use binhyen_store::changes::Change;
use binhyen_store::Station;

use crate::engine::SyncReport;
use crate::error::{refused_for_good, refused_for_good_code, SyncError};
use crate::pull::pull_all;
use crate::transport::{encode, Pace, Transport};

/// Own changes as they travel. A change travels in the scope of the record it touches,
/// which for a province station editing a commune's tip is the commune's.
pub(crate) fn wire_changes(
    station: &Station,
    batch: &[Change],
) -> Result<Vec<WireChange>, SyncError> {
    let unit = &station.info().unit_code;
    let mut changes: Vec<WireChange> = Vec::with_capacity(batch.len());
    for c in batch {
        // A delete keeps the unit of the row it removed; a record that names its unit (a
        // unit never changes) travels in it; any other is looked up through its parent.
        let data_unit = c
            .data
            .get("unit_code")
            .and_then(|u| u.as_str())
            .map(str::to_string);
        let unit_code = match c.unit_code.clone().or(data_unit) {
            Some(u) => u,
            None => station
                .record_unit(&c.entity, &c.entity_id)?
                .unwrap_or_else(|| unit.clone()),
        };
        changes.push(WireChange {
            change_id: c.change_id.to_string(),
            hlc: c.hlc.clone(),
            entity: c.entity.clone(),
            entity_id: c.entity_id.clone(),
            op: c.op.clone(),
            unit_code,
            data: c.data.as_object().cloned().unwrap_or_default(),
            base: c.base.as_ref().and_then(|b| b.as_object().cloned()),
        });
    }
    Ok(changes)
}

/// One batch of own changes ready to go: the changes (for the bookkeeping) and the request.
pub(crate) struct Outgoing {
    pub(crate) batch: Vec<Change>,
    pub(crate) request: PushRequest,
    /// The request as it travels ([`crate::transport::encode`]).
    pub(crate) encoded: Vec<u8>,
}

/// The next `size` pending changes after `after_seq`, as a push request. The batch id names
/// the batch by its content, so a resend after a cut is the same batch; the server skips
/// changes it already has either way.
pub(crate) fn outgoing(
    station: &Station,
    after_seq: i64,
    size: u32,
) -> Result<Option<Outgoing>, SyncError> {
    let batch = station.pending_changes_after(after_seq, size)?;
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(None);
    };
    let batch_id = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{}-{}", first.change_id, last.change_id).as_bytes(),
    );
    let request = PushRequest {
        batch_id: batch_id.to_string(),
        changes: wire_changes(station, &batch)?,
        remaining: Some(station.pending_count_after(last.seq)?),
    };
    let encoded = encode(&request)?;
    Ok(Some(Outgoing {
        batch,
        request,
        encoded,
    }))
}

/// Push, then pull. While one batch is on its way (sent, and applied by the server), the
/// batch answered before it is marked acknowledged and the next is read, serialised and
/// compressed here. One batch is in flight at a time and batches are marked in order, each
/// as soon as the next has left, so a cut loses nothing and re-sends only what the server
/// had answered in the moment before it (and skips). The checksum is compared once the
/// whole sync is done ([`verify`]).
pub(crate) fn exchange(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let mut pace = Pace::new(binhyen_protocol::wire::MAX_BATCH as u32);
    let mut next = outgoing(station, 0, pace.size)?;
    // The last change of a batch the server has acknowledged, not yet marked here.
    let mut answered: Option<i64> = None;
    while let Some(Outgoing {
        batch,
        request,
        encoded,
    }) = next.take()
    {
        let last_seq = batch.last().map(|c| c.seq).unwrap_or_default();
        let size = pace.size;
        let (pushed, following) = std::thread::scope(|s| {
            let sending = s.spawn(|| {
                let started = std::time::Instant::now();
                (client.push_encoded(&request, &encoded), started.elapsed())
            });
            let mut meanwhile = || {
                if let Some(seq) = answered.take() {
                    station.mark_acked(seq, now)?;
                }
                outgoing(station, last_seq, size)
            };
            let following = meanwhile();
            (sending.join().expect("the push thread panicked"), following)
        });
        let (pushed, took) = pushed;
        pace.after(took);
        match pushed {
            Ok(resp) => {
                answered = Some(last_seq);
                report.pushed += resp.accepted + resp.duplicates;
            }
            Err(e) if refused_for_good(&e) => {
                // One bad change must not hold back the others: send them one by one and
                // set aside (keep, never delete) each one the server refuses on its own.
                for (c, wire) in batch.iter().zip(request.changes) {
                    let single = PushRequest {
                        batch_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, wire.change_id.as_bytes())
                            .to_string(),
                        changes: vec![wire],
                        remaining: Some(station.pending_count_after(c.seq)?),
                    };
                    match client.push(&single) {
                        Ok(resp) => {
                            station.mark_acked(c.seq, now)?;
                            report.pushed += resp.accepted + resp.duplicates;
                        }
                        Err(SyncError::Refused { error, .. })
                            if refused_for_good_code(&error.code) =>
                        {
                            tracing::warn!(seq = c.seq, code = %error.code, "change refused by the server; set aside");
                            station.mark_rejected(c.seq, &error.message, now)?;
                            report.rejected += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        // Prepared at the size the pace had before this answer; the one after follows it.
        next = following?;
    }
    if let Some(seq) = answered {
        station.mark_acked(seq, now)?;
    }
    pull_all(station, client, now, &mut report)?;
    Ok(report)
}
