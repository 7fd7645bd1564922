//! The report as files: CSV that Excel opens with Vietnamese intact (UTF-8 with a BOM), and
//! a real XLSX workbook (typed numbers, widths, a header block). Reporter identity is not in
//! the report, so it cannot reach these files.

use binhyen_domain::text::spreadsheet_row;
use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook};

use crate::report::{Figure, UnitReport};
use crate::{Result, StoreError};

/// The files a report is written as, wherever it is exported (the window, `binhyen report`,
/// `binhyen-server report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ReportFormat {
    Xlsx,
    Csv,
    Pdf,
    Json,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 4] = [
        ReportFormat::Xlsx,
        ReportFormat::Csv,
        ReportFormat::Pdf,
        ReportFormat::Json,
    ];

    /// Its name, which is also its file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Csv => "csv",
            ReportFormat::Pdf => "pdf",
            ReportFormat::Json => "json",
        }
    }

    /// Whether it is not text (not written to a terminal).
    pub fn is_binary(self) -> bool {
        matches!(self, ReportFormat::Xlsx | ReportFormat::Pdf)
    }

    /// The report written in this format.
    pub fn render(self, report: &UnitReport) -> Result<Vec<u8>> {
        Ok(match self {
            ReportFormat::Json => serde_json::to_vec_pretty(report)?,
            ReportFormat::Csv => to_csv(report)?,
            ReportFormat::Xlsx => to_xlsx(report)?,
            ReportFormat::Pdf => crate::report_pdf::to_pdf(report)?,
        })
    }
}

impl std::str::FromStr for ReportFormat {
    type Err = StoreError;

    /// A format by its name, any case; anything else is a field error in Vietnamese.
    fn from_str(s: &str) -> Result<ReportFormat> {
        let wanted = s.trim().to_ascii_lowercase();
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == wanted)
            .ok_or_else(|| {
                StoreError::Invalid(binhyen_domain::Invalid::one(
                    "format",
                    "bad_format",
                    format!("Định dạng \"{s}\" không có: chọn XLSX, CSV, PDF hoặc JSON."),
                ))
            })
    }
}

fn sections(r: &UnitReport) -> Vec<(&'static str, Vec<&Figure>)> {
    vec![
        ("Tổng hợp", vec![&r.tips]),
        ("Theo loại nguồn tin", r.by_category.iter().collect()),
        ("Theo kênh tiếp nhận", r.by_channel.iter().collect()),
        ("Theo trạng thái (cuối kỳ)", r.by_status.iter().collect()),
        if r.by_unit.is_empty() {
            ("Theo thôn, buôn", r.by_hamlet.iter().collect())
        } else {
            ("Theo xã, phường", r.by_unit.iter().collect())
        },
        (
            "Hỏi đáp, nhóm và trang của đơn vị",
            vec![
                &r.admin_questions_resolved,
                &r.questions_answered_online,
                &r.groups,
                &r.group_members,
                &r.followers,
                &r.posts,
                &r.views,
            ],
        ),
    ]
}

/// Where an overdue tip is: its hamlet in a commune's report, its commune in a province's
/// (register numbers repeat across communes).
pub(crate) fn where_of<'a>(r: &'a UnitReport, o: &'a crate::report::OverdueTip) -> &'a str {
    if r.by_unit.is_empty() {
        o.hamlet.as_deref().unwrap_or("")
    } else {
        r.by_unit
            .iter()
            .find(|f| f.key == o.unit_code)
            .map(|f| f.label.as_str())
            .unwrap_or(o.unit_code.as_str())
    }
}

fn hours(h: Option<f64>) -> String {
    h.map(|h| format!("{h:.1}")).unwrap_or_else(|| "-".into())
}

/// CSV: UTF-8 with a byte-order mark and comma separators, one table after another.
pub fn to_csv(r: &UnitReport) -> Result<Vec<u8>> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut out);
        let err = |e: csv::Error| StoreError::Io {
            path: "report.csv".into(),
            source: std::io::Error::other(e.to_string()),
        };
        w.write_record(spreadsheet_row([format!(
            "BÁO CÁO CÔNG TÁC TIẾP NHẬN NGUỒN TIN - {}",
            r.period.label
        )]))
        .map_err(err)?;
        w.write_record(spreadsheet_row([format!(
            "Đơn vị: Công an {}",
            r.unit_name
        )]))
        .map_err(err)?;
        if let Some(note) = &r.unfinished {
            w.write_record(spreadsheet_row([note])).map_err(err)?;
        }
        w.write_record(spreadsheet_row([
            "Mục",
            "Chỉ tiêu",
            &r.period.label,
            &r.previous.label,
        ]))
        .map_err(err)?;
        for (section, figures) in sections(r) {
            for f in figures {
                w.write_record(spreadsheet_row([
                    section,
                    &f.label,
                    &f.current.to_string(),
                    &f.previous.to_string(),
                ]))
                .map_err(err)?;
            }
        }
        w.write_record(spreadsheet_row([
            "Thời gian xử lý",
            "Chuyển CQĐT: số tin / trung vị (giờ) / lâu nhất (giờ)",
            &format!(
                "{} / {} / {}",
                r.transfer.count,
                hours(r.transfer.median_hours),
                hours(r.transfer.worst_hours)
            ),
            "",
        ]))
        .map_err(err)?;
        w.write_record(spreadsheet_row([
            "Thời gian xử lý",
            "Giải quyết: số tin / trung vị (giờ) / lâu nhất (giờ)",
            &format!(
                "{} / {} / {}",
                r.resolve.count,
                hours(r.resolve.median_hours),
                hours(r.resolve.worst_hours)
            ),
            "",
        ]))
        .map_err(err)?;
        w.write_record(spreadsheet_row([
            "Quá hạn",
            "Tin về tội phạm quá hạn chuyển",
            &r.overdue.len().to_string(),
            "",
        ]))
        .map_err(err)?;
        for o in &r.overdue {
            w.write_record(spreadsheet_row([
                "Quá hạn",
                &o.register_no,
                &format!("trễ {:.1} giờ", o.hours_late),
                where_of(r, o),
            ]))
            .map_err(err)?;
        }
        w.flush().map_err(|e| StoreError::Io {
            path: "report.csv".into(),
            source: e,
        })?;
    }
    Ok(out)
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> StoreError {
    StoreError::Io {
        path: "report.xlsx".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// XLSX: a sheet with the figures (numbers as numbers), and one with the category × channel
/// × status table.
pub fn to_xlsx(r: &UnitReport) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let title = Format::new().set_bold().set_font_size(13);
    let bold = Format::new().set_bold();
    let head = Format::new()
        .set_bold()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_background_color("#DCE6F1");
    let cell = Format::new().set_border(FormatBorder::Thin);
    let num = Format::new()
        .set_border(FormatBorder::Thin)
        .set_num_format("#,##0");
    let dec = Format::new()
        .set_border(FormatBorder::Thin)
        .set_num_format("0.0");

    let ws = wb.add_worksheet();
    ws.set_name("Báo cáo").map_err(xlsx_err)?;
    ws.set_column_width(0, 34).map_err(xlsx_err)?;
    ws.set_column_width(1, 44).map_err(xlsx_err)?;
    ws.set_column_width(2, 16).map_err(xlsx_err)?;
    ws.set_column_width(3, 16).map_err(xlsx_err)?;
    ws.write_string_with_format(
        0,
        0,
        format!("CÔNG AN {}", r.unit_name.to_uppercase()),
        &bold,
    )
    .map_err(xlsx_err)?;
    ws.write_string_with_format(
        2,
        0,
        format!(
            "BÁO CÁO CÔNG TÁC TIẾP NHẬN NGUỒN TIN - {}",
            r.period.label.to_uppercase()
        ),
        &title,
    )
    .map_err(xlsx_err)?;
    if let Some(note) = &r.unfinished {
        ws.write_string(3, 0, note).map_err(xlsx_err)?;
    }
    let mut row = 5u32;
    for (i, h) in [
        "Mục",
        "Chỉ tiêu",
        r.period.label.as_str(),
        r.previous.label.as_str(),
    ]
    .iter()
    .enumerate()
    {
        ws.write_string_with_format(row, i as u16, *h, &head)
            .map_err(xlsx_err)?;
    }
    row += 1;
    for (section, figures) in sections(r) {
        for f in figures {
            ws.write_string_with_format(row, 0, section, &cell)
                .map_err(xlsx_err)?;
            ws.write_string_with_format(row, 1, &f.label, &cell)
                .map_err(xlsx_err)?;
            ws.write_number_with_format(row, 2, f.current as f64, &num)
                .map_err(xlsx_err)?;
            ws.write_number_with_format(row, 3, f.previous as f64, &num)
                .map_err(xlsx_err)?;
            row += 1;
        }
    }
    row += 1;
    for (label, t) in [
        ("Thời gian chuyển CQĐT (giờ)", &r.transfer),
        ("Thời gian giải quyết (giờ)", &r.resolve),
    ] {
        ws.write_string_with_format(row, 0, label, &bold)
            .map_err(xlsx_err)?;
        ws.write_string_with_format(row, 1, "Số tin / trung vị / lâu nhất", &cell)
            .map_err(xlsx_err)?;
        ws.write_number_with_format(row, 2, t.count as f64, &num)
            .map_err(xlsx_err)?;
        if let Some(m) = t.median_hours {
            ws.write_number_with_format(row, 3, m, &dec)
                .map_err(xlsx_err)?;
        }
        if let Some(w) = t.worst_hours {
            ws.write_number_with_format(row, 4, w, &dec)
                .map_err(xlsx_err)?;
        }
        row += 1;
    }
    ws.write_string_with_format(row, 0, "Tin về tội phạm quá hạn chuyển", &bold)
        .map_err(xlsx_err)?;
    ws.write_number_with_format(row, 2, r.overdue.len() as f64, &num)
        .map_err(xlsx_err)?;

    let ws = wb.add_worksheet();
    ws.set_name("Loại - kênh - trạng thái").map_err(xlsx_err)?;
    for (i, h) in ["Loại nguồn tin", "Kênh tiếp nhận", "Trạng thái", "Số tin"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, i as u16, *h, &head)
            .map_err(xlsx_err)?;
        ws.set_column_width(i as u16, 28).map_err(xlsx_err)?;
    }
    for (i, c) in r.matrix.iter().enumerate() {
        let row = i as u32 + 1;
        let label = |k: &str, f: fn(&str) -> Option<&'static str>| f(k).unwrap_or("").to_string();
        ws.write_string_with_format(row, 0, label(&c.category, category_label), &cell)
            .map_err(xlsx_err)?;
        ws.write_string_with_format(row, 1, label(&c.channel, channel_label), &cell)
            .map_err(xlsx_err)?;
        ws.write_string_with_format(row, 2, label(&c.status, status_label), &cell)
            .map_err(xlsx_err)?;
        ws.write_number_with_format(row, 3, c.count as f64, &num)
            .map_err(xlsx_err)?;
    }
    wb.save_to_buffer().map_err(xlsx_err)
}

fn category_label(k: &str) -> Option<&'static str> {
    binhyen_domain::tip::Category::parse(k).map(|c| c.label())
}

fn channel_label(k: &str) -> Option<&'static str> {
    binhyen_domain::tip::Channel::parse(k).map(|c| c.label())
}

fn status_label(k: &str) -> Option<&'static str> {
    binhyen_domain::tip::Status::parse(k).map(|c| c.label())
}

impl crate::Station {
    /// The unit's report for `period` as a file in `format`, by the station's deadline
    /// rules. Exporting needs the right to export and is written to the audit trail (with
    /// `via`: what asked for it).
    pub fn export_report(
        &mut self,
        period: &binhyen_domain::period::Period,
        format: ReportFormat,
        via: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<u8>> {
        self.require(binhyen_domain::access::Permission::Export)?;
        let rules = self.deadline_rules()?;
        let report = self.unit_report(period, rules, now)?;
        let bytes = format.render(&report)?;
        self.audit(
            crate::audit::Action::ReportExport,
            None,
            serde_json::json!({ "period": period.label, "format": format.as_str(), "via": via }),
            now,
        )?;
        Ok(bytes)
    }
}
