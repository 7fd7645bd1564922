//! Anchoring the audit trail at the server.

use binhyen_protocol::wire::AuditPush;
use binhyen_store::Station;

use crate::error::SyncError;
use crate::transport::Transport;

/// Sends the audit entries the server has not acknowledged, with this laptop's head: the
/// server keeps a copy of the chain and refuses one rewritten since it last saw it.
pub(crate) fn push_audit(
    station: &mut Station,
    client: &mut dyn Transport,
) -> Result<(), SyncError> {
    // From the start once (the server lost part of the trail), then on from what it acknowledges.
    let (mut from_start, mut retried) = (false, false);
    loop {
        let (push, acked) = audit_push(station, 500, from_start)?;
        let done = push.entries.len() < 500;
        let resp = match client.push_audit(&push) {
            // The server holds less of the trail than it once acknowledged (restored from a
            // backup made before): the trail is sent again from its start, once. What the
            // server still holds is checked against it entry by entry, so a trail rewritten
            // on the laptop is refused as before.
            // (`audit_rewritten` when it holds none of this trail: its first entry then
            // looks cut.)
            Err(SyncError::Refused { error, .. })
                if matches!(error.code.as_str(), "audit_broken" | "audit_rewritten")
                    && acked > 0
                    && !retried =>
            {
                tracing::warn!(acked, "the server lacks audit entries it acknowledged: sending the trail again from its start");
                (from_start, retried) = (true, true);
                continue;
            }
            other => other?,
        };
        from_start = false;
        station.sync_set("audit_acked", &resp.acked_seq.to_string())?;
        if done || resp.acked_seq <= acked {
            return Ok(());
        }
    }
}

/// The audit entries after the last one the server acknowledged (at most `limit`), with
/// this laptop's head and the id its chain starts from; and that acknowledged entry.
pub(crate) fn audit_push(
    station: &Station,
    limit: u32,
    from_start: bool,
) -> Result<(AuditPush, i64), SyncError> {
    let (head_seq, head_hash) = station.audit_head()?.unwrap_or((0, String::new()));
    let acked: i64 = station
        .sync_get("audit_acked")?
        .and_then(|s| s.parse().ok())
        .filter(|_| !from_start)
        .unwrap_or(0);
    let entries = station.audit_records_after(acked, limit)?;
    Ok((
        AuditPush {
            entries,
            head_seq,
            head_hash,
            chain: Some(station.info().station_id.to_string()),
        },
        acked,
    ))
}
