//! The papers a tip produces: the reception record (biên bản tiếp nhận nguồn tin) and the
//! transfer slip (phiếu chuyển nguồn tin). The library decides what each paper may show, so
//! a secret reporter's identity cannot reach paper by a slip of the window: it is left out
//! of both, and a reporter who did not ask for secrecy appears only on the reception record
//! unless the person printing the slip explicitly includes them. Every print is audited.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ts_rs::TS;

use binhyen_domain::time::{format_vn, VN_TZ};
use binhyen_domain::tip::Channel;

use crate::audit::Action;
use crate::report_pdf::place;
use crate::{Result, Station};

/// Which paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DocKind {
    /// Biên bản tiếp nhận nguồn tin.
    Reception,
    /// Phiếu chuyển nguồn tin (to the investigation agency).
    Transfer,
}

/// One labelled line of a paper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DocLine {
    pub label: String,
    pub value: String,
}

/// A paper ready to print: the window lays it out, it adds nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct PrintDoc {
    pub kind: DocKind,
    /// "CÔNG AN TỈNH ĐẮK LẮK", "CÔNG AN XÃ CƯ M'GAR".
    pub superior: Option<String>,
    pub unit: String,
    pub number: String,
    /// "Cư M'gar, ngày 28 tháng 11 năm 2026".
    pub place_date: String,
    pub title: String,
    pub lines: Vec<DocLine>,
    pub content: String,
    /// The reporter's lines, or none when the identity is withheld.
    pub reporter: Vec<DocLine>,
    /// Why the reporter is not named (secrecy, or anonymous), when that is the case.
    pub reporter_note: Option<String>,
    pub signatures: Vec<String>,
    /// Why a signature block is missing (a tip taken by phone has no reporter's signature).
    pub signature_note: Option<String>,
    /// The transfer slip's addressee ("Kính gửi"), which the window lets the officer change
    /// before printing; none on a reception record.
    pub recipient: Option<String>,
    /// The slip's "Nơi nhận" lines.
    pub copies_to: Vec<String>,
}

impl Station {
    /// The paper `kind` for a tip. A non-secret reporter is printed only for a stated
    /// `reveal_reason` (the same rule and the same audit entry as [`Station::reveal_tip`]: a
    /// printed name is a name revealed); a secret reporter is never printed.
    pub fn print_doc(
        &mut self,
        key: &str,
        kind: DocKind,
        reveal_reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PrintDoc> {
        self.require(binhyen_domain::access::Permission::TipRead)?;
        if kind == DocKind::Transfer {
            self.require(binhyen_domain::access::Permission::TipTransfer)?;
        }
        let reveal_reason = match reveal_reason {
            Some(r) => {
                self.require(binhyen_domain::access::Permission::IdentityView)?;
                Some(crate::tips::reveal_reason(r)?)
            }
            None => None,
        };
        let include_reporter = reveal_reason.is_some();
        let tip = self.load_tip(key, include_reporter)?;
        let info = self.info().clone();
        let d = now.with_timezone(&VN_TZ);
        let place_date = format!(
            "{}, ngày {:02} tháng {:02} năm {}",
            place(&info.unit_name),
            d.day(),
            d.month(),
            d.year()
        );
        let mut lines = vec![
            DocLine {
                label: "Số sổ tiếp nhận".into(),
                value: tip.register_no.clone(),
            },
            DocLine {
                label: "Thời điểm tiếp nhận".into(),
                value: format_vn(tip.received_at),
            },
            DocLine {
                label: "Hình thức tiếp nhận".into(),
                value: tip.channel.label().into(),
            },
            DocLine {
                label: "Loại nguồn tin".into(),
                value: tip.category.label().into(),
            },
        ];
        let location = [tip.address.clone(), tip.hamlet_name.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        if !location.is_empty() {
            lines.push(DocLine {
                label: "Địa điểm".into(),
                value: location,
            });
        }
        // Sealed where this laptop has not received the commune's identity key yet.
        let locked = tip
            .reporter
            .as_ref()
            .is_some_and(crate::identity::is_locked);
        let may_see = self
            .session
            .role
            .allows(binhyen_domain::access::Permission::IdentityView);
        let secret = tip.reporter_secret;
        let show = match &tip.reporter {
            _ if secret || !include_reporter => false,
            Some(_) if locked || !may_see => false,
            Some(_) => true,
            None => false,
        };
        let (reporter, reporter_note) = match (&tip.reporter, show) {
            _ if tip.has_reporter && !secret && !include_reporter => (
                Vec::new(),
                Some("Thông tin người báo tin được lưu tại đơn vị tiếp nhận (in kèm khi ghi lý do xem danh tính).".to_string()),
            ),
            (None, _) if secret => (
                Vec::new(),
                Some("Người tố giác đề nghị giữ bí mật họ tên, địa chỉ, bút tích (Điều 56 Bộ luật Tố tụng hình sự); thông tin được lưu riêng tại đơn vị tiếp nhận.".to_string()),
            ),
            (Some(r), false) if locked && !r.secret => (
                Vec::new(),
                Some("Thông tin người báo tin được niêm phong; máy này chưa nhận khóa danh tính của xã nên không in được.".to_string()),
            ),
            (Some(r), true) => {
                let mut l = Vec::new();
                for (label, value) in [
                    ("Họ và tên", &r.name),
                    ("Số định danh cá nhân", &r.id_number),
                    ("Điện thoại", &r.phone),
                    ("Nơi ở", &r.address),
                ] {
                    if let Some(v) = value {
                        l.push(DocLine {
                            label: label.into(),
                            value: v.clone(),
                        });
                    }
                }
                (l, None)
            }
            (Some(r), false) if r.secret => (
                Vec::new(),
                Some("Người tố giác đề nghị giữ bí mật họ tên, địa chỉ, bút tích (Điều 56 Bộ luật Tố tụng hình sự); thông tin được lưu riêng tại đơn vị tiếp nhận.".to_string()),
            ),
            (Some(_), false) => (
                Vec::new(),
                Some("Thông tin người báo tin được lưu tại đơn vị tiếp nhận.".to_string()),
            ),
            (None, _) => (Vec::new(), Some("Nguồn tin nặc danh.".to_string())),
        };
        // "tỉnh Đắk Lắk" inside a sentence.
        let province = info.province_name.as_deref().map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_lowercase().chain(c).collect::<String>())
                .unwrap_or_default()
        });
        let (title, signatures, signature_note, recipient, copies_to) = match kind {
            DocKind::Reception => {
                // Only a reporter who came in person and did not ask for secrecy signs the
                // record; a secret reporter's handwriting is kept with their identity.
                let in_person = tip.channel == Channel::InPerson;
                let (signatures, note) = if in_person && tip.has_reporter && !secret {
                    (
                        vec!["NGƯỜI BÁO TIN".into(), "CÁN BỘ TIẾP NHẬN".into()],
                        None,
                    )
                } else if in_person && secret {
                    (
                        vec!["CÁN BỘ TIẾP NHẬN".into()],
                        Some("Người tố giác đề nghị giữ bí mật bút tích: chữ ký của người tố giác lưu riêng cùng thông tin danh tính.".to_string()),
                    )
                } else if in_person {
                    (vec!["CÁN BỘ TIẾP NHẬN".into()], None)
                } else {
                    (
                        vec!["CÁN BỘ TIẾP NHẬN".into()],
                        Some(format!(
                            "Nguồn tin tiếp nhận qua hình thức: {}; người báo tin không ký biên bản.",
                            tip.channel.label()
                        )),
                    )
                };
                (
                    "BIÊN BẢN TIẾP NHẬN NGUỒN TIN".to_string(),
                    signatures,
                    note,
                    None,
                    Vec::new(),
                )
            }
            DocKind::Transfer => {
                let recipient = match &province {
                    Some(p) => format!("Cơ quan Cảnh sát điều tra Công an {p}"),
                    None => "Cơ quan Cảnh sát điều tra có thẩm quyền".to_string(),
                };
                let procuracy = match &province {
                    Some(p) => format!("Viện kiểm sát nhân dân {p} (để kiểm sát);"),
                    None => "Viện kiểm sát nhân dân có thẩm quyền (để kiểm sát);".to_string(),
                };
                (
                    "PHIẾU CHUYỂN NGUỒN TIN VỀ TỘI PHẠM".to_string(),
                    vec!["TRƯỞNG CÔNG AN".into()],
                    None,
                    Some(recipient),
                    vec![
                        "Như trên;".to_string(),
                        procuracy,
                        format!("Lưu: hồ sơ nguồn tin số {}.", tip.register_no),
                    ],
                )
            }
        };
        let doc = PrintDoc {
            kind,
            superior: info
                .province_name
                .as_ref()
                .map(|p| format!("CÔNG AN {}", p.to_uppercase())),
            unit: format!("CÔNG AN {}", info.unit_name.to_uppercase()),
            number: format!("Số: {}", tip.register_no),
            place_date,
            title,
            lines,
            content: tip.content.clone(),
            reporter,
            reporter_note,
            signatures,
            signature_note,
            recipient,
            copies_to,
        };
        if let (true, Some(reason)) = (show, &reveal_reason) {
            self.audit(
                Action::IdentityView,
                Some(&tip.id.to_string()),
                json!({ "reason": reason, "printed": kind }),
                now,
            )?;
        }
        self.audit(
            Action::DocumentPrint,
            Some(&tip.id.to_string()),
            json!({ "kind": kind, "reporter_shown": show }),
            now,
        )?;
        Ok(doc)
    }
}
