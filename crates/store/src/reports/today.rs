//! The "Today" screen's figures: what came in today, what is still open, and the crime tips
//! whose transfer deadline is near or past, by the station's deadline rules.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use serde::Serialize;
use ts_rs::TS;

use binhyen_domain::tip::{Category, Status, Urgency};

use crate::settings::DeadlineRules;
use crate::sql::{get_enum, get_ts, ts};
use crate::{Result, Station};

/// A crime tip waiting for transfer, with its deadline.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DueTip {
    pub id: String,
    pub register_no: String,
    pub received_at: DateTime<Utc>,
    pub category: Category,
    pub status: Status,
    pub urgency: Urgency,
    pub hamlet: Option<String>,
    pub remote: bool,
    pub deadline: DateTime<Utc>,
    /// Hours until the deadline; negative once it has passed.
    pub hours_left: f64,
}

/// The station's day at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Today {
    /// Tips received since midnight, Vietnam time.
    pub received_today: u32,
    /// Tips received or being verified.
    pub open: u32,
    pub verifying: u32,
    /// Crime tips past their transfer deadline, the longest overdue first.
    pub overdue: Vec<DueTip>,
    /// Crime tips whose deadline is still ahead, the nearest first.
    pub due: Vec<DueTip>,
    pub rules: DeadlineRules,
}

/// Midnight of `now`'s day in Vietnam, as UTC.
pub fn vn_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let vn = FixedOffset::east_opt(7 * 3600).expect("UTC+7 is a valid offset");
    let day = now.with_timezone(&vn).date_naive();
    vn.from_local_datetime(&day.and_time(NaiveTime::MIN))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

impl Station {
    pub fn today(&self, now: DateTime<Utc>) -> Result<Today> {
        self.require(binhyen_domain::access::Permission::TipRead)?;
        let rules = self.deadline_rules()?;
        let count = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<u32> {
            Ok(self.conn.query_row(sql, args, |r| r.get::<_, u32>(0))?)
        };
        let received_today = count(
            "SELECT count(*) FROM tips WHERE received_at >= ?1",
            &[&ts(vn_midnight(now))],
        )?;
        let open = count(
            "SELECT count(*) FROM tips WHERE status IN ('received','verifying')",
            &[],
        )?;
        let verifying = count("SELECT count(*) FROM tips WHERE status = 'verifying'", &[])?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, t.register_no, t.received_at, t.category, t.status, t.urgency, h.name,
                    COALESCE(h.remote, 0)
               FROM tips t LEFT JOIN hamlets h ON h.id = t.hamlet_id
              WHERE t.category IN ('crime_denunciation','crime_report')
                AND t.status IN ('received','verifying')",
        )?;
        let mut tips = stmt
            .query_map([], |r| {
                let received_at = get_ts(r, 2)?;
                let remote: bool = r.get(7)?;
                let hours = if remote {
                    rules.transfer_hours_remote
                } else {
                    rules.transfer_hours
                };
                let deadline = received_at + Duration::hours(i64::from(hours));
                let left = (deadline - now).num_seconds() as f64 / 3600.0;
                Ok(DueTip {
                    id: r.get(0)?,
                    register_no: r.get(1)?,
                    received_at,
                    category: get_enum(r, 3, Category::parse)?,
                    status: get_enum(r, 4, Status::parse)?,
                    urgency: get_enum(r, 5, Urgency::parse)?,
                    hamlet: r.get(6)?,
                    remote,
                    deadline,
                    hours_left: (left * 10.0).round() / 10.0,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tips.sort_by_key(|t| t.deadline);
        let (overdue, due): (Vec<_>, Vec<_>) = tips.into_iter().partition(|t| t.deadline <= now);
        Ok(Today {
            received_today,
            open,
            verifying,
            overdue,
            due,
            rules,
        })
    }
}
