//! The server's conformance suite, run against both storage backends (the embedded SQLite
//! file and a real PostgreSQL): the HTTP API against bad input (every malformed, oversized,
//! unauthenticated, revoked, replayed or out-of-scope request gets a clear 4xx and changes
//! nothing), and the same history giving the same answers on both.
//!
//! PostgreSQL: BINHYEN_TEST_PG (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test works in a schema of its own, dropped at the end.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod simulation;

use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};

use binhyen_server::db::{sha256_hex, Backend, PgBackend, SqliteBackend};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Sqlite,
    Postgres,
}

fn pg_url() -> String {
    std::env::var("BINHYEN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL schema of its own for one test, dropped at the end.
struct PgSchema(String);

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
        }
    }
}

struct Api {
    url: String,
    db: Arc<dyn Backend>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    _schema: Option<PgSchema>,
}

impl Api {
    /// The same storage opened again: a backend that has computed nothing yet.
    fn reopened(&self) -> Arc<dyn Backend> {
        match &self._schema {
            None => Arc::new(SqliteBackend::open(&self._dir.path().join("server.db")).unwrap()),
            Some(s) => Arc::new(PgBackend::open(&pg_url(), Some(&s.0)).unwrap()),
        }
    }
}

impl Api {
    /// Runs SQL on the storage directly, behind the server's back; returns the first column
    /// of the first row, if any (text).
    fn raw(&self, sql: &str, args: &[&str]) -> Option<String> {
        match &self._schema {
            None => {
                let c = rusqlite::Connection::open(self._dir.path().join("server.db")).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let mut rows = stmt.query(rusqlite::params_from_iter(args)).unwrap();
                rows.next().unwrap().map(|r| r.get(0).unwrap())
            }
            Some(s) => {
                let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path TO {}", s.0))
                    .unwrap();
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let rows = c.query(sql, &params).unwrap();
                rows.first().map(|r| r.get(0))
            }
        }
    }
}

fn backend(kind: Kind, dir: &std::path::Path) -> (Arc<dyn Backend>, Option<PgSchema>) {
    match kind {
        Kind::Sqlite => (
            Arc::new(SqliteBackend::open(&dir.join("server.db")).unwrap()),
            None,
        ),
        Kind::Postgres => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let db = PgBackend::open(&pg_url(), Some(&schema)).unwrap_or_else(|e| {
                panic!("PostgreSQL at {} is needed for these tests: {e}", pg_url())
            });
            (Arc::new(db), Some(PgSchema(schema)))
        }
    }
}

/// Runs a test once per backend.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        $(mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Kind::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(super::Kind::Postgres)
            }
        })+
    };
}

both!(
    health_and_openapi,
    a_good_push_then_its_replay_changes_nothing,
    bad_requests_are_refused_whole,
    unauthenticated_revoked_and_cross_commune_requests_are_refused,
    a_provisioning_token_works_once,
    laptop_numbers_are_unique_per_unit,
    records_are_paged_in_checksum_order_and_stay_in_scope,
    compressed_pushes_are_read_and_broken_ones_refused,
    the_server_keeps_each_audit_chain_and_refuses_a_rewritten_one,
    the_server_keeps_the_latest_recovery_code_of_each_station,
    the_province_manages_a_units_accounts_through_its_changes,
    attachment_content_stays_in_its_commune,
    the_checksum_follows_every_change_of_its_scope,
    versions_an_older_server_stored_read_alike,
    grants_need_a_key_holders_signature_and_the_province_writes_no_commune_secrets,
    strangers_are_refused_before_their_body_is_read_and_a_station_is_bounded,
    a_trail_starts_at_its_genesis_and_a_laptop_enrolled_again_carries_it_on,
    a_stamp_far_in_the_future_is_refused_and_hours_of_skew_pass,
    the_province_anchors_a_communes_first_key_and_the_keys_it_endorses,
);

fn start(kind: Kind) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let (db, schema) = backend(kind, dir.path());
    let units = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store/data/admin-units-2025.csv"
    ))
    .unwrap();
    db.import_units(&units).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = binhyen_server::router(db.clone());
    rt.spawn(async move { axum::serve(listener, router).await });
    Api {
        url,
        db,
        _rt: rt,
        _dir: dir,
        _schema: schema,
    }
}

/// A response's status and body (JSON, or the text as a JSON string).
fn answer(mut resp: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Api {
    /// Enrols a station of `unit`; returns its bearer credentials.
    fn station(&self, unit: &str) -> String {
        self.station_numbered(unit, None)
    }

    /// Enrols a station of `unit` as laptop number `device` (the next free one by default).
    fn station_numbered(&self, unit: &str, device: Option<u32>) -> String {
        let token = format!("token-{unit}-{}", uuid::Uuid::new_v4());
        self.db
            .create_station(unit, device, &sha256_hex(&token), Utc::now())
            .unwrap();
        let (status, body) =
            self.post("/api/v1/enroll", None, &json!({"token": token}).to_string());
        assert_eq!(status, 200, "{body}");
        format!(
            "Bearer {}.{}",
            body["station_id"].as_str().unwrap(),
            body["secret"].as_str().unwrap()
        )
    }

    fn post(&self, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = agent()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        answer(req.send(body).unwrap())
    }

    /// Sends a request whose body is `len` bytes and returns the status the server answers
    /// with. The server may answer from the declared length before reading the body, so the
    /// body is written only if no answer has come, and write errors are not failures.
    fn declared_only(&self, path: &str, auth: &str, len: usize) -> u16 {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        if stream.read_exact(&mut head).is_err() {
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < len && stream.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            stream.read_exact(&mut head).unwrap();
        }
        String::from_utf8_lossy(&head[9..12]).parse().unwrap()
    }

    fn get(&self, path: &str, auth: Option<&str>) -> (u16, Value) {
        let mut req = agent().get(format!("{}{path}", self.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        answer(req.call().unwrap())
    }

    fn changes_in_scope(&self, auth: &str) -> usize {
        let (status, body) = self.get("/api/v1/pull?after=0&limit=2000", Some(auth));
        assert_eq!(status, 200);
        body["changes"].as_array().unwrap().len()
    }
}

fn change(id: &str, unit: &str, entity_id: &str, data: Value) -> Value {
    json!({"change_id": id, "hlc": "000001764000000-00000000-node1", "entity": "hamlet", "entity_id": entity_id,
           "op": "insert", "unit_code": unit, "data": data})
}

fn hamlet(unit: &str) -> Value {
    json!({"unit_code": unit, "kind": "thon", "name": "Thôn 1", "name_key": "thôn 1", "households": 10,
           "population": 40, "remote": false, "created_at": "2026-11-01T00:00:00.000Z", "updated_at": "2026-11-01T00:00:00.000Z"})
}

fn push(changes: Vec<Value>) -> String {
    json!({"batch_id": uuid::Uuid::new_v4().to_string(), "changes": changes}).to_string()
}

fn health_and_openapi(kind: Kind) {
    let api = start(kind);
    let (status, body) = api.get("/healthz", None);
    assert_eq!((status, body), (200, Value::String("ok".into())));
    let (status, doc) = api.get("/api/openapi.json", None);
    assert_eq!(status, 200);
    for path in [
        "/api/v1/enroll",
        "/api/v1/push",
        "/api/v1/pull",
        "/api/v1/checksum",
        "/api/v1/records",
        "/api/v1/audit",
        "/api/v1/recovery",
        "/api/v1/attachments/{sha256}",
        "/api/v1/release",
        "/api/v1/release/{version}/piece",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(api.get("/no/such/thing", None).0, 404);
}

fn a_good_push_then_its_replay_changes_nothing(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let b = api.station("24280");
    let body = push(vec![change("c1", "24280", "h1", hamlet("24280"))]);
    let (status, r) = api.post("/api/v1/push", Some(&a), &body);
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(1)), "{r}");
    let (status, r) = api.post("/api/v1/push", Some(&a), &body);
    assert_eq!(
        (status, r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (200, Some(0), Some(1)),
        "{r}"
    );
    assert_eq!(api.changes_in_scope(&b), 1);
}

fn bad_requests_are_refused_whole(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let b = api.station("24280");
    let good = change("ok-1", "24280", "h-ok", hamlet("24280"));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed", "{not json".into(), 400, "bad_json"),
        (
            "truncated",
            push(vec![good.clone()])[..40].to_string(),
            400,
            "bad_json",
        ),
        (
            "unknown key",
            json!({"batch_id": "x", "changes": [], "extra": 1}).to_string(),
            400,
            "bad_json",
        ),
        (
            "unknown entity",
            push(vec![
                good.clone(),
                json!({"change_id": "c2", "hlc": "000001764000000-00000000-n", "entity": "sqlite_master",
            "entity_id": "x", "op": "insert", "unit_code": "24280", "data": {}}),
            ]),
            400,
            "bad_change",
        ),
        (
            "unknown field",
            push(vec![
                good.clone(),
                change("c3", "24280", "h3", json!({"name": "x", "password": "y"})),
            ]),
            400,
            "bad_change",
        ),
        (
            "bad op",
            push(vec![
                json!({"change_id": "c4", "hlc": "000001764000000-00000000-n", "entity": "hamlet",
            "entity_id": "h4", "op": "drop", "unit_code": "24280", "data": {}}),
            ]),
            400,
            "bad_change",
        ),
        (
            "bad clock",
            push(vec![
                json!({"change_id": "c5", "hlc": "yesterday", "entity": "hamlet",
            "entity_id": "h5", "op": "insert", "unit_code": "24280", "data": {}}),
            ]),
            400,
            "bad_change",
        ),
        (
            "other commune",
            push(vec![
                good.clone(),
                change("c6", "24235", "h6", hamlet("24235")),
            ]),
            403,
            "out_of_scope",
        ),
        (
            "data of another unit",
            push(vec![change("c7", "24280", "h7", hamlet("24235"))]),
            403,
            "out_of_scope",
        ),
        // Found by schemathesis: a NUL in a name reached PostgreSQL (500). Every change is
        // now checked before anything is read for the batch.
        (
            "NUL in an entity",
            push(vec![
                good.clone(),
                json!({"change_id": "c8", "hlc": "000001764000000-00000000-n", "entity": "\u{0}ham",
            "entity_id": "h8", "op": "insert", "unit_code": "24280", "data": {}}),
            ]),
            400,
            "bad_change",
        ),
        (
            "NUL in an id",
            push(vec![
                good.clone(),
                change("c9\u{0}", "24280", "h9\u{0}", hamlet("24280")),
            ]),
            400,
            "bad_change",
        ),
        (
            "NUL in a value",
            push(vec![
                good.clone(),
                change("c10", "24280", "h10", {
                    let mut h = hamlet("24280");
                    h["name"] = json!("Thôn\u{0}");
                    h
                }),
            ]),
            400,
            "bad_change",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, err) = api.post("/api/v1/push", Some(&a), &body);
        assert_eq!(
            (got, err["code"].as_str()),
            (status, Some(code)),
            "{what}: {err}"
        );
        assert!(
            !err["message"].as_str().unwrap_or("").is_empty(),
            "{what}: a message"
        );
    }
    assert_eq!(
        api.changes_in_scope(&b),
        0,
        "nothing of a refused request is applied"
    );

    // A query or a path the API cannot read: its own JSON refusal, not the framework's text
    // (found by schemathesis).
    for path in [
        "/api/v1/pull?limit=null",
        "/api/v1/records?limit=-1",
        "/api/v1/checksum?v=-5",
        "/api/v1/release/0/piece?offset=-1",
    ] {
        let (status, err) = api.get(path, Some(&a));
        assert_eq!(
            (status, err["code"].as_str()),
            (400, Some("bad_query")),
            "{path}: {err}"
        );
    }
    // Text PostgreSQL cannot hold, anywhere in a request: refused, never a server error.
    let (status, _) = api.get("/api/v1/records?after_entity=%00&after_id=x", Some(&a));
    assert!(status < 500, "{status}");

    let huge = push(
        (0..1001)
            .map(|i| change(&format!("x{i}"), "24280", &format!("h{i}"), hamlet("24280")))
            .collect(),
    );
    assert_eq!(api.post("/api/v1/push", Some(&a), &huge).0, 413);
    // Too large by its declared length: refused before a byte of it is read.
    let declared = 9 * 1024 * 1024;
    assert_eq!(api.declared_only("/api/v1/push", &a, declared), 413);
    assert_eq!(api.changes_in_scope(&b), 0);
}

fn unauthenticated_revoked_and_cross_commune_requests_are_refused(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let other = api.station("24235");
    let body = push(vec![change("c1", "24280", "h1", hamlet("24280"))]);
    assert_eq!(api.post("/api/v1/push", None, &body).0, 401);
    assert_eq!(
        api.post("/api/v1/push", Some("Bearer nobody.secret"), &body)
            .0,
        401
    );
    let forged = format!("{}x", &a);
    assert_eq!(api.post("/api/v1/push", Some(&forged), &body).0, 401);
    assert_eq!(api.post("/api/v1/push", Some(&a), &body).0, 200);

    // Another commune may not edit this commune's record, even under its own unit code.
    let hijack = push(vec![
        json!({"change_id": "c9", "hlc": "000001764000001-00000000-n", "entity": "hamlet",
        "entity_id": "h1", "op": "update", "unit_code": "24235", "data": {"name": "Bị sửa"}, "base": {}}),
    ]);
    let (status, err) = api.post("/api/v1/push", Some(&other), &hijack);
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("out_of_scope")),
        "{err}"
    );
    assert_eq!(
        api.changes_in_scope(&other),
        0,
        "and it sees nothing of this commune"
    );

    let station_id = a
        .trim_start_matches("Bearer ")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert!(api.db.revoke(&station_id, Utc::now()).unwrap());
    let (status, err) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![change("c2", "24280", "h2", hamlet("24280"))]),
    );
    assert_eq!((status, err["code"].as_str()), (403, Some("revoked")));
    assert_eq!(api.get("/api/v1/pull", Some(&a)).0, 403);
}

fn a_provisioning_token_works_once(kind: Kind) {
    let api = start(kind);
    api.db
        .create_station("24280", None, &sha256_hex("one-time"), Utc::now())
        .unwrap();
    assert_eq!(
        api.post("/api/v1/enroll", None, r#"{"token": "one-time"}"#)
            .0,
        200
    );
    let (status, err) = api.post("/api/v1/enroll", None, r#"{"token": "one-time"}"#);
    assert_eq!((status, err["code"].as_str()), (409, Some("token_used")));
    assert_eq!(
        api.post("/api/v1/enroll", None, r#"{"token": "guessed"}"#)
            .0,
        401
    );
}

fn laptop_numbers_are_unique_per_unit(kind: Kind) {
    let api = start(kind);
    let (_, first) = api
        .db
        .create_station("24280", None, "h1", Utc::now())
        .unwrap();
    let (_, second) = api
        .db
        .create_station("24280", None, "h2", Utc::now())
        .unwrap();
    let (_, other) = api
        .db
        .create_station("24235", None, "h3", Utc::now())
        .unwrap();
    assert_eq!((first, second, other), (1, 2, 1));
    let err = api
        .db
        .create_station("24280", Some(2), "h4", Utc::now())
        .unwrap_err();
    assert!(err.to_string().contains("Máy số 2"), "{err}");
    assert!(api
        .db
        .create_station("99999", None, "h5", Utc::now())
        .is_err());
}

/// The same history pushed into both backends gives the same pulls and the same checksums.
#[test]
fn both_backends_agree() {
    let mut answers = Vec::new();
    for kind in [Kind::Sqlite, Kind::Postgres] {
        let api = start(kind);
        let a = api.station("24280");
        let b = api.station("24280");
        let p = api.station("66");
        let mut first = hamlet("24280");
        first["name"] = json!("Buôn Ea Kmar");
        api.post(
            "/api/v1/push",
            Some(&a),
            &push(vec![change("c1", "24280", "h1", first)]),
        );
        let edit = |id: &str, hlc: &str, name: &str| {
            json!({"change_id": id, "hlc": hlc, "entity": "hamlet", "entity_id": "h1", "op": "update", "unit_code": "24280",
                   "data": {"name": name}, "base": {"name": "000001764000000-00000000-node1"}})
        };
        // Two concurrent edits of one field: a conflict, the later clock wins for now.
        api.post(
            "/api/v1/push",
            Some(&a),
            &push(vec![edit("c2", "000001764000005-00000000-node1", "Buôn A")]),
        );
        api.post(
            "/api/v1/push",
            Some(&b),
            &push(vec![edit("c3", "000001764000009-00000000-node2", "Buôn B")]),
        );
        let (_, pulled) = api.get("/api/v1/pull?after=0", Some(&p));
        let (_, sum_p) = api.get("/api/v1/checksum", Some(&p));
        let (_, sum_a) = api.get("/api/v1/checksum", Some(&a));
        let seqs: Vec<i64> = pulled["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect();
        let ids: Vec<String> = pulled["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["change"]["change_id"].as_str().unwrap().to_string())
            .collect();
        // The concurrent edits, then the server's conflict event, which every station gets.
        assert_eq!(&ids[..3], ["c1", "c2", "c3"], "{kind:?}");
        assert_eq!(ids.len(), 4, "{kind:?}: {ids:?}");
        assert!(ids[3].ends_with(":open"), "{ids:?}");
        let event = &pulled["changes"][3]["change"];
        assert_eq!(
            (event["entity"].as_str(), event["data"]["field"].as_str()),
            (Some("conflict"), Some("name"))
        );
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        answers.push((
            sum_p["checksum"].clone(),
            sum_a["checksum"].clone(),
            sum_a["records"].clone(),
        ));
    }
    assert_eq!(answers[0], answers[1], "SQLite and PostgreSQL disagree");
}

/// The provisioning file names the unit, so that an installer carrying a bag of them can
/// tell which goes to which station.
#[test]
fn units_have_their_official_names() {
    let api = start(Kind::Sqlite);
    assert_eq!(
        api.db.unit_name("24280").unwrap().as_deref(),
        Some("Xã Cư M'gar")
    );
    assert_eq!(
        api.db.unit_name("66").unwrap().as_deref(),
        Some("Tỉnh Đắk Lắk")
    );
    assert_eq!(api.db.unit_name("99999").unwrap(), None);
}

fn records_are_paged_in_checksum_order_and_stay_in_scope(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let other = api.station("24235");
    let province = api.station("66");
    let body = push(vec![
        change("r1", "24280", "h-b", hamlet("24280")),
        change("r2", "24280", "h-a", hamlet("24280")),
    ]);
    assert_eq!(api.post("/api/v1/push", Some(&a), &body).0, 200);
    let (status, page) = api.get("/api/v1/records?limit=1", Some(&a));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["records"][0]["entity_id"], "h-a");
    assert_eq!(page["more"], true);
    assert!(page["records"][0]["versions"]["name"].is_string(), "{page}");
    let (_, page) = api.get(
        "/api/v1/records?limit=1&after_entity=hamlet&after_id=h-a",
        Some(&a),
    );
    assert_eq!(page["records"][0]["entity_id"], "h-b");
    let (_, page) = api.get(
        "/api/v1/records?limit=1&after_entity=hamlet&after_id=h-b",
        Some(&a),
    );
    assert_eq!(page["records"].as_array().unwrap().len(), 0);
    assert_eq!(page["more"], false);
    let (_, page) = api.get("/api/v1/records", Some(&other));
    assert_eq!(page["records"].as_array().unwrap().len(), 0, "{page}");
    let (_, page) = api.get("/api/v1/records", Some(&province));
    assert_eq!(page["records"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(api.get("/api/v1/records", None).0, 401);
}

/// What stations send (zstd) and what older ones sent (gzip) are both read; a cut body of
/// either is refused with nothing applied; a pull is answered in zstd to a station that
/// asks for it.
fn compressed_pushes_are_read_and_broken_ones_refused(kind: Kind) {
    use std::io::Write;
    let api = start(kind);
    let a = api.station("24280");
    let send = |encoding: &str, bytes: &[u8]| {
        let mut resp = agent()
            .post(format!("{}/api/v1/push", api.url))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .header("authorization", &a)
            .send(bytes)
            .unwrap();
        let status = resp.status().as_u16();
        let _ = resp.body_mut().read_to_string();
        status
    };
    let records = || {
        let (_, page) = api.get("/api/v1/records", Some(&a));
        page["records"].as_array().unwrap().len()
    };
    let body = push(vec![change("g1", "24280", "h-g", hamlet("24280"))]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let zipped = gz.finish().unwrap();
    assert_eq!(send("gzip", &zipped), 200);
    assert_eq!(
        api.changes_in_scope(&a),
        0,
        "own changes are not pulled back"
    );
    assert_eq!(records(), 1);
    let status = send("gzip", &zipped[..zipped.len() / 2]);
    assert!((400..500).contains(&status), "a cut gzip body: {status}");
    assert_eq!(records(), 1, "nothing applied");

    let body = push(vec![change("z1", "24280", "h-z", hamlet("24280"))]);
    let packed = zstd::bulk::compress(body.as_bytes(), 3).unwrap();
    let status = send("zstd", &packed[..packed.len() / 2]);
    assert!((400..500).contains(&status), "a cut zstd body: {status}");
    assert_eq!(records(), 1, "nothing applied");
    assert_eq!(send("zstd", &packed), 200);
    assert_eq!(records(), 2);

    // Another station of the commune pulls both, in zstd when it asks for it.
    let b = api.station("24280");
    let mut resp = agent()
        .get(format!("{}/api/v1/pull?after=0&limit=100", api.url))
        .header("authorization", &b)
        .header("accept-encoding", "zstd")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("zstd")
    );
    let packed = resp.body_mut().read_to_vec().unwrap();
    let page: Value = serde_json::from_slice(&zstd::stream::decode_all(&packed[..]).unwrap())
        .expect("a zstd page of JSON");
    let ids: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"]["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["h-g", "h-z"]);
}

/// The checksum a station is answered follows every change of its scope, and only of its
/// scope (a province's covers its communes'): after each push it is what a server opened
/// afresh on the same storage computes.
fn the_checksum_follows_every_change_of_its_scope(kind: Kind) {
    let api = start(kind);
    let (a, other, province) = (
        api.station("24280"),
        api.station("24235"),
        api.station("66"),
    );
    // Both versions: from the running sums (`v2:`), and by a scan (asked second: the scan
    // would put the sums right), side by side.
    let checksum = |auth: &str| {
        let (status, sums) = api.get("/api/v1/checksum?v=2", Some(auth));
        assert_eq!(status, 200, "{sums}");
        let (status, body) = api.get("/api/v1/checksum", Some(auth));
        assert_eq!(status, 200, "{body}");
        let sums = sums["checksum"].as_str().unwrap().to_string();
        assert!(sums.starts_with("v2:"), "{sums}");
        (body["checksum"].as_str().unwrap().to_string(), sums)
    };
    // A server opened afresh computes the first by a scan, and fills the running sums anew
    // from every record (as for a database from before them): the sums kept push by push
    // must equal those.
    let afresh = || {
        api.raw("DELETE FROM checksum_sums", &[]);
        api.raw("DELETE FROM server_meta WHERE key = 'checksum_sums'", &[]);
        let db = api.reopened();
        let rows = db.stations().unwrap();
        let of = |unit: &str| {
            let row = rows.iter().find(|r| r.unit_code == unit).unwrap();
            (
                db.checksum(row).unwrap().0,
                db.checksum_sums(row).unwrap().0,
            )
        };
        (of("24280"), of("24235"), of("66"))
    };
    let send = |auth: &str, id: &str, unit: &str, entity_id: &str| {
        let (status, body) = api.post(
            "/api/v1/push",
            Some(auth),
            &push(vec![change(id, unit, entity_id, hamlet(unit))]),
        );
        assert_eq!(status, 200, "{body}");
    };
    let before = (checksum(&a), checksum(&other), checksum(&province));
    assert_eq!(before, afresh());
    assert_eq!(checksum(&a), before.0, "asked again, nothing new");

    send(&a, "c1", "24280", "h-1");
    let after_a = (checksum(&a), checksum(&other), checksum(&province));
    assert_ne!(after_a.0, before.0, "the commune's own change");
    assert_eq!(after_a.1, before.1, "another commune's scope is untouched");
    assert_ne!(
        after_a.2, before.2,
        "the province sees its communes' changes"
    );
    assert_eq!(after_a, afresh());

    send(&other, "c2", "24235", "h-2");
    let after_other = (checksum(&a), checksum(&other), checksum(&province));
    assert_eq!(after_other.0, after_a.0);
    assert_ne!(after_other.1, after_a.1);
    assert_ne!(after_other.2, after_a.2);
    assert_eq!(after_other, afresh());

    // An update and a delete take the record's old line out of the sums.
    let (status, body) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![
            json!({"change_id": "c3", "hlc": "000001764000001-00000000-node1", "entity": "hamlet",
                "entity_id": "h-1", "op": "update", "unit_code": "24280", "data": {"name": "Thôn Một"}}),
            json!({"change_id": "c4", "hlc": "000001764000002-00000000-node1", "entity": "hamlet",
                "entity_id": "h-1", "op": "delete", "unit_code": "24280", "data": {}}),
        ]),
    );
    assert_eq!(status, 200, "{body}");
    let after_edits = (checksum(&a), checksum(&other), checksum(&province));
    assert_ne!(after_edits.0, after_other.0);
    assert_eq!(after_edits.1, after_other.1);
    assert_eq!(after_edits, afresh());

    // Sums left wrong by a record changed behind the server's back are put right by the
    // next comparison by a scan.
    api.raw("UPDATE checksum_sums SET a = a + 1", &[]);
    let (_, wrong) = api.get("/api/v1/checksum?v=2", Some(&a));
    assert_ne!(wrong["checksum"], after_edits.0 .1.as_str());
    let (_, scanned) = api.get("/api/v1/checksum", Some(&a));
    assert_eq!(scanned["checksum"], after_edits.0 .0.as_str());
    assert_eq!(checksum(&a), after_edits.0, "the scan put the sums right");

    let (status, body) = api.get("/api/v1/checksum?v=3", Some(&a));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("phiên bản 1 và 2"),
        "{body}"
    );
}

/// The server stores a record's versions grouped by clock value; a server before that stored
/// them as an object. A record stored so reads alike: the same checksum, the same versions
/// in `/records`, and an edit that follows it merges as one that follows.
fn versions_an_older_server_stored_read_alike(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let (status, body) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![change("c1", "24280", "h-1", hamlet("24280"))]),
    );
    assert_eq!(status, 200, "{body}");
    let p = |n: u32| match kind {
        Kind::Sqlite => format!("?{n}"),
        Kind::Postgres => format!("${n}"),
    };
    let stored = || {
        api.raw(
            &format!("SELECT versions FROM records WHERE entity_id = {}", p(1)),
            &["h-1"],
        )
        .unwrap()
    };
    assert!(stored().starts_with("[[\""), "{}", stored());
    let state = || {
        let (status, sum) = api.get("/api/v1/checksum", Some(&a));
        assert_eq!(status, 200, "{sum}");
        let (status, page) = api.get("/api/v1/records?limit=10", Some(&a));
        assert_eq!(status, 200, "{page}");
        let h = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["entity_id"] == "h-1")
            .cloned()
            .unwrap();
        (sum["checksum"].clone(), h["versions"].clone())
    };
    let grouped = state();
    assert_eq!(grouped.1["name"], "000001764000000-00000000-node1");
    api.raw(
        &format!(
            "UPDATE records SET versions = {} WHERE entity_id = {}",
            p(1),
            p(2)
        ),
        &[&grouped.1.to_string(), "h-1"],
    );
    assert!(stored().starts_with('{'), "{}", stored());
    assert_eq!(state(), grouped);
    assert_eq!(
        api.reopened()
            .checksum(&api.reopened().stations().unwrap()[0])
            .unwrap()
            .0,
        grouped.0.as_str().unwrap()
    );

    let edit = json!({"change_id": "c2", "hlc": "000001764000001-00000000-node1", "entity": "hamlet",
        "entity_id": "h-1", "op": "update", "unit_code": "24280", "data": {"name": "Thôn Một"},
        "base": {"name": "000001764000000-00000000-node1"}});
    let (status, body) = api.post("/api/v1/push", Some(&a), &push(vec![edit]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conflicts"], 0, "{body}");
    let (_, edited) = state();
    assert_eq!(edited["name"], "000001764000001-00000000-node1");
    assert_eq!(edited["households"], "000001764000000-00000000-node1");
    assert!(stored().starts_with("[[\""), "{}", stored());
}

fn audit_chain(n: i64, actor: &str) -> Vec<binhyen_domain::audit::AuditRecord> {
    let mut prev = binhyen_domain::audit::genesis("station-x");
    (1..=n)
        .map(|seq| {
            let mut e = binhyen_domain::audit::AuditRecord {
                seq,
                at: format!("2026-11-2{}T08:00:00.000Z", seq % 10),
                actor: actor.into(),
                action: "tip.create".into(),
                target: Some(format!("tip-{seq}")),
                detail: "{}".into(),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            e.hash = e.computed_hash();
            prev = e.hash.clone();
            e
        })
        .collect()
}

fn the_server_keeps_each_audit_chain_and_refuses_a_rewritten_one(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let chain = audit_chain(5, "cán bộ Hà");
    let body = |entries: &[binhyen_domain::audit::AuditRecord],
                head: &binhyen_domain::audit::AuditRecord| {
        json!({"entries": entries, "head_seq": head.seq, "head_hash": head.hash}).to_string()
    };
    let (status, resp) = api.post("/api/v1/audit", Some(&a), &body(&chain[..3], &chain[2]));
    assert_eq!(
        (status, resp["acked_seq"].as_i64()),
        (200, Some(3)),
        "{resp}"
    );
    // A replay, and the rest with an overlap: kept once.
    let (status, resp) = api.post("/api/v1/audit", Some(&a), &body(&chain[1..], &chain[4]));
    assert_eq!(
        (status, resp["acked_seq"].as_i64()),
        (200, Some(5)),
        "{resp}"
    );
    let (status, _) = api.post("/api/v1/audit", Some(&a), &body(&chain, &chain[4]));
    assert_eq!(status, 200);
    let station_id = a.trim_start_matches("Bearer ").split('.').next().unwrap();
    assert_eq!(api.db.audit_chain(station_id).unwrap(), chain);

    // The laptop's chain rewritten from entry 2 on (hashes recomputed, so it holds locally).
    let forged = audit_chain(6, "người khác");
    let (status, err) = api.post("/api/v1/audit", Some(&a), &body(&forged[5..], &forged[5]));
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("audit_rewritten")),
        "{err}"
    );
    let (status, err) = api.post("/api/v1/audit", Some(&a), &body(&[], &forged[3]));
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("audit_rewritten")),
        "{err}"
    );
    // A gap, or an entry whose hash does not hold: refused, nothing kept.
    let mut next = audit_chain(7, "cán bộ Hà");
    let (status, err) = api.post("/api/v1/audit", Some(&a), &body(&next[6..], &next[6]));
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("audit_broken")),
        "{err}"
    );
    next[5].detail = "{\"sửa\":1}".into();
    let (status, _) = api.post("/api/v1/audit", Some(&a), &body(&next[5..6], &next[5]));
    assert_eq!(status, 409);
    assert_eq!(api.db.audit_chain(station_id).unwrap().len(), 5);
    assert_eq!(
        api.post("/api/v1/audit", None, &body(&chain, &chain[4])).0,
        401
    );
}

fn the_server_keeps_the_latest_recovery_code_of_each_station(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let b = api.station("24280");
    let id = |auth: &str| {
        auth.trim_start_matches("Bearer ")
            .split('.')
            .next()
            .unwrap()
            .to_string()
    };
    let first = "ABCDE-12345-FGHJK-67890-MNPQR";
    let body = |code: &str| json!({ "code": code }).to_string();
    // Unauthenticated, malformed and mistyped codes are refused and nothing is kept.
    assert_eq!(api.post("/api/v1/recovery", None, &body(first)).0, 401);
    for bad in [
        json!({}).to_string(),
        json!({"code": first, "extra": 1}).to_string(),
        body("abcde-12345-fghjk-67890-mnpqr"),
        body("ABCDE-12345-FGHJK-67890"),
        body("ABCDE-12345-FGHJK-67890-MNPQU"),
    ] {
        let (status, r) = api.post("/api/v1/recovery", Some(&a), &bad);
        assert!(matches!(status, 400 | 422), "{bad}: {status} {r}");
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
    }
    assert_eq!(api.db.recovery_code(&id(&a)).unwrap(), None);

    let (status, r) = api.post("/api/v1/recovery", Some(&a), &body(first));
    assert_eq!(status, 200, "{r}");
    assert!(r["stored_at"].as_str().is_some());
    let second = "ZZZZZ-00000-11111-22222-33333";
    assert_eq!(api.post("/api/v1/recovery", Some(&a), &body(second)).0, 200);
    assert_eq!(
        api.db.recovery_code(&id(&a)).unwrap().map(|(c, _)| c),
        Some(second.to_string()),
        "the newest code replaces the old"
    );
    assert_eq!(api.db.recovery_code(&id(&b)).unwrap(), None, "per station");
    // A revoked station cannot replace it.
    assert!(api.db.revoke(&id(&a), Utc::now()).unwrap());
    assert_eq!(api.post("/api/v1/recovery", Some(&a), &body(first)).0, 403);
    assert_eq!(
        api.db.recovery_code(&id(&a)).unwrap().map(|(c, _)| c),
        Some(second.to_string())
    );
}

fn the_province_manages_a_units_accounts_through_its_changes(kind: Kind) {
    use binhyen_server::accounts;
    let api = start(kind);
    let laptop = api.station("24280");
    let db = api.db.as_ref();
    let now = Utc::now();
    let chief = accounts::add(db, "24280", "Truong", "Nguyễn Hữu Thành", "chief", now).unwrap();
    assert_eq!(chief.username, "truong");
    accounts::add(db, "24280", "canbo", "Y Phôn Ksơr", "officer", now).unwrap();
    accounts::add(db, "24235", "canbo", "Cán bộ xã khác", "officer", now).unwrap();
    // Bad input is refused with a reason, and nothing is written.
    let code = |r: Result<accounts::ProvinceAccount, binhyen_server::db::DbError>| match r {
        Err(binhyen_server::db::DbError::Refused(f)) => f.code,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        code(accounts::add(db, "24280", "CANBO", "Trùng", "officer", now)),
        "username_taken"
    );
    assert_eq!(
        code(accounts::add(db, "24280", "x", "Ngắn", "officer", now)),
        "bad_username"
    );
    assert_eq!(
        code(accounts::add(db, "24280", "moi", "Mới", "boss", now)),
        "bad_role"
    );
    assert_eq!(
        code(accounts::add(db, "99999", "moi", "Mới", "officer", now)),
        "unknown_unit"
    );
    assert_eq!(
        code(accounts::set_active(db, "24280", "khongco", false, now)),
        "unknown_account"
    );
    // The unit keeps someone who can manage its accounts.
    assert_eq!(
        code(accounts::set_active(db, "24280", "truong", false, now)),
        "last_manager"
    );
    assert_eq!(
        code(accounts::set_role(db, "24280", "truong", "officer", now)),
        "last_manager"
    );

    let list = accounts::list(db, "24280").unwrap();
    let names: Vec<&str> = list.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, ["canbo", "truong"], "only the unit's own accounts");
    assert_eq!(
        accounts::set_role(db, "24280", "canbo", "chief", now)
            .unwrap()
            .role,
        "chief"
    );
    let off = accounts::set_active(db, "24280", "truong", false, now).unwrap();
    assert!(!off.active);
    assert!(
        accounts::set_active(db, "24280", "truong", true, now)
            .unwrap()
            .active
    );

    // The unit's laptops pull each change; the other commune's account is not theirs.
    let (status, body) = api.get("/api/v1/pull?after=0&limit=100", Some(&laptop));
    assert_eq!(status, 200);
    let officers: Vec<&Value> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["change"])
        .filter(|c| c["entity"] == "officer")
        .collect();
    assert_eq!(
        officers.len(),
        5,
        "2 accounts added, a role, disabled, enabled: {body}"
    );
    assert!(officers.iter().all(|c| c["unit_code"] == "24280"));
    let last = officers.last().unwrap();
    assert_eq!(last["data"]["active"], 1);
    // Each change follows the one before: no conflict was raised.
    assert!(!body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["change"]["entity"] == "conflict"));
}

impl Api {
    fn put_bytes(&self, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut req = agent()
            .put(format!("{}{path}", self.url))
            .header("content-type", "application/octet-stream");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        answer(req.send(body).unwrap())
    }

    fn get_bytes(&self, path: &str, auth: &str) -> (u16, Vec<u8>) {
        let mut resp = agent()
            .get(format!("{}{path}", self.url))
            .header("authorization", auth)
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap();
        (status, body)
    }
}

/// A tip and an attachment record naming `content`, as a commune laptop pushes them.
fn tip_with_attachment(unit: &str, tip: &str, att: &str, content: &[u8]) -> String {
    let hlc = "000001764000000-00000000-node1";
    push(vec![
        json!({"change_id": format!("{tip}-c"), "hlc": hlc, "entity": "tip", "entity_id": tip, "op": "insert",
               "unit_code": unit, "data": {"unit_code": unit, "register_no": "0001/2026/M1", "register_year": 2026,
               "register_device": 1, "register_seq": 1, "received_at": "2026-11-01T00:00:00.000Z", "category": "crime_report",
               "channel": "zalo", "status": "received", "urgency": "normal", "content": "Trộm bò",
               "created_at": "2026-11-01T00:00:00.000Z", "updated_at": "2026-11-01T00:00:00.000Z"}}),
        json!({"change_id": format!("{att}-c"), "hlc": hlc, "entity": "attachment", "entity_id": att, "op": "insert",
               "unit_code": unit, "data": {"tip_id": tip, "file_name": "ảnh.png", "media_type": "image/png",
               "size_bytes": content.len(), "sha256": binhyen_domain::attachment::content_hash(content),
               "created_at": "2026-11-01T00:00:00.000Z"}}),
    ])
}

fn attachment_content_stays_in_its_commune(kind: Kind) {
    let api = start(kind);
    let a1 = api.station("24280");
    let a2 = api.station("24280");
    let other = api.station("24235");
    let province = api.station("66");
    let photo = b"\x89PNG\r\n\x1a\n a photo of the scene".to_vec();
    let hash = binhyen_domain::attachment::content_hash(&photo);
    let path = format!("/api/v1/attachments/{hash}");
    // What a commune laptop uploads: the photo sealed to the commune's identity key (the
    // server cannot open it; these bytes stand for the sealed box).
    let sealed = binhyen_domain::attachment::sealed::envelope(
        "0123456789abcdef0123456789abcdef",
        &[0x5a; 96],
    );
    // Content no record names is refused: a station cannot park files on the server.
    let (status, r) = api.put_bytes(&path, Some(&a1), &sealed);
    assert_eq!(
        (status, r["code"].as_str()),
        (404, Some("unknown_attachment")),
        "{r}"
    );
    let (status, r) = api.post(
        "/api/v1/push",
        Some(&a1),
        &tip_with_attachment("24280", "t1", "f1", &photo),
    );
    assert_eq!(status, 200, "{r}");
    // Unauthenticated, misnamed and unsealed uploads are refused and keep nothing: the
    // server never holds a commune's file in clear.
    assert_eq!(api.put_bytes(&path, None, &sealed).0, 401);
    let (status, r) = api.put_bytes("/api/v1/attachments/..%2F..%2Fetc", Some(&a1), &sealed);
    assert_eq!((status, r["code"].as_str()), (400, Some("bad_hash")), "{r}");
    let (status, r) = api.put_bytes(&path, Some(&a1), &photo);
    assert_eq!(
        (status, r["code"].as_str()),
        (422, Some("not_sealed")),
        "{r}"
    );
    assert!(r["message"]
        .as_str()
        .is_some_and(|m| m.contains("niêm phong")));
    let mut half = sealed.clone();
    half.truncate(40);
    assert_eq!(api.put_bytes(&path, Some(&a1), &half).0, 422);
    let (status, r) = api.get(&path, Some(&a2));
    assert_eq!(
        (status, r["code"].as_str()),
        (404, Some("attachment_not_here")),
        "{r}"
    );
    // Another commune cannot upload it for itself either.
    assert_eq!(api.put_bytes(&path, Some(&other), &sealed).0, 404);
    // Too large: refused before it is read whole.
    let big = vec![0u8; binhyen_domain::attachment::MAX_ATTACHMENT_BYTES + 2048];
    assert_eq!(api.put_bytes(&path, Some(&a1), &big).0, 413);

    // The laptop that attached it uploads it (twice: the second changes nothing).
    assert_eq!(api.put_bytes(&path, Some(&a1), &sealed).0, 204);
    assert_eq!(api.put_bytes(&path, Some(&a1), &sealed).0, 204);
    // The commune's other laptop gets it whole, as sealed; another commune and the
    // province do not.
    assert_eq!(api.get_bytes(&path, &a2), (200, sealed.clone()));
    assert_eq!(api.get_bytes(&path, &other).0, 404);
    assert_eq!(api.get_bytes(&path, &province).0, 404);
    let bad = api.get("/api/v1/attachments/ABC", Some(&a2));
    assert_eq!((bad.0, bad.1["code"].as_str()), (400, Some("bad_hash")));
    // A revoked laptop gets nothing.
    let id = a2
        .trim_start_matches("Bearer ")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert!(api.db.revoke(&id, Utc::now()).unwrap());
    assert_eq!(api.get_bytes(&path, &a2).0, 403);
}

fn entity_change(
    id: &str,
    entity: &str,
    unit: &str,
    entity_id: &str,
    op: &str,
    data: Value,
) -> Value {
    json!({"change_id": id, "hlc": "000001764000000-00000000-node1", "entity": entity,
           "entity_id": entity_id, "op": op, "unit_code": unit, "data": data})
}

/// A grant of an identity key must be signed by the key's grant authority, over the officer
/// key it is sealed to; keys are never edited in place; and a province-level station writes
/// none of a commune's accounts, keys, grants, reporters, files or rosters (each refused whole,
/// with its reason), only the follow-up of its tips.
fn grants_need_a_key_holders_signature_and_the_province_writes_no_commune_secrets(kind: Kind) {
    use binhyen_domain::grant::{GrantAuthority, GrantTerms, PersonalKey};
    let api = start(kind);
    let a = api.station("24280");
    let province = api.station("66");
    let authority = GrantAuthority::of_identity_secret(&[3u8; 32]);
    let chief = PersonalKey::of_box_secret(&[5u8; 32]);
    let stranger = PersonalKey::of_box_secret(&[6u8; 32]);
    let t = "2026-11-20T03:00:00Z";
    let officer_key = |id: &str, public: &str, signing: &str| {
        entity_change(
            &format!("ok-{id}"),
            "officer_key",
            "24280",
            id,
            "insert",
            json!({"unit_code": "24280", "officer_id": "o1", "station_id": "s1", "public": public,
                   "created_at": t, "signing": signing}),
        )
    };
    let terms =
        |officer_key_id: &'static str, public: &'static str, sealed: &'static str| GrantTerms {
            unit_code: "24280",
            key_id: "key-1",
            officer_key_id,
            officer_key_public: public,
            officer_id: Some("o1"),
            sealed,
            granted_by: "o1",
            granter_key: "chief-key",
            created_at: t,
        };
    let good = terms("chief-key", "bb", "AAAA");
    let grant = |change_id: &str,
                 grant_id: &str,
                 officer_key_id: &str,
                 sealed: &str,
                 sigs: Option<(String, String)>| {
        let mut data = json!({"unit_code": "24280", "key_id": "key-1", "officer_key_id": officer_key_id,
                              "sealed": sealed, "created_at": t, "granted_by": "o1",
                              "granter_key": "chief-key"});
        if let Some((s, g)) = sigs {
            data["signature"] = json!(s);
            data["granter_signature"] = json!(g);
        }
        entity_change(
            change_id,
            "identity_grant",
            "24280",
            grant_id,
            "insert",
            data,
        )
    };
    let signed = |t: &GrantTerms| Some((authority.sign(t), chief.sign(t)));
    let key = entity_change(
        "k1",
        "identity_key",
        "24280",
        "key-1",
        "insert",
        json!({"unit_code": "24280", "public": "aa", "created_at": t, "retired": 0,
               "authority": authority.public_hex()}),
    );
    let (status, r) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![
            key,
            officer_key("chief-key", "bb", &chief.public_hex()),
            officer_key("other-key", "cc", &stranger.public_hex()),
            grant("g1", "grant-1", "chief-key", "AAAA", signed(&good)),
        ]),
    );
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(4)), "{r}");

    let refused = |who: &str, changes: Vec<Value>, code: &str| {
        let before = api.changes_in_scope(&a);
        let (status, r) = api.post("/api/v1/push", Some(who), &push(changes));
        assert_eq!((status, r["code"].as_str()), (403, Some(code)), "{r}");
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
        assert_eq!(api.changes_in_scope(&a), before, "nothing of it is applied");
    };
    // Not signed; signatures moved to another officer key; junk; the granter's signature
    // made by someone else; the same grant written again with another sealed secret.
    refused(
        &a,
        vec![grant("g2", "grant-2", "other-key", "AAAA", None)],
        "unauthorised_grant",
    );
    refused(
        &a,
        vec![grant("g3", "grant-3", "other-key", "AAAA", signed(&good))],
        "unauthorised_grant",
    );
    refused(
        &a,
        vec![grant(
            "g4",
            "grant-4",
            "chief-key",
            "AAAA",
            Some(("00".repeat(64), "00".repeat(64))),
        )],
        "unauthorised_grant",
    );
    refused(
        &a,
        vec![grant(
            "g5",
            "grant-5",
            "chief-key",
            "AAAA",
            Some((authority.sign(&good), stranger.sign(&good))),
        )],
        "unauthorised_grant",
    );
    let swapped = terms("chief-key", "bb", "QkJCQg==");
    refused(
        &a,
        vec![grant(
            "g6",
            "grant-1",
            "chief-key",
            "QkJCQg==",
            signed(&swapped),
        )],
        "unauthorised_grant",
    );
    // A grant or a key removed, a retired key used again, a key's halves swapped in place.
    refused(
        &a,
        vec![entity_change(
            "del-1",
            "identity_grant",
            "24280",
            "grant-1",
            "delete",
            json!({}),
        )],
        "unauthorised_grant",
    );
    refused(
        &a,
        vec![entity_change(
            "del-2",
            "identity_key",
            "24280",
            "key-1",
            "delete",
            json!({}),
        )],
        "unauthorised_grant",
    );
    refused(
        &a,
        vec![entity_change(
            "swap-1",
            "officer_key",
            "24280",
            "other-key",
            "update",
            json!({"public": "bb"}),
        )],
        "unauthorised_grant",
    );
    refused(
        &a,
        vec![entity_change(
            "swap-3",
            "officer_key",
            "24280",
            "other-key",
            "update",
            json!({"signing": chief.public_hex()}),
        )],
        "unauthorised_grant",
    );
    let other = GrantAuthority::of_identity_secret(&[4u8; 32]).public_hex();
    refused(
        &a,
        vec![entity_change(
            "swap-2",
            "identity_key",
            "24280",
            "key-1",
            "update",
            json!({"authority": other}),
        )],
        "unauthorised_grant",
    );
    let later = |id: &str, retired: i64, ms: i64| {
        let mut c = entity_change(
            id,
            "identity_key",
            "24280",
            "key-1",
            "update",
            json!({ "retired": retired }),
        );
        c["hlc"] = json!(format!("{ms:015}-00000000-node1"));
        c
    };
    let (status, r) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![later("ret-1", 1, 1_764_000_100_000)]),
    );
    assert_eq!(status, 200, "{r}");
    refused(
        &a,
        vec![later("ret-2", 0, 1_764_000_200_000)],
        "unauthorised_grant",
    );
    // The province-level station: nothing of a commune's secrets, even well signed.
    let officer = entity_change(
        "p-1",
        "officer",
        "24280",
        "o-p",
        "insert",
        json!({"unit_code": "24280", "full_name": "Người của tỉnh", "active": true, "username": "tinh",
               "role": "chief", "created_at": t, "updated_at": t}),
    );
    let reporter = entity_change(
        "p-2",
        "tip_reporter",
        "24280",
        "t1",
        "update",
        json!({"name": "x"}),
    );
    for c in [
        officer,
        officer_key("p-key", "dd", &chief.public_hex()),
        grant("p-3", "grant-p", "chief-key", "AAAA", signed(&good)),
        reporter,
        change("p-4", "24280", "h-p", hamlet("24280")),
    ] {
        refused(&province, vec![c], "out_of_scope");
    }
    // It may follow a tip up.
    let note = entity_change(
        "p-5",
        "tip_action",
        "24280",
        "act-1",
        "insert",
        json!({"tip_id": "t1", "at": t, "kind": "note", "note": "Tỉnh đề nghị xác minh thêm", "officer_id": "p1"}),
    );
    let (status, r) = api.post("/api/v1/push", Some(&province), &push(vec![note]));
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(1)), "{r}");
}

impl Api {
    /// Sends only the headers of a request declaring a `len`-byte body, and returns the
    /// status the server answers with, waiting at most five seconds: a server that waits for
    /// the body first fails this.
    fn answer_to_headers(&self, path: &str, auth: &str, len: usize) -> u16 {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Encoding: zstd\r\nContent-Length: {len}\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        stream
            .read_exact(&mut head)
            .expect("the server answers from the headers, without waiting for the body");
        String::from_utf8_lossy(&head[9..12]).parse().unwrap()
    }

    /// Starts an upload that never finishes: the request stays in flight while the stream
    /// is kept.
    fn hanging_upload(&self, path: &str, auth: &str) -> std::net::TcpStream {
        use std::io::Write;
        let addr = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"batch_id\""
        )
        .unwrap();
        stream
    }
}

/// Work for a request starts after it is authenticated: a stranger's (or a revoked
/// station's) request is answered from its headers, its body never read nor decompressed;
/// one station's requests in flight are bounded, the one too many refused at once.
fn strangers_are_refused_before_their_body_is_read_and_a_station_is_bounded(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let wrong_secret = format!("{a}x");
    for auth in ["", "Bearer khong-co.bi-mat", wrong_secret.as_str()] {
        for path in ["/api/v1/push", "/api/v1/audit", "/api/v1/attachments/00"] {
            assert_eq!(
                api.answer_to_headers(path, auth, 4_000_000),
                401,
                "{path} {auth}"
            );
        }
    }
    let revoked = api.station("24280");
    let id = revoked
        .trim_start_matches("Bearer ")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    api.db.revoke(&id, Utc::now()).unwrap();
    assert_eq!(
        api.answer_to_headers("/api/v1/push", &revoked, 4_000_000),
        403
    );

    // A station's uploads that never finish hold their places; the one too many is refused
    // at once, and once they end the station is served again. (Four uploads are kept in
    // flight: one the server turned away, while a request of the loop held a place, is
    // replaced.)
    let answered = |s: &std::net::TcpStream| {
        s.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let answered =
            !matches!(s.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        answered
    };
    let mut hanging: Vec<std::net::TcpStream> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        hanging.retain(|s| !answered(s));
        while hanging.len() < 4 {
            hanging.push(api.hanging_upload("/api/v1/push", &a));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (status, body) = api.post("/api/v1/push", Some(&a), &push(vec![]));
        if status == 429 {
            assert_eq!(body["code"], "too_many_requests", "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the uploads never held their places"
        );
    }
    // Another station is not held back by it.
    let b = api.station("24280");
    assert_eq!(api.post("/api/v1/push", Some(&b), &push(vec![])).0, 200);
    drop(hanging);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while api.post("/api/v1/push", Some(&a), &push(vec![])).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the places were never given back"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The first entries a station sends must start its chain (entry 1, on the genesis of the id
/// it names); a laptop enrolled again hands over its whole trail again, and the earlier
/// enrolment's copy is kept as it was.
fn a_trail_starts_at_its_genesis_and_a_laptop_enrolled_again_carries_it_on(kind: Kind) {
    let api = start(kind);
    let a = api.station_numbered("24280", Some(1));
    let chain = audit_chain(5, "cán bộ Hà");
    let body = |entries: &[binhyen_domain::audit::AuditRecord], chain_id: &str| {
        let head = entries.last().unwrap();
        json!({"entries": entries, "head_seq": head.seq, "head_hash": head.hash, "chain": chain_id})
            .to_string()
    };
    let id = |auth: &str| {
        auth.trim_start_matches("Bearer ")
            .split('.')
            .next()
            .unwrap()
            .to_string()
    };
    // Cut at the start, or hung on another station's genesis: refused, nothing kept.
    for (entries, chain_id) in [(&chain[2..], "station-x"), (&chain[..3], "station-y")] {
        let (status, err) = api.post("/api/v1/audit", Some(&a), &body(entries, chain_id));
        assert_eq!(
            (status, err["code"].as_str()),
            (409, Some("audit_rewritten")),
            "{err}"
        );
    }
    assert!(api.db.audit_chain(&id(&a)).unwrap().is_empty());
    let (status, resp) = api.post("/api/v1/audit", Some(&a), &body(&chain[..3], "station-x"));
    assert_eq!(
        (status, resp["acked_seq"].as_i64()),
        (200, Some(3)),
        "{resp}"
    );

    // The laptop is lost; the province revokes it and enrols the same number again. The new
    // enrolment takes the trail from its first entry, not from where it stood.
    api.db.revoke(&id(&a), Utc::now()).unwrap();
    let again = api.station_numbered("24280", Some(1));
    let (status, err) = api.post(
        "/api/v1/audit",
        Some(&again),
        &body(&chain[3..], "station-x"),
    );
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("audit_rewritten")),
        "{err}"
    );
    let (status, resp) = api.post("/api/v1/audit", Some(&again), &body(&chain, "station-x"));
    assert_eq!(
        (status, resp["acked_seq"].as_i64()),
        (200, Some(5)),
        "{resp}"
    );
    assert_eq!(api.db.audit_chain(&id(&again)).unwrap(), chain);
    // What the lost laptop had handed over stays on the record.
    assert_eq!(api.db.audit_chain(&id(&a)).unwrap(), chain[..3].to_vec());
}

/// A change stamped more than a week ahead of the server's clock would win every merge of
/// its fields until that day: refused, with the reason; hours of skew pass.
fn a_stamp_far_in_the_future_is_refused_and_hours_of_skew_pass(kind: Kind) {
    let api = start(kind);
    let a = api.station("24280");
    let stamp = |ahead: chrono::Duration| {
        format!(
            "{:015}-00000000-node1",
            (Utc::now() + ahead).timestamp_millis()
        )
    };
    let with_hlc = |id: &str, hlc: String| {
        let mut c = change(id, "24280", &format!("h-{id}"), hamlet("24280"));
        c["hlc"] = json!(hlc);
        c
    };
    let far = with_hlc("tuong-lai", stamp(chrono::Duration::days(8)));
    let (status, err) = api.post("/api/v1/push", Some(&a), &push(vec![far]));
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("clock_ahead")),
        "{err}"
    );
    assert!(
        err["message"].as_str().unwrap().contains("đồng hồ"),
        "{err}"
    );
    assert_eq!(api.changes_in_scope(&a), 0);
    let skewed = with_hlc("lech-gio", stamp(chrono::Duration::hours(9)));
    let (status, r) = api.post("/api/v1/push", Some(&a), &push(vec![skewed]));
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(1)), "{r}");
}

/// The province anchors a commune's first identity key and each key an anchored key
/// endorsed, and certifies them with its anchor key; a key that merely arrived later (planted
/// on a laptop and pushed) is not anchored, a forged endorsement is refused whole, and a
/// station is told only its own unit's keys.
fn the_province_anchors_a_communes_first_key_and_the_keys_it_endorses(kind: Kind) {
    use binhyen_domain::grant::{self, GrantAuthority, KeyTerms};
    let api = start(kind);
    let a = api.station("24280");
    let other_commune = api.station("24235");
    let t = "2026-11-20T03:00:00Z";
    let authorities: Vec<GrantAuthority> = (1..=4u8)
        .map(|i| GrantAuthority::of_identity_secret(&[i; 32]))
        .collect();
    let key = |n: usize, endorsement: Option<(&str, String)>| {
        let mut data = json!({"unit_code": "24280", "public": format!("{n:02}").repeat(32),
                              "created_at": t, "retired": 0,
                              "authority": authorities[n - 1].public_hex()});
        if let Some((by, sig)) = endorsement {
            data["endorsed_by"] = json!(by);
            data["endorsement"] = json!(sig);
        }
        entity_change(
            &format!("k{n}"),
            "identity_key",
            "24280",
            &format!("key-{n}"),
            "insert",
            data,
        )
    };
    let terms_of = |n: usize| {
        (
            format!("key-{n}"),
            format!("{n:02}").repeat(32),
            authorities[n - 1].public_hex(),
        )
    };
    let anchored = |who: &str| -> (String, Vec<String>) {
        let (status, r) = api.get("/api/v1/identity-anchors", Some(who));
        assert_eq!(status, 200, "{r}");
        let anchor = r["anchor"].as_str().unwrap().to_string();
        let unit = r["unit_code"].as_str().unwrap().to_string();
        let mut ids = Vec::new();
        for k in r["keys"].as_array().unwrap() {
            let ok = grant::verify_certificate(
                &anchor,
                &KeyTerms {
                    unit_code: &unit,
                    key_id: k["key_id"].as_str().unwrap(),
                    public: k["public"].as_str().unwrap(),
                    authority: k["authority"].as_str().unwrap(),
                },
                k["certificate"].as_str().unwrap(),
            );
            assert!(ok, "every key is certified by the anchor: {k}");
            ids.push(k["key_id"].as_str().unwrap().to_string());
        }
        (anchor, ids)
    };
    // Before any key: none, and the anchor is there already.
    let (anchor, none) = anchored(&a);
    assert!(none.is_empty());
    assert_eq!(anchor.len(), 64);
    // The commune's first key is anchored; a second key that merely arrives is not.
    let (status, r) = api.post("/api/v1/push", Some(&a), &push(vec![key(1, None)]));
    assert_eq!(status, 200, "{r}");
    let (status, r) = api.post("/api/v1/push", Some(&a), &push(vec![key(2, None)]));
    assert_eq!(status, 200, "{r}");
    assert_eq!(anchored(&a), (anchor.clone(), vec!["key-1".to_string()]));
    // A forged endorsement (by a key that did not sign it, or naming a key of no one) is
    // refused whole.
    let (id3, public3, authority3) = terms_of(3);
    let terms3 = KeyTerms {
        unit_code: "24280",
        key_id: &id3,
        public: &public3,
        authority: &authority3,
    };
    for (by, sig) in [
        ("key-1", authorities[1].endorse(&terms3)),
        ("key-1", "00".repeat(64)),
        ("key-9", authorities[0].endorse(&terms3)),
    ] {
        let (status, r) = api.post(
            "/api/v1/push",
            Some(&a),
            &push(vec![key(3, Some((by, sig)))]),
        );
        assert_eq!(
            (status, r["code"].as_str()),
            (403, Some("unauthorised_grant")),
            "{r}"
        );
    }
    // Endorsed by the anchored key: anchored. Endorsed by the key that is not: not.
    let (status, r) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![key(
            3,
            Some(("key-1", authorities[0].endorse(&terms3))),
        )]),
    );
    assert_eq!(status, 200, "{r}");
    let (id4, public4, authority4) = terms_of(4);
    let terms4 = KeyTerms {
        unit_code: "24280",
        key_id: &id4,
        public: &public4,
        authority: &authority4,
    };
    let (status, r) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![key(
            4,
            Some(("key-2", authorities[1].endorse(&terms4))),
        )]),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        anchored(&a),
        (
            anchor.clone(),
            vec!["key-1".to_string(), "key-3".to_string()]
        )
    );
    // An endorsement, once given, is not replaced.
    let (status, r) = api.post(
        "/api/v1/push",
        Some(&a),
        &push(vec![entity_change(
            "k3-again",
            "identity_key",
            "24280",
            "key-3",
            "update",
            json!({"endorsed_by": "key-2", "endorsement": authorities[1].endorse(&terms3)}),
        )]),
    );
    assert_eq!(
        (status, r["code"].as_str()),
        (403, Some("unauthorised_grant")),
        "{r}"
    );
    // A key with no authority is not anchored as a unit's first, nor once someone gives it
    // one: only the keys it endorses could have been, and it endorses none.
    let bare = entity_change(
        "b1",
        "identity_key",
        "24235",
        "key-bare",
        "insert",
        json!({"unit_code": "24235", "public": "05".repeat(32), "created_at": t, "retired": 0}),
    );
    assert_eq!(
        api.post("/api/v1/push", Some(&other_commune), &push(vec![bare]))
            .0,
        200
    );
    let given = entity_change(
        "b2",
        "identity_key",
        "24235",
        "key-bare",
        "update",
        json!({"authority": authorities[3].public_hex()}),
    );
    assert_eq!(
        api.post("/api/v1/push", Some(&other_commune), &push(vec![given]))
            .0,
        200
    );
    assert_eq!(anchored(&other_commune), (anchor.clone(), Vec::new()));
    // Another commune's station hears of none of 24280's keys, under the same anchor.
    let (status, r) = api.get("/api/v1/identity-anchors", Some(&other_commune));
    assert_eq!(status, 200);
    assert!(!r.to_string().contains("key-1"), "{r}");
    // Unauthenticated: refused.
    assert_eq!(api.get("/api/v1/identity-anchors", None).0, 401);

    // The release key's signature of the anchor: none until the province keeps one; one for
    // another anchor or another province is refused; the stations then receive it.
    let (_, r) = api.get("/api/v1/identity-anchors", Some(&a));
    assert_eq!(r["signatures"], json!([]), "{r}");
    let sign = |province: &str, anchor: &str| -> String {
        let work = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::process::Command::new(root.join("scripts/sign-anchor.sh"))
            .arg("--key")
            .arg(root.join("packaging/release/dev-release.key"))
            .arg("--out-dir")
            .arg(work.path())
            .args([province, anchor])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(work.path().join(format!("anchor-{province}.minisig"))).unwrap()
    };
    let other_anchor = "ab".repeat(32);
    assert!(binhyen_server::anchor::certify(&*api.db, "66", &sign("66", &other_anchor)).is_err());
    let for_66 = sign("66", &anchor);
    assert!(binhyen_server::anchor::certify(&*api.db, "66", &sign("67", &anchor)).is_err());
    let mut tampered = for_66.clone();
    tampered = tampered.replace("province=66", "province=67");
    assert!(binhyen_server::anchor::certify(&*api.db, "67", &tampered).is_err());
    binhyen_server::anchor::certify(&*api.db, "66", &for_66).unwrap();
    let (_, r) = api.get("/api/v1/identity-anchors", Some(&a));
    let sigs = r["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(binhyen_protocol::release::verify_anchor(
        &anchor,
        "66",
        sigs[0].as_str().unwrap()
    ));
    assert!(!binhyen_protocol::release::verify_anchor(
        &anchor,
        "67",
        sigs[0].as_str().unwrap()
    ));
}
