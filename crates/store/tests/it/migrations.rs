use binhyen_store::migrate::SCHEMA_VERSION;
use binhyen_store::Station;
use serde_json::json;

use crate::{now, tip_input};

/// A station written by the first release (schema 1, committed as a fixture) opens with
/// this binary: migrated in place, its data intact and still usable.
#[test]
fn upgrade_from_the_v1_fixture() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let dir = tempfile::tempdir().unwrap();
    for f in ["station.db", "keys.json"] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    // Before accounts, a station had one passphrase: whoever opens it with it becomes its
    // first account (a chief), with the passphrase as password.
    let creds = binhyen_store::Credentials::new("truong", "fixture-passphrase");
    let s = Station::open(dir.path(), &creds).unwrap();
    assert_eq!(s.info().schema_version, SCHEMA_VERSION);
    assert_eq!(s.session().role, binhyen_domain::access::Role::Chief);
    drop(s);
    let keys = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
    assert!(
        keys.contains("\"truong\"") && !keys.contains("\"station\""),
        "{keys}"
    );
    let mut s = Station::open(dir.path(), &creds).unwrap();
    let tips = s.list_tips(&Default::default()).unwrap();
    assert_eq!(tips.len(), 2);
    assert!(tips
        .iter()
        .all(|t| t.hamlet_name.as_deref() == Some("Buôn Ea Kmar")));
    assert_eq!(s.list_people().unwrap()[0].full_name, "Y Bliêng Niê");
    // Tables of version 2 exist and the old data can be written again.
    let links: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM tip_links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(links, 0);
    let tip = s
        .add_tip(
            &tip_input(json!({"content": "sau nâng cấp", "hamlet": "buon ea kmar"})),
            now(),
        )
        .unwrap();
    assert_eq!(tip.register_no, "0001/2026/M1");
    assert!(s.doctor().unwrap().iter().all(|c| c.ok));
    // Version 3 gave every record written before it its versions, from the change log.
    let versioned: i64 = s
        .conn()
        .query_row(
            "SELECT count(*) FROM versions WHERE entity = 'tip'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(versioned, 3);
    let old_tip = &tips[0].id.to_string();
    let v = binhyen_store::changes::load_versions(s.conn(), "tip", old_tip).unwrap();
    assert!(
        v.contains_key("content") && v.contains_key("updated_at"),
        "{v:?}"
    );
    // Version 13 stores them grouped by clock value, and they read back the same.
    let stored: String = s
        .conn()
        .query_row(
            "SELECT fields FROM versions WHERE entity = 'tip' AND entity_id = ?1",
            [old_tip],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored.starts_with("[[\""), "{stored}");
    assert_eq!(binhyen_domain::versions::parse(&stored), v);
    // Version 14 gave the checksum its running sums, filled from every record's versions and
    // kept by the writes since.
    let sums = binhyen_store::sums::stored(s.conn()).unwrap();
    assert_eq!(sums.get("tip").map(|t| t.n), Some(3), "{sums:?}");
    assert_eq!(sums, binhyen_store::sums::scan(s.conn()).unwrap());
}

/// A record's versions (one clock per field) are stored grouped by clock value, about 300
/// bytes for a tip against 1,000 as an object, and in the table's own pages. Kept as objects
/// in a WITHOUT ROWID table (schema 3 to 12), each tip's spilled into an overflow page of
/// its own, most of it empty: the table was about 3.5 times its data, and each of those
/// pages was encrypted and written on every sync.
#[test]
fn versions_fit_in_their_pages() {
    let (_dir, s) = crate::demo_station();
    let overflow = |s: &Station| -> (i64, i64) {
        s.conn()
            .query_row(
                "SELECT count(*) FILTER (WHERE pagetype = 'overflow'), count(*)
                 FROM dbstat WHERE name = 'versions'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let longest: i64 = s
        .conn()
        .query_row(
            "SELECT max(length(fields)) FROM versions WHERE entity = 'tip'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(longest < 400, "a tip's versions: {longest} bytes");
    let (spilled, pages) = overflow(&s);
    assert_eq!(spilled, 0, "{spilled} of {pages} pages are overflow pages");
}
