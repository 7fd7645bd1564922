//! Reporting periods: a month, a quarter, a year or any range of days, counted in Vietnam
//! time (a tip received at 23:30 on the last day of a month belongs to that month).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Whole days, both ends included, in Vietnam time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Period {
    #[ts(type = "string")]
    pub from: NaiveDate,
    #[ts(type = "string")]
    pub to: NaiveDate,
    /// "Tháng 10/2026", "Quý IV/2026", "Năm 2026", "Từ 01/10/2026 đến 15/10/2026".
    pub label: String,
    pub kind: PeriodKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
    Range,
}

fn bad(s: &str) -> String {
    format!("Kỳ báo cáo \"{s}\" không hợp lệ: dùng 2026-10 (tháng), 2026-Q4 (quý) hoặc 2026 (năm).")
}

fn month_end(y: i32, m: u32) -> Option<NaiveDate> {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).map(|d| d - Duration::days(1))
}

const ROMAN: [&str; 4] = ["I", "II", "III", "IV"];

impl Period {
    pub fn month(y: i32, m: u32) -> Option<Period> {
        Some(Period {
            from: NaiveDate::from_ymd_opt(y, m, 1)?,
            to: month_end(y, m)?,
            label: format!("Tháng {m}/{y}"),
            kind: PeriodKind::Month,
        })
    }

    pub fn quarter(y: i32, q: u32) -> Option<Period> {
        if !(1..=4).contains(&q) {
            return None;
        }
        Some(Period {
            from: NaiveDate::from_ymd_opt(y, 3 * q - 2, 1)?,
            to: month_end(y, 3 * q)?,
            label: format!("Quý {}/{y}", ROMAN[(q - 1) as usize]),
            kind: PeriodKind::Quarter,
        })
    }

    pub fn year(y: i32) -> Option<Period> {
        Some(Period {
            from: NaiveDate::from_ymd_opt(y, 1, 1)?,
            to: NaiveDate::from_ymd_opt(y, 12, 31)?,
            label: format!("Năm {y}"),
            kind: PeriodKind::Year,
        })
    }

    pub fn range(from: NaiveDate, to: NaiveDate) -> Result<Period, String> {
        if to < from {
            return Err(format!(
                "Ngày kết thúc {} trước ngày bắt đầu {}.",
                to.format("%d/%m/%Y"),
                from.format("%d/%m/%Y")
            ));
        }
        Ok(Period {
            from,
            to,
            label: format!(
                "Từ {} đến {}",
                from.format("%d/%m/%Y"),
                to.format("%d/%m/%Y")
            ),
            kind: PeriodKind::Range,
        })
    }

    /// The period a command line names: `--period` (see [`Period::parse`]) or `--from` and
    /// `--to` (days, both included).
    pub fn from_args(
        period: Option<&str>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Period, String> {
        match (period, from, to) {
            (Some(p), _, _) => Period::parse(p),
            (None, Some(f), Some(t)) => Period::range(f, t),
            _ => Err(
                "Hãy chọn kỳ báo cáo: --period 2026-10 (hoặc 2026-Q4, 2026), hoặc --from và --to."
                    .to_string(),
            ),
        }
    }

    /// "2026-10", "2026-Q4", "2026", or a range of days "2026-10-01..2026-10-15".
    pub fn parse(s: &str) -> Result<Period, String> {
        let t = s.trim();
        if let Some((from, to)) = t.split_once("..") {
            let day = |d: &str| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| bad(s));
            return Period::range(day(from)?, day(to)?);
        }
        let num = |x: &str| x.parse::<u32>().ok();
        let p = if let Some((y, rest)) = t.split_once('-') {
            let y: i32 = y.parse().map_err(|_| bad(s))?;
            if let Some(q) = rest.strip_prefix(['Q', 'q']) {
                num(q).and_then(|q| Period::quarter(y, q))
            } else {
                num(rest).and_then(|m| Period::month(y, m))
            }
        } else {
            t.parse::<i32>().ok().and_then(Period::year)
        };
        p.filter(|p| (2000..=2100).contains(&p.from.year()))
            .ok_or_else(|| bad(s))
    }

    /// The period just before, of the same kind (the month before, the quarter before, the
    /// year before; for a range, as many days before).
    pub fn previous(&self) -> Period {
        let fallback = || {
            let days = (self.to - self.from).num_days();
            let to = self.from - Duration::days(1);
            Period::range(to - Duration::days(days), to).unwrap_or_else(|_| self.clone())
        };
        let prev_day = self.from - Duration::days(1);
        match self.kind {
            PeriodKind::Month => Period::month(prev_day.year(), prev_day.month()),
            PeriodKind::Quarter => Period::quarter(prev_day.year(), (prev_day.month() - 1) / 3 + 1),
            PeriodKind::Year => Period::year(self.from.year() - 1),
            PeriodKind::Range => None,
        }
        .unwrap_or_else(fallback)
    }

    /// [start, end) in UTC: midnight Vietnam time of the first day to midnight after the last.
    pub fn utc_range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |d: NaiveDate| {
            Ho_Chi_Minh
                .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
                .single()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        (at(self.from), at(self.to + Duration::days(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_step_back() {
        let oct = Period::parse("2026-10").unwrap();
        assert_eq!(oct.label, "Tháng 10/2026");
        assert_eq!(oct.to, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
        assert_eq!(oct.previous().label, "Tháng 9/2026");
        assert_eq!(
            Period::parse("2026-01").unwrap().previous().label,
            "Tháng 12/2025"
        );
        let q4 = Period::parse("2026-Q4").unwrap();
        assert_eq!(q4.label, "Quý IV/2026");
        assert_eq!(q4.previous().label, "Quý III/2026");
        assert_eq!(
            Period::parse("2026-Q1").unwrap().previous().label,
            "Quý IV/2025"
        );
        assert_eq!(Period::parse("2026").unwrap().previous().label, "Năm 2025");
        let r = Period::range(
            NaiveDate::from_ymd_opt(2026, 10, 11).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 20).unwrap(),
        )
        .unwrap();
        let p = r.previous();
        assert_eq!((p.from.day(), p.to.day()), (1, 10));
        for bad in ["2026-13", "2026-Q5", "tháng 10", "", "1999"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_month_runs_midnight_to_midnight_vietnam_time() {
        let (start, end) = Period::parse("2026-10").unwrap().utc_range();
        assert_eq!(start.to_rfc3339(), "2026-09-30T17:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-10-31T17:00:00+00:00");
    }

    #[test]
    fn a_range_of_days_parses_too() {
        let p = Period::parse("2026-10-01..2026-10-15").unwrap();
        assert_eq!(p.kind, PeriodKind::Range);
        assert_eq!(p.label, "Từ 01/10/2026 đến 15/10/2026");
        assert!(Period::parse("2026-10-15..2026-10-01").is_err());
        assert!(Period::parse("2026-10-01..hôm nay").is_err());
    }
}
