//! What the desktop screens ask of the store: list filters, the day's deadlines, settings,
//! the form draft, groups and pages, printed papers, and rosters from Excel.

use binhyen_domain::tip::{Status, TipFilter, TipPatch, TipSort};
use binhyen_store::channels::{ChannelFigures, ChannelInput, GroupInput};
use binhyen_store::documents::DocKind;
use binhyen_store::report::DeadlineRules;
use chrono::{Duration, NaiveDate};
use serde_json::json;

use crate::{now, row_counts, station, tip_input};

/// A station with two hamlets (one remote) and a handful of tips around a deadline.
fn seeded() -> (tempfile::TempDir, binhyen_store::Station, String, String) {
    let (d, mut s) = station();
    s.import_roster(
        "Thôn/Buôn/TDP,Số hộ\nThôn 1,120\nBuôn Ea Kpam,80\n".as_bytes(),
        false,
        now(),
    )
    .unwrap();
    let hamlets = s.list_hamlets().unwrap();
    let near = hamlets
        .iter()
        .find(|h| h.name == "Thôn 1")
        .unwrap()
        .id
        .to_string();
    let far = hamlets
        .iter()
        .find(|h| h.name != "Thôn 1")
        .unwrap()
        .id
        .to_string();
    s.set_hamlet_remote(&far, true, now()).unwrap();
    // now() is 2026-11-20T03:00Z. 30 h ago: late near, in time far. 50 h ago: late both.
    for (content, cat, hamlet, hours, urgency) in [
        ("Trộm bò ở thôn 1", "crime_report", &near, 30, "urgent"),
        ("Trộm xe ở buôn", "crime_report", &far, 30, "normal"),
        (
            "Đánh nhau ở buôn",
            "crime_denunciation",
            &far,
            50,
            "critical",
        ),
        ("Hỏi thủ tục tạm trú", "admin_question", &near, 50, "normal"),
        ("Tụ tập gây ồn", "security_order", &near, 2, "normal"),
    ] {
        let received = now() - Duration::hours(hours);
        s.add_tip(
            &tip_input(
                json!({"content": content, "category": cat, "hamlet": hamlet,
                              "urgency": urgency, "received_at": received.to_rfc3339()}),
            ),
            now(),
        )
        .unwrap();
    }
    (d, s, near, far)
}

fn contents(s: &binhyen_store::Station, f: &TipFilter) -> Vec<String> {
    s.list_tips(f)
        .unwrap()
        .into_iter()
        .map(|t| t.content)
        .collect()
}

#[test]
fn filters_by_hamlet_period_openness_and_overdue() {
    let (_d, mut s, near, far) = seeded();
    let by_hamlet = TipFilter {
        hamlet: Some(far.clone()),
        ..Default::default()
    };
    assert_eq!(s.count_tips(&by_hamlet).unwrap(), 2);
    let period = TipFilter {
        from: Some((now() - Duration::hours(40)).to_rfc3339()),
        to: Some(now().to_rfc3339()),
        ..Default::default()
    };
    assert_eq!(s.count_tips(&period).unwrap(), 3);
    let overdue = TipFilter {
        overdue_at: Some(now().to_rfc3339()),
        ..Default::default()
    };
    let mut late = contents(&s, &overdue);
    late.sort();
    assert_eq!(late, ["Trộm bò ở thôn 1", "Đánh nhau ở buôn"]);
    assert_eq!(s.count_tips(&overdue).unwrap(), 2);
    // Longer rules: nothing near is late any more; the 50-hour one still is.
    s.set_deadline_rules(
        DeadlineRules {
            transfer_hours: 36,
            transfer_hours_remote: 72,
        },
        now(),
    )
    .unwrap();
    assert_eq!(s.count_tips(&overdue).unwrap(), 0);
    // A transferred tip is no longer overdue, nor open.
    s.set_deadline_rules(DeadlineRules::default(), now())
        .unwrap();
    let tip = s
        .list_tips(&TipFilter {
            query: Some("trom bo".into()),
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    s.update_tip(
        &tip.id.to_string(),
        &TipPatch {
            status: Some(Status::Transferred),
            note: Some("Chuyển CQĐT".into()),
            ..Default::default()
        },
        now(),
    )
    .unwrap();
    assert_eq!(contents(&s, &overdue), ["Đánh nhau ở buôn"]);
    let open = TipFilter {
        open: Some(true),
        hamlet: Some(near),
        ..Default::default()
    };
    assert_eq!(s.count_tips(&open).unwrap(), 2);
}

#[test]
fn sorts_by_age_and_urgency_also_with_a_text_query() {
    let (_d, s, _, _) = seeded();
    let list = |sort, query: Option<&str>| {
        contents(
            &s,
            &TipFilter {
                sort: Some(sort),
                query: query.map(String::from),
                ..Default::default()
            },
        )
    };
    assert_eq!(list(TipSort::Newest, None)[0], "Tụ tập gây ồn");
    assert_eq!(list(TipSort::Oldest, None)[0], "Đánh nhau ở buôn");
    let urgent = list(TipSort::Urgency, None);
    assert_eq!(&urgent[..2], ["Đánh nhau ở buôn", "Trộm bò ở thôn 1"]);
    assert_eq!(
        list(TipSort::Urgency, Some("trom")),
        ["Trộm bò ở thôn 1", "Trộm xe ở buôn"]
    );
}

#[test]
fn a_bad_filter_date_is_a_field_error() {
    let (_d, s, _, _) = seeded();
    let err = s
        .list_tips(&TipFilter {
            from: Some("31/10/2026".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "from");
    assert!(err.to_string().contains("không hợp lệ"), "{err}");
}

#[test]
fn today_splits_deadlines_into_late_and_due() {
    let (_d, s, _, _) = seeded();
    let today = s.today(now()).unwrap();
    // 03:00Z is 10:00 in Vietnam: only the tip received 2 hours ago came in today.
    assert_eq!(today.received_today, 1);
    assert_eq!(today.open, 5);
    let late: Vec<_> = today.overdue.iter().map(|t| t.hours_left).collect();
    assert_eq!(late, [-6.0, -2.0]);
    assert_eq!(today.due.len(), 1);
    assert!(today.due[0].remote);
    assert_eq!(today.due[0].hours_left, 18.0);
    assert_eq!(today.due[0].deadline, now() + Duration::hours(18));
}

#[test]
fn deadline_rules_are_checked_kept_and_audited() {
    let (d, mut s) = station();
    assert_eq!(s.deadline_rules().unwrap(), DeadlineRules::default());
    let before = row_counts(&s);
    for (h, r) in [(0, 48), (24, 12), (24, 1000)] {
        let err = s
            .set_deadline_rules(
                DeadlineRules {
                    transfer_hours: h,
                    transfer_hours_remote: r,
                },
                now(),
            )
            .unwrap_err();
        assert_eq!(err.code(), "invalid", "{err}");
    }
    assert_eq!(row_counts(&s), before);
    let rules = DeadlineRules {
        transfer_hours: 12,
        transfer_hours_remote: 36,
    };
    s.set_deadline_rules(rules, now()).unwrap();
    drop(s);
    let s = binhyen_store::Station::open(
        d.path(),
        &binhyen_store::Credentials::new("truong", crate::PASS),
    )
    .unwrap();
    assert_eq!(s.deadline_rules().unwrap(), rules);
    let audit = s.audit_entries(5).unwrap();
    assert!(audit.iter().any(|e| e.action == "settings.change"));
    assert!(s.verify_audit().unwrap().ok);
}

#[test]
fn the_form_draft_survives_a_restart_and_can_be_cleared() {
    let (d, s) = station();
    assert_eq!(s.draft().unwrap(), None);
    let draft = json!({"content": "Đang ghi dở: có người lạ", "hamlet": "Thôn 1"});
    s.set_draft(Some(&draft)).unwrap();
    drop(s);
    let s = binhyen_store::Station::open(
        d.path(),
        &binhyen_store::Credentials::new("truong", crate::PASS),
    )
    .unwrap();
    assert_eq!(s.draft().unwrap(), Some(draft));
    let huge = json!({"content": "x".repeat(300 * 1024)});
    assert_eq!(s.set_draft(Some(&huge)).unwrap_err().code(), "invalid");
    assert!(s.draft().unwrap().is_some());
    s.set_draft(None).unwrap();
    assert_eq!(s.draft().unwrap(), None);
}

#[test]
fn groups_and_pages_keep_dated_figures_one_per_day() {
    let (_d, mut s, near, _) = seeded();
    let input: GroupInput = serde_json::from_value(
        json!({"hamlet_id": near, "platform": "zalo", "name": "  Thôn 1 an toàn ", "url": "https://zalo.me/g/abc"}),
    )
    .unwrap();
    let g = s.add_group(&input, now()).unwrap();
    let day = |d: &str| d.parse::<NaiveDate>().unwrap();
    s.record_group_count(&g, day("2026-10-31"), 150, now())
        .unwrap();
    s.record_group_count(&g, day("2026-11-19"), 170, now())
        .unwrap();
    s.record_group_count(&g, day("2026-11-19"), 172, now())
        .unwrap();
    let groups = s.list_groups().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "Thôn 1 an toàn");
    assert_eq!(groups[0].hamlet_name, "Thôn 1");
    let counts: Vec<u32> = groups[0].counts.iter().map(|c| c.members).collect();
    assert_eq!(counts, [150, 172]);
    // Refused: a future day, an unknown group, a bad address, a hamlet of no one.
    let before = row_counts(&s);
    assert_eq!(
        s.record_group_count(&g, day("2026-12-01"), 1, now())
            .unwrap_err()
            .code(),
        "invalid"
    );
    assert_eq!(
        s.record_group_count("nope", day("2026-11-01"), 1, now())
            .unwrap_err()
            .code(),
        "not_found"
    );
    let bad: GroupInput = serde_json::from_value(
        json!({"hamlet_id": near, "platform": "zalo", "name": "X", "url": "zalo.me/g/abc"}),
    )
    .unwrap();
    let err = s.add_group(&bad, now()).unwrap_err();
    assert_eq!(err.field_errors()[0].field, "url");
    assert_eq!(row_counts(&s), before);

    let ch = s
        .add_channel(
            &serde_json::from_value::<ChannelInput>(
                json!({"platform": "facebook", "name": "Công an xã Cư M'gar"}),
            )
            .unwrap(),
            now(),
        )
        .unwrap();
    let fig = |followers, views| ChannelFigures {
        on: day("2026-10-31"),
        followers,
        posts: 12,
        views,
        questions_answered: 3,
    };
    s.record_channel_figures(&ch, &fig(900, 10_000), now())
        .unwrap();
    s.record_channel_figures(&ch, &fig(950, 12_000), now())
        .unwrap();
    let channels = s.list_channels().unwrap();
    assert_eq!(channels[0].figures, [fig(950, 12_000)]);
    // The report counts what was entered here.
    let report = s
        .unit_report(
            &binhyen_domain::period::Period::parse("2026-10").unwrap(),
            DeadlineRules::default(),
            now(),
        )
        .unwrap();
    assert_eq!(report.followers.current, 950);
    assert_eq!(report.group_members.current, 150);
    assert!(s.verify_audit().unwrap().ok);
}

#[test]
fn papers_never_print_a_secret_reporter() {
    let (_d, mut s) = station();
    let secret = s
        .add_tip(
            &tip_input(
                json!({"content": "Có người buôn ma túy", "category": "crime_denunciation",
                "reporter": {"name": "Nguyễn Văn Bảo", "phone": "0912345678", "secret": true}}),
            ),
            now(),
        )
        .unwrap();
    let open = s
        .add_tip(
            &tip_input(
                json!({"content": "Mất trộm xe máy", "category": "crime_report",
                "reporter": {"name": "Trần Thị Hoa", "phone": "0987654321"}}),
            ),
            now(),
        )
        .unwrap();
    let anon = s
        .add_tip(&tip_input(json!({"content": "Tin nặc danh"})), now())
        .unwrap();
    let text = |d: &binhyen_store::documents::PrintDoc| serde_json::to_string(d).unwrap();
    for kind in [DocKind::Reception, DocKind::Transfer] {
        for include in [None, Some("in kèm người báo tin")] {
            let d = s
                .print_doc(&secret.id.to_string(), kind, include, now())
                .unwrap();
            assert!(!text(&d).contains("Bảo"), "{kind:?} {include:?}");
            assert!(!text(&d).contains("912345678"));
            assert!(d.reporter_note.as_deref().unwrap().contains("bí mật"));
        }
    }
    // Without a stated reason no name is printed; with one, it is, and the look is audited.
    let rec = s
        .print_doc(&open.id.to_string(), DocKind::Reception, None, now())
        .unwrap();
    assert!(!text(&rec).contains("Hoa"));
    assert!(rec.reporter_note.as_deref().unwrap().contains("lý do"));
    assert_eq!(
        s.print_doc(&open.id.to_string(), DocKind::Reception, Some("in"), now())
            .unwrap_err()
            .code(),
        "invalid"
    );
    let rec = s
        .print_doc(
            &open.id.to_string(),
            DocKind::Reception,
            Some("người báo ký biên bản"),
            now(),
        )
        .unwrap();
    assert!(text(&rec).contains("Trần Thị Hoa"));
    assert_eq!(rec.title, "BIÊN BẢN TIẾP NHẬN NGUỒN TIN");
    assert_eq!(rec.unit, "CÔNG AN XÃ CƯ M'GAR");
    assert_eq!(rec.place_date, "Cư M'gar, ngày 20 tháng 11 năm 2026");
    let slip = s
        .print_doc(&open.id.to_string(), DocKind::Transfer, None, now())
        .unwrap();
    assert!(!text(&slip).contains("Hoa"));
    let slip = s
        .print_doc(
            &open.id.to_string(),
            DocKind::Transfer,
            Some("cơ quan điều tra cần liên hệ"),
            now(),
        )
        .unwrap();
    assert!(text(&slip).contains("Trần Thị Hoa"));
    let a = s
        .print_doc(
            &anon.id.to_string(),
            DocKind::Reception,
            Some("in biên bản tiếp nhận"),
            now(),
        )
        .unwrap();
    assert_eq!(a.reporter_note.as_deref(), Some("Nguồn tin nặc danh."));
    let printed = s
        .audit_entries(50)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "document.print")
        .count();
    assert_eq!(printed, 9);
}

#[test]
fn signature_blocks_follow_the_channel_and_the_slip_names_its_addressee() {
    let (_d, mut s) = station();
    let mut add = |channel: &str, reporter: serde_json::Value| {
        s.add_tip(
            &tip_input(json!({"content": "Trộm gà", "category": "crime_report",
                              "channel": channel, "reporter": reporter})),
            now(),
        )
        .unwrap()
        .id
        .to_string()
    };
    let in_person = add("in_person", json!({"name": "Trần Thị Hoa"}));
    let by_phone = add("phone", json!({"name": "Trần Thị Hoa"}));
    let secret = add("in_person", json!({"name": "Lê Bí", "secret": true}));
    let zalo_anon = add("zalo", serde_json::Value::Null);
    let doc = |s: &mut binhyen_store::Station, id: &str, kind| {
        s.print_doc(id, kind, None, now()).unwrap()
    };
    // Came in person, not secret: the reporter signs beside the officer.
    let d = doc(&mut s, &in_person, DocKind::Reception);
    assert_eq!(d.signatures, ["NGƯỜI BÁO TIN", "CÁN BỘ TIẾP NHẬN"]);
    assert_eq!((d.signature_note, d.recipient), (None, None));
    // By phone or Zalo: no reporter's signature, and the record says why.
    for id in [&by_phone, &zalo_anon] {
        let d = doc(&mut s, id, DocKind::Reception);
        assert_eq!(d.signatures, ["CÁN BỘ TIẾP NHẬN"]);
        assert!(d.signature_note.unwrap().contains("người báo tin không ký"));
    }
    // A secret reporter's handwriting is not on this paper.
    let d = doc(&mut s, &secret, DocKind::Reception);
    assert_eq!(d.signatures, ["CÁN BỘ TIẾP NHẬN"]);
    assert!(d.signature_note.unwrap().contains("bút tích"));
    // The slip: "Kính gửi" the province's investigation police, the procuracy informed.
    let slip = doc(&mut s, &by_phone, DocKind::Transfer);
    assert_eq!(
        slip.recipient.as_deref(),
        Some("Cơ quan Cảnh sát điều tra Công an tỉnh Đắk Lắk")
    );
    assert_eq!(slip.copies_to[0], "Như trên;");
    assert!(slip.copies_to[1].starts_with("Viện kiểm sát nhân dân tỉnh Đắk Lắk"));
    assert!(slip.copies_to[2].contains(&slip.number.replace("Số: ", "")));
    assert_eq!(slip.signatures, ["TRƯỞNG CÔNG AN"]);
}

/// A conflict reads as the station speaks: the tip by its register number, a category by
/// its name, a hamlet by its name, a time in Vietnam time, where and when each side was
/// written; never a code or an id.
#[test]
fn conflicts_read_in_vietnamese() {
    let (_d, mut s) = station();
    let roster = "Loại,Thôn,Số hộ\nBuôn,Ea Kmar,143\nThôn,Hòa Bình,80\n";
    s.import_roster(roster.as_bytes(), false, now()).unwrap();
    let hamlets = s.list_hamlets().unwrap();
    let id_of = |name: &str| {
        hamlets
            .iter()
            .find(|h| h.name.contains(name))
            .unwrap()
            .id
            .to_string()
    };
    let tip = s
        .add_tip(
            &tip_input(json!({"content": "Trộm gà", "category": "crime_report"})),
            now(),
        )
        .unwrap();
    let node: String = s
        .conn()
        .query_row("SELECT value FROM meta WHERE key = 'node_id'", [], |r| {
            r.get(0)
        })
        .unwrap();
    // 20/11/2026 10:00 and 11:30 in Vietnam.
    let here = format!("{:015}-00000000-{node}", 1_795_143_600_000_i64);
    let there = format!("{:015}-00000000-khac", 1_795_149_000_000_i64);
    let insert = |id: &str, field: &str, local: serde_json::Value, remote: serde_json::Value| {
        s.conn()
            .execute(
                "INSERT INTO conflicts(id, entity, entity_id, field, kind, local_value, local_hlc,
                                       remote_value, remote_hlc, winner, detected_at)
                 VALUES (?1, 'tip', ?2, ?3, 'field', ?4, ?5, ?6, ?7, 'remote', '2026-11-20T05:00:00Z')",
                rusqlite::params![
                    id,
                    tip.id.to_string(),
                    field,
                    local.to_string(),
                    here,
                    remote.to_string(),
                    there
                ],
            )
            .unwrap();
    };
    insert(
        "c-cat",
        "category",
        json!("crime_report"),
        json!("security_order"),
    );
    insert(
        "c-ham",
        "hamlet_id",
        json!(id_of("Ea Kmar")),
        json!(id_of("Hòa Bình")),
    );
    insert(
        "c-at",
        "received_at",
        json!("2026-11-20T01:00:00.000Z"),
        json!("2026-11-19T23:30:00.000Z"),
    );
    insert(
        "c-off",
        "assigned_to",
        json!(s.session().officer_id),
        serde_json::Value::Null,
    );
    let all = s.conflicts(true).unwrap();
    let get = |id: &str| all.iter().find(|c| c.id == id).unwrap();
    let cat = get("c-cat");
    assert_eq!(
        cat.subject,
        Some(format!("Nguồn tin số {}", tip.register_no))
    );
    assert_eq!(cat.field_label, "Loại nguồn tin");
    assert_eq!(
        (cat.local_text.as_str(), cat.remote_text.as_str()),
        ("Tin báo về tội phạm", "Phản ánh an ninh trật tự")
    );
    // Written here at the moment the tip was recorded: the audit trail names the officer.
    assert_eq!(cat.local_by, "Máy này (máy số 1), Nguyễn Hữu Thành");
    assert_eq!(cat.local_at.as_deref(), Some("20/11/2026 10:00"));
    assert_eq!(cat.remote_by, "Máy khác (nhận qua đồng bộ)");
    assert_eq!(cat.remote_at.as_deref(), Some("20/11/2026 11:30"));
    let ham = get("c-ham");
    assert_eq!(ham.field_label, "Thôn, buôn, tổ dân phố");
    assert!(ham.local_text.contains("Ea Kmar") && ham.remote_text.contains("Hòa Bình"));
    let at = get("c-at");
    assert_eq!(
        (at.local_text.as_str(), at.remote_text.as_str()),
        ("20/11/2026 08:00", "20/11/2026 06:30")
    );
    let off = get("c-off");
    assert_eq!(off.local_text, "Nguyễn Hữu Thành");
    assert_eq!(off.remote_text, "(đã xóa hoặc để trống)");
    // No id or code anywhere a person reads.
    for c in &all {
        for text in [&c.local_text, &c.remote_text] {
            assert!(!text.contains('-') || text.contains(' '), "{text}");
            assert!(!text.contains('_'), "{text}");
        }
    }
}

#[test]
fn a_roster_comes_from_an_excel_workbook_like_from_csv() {
    let (_d, mut s) = station();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["Thôn/Buôn/TDP", "Số hộ", "Họ tên", "Vai trò", "Điện thoại"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "Buôn Ea Kpam").unwrap();
    sheet.write_number(1, 1, 85.0).unwrap();
    sheet.write_string(1, 2, "Y Bhin Niê").unwrap();
    sheet.write_string(1, 3, "Trưởng thôn").unwrap();
    sheet.write_string(1, 4, "0905123456").unwrap();
    sheet.write_string(2, 0, "Thôn 3").unwrap();
    sheet.write_string(2, 1, "nhiều").unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let before = row_counts(&s);
    let err = s.import_roster_file(&bytes, false, now()).unwrap_err();
    let binhyen_store::StoreError::Rows(rows) = &err else {
        panic!("{err}")
    };
    assert_eq!((rows[0].line, rows[0].field.as_str()), (3, "households"));
    assert_eq!(row_counts(&s), before);
    let sheet = book.worksheet_from_index(0).unwrap();
    sheet.write_number(2, 1, 60.0).unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let plan = s.import_roster_file(&bytes, true, now()).unwrap();
    assert!(!plan.applied);
    assert_eq!(plan.hamlets_created.len(), 2);
    assert_eq!(row_counts(&s), before);
    s.import_roster_file(&bytes, false, now()).unwrap();
    let hamlets = s.list_hamlets().unwrap();
    assert_eq!(hamlets.len(), 2);
    assert_eq!(hamlets[0].households, Some(85));
    let people = s.list_people().unwrap();
    assert_eq!(people[0].full_name, "Y Bhin Niê");
    assert_eq!(
        s.import_roster_file(b"PK\x03\x04garbage", true, now())
            .unwrap_err()
            .code(),
        "bad_rows"
    );
}
