//! Sync end to end with real processes: one `binhyen-server` (SQLite storage, loopback),
//! two laptops of Xã Cư M'gar, one laptop of another commune of Đắk Lắk, and one
//! province-level station, all driven through the `binhyen` command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::target_dir;

pub(crate) const PASS: &str = "mật khẩu đồng bộ thử";
pub(crate) const COMMUNE: &str = "24280"; // Xã Cư M'gar
const OTHER: &str = "24235"; // Xã Buôn Đôn, also in Đắk Lắk

pub(crate) fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (scripts/test.sh does)",
        path.display()
    );
    path
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap().wait_with_output().unwrap()
}

pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the server keeps the key its secrets are sealed under: beside an SQLite database
/// (its default), or for PostgreSQL a file of the test's own.
pub(crate) fn pg_key_file(db: &str) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    db.hash(&mut h);
    std::env::temp_dir().join(format!("binhyen-e2e-{:x}.key", h.finish()))
}

/// The server binary for database `db`.
pub(crate) fn server_bin(db: &str) -> Command {
    let mut cmd = Command::new(bin("binhyen-server"));
    if !db.starts_with("sqlite:") {
        cmd.env("BINHYEN_SERVER_KEY_FILE", pg_key_file(db));
    }
    cmd
}

pub(crate) fn server_cmd(db: &str, args: &[&str]) -> Output {
    let out = run(server_bin(db).args(args).arg("--db").arg(db));
    assert!(
        out.status.success(),
        "binhyen-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(crate) fn start_server(db: &str) -> Server {
    start_server_on(
        db,
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    )
}

pub(crate) fn start_server_on(db: &str, port: u16) -> Server {
    start_server_with(db, port, &[])
}

/// [`start_server_on`] with more of `serve`'s options.
pub(crate) fn start_server_with(db: &str, port: u16, extra: &[&str]) -> Server {
    start_server_logged(db, port, extra, None)
}

/// [`start_server_with`], its log (standard error) written to `log`.
pub(crate) fn start_server_logged(
    db: &str,
    port: u16,
    extra: &[&str],
    log: Option<&Path>,
) -> Server {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let child = server_bin(db)
        .args([
            "serve",
            "--db",
            db,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // HTTPS, as in production: the provisioning files pin the server's own authority.
    Server {
        child,
        url: format!("https://127.0.0.1:{port}"),
    }
}

pub(crate) struct Laptop {
    pub(crate) dir: tempfile::TempDir,
}

impl Laptop {
    /// Saves a copy of the first attachment of a tip shown by `tip show` (which must say it
    /// is on this laptop) into `out`, and returns its bytes.
    pub(crate) fn first_file(&self, shown: &Value, out: &Path) -> Vec<u8> {
        assert_eq!(shown["attachments"][0]["available"], true, "{shown}");
        let id = shown["attachments"][0]["id"].as_str().unwrap();
        self.ok(
            &["tip", "save-file", id, "--out", out.to_str().unwrap()],
            None,
        );
        std::fs::read(out).unwrap()
    }

    pub(crate) fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(bin("binhyen"));
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .arg("--json")
            .args(args)
            .env("BINHYEN_USER", "truong")
            .env("BINHYEN_PASSWORD", PASS);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "binhyen {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub(crate) fn sync(&self) -> Value {
        let report = self.ok(&["sync"], None);
        assert_eq!(report["checksum_ok"], true, "checksum after sync: {report}");
        report
    }

    pub(crate) fn tips(&self) -> Vec<Value> {
        self.ok(&["tip", "list"], None).as_array().unwrap().clone()
    }
}

/// A server on an SQLite file in `work`, with the official units imported: (its --db, it).
pub(crate) fn sqlite_server(work: &Path) -> (String, Server) {
    let db = format!("sqlite:{}", work.join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let server = start_server(&db);
    (db, server)
}

/// Has the server's anchor signed with the development release key for Đắk Lắk (province
/// 66), as the release key's holders sign a province's anchor (`scripts/sign-anchor.sh`):
/// stations trust the anchor only then.
pub(crate) fn certify_anchor(db: &str, work: &Path) {
    let out = server_cmd(db, &["anchor"]);
    let anchor = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let signed = run(Command::new(root.join("scripts/sign-anchor.sh"))
        .args(["--key"])
        .arg(root.join("packaging/release/dev-release.key"))
        .arg("--out-dir")
        .arg(work)
        .args(["66", &anchor]));
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let sig = work.join("anchor-66.minisig");
    server_cmd(
        db,
        &[
            "anchor",
            "--province",
            "66",
            "--signature",
            sig.to_str().unwrap(),
        ],
    );
}

/// `binhyen-server station enroll` for `unit`, writing the provisioning file `out` in clear
/// (`--unsealed`: the tests that are not about the seal skip the code).
pub(crate) fn provision(db: &str, unit: &str, url: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "station",
        "enroll",
        "--unit",
        unit,
        "--url",
        url,
        "--unsealed",
    ];
    args.extend_from_slice(extra);
    args.extend(["--out", out.to_str().unwrap()]);
    server_cmd(db, &args);
}

/// The same, sealed under a code as the province issues it by default: returns the code
/// that `station enroll` prints for reading out over the phone.
pub(crate) fn provision_sealed(db: &str, unit: &str, url: &str, out: &Path) -> String {
    let args = [
        "station",
        "enroll",
        "--unit",
        unit,
        "--url",
        url,
        "--out",
        out.to_str().unwrap(),
    ];
    let printed = String::from_utf8(server_cmd(db, &args).stdout).unwrap();
    printed
        .lines()
        .find_map(|l| l.split("by phone, never with the file): ").nth(1))
        .unwrap_or_else(|| panic!("no code printed: {printed}"))
        .trim()
        .to_string()
}

pub(crate) fn enroll(db: &str, server: &Server, unit: &str, work: &Path) -> Laptop {
    let file = work.join(format!("{unit}-{}.json", rand_suffix()));
    provision(db, unit, &server.url, &file, &[]);
    let laptop = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    let provisioning: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        !provisioning["unit_name"].as_str().unwrap().is_empty(),
        "the installer can see which unit: {provisioning}"
    );
    laptop.ok(&["enroll", file.to_str().unwrap()], None);
    // A provisioning file works once.
    let again = laptop.cli(&["enroll", file.to_str().unwrap()], None);
    assert!(!again.status.success());
    let err: Value = serde_json::from_slice(&again.stderr).unwrap();
    assert_eq!(err["error"]["code"], "token_used", "{err}");
    laptop
}

/// The chief on `chief` grants the commune's identity key to every officer key of the
/// commune that does not hold it yet (the accounts screen's "Trao khóa"); returns how many.
pub(crate) fn grant_waiting(chief: &Laptop) -> usize {
    let keys = chief.ok(&["account", "keys"], None);
    let waiting: Vec<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["keys_held"] != k["keys_total"])
        .map(|k| k["officer_key_id"].as_str().unwrap().to_string())
        .collect();
    for key in &waiting {
        chief.ok(&["account", "grant", "--key", key], None);
    }
    waiting.len()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The server's database for one test: an SQLite file, or a PostgreSQL schema of its own
/// (dropped at the end).
pub(crate) enum Db {
    Sqlite(String),
    Postgres { spec: String, schema: String },
}

impl Db {
    pub(crate) fn sqlite(dir: &Path) -> Db {
        Db::Sqlite(format!("sqlite:{}", dir.join("server.db").display()))
    }

    pub(crate) fn postgres() -> Db {
        let schema = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let mut c = postgres::Client::connect(&pg(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL is needed ({}): {e}", pg()));
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        let spec = format!("{}?options=-csearch_path%3D{schema}", pg());
        Db::Postgres { spec, schema }
    }

    pub(crate) fn spec(&self) -> &str {
        match self {
            Db::Sqlite(s) => s,
            Db::Postgres { spec, .. } => spec,
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { schema, spec } = self {
            let _ = std::fs::remove_file(pg_key_file(spec));
            if let Ok(mut c) = postgres::Client::connect(&pg(), postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Everything the server stores, as text: the SQLite file and its journal, or every row of
/// the test's PostgreSQL schema.
fn server_store_text(db: &str) -> String {
    if let Some(path) = db.strip_prefix("sqlite:") {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let schema = db
        .rsplit_once("search_path%3D")
        .map(|(_, s)| s.to_string())
        .expect("a PostgreSQL spec names its schema");
    let mut c = postgres::Client::connect(&pg(), postgres::NoTls).unwrap();
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut text = String::new();
    for t in tables {
        let row = c
            .query_one(
                &format!("SELECT coalesce(string_agg(x::text, E'\\n'), '') FROM {schema}.{t} x"),
                &[],
            )
            .unwrap();
        text.push_str(&row.get::<_, String>(0));
    }
    text
}

/// The PostgreSQL to test against (scripts/setup.sh provides one).
pub(crate) fn pg() -> String {
    std::env::var("BINHYEN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[test]
fn stations_converge_with_sqlite_storage() {
    let work = tempfile::tempdir().unwrap();
    let db = Db::sqlite(work.path());
    converge(db.spec(), work.path());
}

#[test]
fn stations_converge_with_postgres_storage() {
    let work = tempfile::tempdir().unwrap();
    let db = Db::postgres();
    converge(db.spec(), work.path());
}

fn converge(db: &str, work: &Path) {
    let db = db.to_string();
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let server = start_server(&db);

    let a1 = enroll(&db, &server, COMMUNE, work);
    let a2 = enroll(&db, &server, COMMUNE, work);
    let b = enroll(&db, &server, OTHER, work);
    let p = enroll(&db, &server, "66", work);
    assert_eq!(
        a2.ok(&["info"], None)["station"]["device_no"],
        2,
        "the server numbers the station's laptops"
    );

    // Offline work on every laptop.
    let roster = work.join("roster.csv");
    std::fs::write(&roster, "Loại,Thôn,Số hộ,Họ tên,Vai trò,Điện thoại\nBuôn,Ea Kmar,143,Y Bliêng Niê,Trưởng buôn,0912345678\n").unwrap();
    a1.ok(&["roster", "import", roster.to_str().unwrap()], None);
    let t1 = a1.ok(
        &["tip", "add"],
        Some(&json!({"content": "Tố giác trộm bò ở Buôn Ea Kmar", "category": "crime_denunciation", "hamlet": "Buôn Ea Kmar",
                     "reporter": {"name": "Người Tố Giác Bí Mật", "phone": "0977123456", "secret": true}}).to_string()),
    );
    let t2 = a2.ok(
        &["tip", "add"],
        Some(r#"{"content": "Nhóm thanh niên đua xe trái phép", "category": "security_order"}"#),
    );
    b.ok(
        &["tip", "add"],
        Some(r#"{"content": "Phản ánh của xã khác", "category": "other"}"#),
    );
    assert_ne!(t1["register_no"], t2["register_no"]);
    // The denunciation letter, scanned, goes with the tip.
    let scan = work.join("đơn tố giác.pdf");
    let letter = b"%PDF-1.7\n% Don to giac, chu ky nguoi to giac\n%%EOF\n".to_vec();
    std::fs::write(&scan, &letter).unwrap();
    let id1 = t1["id"].as_str().unwrap().to_string();
    a1.ok(&["tip", "attach", &id1, scan.to_str().unwrap()], None);

    // Sync in an uneven order; a second round carries everything everywhere.
    let mut files_sent = 0;
    for laptop in [&a1, &b, &a2, &p, &a1, &a2, &b, &p] {
        files_sent += laptop.sync()["files_sent"].as_u64().unwrap();
    }
    assert_eq!(files_sent, 1, "the scan is uploaded once");
    // The scan went through the server sealed to the commune's identity key: the second
    // laptop, not granted that key yet, holds it sealed and says why it does not open.
    let on_a2 = a2.ok(&["tip", "show", &id1], None);
    assert_eq!(on_a2["attachments"][0]["available"], false, "{on_a2}");
    let aid = on_a2["attachments"][0]["id"].as_str().unwrap().to_string();
    let out = work.join("ban-sao-a2.pdf");
    let refused = a2.cli(
        &["tip", "save-file", &aid, "--out", out.to_str().unwrap()],
        None,
    );
    assert!(!refused.status.success());
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(err["error"]["code"], "attachment_sealed", "{err}");
    assert!(!out.exists());
    assert_eq!(a2.sync()["files_waiting"], 1);
    let stored = server_store_text(&db);
    let secret_line = b"chu ky nguoi to giac";
    let as_hex: String = secret_line.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !stored.contains("chu ky nguoi to giac") && !stored.contains(&as_hex),
        "the server holds the scan in clear"
    );
    // The province knows of it, without it.
    let on_p = p.ok(&["tip", "show", &id1], None);
    assert_eq!(on_p["attachments"][0]["file_name"], "đơn tố giác.pdf");
    assert_eq!(
        on_p["attachments"][0]["available"], false,
        "the scan stays in the commune"
    );

    let mut a1_nos: Vec<String> = a1
        .tips()
        .iter()
        .map(|t| t["register_no"].as_str().unwrap().to_string())
        .collect();
    let mut a2_nos: Vec<String> = a2
        .tips()
        .iter()
        .map(|t| t["register_no"].as_str().unwrap().to_string())
        .collect();
    a1_nos.sort();
    a2_nos.sort();
    assert_eq!(a1_nos, a2_nos);
    assert_eq!(a1_nos.len(), 2);
    // The second laptop's keys wait for the chief: no sync grants them by itself.
    let on_a2 = a2.ok(
        &[
            "tip",
            "show",
            t1["id"].as_str().unwrap(),
            "--reason",
            "gọi lại xác minh lời khai",
        ],
        None,
    );
    assert_ne!(on_a2["reporter"]["name"], "Người Tố Giác Bí Mật", "{on_a2}");
    // The chief grants them on the first laptop (the accounts screen's "Trao khóa").
    assert!(grant_waiting(&a1) > 0);
    a1.sync();
    a2.sync();
    // The second laptop of the station then sees the hamlet and, for a stated reason, the
    // reporter (same station).
    let on_a2 = a2.ok(
        &[
            "tip",
            "show",
            t1["id"].as_str().unwrap(),
            "--reason",
            "gọi lại xác minh lời khai",
        ],
        None,
    );
    assert_eq!(on_a2["hamlet_name"], "Buôn Ea Kmar");
    assert_eq!(on_a2["reporter"]["name"], "Người Tố Giác Bí Mật");
    // And the scan, opened with that key, whole.
    assert_eq!(a2.first_file(&on_a2, &out), letter);
    assert_eq!(a2.sync()["files_waiting"], 0);
    let identity = a2.ok(&["status"], None)["identity"].clone();
    assert_eq!(
        (&identity["unit_keys"], &identity["opened_keys"]),
        (&json!(1), &json!(1)),
        "the second laptop holds the commune's identity key: {identity}"
    );
    // The server relays the identity but cannot read it: in its store it is sealed to the
    // commune's identity key, whose secret half only the commune's officers hold.
    let stored = server_store_text(&db);
    assert!(
        stored.contains("sealed1:"),
        "the sealed identity is on the server"
    );
    assert!(
        !stored.contains("Người Tố Giác Bí Mật") && !stored.contains("977123456"),
        "the server holds no reporter identity in clear"
    );
    // The other commune sees only its own tip.
    let b_tips = b.tips();
    assert_eq!(b_tips.len(), 1);
    assert_eq!(b_tips[0]["content"], "Phản ánh của xã khác");
    // The province sees every commune's tips, but no reporter identity.
    let p_tips = p.tips();
    assert_eq!(p_tips.len(), 3);
    let on_p = p.ok(&["tip", "show", t1["id"].as_str().unwrap()], None);
    assert!(
        on_p.get("reporter").is_none() || on_p["reporter"].is_null(),
        "{on_p}"
    );
    assert_eq!(on_p["has_reporter"], false);

    // Both laptops edit the same tip offline: content on both (a conflict), status on one
    // and urgency on the other (these merge).
    let id = t1["id"].as_str().unwrap();
    a1.ok(
        &["tip", "update", id],
        Some(r#"{"content": "Nội dung sửa ở máy 1", "status": "verifying"}"#),
    );
    a2.ok(
        &["tip", "update", id],
        Some(r#"{"content": "Nội dung sửa ở máy 2", "urgency": "urgent"}"#),
    );
    a1.sync();
    let r2 = a2.sync();
    assert!(r2["conflicts"].as_u64().unwrap() >= 1, "{r2}");
    a1.sync();
    let on_a1 = a1.ok(&["tip", "show", id], None);
    let on_a2 = a2.ok(&["tip", "show", id], None);
    assert_eq!(
        on_a1["content"], on_a2["content"],
        "the same interim value everywhere"
    );
    assert_eq!(on_a1["status"], "verifying");
    assert_eq!(on_a1["urgency"], "urgent");
    let conflicts = a1.ok(&["conflict", "list"], None);
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
    assert_eq!(conflicts[0]["field"], "content");
    assert_eq!(
        a2.ok(&["conflict", "list"], None).as_array().unwrap().len(),
        1
    );
    assert_eq!(a1.ok(&["status"], None)["open_conflicts"], 1);

    // An officer decides on laptop 1; laptop 2 follows and its conflict closes too.
    let cid = conflicts[0]["id"].as_str().unwrap();
    a1.ok(
        &[
            "conflict",
            "resolve",
            cid,
            "--take",
            r#""Nội dung đã thống nhất""#,
        ],
        None,
    );
    a1.sync();
    a2.sync();
    assert_eq!(
        a2.ok(&["tip", "show", id], None)["content"],
        "Nội dung đã thống nhất"
    );
    assert_eq!(
        a2.ok(&["conflict", "list"], None).as_array().unwrap().len(),
        0
    );
    assert_eq!(
        a1.ok(&["conflict", "list"], None).as_array().unwrap().len(),
        0
    );

    // The province catches up (it sees the conflict and its resolution in one go).
    for laptop in [&b, &p] {
        laptop.sync();
    }
    assert_eq!(
        p.ok(&["conflict", "list"], None).as_array().unwrap().len(),
        0
    );
    assert_eq!(
        p.ok(&["tip", "show", id], None)["content"],
        "Nội dung đã thống nhất"
    );

    // Nothing new: a sync sends and receives nothing, and everything still converges.
    for laptop in [&a1, &a2, &b, &p] {
        let r = laptop.sync();
        assert_eq!(
            (r["pushed"].as_u64(), r["pulled"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
    }
    let status = a2.ok(&["status"], None);
    assert_eq!(status["pending_changes"], 0);
    assert!(status["last_success"].is_string());

    // The daily comparison by a full scan on both sides (the first version of the
    // checksum, over HTTP), made due by moving the last one two days back: it agrees, and
    // is recorded as done. The commune laptop counts identity, the province's does not.
    for laptop in [&a1, &p] {
        let open = || {
            binhyen_store::Station::open(
                laptop.dir.path(),
                &binhyen_store::Credentials::new("truong", PASS),
            )
            .unwrap()
        };
        let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
        open().sync_set("full_check_at", &two_days_ago).unwrap();
        let r = laptop.sync();
        assert_eq!(r["checksum_ok"], true, "{r}");
        assert_eq!(r["repaired"].as_u64(), Some(0), "{r}");
        let done = open().sync_get("full_check_at").unwrap().unwrap();
        assert!(
            done > two_days_ago,
            "the full comparison was recorded: {done}"
        );
    }

    // The province's report, computed by the server from what it holds, is the report the
    // province-level station computes from its replica: per commune and in total.
    let month = (chrono::Utc::now() + chrono::Duration::hours(7))
        .format("%Y-%m")
        .to_string();
    let without_stamp = |mut v: Value| {
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    let out = server_cmd(&db, &["report", "--unit", "66", "--period", &month]);
    let at_server = without_stamp(serde_json::from_slice(&out.stdout).unwrap());
    let at_station = without_stamp(p.ok(&["report", "--period", &month], None));
    assert_eq!(at_server, at_station);
    let tips = at_server["tips"]["current"].as_i64().unwrap();
    assert!(tips > 0, "{at_server}");
    let per_commune = |code: &str| {
        at_server["by_unit"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == code)
            .map(|f| f["current"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(per_commune(COMMUNE) + per_commune(OTHER), tips);
    let commune = without_stamp(a1.ok(&["report", "--period", &month], None));
    assert_eq!(
        commune["tips"]["current"].as_i64().unwrap(),
        per_commune(COMMUNE)
    );
    let out = server_cmd(&db, &["report", "--unit", COMMUNE, "--period", &month]);
    let commune_at_server = without_stamp(serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(commune_at_server["tips"], commune["tips"]);
    assert_eq!(commune_at_server["by_hamlet"], commune["by_hamlet"]);
    // The files: a PDF in the official layout, from the server alone.
    let pdf = work.join("tinh.pdf");
    server_cmd(
        &db,
        &[
            "report",
            "--unit",
            "66",
            "--period",
            &month,
            "--format",
            "pdf",
            "--out",
            pdf.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
}

#[test]
fn server_unreachable_is_reported_and_nothing_is_lost() {
    let work = tempfile::tempdir().unwrap();
    let (db, server) = sqlite_server(work.path());
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let a = enroll(&db, &server, COMMUNE, work.path());
    drop(server);
    a.ok(&["tip", "add"], Some(r#"{"content": "Ghi khi mất mạng"}"#));
    let out = a.cli(&["sync"], None);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "unreachable");
    let status = a.ok(&["status"], None);
    assert_eq!(
        status["pending_changes"], 4,
        "the station's first account and its box key, the recovery slot's box key (none synced \
         yet) and the tip wait (its receipt is the tip's own, not a change of its own)"
    );
    assert!(status["last_error"]
        .as_str()
        .unwrap()
        .contains("Không kết nối được"));
    // The server comes back (same database); the waiting changes go through.
    let _server = start_server_on(&db, port);
    let report = a.sync();
    assert_eq!(report["pushed"], 4);
    assert_eq!(a.ok(&["status"], None)["pending_changes"], 0);
}

#[test]
fn every_password_forgotten_the_province_reads_out_the_recovery_code() {
    let work = tempfile::tempdir().unwrap();
    let (db, server) = sqlite_server(work.path());
    let a = enroll(&db, &server, COMMUNE, work.path());
    let status = a.ok(&["status"], None);
    assert_eq!(
        status["recovery_code_at_province"], true,
        "handed over at enrolment: {status}"
    );
    let id = status["station_id"].as_str().unwrap().to_string();
    let read_out = |id: &str| {
        let out = server_cmd(&db, &["station", "recovery-code", id]);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let code = read_out(&id);
    assert_eq!(code.len(), 29, "{code}");

    // Every password forgotten: the province reads the code out over the telephone; the
    // chief types it (in lower case, without dashes) with a new password.
    let recover = |code: &str, password: &str| {
        let mut cmd = Command::new(bin("binhyen"));
        cmd.arg("--data-dir")
            .arg(a.dir.path())
            .args(["--json", "recover", "--user", "truong"])
            .env("BINHYEN_RECOVERY_CODE", code)
            .env("BINHYEN_NEW_PASSWORD", password);
        run(&mut cmd)
    };
    let wrong = recover("ABCDE-FGHJK-MNPQR-STVWX-YZ012", "mật khẩu mới 2026");
    assert!(!wrong.status.success());
    let err: Value = serde_json::from_slice(&wrong.stderr).unwrap();
    assert_eq!(err["error"]["code"], "wrong_recovery_code", "{err}");
    let typed = code.replace('-', " ").to_lowercase();
    let out = recover(&typed, "mật khẩu mới 2026");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed_in = |password: &str| {
        let mut cmd = Command::new(bin("binhyen"));
        cmd.arg("--data-dir")
            .arg(a.dir.path())
            .args(["--json", "status"])
            .env("BINHYEN_USER", "truong")
            .env("BINHYEN_PASSWORD", password);
        run(&mut cmd)
    };
    assert!(signed_in("mật khẩu mới 2026").status.success());
    assert!(
        !signed_in(PASS).status.success(),
        "the forgotten password is gone"
    );

    // The code was spoken aloud: the next sync hands the province a new one, and the old
    // one stops working.
    let mut cmd = Command::new(bin("binhyen"));
    cmd.arg("--data-dir")
        .arg(a.dir.path())
        .args(["--json", "sync"])
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", "mật khẩu mới 2026");
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = read_out(&id);
    assert_ne!(fresh, code);
    let old = recover(&code, "mật khẩu khác 2026");
    assert!(
        !old.status.success(),
        "the spoken code no longer opens the station"
    );
    assert!(recover(&fresh, "mật khẩu khác 2026").status.success());
    drop(server);
}

#[test]
fn accounts_made_disabled_and_promoted_at_the_province_reach_the_laptop() {
    let work = tempfile::tempdir().unwrap();
    let (db, server) = sqlite_server(work.path());
    let a = enroll(&db, &server, COMMUNE, work.path());
    a.sync();
    let out = server_cmd(&db, &["account", "list", "--unit", COMMUNE, "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed[0]["username"], "truong",
        "the laptop's first account reached the province: {listed}"
    );

    // The province adds an officer; the laptop receives the account at its next sync, and
    // the chief gives it a temporary password there.
    server_cmd(
        &db,
        &[
            "account",
            "add",
            "--unit",
            COMMUNE,
            "--user",
            "an.lv",
            "--name",
            "Lò Văn An",
        ],
    );
    a.sync();
    let accounts = a.ok(&["account", "list"], None);
    let an = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["username"] == "an.lv")
        .unwrap_or_else(|| panic!("{accounts}"))
        .clone();
    assert_eq!(an["full_name"], "Lò Văn An");
    assert_eq!(an["password_here"], false);
    let as_an = |password: &str, args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(bin("binhyen"));
        cmd.arg("--data-dir")
            .arg(a.dir.path())
            .arg("--json")
            .args(args)
            .env("BINHYEN_USER", "an.lv")
            .env("BINHYEN_PASSWORD", password);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let mut reset = Command::new(bin("binhyen"));
    reset
        .arg("--data-dir")
        .arg(a.dir.path())
        .args(["--json", "account", "reset-password", "an.lv"])
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", PASS)
        .env("BINHYEN_NEW_PASSWORD", "tạm thời 2026");
    let out = run(&mut reset);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_an(
        "tạm thời 2026",
        &["password"],
        &[("BINHYEN_NEW_PASSWORD", "của An 2026")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_an("của An 2026", &["tip", "list"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = as_an("của An 2026", &["account", "list"], &[]);
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(
        err["error"]["code"], "forbidden",
        "an officer manages no accounts"
    );

    // Promoted at the province: a chief on the laptop after the next sync.
    server_cmd(
        &db,
        &["account", "role", "--unit", COMMUNE, "an.lv", "chief"],
    );
    a.sync();
    assert!(as_an("của An 2026", &["account", "list"], &[])
        .status
        .success());

    // Disabled at the province: refused on the laptop after the next sync.
    server_cmd(&db, &["account", "disable", "--unit", COMMUNE, "an.lv"]);
    a.sync();
    let refused = as_an("của An 2026", &["tip", "list"], &[]);
    assert!(!refused.status.success());
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(err["error"]["code"], "wrong_credentials", "{err}");
    // The province cannot leave the commune without a manager.
    let out = run(server_bin(&db)
        .args(["account", "disable", "--unit", COMMUNE, "truong", "--db"])
        .arg(&db));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cuối cùng"));
    drop(server);
}

#[test]
fn a_laptop_restored_from_a_backup_enrols_again_and_gets_back_what_came_after() {
    let work = tempfile::tempdir().unwrap();
    let (db, server) = sqlite_server(work.path());
    let a = enroll(&db, &server, COMMUNE, work.path());
    a.ok(&["tip", "add"], Some(r#"{"content": "Trước khi sao lưu"}"#));
    a.sync();
    let backup = work.path().join("tram.byk");
    a.ok(&["backup", "--out", backup.to_str().unwrap()], None);
    let after = a.ok(&["tip", "add"], Some(r#"{"content": "Sau khi sao lưu"}"#));
    a.sync();

    // The laptop dies; a new one is restored from the backup.
    let restored = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    restored.ok(&["restore", backup.to_str().unwrap()], None);
    let out = restored.cli(&["sync"], None);
    assert!(
        !out.status.success(),
        "a restored copy does not sync with stale credentials"
    );
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "not_enrolled", "{err}");
    // The province revokes the lost laptop (it may be in someone else's hands) and issues
    // a provisioning file for the same laptop number.
    let old_id = a.ok(&["status"], None)["station_id"]
        .as_str()
        .unwrap()
        .to_string();
    server_cmd(&db, &["station", "revoke", &old_id]);
    let file = work.path().join("again.json");
    provision(&db, COMMUNE, &server.url, &file, &["--device", "1"]);
    restored.ok(&["enroll", file.to_str().unwrap()], None);
    restored.sync();
    let tips = restored.tips();
    assert!(
        tips.iter()
            .any(|t| t["register_no"] == after["register_no"]),
        "the tip recorded after the backup came back: {tips:?}"
    );
    // New numbers follow on from those that came back.
    let next = restored.ok(
        &["tip", "add"],
        Some(r#"{"content": "Trên máy khôi phục"}"#),
    );
    assert_eq!(
        next["register_no"].as_str().unwrap()[..4].to_string(),
        "0003"
    );
    restored.sync();
    assert!(restored.ok(&["audit", "verify"], None)["ok"] == true);
    drop(server);
}

/// `systemctl stop` sends SIGTERM: the server takes no new connection, lets the requests in
/// flight finish, and exits 0. A push it cuts is whole or absent (each is one transaction):
/// the laptop's next sync, against the server started again, converges with nothing lost.
#[test]
fn the_server_stops_on_sigterm_and_a_push_it_cuts_is_whole_or_absent() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (db, mut server) = sqlite_server(w);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let laptop = enroll(&db, &server, COMMUNE, w);
    let file = w.join("tips.jsonl");
    let lines: String = (0..3000)
        .map(|i| format!("{{\"content\": \"Tin báo thử số {i} về trật tự thôn\"}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    laptop.ok(&["tip", "import", file.to_str().unwrap()], None);
    let before = laptop.ok(&["status"], None)["pending_changes"]
        .as_u64()
        .unwrap();
    assert!(before >= 3000, "{before}");

    // The sync runs while the server is told to stop.
    let mut sync = Command::new(bin("binhyen"))
        .arg("--data-dir")
        .arg(laptop.dir.path())
        .args(["--json", "sync"])
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", PASS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "a stop on SIGTERM is a clean exit: {status}"
    );
    let _ = sync.wait().unwrap();

    // Started again: the laptop sends what did not arrive, and both sides agree.
    let server = start_server_on(&db, port);
    let report = laptop.sync();
    assert_eq!(report["checksum_ok"], true, "{report}");
    assert_eq!(laptop.ok(&["status"], None)["pending_changes"], 0);
    drop(server);
}

/// Set up on site with no network: the station is made from the provisioning file, the
/// officers work, and the first sync once the server is reachable enrols it and sends what
/// was recorded meanwhile. Giving the file again later does the same, once.
#[test]
fn a_station_set_up_with_no_network_enrols_at_its_first_sync() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = format!("sqlite:{}", w.join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = w.join("cu-mgar.json");
    provision(
        &db,
        COMMUNE,
        &format!("https://127.0.0.1:{port}"),
        &file,
        &[],
    );
    let laptop = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    // No server yet: the station is made, and says the enrolment waits.
    let out = laptop.cli(&["enroll", file.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "unreachable", "{err}");
    laptop.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tin báo ghi khi chưa có mạng", "category": "crime_report"}"#),
    );
    let refused = laptop.cli(&["sync"], None);
    assert!(!refused.status.success(), "still no server");

    // The server is reachable: the first sync enrols the station and sends the tip.
    let server = start_server_on(&db, port);
    let report = laptop.sync();
    assert_eq!(
        report["pushed"].as_u64().map(|n| n >= 1),
        Some(true),
        "{report}"
    );
    assert_eq!(laptop.ok(&["status"], None)["pending_changes"], 0);
    // The file's one-time token was used once: the next syncs go on, and giving the file
    // again is refused as used, with the station untouched.
    laptop.sync();
    let again = laptop.cli(&["enroll", file.to_str().unwrap()], None);
    assert!(!again.status.success());
    let err: Value = serde_json::from_slice(&again.stderr).unwrap();
    assert_eq!(err["error"]["code"], "token_used", "{err}");
    laptop.sync();
    drop(server);
}

/// A provisioning file is sealed by default: the file alone (a lost USB stick) gives the unit
/// and laptop number, nothing else; without the code, or with a wrong one, nothing is set
/// up; with the code read out over the phone the station enrols.
#[test]
fn a_sealed_provisioning_file_opens_only_with_its_code() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (db, server) = sqlite_server(w);
    let file = w.join("cu-mgar-sealed.json");
    let code = provision_sealed(&db, COMMUNE, &server.url, &file);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("token"), "{text}");
    assert!(
        !text.contains("127.0.0.1"),
        "the server's address is sealed too: {text}"
    );
    assert!(!text.contains("BEGIN CERTIFICATE"), "{text}");
    assert!(text.contains("Cư M'gar"), "the unit is shown: {text}");
    let laptop = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    let enroll_with = |code: Option<&str>| {
        let mut cmd = Command::new(bin("binhyen"));
        cmd.arg("--data-dir")
            .arg(laptop.dir.path())
            .args(["--json", "enroll", file.to_str().unwrap()])
            .env("BINHYEN_USER", "truong")
            .env("BINHYEN_PASSWORD", PASS)
            .stdin(Stdio::null());
        if let Some(c) = code {
            cmd.env("BINHYEN_PROVISIONING_CODE", c);
        }
        run(&mut cmd)
    };
    let code_of = |out: &Output| {
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        err["error"]["code"].as_str().unwrap().to_string()
    };
    let out = enroll_with(None);
    assert!(!out.status.success());
    assert_eq!(code_of(&out), "code_needed");
    let out = enroll_with(Some("1111-2222-3333"));
    assert!(!out.status.success());
    assert_eq!(code_of(&out), "wrong_code");
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Mã mở tệp không đúng"),
        "{err}"
    );
    assert!(
        !laptop.dir.path().join("station.db").exists(),
        "nothing is set up from a file that did not open"
    );
    // Typed as the installer hears it, in groups with spaces.
    let out = enroll_with(Some(&code.replace('-', " ")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    laptop.sync();
}

/// A round of visits provisioned at once: a file per station (0600) and the sheet the
/// province's office keeps to read each code out by phone. A round with a bad line makes
/// nothing; one refused half-way revokes what it had made.
#[test]
fn a_round_of_stations_is_provisioned_at_once_with_a_sheet_of_codes() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (db, server) = sqlite_server(w);
    let active = |db: &str| -> usize {
        let list: Value =
            serde_json::from_slice(&server_cmd(db, &["station", "list", "--json"]).stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["revoked_at"].is_null())
            .count()
    };
    let round = w.join("dot-1.csv");
    std::fs::write(
        &round,
        "unit,device,officer,officer_name\n24280,,,\n24280,,,\n24235,3,an.lv,Lò Văn An\n",
    )
    .unwrap();
    let out = w.join("dot-1");
    server_cmd(
        &db,
        &[
            "station",
            "enroll",
            "--batch",
            round.to_str().unwrap(),
            "--url",
            &server.url,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    for name in [
        "24280-1.json",
        "24280-2.json",
        "24235-3.json",
        "danh-sach-cap-phep.pdf",
    ] {
        let meta = std::fs::metadata(out.join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    let sheet = pdf_extract::extract_text_from_mem(
        &std::fs::read(out.join("danh-sach-cap-phep.pdf")).unwrap(),
    )
    .unwrap();
    let flat = sheet.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("DANH SÁCH CẤP PHÉP TRẠM BÌNH YÊN"), "{flat}");
    assert!(
        flat.contains("Xã Cư M'gar (24280) · máy số 2 · tệp 24280-2.json"),
        "{flat}"
    );
    assert!(flat.contains("máy số 3 · tệp 24235-3.json"), "{flat}");
    let code = flat
        .split("tệp 24280-2.json · mã ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(active(&db), 3);

    // The second laptop of Cư M'gar enrols with its file and the code read from the sheet.
    let laptop = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    let out2 = run(Command::new(bin("binhyen"))
        .arg("--data-dir")
        .arg(laptop.dir.path())
        .args([
            "--json",
            "enroll",
            out.join("24280-2.json").to_str().unwrap(),
        ])
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", PASS)
        .env("BINHYEN_PROVISIONING_CODE", &code)
        .stdin(Stdio::null()));
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    assert_eq!(laptop.ok(&["info"], None)["station"]["device_no"], 2);
    laptop.sync();

    // A line naming an unknown unit: nothing is made, and the line is named.
    let bad = w.join("dot-2.csv");
    std::fs::write(&bad, "unit\n24280\n99999\n").unwrap();
    let out3 = w.join("dot-2");
    let refused = run(server_bin(&db).args([
        "station",
        "enroll",
        "--db",
        &db,
        "--batch",
        bad.to_str().unwrap(),
        "--url",
        &server.url,
        "--out",
        out3.to_str().unwrap(),
    ]));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("line 3") && err.contains("nothing was made"),
        "{err}"
    );
    assert!(!out3.exists());
    assert_eq!(active(&db), 3);

    // Refused half-way (laptop 3 of 24235 is taken): the station made before it is revoked.
    let half = w.join("dot-3.csv");
    std::fs::write(&half, "unit,device\n24235,4\n24235,3\n").unwrap();
    let refused = run(server_bin(&db).args([
        "station",
        "enroll",
        "--db",
        &db,
        "--batch",
        half.to_str().unwrap(),
        "--url",
        &server.url,
        "--out",
        w.join("dot-3").to_str().unwrap(),
    ]));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("revoked again"), "{err}");
    assert_eq!(active(&db), 3, "the round left nothing behind");
    assert!(!w.join("dot-3").exists());
}
