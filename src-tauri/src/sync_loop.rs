//! Background synchronisation for the desktop app: a thread that syncs on its own database
//! connection (the window never waits on the network), soon after start, every two minutes
//! after a success, and after a failure with exponential backoff and jitter. "Sync now"
//! wakes it at once.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use binhyen_store::station::SessionKey;
use binhyen_store::{Station, StoreError};

/// Shared between the window's commands and the sync thread.
#[derive(Default)]
pub struct SyncControl {
    inner: Mutex<Shared>,
    wake: Condvar,
}

#[derive(Default)]
struct Shared {
    woken: bool,
    running: bool,
    next_attempt: Option<DateTime<Utc>>,
    /// The database key and the officer the sync acts for (the last one to sign in).
    key: Option<(SessionKey, String)>,
}

const AFTER_SUCCESS: Duration = Duration::from_secs(120);
const FIRST_RETRY: Duration = Duration::from_secs(10);
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

/// The wait after `failures` failures in a row: doubling from 10 s up to 15 min, ±20 %.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let base = FIRST_RETRY.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(16) as i32);
    let capped = base.min(LONGEST_WAIT.as_secs_f64());
    Duration::from_secs_f64(capped * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0)))
}

impl SyncControl {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of the open station, so the sync thread can open its own connection.
    pub fn set_key(&self, key: SessionKey, officer_id: &str) {
        self.lock().key = Some((key, officer_id.to_string()));
        self.wake_now();
    }

    fn forget_key(&self) {
        self.lock().key = None;
    }

    pub fn wake_now(&self) {
        self.lock().woken = true;
        self.wake.notify_all();
    }

    pub fn running(&self) -> bool {
        self.lock().running
    }

    pub fn next_attempt(&self) -> Option<DateTime<Utc>> {
        self.lock().next_attempt
    }

    fn wait(&self, timeout: Duration) -> Option<(SessionKey, String)> {
        let mut g = self.lock();
        g.next_attempt = Some(Utc::now() + chrono::Duration::from_std(timeout).unwrap_or_default());
        if !g.woken {
            g = self
                .wake
                .wait_timeout_while(g, timeout, |s| !s.woken)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        g.woken = false;
        g.running = g.key.is_some();
        g.key.clone()
    }

    fn done(&self) {
        self.lock().running = false;
    }
}

/// Runs forever on its own thread.
pub fn run(dir: PathBuf, control: Arc<SyncControl>) {
    let mut failures = 0u32;
    let mut delay = Duration::from_secs(3);
    loop {
        let Some((key, officer)) = control.wait(delay) else {
            delay = Duration::from_secs(30);
            continue;
        };
        let outcome = Station::open_with_key(&dir, &key, &officer)
            .map_err(binhyen_sync::SyncError::from)
            .and_then(|mut station| {
                // Not enrolled and nothing waiting to enrol (the demo station): nothing to do.
                // A station set up with no network enrols at its first sync that gets through.
                if station.sync_get("station_id")?.is_none()
                    && !binhyen_sync::enrolment_pending(&station)?
                {
                    return Ok(None);
                }
                binhyen_sync::sync_once(&mut station, Utc::now()).map(Some)
            });
        control.done();
        delay = match outcome {
            Ok(None) => Duration::from_secs(300),
            Ok(Some(report)) => {
                tracing::info!(
                    pushed = report.pushed,
                    pulled = report.pulled,
                    conflicts = report.conflicts,
                    "sync done"
                );
                failures = 0;
                AFTER_SUCCESS
            }
            Err(binhyen_sync::SyncError::Store(StoreError::AccountDisabled)) => {
                // The officer it acted for was disabled: wait for the next sign-in.
                control.forget_key();
                tracing::info!("sync stopped: the account it acted for is disabled");
                Duration::from_secs(30)
            }
            Err(e) => {
                failures += 1;
                let wait = backoff(failures, rand::thread_rng().gen_range(-1.0..1.0));
                tracing::warn!(
                    code = e.code(),
                    failures,
                    wait_s = wait.as_secs(),
                    "sync failed"
                );
                wait
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(4, 0.0), Duration::from_secs(80));
        assert_eq!(backoff(40, 0.0), LONGEST_WAIT);
        assert_eq!(backoff(1, 1.0), Duration::from_secs(12));
        assert_eq!(backoff(1, -1.0), Duration::from_secs(8));
    }
}
