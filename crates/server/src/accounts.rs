//! Officers' accounts managed at the province: list a unit's accounts, add one, change its
//! role, disable or enable it. Each change is written as the province's own change to the
//! officer record, merged and stored like a station's push, so the unit's laptops receive it
//! at their next sync (a disabled account's password stops working there). Passwords never
//! leave the laptops: an account added here gets a temporary password from the station's
//! chief (`binhyen account reset-password`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use binhyen_domain::access::{normalize_username, Role};
use binhyen_domain::hlc::Hlc;
use binhyen_protocol::wire::{ScopeRecord, WireChange};

use crate::db::{refuse, Backend, Code, DbError, DbResult, StationRow};

/// The node name in the clock values of the province's own changes.
const NODE: &str = "province";

/// An account as the province sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvinceAccount {
    pub id: String,
    pub username: String,
    pub full_name: String,
    pub role: String,
    pub active: bool,
}

/// The unit, as the station whose changes the province writes in its name.
fn as_unit(db: &dyn Backend, unit: &str) -> DbResult<StationRow> {
    if !db.unit_exists(unit)? {
        return Err(refuse(
            Code::UnknownUnit,
            format!("Không có đơn vị mã {unit}."),
        ));
    }
    Ok(StationRow {
        id: "server".into(),
        unit_code: unit.to_string(),
        device_no: 0,
        created_at: String::new(),
        enrolled_at: None,
        revoked_at: None,
    })
}

/// The officer records of the unit (its own, not its communes').
fn officer_records(db: &dyn Backend, row: &StationRow) -> DbResult<Vec<ScopeRecord>> {
    let mut out = Vec::new();
    let mut after = Some(("officer".to_string(), String::new()));
    loop {
        let page = db.records(row, after.clone(), 500)?;
        let full = page.len() == 500;
        for r in page {
            if r.entity != "officer" {
                return Ok(out);
            }
            after = Some((r.entity.clone(), r.entity_id.clone()));
            let own = r.data.get("unit_code").and_then(Value::as_str) == Some(&row.unit_code);
            if own && r.deleted.is_none() {
                out.push(r);
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

fn view(r: &ScopeRecord) -> Option<ProvinceAccount> {
    let text = |k: &str| r.data.get(k).and_then(Value::as_str).map(str::to_string);
    Some(ProvinceAccount {
        id: r.entity_id.clone(),
        username: text("username")?,
        full_name: text("full_name").unwrap_or_default(),
        role: text("role").unwrap_or_else(|| "officer".into()),
        active: r.data.get("active").and_then(Value::as_i64).unwrap_or(1) == 1,
    })
}

/// The unit's accounts (officers with a username), by username.
pub fn list(db: &dyn Backend, unit: &str) -> DbResult<Vec<ProvinceAccount>> {
    let row = as_unit(db, unit)?;
    let mut out: Vec<ProvinceAccount> =
        officer_records(db, &row)?.iter().filter_map(view).collect();
    out.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(out)
}

/// Writes `data` to the officer record `id` as a change of the province that follows the
/// version held (so it applies without a conflict unless a laptop changed the same field
/// meanwhile), with a clock value after every version of the record.
fn write(
    db: &dyn Backend,
    row: &StationRow,
    id: &str,
    op: &str,
    data: Map<String, Value>,
    held: Option<&ScopeRecord>,
    now: DateTime<Utc>,
) -> DbResult<()> {
    let latest = held
        .into_iter()
        .flat_map(|r| r.versions.values())
        .filter_map(|v| v.as_str().and_then(Hlc::parse))
        .max()
        .unwrap_or_else(|| Hlc::zero(NODE));
    let hlc = Hlc::zero(NODE).observe(&latest, now.timestamp_millis());
    let base = held.map(|r| {
        data.keys()
            .filter_map(|k| r.versions.get(k).map(|v| (k.clone(), v.clone())))
            .collect::<Map<String, Value>>()
    });
    let change = WireChange {
        change_id: Uuid::now_v7().to_string(),
        hlc: hlc.to_string(),
        entity: "officer".into(),
        entity_id: id.to_string(),
        op: op.into(),
        unit_code: row.unit_code.clone(),
        data,
        base,
    };
    db.push(row, &[change], now)?;
    Ok(())
}

fn find<'a>(records: &'a [ScopeRecord], username: &str) -> DbResult<&'a ScopeRecord> {
    let wanted = username.trim().to_lowercase();
    records
        .iter()
        .find(|r| r.data.get("username").and_then(Value::as_str) == Some(wanted.as_str()))
        .ok_or_else(|| {
            refuse(
                Code::UnknownAccount,
                format!("Đơn vị không có tài khoản \"{username}\"."),
            )
        })
}

fn is_manager(r: &ScopeRecord) -> bool {
    view(r).is_some_and(|a| a.active && matches!(a.role.as_str(), "chief" | "admin"))
}

/// Refuses a change that would leave the unit without an active chief or administrator
/// (nobody could manage its accounts any more).
fn keep_a_manager(records: &[ScopeRecord], changed: &ScopeRecord) -> DbResult<()> {
    let others = records
        .iter()
        .filter(|r| r.entity_id != changed.entity_id)
        .any(is_manager);
    if is_manager(changed) && !others {
        return Err(refuse(
            Code::LastManager,
            "Đây là tài khoản trưởng Công an xã hoặc quản trị viên cuối cùng còn hoạt động của đơn vị; hãy thêm người khác trước.",
        ));
    }
    Ok(())
}

/// Adds an account to the unit; its laptops receive it at their next sync, where the chief
/// gives it a temporary password.
pub fn add(
    db: &dyn Backend,
    unit: &str,
    username: &str,
    full_name: &str,
    role: &str,
    now: DateTime<Utc>,
) -> DbResult<ProvinceAccount> {
    let row = as_unit(db, unit)?;
    let username = normalize_username(username).map_err(|m| refuse(Code::BadUsername, m))?;
    let role = Role::parse(role).ok_or_else(|| bad_role(role))?;
    let full_name = full_name.trim();
    if full_name.is_empty() {
        return Err(refuse(Code::NameRequired, "Hãy ghi họ tên cán bộ."));
    }
    let records = officer_records(db, &row)?;
    if find(&records, &username).is_ok() {
        return Err(refuse(
            Code::UsernameTaken,
            format!("Đơn vị đã có tài khoản \"{username}\"."),
        ));
    }
    let id = Uuid::now_v7().to_string();
    let at = now.to_rfc3339();
    let data = json!({
        "unit_code": unit, "full_name": full_name, "username": username, "role": role.as_str(),
        "active": 1, "created_at": at, "updated_at": at,
    });
    let data = data.as_object().cloned().unwrap_or_default();
    write(db, &row, &id, "insert", data, None, now)?;
    Ok(ProvinceAccount {
        id,
        username,
        full_name: full_name.to_string(),
        role: role.as_str().to_string(),
        active: true,
    })
}

fn bad_role(role: &str) -> DbError {
    refuse(
        Code::BadRole,
        format!("Vai trò \"{role}\" không có; chọn officer, chief, analyst hoặc admin."),
    )
}

/// Disables or enables an account of the unit.
pub fn set_active(
    db: &dyn Backend,
    unit: &str,
    username: &str,
    active: bool,
    now: DateTime<Utc>,
) -> DbResult<ProvinceAccount> {
    let row = as_unit(db, unit)?;
    let records = officer_records(db, &row)?;
    let held = find(&records, username)?;
    if !active {
        keep_a_manager(&records, held)?;
    }
    let mut data = Map::new();
    data.insert("active".into(), json!(i64::from(active)));
    data.insert("updated_at".into(), json!(now.to_rfc3339()));
    write(db, &row, &held.entity_id, "update", data, Some(held), now)?;
    Ok(ProvinceAccount {
        active,
        ..account(held)?
    })
}

/// Gives an account of the unit another role.
pub fn set_role(
    db: &dyn Backend,
    unit: &str,
    username: &str,
    role: &str,
    now: DateTime<Utc>,
) -> DbResult<ProvinceAccount> {
    let row = as_unit(db, unit)?;
    let role = Role::parse(role).ok_or_else(|| bad_role(role))?;
    let records = officer_records(db, &row)?;
    let held = find(&records, username)?;
    if !matches!(role, Role::Chief | Role::Admin) {
        keep_a_manager(&records, held)?;
    }
    let mut data = Map::new();
    data.insert("role".into(), json!(role.as_str()));
    data.insert("updated_at".into(), json!(now.to_rfc3339()));
    write(db, &row, &held.entity_id, "update", data, Some(held), now)?;
    Ok(ProvinceAccount {
        role: role.as_str().to_string(),
        ..account(held)?
    })
}

/// The account a found record holds (`find` matched it on its username).
fn account(held: &ScopeRecord) -> DbResult<ProvinceAccount> {
    view(held).ok_or_else(|| DbError::Other(format!("officer {} has no username", held.entity_id)))
}
