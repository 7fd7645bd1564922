//! The unit's periodic report, counted from the records themselves: tips by category,
//! channel, status and hamlet; time to transfer and to resolve; overdue tips; questions
//! answered; hamlet groups and their members; the unit's pages. Each figure comes with the
//! previous period's. Reporter identity is never read here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use ts_rs::TS;

use binhyen_domain::period::Period;
use binhyen_domain::tip::{Category, Channel, Status};

pub use crate::settings::DeadlineRules;
use crate::sql::ts;
use crate::{Result, Station};

/// One figure, this period and the one before.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Figure {
    pub key: String,
    pub label: String,
    #[ts(type = "number")]
    pub current: i64,
    #[ts(type = "number")]
    pub previous: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct MatrixCell {
    pub category: String,
    pub channel: String,
    pub status: String,
    #[ts(type = "number")]
    pub count: i64,
}

/// Hours from receipt to a step (transfer, or resolution), over the tips received in the
/// period that reached it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Timing {
    #[ts(type = "number")]
    pub count: i64,
    pub median_hours: Option<f64>,
    pub worst_hours: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct OverdueTip {
    pub id: String,
    /// The commune of the tip (register numbers repeat across communes).
    pub unit_code: String,
    pub register_no: String,
    pub received_at: String,
    pub hamlet: Option<String>,
    pub hours_late: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct UnitReport {
    pub unit_code: String,
    pub unit_name: String,
    pub province_name: Option<String>,
    pub period: Period,
    /// What the period is compared with: the period before, or, while the period is not
    /// over, as many days of the period before (the first 7 days of November beside the
    /// first 7 of December).
    pub previous: Period,
    /// Set while the period is not over: "Tháng 12/2026 chưa kết thúc: số liệu đến hết ngày
    /// 07/12/2026, so với cùng kỳ (từ 01/11/2026 đến 07/11/2026)".
    pub unfinished: Option<String>,
    pub generated_at: String,
    pub tips: Figure,
    pub by_category: Vec<Figure>,
    pub by_channel: Vec<Figure>,
    /// Status at the end of the period.
    pub by_status: Vec<Figure>,
    pub matrix: Vec<MatrixCell>,
    /// By hamlet (a commune's report; empty at the province, where hamlet names repeat).
    pub by_hamlet: Vec<Figure>,
    /// Tips received per commune (a province's report: every commune, those with none too;
    /// empty for a commune).
    pub by_unit: Vec<Figure>,
    pub transfer: Timing,
    pub resolve: Timing,
    pub rules: DeadlineRules,
    pub overdue: Vec<OverdueTip>,
    pub admin_questions_resolved: Figure,
    pub questions_answered_online: Figure,
    pub groups: Figure,
    pub group_members: Figure,
    pub followers: Figure,
    pub posts: Figure,
    pub views: Figure,
}

/// A tip as the report counts it.
struct Row {
    id: String,
    unit: String,
    register_no: String,
    received_at: String,
    category: String,
    channel: String,
    hamlet: Option<String>,
    remote: bool,
    /// Status at the end of the period, and when it was first transferred / resolved.
    status: String,
    transferred_at: Option<String>,
    resolved_at: Option<String>,
}

/// From a tip's status changes ("at status" pairs, in any order): its status at `end` (the
/// latest change before it; "received" if none), and when it was first transferred and
/// first resolved or closed. Times are stored in one fixed format, so they compare as text.
fn status_history(history: &str, end: &str) -> (String, Option<String>, Option<String>) {
    let mut last: Option<(&str, &str)> = None;
    let (mut transferred, mut resolved): (Option<&str>, Option<&str>) = (None, None);
    for (at, status) in history.split(',').filter_map(|p| p.split_once(' ')) {
        if at < end && last.is_none_or(|l| (at, status) > l) {
            last = Some((at, status));
        }
        let slot = match status {
            "transferred" => &mut transferred,
            "resolved" | "closed" => &mut resolved,
            _ => continue,
        };
        *slot = Some(slot.map_or(at, |seen| seen.min(at)));
    }
    (
        last.map_or_else(|| "received".to_string(), |(_, s)| s.to_string()),
        transferred.map(str::to_string),
        resolved.map(str::to_string),
    )
}

fn hours(from: &str, to: &str) -> Option<f64> {
    let a = DateTime::parse_from_rfc3339(from).ok()?;
    let b = DateTime::parse_from_rfc3339(to).ok()?;
    Some((b - a).num_seconds() as f64 / 3600.0)
}

fn timing(mut v: Vec<f64>) -> Timing {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    };
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Timing {
        count: n as i64,
        median_hours: median.map(round),
        worst_hours: v.last().copied().map(round),
    }
}

impl Station {
    /// The tips received in [start, end) as the report counts them; `crime_only` keeps the
    /// crime tips (those with a transfer deadline). The rows are read in received order
    /// (`+unit_code` keeps SQLite on the time index: a province's communes are interleaved
    /// in time, and walking them commune by commune reads every page once per commune).
    fn report_rows(&self, start: &str, end: &str, crime_only: bool) -> Result<Vec<Row>> {
        // Each tip's status changes come in one look-up (the covering index of v8), as
        // "at status" pairs; the status at `end`, the first transfer and the first
        // resolution are picked out below.
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, t.register_no, t.received_at, t.category, t.channel, h.name, COALESCE(h.remote, 0),
                    (SELECT group_concat(a.at || ' ' || a.to_status, ',') FROM tip_actions a
                      WHERE a.tip_id = t.id AND a.to_status IS NOT NULL),
                    t.unit_code
             FROM tips t LEFT JOIN hamlets h ON h.id = t.hamlet_id
             WHERE +t.unit_code IN (SELECT code FROM units WHERE code = ?3 OR parent_code = ?3)
               AND t.received_at >= ?1 AND t.received_at < ?2
               AND (?4 = 0 OR t.category IN ('crime_denunciation', 'crime_report'))",
        )?;
        let rows = stmt
            .query_map(
                params![start, end, self.info().unit_code, crime_only],
                |r| {
                    let history: Option<String> = r.get(7)?;
                    let (status, transferred_at, resolved_at) =
                        status_history(history.as_deref().unwrap_or(""), end);
                    Ok(Row {
                        id: r.get(0)?,
                        register_no: r.get(1)?,
                        received_at: r.get(2)?,
                        category: r.get(3)?,
                        channel: r.get(4)?,
                        hamlet: r.get(5)?,
                        remote: r.get::<_, i64>(6)? != 0,
                        status,
                        transferred_at,
                        resolved_at,
                        unit: r.get(8)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Tips received before `end` and still waiting for transfer at `end` (for overdue).
    fn open_crime_tips(&self, end: &str) -> Result<Vec<Row>> {
        Ok(self
            .report_rows("", end, true)?
            .into_iter()
            .filter(|r| {
                matches!(r.category.as_str(), "crime_denunciation" | "crime_report")
                    && matches!(r.status.as_str(), "received" | "verifying")
            })
            .collect())
    }

    fn sum(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<i64> {
        Ok(self
            .conn
            .query_row(sql, args, |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0))
    }

    /// The report of this station's unit for `period`, as of `now`.
    pub fn unit_report(
        &self,
        period: &Period,
        rules: DeadlineRules,
        now: DateTime<Utc>,
    ) -> Result<UnitReport> {
        self.require(binhyen_domain::access::Permission::ReportView)?;
        let (previous, unfinished) = compared_with(period, now);
        let (start, end) = period.utc_range();
        let (ps, pe) = previous.utc_range();
        let (s, e, ps, pe) = (ts(start), ts(end), ts(ps), ts(pe));
        let cur = self.report_rows(&s, &e, false)?;
        let prev = self.report_rows(&ps, &pe, false)?;

        let count_by = |rows: &[Row], f: &dyn Fn(&Row) -> String| {
            let mut m: BTreeMap<String, i64> = BTreeMap::new();
            for r in rows {
                *m.entry(f(r)).or_default() += 1;
            }
            m
        };
        let figures = |keys: Vec<(String, String)>, f: &dyn Fn(&Row) -> String| -> Vec<Figure> {
            let (c, p) = (count_by(&cur, f), count_by(&prev, f));
            keys.into_iter()
                .map(|(key, label)| Figure {
                    current: c.get(&key).copied().unwrap_or(0),
                    previous: p.get(&key).copied().unwrap_or(0),
                    key,
                    label,
                })
                .collect()
        };
        let by_category = figures(
            Category::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), c.label().to_string()))
                .collect(),
            &|r| r.category.clone(),
        );
        let by_channel = figures(
            Channel::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), c.label().to_string()))
                .collect(),
            &|r| r.channel.clone(),
        );
        let by_status = figures(
            Status::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), c.label().to_string()))
                .collect(),
            &|r| r.status.clone(),
        );
        let communes = crate::units::children(&self.conn, &self.info().unit_code)?;
        let by_unit = if communes.is_empty() {
            Vec::new()
        } else {
            let mut keys: Vec<(String, String)> =
                communes.into_iter().map(|u| (u.code, u.name)).collect();
            keys.sort_by(|a, b| binhyen_domain::text::vi_cmp(&a.1, &b.1));
            figures(keys, &|r| r.unit.clone())
        };
        let province_level = !by_unit.is_empty();
        let mut hamlet_keys: Vec<String> = cur
            .iter()
            .chain(prev.iter())
            .filter(|_| !province_level)
            .map(|r| r.hamlet.clone().unwrap_or_default())
            .collect();
        hamlet_keys.sort_by(|a, b| binhyen_domain::text::vi_cmp(a, b));
        hamlet_keys.dedup();
        let by_hamlet = figures(
            hamlet_keys
                .into_iter()
                .map(|h| {
                    let label = if h.is_empty() {
                        "Chưa rõ thôn, buôn".to_string()
                    } else {
                        h.clone()
                    };
                    (h, label)
                })
                .collect(),
            &|r| r.hamlet.clone().unwrap_or_default(),
        );
        let mut matrix: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        for r in &cur {
            *matrix
                .entry((r.category.clone(), r.channel.clone(), r.status.clone()))
                .or_default() += 1;
        }
        let transfer = timing(
            cur.iter()
                .filter_map(|r| {
                    r.transferred_at
                        .as_deref()
                        .filter(|t| *t < e.as_str())
                        .and_then(|t| hours(&r.received_at, t))
                })
                .collect(),
        );
        let resolve = timing(
            cur.iter()
                .filter_map(|r| {
                    r.resolved_at
                        .as_deref()
                        .filter(|t| *t < e.as_str())
                        .and_then(|t| hours(&r.received_at, t))
                })
                .collect(),
        );
        // Overdue at the end of the period (or now, for the period under way).
        let as_of = ts(now.min(end));
        let mut overdue: Vec<OverdueTip> = self
            .open_crime_tips(&e)?
            .into_iter()
            .filter_map(|r| {
                let limit = f64::from(if r.remote {
                    rules.transfer_hours_remote
                } else {
                    rules.transfer_hours
                });
                let waited = hours(&r.received_at, &as_of)?;
                (waited > limit).then(|| OverdueTip {
                    id: r.id,
                    unit_code: r.unit,
                    register_no: r.register_no,
                    received_at: r.received_at,
                    hamlet: r.hamlet,
                    hours_late: ((waited - limit) * 10.0).round() / 10.0,
                })
            })
            .collect();
        overdue.sort_by(|a, b| b.hours_late.total_cmp(&a.hours_late));

        let unit = self.info().unit_code.clone();
        let resolved_questions = |start: &str, end: &str| -> Result<i64> {
            self.sum(
                "SELECT count(*) FROM tips t WHERE t.unit_code IN (SELECT code FROM units WHERE code = ?1 OR parent_code = ?1)
                   AND t.category = 'admin_question'
                   AND EXISTS (SELECT 1 FROM tip_actions a WHERE a.tip_id = t.id
                               AND a.to_status IN ('resolved', 'closed') AND a.at >= ?2 AND a.at < ?3)",
                &[&unit, &start, &end],
            )
        };
        // Metrics are recorded by day (Vietnam calendar day), compared as dates.
        let (sd, ed) = (period.from.to_string(), period.to.to_string());
        let (psd, ped) = (previous.from.to_string(), previous.to.to_string());
        let metric_sum = |col: &str, from: &str, to: &str| -> Result<i64> {
            self.sum(
                &format!(
                    "SELECT sum(m.{col}) FROM channel_metrics m JOIN channels c ON c.id = m.channel_id
                     WHERE c.unit_code IN (SELECT code FROM units WHERE code = ?1 OR parent_code = ?1)
                       AND m.recorded_on >= ?2 AND m.recorded_on <= ?3"
                ),
                &[&unit, &from, &to],
            )
        };
        let followers_at = |to: &str| -> Result<i64> {
            self.sum(
                "SELECT sum(m.followers) FROM channel_metrics m JOIN channels c ON c.id = m.channel_id
                 WHERE c.unit_code IN (SELECT code FROM units WHERE code = ?1 OR parent_code = ?1)
                   AND m.recorded_on = (
                     SELECT max(m2.recorded_on) FROM channel_metrics m2
                     WHERE m2.channel_id = m.channel_id AND m2.recorded_on <= ?2)",
                &[&unit, &to],
            )
        };
        let groups_at = |to: &str| -> Result<(i64, i64)> {
            let groups = self.sum(
                // A group counts from when it was entered, or from its first member count
                // if that is earlier (groups are often entered after the fact).
                "SELECT count(*) FROM online_groups g JOIN hamlets h ON h.id = g.hamlet_id
                 WHERE h.unit_code IN (SELECT code FROM units WHERE code = ?1 OR parent_code = ?1)
                   AND (substr(g.created_at, 1, 10) <= ?2
                        OR EXISTS (SELECT 1 FROM group_member_counts c
                                   WHERE c.group_id = g.id AND c.counted_on <= ?2))",
                &[&unit, &to],
            )?;
            let members = self.sum(
                "SELECT sum(c.members) FROM group_member_counts c
                 JOIN online_groups g ON g.id = c.group_id JOIN hamlets h ON h.id = g.hamlet_id
                 WHERE h.unit_code IN (SELECT code FROM units WHERE code = ?1 OR parent_code = ?1)
                   AND c.counted_on = (
                     SELECT max(c2.counted_on) FROM group_member_counts c2
                     WHERE c2.group_id = c.group_id AND c2.counted_on <= ?2)",
                &[&unit, &to],
            )?;
            Ok((groups, members))
        };
        let fig = |key: &str, label: &str, current: i64, previous: i64| Figure {
            key: key.into(),
            label: label.into(),
            current,
            previous,
        };
        let (g, m) = groups_at(&ed)?;
        let (pg, pm) = groups_at(&ped)?;
        Ok(UnitReport {
            unit_code: unit.clone(),
            unit_name: self.info().unit_name.clone(),
            province_name: self.info().province_name.clone(),
            tips: fig(
                "tips",
                "Nguồn tin tiếp nhận",
                cur.len() as i64,
                prev.len() as i64,
            ),
            by_category,
            by_channel,
            by_status,
            matrix: matrix
                .into_iter()
                .map(|((category, channel, status), count)| MatrixCell {
                    category,
                    channel,
                    status,
                    count,
                })
                .collect(),
            by_hamlet,
            by_unit,
            transfer,
            resolve,
            rules,
            overdue,
            admin_questions_resolved: fig(
                "admin_questions_resolved",
                "Hỏi đáp thủ tục hành chính đã trả lời",
                resolved_questions(&s, &e)?,
                resolved_questions(&ps, &pe)?,
            ),
            questions_answered_online: fig(
                "questions_answered_online",
                "Câu hỏi trả lời trên trang của đơn vị",
                metric_sum("questions_answered", &sd, &ed)?,
                metric_sum("questions_answered", &psd, &ped)?,
            ),
            groups: fig("groups", "Nhóm Zalo/Facebook của thôn, buôn", g, pg),
            group_members: fig("group_members", "Thành viên các nhóm", m, pm),
            followers: fig(
                "followers",
                "Người theo dõi trang của đơn vị",
                followers_at(&ed)?,
                followers_at(&ped)?,
            ),
            posts: fig(
                "posts",
                "Bài đăng",
                metric_sum("posts", &sd, &ed)?,
                metric_sum("posts", &psd, &ped)?,
            ),
            views: fig(
                "views",
                "Lượt xem",
                metric_sum("views", &sd, &ed)?,
                metric_sum("views", &psd, &ped)?,
            ),
            period: period.clone(),
            previous,
            unfinished,
            generated_at: ts(now),
        })
    }
}

/// The period `period` is compared with, as of `now`, and the words that say a period is
/// not over. A whole period is compared with the whole period before; one still running
/// (today is inside it) with as many days of the period before, today counted: a month's
/// first week is not set beside a whole month. A period that has not begun compares nothing
/// new and says so.
pub fn compared_with(period: &Period, now: DateTime<Utc>) -> (Period, Option<String>) {
    let previous = period.previous();
    let today = now.with_timezone(&binhyen_domain::time::VN_TZ).date_naive();
    if today > period.to {
        return (previous, None);
    }
    if today < period.from {
        return (
            previous,
            Some(format!("{} chưa bắt đầu: chưa có số liệu.", period.label)),
        );
    }
    // The same point of the period before: as many whole months and days in (30 June beside
    // 31 March of a quarter becomes the quarter's last day; 29 February a year on is 28),
    // as many days for a range of days.
    let to = match period.kind {
        binhyen_domain::period::PeriodKind::Range => {
            previous.from + chrono::Duration::days((today - period.from).num_days())
        }
        _ => {
            use chrono::Datelike;
            let months = (today.year() - period.from.year()) * 12 + today.month() as i32
                - period.from.month() as i32;
            let month_start = previous
                .from
                .checked_add_months(chrono::Months::new(months.max(0) as u32))
                .unwrap_or(previous.to);
            let month_end = month_start
                .checked_add_months(chrono::Months::new(1))
                .map(|d| d - chrono::Duration::days(1))
                .unwrap_or(previous.to);
            (month_start + chrono::Duration::days(i64::from(today.day()) - 1)).min(month_end)
        }
    }
    .min(previous.to);
    let same = Period::range(previous.from, to).unwrap_or_else(|_| previous.clone());
    let note = format!(
        "{} chưa kết thúc: số liệu đến hết ngày {}, so với cùng kỳ ({}).",
        period.label,
        today.format("%d/%m/%Y"),
        same.label.to_lowercase()
    );
    (same, Some(note))
}

#[cfg(test)]
mod tests {
    use super::{compared_with, status_history};
    use binhyen_domain::period::Period;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_period_not_over_is_compared_with_as_many_days_before() {
        let dec = Period::parse("2026-12").unwrap();
        // 7 December, 23:40 in Vietnam (16:40 UTC).
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 16, 40, 0).unwrap();
        let (prev, note) = compared_with(&dec, now);
        assert_eq!(prev.from.to_string(), "2026-11-01");
        assert_eq!(prev.to.to_string(), "2026-11-07");
        assert_eq!(
            note.as_deref(),
            Some("Tháng 12/2026 chưa kết thúc: số liệu đến hết ngày 07/12/2026, so với cùng kỳ (từ 01/11/2026 đến 07/11/2026).")
        );
        // 17:30 UTC is already 8 December in Vietnam.
        let later = Utc.with_ymd_and_hms(2026, 12, 7, 17, 30, 0).unwrap();
        assert_eq!(compared_with(&dec, later).0.to.to_string(), "2026-11-08");
        // The 31st of a month beside a 30-day month: the whole month before.
        let jan = Period::parse("2026-03").unwrap();
        let end = Utc.with_ymd_and_hms(2026, 3, 31, 3, 0, 0).unwrap();
        assert_eq!(compared_with(&jan, end).0.to.to_string(), "2026-02-28");
        // A quarter: 31 July is the end of July's month in the quarter before (30 April),
        // not the 122nd day; a year: 29 February beside 28 February.
        let q3 = Period::parse("2026-Q3").unwrap();
        let jul31 = Utc.with_ymd_and_hms(2026, 7, 31, 3, 0, 0).unwrap();
        assert_eq!(compared_with(&q3, jul31).0.to.to_string(), "2026-04-30");
        let y2028 = Period::parse("2028").unwrap();
        let feb29 = Utc.with_ymd_and_hms(2028, 2, 29, 3, 0, 0).unwrap();
        assert_eq!(compared_with(&y2028, feb29).0.to.to_string(), "2027-02-28");
        let mar1 = Utc.with_ymd_and_hms(2025, 3, 1, 3, 0, 0).unwrap();
        let y2025 = Period::parse("2025").unwrap();
        assert_eq!(compared_with(&y2025, mar1).0.to.to_string(), "2024-03-01");
        // A range of days: as many days.
        let r = Period::parse("2026-12-01..2026-12-20").unwrap();
        assert_eq!(
            compared_with(&r, now).0.label,
            "Từ 11/11/2026 đến 17/11/2026"
        );
        // Over: the whole month before, nothing said.
        let nov = Period::parse("2026-11").unwrap();
        let (prev, note) = compared_with(&nov, now);
        assert_eq!((prev.label.as_str(), note), ("Tháng 10/2026", None));
        // Not begun.
        let next = Period::parse("2027-01").unwrap();
        assert!(compared_with(&next, now)
            .1
            .unwrap()
            .contains("chưa bắt đầu"));
    }

    #[test]
    fn the_status_at_the_end_and_the_first_transfer_and_resolution() {
        let h = "2026-10-03T00:00:00.000Z resolved,2026-10-01T00:00:00.000Z received,\
                 2026-10-02T00:00:00.000Z transferred,2026-11-05T00:00:00.000Z closed";
        // In any order; a change at the end itself belongs to the next period.
        assert_eq!(
            status_history(h, "2026-10-03T00:00:00.000Z"),
            (
                "transferred".into(),
                Some("2026-10-02T00:00:00.000Z".into()),
                Some("2026-10-03T00:00:00.000Z".into())
            )
        );
        assert_eq!(status_history(h, "2026-12-01T00:00:00.000Z").0, "closed");
        assert_eq!(status_history(h, "2026-10-01T00:00:00.000Z").0, "received");
        assert_eq!(
            status_history("", "2026-12-01T00:00:00.000Z"),
            ("received".into(), None, None)
        );
    }
}
