//! A unit's report computed at the province (`binhyen-server report`): the unit's records
//! as the server holds them are replayed into a throw-away station replica (in a private
//! temporary directory, encrypted like any station, deleted afterwards), and the station's
//! own report code counts them. So a province's figures are, by construction, the figures
//! its communes' laptops and a province-level station show; and reporter identity, never
//! pulled into the replica, cannot reach the report.

use chrono::{DateTime, Utc};
use rand::RngCore;

use binhyen_domain::access::Role;
use binhyen_domain::catalog::is_identity;
use binhyen_domain::period::Period;
use binhyen_store::replica::RemoteChange;
use binhyen_store::report::{DeadlineRules, UnitReport};
use binhyen_store::report_export::ReportFormat;
use binhyen_store::{FirstOfficer, InitOptions, Station};

use crate::db::{refuse, Backend, Code, DbError, DbResult, StationRow};

/// Changes applied to the replica per transaction.
const PAGE: u32 = 5_000;

fn store_error(e: binhyen_store::StoreError) -> DbError {
    DbError::Other(e.to_string())
}

/// The replica of `unit`'s records (a province: its own and every commune's), as of now.
pub fn replica(
    db: &dyn Backend,
    unit: &str,
    now: DateTime<Utc>,
) -> DbResult<(tempfile::TempDir, Station)> {
    if !db.unit_exists(unit)? {
        return Err(refuse(
            Code::UnknownUnit,
            format!("Không có đơn vị mã {unit}."),
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("binhyen-report-")
        .tempdir()
        .map_err(|e| DbError::Other(format!("temporary directory: {e}")))?;
    let mut secret = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let opts = InitOptions {
        unit_code: unit.to_string(),
        first_officer: FirstOfficer {
            username: "tinh".into(),
            full_name: "Máy chủ Công an tỉnh".into(),
            password: hex::encode(secret),
            role: Role::Analyst,
        },
        device_no: 1,
        demo: false,
    };
    let mut station = Station::init(dir.path(), &opts, now).map_err(store_error)?;
    let row = StationRow {
        id: "report".into(),
        unit_code: unit.to_string(),
        device_no: 0,
        created_at: String::new(),
        enrolled_at: None,
        revoked_at: None,
    };
    let mut after = 0;
    loop {
        let (changes, next, more) = db.pull(&row, after, PAGE)?;
        let remote: Vec<_> = changes
            .into_iter()
            .filter(|c| !is_identity(&c.change.entity) && c.change.entity != "conflict_identity")
            .map(RemoteChange::from)
            .collect();
        station
            .apply_page(&remote, Some(next), now)
            .map_err(store_error)?;
        after = next;
        if !more {
            break;
        }
    }
    Ok((dir, station))
}

/// The report of `unit` for `period`, with the legal deadline rules (a station's own rule
/// table stays on the station).
pub fn unit_report(
    db: &dyn Backend,
    unit: &str,
    period: &Period,
    now: DateTime<Utc>,
) -> DbResult<UnitReport> {
    let (_dir, station) = replica(db, unit, now)?;
    station
        .unit_report(period, DeadlineRules::default(), now)
        .map_err(store_error)
}

/// The report as a file: `json`, `csv`, `xlsx` or `pdf` (the station's own formats).
pub fn export(
    db: &dyn Backend,
    unit: &str,
    period: &Period,
    format: &str,
    now: DateTime<Utc>,
) -> DbResult<Vec<u8>> {
    let format: ReportFormat = format
        .parse()
        .map_err(|e: binhyen_store::StoreError| refuse(Code::BadFormat, e.to_string()))?;
    let report = unit_report(db, unit, period, now)?;
    format.render(&report).map_err(store_error)
}
