//! Citizen identity numbers (CCCD): 12 digits = 3 (province of birth) + 1 (century and sex)
//! + 2 (year of birth) + 6 (serial).

use crate::error::FieldError;

/// Province-of-birth codes used in CCCD numbers (Circular 07/2016/TT-BCA, the 63 provinces
/// as they were when the numbers were issued).
const BIRTH_PROVINCES: &[u16] = &[
    1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35, 36, 37,
    38, 40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70, 72, 74, 75, 77,
    79, 80, 82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96,
];

/// Validates a citizen ID number against `current_year`; returns it without spaces.
pub fn validate_citizen_id(
    input: &str,
    field: &str,
    current_year: i32,
) -> Result<String, FieldError> {
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 12 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            "citizen_id_format",
            format!("Số định danh cá nhân \"{input}\" phải gồm đúng 12 chữ số."),
        ));
    }
    let num = |r: std::ops::Range<usize>| digits[r].parse::<i32>().unwrap_or(-1);
    let province = num(0..3);
    if !BIRTH_PROVINCES.iter().any(|&p| i32::from(p) == province) {
        return Err(FieldError::new(
            field,
            "citizen_id_province",
            format!(
                "Số định danh \"{input}\": mã tỉnh nơi đăng ký khai sinh {:03} không tồn tại.",
                province
            ),
        ));
    }
    let century_sex = num(3..4);
    let century_start = 1900 + (century_sex / 2) * 100;
    let year = century_start + num(4..6);
    if year > current_year || year < 1900 {
        return Err(FieldError::new(
            field,
            "citizen_id_year",
            format!("Số định danh \"{input}\": năm sinh {year} không hợp lệ."),
        ));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers() {
        assert_eq!(
            validate_citizen_id("066 0 85 012345", "id", 2026).unwrap(),
            "066085012345"
        );
        assert!(validate_citizen_id("001301012345", "id", 2026).is_ok()); // female, 2001
    }

    #[test]
    fn invalid_numbers() {
        let code = |s: &str| validate_citizen_id(s, "id", 2026).unwrap_err().code;
        assert_eq!(code("12345"), "citizen_id_format");
        assert_eq!(code("06608501234a"), "citizen_id_format");
        assert_eq!(code("003085012345"), "citizen_id_province");
        assert_eq!(code("066299012345"), "citizen_id_year"); // born 2099
        assert_eq!(code("066499012345"), "citizen_id_year"); // 22nd century
    }
}
