use binhyen_store::changes::{pending, pending_count};
use serde_json::json;

use crate::{now, station, tip_input};

/// Every write leaves its change records in the same transaction; nothing is invisible to
/// sync.
#[test]
fn every_write_has_its_change_records() {
    let (_d, mut s) = station();
    // A new station holds two records: its first account and that officer's box key.
    let first = pending(s.conn(), 100).unwrap();
    let entities: Vec<&str> = first.iter().map(|c| c.entity.as_str()).collect();
    assert_eq!(entities, ["officer", "officer_key"]);
    let ids: Vec<String> = first.iter().map(|c| c.change_id.to_string()).collect();
    s.mark_acked_ids(&ids, now()).unwrap();
    assert_eq!(pending_count(s.conn()).unwrap(), 0);
    let tip = s
        .add_tip(
            &tip_input(json!({"content": "x", "reporter": {"name": "A", "secret": true}})),
            now(),
        )
        .unwrap();
    let changes = pending(s.conn(), 100).unwrap();
    let kinds: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c.entity.as_str(), c.op.as_str()))
        .collect();
    // The first identity of the commune makes its identity key, granted to the officer.
    assert_eq!(
        kinds,
        vec![
            ("identity_key", "insert"),
            ("identity_grant", "insert"),
            ("tip", "insert"),
            ("tip_reporter", "insert")
        ]
    );
    assert_eq!(changes[2].entity_id, tip.id.to_string());
    // The tip's own change record carries no reporter identity: it travels separately,
    // and sealed.
    assert!(!changes[2].data.to_string().contains("\"A\""));
    let name = changes[3].data["name"].as_str().unwrap();
    assert!(name.starts_with("sealed1:"), "{name}");
    assert!(changes[3].data["secret"] == json!(true));
    // Clock values strictly increase.
    assert!(changes.windows(2).all(|w| w[0].hlc < w[1].hlc));
}

/// The hybrid logical clock never goes backwards, even when the laptop's clock does.
#[test]
fn clock_set_back_still_orders_changes() {
    let (_d, mut s) = station();
    s.add_tip(&tip_input(json!({"content": "a"})), now())
        .unwrap();
    let earlier = now() - chrono::Duration::hours(5);
    s.add_tip(
        &tip_input(json!({"content": "b", "received_at": "2026-11-19T00:00:00Z"})),
        earlier,
    )
    .unwrap();
    let changes = pending(s.conn(), 100).unwrap();
    assert!(
        changes.windows(2).all(|w| w[0].hlc < w[1].hlc),
        "{changes:#?}"
    );
}

/// A write that fails half-way (here: the second tip of an import) rolls back the data and
/// its change records together.
#[test]
fn failed_write_rolls_back_data_and_changes_together() {
    let (_d, mut s) = station();
    let before = pending_count(s.conn()).unwrap();
    let err = s.import_tips(
        "{\"content\": \"ok\"}\n{\"content\": \"x\", \"hamlet\": \"không có\"}\n",
        now(),
    );
    assert!(err.is_err());
    assert_eq!(pending_count(s.conn()).unwrap(), before);
    assert_eq!(s.count_tips(&Default::default()).unwrap(), 0);
    let counter: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM register_counters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        counter, 0,
        "a rolled-back tip must not consume a register number"
    );
}

/// An update records the versions it started from, so that a receiver can tell a follow-up
/// edit from a concurrent one.
#[test]
fn updates_carry_their_base_versions() {
    let (_d, mut s) = station();
    let tip = s
        .add_tip(&tip_input(json!({"content": "a"})), now())
        .unwrap();
    let insert = pending(s.conn(), 10)
        .unwrap()
        .into_iter()
        .find(|c| c.entity == "tip")
        .unwrap();
    assert_eq!(insert.base, None);
    let patch = serde_json::from_value(json!({"content": "b"})).unwrap();
    s.update_tip(&tip.id.to_string(), &patch, now()).unwrap();
    let update = pending(s.conn(), 20)
        .unwrap()
        .into_iter()
        .find(|c| c.entity == "tip" && c.op == "update")
        .unwrap();
    let base = update.base.unwrap();
    assert_eq!(
        base["content"],
        json!(insert.hlc),
        "the edit started from the insert's version"
    );
    let versions =
        binhyen_store::changes::load_versions(s.conn(), "tip", &tip.id.to_string()).unwrap();
    assert_eq!(versions["content"], json!(update.hlc));
    assert_eq!(versions["status"], json!(insert.hlc));
}

/// A checksum changes with every write and is equal for equal histories.
#[test]
fn checksum_follows_the_writes() {
    let (_d, mut s) = station();
    let (empty, n) = s.checksum(true).unwrap();
    assert_eq!(n, 2, "the first account and its box key");
    s.add_tip(
        &tip_input(json!({"content": "a", "reporter": {"name": "X"}})),
        now(),
    )
    .unwrap();
    let (with_identity, n) = s.checksum(true).unwrap();
    let (without, m) = s.checksum(false).unwrap();
    assert_ne!(empty, with_identity);
    assert_ne!(with_identity, without);
    // + identity key, grant, tip, reporter; the reporter counts only with identity.
    assert_eq!((n, m), (6, 5));
}

/// The checksum runs after every sync over every record: leaving out refused inserts must be
/// a probe of their small index, not a read of each record's change rows.
#[test]
fn the_checksum_looks_up_refused_inserts_by_their_index() {
    let (_d, s) = station();
    for sql in [
        binhyen_store::replica::CHECKSUM_SQL,
        binhyen_store::replica::FULL_SCAN_SQL,
    ] {
        let plan: Vec<String> = s
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            plan.iter().any(|p| p.contains("changes_refused_inserts")),
            "{plan:?}"
        );
    }
}

/// The checksum's second version, computed by a scan of what the first counts.
fn sums_by_scan(s: &binhyen_store::Station, with_identity: bool) -> (String, u64) {
    let mut stmt = s
        .conn()
        .prepare(binhyen_store::replica::CHECKSUM_SQL)
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    binhyen_domain::checksum::sums_of(rows, with_identity).checksum()
}

fn assert_sums_follow(s: &binhyen_store::Station, when: &str) {
    for with_identity in [true, false] {
        assert_eq!(
            s.checksum_sums(with_identity).unwrap(),
            sums_by_scan(s, with_identity),
            "{when}, with identity: {with_identity}"
        );
    }
    assert_eq!(
        binhyen_store::sums::stored(s.conn()).unwrap(),
        binhyen_store::sums::scan(s.conn()).unwrap(),
        "{when}"
    );
}

/// The running sums (the checksum compared after each sync) follow every kind of write, own
/// or pulled or repaired, and leave out what the first version leaves out; a record changed
/// outside the program is found by a scan, which puts them right.
#[test]
fn the_running_sums_follow_every_write() {
    let (_d, mut a) = station();
    let (_e, mut b) = station();
    assert_sums_follow(&a, "new station");
    let tip = a
        .add_tip(
            &tip_input(json!({"content": "trộm xe máy", "reporter": {"name": "Nguyễn Văn A"}})),
            now(),
        )
        .unwrap();
    let id = tip.id.to_string();
    a.update_tip(
        &id,
        &serde_json::from_value(json!({"content": "trộm xe máy ban đêm", "urgency": "urgent"}))
            .unwrap(),
        now(),
    )
    .unwrap();
    a.import_tips("{\"content\": \"một\"}\n{\"content\": \"hai\"}\n", now())
        .unwrap();
    assert_sums_follow(&a, "own writes");
    let before = a.checksum_sums(true).unwrap();
    assert_ne!(before, b.checksum_sums(true).unwrap());

    // Pulled: every change of A, then the same page again (skipped).
    crate::relay_scope(&a, &mut b, true);
    crate::relay_scope(&a, &mut b, true);
    assert_sums_follow(&b, "pulled");

    // Repaired: B takes a record as the server holds it.
    let mut versions = binhyen_store::changes::load_versions(b.conn(), "tip", &id).unwrap();
    versions.insert("content".into(), json!("009000000000000-00000000-server"));
    let mut data = serde_json::Map::new();
    data.insert("content".into(), json!("bản của máy chủ"));
    b.adopt(&binhyen_store::replica::ServerRecord {
        entity: "tip".into(),
        entity_id: id.clone(),
        data,
        versions,
        deleted: None,
    })
    .unwrap();
    assert_sums_follow(&b, "adopted");

    // A record whose creation the server refused leaves the checksum, in both versions.
    let pending = pending(a.conn(), 100).unwrap();
    let last = pending.iter().rev().find(|c| c.op == "insert").unwrap();
    a.mark_rejected(last.seq, "từ chối", now()).unwrap();
    assert_sums_follow(&a, "refused");
    assert_ne!(a.checksum_sums(true).unwrap(), before);

    // Changed outside the program: the sums do not see it; the scan does, and refills them.
    a.conn()
        .execute(
            "UPDATE versions SET deleted = 'x' WHERE entity = 'tip' AND entity_id = ?1",
            [&id],
        )
        .unwrap();
    assert_ne!(a.checksum_sums(true).unwrap(), sums_by_scan(&a, true));
    assert!(a
        .doctor()
        .unwrap()
        .iter()
        .any(|c| c.name == "checksum_sums" && !c.ok));
    assert!(a.refill_checksum_sums().unwrap());
    assert!(!a.refill_checksum_sums().unwrap());
    assert_sums_follow(&a, "refilled");
    assert!(a.doctor().unwrap().iter().all(|c| c.ok));

    // The daily full comparison does both in one scan: the first version's digest (the
    // refused insert left out), and the sums put right.
    a.conn()
        .execute(
            "UPDATE versions SET deleted = NULL WHERE entity = 'tip' AND entity_id = ?1",
            [&id],
        )
        .unwrap();
    assert_ne!(a.checksum_sums(true).unwrap(), sums_by_scan(&a, true));
    assert_eq!(a.full_checksum(true).unwrap(), a.checksum(true).unwrap());
    assert_sums_follow(&a, "refilled by the full comparison");
    assert_eq!(a.full_checksum(false).unwrap(), a.checksum(false).unwrap());
    assert!(!a.refill_checksum_sums().unwrap());
    assert!(a.doctor().unwrap().iter().all(|c| c.ok));
}
