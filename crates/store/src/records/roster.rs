//! Rosters: hamlets and residential groups, roster people, online groups and their member
//! counts, the unit's channels with metrics, officers; CSV import (with a preview, per-row
//! errors and nothing written unless every row is good) and export.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Map, Value};
use ts_rs::TS;
use uuid::Uuid;

use binhyen_domain::phone::{format_national, normalize_phone};
use binhyen_domain::roster::{Hamlet, HamletKind, PersonRole, RosterPerson};
use binhyen_domain::text::{fold, identity_key, normalize, normalize_line, vi_cmp};

use crate::changes::{Op, Writer};
use crate::error::RowError;
use crate::search::{index_doc, FtsBatch};
use crate::sql::{get_enum, get_opt_uuid, get_uuid, ts};
use crate::{Result, Station, StoreError};

/// A JSON value as an SQLite value (booleans as 0/1, objects and arrays as JSON text).
pub(crate) fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Inserts a record into `table` and records the change; `fields` exclude `id`.
pub(crate) fn insert_record(
    w: &mut Writer<'_>,
    entity: &str,
    table: &str,
    fields: Map<String, Value>,
) -> Result<String> {
    let id = Uuid::now_v7().to_string();
    insert_record_with_id(w, entity, table, &id, fields)?;
    Ok(id)
}

/// [`insert_record`] under a given id (a key's own id, say).
pub(crate) fn insert_record_with_id(
    w: &mut Writer<'_>,
    entity: &str,
    table: &str,
    id: &str,
    fields: Map<String, Value>,
) -> Result<()> {
    let cols: Vec<&str> = fields.keys().map(String::as_str).collect();
    let marks: Vec<String> = (2..=cols.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table}(id, {}) VALUES (?1, {})",
        cols.join(", "),
        marks.join(", ")
    );
    let mut values = vec![SqlValue::Text(id.to_string())];
    values.extend(fields.values().map(to_sql));
    w.conn()
        .prepare_cached(&sql)?
        .execute(params_from_iter(values))?;
    w.record(entity, id, Op::Insert, Value::Object(fields))
}

/// One column of a hamlet of `unit` (a hamlet of another unit is not found).
fn hamlet_column<T: rusqlite::types::FromSql>(
    conn: &rusqlite::Connection,
    unit: &str,
    id: &str,
    column: &str,
) -> Result<T> {
    conn.query_row(
        &format!("SELECT {column} FROM hamlets WHERE id = ?1 AND unit_code = ?2"),
        [id, unit],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        what: "thôn",
        key: id.into(),
    })
}

/// Updates the given fields of a record and records the change.
pub(crate) fn update_record(
    w: &mut Writer<'_>,
    entity: &str,
    table: &str,
    id: &str,
    fields: Map<String, Value>,
) -> Result<()> {
    if fields.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> = fields
        .keys()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 2))
        .collect();
    let sql = format!("UPDATE {table} SET {} WHERE id = ?1", sets.join(", "));
    let mut values = vec![SqlValue::Text(id.to_string())];
    values.extend(fields.values().map(to_sql));
    w.conn().execute(&sql, params_from_iter(values))?;
    w.record(entity, id, Op::Update, Value::Object(fields))
}

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The full name of a hamlet: "Buôn" + "Ea Kpam" → "Buôn Ea Kpam"; a name that already
/// starts with its kind keeps it, spelled properly ("thon 1" → "Thôn 1").
pub fn full_hamlet_name(kind: HamletKind, name: &str) -> String {
    let name = normalize_line(name);
    if HamletKind::from_name(&name) == Some(kind) {
        let words = kind.label().split(' ').count();
        let rest: Vec<&str> = name.split(' ').skip(words).collect();
        format!("{} {}", kind.label(), rest.join(" "))
    } else {
        format!("{} {name}", kind.label())
    }
}

pub(crate) fn insert_hamlet(
    w: &mut Writer<'_>,
    unit: &str,
    kind: HamletKind,
    name: &str,
    households: Option<u32>,
    population: Option<u32>,
    remote: bool,
) -> Result<String> {
    let now = ts(w.now());
    let id = insert_record(
        w,
        "hamlet",
        "hamlets",
        obj(
            json!({"unit_code": unit, "kind": kind, "name": name, "name_key": identity_key(name),
            "households": households, "population": population, "remote": remote,
            "created_at": now, "updated_at": now}),
        ),
    )?;
    index_hamlet(w.conn(), None, &id, kind, name)?;
    Ok(id)
}

/// Rebuilds the search document of a hamlet or a roster person from what is stored.
pub(crate) fn reindex(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    entity: &str,
    id: &str,
) -> Result<()> {
    if entity == "hamlet" {
        let row: Option<(String, String)> = conn
            .query_row("SELECT kind, name FROM hamlets WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((kind, name)) = row {
            index_hamlet(
                conn,
                batch,
                id,
                HamletKind::parse(&kind).unwrap_or(HamletKind::Thon),
                &name,
            )?;
        }
    } else {
        let row: Option<(String, String, Option<String>, Option<String>)> = conn
            .query_row(
                "SELECT p.full_name, p.role, h.name, p.phone FROM roster_people p LEFT JOIN hamlets h ON h.id = p.hamlet_id WHERE p.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        if let Some((name, role, hamlet, phone)) = row {
            index_person(
                conn,
                batch,
                id,
                &name,
                PersonRole::parse(&role).unwrap_or(PersonRole::Other),
                hamlet.as_deref(),
                phone.as_deref(),
            )?;
        }
    }
    Ok(())
}

fn index_hamlet(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    id: &str,
    kind: HamletKind,
    name: &str,
) -> Result<()> {
    index_doc(
        conn,
        batch,
        "hamlet",
        id,
        &fold(name),
        &fold(kind.label()),
        name,
        kind.label(),
        None,
    )
}

pub(crate) fn insert_person(
    w: &mut Writer<'_>,
    unit: &str,
    hamlet: Option<(&str, &str)>,
    name: &str,
    role: PersonRole,
    phone: Option<&str>,
    note: Option<&str>,
) -> Result<String> {
    let now = ts(w.now());
    let id = insert_record(
        w,
        "roster_person",
        "roster_people",
        obj(
            json!({"unit_code": unit, "hamlet_id": hamlet.map(|h| h.0), "full_name": name,
            "name_key": identity_key(name), "role": role, "phone": phone, "note": note,
            "created_at": now, "updated_at": now}),
        ),
    )?;
    index_person(w.conn(), None, &id, name, role, hamlet.map(|h| h.1), phone)?;
    Ok(id)
}

fn index_person(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    id: &str,
    name: &str,
    role: PersonRole,
    hamlet: Option<&str>,
    phone: Option<&str>,
) -> Result<()> {
    let detail = match hamlet {
        Some(h) => format!("{} · {h}", role.label()),
        None => role.label().to_string(),
    };
    let digits = phone
        .map(format_national)
        .unwrap_or_default()
        .replace(' ', "");
    index_doc(
        conn,
        batch,
        "person",
        id,
        &fold(name),
        &fold(&format!("{detail} {digits}")),
        name,
        &detail,
        None,
    )
}

pub(crate) fn insert_group(
    w: &mut Writer<'_>,
    hamlet_id: &str,
    platform: &str,
    name: &str,
    url: Option<&str>,
    admin: Option<&str>,
) -> Result<String> {
    let now = ts(w.now());
    insert_record(
        w,
        "online_group",
        "online_groups",
        obj(
            json!({"hamlet_id": hamlet_id, "platform": platform, "name": name, "url": url,
            "admin_person_id": admin, "created_at": now, "updated_at": now}),
        ),
    )
}

pub(crate) fn insert_group_count(
    w: &mut Writer<'_>,
    group_id: &str,
    on: NaiveDate,
    members: u32,
) -> Result<String> {
    insert_record(
        w,
        "group_member_count",
        "group_member_counts",
        obj(json!({"group_id": group_id, "counted_on": on.to_string(), "members": members})),
    )
}

pub(crate) fn insert_channel(
    w: &mut Writer<'_>,
    unit: &str,
    platform: &str,
    name: &str,
    url: Option<&str>,
) -> Result<String> {
    let now = ts(w.now());
    insert_record(
        w,
        "channel",
        "channels",
        obj(
            json!({"unit_code": unit, "platform": platform, "name": name, "url": url, "created_at": now, "updated_at": now}),
        ),
    )
}

pub(crate) struct Metrics {
    pub followers: u32,
    pub posts: u32,
    pub views: u64,
    pub questions_answered: u32,
}

pub(crate) fn insert_channel_metric(
    w: &mut Writer<'_>,
    channel_id: &str,
    on: NaiveDate,
    m: &Metrics,
) -> Result<String> {
    insert_record(
        w,
        "channel_metric",
        "channel_metrics",
        obj(
            json!({"channel_id": channel_id, "recorded_on": on.to_string(), "followers": m.followers,
            "posts": m.posts, "views": m.views, "questions_answered": m.questions_answered}),
        ),
    )
}

/// What a roster import does (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct RosterPlan {
    pub rows: usize,
    pub hamlets_created: Vec<String>,
    pub hamlets_updated: Vec<String>,
    pub people_created: Vec<String>,
    pub people_updated: Vec<String>,
    pub unchanged_rows: usize,
    /// People who may be the same person entered twice (spelling or diacritics differ).
    pub possible_duplicates: Vec<DuplicateHint>,
    /// False for a dry run: nothing was written.
    pub applied: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DuplicateHint {
    pub first: String,
    pub first_hamlet: Option<String>,
    pub second: String,
    pub second_hamlet: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Kind,
    Hamlet,
    Households,
    Population,
    Name,
    Role,
    Phone,
    Note,
    Ignore,
}

fn column(header: &str) -> Option<Col> {
    let h = fold(header);
    let h: String = h
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let h = h.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(match h.as_str() {
        "loai" | "loai thon" | "kind" | "hamlet kind" => Col::Kind,
        "thon"
        | "ten thon"
        | "thon buon tdp"
        | "thon buon to dan pho"
        | "thon buon"
        | "hamlet"
        | "ten" => Col::Hamlet,
        "so ho" | "ho" | "households" => Col::Households,
        "nhan khau" | "so nhan khau" | "dan so" | "population" => Col::Population,
        "ho ten" | "ho va ten" | "full name" | "name" | "nguoi lien he" => Col::Name,
        "vai tro" | "chuc vu" | "role" => Col::Role,
        "dien thoai" | "so dien thoai" | "sdt" | "phone" => Col::Phone,
        "ghi chu" | "note" => Col::Note,
        "stt" | "tt" | "so thu tu" | "" => Col::Ignore,
        _ => return None,
    })
}

struct RowData {
    line: usize,
    kind: HamletKind,
    hamlet: String,
    households: Option<u32>,
    population: Option<u32>,
    person: Option<(String, PersonRole, Option<String>, Option<String>)>,
}

fn parse_count(v: &str, line: usize, field: &str, errors: &mut Vec<RowError>) -> Option<u32> {
    let digits: String = v
        .chars()
        .filter(|c| !matches!(c, '.' | ',' | ' '))
        .collect();
    if digits.is_empty() {
        return None;
    }
    match digits.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(RowError {
                line,
                field: field.into(),
                message: format!("\"{v}\" không phải số nguyên không âm."),
                suggestion: None,
            });
            None
        }
    }
}

fn parse_rows(bytes: &[u8]) -> Result<Vec<RowData>, Vec<RowError>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let err = |line: usize, field: &str, message: String| RowError {
        line,
        field: field.into(),
        message,
        suggestion: None,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| {
        vec![err(
            1,
            "file",
            "Tệp không phải UTF-8. Trong Excel hãy chọn Lưu dạng \"CSV UTF-8 (Comma delimited)\"."
                .into(),
        )]
    })?;
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![err(1, "file", format!("Không đọc được dòng tiêu đề: {e}"))])?
        .clone();
    let mut cols = Vec::new();
    let mut errors = Vec::new();
    for h in headers.iter() {
        match column(h) {
            Some(c) => cols.push(c),
            None => {
                errors.push(err(1, h, format!(
                    "Cột \"{h}\" không rõ nghĩa. Các cột nhận được: Loại, Thôn/Buôn/TDP, Số hộ, Nhân khẩu, Họ tên, Vai trò, Điện thoại, Ghi chú."
                )));
                cols.push(Col::Ignore);
            }
        }
    }
    if !cols.contains(&Col::Hamlet) {
        errors.push(err(
            1,
            "file",
            "Thiếu cột \"Thôn/Buôn/TDP\" (tên thôn)".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                errors.push(err(line, "file", format!("Dòng không đọc được: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |c: Col| -> String {
            cols.iter()
                .position(|x| *x == c)
                .and_then(|i| record.get(i))
                .map(|c| normalize_line(binhyen_domain::text::from_spreadsheet_cell(c)))
                .unwrap_or_default()
        };
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let hamlet_raw = get(Col::Hamlet);
        let kind_raw = get(Col::Kind);
        if hamlet_raw.is_empty() {
            errors.push(err(
                line,
                "hamlet",
                "Thiếu tên thôn/buôn/tổ dân phố.".into(),
            ));
            continue;
        }
        let kind = if kind_raw.is_empty() {
            HamletKind::from_name(&hamlet_raw)
        } else {
            HamletKind::parse_loose(&kind_raw).or_else(|| HamletKind::parse(&kind_raw))
        };
        let Some(kind) = kind else {
            let msg = if kind_raw.is_empty() {
                format!("Không rõ \"{hamlet_raw}\" là thôn, buôn, làng, bản, ấp hay tổ dân phố; hãy điền cột Loại.")
            } else {
                format!("Loại \"{kind_raw}\" không hợp lệ; dùng Thôn, Buôn, Làng, Bản, Ấp hoặc Tổ dân phố.")
            };
            errors.push(err(line, "kind", msg));
            continue;
        };
        let households = parse_count(&get(Col::Households), line, "households", &mut errors);
        let population = parse_count(&get(Col::Population), line, "population", &mut errors);
        let name = get(Col::Name);
        let person = if name.is_empty() {
            for (c, f) in [(Col::Role, "role"), (Col::Phone, "phone")] {
                if !get(c).is_empty() {
                    errors.push(err(
                        line,
                        f,
                        "Có vai trò hoặc điện thoại nhưng thiếu họ tên.".into(),
                    ));
                }
            }
            None
        } else {
            let role_raw = get(Col::Role);
            let role = PersonRole::parse_loose(&role_raw).unwrap_or_else(|| {
                errors.push(err(line, "role", format!(
                    "Vai trò \"{role_raw}\" không rõ; dùng Trưởng thôn, Phó trưởng thôn, Tổ bảo vệ ANTT, Quản trị nhóm hoặc Khác."
                )));
                PersonRole::Other
            });
            let phone_raw = get(Col::Phone);
            let phone = if phone_raw.is_empty() {
                None
            } else {
                match normalize_phone(&phone_raw) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        let fe = e.to_field_error("phone", &phone_raw);
                        errors.push(RowError {
                            line,
                            field: "phone".into(),
                            message: fe.message,
                            suggestion: fe.suggestion,
                        });
                        None
                    }
                }
            };
            let note = Some(normalize(&get(Col::Note))).filter(|s| !s.is_empty());
            Some((name, role, phone, note))
        };
        rows.push(RowData {
            line,
            kind,
            hamlet: full_hamlet_name(kind, &hamlet_raw),
            households,
            population,
            person,
        });
    }
    // One hamlet, one set of figures: rows that disagree are refused, not silently merged.
    let mut seen: HashMap<String, (usize, HamletKind, Option<u32>, Option<u32>)> = HashMap::new();
    for r in &rows {
        let key = identity_key(&r.hamlet);
        match seen.get(&key) {
            None => {
                seen.insert(key, (r.line, r.kind, r.households, r.population));
            }
            Some(&(line, kind, hh, pop)) => {
                if kind != r.kind {
                    errors.push(err(
                        r.line,
                        "kind",
                        format!("Loại của \"{}\" khác với dòng {line}.", r.hamlet),
                    ));
                }
                let differs = |a: Option<u32>, b: Option<u32>| a.is_some() && b.is_some() && a != b;
                if differs(hh, r.households) || differs(pop, r.population) {
                    errors.push(err(
                        r.line,
                        "households",
                        format!("Số hộ/nhân khẩu của \"{}\" khác với dòng {line}.", r.hamlet),
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// Pairs of people who may be one person: the same name once diacritics and case are
/// folded, or names that differ by a letter or two.
fn find_duplicates(people: &[RosterPerson]) -> Vec<DuplicateHint> {
    let folded: Vec<String> = people.iter().map(|p| fold(&p.full_name)).collect();
    let mut hints = Vec::new();
    for i in 0..people.len() {
        for j in i + 1..people.len() {
            let (a, b) = (&people[i], &people[j]);
            let same_phone = a.phone.is_some() && a.phone == b.phone;
            let reason = if folded[i] == folded[j] {
                if a.full_name == b.full_name && a.hamlet_id == b.hamlet_id {
                    continue;
                }
                "Cùng họ tên (khác dấu hoặc khác thôn)"
            } else if strsim::normalized_damerau_levenshtein(&folded[i], &folded[j]) >= 0.88 {
                "Họ tên gần giống nhau"
            } else if same_phone {
                "Cùng số điện thoại"
            } else {
                continue;
            };
            hints.push(DuplicateHint {
                first: a.full_name.clone(),
                first_hamlet: a.hamlet_name.clone(),
                second: b.full_name.clone(),
                second_hamlet: b.hamlet_name.clone(),
                reason: reason.into(),
            });
        }
    }
    hints
}

/// Hamlets whose names are the same once diacritics are removed ("Thôn Ôn", "Thôn Ơn"):
/// possibly one hamlet typed twice.
fn similar_hamlets(conn: &Connection, unit: &str) -> Result<Vec<DuplicateHint>> {
    let mut stmt = conn.prepare("SELECT name FROM hamlets WHERE unit_code = ?1")?;
    let names: Vec<String> = stmt
        .query_map([unit], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut hints = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            if fold(a) == fold(b) {
                hints.push(DuplicateHint {
                    first: a.clone(),
                    first_hamlet: None,
                    second: b.clone(),
                    second_hamlet: None,
                    reason: "Tên thôn giống nhau khi bỏ dấu".into(),
                });
            }
        }
    }
    Ok(hints)
}

fn list_people_in(conn: &Connection, unit: &str) -> Result<Vec<RosterPerson>> {
    let mut stmt = conn.prepare(
        "SELECT p.id, p.hamlet_id, h.name, p.full_name, p.role, p.phone, p.note
         FROM roster_people p LEFT JOIN hamlets h ON h.id = p.hamlet_id WHERE p.unit_code = ?1",
    )?;
    let mut people = stmt
        .query_map([unit], |r| {
            Ok(RosterPerson {
                id: get_uuid(r, 0)?,
                hamlet_id: get_opt_uuid(r, 1)?,
                hamlet_name: r.get(2)?,
                full_name: r.get(3)?,
                role: get_enum(r, 4, PersonRole::parse)?,
                phone: r.get(5)?,
                note: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    people.sort_by(|a, b| {
        vi_cmp(
            a.hamlet_name.as_deref().unwrap_or(""),
            b.hamlet_name.as_deref().unwrap_or(""),
        )
        .then_with(|| vi_cmp(&a.full_name, &b.full_name))
    });
    Ok(people)
}

impl Station {
    /// The commune's hamlets in Vietnamese alphabetical order.
    pub fn list_hamlets(&self) -> Result<Vec<Hamlet>> {
        // The head: the first hamlet head of the roster by name (a hamlet has one; a roster
        // that lists two shows the first).
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.id, h.unit_code, h.kind, h.name, h.households, h.population, h.remote,
                    hd.full_name, hd.phone, h.area_officer_id, o.full_name
             FROM hamlets h
             LEFT JOIN roster_people hd ON hd.id = (
                 SELECT p.id FROM roster_people p WHERE p.hamlet_id = h.id AND p.role = 'hamlet_head'
                 ORDER BY p.name_key, p.id LIMIT 1)
             LEFT JOIN officers o ON o.id = h.area_officer_id
             WHERE h.unit_code = ?1",
        )?;
        let mut hamlets = stmt
            .query_map([&self.info().unit_code], |r| {
                Ok(Hamlet {
                    id: get_uuid(r, 0)?,
                    unit_code: r.get(1)?,
                    kind: get_enum(r, 2, HamletKind::parse)?,
                    name: r.get(3)?,
                    households: r.get(4)?,
                    population: r.get(5)?,
                    remote: r.get(6)?,
                    head_name: r.get(7)?,
                    head_phone: r.get(8)?,
                    area_officer_id: get_opt_uuid(r, 9)?,
                    area_officer_name: r.get(10)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        hamlets.sort_by(|a, b| vi_cmp(&a.name, &b.name));
        Ok(hamlets)
    }

    /// Marks a hamlet as remote from the station (its crime tips get the longer transfer
    /// deadline) or not.
    pub fn set_hamlet_remote(&mut self, id: &str, remote: bool, now: DateTime<Utc>) -> Result<()> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        let unit = self.info().unit_code.clone();
        let current: bool = hamlet_column(&self.conn, &unit, id, "remote")?;
        if current == remote {
            return Ok(());
        }
        self.set_hamlet_field(id, "remote", Value::Bool(remote), now)
    }

    /// Writes one field of a hamlet (with its `updated_at`) and its audit entry.
    fn set_hamlet_field(
        &mut self,
        id: &str,
        field: &str,
        value: Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut w = self.writer(now)?;
        let mut fields = Map::new();
        fields.insert(field.into(), value.clone());
        fields.insert("updated_at".into(), Value::String(ts(now)));
        update_record(&mut w, "hamlet", "hamlets", id, fields)?;
        let mut detail = Map::new();
        detail.insert(field.trim_end_matches("_id").into(), value);
        w.audit(
            crate::audit::Action::RosterChange,
            Some(id),
            Value::Object(detail),
        )?;
        w.commit()
    }

    /// A hamlet of the unit by id or name (diacritics optional when the name is unique).
    pub fn hamlet_id(&self, key: &str) -> Result<String> {
        crate::tips::resolve_hamlet(&self.conn, &self.info().unit_code, key)?
            .map(|(id, _)| id)
            .ok_or_else(|| StoreError::NotFound {
                what: "thôn",
                key: key.into(),
            })
    }

    /// Puts a police officer of the unit in charge of a hamlet (by username or id), or no
    /// one (`None`). The officer must be an active officer or chief.
    pub fn set_area_officer(
        &mut self,
        hamlet_id: &str,
        officer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Hamlet> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        let unit = self.info().unit_code.clone();
        let current: Option<String> =
            hamlet_column(&self.conn, &unit, hamlet_id, "area_officer_id")?;
        let officer_id = match officer.map(str::trim).filter(|o| !o.is_empty()) {
            Some(o) => {
                Some(crate::accounts::handling_officer(&self.conn, o, &unit, "area_officer")?.0)
            }
            None => None,
        };
        if current != officer_id {
            let value = officer_id.map_or(Value::Null, Value::String);
            self.set_hamlet_field(hamlet_id, "area_officer_id", value, now)?;
        }
        self.list_hamlets()?
            .into_iter()
            .find(|h| h.id.to_string() == hamlet_id)
            .ok_or_else(|| StoreError::NotFound {
                what: "thôn",
                key: hamlet_id.into(),
            })
    }

    /// Roster people, by hamlet then name, in Vietnamese order.
    pub fn list_people(&self) -> Result<Vec<RosterPerson>> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        list_people_in(&self.conn, &self.info().unit_code)
    }

    /// Imports a roster file as the officer picked it: an Excel workbook (.xlsx, its first
    /// sheet) or a CSV; the rules are those of `import_roster`.
    pub fn import_roster_file(
        &mut self,
        bytes: &[u8],
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<RosterPlan> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        if bytes.starts_with(b"PK\x03\x04") {
            let csv = xlsx_to_csv(bytes).map_err(StoreError::Rows)?;
            self.import_roster(&csv, dry_run, now)
        } else {
            self.import_roster(bytes, dry_run, now)
        }
    }

    /// Imports a roster CSV. Every row is checked first; one bad row and nothing is written
    /// (the errors name their lines). A dry run does the whole import inside a transaction
    /// and rolls it back, so its preview is exactly what the real import would do.
    pub fn import_roster(
        &mut self,
        bytes: &[u8],
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<RosterPlan> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        let rows = parse_rows(bytes).map_err(StoreError::Rows)?;
        let unit = self.info().unit_code.clone();
        let mut plan = RosterPlan {
            rows: rows.len(),
            ..Default::default()
        };
        let mut w = self.writer(now)?;
        let mut hamlet_ids: HashMap<String, String> = HashMap::new();
        for r in &rows {
            let key = identity_key(&r.hamlet);
            let mut row_changed = false;
            let hamlet_id = match hamlet_ids.get(&key) {
                Some(id) => id.clone(),
                None => {
                    let existing: Option<(String, Option<u32>, Option<u32>)> = w
                        .conn()
                        .query_row(
                            "SELECT id, households, population FROM hamlets WHERE unit_code = ?1 AND name_key = ?2",
                            [&unit, &key],
                            |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
                        )
                        .optional()?;
                    let id = match existing {
                        None => {
                            plan.hamlets_created.push(r.hamlet.clone());
                            row_changed = true;
                            insert_hamlet(
                                &mut w,
                                &unit,
                                r.kind,
                                &r.hamlet,
                                r.households,
                                r.population,
                                false,
                            )?
                        }
                        Some((id, hh, pop)) => {
                            let mut changed = Map::new();
                            if r.households.is_some() && r.households != hh {
                                changed.insert("households".into(), json!(r.households));
                            }
                            if r.population.is_some() && r.population != pop {
                                changed.insert("population".into(), json!(r.population));
                            }
                            if !changed.is_empty() {
                                changed.insert("updated_at".into(), json!(ts(now)));
                                update_record(&mut w, "hamlet", "hamlets", &id, changed)?;
                                plan.hamlets_updated.push(r.hamlet.clone());
                                row_changed = true;
                            }
                            id
                        }
                    };
                    hamlet_ids.insert(key, id.clone());
                    id
                }
            };
            if let Some((name, role, phone, note)) = &r.person {
                let existing: Option<(String, String, Option<String>, Option<String>)> = w
                    .conn()
                    .query_row(
                        "SELECT id, role, phone, note FROM roster_people WHERE hamlet_id = ?1 AND name_key = ?2",
                        [&hamlet_id, &identity_key(name)],
                        |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)),
                    )
                    .optional()?;
                match existing {
                    None => {
                        insert_person(
                            &mut w,
                            &unit,
                            Some((&hamlet_id, &r.hamlet)),
                            name,
                            *role,
                            phone.as_deref(),
                            note.as_deref(),
                        )?;
                        plan.people_created.push(format!("{name} ({})", r.hamlet));
                        row_changed = true;
                    }
                    Some((id, old_role, old_phone, old_note)) => {
                        let mut changed = Map::new();
                        if old_role != role.as_str() {
                            changed.insert("role".into(), json!(role));
                        }
                        if phone.is_some() && *phone != old_phone {
                            changed.insert("phone".into(), json!(phone));
                        }
                        if note.is_some() && *note != old_note {
                            changed.insert("note".into(), json!(note));
                        }
                        if !changed.is_empty() {
                            changed.insert("updated_at".into(), json!(ts(now)));
                            update_record(&mut w, "roster_person", "roster_people", &id, changed)?;
                            let phone = phone.clone().or(old_phone);
                            index_person(
                                w.conn(),
                                None,
                                &id,
                                name,
                                *role,
                                Some(&r.hamlet),
                                phone.as_deref(),
                            )?;
                            plan.people_updated.push(format!("{name} ({})", r.hamlet));
                            row_changed = true;
                        }
                    }
                }
            }
            if !row_changed {
                plan.unchanged_rows += 1;
            }
        }
        plan.possible_duplicates = find_duplicates(&list_people_in(w.conn(), &unit)?);
        plan.possible_duplicates
            .extend(similar_hamlets(w.conn(), &unit)?);
        if dry_run {
            drop(w);
        } else {
            w.audit(
                crate::audit::Action::RosterImport,
                None,
                serde_json::json!({ "rows": plan.rows }),
            )?;
            w.commit()?;
            plan.applied = true;
            tracing::info!(rows = plan.rows, "roster imported");
        }
        Ok(plan)
    }

    /// The roster as CSV (UTF-8 with BOM, so Excel shows Vietnamese), in the same columns
    /// that [`Station::import_roster`] reads: exporting and importing again changes nothing.
    pub fn export_roster(&self) -> Result<Vec<u8>> {
        self.require(binhyen_domain::access::Permission::Export)?;
        let hamlets = self.list_hamlets()?;
        let people = self.list_people()?;
        let mut out = b"\xEF\xBB\xBF".to_vec();
        {
            let mut w = csv::Writer::from_writer(&mut out);
            let io = |e: csv::Error| StoreError::io("roster.csv", std::io::Error::other(e));
            w.write_record(binhyen_domain::text::spreadsheet_row([
                "Loại",
                "Thôn/Buôn/TDP",
                "Số hộ",
                "Nhân khẩu",
                "Họ tên",
                "Vai trò",
                "Điện thoại",
                "Ghi chú",
            ]))
            .map_err(io)?;
            for h in &hamlets {
                let num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
                let mine: Vec<&RosterPerson> = people
                    .iter()
                    .filter(|p| p.hamlet_id == Some(h.id))
                    .collect();
                if mine.is_empty() {
                    w.write_record(binhyen_domain::text::spreadsheet_row([
                        h.kind.label(),
                        &h.name,
                        &num(h.households),
                        &num(h.population),
                        "",
                        "",
                        "",
                        "",
                    ]))
                    .map_err(io)?;
                }
                for p in mine {
                    let phone = p.phone.as_deref().map(format_national).unwrap_or_default();
                    w.write_record(binhyen_domain::text::spreadsheet_row([
                        h.kind.label(),
                        &h.name,
                        &num(h.households),
                        &num(h.population),
                        &p.full_name,
                        p.role.label(),
                        &phone,
                        p.note.as_deref().unwrap_or(""),
                    ]))
                    .map_err(io)?;
                }
            }
            w.flush().map_err(|e| StoreError::io("roster.csv", e))?;
        }
        Ok(out)
    }
}

/// The first sheet of an XLSX workbook as CSV, so that both formats go through the same
/// row checks (line numbers count from the sheet's header row, which is line 1).
fn xlsx_to_csv(bytes: &[u8]) -> Result<Vec<u8>, Vec<RowError>> {
    use calamine::{Data, Reader, Xlsx};
    let bad = |message: String| {
        vec![RowError {
            line: 1,
            field: "file".into(),
            message,
            suggestion: None,
        }]
    };
    let mut book = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| {
        bad(format!(
            "Tệp Excel không đọc được ({e}); hãy mở bằng Excel và lưu lại dạng .xlsx."
        ))
    })?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| bad("Tệp Excel không có trang tính nào.".into()))?
        .map_err(|e| bad(format!("Trang tính đầu tiên không đọc được: {e}")))?;
    let mut out = csv::Writer::from_writer(Vec::new());
    for row in range.rows() {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Data::Empty => String::new(),
                Data::String(s) => s.clone(),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
                Data::Float(f) => f.to_string(),
                Data::Int(i) => i.to_string(),
                Data::Bool(b) => if *b { "có" } else { "không" }.to_string(),
                other => other.to_string(),
            })
            .collect();
        out.write_record(&cells).map_err(|e| bad(e.to_string()))?;
    }
    out.into_inner().map_err(|e| bad(e.to_string()))
}
