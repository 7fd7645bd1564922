//! Time in the product: stored in UTC, shown and counted in Asia/Ho_Chi_Minh (UTC+7, no DST).

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;

pub use chrono_tz::Asia::Ho_Chi_Minh as VN_TZ;

/// The calendar year of an instant in Vietnam: a tip received at 00:30 on 1 January,
/// Vietnam time, belongs to the new year even though it is still 31 December in UTC.
pub fn vn_year(at: DateTime<Utc>) -> i32 {
    at.with_timezone(&Ho_Chi_Minh).year()
}

/// The calendar day of an instant in Vietnam.
pub fn vn_today(at: DateTime<Utc>) -> chrono::NaiveDate {
    at.with_timezone(&Ho_Chi_Minh).date_naive()
}

/// dd/MM/yyyy HH:mm in Vietnam time.
pub fn format_vn(at: DateTime<Utc>) -> String {
    at.with_timezone(&Ho_Chi_Minh)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// dd/MM/yyyy in Vietnam time.
pub fn format_vn_date(at: DateTime<Utc>) -> String {
    at.with_timezone(&Ho_Chi_Minh)
        .format("%d/%m/%Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_boundary_is_vietnam_time() {
        let at: DateTime<Utc> = "2025-12-31T17:30:00Z".parse().unwrap();
        assert_eq!(vn_year(at), 2026);
        assert_eq!(format_vn(at), "01/01/2026 00:30");
        let before: DateTime<Utc> = "2025-12-31T16:59:00Z".parse().unwrap();
        assert_eq!(vn_year(before), 2025);
    }
}
