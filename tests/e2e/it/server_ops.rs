//! The provincial server as its IT staff run it: `/metrics` on a port of its own, counting
//! what the stations did; JSON log lines with no reporter and no secret in them; the station
//! list with each station's last sync and last anchored audit entry.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::sync::{enroll, server_cmd, start_server_logged, start_server_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP GET on loopback (the metrics listener speaks nothing else).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of the metric line `name{labels}` (or `name` alone).
fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_server_is_watched_by_its_metrics_and_json_logs_that_hold_no_secret() {
    let work = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", work.path().join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let (port, metrics_port) = (free_port(), free_port());
    let log = work.path().join("server.log");
    let server = start_server_logged(
        &db,
        port,
        &[
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--log-format",
            "json",
        ],
        Some(&log),
    );
    // Two laptops of a commune: one records a tip with a secret reporter and syncs.
    let a = enroll(&db, &server, "24280", work.path());
    let b = enroll(&db, &server, "24280", work.path());
    let secret_name = "Hoàng Thị Kín Đáo";
    let secret_phone = "0966555444";
    a.ok(
        &["tip", "add"],
        Some(
            &json!({"content": "Tố giác đánh bạc ở chợ", "category": "crime_denunciation",
                    "reporter": {"name": secret_name, "phone": secret_phone, "secret": true}})
            .to_string(),
        ),
    );
    a.sync();
    b.sync();

    let (status, text) = get(metrics_port, "/metrics");
    assert_eq!(status, 200, "{text}");
    let pushes = metric(
        &text,
        "binhyen_http_requests_total{route=\"/api/v1/push\",method=\"POST\",status=\"200\"}",
    )
    .unwrap_or_else(|| panic!("no push counted:\n{text}"));
    assert!(pushes >= 1.0, "{text}");
    assert!(
        metric(
            &text,
            "binhyen_http_requests_total{route=\"/api/v1/pull\",method=\"GET\",status=\"200\"}"
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );
    assert!(
        text.contains("binhyen_http_request_duration_seconds_bucket{le=")
            || text.contains("binhyen_http_request_duration_seconds_bucket{route=\"/api/v1/push\""),
        "{text}"
    );
    assert!(
        text.contains("binhyen_http_request_bytes_sum{route=\"/api/v1/push\"}"),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "binhyen_stations{state=\"enrolled\",last_sync=\"under_1h\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(metric(&text, "binhyen_open_conflicts"), Some(0.0), "{text}");
    assert!(metric(&text, "binhyen_database_bytes").unwrap_or(0.0) > 10_000.0);
    // The dashboard in the package reads only metrics the server serves.
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/server/grafana-dashboard.json"),
    )
    .unwrap();
    let mut names = 0;
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(rest) = word.strip_prefix("binhyen_") {
            names += 1;
            assert!(
                text.contains(&format!("binhyen_{rest}")),
                "the dashboard reads binhyen_{rest}, which /metrics does not serve"
            );
        }
    }
    assert!(names >= 6, "{names}");
    // The stations' port does not serve it; the metrics port serves nothing else.
    assert_eq!(get(metrics_port, "/api/v1/pull").0, 404);

    // The station list: each station's last sync and its last anchored audit entry.
    let out = server_cmd(&db, &["station", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stations = list.as_array().unwrap();
    assert_eq!(stations.len(), 2);
    for s in stations {
        assert!(s["last_sync_at"].is_string(), "{s}");
        assert!(s["audit_last_seq"].as_i64().unwrap_or(0) >= 1, "{s}");
        assert!(s["audit_last_at"].is_string(), "{s}");
    }

    // Every log line is a JSON object; none holds the reporter or a station's secrets.
    drop(server);
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(lines.lines().count() >= 5, "{lines}");
    let provisioning: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let mut secrets = vec![secret_name.to_string(), secret_phone.to_string()];
    for p in &provisioning {
        let v: Value = serde_json::from_str(p).unwrap();
        if let Some(t) = v["token"].as_str() {
            secrets.push(t.to_string());
        }
    }
    assert!(secrets.len() >= 4, "the provisioning tokens were found");
    for line in lines.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "a secret in the log: {line}");
        }
    }
}

const PASSPHRASE: &str = "sao lưu máy chủ tỉnh 2026";

fn server_backup(db: &str, args: &[&str]) -> std::process::Output {
    crate::sync::server_bin(db)
        .args(args)
        .arg("--db")
        .arg(db)
        .env("BINHYEN_BACKUP_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap()
}

/// Backed up while a station pushes, the server lost, a new empty database restored: the
/// stations sync on as before (same authority, no provisioning again), the changes made
/// after the backup come back from the station that made them, and every checksum agrees.
fn backup_while_pushing_then_restore(db: &crate::sync::Db, work: &Path) {
    let spec = db.spec().to_string();
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&spec, &["units", "import", units.to_str().unwrap()]);
    let port = free_port();
    let server = crate::sync::start_server_on(&spec, port);
    let a = enroll(&spec, &server, "24280", work);
    let b = enroll(&spec, &server, "24280", work);
    a.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tin trước khi sao lưu", "category": "security_order"}"#),
    );
    a.sync();
    b.sync();

    // A station pushes while the backup reads.
    let file = work.join("may-chu.bak");
    std::thread::scope(|scope| {
        let pusher = scope.spawn(|| {
            for i in 0..8 {
                a.ok(
                    &["tip", "add"],
                    Some(
                        &json!({"content": format!("Tin trong lúc sao lưu {i}"), "category": "other"})
                            .to_string(),
                    ),
                );
                a.ok(&["sync"], None);
            }
        });
        let out = server_backup(&spec, &["backup", "--out", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pusher.join().unwrap();
    });
    // Made after the backup: lost with the server, kept by the station.
    a.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tin sau khi sao lưu", "category": "other"}"#),
    );
    a.sync();
    let verified = crate::sync::server_bin(&spec)
        .args(["verify-backup", file.to_str().unwrap()])
        .env("BINHYEN_BACKUP_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("is whole"));

    // The server is lost: its database and its key file.
    drop(server);
    let key_file = match spec.strip_prefix("sqlite:") {
        Some(p) => {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{p}{ext}"));
            }
            Path::new(p).with_extension("key")
        }
        None => {
            let mut c = postgres::Client::connect(&crate::sync::pg(), postgres::NoTls).unwrap();
            let schema = spec.rsplit("search_path%3D").next().unwrap().to_string();
            c.batch_execute(&format!(
                "DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .unwrap();
            crate::sync::pg_key_file(&spec)
        }
    };
    std::fs::remove_file(&key_file).unwrap();

    // A wrong passphrase, a damaged file: refused, nothing written.
    let wrong = crate::sync::server_bin(&spec)
        .args(["restore", file.to_str().unwrap(), "--db", &spec])
        .env("BINHYEN_BACKUP_PASSPHRASE", "không phải mật khẩu này")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not open"));
    let mut bytes = std::fs::read(&file).unwrap();
    let cut = work.join("cut.bak");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let out = server_backup(&spec, &["restore", cut.to_str().unwrap()]);
    assert!(!out.status.success());
    let n = bytes.len() / 2;
    bytes[n] ^= 0x55;
    std::fs::write(&cut, &bytes).unwrap();
    let out = server_backup(&spec, &["restore", cut.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!key_file.exists(), "nothing restored from a bad file");

    let out = server_backup(&spec, &["restore", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(key_file.exists());
    // Never over a database in use.
    let again = server_backup(&spec, &["restore", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The same address, the same authority: the stations sync on.
    let _server = crate::sync::start_server_on(&spec, port);
    for _ in 0..2 {
        a.sync();
        b.sync();
    }
    let contents = |l: &crate::sync::Laptop| {
        let mut c: Vec<String> = l
            .tips()
            .iter()
            .map(|t| t["content"].as_str().unwrap().to_string())
            .collect();
        c.sort();
        c
    };
    let on_a = contents(&a);
    assert_eq!(on_a.len(), 10, "{on_a:?}");
    assert_eq!(on_a, contents(&b));
    assert!(on_a.iter().any(|c| c == "Tin sau khi sao lưu"));
    // A change made now reaches the other station by the ordinary pull.
    b.ok(
        &["tip", "add"],
        Some(r#"{"content": "Tin sau khi khôi phục", "category": "other"}"#),
    );
    b.sync();
    a.sync();
    assert!(contents(&a).iter().any(|c| c == "Tin sau khi khôi phục"));
}

#[test]
fn the_server_is_backed_up_while_serving_and_restored_on_sqlite() {
    let work = tempfile::tempdir().unwrap();
    let db = crate::sync::Db::sqlite(work.path());
    backup_while_pushing_then_restore(&db, work.path());
}

#[test]
fn the_server_is_backed_up_while_serving_and_restored_on_postgres() {
    let work = tempfile::tempdir().unwrap();
    let db = crate::sync::Db::postgres();
    backup_while_pushing_then_restore(&db, work.path());
}

/// A province's PKI: a root, an intermediate, and a server certificate for `names` from the
/// intermediate, as files in `dir`: (root, intermediate, chain, key).
fn province_pki(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca = |cn: &str| {
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::OrganizationName, "Công an tỉnh Đắk Lắk");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p
    };
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca("PKI tỉnh: gốc");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);
    let inter_key = KeyPair::generate().unwrap();
    let inter_params = ca("PKI tỉnh: trung gian");
    let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
    let inter_issuer = Issuer::new(inter_params, inter_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    for n in names {
        p.subject_alt_names
            .push(match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().unwrap()),
            });
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = p.signed_by(&key, &inter_issuer).unwrap();
    let files = (
        dir.join("root.pem"),
        dir.join("inter.pem"),
        dir.join("chain.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&files.0, root.pem()).unwrap();
    std::fs::write(&files.1, inter.pem()).unwrap();
    std::fs::write(&files.2, format!("{}{}", leaf.pem(), inter.pem())).unwrap();
    std::fs::write(&files.3, key.serialize_pem()).unwrap();
    files
}

fn curl_healthz(port: u16, ca: &Path) -> std::process::Output {
    std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap()
}

#[test]
fn a_certificate_from_the_provinces_pki_is_served_once_the_stations_trust_is_handed_over() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (db, server) = crate::sync::sqlite_server(w);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let laptop = enroll(&db, &server, "24280", w);
    let tip = r#"{"content": "Tin báo trộm bò ở Buôn Drai", "category": "crime_report"}"#;
    laptop.ok(&["tip", "add"], Some(tip));
    laptop.sync();
    drop(server);

    let (root, inter, chain, key) = province_pki(w, &["127.0.0.1", "localhost"]);
    let (chain_s, key_s) = (chain.to_str().unwrap(), key.to_str().unwrap());
    let listen = format!("127.0.0.1:{port}");
    let pki_args = ["--tls-cert", chain_s, "--tls-key", key_s];

    // Before the hand-over the stations would refuse it, and so the server does not start,
    // saying what to do.
    let out = crate::sync::run(
        crate::sync::server_bin(&db)
            .args(["serve", "--db", &db, "--listen", &listen])
            .args(pki_args),
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ca --hand-over-to"), "{said}");

    // The hand-over, to the authority that issued the certificate: nothing is handed over
    // until the fingerprint the province's PKI publishes is given and matches.
    let inter_s = inter.to_str().unwrap();
    let out = crate::sync::run(crate::sync::server_bin(&db).args([
        "ca",
        "--db",
        &db,
        "--hand-over-to",
        inter_s,
    ]));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    let fingerprint: String = said
        .split("--fingerprint ")
        .nth(1)
        .unwrap_or_else(|| panic!("{said}"))
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(fingerprint.len(), 64, "{said}");
    let out = server_cmd(
        &db,
        &[
            "ca",
            "--hand-over-to",
            inter_s,
            "--fingerprint",
            &fingerprint,
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("handed over to"), "{said}");
    assert!(said.contains("PKI tỉnh: trung gian"), "{said}");
    assert!(said.contains("127.0.0.1"), "{said}");

    let server = start_server_with(&db, port, &pki_args);
    // The station, pinned to the authority it was provisioned with, syncs on.
    laptop.ok(&["tip", "add"], Some(tip));
    let report = laptop.sync();
    assert!(report["pushed"].as_u64().unwrap() >= 1, "{report}");
    // Anyone trusting the province's root (a browser, the monitoring) is shown its
    // certificate.
    let out = curl_healthz(port, &root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ca says when the served certificate and the hand-over end.
    let out = server_cmd(&db, &["ca", "--tls-cert", chain_s]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("served certificate"), "{said}");
    assert!(said.contains("trust handed over on"), "{said}");
    assert!(
        said.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("SHA-256: "),
        "{said}"
    );
    drop(server);

    // An impostor with the province's certificate and key, its trust handed over by an
    // authority of its own: the station refuses it and sends nothing.
    let impostor = format!("sqlite:{}", w.join("impostor.db").display());
    server_cmd(
        &impostor,
        &[
            "ca",
            "--hand-over-to",
            inter_s,
            "--fingerprint",
            &fingerprint,
        ],
    );
    let fake = start_server_with(&impostor, port, &pki_args);
    let out = laptop.cli(&["sync"], None);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "untrusted_server", "{err}");
    drop(fake);

    // Withdrawn: the server no longer starts with the province's certificate.
    let out = server_cmd(&db, &["ca", "--withdraw-hand-over"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("withdrawn"));
    let out = crate::sync::run(
        crate::sync::server_bin(&db)
            .args(["serve", "--db", &db, "--listen", &listen])
            .args(pki_args),
    );
    assert!(!out.status.success());
}
