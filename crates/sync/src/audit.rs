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
    let mut from_start = false;
    loop {
        let (push, acked) = audit_push(station, 500)?;
        let done = push.entries.len() < 500;
        let resp = match client.push_audit(&push) {
            // The server holds less of the trail than it once acknowledged (restored from a
            // backup made before): the trail is sent again from its start, once. What the
            // server still holds is checked against it entry by entry, so a trail rewritten
            // on the laptop is refused as before.
            Err(SyncError::Refused { error, .. })
                if error.code == "audit_broken" && acked > 0 && !from_start =>
            {
                tracing::warn!(acked, "the server lacks audit entries it acknowledged: sending the trail again from its start");
                station.sync_set("audit_acked", "0")?;
                from_start = true;
                continue;
            }
            other => other?,
        };
        station.sync_set("audit_acked", &resp.acked_seq.to_string())?;
        if done || resp.acked_seq <= acked {
            return Ok(());
        }
    }
}

/// The audit entries after the last one the server acknowledged (at most `limit`), with
/// this laptop's head and the id its chain starts from; and that acknowledged entry.
pub(crate) fn audit_push(station: &Station, limit: u32) -> Result<(AuditPush, i64), SyncError> {
    let (head_seq, head_hash) = station.audit_head()?.unwrap_or((0, String::new()));
    let acked: i64 = station
        .sync_get("audit_acked")?
        .and_then(|s| s.parse().ok())
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
