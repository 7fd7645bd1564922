use binhyen_store::StoreError;

use crate::{add_account, now, row_counts, station};

const GOOD: &str =
    "\u{feff}STT,Loại,Thôn/Buôn/TDP,Số hộ,Nhân khẩu,Họ tên,Vai trò,Điện thoại,Ghi chú
1,Buôn,Ea Kmar,143,610,Y Bliêng Niê,Trưởng buôn,0912 345 678,
2,Buôn,Ea Kmar,143,610,H'Nga Ayun,Tổ bảo vệ ANTT,+84 977 123 456,
3,Thôn,Hòa Bình,203,,Nguyễn Văn Hùng,trưởng thôn,0389123456,Quản trị nhóm Zalo
4,,Tổ dân phố 2,287,1200,,,,
";

#[test]
fn import_creates_hamlets_and_people() {
    let (_d, mut s) = station();
    let plan = s.import_roster(GOOD.as_bytes(), false, now()).unwrap();
    assert!(plan.applied);
    assert_eq!(plan.rows, 4);
    assert_eq!(
        plan.hamlets_created,
        vec!["Buôn Ea Kmar", "Thôn Hòa Bình", "Tổ dân phố 2"]
    );
    assert_eq!(plan.people_created.len(), 3);
    let hamlets = s.list_hamlets().unwrap();
    let names: Vec<&str> = hamlets.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["Buôn Ea Kmar", "Thôn Hòa Bình", "Tổ dân phố 2"]);
    let people = s.list_people().unwrap();
    assert_eq!(
        people
            .iter()
            .find(|p| p.full_name == "H'Nga Ayun")
            .unwrap()
            .phone
            .as_deref(),
        Some("+84977123456")
    );
}

#[test]
fn dry_run_previews_and_writes_nothing() {
    let (_d, mut s) = station();
    let before = row_counts(&s);
    let preview = s.import_roster(GOOD.as_bytes(), true, now()).unwrap();
    assert!(!preview.applied);
    assert_eq!(row_counts(&s), before);
    let real = s.import_roster(GOOD.as_bytes(), false, now()).unwrap();
    assert_eq!(
        (preview.hamlets_created, preview.people_created),
        (real.hamlets_created, real.people_created)
    );
}

#[test]
fn bad_rows_are_all_reported_and_nothing_is_written() {
    let (_d, mut s) = station();
    let before = row_counts(&s);
    let csv = "Loại,Thôn,Số hộ,Họ tên,Vai trò,Điện thoại
Buôn,Ea Kmar,143,Y Bliêng Niê,Trưởng buôn,01689123456
Xóm,Ea Sup,10,,,
Thôn,Thôn 1,nhiều,Lê Văn A,Chủ tịch,
Thôn,Thôn 2,10,,,0912345678
";
    let err = s.import_roster(csv.as_bytes(), false, now()).unwrap_err();
    let StoreError::Rows(rows) = err else {
        panic!("{err:?}")
    };
    let got: Vec<(usize, &str)> = rows.iter().map(|r| (r.line, r.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "phone"),
            (3, "kind"),
            (4, "households"),
            (4, "role"),
            (5, "phone")
        ]
    );
    assert_eq!(
        rows[0].suggestion.as_deref(),
        Some("+84389123456"),
        "old 11-digit mobile gets its new number"
    );
    assert_eq!(row_counts(&s), before);
}

#[test]
fn unknown_column_and_non_utf8_are_refused() {
    let (_d, mut s) = station();
    let err = s
        .import_roster("Thôn,Màu sắc\nThôn 1,đỏ\n".as_bytes(), false, now())
        .unwrap_err();
    assert!(err.to_string().contains("Màu sắc"), "{err}");
    // "Thôn" in Windows-1258 is not UTF-8.
    let err = s
        .import_roster(b"Th\xf4n\nTh\xf4n 1\n", false, now())
        .unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn conflicting_figures_for_one_hamlet_are_refused() {
    let (_d, mut s) = station();
    let csv = "Thôn,Số hộ\nThôn 1,100\nthon 1,120\n";
    let StoreError::Rows(rows) = s.import_roster(csv.as_bytes(), false, now()).unwrap_err() else {
        panic!()
    };
    assert_eq!(rows[0].line, 3);
}

#[test]
fn export_then_import_changes_nothing() {
    let (_d, mut s) = crate::demo_station();
    let csv = s.export_roster().unwrap();
    assert!(
        csv.starts_with(b"\xEF\xBB\xBF"),
        "BOM so that Excel reads UTF-8"
    );
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(text.contains("Buôn Ea Mdroh"));
    let before = row_counts(&s);
    let plan = s.import_roster(&csv, false, now()).unwrap();
    assert!(
        plan.hamlets_created.is_empty() && plan.people_created.is_empty(),
        "{plan:#?}"
    );
    assert!(
        plan.hamlets_updated.is_empty() && plan.people_updated.is_empty(),
        "{plan:#?}"
    );
    // The data is as it was; only the audit trail (and its head in meta) says an import ran.
    let data = |counts: Vec<(String, i64)>| -> Vec<(String, i64)> {
        counts
            .into_iter()
            .filter(|(t, _)| t != "audit_log" && t != "meta")
            .collect()
    };
    assert_eq!(data(row_counts(&s)), data(before));
    assert_eq!(s.audit_entries(1).unwrap()[0].action, "roster.import");
}

#[test]
fn same_person_spelled_differently_is_flagged() {
    let (_d, mut s) = station();
    let csv = "Thôn,Họ tên,Vai trò\nThôn 1,Nguyễn Văn Hùng,Trưởng thôn\nThôn 2,Nguyen Van Hung,Quản trị nhóm\nThôn 3,Nguyễn Văn Hừng,Khác\nThôn 3,Trần Thị Lan,Khác\n";
    let plan = s.import_roster(csv.as_bytes(), false, now()).unwrap();
    assert_eq!(
        plan.possible_duplicates.len(),
        3,
        "{:#?}",
        plan.possible_duplicates
    );
    assert!(plan
        .possible_duplicates
        .iter()
        .all(|d| !d.first.contains("Lan") && !d.second.contains("Lan")));
}

#[test]
fn hamlets_sort_in_vietnamese_order() {
    let (_d, mut s) = station();
    let csv = "Thôn,Số hộ\nThôn Ân Phú,1\nThôn An Bình,1\nThôn Đông,1\nThôn Dương,1\nThôn Ơn,1\nThôn Ôn,1\n";
    s.import_roster(csv.as_bytes(), false, now()).unwrap();
    let names: Vec<String> = s
        .list_hamlets()
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(
        names,
        vec![
            "Thôn An Bình",
            "Thôn Ân Phú",
            "Thôn Dương",
            "Thôn Đông",
            "Thôn Ôn",
            "Thôn Ơn"
        ]
    );
}

#[test]
fn names_differing_only_in_diacritics_are_kept_apart_and_flagged() {
    let (_d, mut s) = station();
    let plan = s
        .import_roster("Thôn\nThôn Ôn\nThôn Ơn\nthon 1\n".as_bytes(), false, now())
        .unwrap();
    assert_eq!(plan.hamlets_created, vec!["Thôn Ôn", "Thôn Ơn", "Thôn 1"]);
    assert_eq!(plan.possible_duplicates.len(), 1);
    assert_eq!(
        (
            plan.possible_duplicates[0].first.as_str(),
            plan.possible_duplicates[0].second.as_str()
        ),
        ("Thôn Ôn", "Thôn Ơn")
    );
}

#[test]
fn hamlets_show_their_head_and_the_officer_in_charge() {
    use binhyen_domain::access::Role;
    let (_d, mut s) = station();
    s.import_roster(GOOD.as_bytes(), false, now()).unwrap();
    for (user, role) in [("vinh", Role::Officer), ("quantri", Role::Admin)] {
        add_account(&mut s, user, role);
    }
    let hamlets = s.list_hamlets().unwrap();
    let ea_kmar = hamlets.iter().find(|h| h.name == "Buôn Ea Kmar").unwrap();
    // The head from the roster (not the security-team member of the same hamlet).
    assert_eq!(ea_kmar.head_name.as_deref(), Some("Y Bliêng Niê"));
    assert_eq!(ea_kmar.head_phone.as_deref(), Some("+84912345678"));
    let tdp = hamlets.iter().find(|h| h.name == "Tổ dân phố 2").unwrap();
    assert_eq!(tdp.head_name, None);
    assert_eq!(ea_kmar.area_officer_id, None);
    let id = ea_kmar.id.to_string();

    let before = row_counts(&s);
    for (who, code) in [
        ("khongco", "unknown_officer"),
        ("quantri", "unknown_officer"),
    ] {
        let err = s.set_area_officer(&id, Some(who), now()).unwrap_err();
        assert_eq!(err.field_errors()[0].code, code, "{who}");
        assert_eq!(err.field_errors()[0].field, "area_officer");
    }
    assert_eq!(row_counts(&s), before, "refused means untouched");

    let h = s.set_area_officer(&id, Some("VINH"), now()).unwrap();
    assert_eq!(h.area_officer_name.as_deref(), Some("Cán bộ vinh"));
    let change = binhyen_store::changes::pending(s.conn(), 10_000)
        .unwrap()
        .into_iter()
        .rev()
        .find(|c| c.entity == "hamlet" && c.entity_id == id)
        .unwrap();
    assert_eq!(
        change.data["area_officer_id"].as_str(),
        h.area_officer_id.map(|u| u.to_string()).as_deref()
    );
    // The same again writes nothing; none clears it.
    let n = binhyen_store::changes::pending_count(s.conn()).unwrap();
    s.set_area_officer(&id, Some("vinh"), now()).unwrap();
    assert_eq!(binhyen_store::changes::pending_count(s.conn()).unwrap(), n);
    let h = s.set_area_officer(&id, None, now()).unwrap();
    assert_eq!((h.area_officer_id, h.area_officer_name), (None, None));
    assert_eq!(
        s.set_area_officer("no-such-hamlet", None, now())
            .unwrap_err()
            .code(),
        "not_found"
    );
}
