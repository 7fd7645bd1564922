//! Rosters of a commune: hamlets and residential groups, their online groups, and the
//! people the station keeps in touch with (hamlet heads, security teams, group admins).

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::text::fold;
use crate::tip::string_enum;

string_enum!(
    /// The kind of a hamlet-level area.
    HamletKind, "Loại thôn", {
    Thon => ("thon", "Thôn"),
    Buon => ("buon", "Buôn"),
    Lang => ("lang", "Làng"),
    Ban => ("ban", "Bản"),
    Ap => ("ap", "Ấp"),
    ToDanPho => ("to_dan_pho", "Tổ dân phố"),
});

impl HamletKind {
    /// Accepts the wire name or the Vietnamese word, with or without diacritics
    /// ("Buôn", "buon", "Tổ dân phố", "TDP").
    pub fn parse_loose(s: &str) -> Option<HamletKind> {
        let f = fold(s.trim()).replace(['_', '-'], " ");
        let f = f.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(match f.as_str() {
            "thon" => HamletKind::Thon,
            "buon" => HamletKind::Buon,
            "lang" => HamletKind::Lang,
            "ban" => HamletKind::Ban,
            "ap" => HamletKind::Ap,
            "to dan pho" | "tdp" | "khu pho" => HamletKind::ToDanPho,
            _ => return None,
        })
    }

    /// Guesses the kind from a name such as "Buôn Ea Kpam" or "Tổ dân phố 3".
    pub fn from_name(name: &str) -> Option<HamletKind> {
        let f = fold(name);
        [
            ("to dan pho", HamletKind::ToDanPho),
            ("thon", HamletKind::Thon),
            ("buon", HamletKind::Buon),
            ("lang", HamletKind::Lang),
            ("ban", HamletKind::Ban),
            ("ap", HamletKind::Ap),
        ]
        .into_iter()
        .find(|(prefix, _)| f.starts_with(&format!("{prefix} ")))
        .map(|(_, k)| k)
    }
}

string_enum!(
    /// The part a roster person plays.
    PersonRole, "Vai trò", {
    HamletHead => ("hamlet_head", "Trưởng thôn/buôn/tổ dân phố"),
    DeputyHead => ("deputy_head", "Phó trưởng thôn"),
    SecurityTeam => ("security_team", "Tổ bảo vệ ANTT ở cơ sở"),
    GroupAdmin => ("group_admin", "Quản trị nhóm mạng xã hội"),
    Other => ("other", "Khác"),
});

impl PersonRole {
    /// Accepts the wire name or common Vietnamese wordings, with or without diacritics.
    pub fn parse_loose(s: &str) -> Option<PersonRole> {
        if let Some(r) = PersonRole::parse(s.trim()) {
            return Some(r);
        }
        let f = fold(s.trim());
        let f = f.split_whitespace().collect::<Vec<_>>().join(" ");
        if f.is_empty() || f == "khac" {
            return Some(PersonRole::Other);
        }
        if f.starts_with("pho truong") || f.starts_with("pho thon") {
            Some(PersonRole::DeputyHead)
        } else if f.starts_with("truong") || f.starts_with("to truong") {
            Some(PersonRole::HamletHead)
        } else if f.contains("bao ve") || f.contains("antt") || f.contains("an ninh") {
            Some(PersonRole::SecurityTeam)
        } else if f.contains("quan tri") || f.contains("admin") {
            Some(PersonRole::GroupAdmin)
        } else {
            None
        }
    }
}

string_enum!(
    /// A social network or messaging platform.
    Platform, "Nền tảng", {
    Zalo => ("zalo", "Zalo"),
    Facebook => ("facebook", "Facebook"),
    Tiktok => ("tiktok", "TikTok"),
    Youtube => ("youtube", "YouTube"),
    Other => ("other", "Khác"),
});

/// A hamlet or residential group of the station's commune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Hamlet {
    pub id: Uuid,
    pub unit_code: String,
    pub kind: HamletKind,
    pub name: String,
    pub households: Option<u32>,
    pub population: Option<u32>,
    /// Far from the station: the transfer deadline is longer (48 h instead of 24 h).
    pub remote: bool,
    /// The hamlet head on the roster (trưởng thôn/buôn, tổ trưởng tổ dân phố), if any.
    #[serde(default)]
    pub head_name: Option<String>,
    #[serde(default)]
    pub head_phone: Option<String>,
    /// The police officer in charge of the hamlet (công an phụ trách địa bàn).
    #[serde(default)]
    pub area_officer_id: Option<Uuid>,
    #[serde(default)]
    pub area_officer_name: Option<String>,
}

/// A person on the commune's roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RosterPerson {
    pub id: Uuid,
    pub hamlet_id: Option<Uuid>,
    pub hamlet_name: Option<String>,
    pub full_name: String,
    pub role: PersonRole,
    pub phone: Option<String>,
    pub note: Option<String>,
}

/// An online group of a hamlet, with its latest member count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OnlineGroup {
    pub id: Uuid,
    pub hamlet_id: Uuid,
    pub platform: Platform,
    pub name: String,
    pub url: Option<String>,
    pub members: Option<u32>,
}
