use binhyen_store::{Station, StoreError};

use crate::{now, opts, station, tip_input, PASS};

#[test]
fn init_then_open_with_the_passphrase() {
    let (dir, s) = station();
    let info = s.info().clone();
    assert_eq!(info.unit_name, "Xã Cư M'gar");
    assert_eq!(info.province_name.as_deref(), Some("Tỉnh Đắk Lắk"));
    drop(s);
    let again =
        Station::open(dir.path(), &binhyen_store::Credentials::new("truong", PASS)).unwrap();
    assert_eq!(again.info().station_id, info.station_id);
}

#[test]
fn wrong_passphrase_is_refused() {
    let (dir, s) = station();
    drop(s);
    let err = Station::open(
        dir.path(),
        &binhyen_store::Credentials::new("truong", "không đúng"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "wrong_credentials");
    let err = Station::open(
        dir.path(),
        &binhyen_store::Credentials::new("khongco", PASS),
    )
    .unwrap_err();
    assert_eq!(
        err.code(),
        "wrong_credentials",
        "an unknown username says no more"
    );
}

#[test]
fn passphrase_change_keeps_the_data_readable() {
    let (dir, mut s) = station();
    s.add_tip(
        &tip_input(serde_json::json!({"content": "Trộm bò ở buôn"})),
        now(),
    )
    .unwrap();
    s.change_password(PASS, "mật khẩu mới 2026", now()).unwrap();
    drop(s);
    assert!(Station::open(dir.path(), &binhyen_store::Credentials::new("truong", PASS)).is_err());
    let s = Station::open(
        dir.path(),
        &binhyen_store::Credentials::new("truong", "mật khẩu mới 2026"),
    )
    .unwrap();
    assert_eq!(s.count_tips(&Default::default()).unwrap(), 1);
}

#[test]
fn init_refuses_to_overwrite_a_station() {
    let (dir, _s) = station();
    let err = Station::init(dir.path(), &opts("24280", 1, false), now()).unwrap_err();
    assert!(matches!(err, StoreError::StationExists(_)));
}

#[test]
fn unknown_unit_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    for code in ["99999", "abc", "2428"] {
        let err = Station::init(dir.path(), &opts(code, 1, false), now()).unwrap_err();
        assert_eq!(err.code(), "unknown_unit", "{code}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn weak_passphrase_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts("24280", 1, false);
    o.first_officer.password = "123".into();
    assert_eq!(
        Station::init(dir.path(), &o, now()).unwrap_err().code(),
        "invalid"
    );
    assert!(!Station::exists(dir.path()));
}

#[test]
fn province_level_station() {
    let dir = tempfile::tempdir().unwrap();
    let s = Station::init(dir.path(), &opts("66", 1, false), now()).unwrap();
    assert_eq!(s.info().unit_name, "Tỉnh Đắk Lắk");
    assert_eq!(
        binhyen_store::units::children(s.conn(), "66")
            .unwrap()
            .len(),
        102
    );
}

/// The database file (and its WAL) hold no readable text: SQLCipher encrypts every page.
#[test]
fn database_files_hold_no_readable_vietnamese() {
    let (dir, mut s) = station();
    let secret = "Nguyễn Văn Tố Giác báo tin trộm bò ở Buôn Ea Kmar";
    s.add_tip(
        &tip_input(serde_json::json!({"content": secret, "reporter": {"name": "Hoàng Thị Bí Mật", "phone": "0912345678", "secret": true}})),
        now(),
    )
    .unwrap();
    let mut files = vec![];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    assert!(files.iter().any(|(p, _)| p.ends_with("station.db")));
    for (path, bytes) in &files {
        for needle in [
            "Buôn",
            "Nguyễn",
            "Bí Mật",
            "trộm bò",
            "Cư M'gar",
            "SQLite format 3",
            "+84912345678",
            "buon ea kmar",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} contains {needle:?}",
                path.display()
            );
        }
    }
}

#[test]
fn schema_newer_than_the_binary_is_refused_untouched() {
    let (dir, s) = station();
    s.conn().pragma_update(None, "user_version", 999).unwrap();
    drop(s);
    let before = std::fs::read(dir.path().join("station.db")).unwrap();
    let err =
        Station::open(dir.path(), &binhyen_store::Credentials::new("truong", PASS)).unwrap_err();
    assert_eq!(err.code(), "schema_too_new");
    assert!(err.to_string().contains("999"));
    assert_eq!(
        std::fs::read(dir.path().join("station.db")).unwrap(),
        before
    );
}

#[test]
fn doctor_passes_on_a_demo_station_and_finds_damage() {
    let (_dir, s) = crate::demo_station();
    let checks = s.doctor().unwrap();
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    // A tip whose change record is gone would never reach the server.
    s.conn()
        .execute("DELETE FROM changes WHERE entity = 'tip' AND entity_id = (SELECT id FROM tips LIMIT 1)", [])
        .unwrap();
    s.conn()
        .execute("UPDATE register_counters SET last_seq = 0", [])
        .unwrap();
    let bad: Vec<String> = s
        .doctor()
        .unwrap()
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| c.name)
        .collect();
    assert_eq!(bad, vec!["change_log", "register_numbers"]);
}

/// A second laptop of the commune holds the first one's work, pulled from the server:
/// those records have no change of their own there and the first laptop's register numbers
/// are above the second's counters, and neither is a fault. Its own records still are.
#[test]
fn doctor_passes_on_a_laptop_that_pulled_another_laptops_work() {
    let (_d1, one) = crate::demo_station();
    let d2 = tempfile::tempdir().unwrap();
    let mut two = Station::init(d2.path(), &crate::opts("24280", 2, false), now()).unwrap();
    crate::relay(&one, &mut two);
    let own = two
        .add_tip(
            &crate::tip_input(serde_json::json!({"content": "Tin báo của máy thứ hai"})),
            now(),
        )
        .unwrap();
    assert!(two.list_tips(&Default::default()).unwrap().len() > 300);
    let checks = two.doctor().unwrap();
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");

    // Its own tip without its change, and its own counter behind, are still found.
    two.conn()
        .execute(
            "DELETE FROM changes WHERE entity = 'tip' AND entity_id = ?1",
            [own.id.to_string()],
        )
        .unwrap();
    two.conn()
        .execute(
            "UPDATE register_counters SET last_seq = 0 WHERE device_no = 2",
            [],
        )
        .unwrap();
    let bad: Vec<(String, String)> = two
        .doctor()
        .unwrap()
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| (c.name, c.detail))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert_eq!(bad[0].0, "change_log");
    assert!(bad[0].1.starts_with("1 bản ghi"), "{}", bad[0].1);
    assert_eq!(
        bad[1],
        (
            "register_numbers".into(),
            "1 bộ đếm số sổ thấp hơn số đã cấp: số mới có thể trùng.".into()
        )
    );
}

#[test]
fn demo_station_is_realistic() {
    let (_dir, s) = crate::demo_station();
    let tips = s.list_tips(&Default::default()).unwrap();
    assert_eq!(tips.len(), 300);
    let statuses: std::collections::HashSet<_> = tips.iter().map(|t| t.status).collect();
    let categories: std::collections::HashSet<_> = tips.iter().map(|t| t.category).collect();
    let channels: std::collections::HashSet<_> = tips.iter().map(|t| t.channel).collect();
    assert!(statuses.len() >= 5, "{statuses:?}");
    assert_eq!(categories.len(), 7);
    assert!(channels.len() >= 7);
    let oldest = tips.iter().map(|t| t.received_at).min().unwrap();
    assert!(now() - oldest > chrono::Duration::days(300));
    assert!(tips.iter().all(|t| t.received_at <= now()));
    let hamlets = s.list_hamlets().unwrap();
    assert!(hamlets.iter().any(|h| h.name.starts_with("Buôn")));
    assert!(hamlets.iter().any(|h| h.name.starts_with("Tổ dân phố")));
    assert!(s.list_people().unwrap().len() >= 30);
}

/// While a checkpointer copies the WAL back (a long pull), the station's own commits copy
/// nothing; once it has copied everything and the station copies by itself again, the WAL
/// file is cut back to its limit, and nothing written is lost.
#[test]
fn a_checkpointer_copies_the_wal_and_leaves_it_small() {
    let (dir, s) = station();
    let wal = dir.path().join("station.db-wal");
    let size = || std::fs::metadata(&wal).unwrap().len() as i64;
    let mut c = s.checkpointer().unwrap();
    s.conn()
        .execute_batch("CREATE TABLE filler(x BLOB NOT NULL)")
        .unwrap();
    for _ in 0..24 {
        s.conn()
            .execute("INSERT INTO filler VALUES (randomblob(1048576))", [])
            .unwrap();
    }
    assert!(size() > 24 << 20, "copied meanwhile: {}", size());
    let (log, copied) = c.checkpoint().unwrap();
    assert_eq!(log, copied, "everything committed is copied");
    s.resume_checkpoints().unwrap();
    s.conn()
        .execute("INSERT INTO filler VALUES (randomblob(1000))", [])
        .unwrap();
    assert!(
        size() <= binhyen_store::station::WAL_SIZE_LIMIT,
        "{} bytes left",
        size()
    );
    drop(c);
    drop(s);
    let s = Station::open(dir.path(), &binhyen_store::Credentials::new("truong", PASS)).unwrap();
    let n: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 25);
}
