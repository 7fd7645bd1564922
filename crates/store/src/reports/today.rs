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

/// How near its deadline a crime tip counts as due soon: the window's amber, and the
/// moment the desktop is told.
pub const SOON_HOURS: f64 = 6.0;

/// Where a crime tip stands against its transfer deadline, for the desktop's notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Within [`SOON_HOURS`] of its deadline.
    Soon,
    /// Past it.
    Late,
}

/// A notice for the desktop: a title and a body naming tips by register number and hours
/// only (never their content, never a reporter), for the tips that reached a stage not in
/// `told`; `told` then holds them. None when there is nothing new.
pub fn deadline_notice(
    today: &Today,
    told: &mut std::collections::HashSet<(String, Stage)>,
) -> Option<(String, String)> {
    let mut late = Vec::new();
    let mut soon = Vec::new();
    for t in &today.overdue {
        if told.insert((t.id.clone(), Stage::Late)) {
            late.push(format!(
                "{} quá hạn {:.0} giờ",
                t.register_no, -t.hours_left
            ));
        }
    }
    for t in today.due.iter().filter(|t| t.hours_left <= SOON_HOURS) {
        if told.insert((t.id.clone(), Stage::Soon)) {
            soon.push(format!(
                "{} còn {:.0} giờ",
                t.register_no,
                t.hours_left.max(0.0)
            ));
        }
    }
    let n = late.len() + soon.len();
    if n == 0 {
        return None;
    }
    let title = match (late.len(), soon.len()) {
        (0, s) => format!("{s} nguồn tin về tội phạm sắp hết hạn chuyển CQĐT"),
        (l, 0) => format!("{l} nguồn tin về tội phạm đã quá hạn chuyển CQĐT"),
        (l, s) => format!("{l} nguồn tin quá hạn, {s} sắp hết hạn chuyển CQĐT"),
    };
    let mut lines: Vec<String> = late.into_iter().chain(soon).collect();
    if lines.len() > 5 {
        let more = lines.len() - 5;
        lines.truncate(5);
        lines.push(format!("và {more} nguồn tin khác (xem màn hình Hôm nay)"));
    }
    Some((title, lines.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(id: &str, no: &str, hours_left: f64) -> DueTip {
        let now = Utc::now();
        DueTip {
            id: id.into(),
            register_no: no.into(),
            received_at: now,
            category: Category::CrimeReport,
            status: Status::Received,
            urgency: Urgency::Normal,
            hamlet: None,
            remote: false,
            deadline: now,
            hours_left,
        }
    }

    #[test]
    fn a_notice_names_each_tip_once_per_stage() {
        let mut today = Today {
            received_today: 0,
            open: 0,
            verifying: 0,
            overdue: vec![due("a", "0001/2026/M1", -3.0)],
            due: vec![
                due("b", "0002/2026/M1", 2.4),
                due("c", "0003/2026/M1", 20.0),
            ],
            rules: DeadlineRules::default(),
        };
        let mut told = std::collections::HashSet::new();
        let (title, body) = deadline_notice(&today, &mut told).unwrap();
        assert_eq!(title, "1 nguồn tin quá hạn, 1 sắp hết hạn chuyển CQĐT");
        assert_eq!(body, "0001/2026/M1 quá hạn 3 giờ; 0002/2026/M1 còn 2 giờ");
        // Nothing new: nothing said again.
        assert_eq!(deadline_notice(&today, &mut told), None);
        // The tip that was near now passes its deadline: told once more, as late.
        today.due.remove(0);
        today.overdue.push(due("b", "0002/2026/M1", -0.5));
        let (title, body) = deadline_notice(&today, &mut told).unwrap();
        assert_eq!(title, "1 nguồn tin về tội phạm đã quá hạn chuyển CQĐT");
        assert_eq!(body, "0002/2026/M1 quá hạn 0 giờ");
    }
}
