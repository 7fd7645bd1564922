//! Handing the server the station's recovery code.

use chrono::{DateTime, Utc};

use binhyen_protocol::wire::RecoveryEscrow;
use binhyen_store::Station;

use crate::error::SyncError;
use crate::transport::Transport;

/// Makes sure the provincial server holds the code that unlocks this station when every
/// password is forgotten: a code is made once (and again after it has been used), wrapped
/// around the database key here, and sent until the server has confirmed it. Until then the
/// same code is sent again, so the server and the key file always end on the same code.
pub(crate) fn escrow_recovery(
    station: &mut Station,
    client: &mut dyn Transport,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    if station.sync_get("recovery_escrowed")?.as_deref() == Some("1") {
        return Ok(());
    }
    let code = match station
        .sync_get("recovery_pending")?
        .filter(|c| !c.is_empty())
    {
        Some(code) => code,
        None => {
            let code = binhyen_store::keys::new_recovery_code();
            // Remembered before the key file changes: a crash in between leaves a code that
            // is sent and wrapped again next time, never a wrapped code nobody knows.
            station.sync_set("recovery_pending", &code)?;
            station.set_recovery_code(&code, now)?;
            code
        }
    };
    client.escrow_recovery(&RecoveryEscrow { code })?;
    station.sync_set("recovery_escrowed", "1")?;
    station.sync_set("recovery_pending", "")?;
    tracing::info!("recovery code handed to the provincial server");
    Ok(())
}
