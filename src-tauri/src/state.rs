//! The app's one piece of state: the open station of the signed-in officer, behind a mutex.
//! Nothing is open until an officer signs in; the window locks (the station is closed) after
//! a spell without activity, when the officer locks it, or when the officer's account has
//! been disabled (by a sync). A laptop with no station opens on the set-up screen: a station
//! from a provisioning file, or the demo (made at once when `BINHYEN_DEMO=1`, as
//! `scripts/run.sh` and the journeys ask).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use ts_rs::TS;

use binhyen_domain::access::Role;
use binhyen_store::demo::DEMO_OFFICERS;
use binhyen_store::keys::DEMO_PASSPHRASE;
use binhyen_store::{
    Credentials, FirstOfficer, InitOptions, Session, Station, StationInfo, StoreError,
};

pub struct AppState {
    dir: PathBuf,
    station: Mutex<Option<Station>>,
    last_activity: Mutex<Instant>,
    idle_lock: Duration,
    /// `BINHYEN_DEMO=1`: an empty data directory gets the demo station at once.
    auto_demo: bool,
    pub sync: std::sync::Arc<crate::sync_loop::SyncControl>,
    /// An update checked (and the station backed up) to be installed as the app closes.
    pub pending_update: Mutex<Option<binhyen_sync::update::Prepared>>,
    /// The tips (and the stage: near its deadline, past it) the desktop was already told
    /// about, so that each is said once.
    pub deadlines_told: Mutex<std::collections::HashSet<(String, binhyen_store::today::Stage)>>,
}

/// A demo account the sign-in screen offers (the demo station only).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DemoAccount {
    pub username: String,
    pub full_name: String,
    pub role_label: String,
}

/// What the window shows first: the sign-in screen, or the station of who is signed in.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct StationStatus {
    pub unlocked: bool,
    /// No station on this laptop yet: the window shows the set-up screen.
    pub needs_setup: bool,
    /// Set up from a provisioning file with no network on site: the first sync enrols it.
    pub enrolment_pending: bool,
    pub data_dir: String,
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<StationInfo>,
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// The demo station's accounts and their public password, for the sign-in screen.
    pub demo_accounts: Vec<DemoAccount>,
    pub demo_password: Option<String>,
    /// The window locks after this many seconds without activity.
    pub idle_lock_seconds: u32,
    #[ts(type = "number")]
    pub tips: u64,
    #[ts(type = "number")]
    pub pending_changes: u64,
}

/// The demo station's commune when nothing is set up: Xã Cư M'gar, Đắk Lắk.
const DEMO_UNIT: &str = "24280";
/// Ten minutes without a key press or a click lock the window.
const IDLE_LOCK: Duration = Duration::from_secs(600);

impl AppState {
    pub fn new(dir: PathBuf) -> AppState {
        let idle_lock = std::env::var("BINHYEN_IDLE_LOCK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|s| *s >= 5)
            .map(Duration::from_secs)
            .unwrap_or(IDLE_LOCK);
        AppState {
            dir,
            station: Mutex::new(None),
            last_activity: Mutex::new(Instant::now()),
            idle_lock,
            auto_demo: std::env::var("BINHYEN_DEMO").is_ok_and(|v| v == "1"),
            sync: Default::default(),
            pending_update: Mutex::new(None),
            deadlines_told: Mutex::new(Default::default()),
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

    fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle(&self) -> bool {
        self.last_activity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            // The window locks itself at `idle_lock` (it sees every key press); this is the
            // backstop should the window not.
            > self.idle_lock + Duration::from_secs(60)
    }

    /// What the window shows first; with `BINHYEN_DEMO=1`, an empty directory gets the
    /// demo station first.
    pub fn status(&self) -> Result<StationStatus, StoreError> {
        let mut guard = self.lock();
        if guard.is_none() && self.auto_demo && !Station::exists(&self.dir) {
            self.make_demo()?;
        }
        if guard.is_some() && self.idle() {
            *guard = None;
        }
        self.describe(guard.as_ref())
    }

    /// The set-up screen's "Dùng thử với dữ liệu mẫu": the demo station, in an empty
    /// directory only (nothing opens without a sign-in).
    pub fn setup_demo(&self) -> Result<StationStatus, StoreError> {
        let guard = self.lock();
        if Station::exists(&self.dir) {
            return Err(StoreError::StationExists(self.dir.clone()));
        }
        self.make_demo()?;
        self.describe(guard.as_ref())
    }

    /// The set-up screen's "Thiết lập trạm từ tệp cấp phép": the station of the file's unit
    /// and laptop number, its chief's account, and the enrolment (kept for the first sync
    /// where the server cannot be reached). Returns whether the server took it now.
    pub fn setup_station(
        &self,
        provisioning: &str,
        code: Option<&str>,
        full_name: &str,
        username: &str,
        password: &str,
    ) -> Result<bool, binhyen_sync::SyncError> {
        let _guard = self.lock();
        if Station::exists(&self.dir) {
            return Err(StoreError::StationExists(self.dir.clone()).into());
        }
        let credentials = Credentials::new(username, password);
        let (_, enrolment) = binhyen_sync::enroll_text(
            &self.dir,
            provisioning,
            code,
            &credentials,
            Some(full_name),
            Utc::now(),
        )?;
        Ok(matches!(enrolment, binhyen_sync::Enrolment::Done))
    }

    fn make_demo(&self) -> Result<(), StoreError> {
        let (full_name, _, username, _) = DEMO_OFFICERS[0];
        let opts = InitOptions {
            unit_code: std::env::var("BINHYEN_DEMO_UNIT").unwrap_or_else(|_| DEMO_UNIT.into()),
            first_officer: FirstOfficer {
                username: username.into(),
                full_name: full_name.into(),
                password: DEMO_PASSPHRASE.into(),
                role: Role::Chief,
            },
            device_no: 1,
            demo: true,
        };
        // Made, then closed: the demo station is signed into like any other.
        drop(Station::init(&self.dir, &opts, Utc::now())?);
        Ok(())
    }

    fn describe(&self, station: Option<&Station>) -> Result<StationStatus, StoreError> {
        let demo = Station::demo_usernames(&self.dir);
        let demo_accounts: Vec<DemoAccount> = DEMO_OFFICERS
            .iter()
            .filter(|(_, _, username, _)| demo.iter().any(|d| d == username))
            .map(|(name, _, username, role)| DemoAccount {
                username: username.to_string(),
                full_name: name.to_string(),
                role_label: role.label().to_string(),
            })
            .collect();
        let reads_tips = station.is_some_and(|s| {
            s.session()
                .role
                .allows(binhyen_domain::access::Permission::TipRead)
                && !s.session().must_change_password
        });
        Ok(StationStatus {
            unlocked: station.is_some(),
            needs_setup: station.is_none() && !Station::exists(&self.dir),
            enrolment_pending: match station {
                Some(s) => binhyen_sync::enrolment_pending(s).unwrap_or(false),
                None => false,
            },
            data_dir: self.dir.display().to_string(),
            station: station.map(|s| s.info().clone()),
            session: station.map(|s| s.session().clone()),
            demo_password: (!demo_accounts.is_empty()).then(|| DEMO_PASSPHRASE.to_string()),
            demo_accounts,
            idle_lock_seconds: self.idle_lock.as_secs() as u32,
            tips: match station {
                Some(s) if reads_tips => s.count_tips(&Default::default())?,
                _ => 0,
            },
            pending_changes: station.map(|s| s.pending_count()).transpose()?.unwrap_or(0),
        })
    }

    /// Signs an officer in: opens the station with their password and hands the sync
    /// thread the key it needs for its own connection.
    pub fn sign_in(&self, username: &str, password: &str) -> Result<StationStatus, StoreError> {
        let mut guard = self.lock();
        *guard = None;
        let station = Station::open(&self.dir, &Credentials::new(username, password))?;
        // A password someone else set allows nothing but its own change: not even the
        // background sync, which starts once it is changed.
        if !station.session().must_change_password {
            self.sync
                .set_key(station.session_key(), &station.session().officer_id);
        }
        // The first sign-in after the window installed an update checks the station.
        binhyen_sync::update::check_after_install(&station);
        *guard = Some(station);
        self.touch();
        self.describe(guard.as_ref())
    }

    /// Locks the window: the station closes until someone signs in. Background sync goes
    /// on with the key it holds (so a laptop left locked still catches up).
    pub fn sign_out(&self) {
        *self.lock() = None;
    }

    /// Runs `f` on the open station, as the signed-in officer. Refused once the window has
    /// been idle too long, or the account was disabled (a sync brought it), or the station
    /// revoked: the station is closed and the window shows the sign-in screen.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Station) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_session(false, f)
    }

    /// [`AppState::with`] for what a session whose password must be changed may still do:
    /// change it, and say it is still at the keyboard.
    pub fn with_password_due<T>(
        &self,
        f: impl FnOnce(&mut Station) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_session(true, f)
    }

    fn with_session<T>(
        &self,
        password_due_allowed: bool,
        f: impl FnOnce(&mut Station) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        if guard.is_some() && self.idle() {
            *guard = None;
            tracing::info!("window locked after inactivity");
        }
        match guard.as_mut() {
            Some(station) => {
                // The sync thread locks a station the server has revoked: close it here too.
                if let Some(at) = station.revoked_at()? {
                    *guard = None;
                    return Err(StoreError::Revoked(at));
                }
                if !station.session_valid()? {
                    *guard = None;
                    return Err(StoreError::AccountDisabled);
                }
                if station.session().must_change_password && !password_due_allowed {
                    return Err(StoreError::PasswordChangeRequired);
                }
                self.touch();
                f(station)
            }
            None => Err(StoreError::SignedOut),
        }
    }
}
