//! Tips (nguồn tin): their categories, channels, statuses, the input an officer gives, the
//! validation it must pass, and the allowed status transitions.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::citizen_id::validate_citizen_id;
use crate::error::{Errors, FieldError, Invalid};
use crate::phone::normalize_phone;
use crate::text::{normalize, normalize_line};

/// Declares a string enum with its wire names and Vietnamese labels; parsing refuses unknown
/// values with a Vietnamese message that lists the valid ones.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => ($wire:literal, $label:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
        #[serde(rename_all = "snake_case", try_from = "String")]
        #[ts(export)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The Vietnamese label shown to officers.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }

            fn refused(s: &str) -> String {
                let valid: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("{} \"{}\" không hợp lệ; dùng một trong: {}.", $what, s, valid.join(", "))
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                $name::parse(&s).ok_or_else(|| $name::refused(&s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// What kind of tip this is.
    Category, "Loại nguồn tin", {
    CrimeDenunciation => ("crime_denunciation", "Tố giác về tội phạm"),
    CrimeReport => ("crime_report", "Tin báo về tội phạm"),
    SecurityOrder => ("security_order", "Phản ánh an ninh trật tự"),
    AdminQuestion => ("admin_question", "Hỏi đáp thủ tục hành chính"),
    Ordnance => ("ordnance", "Vật liệu nổ, bom mìn còn sót"),
    Misinformation => ("misinformation", "Tin giả, tin sai sự thật"),
    Other => ("other", "Khác"),
});

string_enum!(
    /// How the tip reached the station.
    Channel, "Kênh tiếp nhận", {
    InPerson => ("in_person", "Trực tiếp"),
    Phone => ("phone", "Điện thoại"),
    Zalo => ("zalo", "Zalo"),
    Facebook => ("facebook", "Facebook"),
    Vneid => ("vneid", "VNeID"),
    Letter => ("letter", "Thư, đơn"),
    Hotline => ("hotline", "Đường dây nóng"),
    Other => ("other", "Khác"),
});

string_enum!(
    /// Where the tip is in the legal workflow.
    Status, "Trạng thái", {
    Received => ("received", "Đã tiếp nhận"),
    Verifying => ("verifying", "Đang xác minh"),
    Transferred => ("transferred", "Đã chuyển CQĐT"),
    Resolved => ("resolved", "Đã giải quyết"),
    Closed => ("closed", "Đã kết thúc"),
    Rejected => ("rejected", "Trùng, không thụ lý"),
});

string_enum!(
    /// How fast the station must act.
    Urgency, "Mức độ khẩn", {
    Normal => ("normal", "Bình thường"),
    Urgent => ("urgent", "Khẩn"),
    Critical => ("critical", "Hỏa tốc"),
});

impl Status {
    /// The statuses a tip may move to from this one.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Received => &[Verifying, Transferred, Resolved, Closed, Rejected],
            Verifying => &[Transferred, Resolved, Closed, Rejected],
            Transferred => &[Resolved, Closed],
            Resolved => &[Closed],
            Closed | Rejected => &[],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        self.next().contains(&to)
    }

    /// A finished tip (closed, or refused as a duplicate) may be reopened, back to
    /// verification: a chief's decision, with a stated reason (see the store's
    /// `update_tip`).
    pub fn reopens(self, to: Status) -> bool {
        matches!(self, Status::Closed | Status::Rejected) && to == Status::Verifying
    }

    /// Still needs work from the station.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Received | Status::Verifying)
    }

    /// A move to this status says something in its note: a transfer names the receiving
    /// agency, a rejection why (the duplicate's number).
    pub fn needs_note(self) -> bool {
        matches!(self, Status::Transferred | Status::Rejected)
    }
}

/// The person who brought the tip, as typed. All fields optional: a tip may be anonymous.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct ReporterInput {
    #[serde(default)]
    #[ts(optional)]
    pub name: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub phone: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub id_number: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub address: Option<String>,
    /// The reporter asked that their identity be kept secret (BLTTHS Art. 56).
    #[serde(default)]
    #[ts(optional)]
    pub secret: Option<bool>,
}

/// A reporter after validation: normalised text, E.164 phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Reporter {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub address: Option<String>,
    pub secret: bool,
}

impl Reporter {
    pub fn is_anonymous(&self) -> bool {
        self.name.is_none() && self.phone.is_none() && self.id_number.is_none()
    }
}

/// A new tip as an officer or a script gives it (`binhyen tip add`, the desktop form).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct TipInput {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    #[ts(optional)]
    pub category: Option<Category>,
    #[serde(default)]
    #[ts(optional)]
    pub channel: Option<Channel>,
    /// RFC 3339; defaults to now.
    #[serde(default)]
    #[ts(optional)]
    pub received_at: Option<DateTime<Utc>>,
    /// A hamlet of the station's commune, by id or by name.
    #[serde(default)]
    #[ts(optional)]
    pub hamlet: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub address: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub latitude: Option<f64>,
    #[serde(default)]
    #[ts(optional)]
    pub longitude: Option<f64>,
    #[serde(default)]
    #[ts(optional)]
    pub urgency: Option<Urgency>,
    #[serde(default)]
    #[ts(optional)]
    pub reporter: Option<ReporterInput>,
    /// A question about an administrative procedure answered on the spot: the answer given.
    /// The tip is recorded, then marked resolved with it on its timeline.
    #[serde(default)]
    #[ts(optional)]
    pub answered: Option<String>,
}

/// A tip input that passed validation; text is normalised, defaults are filled.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTip {
    pub content: String,
    pub category: Category,
    pub channel: Channel,
    pub received_at: DateTime<Utc>,
    pub hamlet: Option<String>,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub urgency: Urgency,
    pub reporter: Option<Reporter>,
}

/// Longest accepted tip content, in characters: a long letter fits, a pasted file does not.
pub const MAX_CONTENT_CHARS: usize = 20_000;
/// A received time may be this far ahead of the laptop's clock (clocks of two laptops drift).
pub const FUTURE_TOLERANCE_MINUTES: i64 = 5;

fn optional_line(v: &Option<String>) -> Option<String> {
    v.as_deref().map(normalize_line).filter(|s| !s.is_empty())
}

pub(crate) fn check_content(content: &str, errors: &mut Errors) -> String {
    let content = normalize(content);
    if content.is_empty() {
        errors.add(
            "content",
            "required",
            "Nội dung nguồn tin là bắt buộc: hãy ghi lại điều người dân trình báo.",
        );
    } else if content.chars().count() > MAX_CONTENT_CHARS {
        errors.add(
            "content",
            "too_long",
            format!("Nội dung quá dài (tối đa {MAX_CONTENT_CHARS} ký tự); hãy đính kèm tài liệu thay vì dán vào."),
        );
    }
    content
}

pub(crate) fn check_received_at(at: DateTime<Utc>, now: DateTime<Utc>, errors: &mut Errors) {
    if at > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        errors.add(
            "received_at",
            "in_future",
            format!(
                "Thời điểm tiếp nhận {} ở tương lai; hãy kiểm tra ngày giờ.",
                crate::time::format_vn(at)
            ),
        );
    } else if at.timestamp() < 946_684_800 {
        errors.add(
            "received_at",
            "too_old",
            "Thời điểm tiếp nhận trước năm 2000; hãy kiểm tra ngày giờ.",
        );
    }
}

fn check_coordinates(lat: Option<f64>, lon: Option<f64>, errors: &mut Errors) {
    match (lat, lon) {
        (None, None) => {}
        (Some(lat), Some(lon)) => {
            // Vietnam, its islands included, lies well inside this box.
            if !(5.0..=24.0).contains(&lat) || !(100.0..=118.0).contains(&lon) {
                errors.add(
                    "latitude",
                    "out_of_range",
                    format!("Tọa độ ({lat}, {lon}) nằm ngoài Việt Nam."),
                );
            }
        }
        _ => errors.add("latitude", "incomplete", "Tọa độ cần cả vĩ độ và kinh độ."),
    }
}

/// Validates a reporter; `current_year` bounds the year of birth in a citizen ID.
pub fn validate_reporter(
    input: &ReporterInput,
    current_year: i32,
    errors: &mut Errors,
) -> Reporter {
    let mut phone = None;
    if let Some(raw) = input
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match normalize_phone(raw) {
            Ok(p) => phone = Some(p),
            Err(e) => errors.push(e.to_field_error("reporter.phone", raw)),
        }
    }
    let mut id_number = None;
    if let Some(raw) = input
        .id_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match validate_citizen_id(raw, "reporter.id_number", current_year) {
            Ok(id) => id_number = Some(id),
            Err(e) => errors.push(e),
        }
    }
    Reporter {
        name: optional_line(&input.name),
        phone,
        id_number,
        address: optional_line(&input.address),
        secret: input.secret.unwrap_or(false),
    }
}

impl TipInput {
    /// Validates the whole input, reporting every problem at once.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<NewTip, Invalid> {
        let mut errors = Errors::default();
        let content = check_content(&self.content, &mut errors);
        let received_at = self.received_at.unwrap_or(now);
        check_received_at(received_at, now, &mut errors);
        check_coordinates(self.latitude, self.longitude, &mut errors);
        let year = crate::time::vn_year(now);
        let reporter = self
            .reporter
            .as_ref()
            .map(|r| validate_reporter(r, year, &mut errors))
            .filter(|r| !r.is_anonymous() || r.secret || r.address.is_some());
        errors.into_result(NewTip {
            content,
            category: self.category.unwrap_or(Category::Other),
            channel: self.channel.unwrap_or(Channel::Other),
            received_at,
            hamlet: optional_line(&self.hamlet),
            address: optional_line(&self.address),
            latitude: self.latitude,
            longitude: self.longitude,
            urgency: self.urgency.unwrap_or(Urgency::Normal),
            reporter,
        })
    }
}

/// Fields to change on an existing tip (`binhyen tip update`); absent means unchanged.
/// An empty `hamlet` or `address` clears it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct TipPatch {
    #[serde(default)]
    #[ts(optional)]
    pub content: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub category: Option<Category>,
    #[serde(default)]
    #[ts(optional)]
    pub channel: Option<Channel>,
    #[serde(default)]
    #[ts(optional)]
    pub received_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[ts(optional)]
    pub hamlet: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub address: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub urgency: Option<Urgency>,
    #[serde(default)]
    #[ts(optional)]
    pub status: Option<Status>,
    /// A note for the timeline, e.g. why the status changed.
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub reporter: Option<ReporterInput>,
}

/// A patch after validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidPatch {
    pub content: Option<String>,
    pub category: Option<Category>,
    pub channel: Option<Channel>,
    pub received_at: Option<DateTime<Utc>>,
    /// Some(None) clears the hamlet.
    pub hamlet: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub urgency: Option<Urgency>,
    pub status: Option<Status>,
    pub note: Option<String>,
    pub reporter: Option<Reporter>,
}

impl TipPatch {
    /// Validates the patch against the tip's current status.
    pub fn validate(&self, current: Status, now: DateTime<Utc>) -> Result<ValidPatch, Invalid> {
        let mut errors = Errors::default();
        let content = self
            .content
            .as_deref()
            .map(|c| check_content(c, &mut errors));
        if let Some(at) = self.received_at {
            check_received_at(at, now, &mut errors);
        }
        if let Some(to) = self.status {
            if to != current && !current.can_move_to(to) && !current.reopens(to) {
                let allowed: Vec<&str> = current.next().iter().map(|s| s.label()).collect();
                let hint = if allowed.is_empty() {
                    "nguồn tin đã kết thúc, không chuyển tiếp được".to_string()
                } else {
                    format!("chỉ có thể chuyển sang: {}", allowed.join(", "))
                };
                errors.push(FieldError::new(
                    "status",
                    "bad_transition",
                    format!(
                        "Không thể chuyển từ \"{}\" sang \"{}\"; {hint}.",
                        current.label(),
                        to.label()
                    ),
                ));
            }
        }
        let no_note = self.note.as_deref().map(str::trim).unwrap_or("").is_empty();
        if self.status == Some(Status::Transferred) && current != Status::Transferred && no_note {
            errors.add(
                "note",
                "required",
                "Khi chuyển nguồn tin, hãy ghi cơ quan nhận, ví dụ: Cơ quan CSĐT Công an tỉnh.",
            );
        }
        if self.status == Some(Status::Rejected) && no_note {
            errors.add(
                "note",
                "required",
                "Khi không thụ lý (trùng), hãy ghi rõ lý do trong ghi chú, ví dụ số nguồn tin trùng.",
            );
        }
        let year = crate::time::vn_year(now);
        let reporter = self
            .reporter
            .as_ref()
            .map(|r| validate_reporter(r, year, &mut errors));
        let clearable = |v: &Option<String>| {
            v.as_ref()
                .map(|s| Some(normalize_line(s)).filter(|s| !s.is_empty()))
        };
        errors.into_result(ValidPatch {
            content,
            category: self.category,
            channel: self.channel,
            received_at: self.received_at,
            hamlet: clearable(&self.hamlet),
            address: clearable(&self.address),
            urgency: self.urgency,
            status: self.status.filter(|s| *s != current),
            note: self
                .note
                .as_deref()
                .map(normalize)
                .filter(|s| !s.is_empty()),
            reporter,
        })
    }
}

/// A stored tip as the station shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Tip {
    pub id: Uuid,
    pub unit_code: String,
    pub register_no: String,
    pub received_at: DateTime<Utc>,
    pub category: Category,
    pub channel: Channel,
    pub status: Status,
    pub urgency: Urgency,
    pub content: String,
    pub hamlet_id: Option<Uuid>,
    pub hamlet_name: Option<String>,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Whether a reporter is on record, and whether they asked for secrecy; the identity
    /// itself is only in `reporter`, which lists leave out.
    pub has_reporter: bool,
    pub reporter_secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reporter: Option<Reporter>,
    /// The officer who received the tip, and the one handling it (cán bộ thụ lý): the
    /// receiver until a chief assigns someone else.
    pub received_by: Option<Uuid>,
    pub received_by_name: Option<String>,
    pub assigned_to: Option<Uuid>,
    pub assigned_to_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The timeline (empty in lists).
    #[serde(default)]
    pub timeline: Vec<TipAction>,
    /// Related tips, both ways (empty in lists).
    #[serde(default)]
    pub links: Vec<TipLink>,
    /// Photos and scans (empty in lists).
    #[serde(default)]
    pub attachments: Vec<crate::attachment::Attachment>,
    /// The hamlet is remote (the longer legal deadline applies).
    #[serde(default)]
    pub hamlet_remote: bool,
    /// When a crime tip still waiting (received or being verified) must be transferred to
    /// the investigation agency, by the station's deadline rules; none for other tips.
    #[serde(default)]
    pub transfer_deadline: Option<DateTime<Utc>>,
}

impl Tip {
    /// The statutory transfer deadline of this tip (see [`Tip::transfer_deadline`]):
    /// `hours` after it was received, `hours_remote` for a remote hamlet.
    pub fn deadline_by(&self, hours: u32, hours_remote: u32) -> Option<DateTime<Utc>> {
        let crime = matches!(
            self.category,
            Category::CrimeDenunciation | Category::CrimeReport
        );
        let waiting = matches!(self.status, Status::Received | Status::Verifying);
        (crime && waiting).then(|| {
            let h = if self.hamlet_remote {
                hours_remote
            } else {
                hours
            };
            self.received_at + Duration::hours(i64::from(h))
        })
    }
}

string_enum!(
    /// How two tips are related.
    LinkRelation, "Quan hệ", {
    Related => ("related", "Liên quan"),
    DuplicateOf => ("duplicate_of", "Trùng với"),
});

/// A link from the tip being shown to another tip of its unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TipLink {
    pub id: Uuid,
    pub relation: LinkRelation,
    /// True when this tip made the link ("this tip duplicates the other"); false when the
    /// other did ("the other duplicates this one").
    pub outgoing: bool,
    pub other_id: Uuid,
    pub other_register_no: String,
    pub other_status: Status,
    pub other_summary: String,
}

string_enum!(
    /// What happened to a tip.
    ActionKind, "Loại hoạt động", {
    Received => ("received", "Tiếp nhận"),
    Updated => ("updated", "Cập nhật"),
    StatusChanged => ("status_changed", "Chuyển trạng thái"),
    Note => ("note", "Ghi chú"),
    Assigned => ("assigned", "Giao thụ lý"),
});

/// One entry of a tip's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TipAction {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: ActionKind,
    pub from_status: Option<Status>,
    pub to_status: Option<Status>,
    pub note: Option<String>,
}

/// Filters of the tip list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TipFilter {
    #[serde(default)]
    #[ts(optional)]
    pub status: Option<Status>,
    #[serde(default)]
    #[ts(optional)]
    pub category: Option<Category>,
    #[serde(default)]
    #[ts(optional)]
    pub channel: Option<Channel>,
    /// Diacritic-insensitive text search over content, address and hamlet.
    #[serde(default)]
    #[ts(optional)]
    pub query: Option<String>,
    /// A hamlet, by id.
    #[serde(default)]
    #[ts(optional)]
    pub hamlet: Option<String>,
    /// Received at or after this instant (RFC 3339).
    #[serde(default)]
    #[ts(optional)]
    pub from: Option<String>,
    /// Received before this instant (RFC 3339).
    #[serde(default)]
    #[ts(optional)]
    pub to: Option<String>,
    /// Only tips of this commune (by code; a province-level station holds many).
    #[serde(default)]
    #[ts(optional)]
    pub unit: Option<String>,
    /// Only tips handled by this officer (by id or username).
    #[serde(default)]
    #[ts(optional)]
    pub officer: Option<String>,
    /// Only tips still being handled (received or verifying).
    #[serde(default)]
    #[ts(optional)]
    pub open: Option<bool>,
    /// Only crime tips past their transfer deadline at this instant (RFC 3339), by the
    /// station's deadline rules.
    #[serde(default)]
    #[ts(optional)]
    pub overdue_at: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub sort: Option<TipSort>,
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<u32>,
    #[serde(default)]
    #[ts(optional)]
    pub offset: Option<u32>,
}

/// The order of the tip list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TipSort {
    /// Most recently received first.
    #[default]
    Newest,
    Oldest,
    /// Most urgent first, then newest.
    Urgency,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-01T03:00:00Z".parse().unwrap()
    }

    fn input(json: &str) -> Result<TipInput, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_input_gets_defaults() {
        let tip = input(r#"{"content":" Có nhóm thanh niên tụ tập "}"#)
            .unwrap()
            .validate(now())
            .unwrap();
        assert_eq!(tip.content, "Có nhóm thanh niên tụ tập");
        assert_eq!(tip.category, Category::Other);
        assert_eq!(tip.received_at, now());
        assert_eq!(tip.reporter, None);
    }

    #[test]
    fn unknown_category_is_refused_in_vietnamese() {
        let err = input(r#"{"content":"x","category":"murder"}"#).unwrap_err();
        assert!(
            err.contains("Loại nguồn tin \"murder\" không hợp lệ"),
            "{err}"
        );
        assert!(err.contains("crime_denunciation"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        assert!(input(r#"{"contnet":"x"}"#).unwrap_err().contains("contnet"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = input(
            r#"{"content":"   ","received_at":"2027-01-01T00:00:00Z",
                "reporter":{"name":"A","phone":"12ab","id_number":"123"}}"#,
        )
        .unwrap()
        .validate(now())
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "content",
                "received_at",
                "reporter.phone",
                "reporter.id_number"
            ]
        );
    }

    #[test]
    fn reporter_is_normalised() {
        let tip = input(
            r#"{"content":"x","reporter":{"name":" Y  Bli  Niê ","phone":"0912 345 678","secret":true}}"#,
        )
        .unwrap()
        .validate(now())
        .unwrap();
        let r = tip.reporter.unwrap();
        assert_eq!(r.name.as_deref(), Some("Y Bli Niê"));
        assert_eq!(r.phone.as_deref(), Some("+84912345678"));
        assert!(r.secret);
    }

    #[test]
    fn status_transitions() {
        let patch = TipPatch {
            status: Some(Status::Verifying),
            ..Default::default()
        };
        assert!(patch.validate(Status::Received, now()).is_ok());
        // Back to verification from a finished tip is a reopening (the store asks a chief
        // and a reason); anything else from it is refused.
        assert!(patch.validate(Status::Closed, now()).is_ok());
        assert!(Status::Closed.reopens(Status::Verifying));
        assert!(Status::Rejected.reopens(Status::Verifying));
        assert!(!Status::Resolved.reopens(Status::Verifying));
        let transfer = TipPatch {
            status: Some(Status::Transferred),
            note: Some("CQĐT".into()),
            ..Default::default()
        };
        let err = transfer.validate(Status::Closed, now()).unwrap_err();
        assert_eq!(err.0[0].code, "bad_transition");
        let reject = TipPatch {
            status: Some(Status::Rejected),
            ..Default::default()
        };
        assert_eq!(
            reject.validate(Status::Received, now()).unwrap_err().0[0].field,
            "note"
        );
    }
}
