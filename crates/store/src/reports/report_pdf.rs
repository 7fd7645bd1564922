//! The report as a PDF in the official layout: the unit at the top left, the national motto
//! at the top right, place and date, the title, the tables, the recipients and the
//! signature block. The font (DejaVu Serif) is embedded in the binary and subset into the
//! file, so Vietnamese prints the same everywhere.

use std::sync::OnceLock;

use krilla::geom::{PathBuilder, Point};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use krilla::Document;

use crate::report::{Figure, UnitReport};
use crate::{Result, StoreError};

static REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSerif.ttf");
static BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSerif-Bold.ttf");

const W: f32 = 595.28; // A4, points
const H: f32 = 841.89;
const LEFT: f32 = 62.0;
const RIGHT: f32 = W - 48.0;
const BOTTOM: f32 = H - 60.0;

pub(crate) struct Fonts {
    regular: Font,
    bold: Font,
}

pub(crate) fn fonts() -> Result<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: Font::new(REGULAR.to_vec().into(), 0)?,
                bold: Font::new(BOLD.to_vec().into(), 0)?,
            })
        })
        .as_ref()
        .ok_or_else(|| pdf_err("the embedded font does not load"))
}

pub(crate) fn pdf_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: "report.pdf".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Width of `text` at `size` points, from the font's advances.
pub(crate) fn width(bold: bool, text: &str, size: f32) -> f32 {
    static FACES: OnceLock<Option<(ttf_parser::Face<'static>, ttf_parser::Face<'static>)>> =
        OnceLock::new();
    let faces = FACES.get_or_init(|| {
        Some((
            ttf_parser::Face::parse(REGULAR, 0).ok()?,
            ttf_parser::Face::parse(BOLD, 0).ok()?,
        ))
    });
    let Some((regular, bold_face)) = faces else {
        return 0.0;
    };
    let face = if bold { bold_face } else { regular };
    let units = f32::from(face.units_per_em());
    text.chars()
        .map(|c| {
            face.glyph_index(c)
                .and_then(|g| face.glyph_hor_advance(g))
                .map_or(0.0, f32::from)
        })
        .sum::<f32>()
        * size
        / units
}

/// A line of text placed on a page: x, y, bold, size, text.
type Placed = (f32, f32, bool, f32, String);

/// Draws on pages, starting a new one when the current is full.
pub(crate) struct Writer<'a> {
    doc: &'a mut Document,
    lines: Vec<Vec<Placed>>,
    /// Straight lines: x1, y1, x2, y2.
    rules: Vec<Vec<(f32, f32, f32, f32)>>,
    pub(crate) y: f32,
    /// Page width and height, and the lowest line drawn, in points.
    page: (f32, f32),
    pub(crate) bottom: f32,
}

impl<'a> Writer<'a> {
    /// A first A4 portrait page, starting `y` points from the top.
    fn new(doc: &'a mut Document, y: f32) -> Writer<'a> {
        Writer::with_page(doc, y, (W, H), BOTTOM)
    }

    /// A first page of `page` (width, height) points, starting `y` points from the top and
    /// drawing no lower than `bottom`.
    pub(crate) fn with_page(
        doc: &'a mut Document,
        y: f32,
        page: (f32, f32),
        bottom: f32,
    ) -> Writer<'a> {
        Writer {
            doc,
            lines: vec![Vec::new()],
            rules: vec![Vec::new()],
            y,
            page,
            bottom,
        }
    }

    /// How many pages are begun.
    pub(crate) fn pages(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        if let Some(page) = self.lines.last_mut() {
            page.push((x, self.y, bold, size, text.to_string()));
        }
    }

    pub(crate) fn centered(&mut self, from: f32, to: f32, size: f32, bold: bool, text: &str) {
        let x = from + ((to - from) - width(bold, text, size)).max(0.0) / 2.0;
        self.text(x, size, bold, text);
    }

    pub(crate) fn right(&mut self, to: f32, size: f32, bold: bool, text: &str) {
        let x = to - width(bold, text, size);
        self.text(x, size, bold, text);
    }

    pub(crate) fn rule(&mut self, from: f32, to: f32) {
        let y = self.y;
        if let Some(page) = self.rules.last_mut() {
            page.push((from, y, to, y));
        }
    }

    /// A vertical line at `x` from `top` down to the current line.
    pub(crate) fn vline(&mut self, x: f32, top: f32) {
        let y = self.y;
        if let Some(page) = self.rules.last_mut() {
            page.push((x, top, x, y));
        }
    }

    pub(crate) fn down(&mut self, dy: f32) {
        self.y += dy;
        if self.y > self.bottom {
            self.new_page();
        }
    }

    /// Text on page `index` (from 0) at `x`, `y`, for what is known only at the end (the
    /// page count).
    pub(crate) fn text_on(&mut self, index: usize, x: f32, y: f32, size: f32, text: &str) {
        if let Some(page) = self.lines.get_mut(index) {
            page.push((x, y, false, size, text.to_string()));
        }
    }

    pub(crate) fn new_page(&mut self) {
        self.lines.push(Vec::new());
        self.rules.push(Vec::new());
        self.y = 70.0;
    }

    /// A heading is not left alone at the foot of a page.
    fn keep(&mut self, room: f32) {
        if self.y + room > self.bottom {
            self.new_page();
        }
    }

    pub(crate) fn finish(self) -> Result<()> {
        let f = fonts()?;
        let (pw, ph) = self.page;
        for (lines, rules) in self.lines.into_iter().zip(self.rules) {
            let mut page = self.doc.start_page_with(
                PageSettings::from_wh(pw, ph).ok_or_else(|| pdf_err("page size"))?,
            );
            let mut surface = page.surface();
            for (x, y, bold, size, text) in lines {
                let font = if bold {
                    f.bold.clone()
                } else {
                    f.regular.clone()
                };
                surface.draw_text(
                    Point::from_xy(x, y),
                    font,
                    size,
                    &text,
                    false,
                    TextDirection::Auto,
                );
            }
            surface.set_stroke(Some(Stroke {
                width: 0.6,
                ..Default::default()
            }));
            for (x1, y1, x2, y2) in rules {
                let mut pb = PathBuilder::new();
                pb.move_to(x1, y1);
                pb.line_to(x2, y2);
                if let Some(path) = pb.finish() {
                    surface.draw_path(&path);
                }
            }
            surface.finish();
            page.finish();
        }
        Ok(())
    }
}

/// The place name in the date line: "Cư M'gar" for "Xã Cư M'gar".
pub(crate) fn place(unit_name: &str) -> &str {
    for prefix in ["Xã ", "Phường ", "Đặc khu ", "Thị trấn "] {
        if let Some(rest) = unit_name.strip_prefix(prefix) {
            return rest;
        }
    }
    unit_name
}

fn table(w: &mut Writer<'_>, heading: &str, figures: &[&Figure], cur: &str, prev: &str) {
    let (c1, c2) = (RIGHT - 170.0, RIGHT - 85.0);
    w.keep(22.0 + 19.0 + 18.0 * figures.len().min(3) as f32);
    w.down(22.0);
    w.text(LEFT, 11.5, true, heading);
    w.down(6.0);
    w.rule(LEFT, RIGHT);
    w.down(13.0);
    w.text(LEFT + 4.0, 10.0, true, "Chỉ tiêu");
    w.right(c2 - 8.0, 10.0, true, cur);
    w.right(RIGHT - 4.0, 10.0, true, prev);
    w.down(5.0);
    w.rule(LEFT, RIGHT);
    for f in figures {
        w.down(14.0);
        let mut label = f.label.clone();
        while width(false, &label, 10.0) > c1 - LEFT - 8.0 && label.chars().count() > 4 {
            label.pop();
        }
        if label != f.label {
            label.push('…');
        }
        w.text(LEFT + 4.0, 10.0, false, &label);
        w.right(c2 - 8.0, 10.0, false, &f.current.to_string());
        w.right(RIGHT - 4.0, 10.0, false, &f.previous.to_string());
        w.down(4.0);
        w.rule(LEFT, RIGHT);
    }
}

fn hours(h: Option<f64>) -> String {
    h.map(|h| format!("{h:.1} giờ"))
        .unwrap_or_else(|| "-".into())
}

/// The report as PDF bytes.
pub fn to_pdf(r: &UnitReport) -> Result<Vec<u8>> {
    fonts()?;
    let mut doc = Document::new();
    let mut w = Writer::new(&mut doc, 60.0);
    let mid = LEFT + 205.0;
    // Header: the unit at the left, the national motto at the right.
    let province = r
        .province_name
        .as_deref()
        .map(|p| format!("CÔNG AN {}", p.to_uppercase()))
        .unwrap_or_default();
    w.centered(LEFT - 20.0, mid, 10.5, false, &province);
    w.centered(mid, RIGHT, 10.5, true, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM");
    w.down(15.0);
    let unit = format!("CÔNG AN {}", r.unit_name.to_uppercase());
    w.centered(LEFT - 20.0, mid, 10.5, true, &unit);
    w.centered(mid, RIGHT, 11.0, true, "Độc lập - Tự do - Hạnh phúc");
    w.down(5.0);
    let motto_w = width(true, "Độc lập - Tự do - Hạnh phúc", 11.0);
    let motto_x = mid + ((RIGHT - mid) - motto_w) / 2.0;
    w.rule(motto_x, motto_x + motto_w);
    let unit_w = width(true, &unit, 10.5).min(mid - LEFT);
    let unit_x = (LEFT - 20.0) + ((mid - (LEFT - 20.0)) - unit_w) / 2.0;
    w.rule(unit_x + unit_w * 0.3, unit_x + unit_w * 0.7);
    w.down(22.0);
    let date = chrono::DateTime::parse_from_rfc3339(&r.generated_at)
        .map(|d| d.with_timezone(&binhyen_domain::time::VN_TZ))
        .ok();
    let date_line = match date {
        Some(d) => {
            use chrono::Datelike;
            format!(
                "{}, ngày {:02} tháng {:02} năm {}",
                place(&r.unit_name),
                d.day(),
                d.month(),
                d.year()
            )
        }
        None => String::new(),
    };
    w.centered(mid, RIGHT, 10.5, false, &date_line);
    w.down(36.0);
    w.centered(LEFT, RIGHT, 14.0, true, "BÁO CÁO");
    w.down(18.0);
    w.centered(
        LEFT,
        RIGHT,
        11.5,
        true,
        "Kết quả tiếp nhận, xử lý nguồn tin và công tác trên không gian mạng",
    );
    w.down(16.0);
    w.centered(LEFT, RIGHT, 11.0, false, &r.period.label);
    if let Some(note) = &r.unfinished {
        for line in wrap(&format!("({note})"), false, 9.5, RIGHT - LEFT) {
            w.down(14.0);
            w.centered(LEFT, RIGHT, 9.5, false, &line);
        }
    }

    let (cur, prev) = (r.period.label.as_str(), r.previous.label.as_str());
    table(&mut w, "I. Tổng hợp", &[&r.tips], cur, prev);
    table(
        &mut w,
        "II. Theo loại nguồn tin",
        &r.by_category.iter().collect::<Vec<_>>(),
        cur,
        prev,
    );
    table(
        &mut w,
        "III. Theo kênh tiếp nhận",
        &r.by_channel.iter().collect::<Vec<_>>(),
        cur,
        prev,
    );
    table(
        &mut w,
        "IV. Theo trạng thái (cuối kỳ)",
        &r.by_status.iter().collect::<Vec<_>>(),
        cur,
        prev,
    );
    if r.by_unit.is_empty() {
        table(
            &mut w,
            "V. Theo thôn, buôn, tổ dân phố",
            &r.by_hamlet.iter().collect::<Vec<_>>(),
            cur,
            prev,
        );
    } else {
        table(
            &mut w,
            "V. Theo xã, phường, đặc khu",
            &r.by_unit.iter().collect::<Vec<_>>(),
            cur,
            prev,
        );
    }
    table(
        &mut w,
        "VI. Hỏi đáp, nhóm và trang của đơn vị",
        &[
            &r.admin_questions_resolved,
            &r.questions_answered_online,
            &r.groups,
            &r.group_members,
            &r.followers,
            &r.posts,
            &r.views,
        ],
        cur,
        prev,
    );
    w.down(24.0);
    w.text(LEFT, 11.5, true, "VII. Thời gian xử lý và tin quá hạn");
    for line in [
        format!(
            "Chuyển cơ quan điều tra: {} tin; trung vị {}; lâu nhất {}.",
            r.transfer.count,
            hours(r.transfer.median_hours),
            hours(r.transfer.worst_hours)
        ),
        format!(
            "Giải quyết: {} tin; trung vị {}; lâu nhất {}.",
            r.resolve.count,
            hours(r.resolve.median_hours),
            hours(r.resolve.worst_hours)
        ),
        format!(
            "Tin về tội phạm quá hạn chuyển (quá {} giờ, {} giờ với thôn vùng sâu): {}.",
            r.rules.transfer_hours,
            r.rules.transfer_hours_remote,
            r.overdue.len()
        ),
    ] {
        w.down(15.0);
        w.text(LEFT + 4.0, 10.5, false, &line);
    }
    // Recipients at the left, signature at the right.
    w.down(34.0);
    let sign_top = w.y;
    w.text(LEFT, 10.0, true, "Nơi nhận:");
    w.down(13.0);
    let to_province = match &r.province_name {
        Some(p) => format!("- Công an {p};"),
        None => "- Cấp trên;".to_string(),
    };
    w.text(LEFT, 9.5, false, &to_province);
    w.down(12.0);
    w.text(LEFT, 9.5, false, "- Lưu: VT.");
    w.y = sign_top;
    w.centered(mid, RIGHT, 10.5, true, "TRƯỞNG CÔNG AN");
    w.down(13.0);
    w.centered(mid, RIGHT, 9.5, false, "(Ký, ghi rõ họ tên, đóng dấu)");
    w.finish()?;
    doc.finish().map_err(|e| pdf_err(format!("{e:?}")))
}

/// Breaks `text` into lines no wider than `room` points at `size`.
pub(crate) fn wrap(text: &str, bold: bool, size: f32, room: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    // A word wider than the room (a link, a long number) is cut where it must be.
    let mut words = Vec::new();
    for word in text.split_whitespace() {
        if width(bold, word, size) <= room {
            words.push(word.to_string());
            continue;
        }
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if width(bold, &piece, size) > room && piece.chars().count() > 1 {
                piece.pop();
                words.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        words.push(piece);
    }
    for word in words {
        let word = word.as_str();
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && width(bold, &candidate, size) > room {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A short printed guide (the installer's one page) from a plain text with a little
/// Markdown: `# ` a title, `## ` a heading, `- ` or `1. ` an item, a blank line between
/// paragraphs, `` ` `` marks dropped. Same font and page as the reports.
pub fn guide_to_pdf(text: &str) -> Result<Vec<u8>> {
    fonts()?;
    let mut doc = Document::new();
    let mut w = Writer::new(&mut doc, 56.0);
    let room = RIGHT - LEFT;
    for raw in text.lines() {
        let line = raw.trim_end().replace('`', "");
        if line.trim().is_empty() {
            w.down(5.0);
        } else if let Some(title) = line.strip_prefix("# ") {
            w.centered(LEFT, RIGHT, 14.0, true, title);
            w.down(22.0);
        } else if let Some(heading) = line.strip_prefix("## ") {
            w.keep(40.0);
            w.down(4.0);
            w.text(LEFT, 11.0, true, heading);
            w.down(15.0);
        } else {
            let (marker, body) = match line.split_once(' ') {
                Some((m, rest))
                    if m == "-"
                        || (m.ends_with('.') && m[..m.len() - 1].parse::<u32>().is_ok()) =>
                {
                    (
                        Some(if m == "-" {
                            "•".to_string()
                        } else {
                            m.to_string()
                        }),
                        rest,
                    )
                }
                _ => (None, line.as_str()),
            };
            let indent = if marker.is_some() { 16.0 } else { 0.0 };
            for (i, part) in wrap(body, false, 10.0, room - indent).iter().enumerate() {
                if i == 0 {
                    if let Some(m) = &marker {
                        w.text(LEFT, 10.0, false, m);
                    }
                }
                w.text(LEFT + indent, 10.0, false, part);
                w.down(13.0);
            }
        }
    }
    w.finish()?;
    doc.finish().map_err(|e| pdf_err(format!("{e:?}")))
}
