//! The server's HTTP API against bad input: every malformed, oversized, unauthenticated,
//! revoked, replayed or out-of-scope request gets a clear 4xx and changes nothing.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};

use binhyen_server::db::{sha256_hex, Backend, SqliteBackend};

struct Api {
    url: String,
    db: Arc<dyn Backend>,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn start() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let db: Arc<dyn Backend> =
        Arc::new(SqliteBackend::open(&dir.path().join("server.db")).unwrap());
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
        _dir: dir,
        _rt: rt,
    }
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
        let token = format!("token-{unit}-{}", uuid::Uuid::new_v4());
        self.db
            .create_station(unit, None, &sha256_hex(&token), Utc::now())
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
        let mut resp = req.send(body).unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, path: &str, auth: Option<&str>) -> (u16, Value) {
        let mut req = agent().get(format!("{}{path}", self.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
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

#[test]
fn health_and_openapi() {
    let api = start();
    let (status, body) = api.get("/healthz", None);
    assert_eq!((status, body), (200, Value::String("ok".into())));
    let (status, doc) = api.get("/api/openapi.json", None);
    assert_eq!(status, 200);
    for path in [
        "/api/v1/enroll",
        "/api/v1/push",
        "/api/v1/pull",
        "/api/v1/checksum",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(api.get("/no/such/thing", None).0, 404);
}

#[test]
fn a_good_push_then_its_replay_changes_nothing() {
    let api = start();
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

#[test]
fn bad_requests_are_refused_whole() {
    let api = start();
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

    let huge = push(
        (0..1001)
            .map(|i| change(&format!("x{i}"), "24280", &format!("h{i}"), hamlet("24280")))
            .collect(),
    );
    assert_eq!(api.post("/api/v1/push", Some(&a), &huge).0, 413);
    let oversized = format!(
        "{{\"batch_id\": \"{}\", \"changes\": []}}",
        "x".repeat(9 * 1024 * 1024)
    );
    assert_eq!(api.post("/api/v1/push", Some(&a), &oversized).0, 413);
    assert_eq!(api.changes_in_scope(&b), 0);
}

#[test]
fn unauthenticated_revoked_and_cross_commune_requests_are_refused() {
    let api = start();
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

#[test]
fn a_provisioning_token_works_once() {
    let api = start();
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
