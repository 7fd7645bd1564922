//! Vietnamese phone numbers: accepted as 0…, 84… or +84…, stored as E.164 (+84…).
//! Pre-2018 11-digit mobile numbers are recognised and their new form is offered.

use phonenumber::country::Id;
use phonenumber::Mode;

use crate::error::FieldError;

/// The September 2018 renumbering of 11-digit mobile prefixes (old prefix without the
/// leading 0 → new prefix without the leading 0).
const OLD_MOBILE_PREFIXES: &[(&str, &str)] = &[
    // Viettel
    ("162", "32"),
    ("163", "33"),
    ("164", "34"),
    ("165", "35"),
    ("166", "36"),
    ("167", "37"),
    ("168", "38"),
    ("169", "39"),
    // MobiFone
    ("120", "70"),
    ("121", "79"),
    ("122", "77"),
    ("126", "76"),
    ("128", "78"),
    // VinaPhone
    ("123", "83"),
    ("124", "84"),
    ("125", "85"),
    ("127", "81"),
    ("129", "82"),
    // Vietnamobile
    ("186", "56"),
    ("188", "58"),
    // Gmobile
    ("199", "59"),
];

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    NotDigits,
    Invalid,
    /// A pre-2018 11-digit mobile number; `new` is its current E.164 form.
    OldMobile {
        new: String,
    },
}

impl PhoneError {
    pub fn to_field_error(&self, field: &str, input: &str) -> FieldError {
        match self {
            PhoneError::NotDigits => FieldError::new(
                field,
                "phone_not_digits",
                format!("Số điện thoại \"{input}\" chỉ được gồm chữ số (có thể bắt đầu bằng +84)."),
            ),
            PhoneError::Invalid => FieldError::new(
                field,
                "phone_invalid",
                format!("Số điện thoại \"{input}\" không phải số Việt Nam hợp lệ (ví dụ 0912 345 678 hoặc +84 912 345 678)."),
            ),
            PhoneError::OldMobile { new } => FieldError::new(
                field,
                "phone_old_mobile",
                format!("\"{input}\" là số di động 11 số cũ (trước 2018); số mới là {new}. Hãy nhập số mới."),
            )
            .with_suggestion(new.clone()),
        }
    }
}

/// The national significant number (no leading 0, no country code), or an error.
fn national_digits(input: &str) -> Result<String, PhoneError> {
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')' | '\u{00A0}'))
        .collect();
    let (plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest.to_string()),
        None => (false, compact),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(PhoneError::NotDigits);
    }
    if plus {
        return digits
            .strip_prefix("84")
            .map(|d| d.trim_start_matches('0').to_string())
            .ok_or(PhoneError::Invalid);
    }
    if let Some(rest) = digits.strip_prefix('0') {
        return Ok(rest.to_string());
    }
    if let Some(rest) = digits.strip_prefix("84") {
        if rest.len() >= 9 {
            return Ok(rest.trim_start_matches('0').to_string());
        }
    }
    // Nine or ten digits without a prefix: people often drop the leading 0.
    Ok(digits)
}

/// If `input` is a pre-2018 11-digit mobile number, its new E.164 form.
pub fn convert_old_mobile(input: &str) -> Option<String> {
    let nsn = national_digits(input).ok()?;
    if nsn.len() != 10 {
        return None;
    }
    OLD_MOBILE_PREFIXES
        .iter()
        .find(|(old, _)| nsn.starts_with(old))
        .map(|(old, new)| format!("+84{new}{}", &nsn[old.len()..]))
}

/// Validates a Vietnamese phone number and returns it in E.164 form ("+84912345678").
pub fn normalize_phone(input: &str) -> Result<String, PhoneError> {
    let nsn = national_digits(input.trim())?;
    if let Some(new) = convert_old_mobile(input) {
        return Err(PhoneError::OldMobile { new });
    }
    let parsed =
        phonenumber::parse(Some(Id::VN), format!("+84{nsn}")).map_err(|_| PhoneError::Invalid)?;
    if !phonenumber::is_valid(&parsed) {
        return Err(PhoneError::Invalid);
    }
    Ok(parsed.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, PhoneError>) {
        assert_eq!(
            normalize_phone(input).as_deref().map_err(Clone::clone),
            expected,
            "normalize_phone({input:?})"
        );
    }

    #[test]
    fn accepted_forms() {
        check("0912345678", Ok("+84912345678"));
        check("0912 345 678", Ok("+84912345678"));
        check("84912345678", Ok("+84912345678"));
        check("+84 912 345 678", Ok("+84912345678"));
        check("+84-0912-345-678", Ok("+84912345678"));
        check("0389.123.456", Ok("+84389123456"));
        check("0262 3852 123", Ok("+842623852123"));
    }

    #[test]
    fn refused_forms() {
        check("09123", Err(PhoneError::Invalid));
        check("0912abc678", Err(PhoneError::NotDigits));
        check("", Err(PhoneError::NotDigits));
        check("+1 202 555 0100", Err(PhoneError::Invalid));
    }

    #[test]
    fn old_eleven_digit_mobile_gets_its_new_number() {
        check(
            "01689123456",
            Err(PhoneError::OldMobile {
                new: "+84389123456".into(),
            }),
        );
        assert_eq!(
            convert_old_mobile("0126 123 4567").as_deref(),
            Some("+84761234567")
        );
        assert_eq!(
            convert_old_mobile("+84 1299876543").as_deref(),
            Some("+84829876543")
        );
        assert_eq!(convert_old_mobile("0912345678"), None);
    }
}

/// An E.164 Vietnamese number in the national form people write ("0912 345 678"), which
/// spreadsheets keep as text (a bare "0912345678" loses its 0 in Excel).
pub fn format_national(e164: &str) -> String {
    let Some(nsn) = e164.strip_prefix("+84") else {
        return e164.to_string();
    };
    let national = format!("0{nsn}");
    match national.len() {
        10 => format!("{} {} {}", &national[..4], &national[4..7], &national[7..]),
        11 => format!("{} {} {}", &national[..4], &national[4..8], &national[8..]),
        _ => national,
    }
}

#[cfg(test)]
mod format_tests {
    #[test]
    fn national_form_round_trips() {
        for n in ["+84912345678", "+842623852123"] {
            let shown = super::format_national(n);
            assert_eq!(super::normalize_phone(&shown).unwrap(), n, "{shown}");
        }
        assert_eq!(super::format_national("+84912345678"), "0912 345 678");
    }
}
