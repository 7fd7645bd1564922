//! The audit trail: append-only, hash-chained, and any tampering is found.

use binhyen_store::audit::Action;
use binhyen_store::Station;
use serde_json::json;

use crate::{now, station, tip_input};

/// A station with a few audited actions: a tip recorded, changed, its reporter revealed.
fn with_history() -> (tempfile::TempDir, Station) {
    let (d, mut s) = station();
    let tip = s
        .add_tip(
            &tip_input(json!({"content": "Tố giác đánh bạc ở thôn 2",
                              "reporter": {"name": "Người Bí Mật", "phone": "0912345678", "secret": true}})),
            now(),
        )
        .unwrap();
    let patch =
        serde_json::from_value(json!({"status": "verifying", "note": "Đi xác minh"})).unwrap();
    s.update_tip(&tip.id.to_string(), &patch, now()).unwrap();
    s.reveal_tip(&tip.id.to_string(), "lập biên bản tiếp nhận", now())
        .unwrap();
    s.audit(Action::RosterExport, None, json!({"bytes": 10}), now())
        .unwrap();
    (d, s)
}

/// An attacker who holds the key can lift the guards; the chain still tells.
fn unguard(s: &Station) {
    s.conn()
        .execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
}

#[test]
fn actions_are_recorded_with_who_and_why_and_the_chain_holds() {
    let (_d, s) = with_history();
    let entries = s.audit_entries(100).unwrap();
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        // The first is the station's first account, made with it.
        [
            "account.change",
            "tip.create",
            "tip.update",
            "identity.view",
            "roster.export"
        ]
    );
    // Who acted: the signed-in officer's username.
    assert!(entries.iter().all(|e| e.actor == "truong"));
    let reveal = &entries[1];
    assert!(reveal.detail.contains("lập biên bản"), "{reveal:?}");
    // The identity itself never enters the trail.
    for e in &entries {
        assert!(!e.detail.contains("Người Bí Mật") && !e.detail.contains("0912345678"));
    }
    let check = s.verify_audit().unwrap();
    assert!(check.ok, "{check:?}");
    assert_eq!(check.entries, 5);
}

#[test]
fn the_trail_refuses_updates_and_deletes() {
    let (_d, s) = with_history();
    assert!(s
        .conn()
        .execute("UPDATE audit_log SET actor = 'ai đó' WHERE seq = 1", [])
        .is_err());
    assert!(s
        .conn()
        .execute("DELETE FROM audit_log WHERE seq = 1", [])
        .is_err());
    assert!(s.verify_audit().unwrap().ok);
}

#[test]
fn an_edited_entry_is_found() {
    let (_d, s) = with_history();
    unguard(&s);
    s.conn()
        .execute(
            "UPDATE audit_log SET detail = '{\"reason\":\"không có\"}' WHERE seq = 3",
            [],
        )
        .unwrap();
    let check = s.verify_audit().unwrap();
    assert!(!check.ok);
    assert_eq!(check.first_bad_seq, Some(3));
    assert!(check.problem.unwrap().contains("bị sửa"));
}

#[test]
fn a_removed_entry_is_found() {
    let (_d, s) = with_history();
    unguard(&s);
    s.conn()
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    let check = s.verify_audit().unwrap();
    assert!(!check.ok);
    assert_eq!(check.first_bad_seq, Some(3));
}

#[test]
fn reordered_entries_are_found() {
    let (_d, s) = with_history();
    unguard(&s);
    // Swap entries 2 and 3, numbers and all.
    s.conn()
        .execute_batch(
            "UPDATE audit_log SET seq = -2 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = -2;",
        )
        .unwrap();
    let check = s.verify_audit().unwrap();
    assert!(!check.ok, "{check:?}");
    assert_eq!(check.first_bad_seq, Some(2));
}

#[test]
fn a_cut_tail_is_found() {
    let (_d, s) = with_history();
    unguard(&s);
    s.conn()
        .execute("DELETE FROM audit_log WHERE seq >= 3", [])
        .unwrap();
    let check = s.verify_audit().unwrap();
    assert!(!check.ok);
    assert!(check.problem.unwrap().contains("phần cuối"));
}

#[test]
fn an_inserted_entry_is_found() {
    let (_d, s) = with_history();
    unguard(&s);
    s.conn()
        .execute_batch(
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 2;
             UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000;
             INSERT INTO audit_log(seq, at, actor, action, target, detail, prev_hash, hash)
             SELECT 2, at, 'kẻ gian', 'tip.create', NULL, '{}', prev_hash, hash FROM audit_log WHERE seq = 3;",
        )
        .unwrap();
    assert!(!s.verify_audit().unwrap().ok);
}
