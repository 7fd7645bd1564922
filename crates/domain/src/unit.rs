//! Administrative units: the official hierarchy (a unit has a parent), provinces and
//! communes today, with no fixed number of levels assumed.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One administrative unit with its official code (QĐ 19/2025/QĐ-TTg).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Unit {
    pub code: String,
    pub name: String,
    /// "Tỉnh", "Thành phố" for provinces; "Xã", "Phường", "Đặc khu" for communes.
    pub unit_type: String,
    pub parent_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub area_km2: Option<f64>,
}

/// A commune code has 5 digits, a province code 2.
pub fn is_commune_code(code: &str) -> bool {
    code.len() == 5 && code.chars().all(|c| c.is_ascii_digit())
}

pub fn is_province_code(code: &str) -> bool {
    code.len() == 2 && code.chars().all(|c| c.is_ascii_digit())
}
