//! The `binhyen` binary as installers and scripts use it: real processes, a real data
//! directory, JSON on stdout, errors on stderr with a non-zero exit code.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

const PASS: &str = "mật khẩu của trạm thử";

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_binhyen"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", PASS)
        .env_remove("BINHYEN_DATA_DIR");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok_json(dir: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(dir, &all, stdin);
    assert!(
        out.status.success(),
        "binhyen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn err_json(dir: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(dir, &all, stdin);
    assert!(!out.status.success(), "binhyen {args:?} should have failed");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    let err: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    err["error"].clone()
}

/// A new station (no demo data) whose first account is the chief "truong".
fn chief_station() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok_json(
        dir.path(),
        &[
            "init",
            "--unit",
            "24280",
            "--user",
            "truong",
            "--name",
            "Nguyễn Hữu Thành",
        ],
        None,
    );
    dir
}

fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok_json(dir.path(), &["init", "--unit", "24280", "--demo"], None);
    dir
}

#[test]
fn init_demo_then_list_and_search() {
    let dir = demo();
    let tips = ok_json(dir.path(), &["tip", "list"], None);
    assert_eq!(tips.as_array().unwrap().len(), 300);
    let limited = ok_json(
        dir.path(),
        &["tip", "list", "--limit", "5", "--status", "received"],
        None,
    );
    assert!(limited
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "received"));
    assert!(limited.as_array().unwrap().len() <= 5);

    // Grouped as the window shows it: tips first, then hamlets, people, units.
    let buon = ok_json(dir.path(), &["search", "buon"], None);
    let kinds: Vec<&str> = buon
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"tip"), "{kinds:?}");
    let hamlets = buon
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "hamlet")
        .unwrap();
    let labels: Vec<&str> = hamlets["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["label"].as_str().unwrap())
        .collect();
    assert!(labels.iter().any(|l| l.starts_with("Buôn ")), "{labels:?}");
    let dak_lak = ok_json(dir.path(), &["search", "dak", "lak"], None);
    let units = dak_lak
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "unit")
        .unwrap();
    assert_eq!(units["hits"][0]["label"], "Tỉnh Đắk Lắk");
    assert_eq!(units["more"], true);
    let text = String::from_utf8(run(dir.path(), &["search", "dak", "lak"], None).stdout).unwrap();
    assert!(
        text.contains("Đơn vị hành chính:") && text.contains("còn nữa"),
        "{text}"
    );

    // Human-readable output is Vietnamese.
    let out = run(dir.path(), &["info"], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Công an xã Cư M'gar"), "{text}");
}

#[test]
fn tip_add_show_update() {
    let dir = demo();
    let input = json!({"content": "Tố giác trộm 2 con bò ở Buôn Ea Kmar", "category": "crime_denunciation",
                       "channel": "phone", "received_at": "2026-11-01T14:00:00+07:00", "hamlet": "buon ea kmar",
                       "reporter": {"name": "Y Bliêng Niê", "phone": "0912345678", "secret": true}});
    let tip = ok_json(dir.path(), &["tip", "add"], Some(&input.to_string()));
    for key in [
        "id",
        "register_no",
        "status",
        "content",
        "category",
        "channel",
        "received_at",
    ] {
        assert!(tip.get(key).is_some(), "missing {key}: {tip}");
    }
    assert_eq!(tip["status"], "received");
    assert_eq!(tip["hamlet_name"], "Buôn Ea Kmar");
    assert_eq!(tip["received_at"], "2026-11-01T07:00:00Z");
    // The answer to recording carries no identity; the reasoned reveal shows it, normalised.
    assert!(tip["reporter"].is_null(), "{tip}");
    let id = tip["id"].as_str().unwrap();
    let revealed = ok_json(
        dir.path(),
        &["tip", "show", id, "--reason", "gọi lại xác minh lời khai"],
        None,
    );
    assert_eq!(revealed["reporter"]["phone"], "+84912345678");

    let shown = ok_json(
        dir.path(),
        &["tip", "show", tip["register_no"].as_str().unwrap()],
        None,
    );
    assert_eq!(shown["id"], tip["id"]);

    let updated = ok_json(
        dir.path(),
        &["tip", "update", id],
        Some(r#"{"status": "verifying", "note": "Cử đồng chí Vinh xác minh"}"#),
    );
    assert_eq!(updated["status"], "verifying");
    assert_eq!(updated["timeline"].as_array().unwrap().len(), 2);

    let err = err_json(
        dir.path(),
        &["tip", "update", id],
        Some(r#"{"status": "received"}"#),
    );
    assert_eq!(err["code"], "invalid");
    assert_eq!(err["fields"][0]["code"], "bad_transition");
}

#[test]
fn nfd_input_is_found_by_nfc_query_and_the_reverse() {
    let dir = demo();
    let nfd: String = "Phát hiện đầu đạn pháo ở rẫy nhà ông Quý".nfd().collect();
    ok_json(
        dir.path(),
        &["tip", "add"],
        Some(&json!({"content": nfd}).to_string()),
    );
    let hits = ok_json(
        dir.path(),
        &["tip", "list", "--query", "đầu đạn pháo ông Quý"],
        None,
    );
    assert_eq!(hits.as_array().unwrap().len(), 1);
    assert_eq!(
        hits[0]["content"],
        "Phát hiện đầu đạn pháo ở rẫy nhà ông Quý"
    );

    ok_json(
        dir.path(),
        &["tip", "add"],
        Some(r#"{"content": "Nhóm Zalo lan truyền tin giả về ông Thưởng"}"#),
    );
    let nfd_query: String = "ông Thưởng".nfd().collect();
    let hits = ok_json(dir.path(), &["tip", "list", "--query", &nfd_query], None);
    assert_eq!(hits.as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = demo();
    let before = ok_json(dir.path(), &["info"], None);
    for (stdin, code) in [
        ("", "error"),
        ("not json", "bad_json"),
        (r#"{"content": ""}"#, "invalid"),
        (r#"{"content": "x", "category": "murder"}"#, "bad_json"),
        (
            r#"{"content": "x", "received_at": "2099-01-01T00:00:00Z"}"#,
            "invalid",
        ),
        (
            r#"{"content": "x", "reporter": {"phone": "01689123456"}}"#,
            "invalid",
        ),
    ] {
        let err = err_json(dir.path(), &["tip", "add"], Some(stdin));
        assert_eq!(err["code"], code, "{stdin}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let err = err_json(
        dir.path(),
        &["tip", "add"],
        Some(r#"{"content": "x", "reporter": {"phone": "01689123456"}}"#),
    );
    assert_eq!(err["fields"][0]["suggestion"], "+84389123456");
    assert_eq!(ok_json(dir.path(), &["info"], None), before);

    // Plain-text errors are Vietnamese, on stderr.
    let out = run(dir.path(), &["tip", "show", "không-có"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Không tìm thấy nguồn tin"));
}

#[test]
fn import_jsonl_all_or_nothing() {
    let dir = demo();
    let file = dir.path().join("tips.jsonl");
    std::fs::write(&file, "{\"content\": \"một\"}\n{\"content\": \"hai\"}\n{\"content\": \"ba\", \"channel\": \"pigeon\"}\n").unwrap();
    let err = err_json(dir.path(), &["tip", "import", file.to_str().unwrap()], None);
    assert_eq!(err["code"], "bad_line");
    assert_eq!(err["line"], 3);
    assert_eq!(
        ok_json(dir.path(), &["tip", "list"], None)
            .as_array()
            .unwrap()
            .len(),
        300
    );
    std::fs::write(&file, "{\"content\": \"một\"}\n{\"content\": \"hai\"}\n").unwrap();
    let done = ok_json(dir.path(), &["tip", "import", file.to_str().unwrap()], None);
    assert_eq!(done["imported"], 2);
    assert_eq!(
        ok_json(dir.path(), &["tip", "list"], None)
            .as_array()
            .unwrap()
            .len(),
        302
    );
}

#[test]
fn roster_dry_run_import_and_export() {
    let dir = tempfile::tempdir().unwrap();
    ok_json(dir.path(), &["init", "--unit", "24280"], None);
    let csv = dir.path().join("roster.csv");
    std::fs::write(&csv, "Loại,Thôn,Số hộ,Họ tên,Vai trò,Điện thoại\nBuôn,Ea Kmar,143,Y Bliêng Niê,Trưởng buôn,0912345678\nThôn,Thôn 1,200,,,\n").unwrap();
    let preview = ok_json(
        dir.path(),
        &["roster", "import", csv.to_str().unwrap(), "--dry-run"],
        None,
    );
    assert_eq!(preview["applied"], false);
    assert_eq!(
        ok_json(dir.path(), &["roster", "hamlets"], None)
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let done = ok_json(
        dir.path(),
        &["roster", "import", csv.to_str().unwrap()],
        None,
    );
    assert_eq!(done["applied"], true);
    assert_eq!(
        ok_json(dir.path(), &["roster", "hamlets"], None)
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let out = dir.path().join("out.csv");
    let status = run(
        dir.path(),
        &["roster", "export", "--out", out.to_str().unwrap()],
        None,
    );
    assert!(status.status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert!(
        text.contains("Buôn Ea Kmar") && text.contains("0912 345 678"),
        "{text}"
    );

    std::fs::write(&csv, "Thôn,Điện thoại,Họ tên\nThôn 2,123,Lê A\n").unwrap();
    let err = err_json(
        dir.path(),
        &["roster", "import", csv.to_str().unwrap()],
        None,
    );
    assert_eq!(err["code"], "bad_rows");
    assert_eq!(err["rows"][0]["line"], 2);
}

#[test]
fn doctor_reports_a_healthy_station() {
    let dir = demo();
    let report = ok_json(dir.path(), &["doctor"], None);
    assert_eq!(report["ok"], true, "{report}");
}

#[test]
fn wrong_or_missing_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    ok_json(dir.path(), &["init", "--unit", "24280"], None);
    let out = Command::new(env!("CARGO_BIN_EXE_binhyen"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--json",
            "tip",
            "list",
        ])
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", "sai mật khẩu")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "wrong_credentials");
    let out = Command::new(env!("CARGO_BIN_EXE_binhyen"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "tip", "list"])
        .env_remove("BINHYEN_PASSWORD")
        .env_remove("BINHYEN_USER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BINHYEN_USER"));
}

/// `binhyen` as another officer: same data directory, other credentials.
fn run_as(dir: &Path, user: &str, password: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_binhyen"));
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .env("BINHYEN_USER", user)
        .env("BINHYEN_PASSWORD", password)
        .env_remove("BINHYEN_DATA_DIR")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn code_of(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    err["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn accounts_and_roles_through_the_command_line() {
    let dir = chief_station();
    let tip = ok_json(
        dir.path(),
        &["tip", "add"],
        Some(r#"{"content": "Trộm bò ở buôn Ea Kpam", "category": "crime_report"}"#),
    );
    let id = tip["id"].as_str().unwrap().to_string();
    let temp = "mật khẩu tạm 123";
    let own = "mật khẩu riêng 456";
    for (user, role) in [
        ("canbo", "officer"),
        ("phantich", "analyst"),
        ("quantri", "admin"),
    ] {
        let out = run_as(
            dir.path(),
            "truong",
            PASS,
            &[
                "account",
                "add",
                "--user",
                user,
                "--name",
                &format!("Cán bộ {user}"),
                "--role",
                role,
            ],
            &[("BINHYEN_NEW_PASSWORD", temp)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The first sign-in must change the temporary password, and nothing else works.
        for args in [
            &["tip", "list"][..],
            &["status"][..],
            &["sync"][..],
            &["search", "bo"][..],
            &["audit", "list"][..],
        ] {
            let out = run_as(dir.path(), user, temp, args, &[]);
            assert_eq!(code_of(&out), "password_change_required", "{args:?}");
        }
        let out = run_as(
            dir.path(),
            user,
            temp,
            &["password"],
            &[("BINHYEN_NEW_PASSWORD", own)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list: Value = serde_json::from_slice(
        &run_as(dir.path(), "truong", PASS, &["account", "list"], &[]).stdout,
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 4);

    // Officer: records and follows up; may not transfer, export or manage accounts.
    let ok = |args: &[&str], stdin: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_binhyen"));
        let out = cmd
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--json")
            .args(args)
            .env("BINHYEN_USER", "canbo")
            .env("BINHYEN_PASSWORD", own)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = out;
        out.stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        out.wait_with_output().unwrap()
    };
    assert!(ok(
        &["tip", "update", &id],
        r#"{"status": "verifying", "note": "Đi xác minh"}"#
    )
    .status
    .success());
    let refused = ok(
        &["tip", "update", &id],
        r#"{"status": "transferred", "note": "Chuyển CQĐT"}"#,
    );
    assert_eq!(code_of(&refused), "forbidden");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("không được chuyển nguồn tin"));
    assert_eq!(
        code_of(&run_as(
            dir.path(),
            "canbo",
            own,
            &["report", "--period", "2026-11", "--format", "csv"],
            &[]
        )),
        "forbidden"
    );
    assert_eq!(
        code_of(&run_as(dir.path(), "canbo", own, &["account", "list"], &[])),
        "forbidden"
    );
    assert!(run_as(
        dir.path(),
        "canbo",
        own,
        &["tip", "show", &id, "--reason", "gọi lại người báo"],
        &[]
    )
    .status
    .success());
    // Only the chief assigns; the officer then finds the tip under their name.
    assert_eq!(
        code_of(&run_as(
            dir.path(),
            "canbo",
            own,
            &["tip", "assign", &id, "--to", "canbo"],
            &[]
        )),
        "forbidden"
    );
    let out = run_as(
        dir.path(),
        "truong",
        PASS,
        &[
            "tip",
            "assign",
            &id,
            "--to",
            "canbo",
            "--note",
            "Xác minh trong tuần",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let assigned: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(assigned["assigned_to_name"], "Cán bộ canbo");
    assert_eq!(assigned["received_by_name"], "Nguyễn Hữu Thành");
    let mine: Value = serde_json::from_slice(
        &run_as(
            dir.path(),
            "canbo",
            own,
            &["tip", "list", "--officer", "canbo"],
            &[],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(
        code_of(&run_as(
            dir.path(),
            "truong",
            PASS,
            &["tip", "assign", &id, "--to", "phantich"],
            &[]
        )),
        "invalid"
    );

    // Analyst: reads and exports, never identity.
    assert!(run_as(dir.path(), "phantich", own, &["tip", "list"], &[])
        .status
        .success());
    assert!(run_as(
        dir.path(),
        "phantich",
        own,
        &["report", "--period", "2026-11", "--format", "csv"],
        &[]
    )
    .status
    .success());
    assert_eq!(
        code_of(&run_as(
            dir.path(),
            "phantich",
            own,
            &["tip", "show", &id, "--reason", "xem"],
            &[]
        )),
        "forbidden"
    );

    // Admin: accounts and the audit trail, never a tip.
    assert_eq!(
        code_of(&run_as(dir.path(), "quantri", own, &["tip", "list"], &[])),
        "forbidden"
    );
    assert!(
        run_as(dir.path(), "quantri", own, &["audit", "verify"], &[])
            .status
            .success()
    );
    let out = run_as(
        dir.path(),
        "quantri",
        own,
        &["account", "disable", "canbo"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A disabled officer is refused.
    assert_eq!(
        code_of(&run_as(dir.path(), "canbo", own, &["tip", "list"], &[])),
        "wrong_credentials"
    );
    // The chief transfers.
    let out = run_as(
        dir.path(),
        "truong",
        PASS,
        &["tip", "show", &id, "--reason", "lập phiếu chuyển"],
        &[],
    );
    assert!(out.status.success());
}

#[test]
fn init_refuses_unknown_unit_and_existing_station() {
    let dir = tempfile::tempdir().unwrap();
    let err = err_json(dir.path(), &["init", "--unit", "12345"], None);
    assert_eq!(err["code"], "unknown_unit");
    ok_json(dir.path(), &["init", "--unit", "24280"], None);
    let err = err_json(dir.path(), &["init", "--unit", "24280"], None);
    assert_eq!(err["code"], "station_exists");
}

#[test]
fn logs_hold_no_tip_text() {
    let dir = demo();
    ok_json(
        dir.path(),
        &["tip", "add"],
        Some(
            r#"{"content": "Bí mật tuyệt đối về ông Xuyến", "reporter": {"name": "Người Tố Giác"}}"#,
        ),
    );
    let logs = dir.path().join("logs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        seen += text.lines().count();
        assert!(
            !text.contains("Xuyến") && !text.contains("Người Tố Giác"),
            "{text}"
        );
    }
    assert!(seen > 0, "the CLI writes a log");
}

#[test]
fn the_audit_trail_names_who_revealed_an_identity_and_finds_tampering() {
    let dir = tempfile::tempdir().unwrap();
    ok_json(dir.path(), &["init", "--unit", "24280"], None);
    let tip = ok_json(
        dir.path(),
        &["tip", "add"],
        Some(
            r#"{"content": "Tố giác buôn bán ma túy", "reporter": {"name": "Người Giấu Tên", "secret": true}}"#,
        ),
    );
    let id = tip["id"].as_str().unwrap();
    let shown = ok_json(
        dir.path(),
        &["tip", "show", id, "--reason", "lập biên bản tiếp nhận"],
        None,
    );
    assert_eq!(shown["reporter"]["name"], "Người Giấu Tên");
    let entries = ok_json(dir.path(), &["audit", "list"], None);
    let reveal = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "identity.view")
        .expect("the reveal is in the trail");
    assert_eq!(reveal["target"], id);
    assert!(reveal["detail"]
        .as_str()
        .unwrap()
        .contains("lập biên bản tiếp nhận"));
    assert!(entries
        .as_array()
        .unwrap()
        .iter()
        .all(|e| !e["detail"].as_str().unwrap().contains("Người Giấu Tên")));
    let check = ok_json(dir.path(), &["audit", "verify"], None);
    assert_eq!(check["ok"], true, "{check}");

    // Someone with the key rewrites why the identity was looked at.
    let station =
        binhyen_store::Station::open(dir.path(), &binhyen_store::Credentials::new("truong", PASS))
            .unwrap();
    station
        .conn()
        .execute_batch(
            "DROP TRIGGER audit_log_no_update;
             UPDATE audit_log SET detail = '{\"reason\":\"không\"}' WHERE action = 'identity.view';",
        )
        .unwrap();
    drop(station);
    let err = err_json(dir.path(), &["audit", "verify"], None);
    assert_eq!(err["code"], "audit_broken", "{err}");
    assert!(err["message"].as_str().unwrap().contains("bị sửa"));
}

#[test]
fn report_by_script_in_every_format_with_clear_errors() {
    let dir = demo();
    let r = ok_json(dir.path(), &["report", "--period", "2026"], None);
    assert_eq!(r["period"]["label"], "Năm 2026");
    // Compared with 2025: all of it once 2026 is over, as many days of it until then.
    assert_eq!(r["previous"]["from"], "2025-01-01");
    assert_eq!(
        r["unfinished"].is_string(),
        chrono::Utc::now().format("%Y").to_string() == "2026"
    );
    assert!(r["tips"]["current"].as_i64().unwrap() > 0, "{}", r["tips"]);
    let ranged = ok_json(
        dir.path(),
        &["report", "--from", "2026-10-01", "--to", "2026-10-31"],
        None,
    );
    let october = ok_json(dir.path(), &["report", "--period", "2026-10"], None);
    assert_eq!(ranged["tips"]["current"], october["tips"]["current"]);

    let xlsx = dir.path().join("bao-cao.xlsx");
    ok_json(
        dir.path(),
        &[
            "report",
            "--period",
            "2026-Q3",
            "--format",
            "xlsx",
            "--out",
            xlsx.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        std::fs::read(&xlsx).unwrap().starts_with(b"PK"),
        "a zip: an XLSX"
    );
    let pdf = dir.path().join("bao-cao.pdf");
    ok_json(
        dir.path(),
        &[
            "report",
            "--period",
            "2026-10",
            "--format",
            "pdf",
            "--out",
            pdf.to_str().unwrap(),
        ],
        None,
    );
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let csv = run(
        dir.path(),
        &["report", "--period", "2026-10", "--format", "csv"],
        None,
    );
    assert!(csv.status.success());
    assert!(csv.stdout.starts_with(b"\xEF\xBB\xBF"));
    assert!(String::from_utf8_lossy(&csv.stdout).contains("Tháng 10/2026"));

    assert_eq!(
        err_json(dir.path(), &["report", "--period", "2026-13"], None)["code"],
        "bad_period"
    );
    assert_eq!(
        err_json(
            dir.path(),
            &["report", "--period", "2026", "--format", "docx"],
            None
        )["fields"][0]["code"],
        "bad_format"
    );
    let entries = ok_json(dir.path(), &["audit", "list", "--limit", "200"], None);
    assert!(entries
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "report.export"));
}

#[test]
fn the_register_book_by_script_names_no_reporter() {
    let dir = demo();
    let pdf = dir.path().join("so-tiep-nhan.pdf");
    let done = ok_json(
        dir.path(),
        &[
            "register",
            "--from",
            "2020-01-01",
            "--to",
            "2030-12-31",
            "--out",
            pdf.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        done["message"].as_str().unwrap().contains("nguồn tin) vào"),
        "{done}"
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdf_extract::extract_text_from_mem(&bytes).unwrap();
    assert!(text.contains("SỔ TIẾP NHẬN NGUỒN TIN"), "{text}");
    // The demo's tips have named and secret reporters: none of their names is printed.
    let tips = ok_json(dir.path(), &["tip", "list"], None);
    let tips = tips.as_array().unwrap();
    assert!(tips.iter().any(|t| t["reporter_secret"] == true));
    assert!(text.contains("Đề nghị giữ"), "a secret reporter said so");
    let mut checked = 0;
    for tip in tips.iter().filter(|t| t["has_reporter"] == true).take(12) {
        let id = tip["id"].as_str().unwrap();
        let shown = ok_json(
            dir.path(),
            &["tip", "show", id, "--reason", "đối chiếu sổ tiếp nhận"],
            None,
        );
        if let Some(name) = shown["reporter"]["name"].as_str() {
            assert!(!text.contains(name), "{name} printed");
            checked += 1;
        }
    }
    assert!(checked > 3, "{checked} reporters checked");
    let xlsx = dir.path().join("so.xlsx");
    ok_json(
        dir.path(),
        &[
            "register",
            "--from",
            "2020-01-01",
            "--to",
            "2030-12-31",
            "--format",
            "XLSX",
            "--out",
            xlsx.to_str().unwrap(),
        ],
        None,
    );
    assert!(std::fs::read(&xlsx).unwrap().starts_with(b"PK"));
    // Bad input: a reversed range, an unknown format, a date that is not one.
    let reversed = err_json(
        dir.path(),
        &[
            "register",
            "--from",
            "2026-12-07",
            "--to",
            "2026-12-01",
            "--out",
            "x.pdf",
        ],
        None,
    );
    assert_eq!(reversed["code"], "bad_period");
    assert!(reversed["message"]
        .as_str()
        .unwrap()
        .contains("trước ngày bắt đầu"));
    let format = err_json(
        dir.path(),
        &[
            "register",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-07",
            "--format",
            "docx",
            "--out",
            "x",
        ],
        None,
    );
    assert_eq!(format["code"], "bad_format");
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.pdf").exists());
    let entries = ok_json(dir.path(), &["audit", "list", "--limit", "200"], None);
    assert_eq!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "register.export")
            .count(),
        2
    );
}

#[test]
fn backup_and_restore_through_the_command_line() {
    let dir = chief_station();
    ok_json(
        dir.path(),
        &["tip", "add"],
        Some(
            r#"{"content": "Trộm bò ở buôn Ea Kpam", "reporter": {"name": "Y Bhim Bí Mật", "secret": true}}"#,
        ),
    );
    let file = dir.path().join("sao-luu.byk");
    let manifest = ok_json(
        dir.path(),
        &["backup", "--out", file.to_str().unwrap()],
        None,
    );
    assert_eq!(manifest["unit_code"], "24280");
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.windows(7).any(|w| w == "Trộm".as_bytes()));

    // Never over the station it came from.
    let out = run_as(
        dir.path(),
        "truong",
        PASS,
        &["restore", file.to_str().unwrap()],
        &[],
    );
    assert_eq!(code_of(&out), "station_exists");
    // Into an empty directory, with the password of the day.
    let target = tempfile::tempdir().unwrap();
    let here = target.path().join("tram");
    let out = run_as(
        &here,
        "truong",
        "không phải mật khẩu",
        &["restore", file.to_str().unwrap()],
        &[],
    );
    assert_eq!(code_of(&out), "wrong_credentials");
    let out = run_as(
        &here,
        "truong",
        PASS,
        &["restore", file.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tips: Value =
        serde_json::from_slice(&run_as(&here, "truong", PASS, &["tip", "list"], &[]).stdout)
            .unwrap();
    assert_eq!(tips[0]["content"], "Trộm bò ở buôn Ea Kpam");
    // A broken file says so.
    let broken = dir.path().join("hong.byk");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let elsewhere = target.path().join("khac");
    let out = run_as(
        &elsewhere,
        "truong",
        PASS,
        &["restore", broken.to_str().unwrap()],
        &[],
    );
    assert_eq!(code_of(&out), "bad_backup");
}

#[test]
fn tips_are_linked_through_the_command_line() {
    let dir = chief_station();
    let a = ok_json(
        dir.path(),
        &["tip", "add"],
        Some(r#"{"content": "Mất bò ở thôn 3"}"#),
    );
    let b = ok_json(
        dir.path(),
        &["tip", "add"],
        Some(r#"{"content": "Lại báo mất bò ở thôn 3"}"#),
    );
    let (a_no, b_no) = (
        a["register_no"].as_str().unwrap(),
        b["register_no"].as_str().unwrap(),
    );
    let linked = ok_json(
        dir.path(),
        &["tip", "link", b_no, a_no, "--duplicate"],
        None,
    );
    assert_eq!(linked["links"][0]["relation"], "duplicate_of");
    assert_eq!(linked["links"][0]["other_register_no"], a_no);
    let out = run_as(
        dir.path(),
        "truong",
        PASS,
        &["tip", "link", a_no, a_no],
        &[],
    );
    assert_eq!(code_of(&out), "invalid");
}

#[test]
fn photos_are_attached_saved_and_removed_through_the_command_line() {
    let dir = demo();
    let files = tempfile::tempdir().unwrap();
    let photo = files.path().join("ảnh hiện trường.jpg");
    let mut png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    png.extend_from_slice(b"vet banh xe");
    std::fs::write(&photo, &png).unwrap();
    let notes = files.path().join("ghi chép.txt");
    std::fs::write(&notes, "không phải ảnh").unwrap();
    let tip = ok_json(
        dir.path(),
        &["tip", "add"],
        Some(r#"{"content": "Xe lạ chở gỗ ban đêm"}"#),
    );
    let no = tip["register_no"].as_str().unwrap();
    // A text file is refused, and with it the photo beside it: nothing attached.
    let err = err_json(
        dir.path(),
        &[
            "tip",
            "attach",
            no,
            photo.to_str().unwrap(),
            notes.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(err["code"], "invalid");
    assert!(
        err["message"].as_str().unwrap().contains("ghi chép.txt"),
        "{err}"
    );
    let shown = ok_json(dir.path(), &["tip", "show", no], None);
    assert_eq!(shown["attachments"].as_array().unwrap().len(), 0);
    let attached = ok_json(
        dir.path(),
        &["tip", "attach", no, photo.to_str().unwrap()],
        None,
    );
    let file = &attached["attachments"][0];
    assert_eq!(file["file_name"], "ảnh hiện trường.jpg");
    assert_eq!(file["media_type"], "image/png");
    assert_eq!(file["available"], true);
    let id = file["id"].as_str().unwrap();
    // The text view names the file.
    let text = run(dir.path(), &["tip", "show", no], None);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Tệp đính kèm: ảnh hiện trường.jpg"));
    // A copy comes out whole, never over an existing file.
    let copy = files.path().join("ban-sao.png");
    ok_json(
        dir.path(),
        &["tip", "save-file", id, "--out", copy.to_str().unwrap()],
        None,
    );
    assert_eq!(std::fs::read(&copy).unwrap(), png);
    let again = run(
        dir.path(),
        &["tip", "save-file", id, "--out", copy.to_str().unwrap()],
        None,
    );
    assert!(!again.status.success());
    let audit = ok_json(dir.path(), &["audit", "list"], None);
    assert!(audit.to_string().contains("attachment.export"));
    ok_json(dir.path(), &["tip", "detach", id], None);
    let shown = ok_json(dir.path(), &["tip", "show", no], None);
    assert_eq!(shown["attachments"].as_array().unwrap().len(), 0);
}

#[test]
fn an_officer_is_put_in_charge_of_a_hamlet_through_the_command_line() {
    let dir = demo();
    let h = ok_json(
        dir.path(),
        &["roster", "area-officer", "buon ea kmar", "truong"],
        None,
    );
    assert_eq!(h[0]["name"], "Buôn Ea Kmar");
    assert_eq!(h[0]["area_officer_name"], "Nguyễn Hữu Thành");
    assert!(h[0]["head_name"].is_string(), "{h}");
    let text = run(dir.path(), &["roster", "hamlets"], None);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Công an phụ trách: Nguyễn Hữu Thành"));
    let err = err_json(
        dir.path(),
        &["roster", "area-officer", "buon ea kmar", "khongco"],
        None,
    );
    assert_eq!(err["code"], "invalid");
    assert!(err["message"].as_str().unwrap().contains("khongco"));
    let cleared = ok_json(
        dir.path(),
        &["roster", "area-officer", "Buôn Ea Kmar", "--none"],
        None,
    );
    assert!(cleared[0]["area_officer_name"].is_null());
    assert_eq!(
        err_json(
            dir.path(),
            &["roster", "area-officer", "Thôn Không Có", "truong"],
            None
        )["code"],
        "not_found"
    );
}

/// A reporter's identity leaves the command line only through `tip show --reason` with a
/// stated reason (audited); an administrator can neither make an account that sees it nor
/// take one over; the commune's key goes only where a chief grants it.
#[test]
fn identity_leaves_only_through_a_reasoned_reveal_and_keys_only_through_a_chief() {
    let dir = chief_station();
    let name = "Nguyễn Văn Báo Tin";
    let tip = ok_json(
        dir.path(),
        &["tip", "add"],
        Some(
            &json!({"content": "Tố giác đánh bạc ở chợ", "category": "crime_denunciation",
                      "reporter": {"name": name, "phone": "0905 111 222", "secret": true}})
            .to_string(),
        ),
    );
    let id = tip["id"].as_str().unwrap().to_string();
    assert!(!tip.to_string().contains("Báo Tin"), "{tip}");
    let temp = "mật khẩu tạm 123";
    let own = "mật khẩu riêng của tôi";
    for (user, role) in [("canbo", "officer"), ("quantri", "admin")] {
        let out = run_as(
            dir.path(),
            "truong",
            PASS,
            &[
                "account",
                "add",
                "--user",
                user,
                "--name",
                &format!("Cán bộ {user}"),
                "--role",
                role,
            ],
            &[("BINHYEN_NEW_PASSWORD", temp)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run_as(
            dir.path(),
            user,
            temp,
            &["password"],
            &[("BINHYEN_NEW_PASSWORD", own)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let audit_views = || {
        ok_json(dir.path(), &["audit", "list"], None)
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "identity.view")
            .count()
    };
    // Without a reason, or with a word: the tip, never its reporter, and nothing audited.
    let shown = ok_json(dir.path(), &["tip", "show", &id], None);
    assert_eq!(shown["id"], id.as_str());
    assert!(!shown.to_string().contains("Báo Tin"), "{shown}");
    let text = run(dir.path(), &["tip", "show", &id], None);
    assert!(!String::from_utf8_lossy(&text.stdout).contains("Báo Tin"));
    let refused = err_json(dir.path(), &["tip", "show", &id, "--reason", "xem"], None);
    assert_eq!(refused["code"], "invalid");
    assert!(
        refused["message"].as_str().unwrap().contains("lý do"),
        "{refused}"
    );
    let updated = ok_json(dir.path(), &["tip", "update", &id], Some("{}"));
    assert!(!updated.to_string().contains("Báo Tin"), "{updated}");
    assert_eq!(audit_views(), 0);
    // With a stated reason: shown, and on the audit trail with the reason.
    let revealed = ok_json(
        dir.path(),
        &["tip", "show", &id, "--reason", "gọi lại xác minh lời khai"],
        None,
    );
    assert_eq!(revealed["reporter"]["name"], name);
    assert_eq!(audit_views(), 1);
    // The officer the chief made holds the key; the administrator does not, and cannot
    // make, promote, reopen or reset an account that would.
    let out = run_as(
        dir.path(),
        "canbo",
        own,
        &["tip", "show", &id, "--reason", "gọi lại người báo tin"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Báo Tin"));
    let out = run_as(
        dir.path(),
        "quantri",
        own,
        &["tip", "show", &id, "--reason", "xem danh tính người báo"],
        &[],
    );
    assert_eq!(code_of(&out), "forbidden");
    let out = run_as(
        dir.path(),
        "quantri",
        own,
        &[
            "account",
            "add",
            "--user",
            "moi",
            "--name",
            "Người mới",
            "--role",
            "officer",
        ],
        &[("BINHYEN_NEW_PASSWORD", temp)],
    );
    assert_eq!(code_of(&out), "invalid");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Chỉ trưởng Công an xã"));
    let out = run_as(
        dir.path(),
        "quantri",
        own,
        &["account", "reset-password", "canbo"],
        &[("BINHYEN_NEW_PASSWORD", "mật khẩu quản trị đặt")],
    );
    assert_eq!(code_of(&out), "invalid");
    let out = run_as(
        dir.path(),
        "quantri",
        own,
        &["account", "grant", "canbo"],
        &[],
    );
    assert_eq!(code_of(&out), "forbidden");
    // The chief sees who holds the key; a grant to one who holds it already does nothing.
    let keys = ok_json(dir.path(), &["account", "keys"], None);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2, "the chief and the officer: {keys:?}");
    assert!(
        keys.iter().all(|k| k["keys_held"] == k["keys_total"]),
        "{keys:?}"
    );
    let granted = ok_json(dir.path(), &["account", "grant", "canbo"], None);
    assert!(
        granted["message"].as_str().unwrap().contains("không có gì"),
        "{granted}"
    );
}

/// The station's database and key file, and a backup, are the owner's only (0600), in a
/// folder the program made for itself (0700).
#[test]
fn files_holding_secrets_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("tram");
    ok_json(
        &dir,
        &[
            "init",
            "--unit",
            "24280",
            "--user",
            "truong",
            "--name",
            "Nguyễn Hữu Thành",
        ],
        None,
    );
    let backup = parent.path().join("sao-luu.binhyen");
    ok_json(&dir, &["backup", "--out", backup.to_str().unwrap()], None);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in [dir.join("station.db"), dir.join("keys.json"), backup] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    // SQLite gives its journal the database's mode, whenever it exists.
    for f in [dir.join("station.db-wal"), dir.join("station.db-shm")] {
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
}
