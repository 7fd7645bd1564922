//! The app's one piece of state: the open station, behind a mutex, opened on first use
//! (the demo station is created when the data directory is empty).

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::Utc;
use serde::Serialize;
use ts_rs::TS;

use binhyen_store::keys::DEMO_PASSPHRASE;
use binhyen_store::{InitOptions, Station, StationInfo, StoreError};

pub struct AppState {
    dir: PathBuf,
    station: Mutex<Option<Station>>,
    pub sync: std::sync::Arc<crate::sync_loop::SyncControl>,
}

/// What the window shows first: the station, or the passphrase prompt.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct StationStatus {
    pub unlocked: bool,
    pub data_dir: String,
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<StationInfo>,
    #[ts(type = "number")]
    pub tips: u64,
    #[ts(type = "number")]
    pub pending_changes: u64,
}

/// The demo station's commune when nothing is set up: Xã Cư M'gar, Đắk Lắk.
const DEMO_UNIT: &str = "24280";

impl AppState {
    pub fn new(dir: PathBuf) -> AppState {
        AppState {
            dir,
            station: Mutex::new(None),
            sync: Default::default(),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Station>> {
        // A panic while holding the lock leaves the station as it was: SQLite rolled back
        // the unfinished transaction, so the data is consistent and usable.
        self.station.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the station if it can be opened without asking: the demo station, or one whose
    /// passphrase is in BINHYEN_PASSPHRASE. Creates the demo station in an empty directory.
    pub fn status(&self) -> Result<StationStatus, StoreError> {
        let mut guard = self.lock();
        if guard.is_none() {
            if !Station::exists(&self.dir) {
                let opts = InitOptions {
                    unit_code: std::env::var("BINHYEN_DEMO_UNIT")
                        .unwrap_or_else(|_| DEMO_UNIT.into()),
                    passphrase: DEMO_PASSPHRASE.into(),
                    device_no: 1,
                    demo: true,
                };
                *guard = Some(signed_in(Station::init(&self.dir, &opts, Utc::now())?)?);
                self.sync.set_passphrase(DEMO_PASSPHRASE);
            } else if Station::has_demo_passphrase(&self.dir) {
                *guard = Some(signed_in(Station::open(&self.dir, DEMO_PASSPHRASE)?)?);
                self.sync.set_passphrase(DEMO_PASSPHRASE);
            } else if let Ok(p) = std::env::var("BINHYEN_PASSPHRASE") {
                *guard = Some(signed_in(Station::open(&self.dir, &p)?)?);
                self.sync.set_passphrase(&p);
            }
        }
        self.describe(guard.as_ref())
    }

    fn describe(&self, station: Option<&Station>) -> Result<StationStatus, StoreError> {
        Ok(StationStatus {
            unlocked: station.is_some(),
            data_dir: self.dir.display().to_string(),
            station: station.map(|s| s.info().clone()),
            tips: station
                .map(|s| s.count_tips(&Default::default()))
                .transpose()?
                .unwrap_or(0),
            pending_changes: station
                .map(|s| binhyen_store::changes::pending_count(s.conn()))
                .transpose()?
                .unwrap_or(0),
        })
    }

    pub fn unlock(&self, passphrase: &str) -> Result<StationStatus, StoreError> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(signed_in(Station::open(&self.dir, passphrase)?)?);
            self.sync.set_passphrase(passphrase);
        }
        self.describe(guard.as_ref())
    }

    /// Runs `f` on the open station.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Station) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(station) => {
                // The sync thread locks a station the server has revoked: close it here too.
                if let Some(at) = station.revoked_at()? {
                    *guard = None;
                    return Err(StoreError::Revoked(at));
                }
                f(station)
            }
            None => Err(StoreError::NoStation(self.dir.clone())),
        }
    }
}

/// A station just opened by the app: its user named in the audit trail, the sign-in recorded.
fn signed_in(mut station: Station) -> Result<Station, StoreError> {
    let user = std::env::var("USER").unwrap_or_default();
    station.set_actor(&format!("ứng dụng:{user}"));
    station.audit(
        binhyen_store::audit::Action::Unlock,
        None,
        serde_json::json!({ "via": "desktop" }),
        Utc::now(),
    )?;
    Ok(station)
}
