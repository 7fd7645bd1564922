//! The register book (sổ tiếp nhận nguồn tin) from the real station file: every tip of the
//! range in register order, no reporter ever named, read back from its PDF and its XLSX by
//! independent readers; exporting it is for those who may export, and audited.

use binhyen_domain::access::Role;
use binhyen_domain::tip::TipFilter;
use binhyen_store::register::{RegisterFormat, REPORTER_ANONYMOUS, REPORTER_KEPT, REPORTER_SECRET};
use binhyen_store::{Credentials, Station};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{add_account, now, station, tip_input, TEMP};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Names that must never reach the book.
const SECRET_NAME: &str = "Phạm Thị Kín";
const OPEN_NAME: &str = "Đoàn Văn Công";

fn fixture() -> (tempfile::TempDir, Station) {
    let (d, mut s) = station();
    let roster = "Loại,Thôn,Số hộ,Họ tên,Vai trò,Điện thoại\nBuôn,Ea Kmar,143,Y Bliêng Niê,Trưởng buôn,0912345678\n";
    s.import_roster(roster.as_bytes(), false, at("2026-09-01T00:00:00Z"))
        .unwrap();
    let mut add = |received: &str, body: serde_json::Value| {
        let mut input = body;
        input["received_at"] = json!(received);
        s.add_tip(&tip_input(input), at("2026-12-01T12:00:00Z"))
            .unwrap()
            .id
            .to_string()
    };
    // Out of order on purpose: the book is in register order (by time received).
    add(
        "2026-11-03T02:00:00Z",
        json!({"content": "Trộm bò ở rẫy", "category": "crime_report", "channel": "phone",
               "hamlet": "Buôn Ea Kmar",
               "reporter": {"name": SECRET_NAME, "phone": "0912000111", "secret": true}}),
    );
    add(
        "2026-11-01T01:00:00Z",
        json!({"content": "Đánh nhau tại quán", "category": "security_order", "channel": "in_person",
               "address": "Chợ Cư M'gar",
               "reporter": {"name": OPEN_NAME, "phone": "0987000222"}}),
    );
    add(
        "2026-11-02T01:00:00Z",
        json!({"content": "=HYPERLINK(\"http://x\") tin nặc danh qua Zalo", "category": "crime_denunciation",
               "channel": "zalo", "urgency": "urgent"}),
    );
    // Outside the range: 31 October 23:30 in Vietnam.
    add(
        "2026-10-31T16:30:00Z",
        json!({"content": "Tin tháng trước", "category": "other"}),
    );
    // 30 November 23:30 in Vietnam: inside.
    add(
        "2026-11-30T16:30:00Z",
        json!({"content": "Tin cuối tháng", "category": "admin_question", "channel": "vneid"}),
    );
    (d, s)
}

fn november() -> TipFilter {
    let (start, end) = binhyen_domain::period::Period::parse("2026-11")
        .unwrap()
        .utc_range();
    TipFilter {
        from: Some(start.to_rfc3339()),
        to: Some(end.to_rfc3339()),
        ..Default::default()
    }
}

#[test]
fn the_book_lists_the_range_in_register_order_and_names_no_one() {
    let (_d, s) = fixture();
    let book = s.register_book(&november(), now()).unwrap();
    assert_eq!(book.range, "Từ ngày 01/11/2026 đến ngày 30/11/2026");
    let contents: Vec<&str> = book.rows.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(contents.len(), 4, "{contents:?}");
    assert_eq!(contents[0], "Đánh nhau tại quán");
    assert_eq!(contents[1].get(..10), Some("=HYPERLINK"));
    assert_eq!(contents[2], "Trộm bò ở rẫy");
    assert_eq!(contents[3], "Tin cuối tháng");
    let reporters: Vec<&str> = book.rows.iter().map(|r| r.reporter.as_str()).collect();
    assert_eq!(
        reporters,
        [
            REPORTER_KEPT,
            REPORTER_ANONYMOUS,
            REPORTER_SECRET,
            REPORTER_ANONYMOUS
        ]
    );
    assert_eq!(book.rows[0].channel, "Trực tiếp");
    assert_eq!(book.rows[0].place, "Chợ Cư M'gar");
    assert_eq!(book.rows[2].place, "Buôn Ea Kmar");
    assert_eq!(book.rows[0].received_at, "01/11/2026 08:00");
    assert_eq!(book.rows[0].received_by, "Nguyễn Hữu Thành");
    assert!(
        book.rows[1].note.contains("Khẩn"),
        "{:?}",
        book.rows[1].note
    );
    // Crime tips still open past their deadline are noted.
    assert!(book.rows[2].note.contains("Quá hạn chuyển CQĐT"));
    let all = serde_json::to_string(&book).unwrap();
    for name in [SECRET_NAME, OPEN_NAME, "0912000111", "0987000222"] {
        assert!(!all.contains(name), "{name} reached the book");
    }
    // The list's other filters apply: only the secret one's category.
    let only = TipFilter {
        category: Some(binhyen_domain::tip::Category::CrimeReport),
        ..november()
    };
    let partial = s.register_book(&only, now()).unwrap();
    assert_eq!(partial.rows.len(), 1);
    // A partial book says what it holds.
    assert_eq!(
        partial.selection.as_deref(),
        Some("Loại nguồn tin: Tin báo về tội phạm")
    );
    assert_eq!(book.selection, None);
    // No dates: the whole book.
    let whole = s.register_book(&TipFilter::default(), now()).unwrap();
    assert_eq!((whole.range.as_str(), whole.rows.len()), ("Toàn bộ sổ", 5));
}

#[test]
fn the_pdf_is_landscape_in_the_official_layout_and_the_xlsx_reads_back() {
    use calamine::{Data, Reader, Xlsx};
    let (_d, mut s) = fixture();
    let (_, pdf) = s
        .export_register(&november(), RegisterFormat::Pdf, "test", now())
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    for expected in [
        "CÔNG AN TỈNH ĐẮK LẮK",
        "CÔNG AN XÃ CƯ M'GAR",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "SỔ TIẾP NHẬN NGUỒN TIN",
        "Từ ngày 01/11/2026 đến ngày 30/11/2026",
        "Nội dung tóm tắt",
        "Đánh nhau tại quán",
        "Trộm bò ở rẫy",
        "Nặc danh",
        "Tổng số: 4 nguồn tin",
        "TRƯỞNG CÔNG AN",
        "Trang 1/1",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("Kín") && !text.contains("Công\n") && !text.contains(OPEN_NAME));
    // Landscape: the page is wider than tall.
    let raw = String::from_utf8_lossy(&pdf);
    assert!(
        raw.contains("/MediaBox [0 0 841.89 595.28]"),
        "not landscape A4"
    );

    let (_, xlsx) = s
        .export_register(&november(), RegisterFormat::Xlsx, "test", now())
        .unwrap();
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    let sheet = wb.worksheet_range("Sổ tiếp nhận").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    let head = rows
        .iter()
        .position(|r| r.first() == Some(&Data::String("Số sổ".into())))
        .unwrap();
    let body = &rows[head + 1..head + 5];
    assert_eq!(body[0][4], Data::String("Đánh nhau tại quán".into()));
    // A formula typed into a tip stays text.
    assert!(matches!(&body[1][4], Data::String(t) if t.starts_with("=HYPERLINK")));
    let cells = format!("{rows:?}");
    assert!(!cells.contains(SECRET_NAME) && !cells.contains(OPEN_NAME));
    // Both exports are in the audit trail, with their size and range.
    let audited: Vec<_> = s
        .audit_entries(20)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "register.export")
        .collect();
    assert_eq!(audited.len(), 2);
    let detail: serde_json::Value = serde_json::from_str(&audited[0].detail).unwrap();
    assert_eq!(detail["tips"], 4);
}

#[test]
fn a_long_book_runs_over_pages_with_its_heading_on_each() {
    let (_d, mut s) = station();
    for i in 0..120 {
        let received = at("2026-11-01T00:00:00Z") + chrono::Duration::minutes(i * 30);
        s.add_tip(
            &tip_input(
                json!({"content": format!("Tin số {i}: {}", "nội dung dài ".repeat(i as usize % 9)),
                              "category": "security_order", "received_at": received}),
            ),
            at("2026-11-20T00:00:00Z"),
        )
        .unwrap();
    }
    let pdf =
        binhyen_store::register::to_pdf(&s.register_book(&november(), now()).unwrap()).unwrap();
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    let pages = text.matches("Trang ").count();
    assert!(pages >= 5, "{pages} pages");
    assert!(text.contains(&format!("Trang {pages}/{pages}")));
    assert_eq!(
        text.matches("Nội dung tóm tắt").count(),
        pages,
        "the heading on each page"
    );
    assert!(text.contains("Tin số 119"));
}

#[test]
fn an_officer_may_not_export_the_book() {
    let (d, mut s) = fixture();
    add_account(&mut s, "canbo", Role::Officer);
    drop(s);
    let mut officer = Station::open(d.path(), &Credentials::new("canbo", TEMP)).unwrap();
    officer
        .change_password(TEMP, "của riêng tôi 2026", now())
        .unwrap();
    let refused = officer
        .export_register(&november(), RegisterFormat::Pdf, "test", now())
        .unwrap_err();
    assert_eq!(refused.code(), "forbidden");
}
