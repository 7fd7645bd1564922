//! A conflict as a person decides it: the record named as the station names it (a tip by
//! its register number, a hamlet by its name), each value in Vietnamese (a category's
//! name, a hamlet's name, an officer's name, a time in Vietnam time; never a code or an
//! id), and when and where each side was written.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use binhyen_domain::access::Role;
use binhyen_domain::hlc::Hlc;
use binhyen_domain::roster::PersonRole;
use binhyen_domain::time::format_vn;
use binhyen_domain::tip::{Category, Channel, LinkRelation, Status, Urgency};

use crate::Result;

/// "Nguồn tin số 0012/2026/M1", "Thôn Hòa Bình", "Y Bliêng Niê": what the record is, or
/// none when it is gone.
pub(crate) fn subject(conn: &Connection, entity: &str, id: &str) -> Result<Option<String>> {
    let one = |sql: &str, key: &str| -> Result<Option<String>> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([key], |r| r.get::<_, String>(0))
            .optional()?)
    };
    let tip = |tip_id: &str| -> Result<Option<String>> {
        Ok(one("SELECT register_no FROM tips WHERE id = ?1", tip_id)?
            .map(|no| format!("Nguồn tin số {no}")))
    };
    Ok(match entity {
        "tip" | "tip_reporter" => tip(id)?,
        "tip_action" | "tip_link" | "attachment" => {
            let Some(def) = binhyen_domain::catalog::entity(entity) else {
                return Ok(None);
            };
            match one(
                &format!("SELECT tip_id FROM {} WHERE id = ?1", def.table),
                id,
            )? {
                Some(t) => tip(&t)?,
                None => None,
            }
        }
        "hamlet" => one("SELECT name FROM hamlets WHERE id = ?1", id)?,
        "roster_person" => one("SELECT full_name FROM roster_people WHERE id = ?1", id)?,
        "online_group" => one("SELECT name FROM online_groups WHERE id = ?1", id)?,
        "channel" => one("SELECT name FROM channels WHERE id = ?1", id)?,
        "officer" => one("SELECT full_name FROM officers WHERE id = ?1", id)?,
        _ => None,
    })
}

/// The field's name as the forms write it.
pub(crate) fn field_label(field: &str) -> String {
    match field {
        "content" => "Nội dung",
        "category" => "Loại nguồn tin",
        "channel" => "Hình thức tiếp nhận",
        "status" => "Trạng thái",
        "urgency" => "Mức độ khẩn",
        "received_at" => "Thời điểm tiếp nhận",
        "hamlet_id" => "Thôn, buôn, tổ dân phố",
        "address" => "Địa chỉ",
        "latitude" | "longitude" => "Vị trí",
        "received_by" => "Cán bộ tiếp nhận",
        "assigned_to" => "Cán bộ thụ lý",
        "area_officer_id" => "Cán bộ phụ trách địa bàn",
        "officer_id" => "Cán bộ",
        "name" => "Tên",
        "full_name" => "Họ và tên",
        "phone" => "Điện thoại",
        "id_number" => "Số định danh cá nhân",
        "secret" => "Đề nghị giữ bí mật",
        "households" => "Số hộ",
        "population" => "Số nhân khẩu",
        "remote" => "Địa bàn xa",
        "kind" => "Loại",
        "role" => "Vai trò",
        "note" => "Ghi chú",
        "members" => "Số thành viên",
        "url" => "Đường dẫn",
        "relation" => "Quan hệ",
        "active" => "Đang hoạt động",
        "rank" => "Cấp bậc",
        "at" => "Thời điểm",
        _ => return field.replace('_', " "),
    }
    .to_string()
}

/// A value as the window shows it.
pub(crate) fn value_text(
    conn: &Connection,
    entity: &str,
    field: &str,
    value: &Value,
) -> Result<String> {
    let name_of = |sql: &str, id: &str| -> Result<String> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([id], |r| r.get::<_, String>(0))
            .optional()?
            .unwrap_or_else(|| "(không còn trong danh sách)".to_string()))
    };
    Ok(match value {
        Value::Null => "(đã xóa hoặc để trống)".to_string(),
        Value::Bool(b) => if *b { "Có" } else { "Không" }.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) if matches!(field, "secret" | "remote" | "active") => {
                if i != 0 { "Có" } else { "Không" }.to_string()
            }
            _ => n.to_string(),
        },
        Value::String(s) => {
            let label = match field {
                "category" => Category::parse(s).map(|c| c.label().to_string()),
                "channel" if entity == "tip" => Channel::parse(s).map(|c| c.label().to_string()),
                "status" | "from_status" | "to_status" => {
                    Status::parse(s).map(|c| c.label().to_string())
                }
                "urgency" => Urgency::parse(s).map(|c| c.label().to_string()),
                "relation" => LinkRelation::parse(s).map(|c| c.label().to_string()),
                "role" if entity == "roster_person" => {
                    PersonRole::parse(s).map(|c| c.label().to_string())
                }
                "role" => Role::parse(s).map(|c| c.label().to_string()),
                "hamlet_id" => Some(name_of("SELECT name FROM hamlets WHERE id = ?1", s)?),
                "received_by" | "assigned_to" | "area_officer_id" | "officer_id" => {
                    Some(name_of("SELECT full_name FROM officers WHERE id = ?1", s)?)
                }
                "received_at" | "at" | "created_at" | "updated_at" => {
                    s.parse::<DateTime<Utc>>().ok().map(format_vn)
                }
                _ => None,
            };
            label.unwrap_or_else(|| s.clone())
        }
        other => other.to_string(),
    })
}

/// When a side was written (Vietnam time) and on which laptop, from its clock value; for a
/// tip's side written on this laptop, also by whom (its audit entry of that moment names
/// the officer). The other laptops' officers are not carried by the changes (yet).
pub(crate) fn side(
    conn: &Connection,
    entity: &str,
    entity_id: &str,
    hlc: Option<&str>,
    own_node: &str,
    own_device: u32,
) -> Result<(Option<String>, String)> {
    let Some(h) = hlc.and_then(Hlc::parse) else {
        return Ok((None, "Không rõ".to_string()));
    };
    let when = DateTime::<Utc>::from_timestamp_millis(h.wall_ms);
    let at = when.map(format_vn);
    if own_node.is_empty() || h.node != own_node {
        return Ok((at, "Máy khác (nhận qua đồng bộ)".to_string()));
    }
    let mut by = format!("Máy này (máy số {own_device})");
    if let (Some(when), "tip" | "tip_reporter") = (when, entity) {
        let officer: Option<String> = conn
            .prepare_cached(
                "SELECT o.full_name FROM audit_log a JOIN officers o ON o.username = a.actor
                 WHERE a.target = ?1 AND a.at = ?2 AND a.action IN ('tip.create', 'tip.update')
                 LIMIT 1",
            )?
            .query_row(rusqlite::params![entity_id, crate::sql::ts(when)], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(name) = officer {
            by = format!("{by}, {name}");
        }
    }
    Ok((at, by))
}
