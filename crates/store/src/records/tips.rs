//! Tips: recording (with an offline register number), import, listing, search, update,
//! and the timeline. Reporter identity lives in its own table and leaves lists out.

use binhyen_domain::access::Permission;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use serde_json::json;
use uuid::Uuid;

use binhyen_domain::attachment::{validate_all, NewAttachment};
use binhyen_domain::text::{fold, identity_key};
use binhyen_domain::time::vn_year;
use binhyen_domain::tip::{
    ActionKind, Category, Channel, LinkRelation, NewTip, Reporter, Status, Tip, TipAction,
    TipFilter, TipInput, TipLink, TipPatch, TipSort, Urgency,
};
use binhyen_domain::{FieldError, Invalid};

use crate::changes::{Op, Writer};
use crate::identity::{is_locked, Sealer};
use crate::search::{fts_query, index_doc, tip_doc_order, FtsBatch};
use crate::sql::{get_enum, get_opt_uuid, get_ts, get_uuid, ts};
use crate::{Result, Station, StoreError};

const TIP_COLUMNS: &str =
    "t.id, t.unit_code, t.register_no, t.received_at, t.category, t.channel, t.status,
    t.urgency, t.content, t.hamlet_id, h.name, t.address, t.latitude, t.longitude,
    r.tip_id IS NOT NULL, COALESCE(r.secret, 0), t.created_at, t.updated_at,
    t.received_by, rb.full_name, t.assigned_to, ab.full_name, COALESCE(h.remote, 0)";
/// The FROM clause, the WHERE clause and the arguments of a tip filter.
type FilterSql = (String, String, Vec<Box<dyn ToSql>>);

/// What a tip row is joined with (after `tips t`).
const TIP_JOINS: &str =
    "LEFT JOIN hamlets h ON h.id = t.hamlet_id LEFT JOIN tip_reporters r ON r.tip_id = t.id
     LEFT JOIN officers rb ON rb.id = t.received_by LEFT JOIN officers ab ON ab.id = t.assigned_to";

fn row_to_tip(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tip> {
    Ok(Tip {
        id: get_uuid(r, 0)?,
        unit_code: r.get(1)?,
        register_no: r.get(2)?,
        received_at: get_ts(r, 3)?,
        category: get_enum(r, 4, Category::parse)?,
        channel: get_enum(r, 5, Channel::parse)?,
        status: get_enum(r, 6, Status::parse)?,
        urgency: get_enum(r, 7, Urgency::parse)?,
        content: r.get(8)?,
        hamlet_id: get_opt_uuid(r, 9)?,
        hamlet_name: r.get(10)?,
        address: r.get(11)?,
        latitude: r.get(12)?,
        longitude: r.get(13)?,
        has_reporter: r.get(14)?,
        reporter_secret: r.get(15)?,
        reporter: None,
        created_at: get_ts(r, 16)?,
        updated_at: get_ts(r, 17)?,
        received_by: get_opt_uuid(r, 18)?,
        received_by_name: r.get(19)?,
        assigned_to: get_opt_uuid(r, 20)?,
        assigned_to_name: r.get(21)?,
        timeline: Vec::new(),
        links: Vec::new(),
        attachments: Vec::new(),
        hamlet_remote: r.get(22)?,
        transfer_deadline: None,
    })
}

/// Finds a hamlet of the unit by id or by name. A name typed without diacritics ("buon ea
/// kmar") is accepted when it matches exactly one hamlet.
pub(crate) fn resolve_hamlet(
    conn: &Connection,
    unit_code: &str,
    key: &str,
) -> Result<Option<(String, String)>> {
    let exact = conn
        .prepare_cached(
            "SELECT id, name FROM hamlets WHERE unit_code = ?1 AND (id = ?2 OR name_key = ?3)",
        )?
        .query_row(params![unit_code, key, identity_key(key)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if exact.is_some() {
        return Ok(exact);
    }
    let folded = fold(key);
    let mut stmt = conn.prepare_cached("SELECT id, name FROM hamlets WHERE unit_code = ?1")?;
    let matches: Vec<(String, String)> = stmt
        .query_map([unit_code], |r| Ok((r.get(0)?, r.get(1)?)))?
        .filter_map(|r| r.ok())
        .filter(|(_, name): &(String, String)| fold(name) == folded)
        .collect();
    Ok(if matches.len() == 1 {
        matches.into_iter().next()
    } else {
        None
    })
}

fn hamlet_not_found(key: &str) -> StoreError {
    StoreError::Invalid(Invalid(vec![FieldError::new(
        "hamlet",
        "unknown_hamlet",
        format!("Không tìm thấy thôn/buôn/tổ dân phố \"{key}\" trong danh sách của xã; hãy chọn từ danh sách hoặc thêm thôn trước."),
    )]))
}

fn tip_doc(
    register_no: &str,
    category: Category,
    hamlet: Option<&str>,
    content: &str,
    address: Option<&str>,
) -> (String, String, String, String) {
    let title = fold(&format!(
        "{register_no} {} {}",
        category.label(),
        hamlet.unwrap_or("")
    ));
    let body = fold(&format!("{content} {}", address.unwrap_or("")));
    let label = format!("{register_no} · {}", category.label());
    let mut detail: String = content.chars().take(160).collect();
    if content.chars().count() > 160 {
        detail.push('…');
    }
    (title, body, label, detail)
}

fn reporter_json(r: &Reporter) -> serde_json::Value {
    json!({"name": r.name, "phone": r.phone, "id_number": r.id_number, "address": r.address, "secret": r.secret})
}

/// Writes a tip's reporter, sealed (see `identity.rs`): neither the row nor the change that
/// travels holds the identity in clear.
fn upsert_reporter(
    w: &mut Writer<'_>,
    tip_id: &str,
    r: &Reporter,
    existed: bool,
    sealer: Option<&Sealer>,
) -> Result<()> {
    let sealer = sealer.ok_or_else(|| {
        StoreError::Invalid(Invalid::one(
            "reporter",
            "no_identity_key",
            "Không niêm phong được danh tính người tố giác; chưa ghi gì.",
        ))
    })?;
    let r = &sealer.seal_reporter(r)?;
    w.conn().prepare_cached(
        "INSERT INTO tip_reporters(tip_id, name, phone, id_number, address, secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(tip_id) DO UPDATE SET name = excluded.name, phone = excluded.phone,
           id_number = excluded.id_number, address = excluded.address, secret = excluded.secret",
    )?
    .execute(params![tip_id, r.name, r.phone, r.id_number, r.address, r.secret])?;
    let op = if existed { Op::Update } else { Op::Insert };
    w.record("tip_reporter", tip_id, op, reporter_json(r))
}

fn add_action(
    w: &mut Writer<'_>,
    tip_id: &str,
    kind: ActionKind,
    from: Option<Status>,
    to: Option<Status>,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    let id = Uuid::now_v7().to_string();
    w.conn().prepare_cached(
        "INSERT INTO tip_actions(id, tip_id, at, kind, from_status, to_status, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, tip_id, ts(at), kind.as_str(), from.map(Status::as_str), to.map(Status::as_str), note])?;
    w.record(
        "tip_action",
        &id,
        Op::Insert,
        json!({"tip_id": tip_id, "at": ts(at), "kind": kind.as_str(), "from_status": from.map(Status::as_str),
               "to_status": to.map(Status::as_str), "note": note}),
    )
}

/// The timeline entry of a tip's receipt, made from the tip: it carries the tip's id.
fn received(tip: &Tip) -> TipAction {
    TipAction {
        id: tip.id,
        at: tip.received_at,
        kind: ActionKind::Received,
        from_status: None,
        to_status: Some(Status::Received),
        note: None,
    }
}

/// Hands out the next register number of this laptop for the unit and year. Laptop numbers
/// are distinct within a station, so numbers never collide, online or not; and numbers this
/// laptop gave before it was reinstalled or restored, which sync brings back, are skipped.
fn next_register_no(
    w: &Writer<'_>,
    unit_code: &str,
    year: i32,
    device_no: u32,
) -> Result<(i64, String)> {
    let seq: i64 = w
        .conn()
        .prepare_cached(
            "INSERT INTO register_counters(unit_code, year, device_no, last_seq)
             VALUES (?1, ?2, ?3, 1 + (SELECT COALESCE(max(register_seq), 0) FROM tips
                                      WHERE unit_code = ?1 AND register_year = ?2 AND register_device = ?3))
             ON CONFLICT(unit_code, year, device_no) DO UPDATE SET last_seq = 1 + max(last_seq,
                 (SELECT COALESCE(max(register_seq), 0) FROM tips
                  WHERE unit_code = ?1 AND register_year = ?2 AND register_device = ?3))
             RETURNING last_seq",
        )?
        .query_row(params![unit_code, year, device_no], |r| r.get(0))?;
    Ok((seq, format!("{seq:04}/{year}/M{device_no}")))
}

/// Inserts one validated tip with its register number, reporter, change records and search
/// document. `officer` received it and handles it until a chief
/// assigns someone else.
/// What a run of tip inserts shares: the hamlets resolved so far, the sealer of reporter
/// identity (needed only when a tip has a reporter), and for a run of many, their search
/// documents held to be written together (see [`FtsBatch`]; written by the caller before it
/// commits).
#[derive(Default)]
pub(crate) struct Inserts {
    pub hamlets: HashMap<String, Option<(String, String)>>,
    pub sealer: Option<Sealer>,
    pub search: Option<FtsBatch>,
}

pub(crate) fn insert_tip(
    w: &mut Writer<'_>,
    unit_code: &str,
    device_no: u32,
    officer: Option<&str>,
    tip: &NewTip,
    status: Status,
    ctx: &mut Inserts,
) -> Result<Uuid> {
    let hamlets = &mut ctx.hamlets;
    let hamlet = match &tip.hamlet {
        None => None,
        Some(key) => {
            let found = match hamlets.get(key) {
                Some(found) => found.clone(),
                None => {
                    let found = resolve_hamlet(w.conn(), unit_code, key)?;
                    hamlets.insert(key.clone(), found.clone());
                    found
                }
            };
            Some(found.ok_or_else(|| hamlet_not_found(key))?)
        }
    };
    let year = vn_year(tip.received_at);
    let (seq, register_no) = next_register_no(w, unit_code, year, device_no)?;
    let id = Uuid::now_v7();
    let now = w.now();
    let hamlet_id = hamlet.as_ref().map(|h| h.0.as_str());
    w.conn().prepare_cached(
        "INSERT INTO tips(id, unit_code, register_no, register_year, register_device, register_seq, received_at,
            category, channel, status, urgency, content, hamlet_id, address, latitude, longitude, created_at, updated_at,
            received_by, assigned_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18, ?18)",
    )?
    .execute(params![
        id.to_string(),
        unit_code,
        register_no,
        year,
        device_no,
        seq,
        ts(tip.received_at),
        tip.category.as_str(),
        tip.channel.as_str(),
        status.as_str(),
        tip.urgency.as_str(),
        tip.content,
        hamlet_id,
        tip.address,
        tip.latitude,
        tip.longitude,
        ts(now),
        officer
    ])?;
    let id_s = id.to_string();
    w.record(
        "tip",
        &id_s,
        Op::Insert,
        json!({
            "unit_code": unit_code, "register_no": register_no, "register_year": year,
            "register_device": device_no, "register_seq": seq, "received_at": ts(tip.received_at),
            "category": tip.category, "channel": tip.channel, "status": status, "urgency": tip.urgency,
            "content": tip.content, "hamlet_id": hamlet_id, "address": tip.address,
            "latitude": tip.latitude, "longitude": tip.longitude, "created_at": ts(now), "updated_at": ts(now),
            "received_by": officer, "assigned_to": officer,
        }),
    )?;
    if let Some(r) = &tip.reporter {
        upsert_reporter(w, &id_s, r, false, ctx.sealer.as_ref())?;
    }
    // The receipt is the timeline's first entry, read from the tip itself (see
    // `Station::timeline`): a stored copy would be a second record to keep and to sync for
    // every tip, saying nothing the tip does not.
    let (title, body, label, detail) = tip_doc(
        &register_no,
        tip.category,
        hamlet.as_ref().map(|h| h.1.as_str()),
        &tip.content,
        tip.address.as_deref(),
    );
    index_doc(
        w.conn(),
        ctx.search.as_mut(),
        "tip",
        &id_s,
        &title,
        &body,
        &label,
        &detail,
        Some(tip_doc_order(tip.received_at)),
    )?;
    Ok(id)
}

/// Changes a tip's status inside an open write, with its timeline entry (demo data uses it).
pub(crate) fn set_status(
    w: &mut Writer<'_>,
    id: &str,
    from: Status,
    to: Status,
    at: DateTime<Utc>,
    note: Option<&str>,
) -> Result<()> {
    w.conn()
        .prepare_cached("UPDATE tips SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, to.as_str(), ts(w.now())])?;
    w.record("tip", id, Op::Update, json!({"status": to}))?;
    add_action(
        w,
        id,
        ActionKind::StatusChanged,
        Some(from),
        Some(to),
        note,
        at,
    )
}

/// What a tip's search document is made of: register number, category, hamlet name,
/// content, address, received time.
type TipDocRow = (
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
);

/// Rebuilds a tip's search document from what is stored.
pub(crate) fn reindex_tip(conn: &Connection, batch: Option<&mut FtsBatch>, id: &str) -> Result<()> {
    let row: Option<TipDocRow> = conn
        .prepare_cached(
            "SELECT t.register_no, t.category, h.name, t.content, t.address, t.received_at
             FROM tips t LEFT JOIN hamlets h ON h.id = t.hamlet_id WHERE t.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    if let Some((register_no, category, hamlet, content, address, received_at)) = row {
        let category = Category::parse(&category).unwrap_or(Category::Other);
        let order = crate::sql::parse_ts(5, &received_at)
            .map(tip_doc_order)
            .ok();
        let (title, body, label, detail) = tip_doc(
            &register_no,
            category,
            hamlet.as_deref(),
            &content,
            address.as_deref(),
        );
        index_doc(
            conn, batch, "tip", id, &title, &body, &label, &detail, order,
        )?;
    }
    Ok(())
}

/// Rebuilds every tip's search document (stations made before tip documents were numbered
/// by received time; `doctor` repairs).
pub(crate) fn rebuild_tip_index(conn: &Connection) -> Result<usize> {
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM tips")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut batch = FtsBatch::default();
    for id in &ids {
        reindex_tip(conn, Some(&mut batch), id)?;
    }
    batch.write(conn)?;
    Ok(ids.len())
}

impl Station {
    /// Records a new tip.
    pub fn add_tip(&mut self, input: &TipInput, now: DateTime<Utc>) -> Result<Tip> {
        self.add_tip_with_files(input, &[], now)
    }

    /// Records a new tip with its photos and scans, in one transaction: a refused file
    /// refuses the tip (nothing is written), with every problem named at once.
    pub fn add_tip_with_files(
        &mut self,
        input: &TipInput,
        files: &[NewAttachment],
        now: DateTime<Utc>,
    ) -> Result<Tip> {
        self.require(Permission::TipRecord)?;
        let answered = match input.answered.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(_) if input.category != Some(Category::AdminQuestion) => {
                return Err(StoreError::Invalid(Invalid::one(
                    "answered",
                    "not_a_question",
                    "Chỉ câu hỏi về thủ tục hành chính mới được ghi là đã trả lời ngay; nguồn tin chưa được ghi.",
                )))
            }
            Some(a) => Some(binhyen_domain::text::normalize(a)),
        };
        let tip = match (input.validate(now), validate_all(files)) {
            (Ok(tip), Ok(files)) => (tip, files),
            (Err(Invalid(mut a)), Err(Invalid(b))) => {
                a.extend(b);
                return Err(Invalid(a).into());
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        let (tip, files) = tip;
        let (unit, device) = (self.info().unit_code.clone(), self.info().device_no);
        let officer = self.session.officer_id.clone();
        let mut ctx = Inserts {
            sealer: match tip.reporter {
                Some(_) => Some(self.identity_sealer(now)?),
                None => None,
            },
            ..Inserts::default()
        };
        if !files.is_empty() {
            // The key the files will travel sealed to (a chief makes the commune's first).
            self.file_sealer(now)?;
        }
        let mut w = self.writer(now)?;
        let id = insert_tip(
            &mut w,
            &unit,
            device,
            Some(&officer),
            &tip,
            Status::Received,
            &mut ctx,
        )?;
        let attached = if files.is_empty() {
            Vec::new()
        } else {
            crate::attachments::insert_attachments(&mut w, &id.to_string(), files, now)?
        };
        if let Some(answer) = &answered {
            // A question answered on the spot is part of recording it (an officer may, though
            // resolving a tip afterwards is a chief's): resolved in the same write, the answer
            // on its timeline.
            set_status(
                &mut w,
                &id.to_string(),
                Status::Received,
                Status::Resolved,
                now.max(tip.received_at),
                Some(answer),
            )?;
        }
        w.audit(
            crate::audit::Action::TipCreate,
            Some(&id.to_string()),
            if attached.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "attachments": attached })
            },
        )?;
        w.commit()?;
        tracing::info!(tip = %id, "tip recorded");
        self.load_tip(&id.to_string(), false)
    }

    /// Imports tips from JSON Lines, all or nothing: the first bad line refuses the whole
    /// file, named by its line number. Blank lines are skipped.
    pub fn import_tips(&mut self, jsonl: &str, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        self.require(Permission::TipRecord)?;
        let mut tips = Vec::new();
        for (i, line) in jsonl.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() {
                continue;
            }
            let input: TipInput = serde_json::from_str(line).map_err(|e| StoreError::Line {
                line: line_no,
                message: format!("JSON không hợp lệ: {e}"),
                errors: Vec::new(),
            })?;
            let tip = input.validate(now).map_err(|e| StoreError::Line {
                line: line_no,
                message: e.to_string(),
                errors: e.0.clone(),
            })?;
            tips.push((line_no, tip));
        }
        let (unit, device) = (self.info().unit_code.clone(), self.info().device_no);
        let officer = self.session.officer_id.clone();
        let mut ctx = Inserts {
            sealer: match tips.iter().any(|(_, t)| t.reporter.is_some()) {
                true => Some(self.identity_sealer(now)?),
                false => None,
            },
            search: Some(FtsBatch::default()),
            ..Inserts::default()
        };
        let mut w = self.writer(now)?;
        let mut ids = Vec::with_capacity(tips.len());
        for (line_no, tip) in &tips {
            let id = insert_tip(
                &mut w,
                &unit,
                device,
                Some(&officer),
                tip,
                Status::Received,
                &mut ctx,
            )
            .map_err(|e| StoreError::Line {
                line: *line_no,
                message: e.to_string(),
                errors: e.field_errors(),
            })?;
            ids.push(id);
        }
        if let Some(search) = ctx.search.take() {
            search.write(w.conn())?;
        }
        w.audit(
            crate::audit::Action::TipImport,
            None,
            serde_json::json!({ "count": ids.len() }),
        )?;
        w.commit()?;
        tracing::info!(count = ids.len(), "tips imported");
        Ok(ids)
    }

    /// One tip by id or register number, with its timeline, never with its reporter's
    /// identity: that leaves the library only through [`Station::reveal_tip`].
    pub fn get_tip(&self, key: &str) -> Result<Tip> {
        self.require(Permission::TipRead)?;
        self.load_tip(key, false)
    }

    /// [`Station::get_tip`] without the permission check, for the library's own use.
    pub(crate) fn load_tip(&self, key: &str, with_reporter: bool) -> Result<Tip> {
        let sql = format!("SELECT {TIP_COLUMNS} FROM tips t {TIP_JOINS} WHERE t.id = ?1 OR (t.register_no = ?1 AND t.unit_code = ?2)");
        let mut tip = self
            .conn
            .query_row(&sql, params![key.trim(), self.info().unit_code], row_to_tip)
            .optional()?
            .ok_or_else(|| StoreError::not_found("nguồn tin", key))?;
        let id = tip.id.to_string();
        if with_reporter && tip.has_reporter {
            tip.reporter = self.reporter(&id)?;
        }
        tip.timeline = self.timeline(&tip)?;
        tip.links = self.links(&id)?;
        tip.attachments = crate::attachments::tip_attachments(&self.conn, &id)?;
        let rules = self.deadline_rules()?;
        tip.transfer_deadline = tip.deadline_by(rules.transfer_hours, rules.transfer_hours_remote);
        Ok(tip)
    }

    /// A tip's reporter, opened with the session's identity keys.
    fn reporter(&self, tip_id: &str) -> Result<Option<Reporter>> {
        let stored = self
            .conn
            .query_row(
                "SELECT name, phone, id_number, address, secret FROM tip_reporters WHERE tip_id = ?1",
                [tip_id],
                |r| {
                    Ok(Reporter {
                        name: r.get(0)?,
                        phone: r.get(1)?,
                        id_number: r.get(2)?,
                        address: r.get(3)?,
                        secret: r.get(4)?,
                    })
                },
            )
            .optional()?;
        stored.map(|r| self.open_reporter(r)).transpose()
    }

    fn links(&self, tip_id: &str) -> Result<Vec<TipLink>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.id, l.relation, l.tip_id = ?1, o.id, o.register_no, o.status, o.category, o.content
             FROM tip_links l JOIN tips o ON o.id = CASE WHEN l.tip_id = ?1 THEN l.related_id ELSE l.tip_id END
             WHERE l.tip_id = ?1 OR l.related_id = ?1
             ORDER BY o.received_at",
        )?;
        let rows = stmt.query_map([tip_id], |r| {
            let category = get_enum(r, 6, Category::parse)?;
            let content: String = r.get(7)?;
            let mut summary: String = content.chars().take(80).collect();
            if content.chars().count() > 80 {
                summary.push('…');
            }
            Ok(TipLink {
                id: get_uuid(r, 0)?,
                relation: get_enum(r, 1, LinkRelation::parse)?,
                outgoing: r.get(2)?,
                other_id: get_uuid(r, 3)?,
                other_register_no: r.get(4)?,
                other_status: get_enum(r, 5, Status::parse)?,
                other_summary: format!("{}: {summary}", category.label()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Links a tip to another of its unit (by id or register number): related, or a
    /// duplicate of it. Linking a pair already linked (either way) changes nothing.
    pub fn link_tips(
        &mut self,
        key: &str,
        other: &str,
        relation: LinkRelation,
        now: DateTime<Utc>,
    ) -> Result<Tip> {
        self.require(Permission::TipEdit)?;
        let tip = self.load_tip(key, false)?;
        let other = self.load_tip(other, false).map_err(|e| match e {
            StoreError::NotFound { .. } => StoreError::Invalid(Invalid::one(
                "related",
                "unknown_tip",
                format!(
                    "Không tìm thấy nguồn tin \"{}\" của đơn vị; hãy nhập số như 0012/2026/M1.",
                    other.trim()
                ),
            )),
            e => e,
        })?;
        let refuse =
            |m: &str| StoreError::Invalid(Invalid::one("related", "bad_link", m.to_string()));
        if tip.id == other.id {
            return Err(refuse("Không thể liên kết một nguồn tin với chính nó."));
        }
        if tip.unit_code != other.unit_code {
            return Err(refuse(
                "Chỉ liên kết được các nguồn tin của cùng một đơn vị.",
            ));
        }
        let (a, b) = (tip.id.to_string(), other.id.to_string());
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM tip_links WHERE (tip_id = ?1 AND related_id = ?2) OR (tip_id = ?2 AND related_id = ?1))",
            params![a, b],
            |r| r.get(0),
        )?;
        if exists {
            return Ok(tip);
        }
        let id = Uuid::now_v7().to_string();
        let mut w = self.writer(now)?;
        w.conn()
            .prepare_cached(
                "INSERT INTO tip_links(id, tip_id, related_id, relation, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, a, b, relation.as_str(), ts(now)])?;
        w.record(
            "tip_link",
            &id,
            Op::Insert,
            json!({"tip_id": a, "related_id": b, "relation": relation, "created_at": ts(now)}),
        )?;
        let text = format!("{} {}", relation.label(), other.register_no);
        add_action(&mut w, &a, ActionKind::Note, None, None, Some(&text), now)?;
        w.audit(
            crate::audit::Action::TipUpdate,
            Some(&a),
            json!({ "link": b, "relation": relation }),
        )?;
        w.commit()?;
        self.load_tip(&a, false)
    }

    /// Removes a link between two tips (by the link's id).
    pub fn unlink_tips(&mut self, link_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.require(Permission::TipEdit)?;
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT tip_id FROM tip_links WHERE id = ?1",
                [link_id],
                |r| r.get(0),
            )
            .optional()?;
        let tip_id = found.ok_or_else(|| StoreError::not_found("liên kết", link_id))?;
        let mut w = self.writer(now)?;
        w.record("tip_link", link_id, Op::Delete, json!({}))?;
        w.conn()
            .execute("DELETE FROM tip_links WHERE id = ?1", [link_id])?;
        w.audit(
            crate::audit::Action::TipUpdate,
            Some(&tip_id),
            json!({ "unlink": link_id }),
        )?;
        w.commit()
    }

    /// A tip's timeline, in time order. Its first entry, the receipt, is the tip's own
    /// receipt time: tips written by this version store no entry for it. A tip written by
    /// an earlier version (or by a laptop not yet updated) has its stored one, which is
    /// shown instead, so the receipt is never shown twice.
    fn timeline(&self, tip: &Tip) -> Result<Vec<TipAction>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, kind, from_status, to_status, note FROM tip_actions WHERE tip_id = ?1 ORDER BY at, id",
        )?;
        let rows = stmt.query_map([tip.id.to_string()], |r| {
            let status = |i: usize| -> rusqlite::Result<Option<Status>> {
                let s: Option<String> = r.get(i)?;
                Ok(s.and_then(|s| Status::parse(&s)))
            };
            Ok(TipAction {
                id: get_uuid(r, 0)?,
                at: get_ts(r, 1)?,
                kind: get_enum(r, 2, ActionKind::parse)?,
                from_status: status(3)?,
                to_status: status(4)?,
                note: r.get(5)?,
            })
        })?;
        let mut timeline: Vec<TipAction> = rows.collect::<rusqlite::Result<_>>()?;
        if !timeline.iter().any(|a| a.kind == ActionKind::Received) {
            let at = timeline.partition_point(|a| a.at < tip.received_at);
            timeline.insert(at, received(tip));
        }
        Ok(timeline)
    }

    /// The FROM clause, WHERE clause and arguments of a tip filter. With a text query, the
    /// full-text index is the outer loop and its order (recency, see `search::tip_doc_order`)
    /// is the list's order, so a page stops early instead of sorting every match.
    fn filter_sql(&self, filter: &TipFilter) -> Result<FilterSql> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        let query = filter.query.as_deref().and_then(fts_query);
        let from = if let Some(q) = query {
            args.push(Box::new(q));
            clauses.push("search_fts MATCH ?1 AND d.kind = 'tip'".into());
            format!(
                "search_fts CROSS JOIN search_docs d ON d.doc = search_fts.rowid
                 CROSS JOIN tips t ON t.id = d.ref_id {TIP_JOINS}"
            )
        } else if filter.overdue_at.as_deref().is_some_and(|v| !v.is_empty()) {
            // Open crime tips have their own small index (schema v9), which holds the
            // hamlet; the deadline depends on the hamlet (remote or not).
            "tips t INDEXED BY tips_open_crime LEFT JOIN hamlets h ON h.id = t.hamlet_id"
                .to_string()
        } else {
            // Nothing joined: a count is SQLite's quick count, a page an index walk.
            "tips t".to_string()
        };
        if let Some(s) = filter.status {
            args.push(Box::new(s.as_str()));
            clauses.push(format!("t.status = ?{}", args.len()));
        }
        if let Some(c) = filter.category {
            args.push(Box::new(c.as_str()));
            clauses.push(format!("t.category = ?{}", args.len()));
        }
        if let Some(c) = filter.channel {
            args.push(Box::new(c.as_str()));
            clauses.push(format!("t.channel = ?{}", args.len()));
        }
        if let Some(h) = filter.hamlet.as_deref().filter(|h| !h.is_empty()) {
            args.push(Box::new(h.to_string()));
            clauses.push(format!("t.hamlet_id = ?{}", args.len()));
        }
        if let Some(u) = filter.unit.as_deref().filter(|u| !u.is_empty()) {
            args.push(Box::new(u.to_string()));
            clauses.push(format!("t.unit_code = ?{}", args.len()));
        }
        if let Some(o) = filter.officer.as_deref().filter(|o| !o.is_empty()) {
            // Found first, so that the list walks the (assigned_to, received_at) index. A
            // username may name an officer record per laptop that first created it.
            let ids: Vec<String> = self
                .conn
                .prepare_cached("SELECT id FROM officers WHERE id = ?1 OR username = lower(?1)")?
                .query_map([o], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if ids.len() <= 1 {
                // One officer: `=` keeps the index's order (no sort); none matches nothing.
                args.push(Box::new(ids.into_iter().next().unwrap_or_default()));
                clauses.push(format!("t.assigned_to = ?{}", args.len()));
            } else {
                let mut marks = Vec::new();
                for id in ids.into_iter().take(8) {
                    args.push(Box::new(id));
                    marks.push(format!("?{}", args.len()));
                }
                clauses.push(format!("t.assigned_to IN ({})", marks.join(", ")));
            }
        }
        if let Some(at) = filter.from.as_deref().filter(|v| !v.is_empty()) {
            args.push(Box::new(ts(filter_instant("from", at)?)));
            clauses.push(format!("t.received_at >= ?{}", args.len()));
        }
        if let Some(at) = filter.to.as_deref().filter(|v| !v.is_empty()) {
            args.push(Box::new(ts(filter_instant("to", at)?)));
            clauses.push(format!("t.received_at < ?{}", args.len()));
        }
        if filter.open == Some(true) {
            clauses.push("t.status IN ('received','verifying')".into());
        }
        if let Some(at) = filter.overdue_at.as_deref().filter(|v| !v.is_empty()) {
            let at = filter_instant("overdue_at", at)?;
            let rules = self.deadline_rules()?;
            let cutoff = |h: u32| ts(at - chrono::Duration::hours(i64::from(h)));
            args.push(Box::new(cutoff(rules.transfer_hours_remote)));
            args.push(Box::new(cutoff(rules.transfer_hours)));
            clauses.push(format!(
                "t.category IN ('crime_denunciation','crime_report') AND t.status IN ('received','verifying')
                 AND t.received_at < CASE WHEN COALESCE(h.remote, 0) THEN ?{} ELSE ?{} END",
                args.len() - 1,
                args.len()
            ));
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        Ok((from, where_sql, args))
    }

    /// Tips matching the filter, in the filter's order (newest first by default); all of
    /// them unless a limit is given.
    pub fn list_tips(&self, filter: &TipFilter) -> Result<Vec<Tip>> {
        self.require(Permission::TipRead)?;
        let (from, where_sql, mut args) = self.filter_sql(filter)?;
        let text = filter.query.as_deref().and_then(fts_query).is_some();
        // The same expression as the index `tips_urgency_order` (schema v9).
        let urgency = "(CASE t.urgency WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END)";
        let order = match (filter.sort.unwrap_or_default(), text) {
            (TipSort::Newest, true) => "search_fts.rowid DESC".to_string(),
            (TipSort::Oldest, true) => "search_fts.rowid ASC".to_string(),
            (TipSort::Urgency, true) => format!("{urgency}, search_fts.rowid DESC"),
            (TipSort::Newest, false) => "t.received_at DESC, t.register_no DESC".to_string(),
            (TipSort::Oldest, false) => "t.received_at ASC, t.register_no ASC".to_string(),
            (TipSort::Urgency, false) => {
                format!("{urgency}, t.received_at DESC, t.register_no DESC")
            }
        };
        let limit = filter.limit.map(i64::from).unwrap_or(-1);
        args.push(Box::new(limit));
        args.push(Box::new(i64::from(filter.offset.unwrap_or(0))));
        let (n_limit, n_offset) = (args.len() - 1, args.len());
        let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
        if !(1..=1_000).contains(&limit) {
            // Everything (the command line, exports): one joined query.
            let sql = if text {
                // `from` is the full-text index with the tip's joins.
                format!(
                    "SELECT {TIP_COLUMNS} FROM {from} {where_sql} ORDER BY {order} LIMIT ?{n_limit} OFFSET ?{n_offset}"
                )
            } else {
                format!(
                    "SELECT {TIP_COLUMNS} FROM tips t {TIP_JOINS}
                     WHERE t.rowid IN (SELECT t.rowid FROM {from} {where_sql})
                     ORDER BY {order} LIMIT ?{n_limit} OFFSET ?{n_offset}"
                )
            };
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let tips = stmt
                .query_map(params.as_slice(), row_to_tip)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            return self.with_deadlines(tips);
        }
        // A page: its rows are found first by rowid alone, walking an index in the list's
        // order (or the full-text index) with nothing joined, then only those rows are read
        // and joined. A deep page costs an index walk, not a join per skipped row.
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(&format!(
                "SELECT t.rowid FROM {from} {where_sql} ORDER BY {order} LIMIT ?{n_limit} OFFSET ?{n_offset}"
            ))?
            .query_map(params.as_slice(), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = (1..=ids.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {TIP_COLUMNS}, t.rowid FROM tips t {TIP_JOINS} WHERE t.rowid IN ({marks})"
        ))?;
        let mut rows: HashMap<i64, Tip> = stmt
            .query_map(rusqlite::params_from_iter(ids.iter()), |r| {
                Ok((r.get::<_, i64>(23)?, row_to_tip(r)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        self.with_deadlines(ids.iter().filter_map(|id| rows.remove(id)).collect())
    }

    /// Fills in each tip's transfer deadline by the station's rules.
    fn with_deadlines(&self, mut tips: Vec<Tip>) -> Result<Vec<Tip>> {
        let rules = self.deadline_rules()?;
        for tip in &mut tips {
            tip.transfer_deadline =
                tip.deadline_by(rules.transfer_hours, rules.transfer_hours_remote);
        }
        Ok(tips)
    }

    pub fn count_tips(&self, filter: &TipFilter) -> Result<u64> {
        self.require(Permission::TipRead)?;
        let only_text = TipFilter {
            query: None,
            limit: None,
            offset: None,
            sort: None,
            ..filter.clone()
        } == TipFilter::default();
        if let (true, Some(q)) = (only_text, filter.query.as_deref().and_then(fts_query)) {
            // Tip documents are exactly those numbered from TIP_DOCS_FROM: no join needed.
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?1 AND rowid >= ?2",
                params![q, crate::search::TIP_DOCS_FROM],
                |r| r.get(0),
            )?;
            return Ok(n.max(0) as u64);
        }
        let (from, where_sql, args) = self.filter_sql(filter)?;
        let sql = format!("SELECT count(*) FROM {from} {where_sql}");
        let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let n: i64 = self
            .conn
            .prepare_cached(&sql)?
            .query_row(params.as_slice(), |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Applies a patch. Only changed fields are written and recorded (so that sync can merge
    /// field by field); a status change and a note go to the timeline.
    pub fn update_tip(&mut self, key: &str, patch: &TipPatch, now: DateTime<Utc>) -> Result<Tip> {
        self.require(Permission::TipEdit)?;
        let current = self.load_tip(key, true)?;
        let valid = patch.validate(current.status, now)?;
        if let Some(s) = valid.status {
            self.require(binhyen_domain::access::status_permission(s))?;
            if current.status.reopens(s) {
                // Reopening a finished tip is a chief's decision, and says why.
                self.require(Permission::TipAssign)?;
                stated_reason(
                    valid.note.as_deref().unwrap_or(""),
                    "note",
                    format!("Mở lại nguồn tin đã kết thúc cần ghi lý do (ít nhất {REVEAL_REASON_WORDS} từ); lý do được ghi vào diễn biến."),
                )?;
            }
        }
        let id = current.id.to_string();
        let mut sealer = None;
        if patch.reporter.is_some() {
            self.require(Permission::IdentityView)?;
            let locked = current.reporter.as_ref().is_some_and(is_locked);
            let unchanged = valid.reporter.as_ref() == current.reporter.as_ref();
            if locked && !unchanged {
                return Err(StoreError::Invalid(Invalid::one(
                    "reporter",
                    "identity_locked",
                    "Danh tính người tố giác của nguồn tin này chưa mở được trên máy này (chưa nhận khóa danh tính của xã), nên chưa sửa được; các thay đổi khác chưa được ghi.",
                )));
            }
            if !unchanged {
                sealer = Some(self.identity_sealer(now)?);
            }
        }
        let unit = self.info().unit_code.clone();
        let mut w = self.writer(now)?;
        let mut changed = serde_json::Map::new();
        let mut sets: Vec<(&str, Box<dyn ToSql>)> = Vec::new();
        let mut labels: Vec<&str> = Vec::new();
        if let Some(c) = valid.content.filter(|c| *c != current.content) {
            changed.insert("content".into(), json!(c));
            sets.push(("content", Box::new(c)));
            labels.push("nội dung");
        }
        if let Some(c) = valid.category.filter(|c| *c != current.category) {
            changed.insert("category".into(), json!(c));
            sets.push(("category", Box::new(c.as_str())));
            labels.push("loại");
        }
        if let Some(c) = valid.channel.filter(|c| *c != current.channel) {
            changed.insert("channel".into(), json!(c));
            sets.push(("channel", Box::new(c.as_str())));
            labels.push("kênh");
        }
        if let Some(at) = valid.received_at.filter(|at| *at != current.received_at) {
            // The transfer deadline counts from it: a correction says why, on the timeline.
            stated_reason(
                valid.note.as_deref().unwrap_or(""),
                "note",
                format!(
                    "Sửa thời điểm tiếp nhận cần ghi lý do (ít nhất {REVEAL_REASON_WORDS} từ, ví dụ \"ghi nhầm giờ khi nhận điện thoại\"), vì thời hạn chuyển tin tính từ thời điểm này; lý do được ghi vào diễn biến."
                ),
            )?;
            changed.insert("received_at".into(), json!(ts(at)));
            sets.push(("received_at", Box::new(ts(at))));
            labels.push("thời điểm tiếp nhận");
        }
        if let Some(u) = valid.urgency.filter(|u| *u != current.urgency) {
            changed.insert("urgency".into(), json!(u));
            sets.push(("urgency", Box::new(u.as_str())));
            labels.push("mức độ khẩn");
        }
        if let Some(h) = valid.hamlet {
            let new_id = match &h {
                None => None,
                Some(key) => Some(
                    resolve_hamlet(w.conn(), &unit, key)?
                        .ok_or_else(|| hamlet_not_found(key))?
                        .0,
                ),
            };
            if new_id != current.hamlet_id.map(|u| u.to_string()) {
                changed.insert("hamlet_id".into(), json!(new_id));
                sets.push(("hamlet_id", Box::new(new_id)));
                labels.push("thôn");
            }
        }
        if let Some(a) = valid.address.filter(|a| *a != current.address) {
            changed.insert("address".into(), json!(a));
            sets.push(("address", Box::new(a)));
            labels.push("địa chỉ");
        }
        if let Some(s) = valid.status {
            changed.insert("status".into(), json!(s));
            sets.push(("status", Box::new(s.as_str())));
        }
        let reporter_changed = valid
            .reporter
            .as_ref()
            .is_some_and(|r| Some(r) != current.reporter.as_ref());
        if changed.is_empty() && !reporter_changed && valid.note.is_none() {
            // A reporter sent unchanged still says something (that a guess was right): the
            // attempt is on the audit trail like any other.
            if patch.reporter.is_some() {
                w.audit(
                    crate::audit::Action::TipUpdate,
                    Some(&id),
                    serde_json::json!({ "fields": ["reporter"], "unchanged": true }),
                )?;
                w.commit()?;
            }
            // Read with its reporter to compare; answered without, like every update.
            return Ok(Tip {
                reporter: None,
                ..current
            });
        }
        if !sets.is_empty() {
            let assignments: Vec<String> = sets
                .iter()
                .enumerate()
                .map(|(i, (col, _))| format!("{col} = ?{}", i + 3))
                .collect();
            let sql = format!(
                "UPDATE tips SET updated_at = ?2, {} WHERE id = ?1",
                assignments.join(", ")
            );
            let mut params: Vec<&dyn ToSql> = vec![&id];
            let now_s = ts(now);
            params.push(&now_s);
            params.extend(sets.iter().map(|(_, v)| v.as_ref()));
            w.conn().execute(&sql, params.as_slice())?;
            changed.insert("updated_at".into(), json!(now_s));
            w.record("tip", &id, Op::Update, serde_json::Value::Object(changed))?;
        }
        if let Some(r) = valid.reporter.filter(|_| reporter_changed) {
            upsert_reporter(&mut w, &id, &r, current.has_reporter, sealer.as_ref())?;
            labels.push("người báo tin");
        }
        let note = valid.note.as_deref();
        if let Some(to) = valid.status {
            add_action(
                &mut w,
                &id,
                ActionKind::StatusChanged,
                Some(current.status),
                Some(to),
                note,
                now,
            )?;
        } else if !labels.is_empty() {
            let text = format!(
                "Sửa {}{}",
                labels.join(", "),
                note.map(|n| format!(": {n}")).unwrap_or_default()
            );
            add_action(
                &mut w,
                &id,
                ActionKind::Updated,
                None,
                None,
                Some(&text),
                now,
            )?;
        } else if let Some(n) = note {
            add_action(&mut w, &id, ActionKind::Note, None, None, Some(n), now)?;
        }
        reindex_tip(w.conn(), None, &id)?;
        w.audit(
            crate::audit::Action::TipUpdate,
            Some(&id),
            serde_json::to_value(patch)
                .map(|v| {
                    let changed: Vec<String> = v
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .filter(|(_, v)| !v.is_null())
                                .map(|(k, _)| k.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    serde_json::json!({ "fields": changed })
                })
                .unwrap_or_default(),
        )?;
        w.commit()?;
        tracing::info!(tip = %id, "tip updated");
        self.load_tip(&id, false)
    }

    /// Gives a tip to an officer of its unit to handle (by username or id), with an optional
    /// note; the timeline and the audit trail say who gave it to whom.
    pub fn assign_tip(
        &mut self,
        key: &str,
        officer: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Tip> {
        self.require(Permission::TipAssign)?;
        let current = self.load_tip(key, false)?;
        let (officer_id, name) =
            crate::accounts::handling_officer(&self.conn, officer, &current.unit_code, "officer")?;
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if current.assigned_to.map(|u| u.to_string()) == Some(officer_id.clone()) && note.is_none()
        {
            return Ok(current);
        }
        let id = current.id.to_string();
        let mut w = self.writer(now)?;
        let now_s = ts(now);
        w.conn()
            .prepare_cached("UPDATE tips SET assigned_to = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, officer_id, now_s])?;
        w.record(
            "tip",
            &id,
            Op::Update,
            json!({"assigned_to": officer_id, "updated_at": now_s}),
        )?;
        // The timeline shows the kind ("Giao thụ lý") before it: the note names the officer.
        let text = format!(
            "{name}{}",
            note.map(|n| format!(": {n}")).unwrap_or_default()
        );
        add_action(
            &mut w,
            &id,
            ActionKind::Assigned,
            None,
            None,
            Some(&text),
            now,
        )?;
        w.audit(
            crate::audit::Action::TipAssign,
            Some(&id),
            json!({ "to": officer_id }),
        )?;
        w.commit()?;
        tracing::info!(tip = %id, "tip assigned");
        self.load_tip(&id, false)
    }

    /// A tip with its reporter's identity, for a person who needs it: the reveal is written
    /// to the audit trail with who and why, in the same step.
    pub fn reveal_tip(&mut self, key: &str, reason: &str, now: DateTime<Utc>) -> Result<Tip> {
        self.require(Permission::IdentityView)?;
        let reason = reveal_reason(reason)?;
        let tip = self.load_tip(key, true)?;
        if tip.reporter.is_some() {
            self.audit(
                crate::audit::Action::IdentityView,
                Some(&tip.id.to_string()),
                serde_json::json!({ "reason": reason }),
                now,
            )?;
        }
        Ok(tip)
    }
}

/// The fewest words and characters a reason to see a reporter's identity must have: a
/// stated reason ("gọi lại xác minh lời khai"), not a key pressed to get past the question.
pub const REVEAL_REASON_WORDS: usize = 3;
pub const REVEAL_REASON_CHARS: usize = 10;

/// A reason to see a reporter's identity, normalised, or the field error that asks for one.
pub fn reveal_reason(reason: &str) -> Result<String> {
    stated_reason(
        reason,
        "reason",
        format!(
            "Hãy ghi lý do cần xem danh tính người báo tin (ít nhất {REVEAL_REASON_WORDS} từ, ví dụ \"gọi lại xác minh lời khai\"); lý do được lưu vào nhật ký."
        ),
    )
}

/// A stated reason (a reveal, a corrected time received, a reopened tip): at least a few
/// words, normalised; else the field error `field` with `ask`, which says what to write.
pub(crate) fn stated_reason(text: &str, field: &str, ask: String) -> Result<String> {
    let reason = binhyen_domain::text::normalize_line(text);
    if reason.split_whitespace().count() < REVEAL_REASON_WORDS
        || reason.chars().count() < REVEAL_REASON_CHARS
    {
        return Err(StoreError::Invalid(Invalid::one(
            field,
            "reason_required",
            ask,
        )));
    }
    Ok(reason)
}

/// An instant of a filter (RFC 3339), or a field error naming the filter.
fn filter_instant(field: &str, value: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            StoreError::Invalid(Invalid::one(
                field,
                "bad_date",
                format!(
                    "Thời điểm lọc \"{value}\" không hợp lệ (cần dạng 2026-10-31T23:30:00+07:00)."
                ),
            ))
        })
}
