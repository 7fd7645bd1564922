use std::collections::HashSet;

use binhyen_domain::tip::{Status, TipFilter, TipPatch};
use binhyen_store::search::search;
use binhyen_store::Station;
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

use crate::{demo_station, now, opts, row_counts, station, tip_input};

#[test]
fn add_tip_gives_a_register_number_and_a_timeline() {
    let (_d, mut s) = station();
    let tip = s
        .add_tip(
            &tip_input(json!({"content": "Nhóm thanh niên tụ tập", "category": "security_order", "channel": "zalo",
                              "received_at": "2026-11-19T15:30:00Z"})),
            now(),
        )
        .unwrap();
    assert_eq!(tip.register_no, "0001/2026/M1");
    assert_eq!(tip.status, Status::Received);
    assert_eq!(tip.timeline.len(), 1);
    let second = s
        .add_tip(&tip_input(json!({"content": "Tin thứ hai"})), now())
        .unwrap();
    assert_eq!(second.register_no, "0002/2026/M1");
}

#[test]
fn register_numbers_restart_each_vietnam_year() {
    let (_d, mut s) = station();
    // 31/12/2025 23:30 in Vietnam is still 2025; 00:30 on 1/1/2026 is 2026.
    let a = s
        .add_tip(
            &tip_input(json!({"content": "a", "received_at": "2025-12-31T16:30:00Z"})),
            now(),
        )
        .unwrap();
    let b = s
        .add_tip(
            &tip_input(json!({"content": "b", "received_at": "2025-12-31T17:30:00Z"})),
            now(),
        )
        .unwrap();
    let c = s
        .add_tip(
            &tip_input(json!({"content": "c", "received_at": "2025-12-31T16:45:00Z"})),
            now(),
        )
        .unwrap();
    assert_eq!(a.register_no, "0001/2025/M1");
    assert_eq!(b.register_no, "0001/2026/M1");
    assert_eq!(c.register_no, "0002/2025/M1");
}

/// Two laptops of one station, offline, never hand out the same register number.
#[test]
fn two_laptops_of_one_station_never_collide() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let mut l1 = Station::init(d1.path(), &opts("24280", 1, false), now()).unwrap();
    let mut l2 = Station::init(d2.path(), &opts("24280", 2, false), now()).unwrap();
    let mut numbers = HashSet::new();
    for i in 0..50 {
        for l in [&mut l1, &mut l2] {
            let t = l
                .add_tip(&tip_input(json!({"content": format!("tin {i}")})), now())
                .unwrap();
            assert!(
                numbers.insert(t.register_no.clone()),
                "duplicate {}",
                t.register_no
            );
        }
    }
    assert_eq!(numbers.len(), 100);
}

#[test]
fn a_reinstalled_laptop_does_not_reuse_the_numbers_sync_brings_back() {
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    let mut before = Station::init(old.path(), &opts("24280", 1, false), now()).unwrap();
    for i in 0..3 {
        before
            .add_tip(&tip_input(json!({"content": format!("tin {i}")})), now())
            .unwrap();
    }
    // The laptop is wiped and set up again as laptop 1; its tips come back from the server.
    let mut after = Station::init(new.path(), &opts("24280", 1, false), now()).unwrap();
    crate::relay(&before, &mut after);
    let t = after
        .add_tip(&tip_input(json!({"content": "tin mới"})), now())
        .unwrap();
    assert_eq!(t.register_no, "0004/2026/M1");
    let t = after
        .add_tip(&tip_input(json!({"content": "tin mới nữa"})), now())
        .unwrap();
    assert_eq!(t.register_no, "0005/2026/M1");
}

#[test]
fn refused_tip_leaves_nothing_behind() {
    let (_d, mut s) = station();
    let before = row_counts(&s);
    for bad in [
        json!({"content": "  "}),
        json!({"content": "x", "received_at": "2030-01-01T00:00:00Z"}),
        json!({"content": "x", "reporter": {"phone": "123"}}),
        json!({"content": "x", "reporter": {"id_number": "12345"}}),
        json!({"content": "x", "hamlet": "Thôn Không Có"}),
    ] {
        let err = s.add_tip(&tip_input(bad.clone()), now()).unwrap_err();
        assert_eq!(err.code(), "invalid", "{bad}");
        assert!(!err.field_errors().is_empty());
    }
    assert_eq!(row_counts(&s), before);
}

#[test]
fn decomposed_and_precomposed_text_find_each_other() {
    let (_d, mut s) = station();
    let nfd: String = "Phát hiện vật nổ ở rẫy cà phê gần Buôn Đôn".nfd().collect();
    let tip = s
        .add_tip(&tip_input(json!({"content": nfd})), now())
        .unwrap();
    // Stored as NFC.
    assert_eq!(tip.content, "Phát hiện vật nổ ở rẫy cà phê gần Buôn Đôn");
    let nfc_hits = search(s.conn(), "rẫy cà phê", None, 10).unwrap();
    assert_eq!(nfc_hits.len(), 1);
    let nfd_query: String = "Buôn Đôn".nfd().collect();
    assert_eq!(
        search(s.conn(), &nfd_query, Some(&["tip"]), 10)
            .unwrap()
            .len(),
        1
    );
    s.add_tip(
        &tip_input(json!({"content": "Tụ tập đánh bạc ở chợ Hòa Bình"})),
        now(),
    )
    .unwrap();
    let nfd_query: String = "đánh bạc".nfd().collect();
    assert_eq!(search(s.conn(), &nfd_query, None, 10).unwrap().len(), 1);
}

fn check_search(s: &Station, query: &str, expect_kind: &str, expect_label_contains: &str) {
    let hits = search(s.conn(), query, None, 20).unwrap();
    assert!(
        hits.iter()
            .any(|h| h.kind == expect_kind && h.label.contains(expect_label_contains)),
        "search {query:?}: {hits:#?}"
    );
}

#[test]
fn search_without_diacritics_across_kinds() {
    let (_d, s) = demo_station();
    check_search(&s, "buon ea kmar", "hamlet", "Buôn Ea Kmar");
    check_search(&s, "dak lak", "unit", "Tỉnh Đắk Lắk");
    check_search(&s, "DAK LAK", "unit", "Tỉnh Đắk Lắk");
    check_search(&s, "buon ma thuot", "unit", "Phường Buôn Ma Thuột");
    check_search(&s, "y blieng nie", "person", "Y Bliêng Niê");
    check_search(&s, "hoa binh", "hamlet", "Thôn Hòa Bình");
    check_search(&s, "hoà bình", "hamlet", "Thôn Hòa Bình");
    check_search(&s, "trom bo", "tip", "Tố giác");
    // "đ" folds to "d": "doan ket" finds "Đoàn Kết".
    check_search(&s, "doan ket", "hamlet", "Thôn Đoàn Kết");
    assert!(search(s.conn(), "xyzzy", None, 10).unwrap().is_empty());
    assert!(search(s.conn(), "\" OR * NEAR(", None, 10).is_ok());
}

/// Issue 26's case: on a fresh station of Xã Cư M'gar, a tip about "Đắk Lắk", then "dak
/// lak". The tip comes first, then the units, the province itself before the communes found
/// only through the province's name; a few of each, with a way to see more.
#[test]
fn grouped_search_puts_the_stations_work_first() {
    let (_d, mut s) = station();
    s.add_tip(
        &tip_input(json!({"content": "Xe khách Đắk Lắk chở hàng cấm qua xã"})),
        now(),
    )
    .unwrap();
    let groups = s.search_grouped("dak lak", 5).unwrap();
    let kinds: Vec<&str> = groups.iter().map(|g| g.kind.as_str()).collect();
    assert_eq!(kinds, ["tip", "unit"], "{groups:#?}");
    assert_eq!(groups[0].hits.len(), 1);
    assert!(!groups[0].more);
    let units = &groups[1];
    assert_eq!(units.hits.len(), 5);
    assert!(units.more, "every commune of the province matches");
    assert_eq!(units.hits[0].label, "Tỉnh Đắk Lắk", "{units:#?}");
    // A commune named for itself outranks those named only through their province.
    let groups = s.search_grouped("cu m'gar", 3).unwrap();
    let units = groups.iter().find(|g| g.kind == "unit").unwrap();
    assert!(units.hits[0].label.contains("Cư M'gar"), "{units:#?}");
    // Empty or punctuation only: nothing, not an error.
    assert!(s.search_grouped("  ,. ", 5).unwrap().is_empty());
}

#[test]
fn list_filters_and_limit() {
    let (_d, s) = demo_station();
    let all = s.list_tips(&TipFilter::default()).unwrap();
    assert_eq!(all.len(), 300);
    assert!(all.windows(2).all(|w| w[0].received_at >= w[1].received_at));
    let received = s
        .list_tips(&TipFilter {
            status: Some(Status::Received),
            ..Default::default()
        })
        .unwrap();
    assert!(!received.is_empty() && received.iter().all(|t| t.status == Status::Received));
    let limited = s
        .list_tips(&TipFilter {
            limit: Some(7),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(limited.len(), 7);
    let q = s
        .list_tips(&TipFilter {
            query: Some("danh bac".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(!q.is_empty());
    assert!(
        q.iter()
            .all(|t| binhyen_domain::text::fold(&t.content).contains("danh bac")),
        "{q:#?}"
    );
    assert_eq!(
        s.count_tips(&TipFilter {
            query: Some("danh bac".into()),
            ..Default::default()
        })
        .unwrap(),
        q.len() as u64
    );
    // Lists never carry reporter identity.
    assert!(all.iter().all(|t| t.reporter.is_none()));
    assert!(all.iter().any(|t| t.reporter_secret));
}

/// A tip's receipt heads its timeline, made from the tip itself: nothing of its own is
/// stored or synced for it. A receipt stored by an earlier version (or a laptop not yet
/// updated), arriving by sync, is shown in its place, never beside it.
#[test]
fn the_receipt_heads_the_timeline_from_the_tip_itself() {
    use binhyen_domain::tip::ActionKind;
    let (_d, mut s) = station();
    let tip = s
        .add_tip(
            &tip_input(
                json!({"content": "Mất trộm xe máy", "received_at": "2026-11-19T15:30:00Z"}),
            ),
            now(),
        )
        .unwrap();
    let id = tip.id.to_string();
    let receipt = &tip.timeline[0];
    assert_eq!(
        (receipt.id, receipt.at, receipt.kind, receipt.to_status),
        (
            tip.id,
            tip.received_at,
            ActionKind::Received,
            Some(Status::Received)
        )
    );
    let changes: Vec<String> = s
        .conn()
        .prepare("SELECT entity FROM changes ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        changes.iter().filter(|e| *e == "tip_action").count(),
        0,
        "{changes:?}"
    );
    assert_eq!(
        changes.iter().filter(|e| *e == "tip").count(),
        1,
        "{changes:?}"
    );

    // The receipt's time is corrected: only with a reason (the transfer deadline counts
    // from it), kept on the timeline; the receipt moves with it, before what came after.
    let unexplained: TipPatch = serde_json::from_value(
        json!({"received_at": "2026-11-19T14:00:00Z", "status": "verifying"}),
    )
    .unwrap();
    let refused = s.update_tip(&id, &unexplained, now()).unwrap_err();
    assert!(refused.to_string().contains("lý do"), "{refused}");
    assert_eq!(s.get_tip(&id).unwrap().status, Status::Received);
    let patch: TipPatch = serde_json::from_value(
        json!({"received_at": "2026-11-19T14:00:00Z", "status": "verifying",
               "note": "ghi nhầm giờ khi nhận điện thoại"}),
    )
    .unwrap();
    let updated = s.update_tip(&id, &patch, now()).unwrap();
    assert!(
        updated
            .timeline
            .iter()
            .any(|a| a.note.as_deref() == Some("ghi nhầm giờ khi nhận điện thoại")),
        "{:?}",
        updated.timeline
    );
    let kinds: Vec<_> = updated.timeline.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![ActionKind::Received, ActionKind::StatusChanged]);
    assert_eq!(updated.timeline[0].at, updated.received_at);

    // A receipt stored by an older laptop arrives: it is the one shown, once.
    let stored = binhyen_store::replica::RemoteChange {
        seq: 1,
        change_id: uuid::Uuid::now_v7().to_string(),
        hlc: "001700000000000-00000000-oldlaptop".into(),
        entity: "tip_action".into(),
        entity_id: uuid::Uuid::now_v7().to_string(),
        op: "insert".into(),
        data: json!({"tip_id": id, "at": "2026-11-19T14:00:00Z", "kind": "received",
                     "from_status": null, "to_status": "received", "note": null})
        .as_object()
        .cloned()
        .unwrap(),
        base: None,
    };
    s.apply_remote(std::slice::from_ref(&stored), now())
        .unwrap();
    let shown = s.get_tip(&id).unwrap().timeline;
    let receipts: Vec<String> = shown
        .iter()
        .filter(|a| a.kind == ActionKind::Received)
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(receipts, vec![stored.entity_id.clone()]);
    assert_eq!(shown.len(), 2);
    assert!(s.doctor().unwrap().iter().all(|c| c.ok));
}

#[test]
fn update_writes_only_changed_fields_and_the_timeline() {
    let (_d, mut s) = station();
    let tip = s
        .add_tip(
            &tip_input(json!({"content": "Trộm bò", "category": "other"})),
            now(),
        )
        .unwrap();
    let id = tip.id.to_string();
    let patch: TipPatch = serde_json::from_value(json!({"category": "crime_denunciation", "status": "verifying", "note": "Đã cử cán bộ xác minh"})).unwrap();
    let updated = s.update_tip(&tip.register_no, &patch, now()).unwrap();
    assert_eq!(updated.status, Status::Verifying);
    assert_eq!(updated.timeline.len(), 2);
    assert_eq!(
        updated.timeline[1].note.as_deref(),
        Some("Đã cử cán bộ xác minh")
    );
    let data: String = s
        .conn()
        .query_row(
            "SELECT data FROM changes WHERE entity = 'tip' AND entity_id = ?1 AND op = 'update'",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    let mut keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["category", "status", "updated_at"]);
    // The same patch again changes nothing and records nothing.
    let before = row_counts(&s);
    let same: TipPatch = serde_json::from_value(json!({"category": "crime_denunciation"})).unwrap();
    s.update_tip(&id, &same, now()).unwrap();
    assert_eq!(row_counts(&s), before);
}

#[test]
fn forbidden_transition_is_refused_whole() {
    let (_d, mut s) = station();
    let tip = s
        .add_tip(&tip_input(json!({"content": "x"})), now())
        .unwrap();
    let close: TipPatch = serde_json::from_value(json!({"status": "closed"})).unwrap();
    s.update_tip(&tip.register_no, &close, now()).unwrap();
    let before = row_counts(&s);
    // A closed tip is not transferred (it is reopened first, by a chief with a reason); a
    // reopening without a reason is refused whole too.
    let transfer: TipPatch = serde_json::from_value(
        json!({"status": "transferred", "note": "CQĐT", "content": "changed"}),
    )
    .unwrap();
    let err = s
        .update_tip(&tip.register_no, &transfer, now())
        .unwrap_err();
    assert_eq!(err.field_errors()[0].code, "bad_transition");
    let reopen: TipPatch =
        serde_json::from_value(json!({"status": "verifying", "content": "changed"})).unwrap();
    let err = s.update_tip(&tip.register_no, &reopen, now()).unwrap_err();
    assert_eq!(err.field_errors()[0].code, "reason_required");
    assert_eq!(row_counts(&s), before);
    assert_eq!(s.get_tip(&tip.register_no).unwrap().content, "x");
}

#[test]
fn import_is_all_or_nothing_with_the_line_number() {
    let (_d, mut s) = station();
    let good = "{\"content\": \"một\"}\n\n{\"content\": \"hai\", \"channel\": \"phone\"}\n";
    let bad = format!(
        "{good}{{\"content\": \"ba\", \"category\": \"nope\"}}\n{{\"content\": \"bốn\"}}\n"
    );
    let before = row_counts(&s);
    let err = s.import_tips(&bad, now()).unwrap_err();
    assert_eq!(err.code(), "bad_line");
    assert!(err.to_string().starts_with("Dòng 4:"), "{err}");
    assert_eq!(row_counts(&s), before);
    // A hamlet that does not exist fails at insert time: still nothing written.
    let late = format!("{good}{{\"content\": \"ba\", \"hamlet\": \"Buôn Không Có\"}}\n");
    let err = s.import_tips(&late, now()).unwrap_err();
    assert!(err.to_string().starts_with("Dòng 4:"), "{err}");
    assert_eq!(row_counts(&s), before);
    assert_eq!(s.import_tips(good, now()).unwrap().len(), 2);
}

/// Search results come newest first however the tips were entered, and an edit of the
/// received time moves a tip in the results.
#[test]
fn search_results_are_newest_first() {
    let (_d, mut s) = station();
    for (content, at) in [
        ("trộm bò lần hai", "2026-10-02T01:00:00Z"),
        ("trộm bò lần một", "2026-09-01T01:00:00Z"),
        ("trộm bò lần ba", "2026-11-03T01:00:00Z"),
        ("trộm bò cùng lúc", "2026-11-03T01:00:00Z"),
    ] {
        s.add_tip(
            &tip_input(json!({"content": content, "received_at": at})),
            now(),
        )
        .unwrap();
    }
    let query = |s: &Station| -> Vec<String> {
        s.list_tips(&TipFilter {
            query: Some("trom bo".into()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|t| t.content)
        .collect()
    };
    let found = query(&s);
    assert_eq!(found.len(), 4);
    assert_eq!(&found[2..], ["trộm bò lần hai", "trộm bò lần một"]);
    let page = s
        .list_tips(&TipFilter {
            query: Some("trom bo".into()),
            limit: Some(1),
            offset: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page[0].content, "trộm bò lần một");
    let first = s
        .list_tips(&TipFilter {
            query: Some("lan mot".into()),
            ..Default::default()
        })
        .unwrap();
    let patch: TipPatch = serde_json::from_value(json!({"received_at": "2026-11-10T00:00:00Z",
                                      "note": "ghi nhầm ngày tiếp nhận"}))
    .unwrap();
    s.update_tip(&first[0].id.to_string(), &patch, now())
        .unwrap();
    assert_eq!(query(&s)[0], "trộm bò lần một");
    assert!(s.doctor().unwrap().iter().all(|c| c.ok));
}

/// A bulk import where every tip has the same timestamp (more than the 1,024 search numbers
/// of one millisecond): all are imported, listed and found.
#[test]
fn thousands_of_tips_with_one_timestamp_are_all_indexed() {
    let (_d, mut s) = station();
    let lines: Vec<String> = (0..1500)
        .map(|i| {
            serde_json::json!({"content": format!("Tin nhập hàng loạt số {i}, trộm bò"),
                               "received_at": "2026-11-01T08:00:00Z"})
            .to_string()
        })
        .collect();
    assert_eq!(s.import_tips(&lines.join("\n"), now()).unwrap().len(), 1500);
    let filter = TipFilter {
        query: Some("trom bo".into()),
        limit: Some(2000),
        ..TipFilter::default()
    };
    assert_eq!(s.list_tips(&filter).unwrap().len(), 1500);
    let one = TipFilter {
        query: Some("so 1499".into()),
        ..TipFilter::default()
    };
    assert!(s
        .list_tips(&one)
        .unwrap()
        .iter()
        .any(|t| t.content.contains("số 1499")));
}

#[test]
fn related_tips_are_linked_both_ways_and_travel_as_records() {
    let (_dir, mut s) = crate::station();
    let add = |s: &mut Station, text: &str| {
        s.add_tip(&tip_input(json!({ "content": text })), now())
            .unwrap()
    };
    let first = add(&mut s, "Trộm bò ở buôn Ea Kpam đêm 3/11");
    let again = add(&mut s, "Lại báo mất bò ở buôn Ea Kpam");
    let other = add(&mut s, "Hỏi thủ tục tạm trú");
    use binhyen_domain::tip::LinkRelation;
    // By register number, as the officer types it.
    let linked = s
        .link_tips(
            &again.register_no,
            &first.register_no,
            LinkRelation::DuplicateOf,
            now(),
        )
        .unwrap();
    assert_eq!(linked.links.len(), 1);
    let l = &linked.links[0];
    assert!(l.outgoing);
    assert_eq!(l.other_register_no, first.register_no);
    assert!(linked
        .timeline
        .last()
        .unwrap()
        .note
        .as_deref()
        .unwrap()
        .contains(&first.register_no));
    // Seen from the other side.
    let seen = s.get_tip(&first.id.to_string()).unwrap();
    assert_eq!(seen.links.len(), 1);
    assert!(!seen.links[0].outgoing);
    assert_eq!(seen.links[0].other_id, again.id);
    // The same pair again, either way, changes nothing; a tip with itself or an unknown one
    // is refused with a reason.
    s.link_tips(
        &first.register_no,
        &again.register_no,
        LinkRelation::Related,
        now(),
    )
    .unwrap();
    assert_eq!(s.get_tip(&first.register_no).unwrap().links.len(), 1);
    for (a, b) in [
        (&first.register_no, &first.register_no),
        (&first.register_no, &"9999/2026/M1".to_string()),
    ] {
        let err = s.link_tips(a, b, LinkRelation::Related, now()).unwrap_err();
        assert_eq!(err.code(), "invalid", "{a} {b}");
    }
    s.link_tips(
        &other.register_no,
        &first.register_no,
        LinkRelation::Related,
        now(),
    )
    .unwrap();
    assert_eq!(s.get_tip(&first.register_no).unwrap().links.len(), 2);
    // Lists carry no links (they are for one tip's page).
    assert!(s
        .list_tips(&Default::default())
        .unwrap()
        .iter()
        .all(|t| t.links.is_empty()));

    // A link is a synchronised record: another laptop of the commune gets it, and its
    // removal too.
    let d2 = tempfile::tempdir().unwrap();
    let mut laptop2 = Station::init(d2.path(), &opts("24280", 2, false), now()).unwrap();
    crate::relay(&s, &mut laptop2);
    assert_eq!(
        laptop2.get_tip(&first.id.to_string()).unwrap().links.len(),
        2
    );
    let link_id = seen.links[0].id.to_string();
    s.unlink_tips(&link_id, now()).unwrap();
    assert_eq!(s.get_tip(&first.register_no).unwrap().links.len(), 1);
    let pending = binhyen_store::changes::pending(s.conn(), 10_000).unwrap();
    assert!(pending
        .iter()
        .any(|c| c.entity == "tip_link" && c.entity_id == link_id && c.op == "delete"));
}

/// The search documents of a pulled page, written together at its end: every tip is found,
/// by its latest text only, the index matches the records, and the page's documents make
/// few segments although the tips come in an order unlike their received times (FTS5 wrote
/// out a segment whenever a document numbered below the one before arrived: one for nearly
/// every tip of such a page).
#[test]
fn a_pulled_page_is_searchable_and_indexed_in_one_go() {
    let (_d1, mut one) = station();
    let d2 = tempfile::tempdir().unwrap();
    let mut two = Station::init(d2.path(), &opts("24280", 2, false), now()).unwrap();
    let mut ids = Vec::new();
    for i in 0..120u32 {
        // Received times jump about: 53 and 120 share no factor, so each day comes once.
        let day = (i * 53) % 120;
        let tip = one
            .add_tip(
                &tip_input(json!({
                    "content": format!("Tin báo số kx{i}q ở rẫy cà phê"),
                    "received_at": format!("2026-{:02}-{:02}T08:00:00Z", 1 + day / 28, 1 + day % 28),
                })),
                now(),
            )
            .unwrap();
        ids.push(tip.id.to_string());
    }
    for i in (0..120).step_by(10) {
        let patch = TipPatch {
            content: Some(format!("Đã sửa: vụ zq{i}w trên đường liên xã")),
            ..Default::default()
        };
        one.update_tip(&ids[i], &patch, now()).unwrap();
    }
    let before = leaves_written(&two);
    crate::relay(&one, &mut two);

    let found = |s: &Station, word: &str| -> Vec<String> {
        search(s.conn(), word, Some(&["tip"]), 10)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    for (i, id) in ids.iter().enumerate() {
        if i % 10 == 0 {
            assert_eq!(found(&two, &format!("zq{i}w")), vec![id.clone()]);
            assert!(
                found(&two, &format!("kx{i}q")).is_empty(),
                "old text of {i}"
            );
        } else {
            assert_eq!(found(&two, &format!("kx{i}q")), vec![id.clone()], "tip {i}");
        }
    }
    for check in two.doctor().unwrap() {
        if check.name.starts_with("search") {
            assert!(check.ok, "{}: {}", check.name, check.detail);
        }
    }
    let written = leaves_written(&two) - before;
    assert!(written <= 8, "FTS5 wrote {written} leaves for the page");
}

/// How many leaves FTS5 has written to its level 0 (flushing what it buffered) since the
/// index was made: the count in its structure record (`search_fts_data`, id 10: a 4-byte
/// cookie, an optional 4-byte version mark, then varints: levels, segments, this count).
fn leaves_written(s: &Station) -> u64 {
    let block: Vec<u8> = s
        .conn()
        .query_row("SELECT block FROM search_fts_data WHERE id = 10", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut at = if block[4..8] == [0xff, 0x00, 0x00, 0x01] {
        8
    } else {
        4
    };
    // SQLite's varint: big-endian groups of 7 bits, the ninth byte whole.
    let mut varint = || {
        let mut v: u64 = 0;
        for i in 0..9 {
            let b = block[at];
            at += 1;
            if i == 8 {
                return (v << 8) | u64::from(b);
            }
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        v
    };
    let (_levels, _segments) = (varint(), varint());
    varint()
}

/// A record deleted by a pulled change leaves the search index with it: no document, and no
/// full-text row left behind for `doctor` to find.
#[test]
fn a_pulled_delete_leaves_the_search_index() {
    let (_d1, mut one) = station();
    let d2 = tempfile::tempdir().unwrap();
    let mut two = Station::init(d2.path(), &opts("24280", 2, false), now()).unwrap();
    one.import_roster(
        "Loại,Thôn/Buôn/TDP,Họ tên,Vai trò\nBuôn,Ea Kmar,Y Bliêng Niê,Trưởng buôn\n".as_bytes(),
        false,
        now(),
    )
    .unwrap();
    crate::relay(&one, &mut two);
    let people = two.list_people().unwrap();
    assert_eq!(people.len(), 1);
    let person = people[0].id.to_string();
    let found = |s: &Station| {
        search(s.conn(), "Bliêng", Some(&["person"]), 5)
            .unwrap()
            .len()
    };
    assert_eq!(found(&two), 1);
    let fields: String = two
        .conn()
        .query_row(
            "SELECT fields FROM versions WHERE entity = 'roster_person' AND entity_id = ?1",
            [&person],
            |r| r.get(0),
        )
        .unwrap();
    let delete = binhyen_store::replica::RemoteChange {
        seq: 1_000,
        change_id: uuid::Uuid::now_v7().to_string(),
        hlc: "001800000000000-00000000-province".into(),
        entity: "roster_person".into(),
        entity_id: person.clone(),
        op: "delete".into(),
        data: serde_json::Map::new(),
        base: Some(binhyen_domain::versions::parse(&fields)),
    };
    two.apply_remote(&[delete], now()).unwrap();
    assert!(two.list_people().unwrap().is_empty());
    assert_eq!(found(&two), 0);
    for check in two.doctor().unwrap() {
        if check.name.starts_with("search") {
            assert!(check.ok, "{}: {}", check.name, check.detail);
        }
    }
}

/// A question answered on the spot is recorded resolved in one step, with the answer on its
/// timeline; a finished tip is reopened only by a chief, with a reason; an answer is only
/// for a question about a procedure.
#[test]
fn answered_on_the_spot_and_reopened_by_a_chief_with_a_reason() {
    let (dir, mut s) = station();
    let answered = s
        .add_tip(
            &tip_input(
                json!({"content": "Hỏi thủ tục đăng ký tạm trú", "category": "admin_question",
                              "answered": "Đã hướng dẫn nộp hồ sơ qua VNeID"}),
            ),
            now(),
        )
        .unwrap();
    assert_eq!(answered.status, Status::Resolved);
    assert!(answered
        .timeline
        .iter()
        .any(|a| a.note.as_deref() == Some("Đã hướng dẫn nộp hồ sơ qua VNeID")));
    let before = row_counts(&s);
    let refused = s
        .add_tip(
            &tip_input(
                json!({"content": "Tố giác trộm bò", "category": "crime_denunciation",
                              "answered": "đã trả lời"}),
            ),
            now(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("thủ tục"), "{refused}");
    assert_eq!(row_counts(&s), before, "nothing written");

    let id = answered.id.to_string();
    let close: TipPatch = serde_json::from_value(json!({"status": "closed"})).unwrap();
    s.update_tip(&id, &close, now()).unwrap();
    let bare: TipPatch = serde_json::from_value(json!({"status": "verifying"})).unwrap();
    let refused = s.update_tip(&id, &bare, now()).unwrap_err();
    assert!(refused.to_string().contains("lý do"), "{refused}");
    // An officer may not reopen, reason or not.
    crate::add_account(&mut s, "canbo", binhyen_domain::access::Role::Officer);
    drop(s);
    let mut officer = Station::open(
        dir.path(),
        &binhyen_store::Credentials::new("canbo", crate::TEMP),
    )
    .unwrap();
    officer
        .change_password(crate::TEMP, "mật khẩu của cán bộ 2026", now())
        .unwrap();
    // An officer records a question answered on the spot, in one write.
    let by_officer = officer
        .add_tip(
            &tip_input(
                json!({"content": "Hỏi thủ tục cấp lại căn cước", "category": "admin_question",
                              "answered": "Đã hướng dẫn làm lại căn cước tại Công an xã"}),
            ),
            now(),
        )
        .unwrap();
    assert_eq!(by_officer.status, Status::Resolved);
    let with_reason: TipPatch = serde_json::from_value(
        json!({"status": "verifying", "note": "người dân báo thêm tình tiết mới"}),
    )
    .unwrap();
    assert!(officer.update_tip(&id, &with_reason, now()).is_err());
    drop(officer);
    let mut chief = Station::open(
        dir.path(),
        &binhyen_store::Credentials::new("truong", crate::PASS),
    )
    .unwrap();
    let reopened = chief.update_tip(&id, &with_reason, now()).unwrap();
    assert_eq!(reopened.status, Status::Verifying);
    assert!(reopened
        .timeline
        .iter()
        .any(|a| a.note.as_deref() == Some("người dân báo thêm tình tiết mới")));
}
