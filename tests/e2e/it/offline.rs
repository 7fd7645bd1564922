//! With real processes: offline bundles carried between a station and the server, the
//! server's certificate pinned from the provisioning file, plain HTTP refused away from
//! loopback, and a revoked station locked at its next contact.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::sync::{bin, enroll, grant_waiting, provision, run, server_cmd, start_server, Laptop};

const COMMUNE: &str = "24280";

fn setup(work: &Path) -> String {
    let db = format!("sqlite:{}", work.join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    db
}

/// What `binhyen-server audit verify` says of the first station's chain.
fn first_chain_checked(db: &str) -> Value {
    let out = server_cmd(db, &["audit", "verify"]);
    serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap()
}

fn err_code(out: &std::process::Output) -> String {
    let err: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|_| panic!("stderr: {}", String::from_utf8_lossy(&out.stderr)));
    err["error"]["code"].as_str().unwrap().to_string()
}

fn err_message(out: &std::process::Output) -> String {
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    err["error"]["message"].as_str().unwrap().to_string()
}

fn bundle_import(db: &str, file: &Path, reply: &Path) -> std::process::Output {
    run(crate::sync::server_bin(db).args([
        "bundle",
        "import",
        "--db",
        db,
        file.to_str().unwrap(),
        "--reply",
        reply.to_str().unwrap(),
    ]))
}

fn pending(l: &Laptop) -> u64 {
    l.ok(&["status"], None)["pending_changes"].as_u64().unwrap()
}

#[test]
fn offline_bundles_carry_changes_both_ways_and_twice_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    // Enrolled at the province office, online; then back to a commune with no network.
    let a1 = enroll(&db, &server, COMMUNE, w);
    let a2 = enroll(&db, &server, COMMUNE, w);
    // The same day the chief makes the commune's identity key on the first laptop and
    // grants it to the second: files travel sealed to it, and both laptops open them.
    a1.ok(&["account", "keys", "--create"], None);
    a1.sync();
    a2.sync();
    a1.sync();
    assert!(grant_waiting(&a1) >= 1);
    a1.sync();
    a2.sync();
    let on_a2 = a2.ok(
        &["tip", "add"],
        Some(r#"{"content": "Ghi ở máy 2, có mạng"}"#),
    );
    let a2_tip = on_a2["id"].as_str().unwrap().to_string();
    // A scan attached on the laptop that has a network reaches the server online.
    let scan = w.join("bien-ban.pdf");
    let scan_bytes = b"%PDF-1.7\n% Bien ban tiep nhan, may 2\n%%EOF\n".to_vec();
    std::fs::write(&scan, &scan_bytes).unwrap();
    a2.ok(&["tip", "attach", &a2_tip, scan.to_str().unwrap()], None);
    assert_eq!(a2.sync()["files_sent"], 1);

    let on_a1 = a1.ok(
        &["tip", "add"],
        Some(r#"{"content": "Trộm gà ở thôn 5, ghi khi mất mạng"}"#),
    );
    let a1_tip = on_a1["id"].as_str().unwrap().to_string();
    // A photo attached with no network travels on the stick with the changes.
    let photo = w.join("chuong-ga.pdf");
    let photo_bytes = b"%PDF-1.7\n% Anh chuong ga bi pha, may 1\n%%EOF\n".to_vec();
    std::fs::write(&photo, &photo_bytes).unwrap();
    a1.ok(&["tip", "attach", &a1_tip, photo.to_str().unwrap()], None);
    a1.ok(
        &["tip", "add"],
        Some(r#"{"content": "Hỏi thủ tục đăng ký tạm trú"}"#),
    );
    let waiting = pending(&a1);
    assert!(waiting >= 2);
    let push = w.join("tram-a1.byb");
    let export = a1.ok(&["bundle", "export", "--out", push.to_str().unwrap()], None);
    assert_eq!(export["changes"].as_u64().unwrap(), waiting);
    assert_eq!(export["files"], 1, "{export}");
    assert_eq!(
        pending(&a1),
        waiting,
        "changes stay pending until the reply"
    );
    // Sealed: the tip text is not readable in the file.
    let raw = std::fs::read(&push).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("Trộm gà"));

    // Any edit or cut is refused, and nothing is applied.
    let mut tampered = raw.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x40;
    let bad = w.join("tampered.byb");
    std::fs::write(&bad, &tampered).unwrap();
    let out = bundle_import(&db, &bad, &w.join("never.byb"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bị sửa"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&bad, &raw[..raw.len() / 2]).unwrap();
    let out = bundle_import(&db, &bad, &w.join("never.byb"));
    assert!(!out.status.success());
    assert!(
        !w.join("never.byb").exists(),
        "no reply for a refused bundle"
    );

    // The server applies it; a second import of the same bundle changes nothing.
    let reply = w.join("tra-loi.byb");
    let out = bundle_import(&db, &push, &reply);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accepted"].as_u64().unwrap(), waiting, "{summary}");
    // The photo is kept; the other laptop's scan goes back with its record.
    assert_eq!(
        (&summary["files_received"], &summary["files_sent"]),
        (&json!(1), &json!(1)),
        "{summary}"
    );
    let reply2 = w.join("tra-loi-2.byb");
    let out = bundle_import(&db, &push, &reply2);
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accepted"], 0, "{summary}");
    assert_eq!(summary["duplicates"].as_u64().unwrap(), waiting);

    // Another station cannot open this station's reply; a push bundle is not a reply.
    let out = a2.cli(&["bundle", "import", reply.to_str().unwrap()], None);
    assert_eq!(err_code(&out), "bundle_tampered");
    let out = a1.cli(&["bundle", "import", push.to_str().unwrap()], None);
    assert_eq!(err_code(&out), "bundle_wrong_kind");

    // The station applies the reply: its changes are acknowledged and the other laptop's
    // tip arrives. Importing it again, or the second reply, changes nothing.
    let report = a1.ok(&["bundle", "import", reply.to_str().unwrap()], None);
    assert_eq!(report["pushed"].as_u64().unwrap(), waiting, "{report}");
    assert!(report["pulled"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["checksum_ok"], true, "{report}");
    assert_eq!(
        (&report["files_sent"], &report["files_received"]),
        (&json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(pending(&a1), 0);
    let tips = a1.tips();
    assert_eq!(tips.len(), 3);
    // The scan attached on the other laptop is here, whole.
    let shown = a1.ok(&["tip", "show", &a2_tip], None);
    assert_eq!(
        a1.first_file(&shown, &w.join("ban-sao-may-1.pdf")),
        scan_bytes
    );
    for again in [&reply, &reply2] {
        let report = a1.ok(&["bundle", "import", again.to_str().unwrap()], None);
        assert_eq!(
            (report["pushed"].as_u64(), report["pulled"].as_u64()),
            (Some(0), Some(0)),
            "{report}"
        );
        assert_eq!(report["checksum_ok"], true);
        assert_eq!(a1.tips(), tips);
    }
    // Online again later: nothing to resend (the photo included), and the other laptop
    // has everything, the photo carried on the stick too.
    let online = a1.sync();
    assert_eq!(
        (&online["pushed"], &online["files_sent"]),
        (&json!(0), &json!(0)),
        "{online}"
    );
    assert_eq!(a2.sync()["files_received"], 1);
    assert_eq!(a2.tips().len(), 3);
    let shown = a2.ok(&["tip", "show", &a1_tip], None);
    assert_eq!(shown["attachments"][0]["available"], true, "{shown}");
}

#[test]
fn the_pinned_authority_is_the_only_one_trusted() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    let file = w.join("cap-phep.json");
    provision(&db, COMMUNE, &server.url, &file, &[]);
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(good["server_ca_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(good["server_ca_sha256"].as_str().unwrap().len(), 64);

    // Another server's authority (an impostor, say) in the file, under the fingerprint the
    // province read out: refused before anything is sent.
    let other_db = format!("sqlite:{}", w.join("other.db").display());
    let other = server_cmd(&other_db, &["ca"]);
    let other_ca = String::from_utf8(other.stdout).unwrap();
    let other_fingerprint = String::from_utf8(other.stderr)
        .unwrap()
        .split("SHA-256: ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let mut forged = good.clone();
    forged["server_ca_pem"] = Value::String(other_ca);
    let forged_file = w.join("gia.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let laptop = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = laptop.cli(&["enroll", forged_file.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert_eq!(err_code(&out), "bad_provisioning");
    assert!(
        err_message(&out).contains("dấu vân tay"),
        "{}",
        err_message(&out)
    );
    // With its own fingerprint too: the server does not present it, and nothing is sent.
    forged["server_ca_sha256"] = Value::String(other_fingerprint);
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let out = laptop.cli(&["enroll", forged_file.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert_eq!(err_code(&out), "untrusted_server");
    assert!(err_message(&out).contains("chứng chỉ"));

    // Plain HTTP to another machine: refused before anything is sent.
    let mut plain = good.clone();
    plain["server_url"] = Value::String("http://10.20.30.40:8443".into());
    let plain_file = w.join("http.json");
    std::fs::write(&plain_file, plain.to_string()).unwrap();
    let out = laptop.cli(&["enroll", plain_file.to_str().unwrap()], None);
    assert_eq!(err_code(&out), "bad_provisioning");
    assert!(err_message(&out).contains("HTTPS"));

    // A demo station never enrols, whatever the file: its made-up data stays out of the
    // province's.
    let demo = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    demo.ok(&["init", "--unit", COMMUNE, "--demo"], None);
    let out = demo.cli(&["enroll", file.to_str().unwrap()], None);
    assert_eq!(err_code(&out), "demo_station");
    assert!(err_message(&out).contains("dùng thử"));

    // The genuine file still works (the token was not spent by the refused attempts).
    laptop.ok(&["enroll", file.to_str().unwrap()], None);
    assert!(laptop.sync()["checksum_ok"].as_bool().unwrap());

    // And the server will not serve plain HTTP away from loopback.
    let out = run(crate::sync::server_bin(&db).args([
        "serve",
        "--db",
        &db,
        "--listen",
        "0.0.0.0:0",
        "--insecure-http",
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn a_revoked_station_is_locked_at_its_next_contact_and_a_new_enrolment_unlocks_it() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    let a = enroll(&db, &server, COMMUNE, w);
    a.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tin trước khi bị thu hồi"}"#),
    );
    a.sync();
    a.ok(&["tip", "add"], Some(r#"{"content": "Tin chưa gửi"}"#));

    let stations: Value =
        serde_json::from_slice(&server_cmd(&db, &["station", "list", "--json"]).stdout).unwrap();
    let id = stations[0]["id"].as_str().unwrap().to_string();
    server_cmd(&db, &["station", "revoke", &id]);

    let out = a.cli(&["sync"], None);
    assert!(!out.status.success());
    assert_eq!(err_code(&out), "revoked");
    // Locked from now on, for reading too.
    for args in [&["tip", "list"][..], &["status"][..]] {
        let out = a.cli(args, None);
        assert!(!out.status.success(), "{args:?} works on a revoked station");
        assert_eq!(err_code(&out), "revoked");
        assert!(err_message(&out).contains("thu hồi"));
    }
    // The bundle path is closed too.
    let out = a.cli(
        &[
            "bundle",
            "export",
            "--out",
            w.join("x.byb").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(err_code(&out), "revoked");

    // The province issues a new provisioning file: the lock is lifted, nothing was lost,
    // and the unsent tip goes through.
    let file = w.join("cap-lai.json");
    provision(&db, COMMUNE, &server.url, &file, &["--device", "1"]);
    a.ok(&["enroll", file.to_str().unwrap()], None);
    assert_eq!(a.tips().len(), 2);
    let report = a.sync();
    assert!(report["pushed"].as_u64().unwrap() >= 1, "{report}");
}

/// `kill -9` in the middle of a sync: the next sync sends only what was not acknowledged,
/// and everything arrives once.
#[test]
fn a_sync_killed_mid_way_resumes_without_resending_what_was_acknowledged() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    let a = enroll(&db, &server, COMMUNE, w);
    let b = enroll(&db, &server, COMMUNE, w);
    let tips = w.join("tips.jsonl");
    let lines: Vec<String> = (0..2000)
        .map(|i| {
            serde_json::json!({"content": format!("Tin số {i}: trộm bò ở Buôn Ea Kmar, đêm qua"),
                               "category": "crime_report", "channel": "zalo"})
            .to_string()
        })
        .collect();
    std::fs::write(&tips, lines.join("\n")).unwrap();
    a.ok(&["tip", "import", tips.to_str().unwrap()], None);
    let total = pending(&a);

    let mut child = Command::new(bin("binhyen"))
        .arg("--data-dir")
        .arg(a.dir.path())
        .args(["--json", "sync"])
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", crate::sync::PASS)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let left = loop {
        let left = pending(&a);
        if left < total || child.try_wait().unwrap().is_some() {
            break left;
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = left.min(pending(&a));
    assert!(
        left > 0 && left < total,
        "the cut fell mid-way ({left} of {total} waiting)"
    );

    // The province sees how much the station still had to send when it was cut.
    let waiting = |db: &str| -> Vec<Option<u64>> {
        let list: Value =
            serde_json::from_slice(&server_cmd(db, &["station", "list", "--json"]).stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["changes_waiting"].as_u64())
            .collect()
    };
    let said = waiting(&db);
    // Only the laptop that pushed said anything; what it said is what it still held, less
    // at most the batch in flight at the cut (which the server may have applied).
    let said: Vec<u64> = said.into_iter().flatten().collect();
    assert_eq!(said.len(), 1, "{said:?}");
    let max_batch = binhyen_protocol::wire::MAX_BATCH as u64;
    assert!(
        said[0] <= left && said[0] + max_batch >= left,
        "{said:?} for {left} waiting"
    );

    let report = a.sync();
    let pushed = report["pushed"].as_u64().unwrap();
    assert_eq!(waiting(&db).iter().flatten().sum::<u64>(), 0);
    // What was acknowledged is not sent again; at most the batch in flight at the cut
    // (applied by the server, unacknowledged here) comes back as duplicates.
    assert!(
        pushed >= left && pushed <= left + 250,
        "resumed sync sent {pushed} for {left} waiting"
    );
    assert_eq!(pending(&a), 0);
    let got = b.sync();
    assert_eq!(got["pulled"].as_u64().unwrap(), total, "{got}");
    assert_eq!(b.ok(&["info"], None)["tips"], 2000);
}

/// The server keeps a copy of each laptop's audit trail: a trail rewritten on the laptop
/// (every hash recomputed, so that it holds there) is refused at the next sync.
#[test]
fn the_server_holds_each_audit_trail_and_refuses_a_rewritten_one() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    let a = enroll(&db, &server, COMMUNE, w);
    let tip = a.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tố giác đánh bạc", "reporter": {"name": "Người Giấu Tên", "secret": true}}"#),
    );
    a.ok(
        &[
            "tip",
            "show",
            tip["id"].as_str().unwrap(),
            "--reason",
            "xác minh lời khai",
        ],
        None,
    );
    a.sync();
    let line = first_chain_checked(&db);
    assert_eq!(line["ok"], true, "{line}");
    assert!(line["entries"].as_u64().unwrap() >= 3, "{line}");

    // Someone with the key rewrites who looked at the identity, and re-chains every hash.
    {
        let s = binhyen_store::Station::open(
            a.dir.path(),
            &binhyen_store::Credentials::new("truong", crate::sync::PASS),
        )
        .unwrap();
        let c = s.conn();
        c.execute_batch("DROP TRIGGER audit_log_no_update;")
            .unwrap();
        c.execute(
            "UPDATE audit_log SET actor = 'người khác' WHERE action = 'identity.view'",
            [],
        )
        .unwrap();
        let rows: Vec<(i64, String, String, String, Option<String>, String)> = c
            .prepare("SELECT seq, at, actor, action, target, detail FROM audit_log ORDER BY seq")
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut prev: String = c
            .query_row("SELECT prev_hash FROM audit_log WHERE seq = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        for (seq, at, actor, action, target, detail) in rows {
            let hash = binhyen_domain::audit::entry_hash(
                &prev,
                seq,
                &at,
                &actor,
                &action,
                target.as_deref(),
                &detail,
            );
            c.execute(
                "UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
                (seq, prev.as_str(), hash.as_str()),
            )
            .unwrap();
            c.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'audit.head'",
                [format!("{seq}:{hash}")],
            )
            .unwrap();
            prev = hash;
        }
    }
    // It holds on the laptop...
    assert_eq!(a.ok(&["audit", "verify"], None)["ok"], true);
    // ...but not against the server's copy.
    let out = a.cli(&["sync"], None);
    assert!(!out.status.success());
    assert_eq!(err_code(&out), "audit_rewritten");
    // Nor does a bundle on a USB stick get past it: refused whole, no reply written.
    let push = w.join("sau-khi-sua.byb");
    a.ok(&["bundle", "export", "--out", push.to_str().unwrap()], None);
    let reply = w.join("khong-co.byb");
    let out = bundle_import(&db, &push, &reply);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Nhật ký kiểm tra"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!reply.exists());
}

/// A laptop that never sees the network anchors its audit trail with its bundles: the server
/// holds the trail, the look at a reporter included, as it would after an online sync.
#[test]
fn a_laptop_with_no_network_anchors_its_audit_trail_with_its_bundles() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    let a = enroll(&db, &server, COMMUNE, w);
    drop(server);
    let tip = a.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tố giác buôn lậu", "reporter": {"name": "Người Báo Tin", "secret": true}}"#),
    );
    a.ok(
        &[
            "tip",
            "show",
            tip["id"].as_str().unwrap(),
            "--reason",
            "gọi lại xác minh lời khai",
        ],
        None,
    );
    let looked: i64 = a
        .ok(&["audit", "list"], None)
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "identity.view")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let push = w.join("tram.byb");
    a.ok(&["bundle", "export", "--out", push.to_str().unwrap()], None);
    let reply = w.join("tra-loi.byb");
    let out = bundle_import(&db, &push, &reply);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.ok(&["bundle", "import", reply.to_str().unwrap()], None);
    let line = first_chain_checked(&db);
    assert_eq!(line["ok"], true, "{line}");
    assert!(line["entries"].as_i64().unwrap() >= looked, "{line}");
}

/// A copy of the server's database (a dump sent for support, a backup left on a share) gives
/// away none of the server's secrets: its authority's private key, the stations' recovery
/// codes and bundle keys are sealed under a key file kept apart (0600). Without that file
/// the server refuses to start and says why; reading a recovery code out is on the record.
#[test]
fn a_copy_of_the_server_database_gives_away_no_secret() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = setup(w);
    let server = start_server(&db);
    let a = enroll(&db, &server, COMMUNE, w);
    a.sync();
    let stations: Value =
        serde_json::from_slice(&server_cmd(&db, &["station", "list", "--json"]).stdout).unwrap();
    let id = stations[0]["id"].as_str().unwrap().to_string();
    let code = String::from_utf8(server_cmd(&db, &["station", "recovery-code", &id]).stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(code.len(), 29, "{code}");
    drop(server);

    // The files hold secrets: the owner's only.
    let key_file = w.join("server.key");
    for file in [&key_file, &w.join("server.db")] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    // The database, read as a copy would be: no recovery code, no private key, no bundle key.
    let mut raw = Vec::new();
    for f in ["server.db", "server.db-wal"] {
        raw.extend(std::fs::read(w.join(f)).unwrap_or_default());
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        !raw.contains(&code),
        "the recovery code is in the database in clear"
    );
    assert!(
        !raw.contains("PRIVATE KEY"),
        "the authority's key is in clear"
    );
    assert!(raw.contains("vault1:"));

    // The read-out is on the server's record.
    let events = String::from_utf8(server_cmd(&db, &["audit", "server"]).stdout).unwrap();
    assert!(
        events.contains("recovery.read") && events.contains(&id),
        "{events}"
    );

    // Without its key file the server does not start, and says what to do.
    std::fs::rename(&key_file, w.join("elsewhere.key")).unwrap();
    let out = run(crate::sync::server_bin(&db).args(["station", "list", "--db", &db]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key file") && err.contains("missing"), "{err}");
    // Nor with another server's key.
    std::fs::write(&key_file, "00".repeat(32)).unwrap();
    let out = run(crate::sync::server_bin(&db).args(["station", "list", "--db", &db]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not open"));
    // With it, everything is as it was.
    std::fs::rename(w.join("elsewhere.key"), &key_file).unwrap();
    let again =
        String::from_utf8(server_cmd(&db, &["station", "recovery-code", &id]).stdout).unwrap();
    assert_eq!(again.trim(), code);
}

/// A laptop set up from its provisioning file in a commune no network reaches: its officers
/// work at once, its first bundle carries the enrolment (the file's token and a secret the
/// laptop chose), the server takes it and answers, and the first online sync, later, simply
/// continues. From its enrolment on, the file's key opens nothing: a rogue laptop set up
/// from the same file and code is refused once the real one has enrolled.
#[test]
fn a_laptop_set_up_with_no_network_enrols_by_its_first_bundle() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (db, server) = crate::sync::sqlite_server(w);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let file = w.join("cu-mgar.json");
    let code = crate::sync::provision_sealed(&db, COMMUNE, &server.url, &file);
    // On site, the province's server is out of reach.
    drop(server);
    let set_up = |laptop: &Laptop| {
        let out = run(Command::new(bin("binhyen"))
            .arg("--data-dir")
            .arg(laptop.dir.path())
            .args(["--json", "enroll", file.to_str().unwrap()])
            .env("BINHYEN_USER", "truong")
            .env("BINHYEN_PASSWORD", crate::sync::PASS)
            .env("BINHYEN_PROVISIONING_CODE", &code));
        assert!(!out.status.success());
        assert_eq!(err_code(&out), "unreachable");
        let status = laptop.ok(&["status"], None);
        assert_eq!(status["enrolled"], false, "{status}");
    };
    let laptop = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    set_up(&laptop);
    // The officers work meanwhile (the first reporter's identity makes the commune's key).
    laptop.ok(
        &["tip", "add"],
        Some(
            &json!({"content": "Trộm bò ở buôn Ea Tul", "category": "crime_denunciation",
                    "reporter": {"name": "Y Bhim Niê", "secret": true}})
            .to_string(),
        ),
    );
    laptop.ok(
        &["tip", "add"],
        Some(&json!({ "content": "Hỏi thủ tục đăng ký tạm trú" }).to_string()),
    );
    let waiting = pending(&laptop);
    assert!(waiting >= 2, "{waiting}");

    // The installer carries the first bundle to the province (whose anchor the release
    // key has signed).
    crate::sync::certify_anchor(&db, w);
    let b1 = w.join("goi-1.bin");
    let exported = laptop.ok(&["bundle", "export", "--out", b1.to_str().unwrap()], None);
    assert!(exported["changes"].as_u64().unwrap() >= 2, "{exported}");
    let r1 = w.join("tra-loi-1.bin");
    let out = bundle_import(&db, &b1, &r1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value =
        serde_json::from_slice(&server_cmd(&db, &["station", "list", "--json"]).stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["unit_code"] == COMMUNE)
        .unwrap()
        .clone();
    assert!(
        !row["enrolled_at"].is_null(),
        "enrolled by the bundle: {row}"
    );
    // From now on the station's bundles are sealed with a key derived from its secret: the
    // enrolment bundle imported again (sealed with the file's key) is refused whole.
    let out = bundle_import(&db, &b1, &w.join("tra-loi-1b.bin"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("được làm trước khi trạm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A rogue laptop set up from the same file and code, before the real one came back:
    // its bundle carries the same token and another secret, and is refused.
    let rogue = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    set_up(&rogue);
    rogue.ok(&["tip", "add"], Some(r#"{"content": "Tin giả từ máy lạ"}"#));
    let rb = w.join("goi-la.bin");
    rogue.ok(&["bundle", "export", "--out", rb.to_str().unwrap()], None);
    let out = bundle_import(&db, &rb, &w.join("tra-loi-la.bin"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("trên một máy khác"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!w.join("tra-loi-la.bin").exists());

    // Back at the commune: the reply enrols the laptop and acknowledges its tips.
    let report = laptop.ok(&["bundle", "import", r1.to_str().unwrap()], None);
    assert_eq!(report["checksum_ok"], true, "{report}");
    assert_eq!(pending(&laptop), 0);
    let status = laptop.ok(&["status"], None);
    assert_eq!(status["enrolled"], true, "{status}");
    assert_eq!(status["station_id"], row["id"], "{status}");
    // The reply carried the province's certificate of the commune's key, and the officer
    // who imported it pinned the anchor: their sign-in bound it into their slot.
    let held = binhyen_store::Station::open(
        laptop.dir.path(),
        &binhyen_store::Credentials::new("truong", crate::sync::PASS),
    )
    .unwrap();
    let certified: i64 = held
        .conn()
        .query_row(
            "SELECT count(*) FROM identity_anchors a JOIN identity_keys k ON k.id = a.key_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(certified, 1);
    drop(held);
    let keys = std::fs::read_to_string(laptop.dir.path().join("keys.json")).unwrap();
    assert!(keys.contains("\"anchor\""), "{keys}");
    // The reply imported twice changes nothing.
    let again = laptop.cli(&["bundle", "import", r1.to_str().unwrap()], None);
    assert!(
        !again.status.success(),
        "sealed with the file's key, no longer this station's"
    );
    assert_eq!(pending(&laptop), 0);
    // Its next bundle is sealed with the key derived from its secret, and the server
    // answers it.
    laptop.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tin thứ ba, gửi qua USB sau khi đã đăng ký"}"#),
    );
    let b2 = w.join("goi-2.bin");
    laptop.ok(&["bundle", "export", "--out", b2.to_str().unwrap()], None);
    let r2 = w.join("tra-loi-2.bin");
    let out = bundle_import(&db, &b2, &r2);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = laptop.ok(&["bundle", "import", r2.to_str().unwrap()], None);
    assert_eq!(report["checksum_ok"], true, "{report}");
    assert_eq!(pending(&laptop), 0);

    // Weeks later the network reaches the commune: the first online sync continues.
    let server = crate::sync::start_server_on(&db, port);
    laptop.ok(
        &["tip", "add"],
        Some(r#"{"content": "Đánh nhau ở chợ, ghi khi đã có mạng"}"#),
    );
    let report = laptop.sync();
    assert!(report["pushed"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(pending(&laptop), 0);
    // Another laptop of the commune sees all three.
    let other = enroll(&db, &server, COMMUNE, w);
    other.sync();
    let contents: Vec<String> = other
        .tips()
        .iter()
        .map(|t| t["content"].as_str().unwrap_or_default().to_string())
        .collect();
    for c in [
        "Trộm bò ở buôn Ea Tul",
        "Đánh nhau ở chợ, ghi khi đã có mạng",
    ] {
        assert!(contents.iter().any(|t| t == c), "{contents:?}");
    }
    assert!(
        !contents.iter().any(|t| t.contains("máy lạ")),
        "{contents:?}"
    );
    // The rogue laptop, online now, is refused: the token was used.
    let out = rogue.cli(&["sync"], None);
    assert!(!out.status.success());
    assert_eq!(err_code(&out), "token_used");
}
