//! The application layer both shells call: the desktop app (`src-tauri`) and the `binhyen`
//! command line do these things one way, here, and keep only their own presentation.

use std::path::{Path, PathBuf};

use binhyen_store::report_export::ReportFormat;
use binhyen_store::Station;
use binhyen_sync::SyncError;

/// Where the station's data lives when no directory is given: `BINHYEN_DATA_DIR`, else
/// the user's data directory (`~/.local/share/binhyen`), shared by the app and the command
/// line. `None` where the system names no data directory.
pub fn default_data_dir() -> Option<PathBuf> {
    std::env::var_os("BINHYEN_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("binhyen")))
}

/// Logs to `DIR/logs/PROGRAM.YYYY-MM-DD.log`, one file a day, the last 14 kept; the level
/// from `BINHYEN_LOG` (`info` by default). No reporter data is ever logged (the library logs
/// ids and counts). Keep the guard alive while the program runs: dropping it flushes.
/// `None` where the directory cannot be written or logging is already set up.
pub fn init_logging(
    dir: &Path,
    program: &str,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(program)
        .filename_suffix("log")
        .max_log_files(14)
        .build(&logs)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("BINHYEN_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Where the station stands with its provincial server, as the Đồng bộ screen and
/// `binhyen status` show it.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SyncState {
    pub enrolled: bool,
    /// Set up from a provisioning file with no network: the first sync, or the server's
    /// reply to the first offline bundle, enrols it.
    pub enrolment_pending: bool,
    #[ts(optional)]
    pub station_id: Option<String>,
    #[ts(optional)]
    pub server_url: Option<String>,
    /// SHA-256 of the authority this laptop trusts for its server (what the province reads
    /// out); absent for a server on this machine over plain HTTP.
    #[ts(optional)]
    pub server_fingerprint: Option<String>,
    /// Whether the province holds this station's recovery code.
    pub recovery_code_at_province: bool,
    #[ts(optional)]
    pub last_success: Option<String>,
    /// When the province's reply to an offline bundle was last imported.
    #[ts(optional)]
    pub last_bundle_import: Option<String>,
    #[ts(type = "number")]
    pub pending_changes: u64,
    /// Changes the server refused for good: kept on the laptop, no longer sent.
    #[ts(type = "number")]
    pub rejected_changes: u64,
    pub open_conflicts: u32,
    /// Why the last attempt failed, in Vietnamese; absent after a success.
    #[ts(optional)]
    pub last_error: Option<String>,
    #[ts(optional)]
    pub last_error_at: Option<String>,
    /// Whether this laptop holds the commune's identity key, and what waits for it.
    pub identity: binhyen_store::identity::IdentityStatus,
}

/// The station's [`SyncState`].
pub fn sync_state(station: &Station) -> Result<SyncState, SyncError> {
    let get = |k: &str| station.sync_get(k).ok().flatten().filter(|v| !v.is_empty());
    Ok(SyncState {
        enrolled: get("station_id").is_some(),
        enrolment_pending: binhyen_sync::enrolment_pending(station)?,
        station_id: get("station_id"),
        server_url: get("server_url"),
        server_fingerprint: binhyen_sync::pinned_fingerprint(station)?,
        recovery_code_at_province: get("recovery_escrowed").is_some(),
        last_success: get("last_success"),
        last_bundle_import: get("last_bundle_import"),
        pending_changes: station.pending_count()?,
        rejected_changes: station.rejected_count()?,
        open_conflicts: station.open_conflict_count()? as u32,
        last_error: get("last_error"),
        last_error_at: get("last_error_at"),
        identity: station.identity_status()?,
    })
}

/// The name an exported report is saved under: `bao-cao-PERIOD-YYYYMMDD-HHMMSS.EXT`, the
/// time in Vietnam's.
pub fn report_file_name(
    period: &binhyen_domain::period::Period,
    format: ReportFormat,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let stamp = now
        .with_timezone(&binhyen_domain::time::VN_TZ)
        .format("%Y%m%d-%H%M%S");
    format!("bao-cao-{}-{stamp}.{}", period.label, format.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_file_is_named_by_its_period_and_vietnam_time() {
        let period =
            binhyen_domain::period::Period::from_args(Some("2026-11"), None, None).unwrap();
        let now = "2026-11-30T17:05:09Z".parse().unwrap();
        assert_eq!(
            report_file_name(&period, ReportFormat::Xlsx, now),
            format!("bao-cao-{}-20261201-000509.xlsx", period.label)
        );
    }
}
