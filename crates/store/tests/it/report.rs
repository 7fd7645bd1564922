//! The unit report against a fixture whose counts are known, including the edges of the
//! period in Vietnam time; and its files read back as Excel would read them.

use binhyen_domain::period::Period;
use binhyen_store::report::{DeadlineRules, UnitReport};
use binhyen_store::Station;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{station, tip_input};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn tip(
    s: &mut Station,
    received: &str,
    category: &str,
    channel: &str,
    hamlet: Option<&str>,
) -> String {
    let mut input = json!({"content": format!("Tin {received}"), "category": category,
                           "channel": channel, "received_at": received,
                           "reporter": {"name": "Người Báo Tin Bí Mật", "phone": "0912345678", "secret": true}});
    if let Some(h) = hamlet {
        input["hamlet"] = json!(h);
    }
    s.add_tip(&tip_input(input), at("2026-11-20T00:00:00Z"))
        .unwrap()
        .id
        .to_string()
}

fn move_to(s: &mut Station, id: &str, status: &str, when: &str) {
    let patch = serde_json::from_value(json!({"status": status, "note": "xử lý"})).unwrap();
    s.update_tip(id, &patch, at(when)).unwrap();
}

fn fixture() -> (tempfile::TempDir, Station) {
    let (d, mut s) = station();
    let roster = "Loại,Thôn,Số hộ,Họ tên,Vai trò,Điện thoại\nBuôn,Ea Kmar,143,Y Bliêng Niê,Trưởng buôn,0912345678\n";
    s.import_roster(roster.as_bytes(), false, at("2026-09-01T00:00:00Z"))
        .unwrap();
    // 23:30 on 31 October, Vietnam time: October.
    tip(
        &mut s,
        "2026-10-31T16:30:00Z",
        "crime_report",
        "zalo",
        Some("Buôn Ea Kmar"),
    );
    // 00:10 on 1 November, Vietnam time (still 31 October in UTC): November.
    tip(&mut s, "2026-10-31T17:10:00Z", "crime_report", "zalo", None);
    // 23:59 on 30 September: the previous period.
    tip(
        &mut s,
        "2026-09-30T16:59:00Z",
        "security_order",
        "phone",
        None,
    );
    // Transferred after 10 hours.
    let d1 = tip(
        &mut s,
        "2026-10-01T00:00:00Z",
        "crime_denunciation",
        "phone",
        Some("Buôn Ea Kmar"),
    );
    move_to(&mut s, &d1, "transferred", "2026-10-01T10:00:00Z");
    // An administrative question answered after 30 hours.
    let q = tip(
        &mut s,
        "2026-10-05T00:00:00Z",
        "admin_question",
        "in_person",
        None,
    );
    move_to(&mut s, &q, "resolved", "2026-10-06T06:00:00Z");
    // A crime tip never transferred: overdue.
    tip(
        &mut s,
        "2026-10-10T00:00:00Z",
        "crime_denunciation",
        "hotline",
        None,
    );
    // Transferred after 20 hours, then resolved after 100.
    let d2 = tip(
        &mut s,
        "2026-10-20T00:00:00Z",
        "crime_denunciation",
        "zalo",
        None,
    );
    move_to(&mut s, &d2, "transferred", "2026-10-20T20:00:00Z");
    move_to(&mut s, &d2, "resolved", "2026-10-24T04:00:00Z");
    (d, s)
}

fn report(s: &Station) -> UnitReport {
    s.unit_report(
        &Period::parse("2026-10").unwrap(),
        DeadlineRules::default(),
        at("2026-11-20T00:00:00Z"),
    )
    .unwrap()
}

fn figure(figs: &[binhyen_store::report::Figure], key: &str) -> (i64, i64) {
    let f = figs.iter().find(|f| f.key == key).unwrap();
    (f.current, f.previous)
}

#[test]
fn figures_match_the_fixture_with_vietnam_time_edges() {
    let (_d, s) = fixture();
    let r = report(&s);
    assert_eq!((r.tips.current, r.tips.previous), (5, 1));
    assert_eq!(figure(&r.by_category, "crime_denunciation"), (3, 0));
    assert_eq!(figure(&r.by_category, "crime_report"), (1, 0));
    assert_eq!(figure(&r.by_category, "security_order"), (0, 1));
    assert_eq!(figure(&r.by_channel, "zalo"), (2, 0));
    assert_eq!(figure(&r.by_channel, "phone"), (1, 1));
    // Status at the end of October.
    assert_eq!(figure(&r.by_status, "received"), (2, 1));
    assert_eq!(figure(&r.by_status, "transferred"), (1, 0));
    assert_eq!(figure(&r.by_status, "resolved"), (2, 0));
    assert_eq!(figure(&r.by_hamlet, "Buôn Ea Kmar"), (2, 0));
    assert_eq!(figure(&r.by_hamlet, ""), (3, 1));
    assert_eq!(
        (
            r.transfer.count,
            r.transfer.median_hours,
            r.transfer.worst_hours
        ),
        (2, Some(15.0), Some(20.0))
    );
    assert_eq!(
        (
            r.resolve.count,
            r.resolve.median_hours,
            r.resolve.worst_hours
        ),
        (2, Some(65.0), Some(100.0))
    );
    assert_eq!(r.overdue.len(), 1, "{:?}", r.overdue);
    assert!(r.overdue[0].hours_late > 24.0 * 20.0);
    assert_eq!(
        (
            r.admin_questions_resolved.current,
            r.admin_questions_resolved.previous
        ),
        (1, 0)
    );
    let cells: i64 = r.matrix.iter().map(|c| c.count).sum();
    assert_eq!(cells, 5);
    // November holds the tip of 00:10 on 1 November.
    let nov = s
        .unit_report(
            &Period::parse("2026-11").unwrap(),
            DeadlineRules::default(),
            at("2026-11-20T00:00:00Z"),
        )
        .unwrap();
    // November is not over on the 20th: compared with 1 to 20 October, not all of it.
    assert_eq!((nov.tips.current, nov.tips.previous), (1, 4));
    assert_eq!(nov.previous.label, "Từ 01/10/2026 đến 20/10/2026");
    assert!(nov.unfinished.as_deref().unwrap().contains("chưa kết thúc"));
    let whole = s
        .unit_report(
            &Period::parse("2026-11").unwrap(),
            DeadlineRules::default(),
            at("2026-12-02T00:00:00Z"),
        )
        .unwrap();
    assert_eq!((whole.tips.previous, whole.unfinished), (5, None));
    // The report never carries reporter identity.
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("Người Báo Tin") && !text.contains("0912345678"));
}

#[test]
fn the_demo_year_counts_groups_and_pages() {
    let (_d, s) = crate::demo_station();
    let r = s
        .unit_report(
            &Period::parse("2026").unwrap(),
            DeadlineRules::default(),
            at("2026-11-20T00:00:00Z"),
        )
        .unwrap();
    assert!(r.tips.current > 0);
    assert!(
        r.groups.current > 0 && r.group_members.current > 0,
        "{:?}",
        r.groups
    );
    assert!(r.followers.current > 0 && r.posts.current > 0 && r.views.current > 0);
    // Groups entered today but counted since the start of the year are there in October.
    let oct = s
        .unit_report(
            &Period::parse("2026-10").unwrap(),
            DeadlineRules::default(),
            at("2026-11-20T00:00:00Z"),
        )
        .unwrap();
    assert!(
        oct.groups.current > 0 && oct.groups.previous > 0,
        "{:?}",
        oct.groups
    );
}

#[test]
fn the_csv_opens_in_excel_with_vietnamese_intact() {
    let (_d, s) = fixture();
    let csv = binhyen_store::report_export::to_csv(&report(&s)).unwrap();
    assert!(
        csv.starts_with(b"\xEF\xBB\xBF"),
        "a BOM, so Excel reads UTF-8"
    );
    let text = std::str::from_utf8(&csv[3..]).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let total = rows
        .iter()
        .find(|r| r.get(1) == Some("Nguồn tin tiếp nhận"))
        .unwrap();
    assert_eq!((total.get(2), total.get(3)), (Some("5"), Some("1")));
    assert!(rows
        .iter()
        .any(|r| r.get(1) == Some("Tố giác về tội phạm") && r.get(2) == Some("3")));
    assert!(!text.contains("Người Báo Tin"));
}

#[test]
fn the_xlsx_reads_back_with_an_independent_reader() {
    use calamine::{Data, Reader, Xlsx};
    let (_d, s) = fixture();
    let bytes = binhyen_store::report_export::to_xlsx(&report(&s)).unwrap();
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(
        wb.sheet_names(),
        vec![
            "Báo cáo".to_string(),
            "Loại - kênh - trạng thái".to_string()
        ]
    );
    let sheet = wb.worksheet_range("Báo cáo").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    let total = rows
        .iter()
        .find(|r| r.get(1) == Some(&Data::String("Nguồn tin tiếp nhận".into())))
        .unwrap();
    assert_eq!(total[2], Data::Float(5.0), "a number, not text");
    assert_eq!(total[3], Data::Float(1.0));
    assert!(rows.iter().any(|r| r
        .iter()
        .any(|c| matches!(c, Data::String(s) if s.contains("CÔNG AN XÃ CƯ M'GAR")))));
    let matrix = wb.worksheet_range("Loại - kênh - trạng thái").unwrap();
    let sum: f64 = matrix
        .rows()
        .skip(1)
        .filter_map(|r| match r.get(3) {
            Some(Data::Float(f)) => Some(*f),
            _ => None,
        })
        .sum();
    assert_eq!(sum, 5.0);
}

#[test]
fn the_pdf_has_the_official_layout_in_readable_vietnamese() {
    let (_d, s) = fixture();
    let pdf = binhyen_store::report_pdf::to_pdf(&report(&s)).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    for expected in [
        "CÔNG AN TỈNH ĐẮK LẮK",
        "CÔNG AN XÃ CƯ M'GAR",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Cư M'gar, ngày 20 tháng 11 năm 2026",
        "BÁO CÁO",
        "Tháng 10/2026",
        "Tố giác về tội phạm",
        "Buôn Ea Kmar",
        "TRƯỞNG CÔNG AN",
        "Nơi nhận:",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("Người Báo Tin"));
}

#[test]
fn the_province_report_counts_every_commune_and_each_one() {
    let dir = |unit: &str, device: u32| {
        let d = tempfile::tempdir().unwrap();
        let s = Station::init(d.path(), &crate::opts(unit, device, false), crate::now()).unwrap();
        (d, s)
    };
    // Two communes of Đắk Lắk, and the province's own station.
    let (_a, mut cu_mgar) = dir("24280", 1);
    let (_b, mut buon_don) = dir("24235", 1);
    let (_p, mut province) = dir("66", 1);
    for (s, n) in [(&mut cu_mgar, 3), (&mut buon_don, 1)] {
        for i in 0..n {
            tip(
                s,
                &format!("2026-10-0{}T08:00:00+07:00", i + 1),
                "crime_report",
                "zalo",
                None,
            );
        }
    }
    // One in September: the previous period.
    tip(
        &mut buon_don,
        "2026-09-30T23:30:00+07:00",
        "admin_question",
        "phone",
        None,
    );
    // A commune's register numbers repeat at the other commune.
    crate::relay(&cu_mgar, &mut province);
    crate::relay(&buon_don, &mut province);

    let october = Period::parse("2026-10").unwrap();
    let r = province
        .unit_report(
            &october,
            DeadlineRules::default(),
            at("2026-11-20T00:00:00Z"),
        )
        .unwrap();
    assert_eq!((r.tips.current, r.tips.previous), (4, 1));
    assert!(
        r.by_hamlet.is_empty(),
        "hamlet names repeat across communes"
    );
    let commune = |code: &str| r.by_unit.iter().find(|f| f.key == code).unwrap();
    assert_eq!(
        (commune("24280").current, commune("24280").previous),
        (3, 0)
    );
    assert_eq!(
        (commune("24235").current, commune("24235").previous),
        (1, 1)
    );
    assert_eq!(commune("24280").label, "Xã Cư M'gar");
    let communes = binhyen_store::units::children(province.conn(), "66").unwrap();
    assert_eq!(
        r.by_unit.len(),
        communes.len(),
        "every commune, those with none too"
    );
    assert_eq!(r.by_unit.iter().map(|f| f.current).sum::<i64>(), 4);
    // All four crime tips are past 24 h without a transfer: the list names their commune.
    assert_eq!(r.overdue.len(), 4);
    assert_eq!(
        r.overdue.iter().filter(|o| o.unit_code == "24280").count(),
        3
    );
    let csv = String::from_utf8(binhyen_store::report_export::to_csv(&r).unwrap()).unwrap();
    assert!(csv.contains("Theo xã, phường"), "{csv}");
    assert!(csv.contains("Xã Buôn Đôn"), "{csv}");
    assert!(!csv.contains("Người Báo Tin Bí Mật"));

    // Drill-down from a commune's figure: the tips behind it.
    let filter = binhyen_domain::tip::TipFilter {
        unit: Some("24280".into()),
        from: Some("2026-10-01T00:00:00+07:00".into()),
        to: Some("2026-11-01T00:00:00+07:00".into()),
        ..Default::default()
    };
    assert_eq!(province.count_tips(&filter).unwrap(), 3);
    assert!(province
        .list_tips(&filter)
        .unwrap()
        .iter()
        .all(|t| t.unit_code == "24280"));

    // A commune's own report is unchanged: its hamlets, no communes.
    let own = cu_mgar
        .unit_report(
            &october,
            DeadlineRules::default(),
            at("2026-11-20T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(own.tips.current, 3);
    assert!(own.by_unit.is_empty());
}

#[test]
fn the_installers_guide_prints_whole_in_readable_vietnamese() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/HUONG-DAN.md"),
    )
    .unwrap();
    let pdf = binhyen_store::report_pdf::guide_to_pdf(&guide).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let printed = words(&text);
    for expected in [
        "HƯỚNG DẪN CÀI ĐẶT BÌNH YÊN TẠI CÔNG AN XÃ",
        "Các bước",
        "Khi có bước không thành",
        "sudo sh cai-dat.sh",
        "binhyen doctor",
    ] {
        assert!(
            printed.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // The kit carries the PDF committed beside its text: it must be this one.
    let committed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/HUONG-DAN.pdf");
    if std::fs::read(&committed).ok().as_deref() != Some(pdf.as_slice()) {
        std::fs::write(&committed, &pdf).unwrap();
        panic!("packaging/HUONG-DAN.pdf was stale: written again, commit it");
    }
    // Every word of the guide is printed (long paragraphs wrap, nothing runs off the page).
    let source = words(&guide.replace(['#', '`'], ""));
    for word in source.split(' ').filter(|w| *w != "-" && !w.is_empty()) {
        assert!(
            printed.contains(word),
            "{word:?} missing from the printed guide"
        );
    }
}
