//! The register book (sổ tiếp nhận nguồn tin): every tip of a date range (or of the list's
//! filter) in register order, one row each, printed in its landscape layout (PDF) or as a
//! spreadsheet (XLSX). A reporter's identity is never read here: the book says whether a
//! tip has a reporter, whether the reporter asked for secrecy or is anonymous, and that the
//! identity is kept at the station; naming a person takes a reveal with a stated reason, one
//! tip at a time (see `documents.rs`). Exporting needs the right to export and is audited.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use krilla::Document;
use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook};
use serde::Serialize;
use ts_rs::TS;

use binhyen_domain::access::Permission;
use binhyen_domain::time::{format_vn, format_vn_date, VN_TZ};
use binhyen_domain::tip::{Status, Tip, TipFilter, TipSort, Urgency};

use crate::report_pdf::{fonts, pdf_err, place, width, wrap, Writer};
use crate::sql::ts;
use crate::{Result, Station, StoreError};

/// What a register book's "Người cung cấp" column says for a reporter.
pub const REPORTER_SECRET: &str = "Đề nghị giữ bí mật (Điều 56 BLTTHS)";
pub const REPORTER_ANONYMOUS: &str = "Nặc danh";
pub const REPORTER_KEPT: &str = "Có danh tính, lưu tại đơn vị";

/// One line of the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RegisterRow {
    pub register_no: String,
    /// "07/12/2026 08:15" (Vietnam time).
    pub received_at: String,
    /// Never a name: see the module's note.
    pub reporter: String,
    pub channel: String,
    pub category: String,
    pub content: String,
    /// The hamlet and the address, as entered.
    pub place: String,
    pub received_by: String,
    /// The tip's status, with the date and note of its last move ("Đã chuyển CQĐT
    /// 08/12/2026: Cơ quan CSĐT Công an tỉnh").
    pub outcome: String,
    /// Urgency and a missed deadline, when there is something to note.
    pub note: String,
}

/// The book for a range of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RegisterBook {
    pub unit_name: String,
    pub province_name: Option<String>,
    /// "Từ ngày 01/12/2026 đến ngày 07/12/2026", or "Toàn bộ sổ" with no dates.
    pub range: String,
    /// The list's other filters, when the book holds only some tips of its range ("Loại
    /// nguồn tin: Tin báo về tội phạm; Thôn: Buôn Ea Kmar"): a partial book says so.
    pub selection: Option<String>,
    pub generated_at: String,
    pub rows: Vec<RegisterRow>,
}

/// The two forms the book is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum RegisterFormat {
    Pdf,
    Xlsx,
}

impl RegisterFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterFormat::Pdf => "pdf",
            RegisterFormat::Xlsx => "xlsx",
        }
    }
}

impl std::str::FromStr for RegisterFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pdf" => Ok(RegisterFormat::Pdf),
            "xlsx" => Ok(RegisterFormat::Xlsx),
            other => Err(format!(
                "Định dạng \"{other}\" không hỗ trợ: dùng pdf (in sổ) hoặc xlsx (bảng tính)."
            )),
        }
    }
}

fn day_of(rfc3339: Option<&str>) -> Option<String> {
    rfc3339
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| format_vn_date(d.with_timezone(&Utc)))
}

/// "Từ ngày … đến ngày …" for a filter's [from, to) instants.
fn range_label(filter: &TipFilter) -> String {
    // `to` is the instant after the last day: the day before it is the last one shown.
    let last = filter
        .to
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| format_vn_date(d.with_timezone(&Utc) - chrono::Duration::seconds(1)));
    match (day_of(filter.from.as_deref()), last) {
        (Some(f), Some(t)) => format!("Từ ngày {f} đến ngày {t}"),
        (Some(f), None) => format!("Từ ngày {f}"),
        (None, Some(t)) => format!("Đến ngày {t}"),
        (None, None) => "Toàn bộ sổ".to_string(),
    }
}

/// The "Người cung cấp" cell of a tip.
pub fn reporter_cell(tip: &Tip) -> &'static str {
    if !tip.has_reporter {
        REPORTER_ANONYMOUS
    } else if tip.reporter_secret {
        REPORTER_SECRET
    } else {
        REPORTER_KEPT
    }
}

impl Station {
    /// The register book of the tips `filter` selects (its sort, limit and offset are
    /// ignored: the book is every matching tip in register order). Reads no identity.
    pub fn register_book(&self, filter: &TipFilter, now: DateTime<Utc>) -> Result<RegisterBook> {
        self.require(Permission::Export)?;
        let filter = TipFilter {
            sort: Some(TipSort::Oldest),
            limit: None,
            offset: None,
            ..filter.clone()
        };
        let tips = self.list_tips(&filter)?;
        // Each tip's last status move, in one pass over the timeline.
        let wanted: std::collections::HashSet<String> =
            tips.iter().map(|t| t.id.to_string()).collect();
        let mut moves: HashMap<String, (String, String, Option<String>)> = HashMap::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT tip_id, at, to_status, note FROM (
                 SELECT tip_id, at, to_status, note,
                        row_number() OVER (PARTITION BY tip_id ORDER BY at DESC) AS n
                 FROM tip_actions WHERE to_status IS NOT NULL)
             WHERE n = 1",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if wanted.contains(&id) {
                moves.insert(id, (r.get(1)?, r.get(2)?, r.get(3)?));
            }
        }
        drop(rows);
        let rows = tips
            .iter()
            .map(|tip| {
                let place = [tip.hamlet_name.clone(), tip.address.clone()]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut outcome = tip.status.label().to_string();
                if let Some((at, status, note)) = moves.get(&tip.id.to_string()) {
                    if Status::parse(status) == Some(tip.status) {
                        if let Some(d) = day_of(Some(at)) {
                            outcome = format!("{outcome} {d}");
                        }
                        if let Some(n) = note.as_deref().filter(|n| !n.trim().is_empty()) {
                            outcome = format!("{outcome}: {}", n.trim());
                        }
                    }
                }
                let mut notes = Vec::new();
                if tip.urgency != Urgency::Normal {
                    notes.push(tip.urgency.label().to_string());
                }
                let open = matches!(tip.status, Status::Received | Status::Verifying);
                if open && tip.transfer_deadline.is_some_and(|d| now > d) {
                    notes.push("Quá hạn chuyển CQĐT".to_string());
                }
                RegisterRow {
                    register_no: tip.register_no.clone(),
                    received_at: format_vn(tip.received_at),
                    reporter: reporter_cell(tip).to_string(),
                    channel: tip.channel.label().to_string(),
                    category: tip.category.label().to_string(),
                    content: tip.content.clone(),
                    place,
                    received_by: tip.received_by_name.clone().unwrap_or_default(),
                    outcome,
                    note: notes.join("; "),
                }
            })
            .collect();
        let selection = self.selection_label(&filter)?;
        let info = self.info();
        Ok(RegisterBook {
            unit_name: info.unit_name.clone(),
            province_name: info.province_name.clone(),
            range: range_label(&filter),
            selection,
            generated_at: ts(now),
            rows,
        })
    }

    /// The filters beyond the dates, in words, or none when the book is the whole range.
    fn selection_label(&self, f: &TipFilter) -> Result<Option<String>> {
        let mut parts = Vec::new();
        let name = |sql: &str, key: &str| -> Result<String> {
            Ok(self
                .conn
                .query_row(sql, [key], |r| r.get::<_, String>(0))
                .unwrap_or_else(|_| key.to_string()))
        };
        if let Some(c) = f.category {
            parts.push(format!("Loại nguồn tin: {}", c.label()));
        }
        if let Some(st) = f.status {
            parts.push(format!("Trạng thái: {}", st.label()));
        }
        if f.open == Some(true) {
            parts.push("Chỉ nguồn tin đang xử lý".to_string());
        }
        if let Some(c) = f.channel {
            parts.push(format!("Hình thức tiếp nhận: {}", c.label()));
        }
        if let Some(h) = f.hamlet.as_deref().filter(|h| !h.is_empty()) {
            parts.push(format!(
                "Thôn: {}",
                name("SELECT name FROM hamlets WHERE id = ?1", h)?
            ));
        }
        if let Some(o) = f.officer.as_deref().filter(|o| !o.is_empty()) {
            parts.push(format!(
                "Cán bộ: {}",
                name(
                    "SELECT full_name FROM officers WHERE id = ?1 OR username = lower(?1) LIMIT 1",
                    o
                )?
            ));
        }
        if let Some(u) = f.unit.as_deref().filter(|u| !u.is_empty()) {
            parts.push(format!(
                "Đơn vị: {}",
                name("SELECT name FROM units WHERE code = ?1", u)?
            ));
        }
        if let Some(q) = f.query.as_deref().filter(|q| !q.trim().is_empty()) {
            parts.push(format!("Có chữ \"{}\"", q.trim()));
        }
        if f.overdue_at.is_some() {
            parts.push("Chỉ tin quá hạn chuyển".to_string());
        }
        Ok((!parts.is_empty()).then(|| parts.join("; ")))
    }

    /// The register book as a file in `format`, written to the audit trail with how many
    /// tips it holds, its range and `via` (what asked for it).
    pub fn export_register(
        &mut self,
        filter: &TipFilter,
        format: RegisterFormat,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<(RegisterBook, Vec<u8>)> {
        let book = self.register_book(filter, now)?;
        let bytes = match format {
            RegisterFormat::Pdf => to_pdf(&book)?,
            RegisterFormat::Xlsx => to_xlsx(&book)?,
        };
        self.audit(
            crate::audit::Action::RegisterExport,
            None,
            serde_json::json!({
                "range": book.range,
                "tips": book.rows.len(),
                "format": format.as_str(),
                "via": via,
            }),
            now,
        )?;
        Ok((book, bytes))
    }
}

/// Landscape A4, in points.
const PW: f32 = 841.89;
const PH: f32 = 595.28;
const LEFT: f32 = 34.0;
const BOTTOM: f32 = PH - 40.0;
const SIZE: f32 = 8.0;
const LINE: f32 = 10.0;
/// Most lines a cell shows before it is cut with an ellipsis (the content of a long tip).
const MAX_LINES: usize = 8;

/// The columns: heading and width in points (together 774, the page less its margins).
const COLUMNS: [(&str, f32); 10] = [
    ("Số sổ", 64.0),
    ("Ngày, giờ tiếp nhận", 58.0),
    ("Người cung cấp nguồn tin", 74.0),
    ("Hình thức tiếp nhận", 54.0),
    ("Nội dung tóm tắt", 184.0),
    ("Phân loại", 70.0),
    ("Địa điểm", 74.0),
    ("Cán bộ tiếp nhận", 60.0),
    ("Kết quả giải quyết", 88.0),
    ("Ghi chú", 48.0),
];

fn cells(r: &RegisterRow) -> [&str; 10] {
    [
        &r.register_no,
        &r.received_at,
        &r.reporter,
        &r.channel,
        &r.content,
        &r.category,
        &r.place,
        &r.received_by,
        &r.outcome,
        &r.note,
    ]
}

/// A cell's lines in its column, at most [`MAX_LINES`], the last cut with "…".
fn cell_lines(text: &str, bold: bool, room: f32) -> Vec<String> {
    let mut lines = wrap(text, bold, SIZE, room);
    if lines.len() > MAX_LINES {
        lines.truncate(MAX_LINES);
        if let Some(last) = lines.last_mut() {
            while width(bold, &format!("{last}…"), SIZE) > room && !last.is_empty() {
                last.pop();
            }
            last.push('…');
        }
    }
    lines
}

/// One row of the table (the heading too), with its borders; the row starts at the
/// writer's line.
fn table_row(w: &mut Writer<'_>, texts: &[&str], bold: bool) {
    let laid: Vec<Vec<String>> = texts
        .iter()
        .zip(COLUMNS)
        .map(|(t, (_, cw))| cell_lines(t, bold, cw - 6.0))
        .collect();
    let n = laid.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let top = w.y;
    let mut x = LEFT;
    for (lines, (_, cw)) in laid.iter().zip(COLUMNS) {
        for (i, line) in lines.iter().enumerate() {
            let y = top + 10.0 + i as f32 * LINE;
            let saved = w.y;
            w.y = y;
            if bold {
                w.centered(x, x + cw, SIZE, true, line);
            } else {
                w.text(x + 3.0, SIZE, false, line);
            }
            w.y = saved;
        }
        x += cw;
    }
    w.y = top + 4.0 + n as f32 * LINE;
    let right = LEFT + COLUMNS.iter().map(|c| c.1).sum::<f32>();
    w.rule(LEFT, right);
    let mut x = LEFT;
    w.vline(x, top);
    for (_, cw) in COLUMNS {
        x += cw;
        w.vline(x, top);
    }
}

fn row_height(texts: &[&str], bold: bool) -> f32 {
    let n = texts
        .iter()
        .zip(COLUMNS)
        .map(|(t, (_, cw))| cell_lines(t, bold, cw - 6.0).len())
        .max()
        .unwrap_or(1)
        .max(1);
    4.0 + n as f32 * LINE
}

fn heading(w: &mut Writer<'_>) {
    let right = LEFT + COLUMNS.iter().map(|c| c.1).sum::<f32>();
    w.rule(LEFT, right);
    let heads: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    table_row(w, &heads, true);
}

/// The book as PDF: a landscape A4 with the official header on its first page, the table
/// (its heading repeated on each page), the count and the signatures, "Trang n/N" below.
pub fn to_pdf(book: &RegisterBook) -> Result<Vec<u8>> {
    fonts()?;
    let mut doc = Document::new();
    let mut w = Writer::with_page(&mut doc, 40.0, (PW, PH), BOTTOM);
    let right = LEFT + COLUMNS.iter().map(|c| c.1).sum::<f32>();
    let mid = LEFT + 300.0;
    let province = book
        .province_name
        .as_deref()
        .map(|p| format!("CÔNG AN {}", p.to_uppercase()))
        .unwrap_or_default();
    w.centered(LEFT, mid, 10.0, false, &province);
    w.centered(mid, right, 10.0, true, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM");
    w.down(13.0);
    let unit = format!("CÔNG AN {}", book.unit_name.to_uppercase());
    w.centered(LEFT, mid, 10.0, true, &unit);
    let motto = "Độc lập - Tự do - Hạnh phúc";
    w.centered(mid, right, 10.5, true, motto);
    w.down(4.0);
    let mw = width(true, motto, 10.5);
    let mx = mid + ((right - mid) - mw) / 2.0;
    w.rule(mx, mx + mw);
    let uw = width(true, &unit, 10.0).min(mid - LEFT);
    let ux = LEFT + ((mid - LEFT) - uw) / 2.0;
    w.rule(ux + uw * 0.3, ux + uw * 0.7);
    w.down(22.0);
    w.centered(LEFT, right, 13.0, true, "SỔ TIẾP NHẬN NGUỒN TIN");
    w.down(15.0);
    w.centered(
        LEFT,
        right,
        9.5,
        false,
        "(Tố giác, tin báo về tội phạm, phản ánh an ninh trật tự và hỏi đáp của Nhân dân)",
    );
    w.down(14.0);
    w.centered(LEFT, right, 10.0, false, &book.range);
    if let Some(sel) = &book.selection {
        for line in wrap(&format!("(Chỉ gồm: {sel})"), false, 9.0, right - LEFT) {
            w.down(12.0);
            w.centered(LEFT, right, 9.0, false, &line);
        }
    }
    w.down(14.0);
    heading(&mut w);
    if book.rows.is_empty() {
        let top = w.y;
        w.down(16.0);
        w.centered(
            LEFT,
            right,
            SIZE + 1.0,
            false,
            "Không có nguồn tin nào trong khoảng này.",
        );
        w.down(6.0);
        w.rule(LEFT, right);
        w.vline(LEFT, top);
        w.vline(right, top);
    }
    for row in &book.rows {
        let texts = cells(row);
        if w.y + row_height(&texts, false) > BOTTOM {
            w.new_page();
            w.y = 40.0;
            heading(&mut w);
        }
        table_row(&mut w, &texts, false);
    }
    // The count, then the signatures: the officer who keeps the book, the chief.
    if w.y + 90.0 > BOTTOM {
        w.new_page();
        w.y = 40.0;
    }
    w.down(18.0);
    w.text(
        LEFT,
        9.5,
        false,
        &format!(
            "Tổng số: {} nguồn tin. Danh tính người cung cấp nguồn tin không in trong sổ này; \
             được lưu riêng tại đơn vị.",
            book.rows.len()
        ),
    );
    w.down(16.0);
    let date = DateTime::parse_from_rfc3339(&book.generated_at)
        .map(|d| d.with_timezone(&VN_TZ))
        .ok();
    if let Some(d) = date {
        w.centered(
            right - 260.0,
            right,
            9.5,
            false,
            &format!(
                "{}, ngày {:02} tháng {:02} năm {}",
                place(&book.unit_name),
                d.day(),
                d.month(),
                d.year()
            ),
        );
    }
    w.down(14.0);
    w.centered(LEFT, LEFT + 260.0, 9.5, true, "CÁN BỘ GHI SỔ");
    w.centered(right - 260.0, right, 9.5, true, "TRƯỞNG CÔNG AN");
    w.down(12.0);
    w.centered(LEFT, LEFT + 260.0, 8.5, false, "(Ký, ghi rõ họ tên)");
    w.centered(
        right - 260.0,
        right,
        8.5,
        false,
        "(Ký, ghi rõ họ tên, đóng dấu)",
    );
    let pages = w.pages();
    for i in 0..pages {
        let label = format!("Trang {}/{}", i + 1, pages);
        let x = right - width(false, &label, 8.0);
        w.text_on(i, x, PH - 22.0, 8.0, &label);
    }
    w.finish()?;
    doc.finish().map_err(|e| pdf_err(format!("{e:?}")))
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> StoreError {
    StoreError::Io {
        path: "so-tiep-nhan.xlsx".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The book as a spreadsheet: the same columns, set to print landscape on A4 with the
/// heading repeated, a filter on the heading, text wrapped. Cells are written as text, so
/// nothing typed into a tip runs as a formula.
pub fn to_xlsx(book: &RegisterBook) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let title = Format::new()
        .set_bold()
        .set_font_size(13)
        .set_align(FormatAlign::Center);
    let center = Format::new().set_align(FormatAlign::Center);
    let head = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_background_color("#DCE6F1");
    let cell = Format::new()
        .set_text_wrap()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Top);
    let ws = wb.add_worksheet();
    ws.set_name("Sổ tiếp nhận").map_err(xlsx_err)?;
    ws.set_landscape();
    ws.set_paper_size(9); // A4
    ws.set_print_fit_to_pages(1, 0);
    let last_col = (COLUMNS.len() - 1) as u16;
    ws.write_string_with_format(
        0,
        0,
        book.province_name
            .as_deref()
            .map(|p| format!("CÔNG AN {}", p.to_uppercase()))
            .unwrap_or_default(),
        &Format::new(),
    )
    .map_err(xlsx_err)?;
    ws.write_string_with_format(
        1,
        0,
        format!("CÔNG AN {}", book.unit_name.to_uppercase()),
        &bold,
    )
    .map_err(xlsx_err)?;
    ws.merge_range(3, 0, 3, last_col, "SỔ TIẾP NHẬN NGUỒN TIN", &title)
        .map_err(xlsx_err)?;
    ws.merge_range(4, 0, 4, last_col, &book.range, &center)
        .map_err(xlsx_err)?;
    if let Some(sel) = &book.selection {
        ws.merge_range(5, 0, 5, last_col, &format!("Chỉ gồm: {sel}"), &center)
            .map_err(xlsx_err)?;
    }
    let head_row = 7u32;
    for (i, (h, cw)) in COLUMNS.iter().enumerate() {
        ws.write_string_with_format(head_row, i as u16, *h, &head)
            .map_err(xlsx_err)?;
        ws.set_column_width(i as u16, f64::from(*cw) / 5.2)
            .map_err(xlsx_err)?;
    }
    ws.set_repeat_rows(head_row, head_row).map_err(xlsx_err)?;
    ws.set_freeze_panes(head_row + 1, 0).map_err(xlsx_err)?;
    for (n, row) in book.rows.iter().enumerate() {
        let r = head_row + 1 + n as u32;
        for (i, text) in cells(row).iter().enumerate() {
            // Excel holds at most 32,767 characters in a cell.
            let text: String = text.chars().take(32_000).collect();
            ws.write_string_with_format(r, i as u16, text, &cell)
                .map_err(xlsx_err)?;
        }
    }
    let end = head_row + book.rows.len() as u32;
    ws.autofilter(head_row, 0, end.max(head_row), last_col)
        .map_err(xlsx_err)?;
    ws.write_string(
        end + 2,
        0,
        format!(
            "Tổng số: {} nguồn tin. Danh tính người cung cấp nguồn tin không ghi trong sổ này; được lưu riêng tại đơn vị.",
            book.rows.len()
        ),
    )
    .map_err(xlsx_err)?;
    wb.save_to_buffer().map_err(xlsx_err)
}
