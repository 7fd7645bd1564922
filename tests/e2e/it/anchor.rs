//! The attack SECURITY.md's first attacker would make on an identity key, through the real
//! binaries: a station administrator who holds the database key plants an identity key of
//! their own in the laptop's database, grants it to an officer (anyone can seal to a public
//! key) and waits for that officer to seal the next reporter's name to it. Once the officer
//! has synced with the province (which anchors the commune's keys), they never do; before
//! their first sync they still would (the limit SECURITY.md states).

use std::process::{Command, Output};

use base64::Engine;
use serde_json::{json, Value};

use crate::sync::{bin, enroll, run, sqlite_server, Laptop, COMMUNE, PASS};

fn as_user(
    laptop: &Laptop,
    user: &str,
    password: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(bin("binhyen"));
    cmd.arg("--data-dir")
        .arg(laptop.dir.path())
        .arg("--json")
        .args(args)
        .env("BINHYEN_USER", user)
        .env("BINHYEN_PASSWORD", password);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The chief makes an officer account; the officer sets their own password.
fn officer(laptop: &Laptop, user: &str, password: &str) {
    let temp = "mật khẩu tạm 123";
    ok(as_user(
        laptop,
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
            "officer",
        ],
        &[("BINHYEN_NEW_PASSWORD", temp)],
    ));
    ok(as_user(
        laptop,
        user,
        temp,
        &["password"],
        &[("BINHYEN_NEW_PASSWORD", password)],
    ));
}

fn add_tip(laptop: &Laptop, user: &str, password: &str, reporter: &str) -> Output {
    let mut cmd = Command::new(bin("binhyen"));
    cmd.arg("--data-dir")
        .arg(laptop.dir.path())
        .args(["--json", "tip", "add"])
        .env("BINHYEN_USER", user)
        .env("BINHYEN_PASSWORD", password);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            json!({"content": "Tố giác mua bán ma túy ở bãi sông", "category": "crime_denunciation",
                   "reporter": {"name": reporter, "phone": "0905 333 444", "secret": true}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The key id a tip's reporter name is sealed to ("sealed1:KEY_ID:…"), read from the file
/// with the database key.
fn sealed_to(db: &binhyen_store::Station, tip: &str) -> String {
    let name: String = db
        .conn()
        .query_row(
            "SELECT name FROM tip_reporters WHERE tip_id = ?1",
            [tip],
            |r| r.get(0),
        )
        .unwrap();
    name.split(':').nth(1).unwrap().to_string()
}

fn open_db(laptop: &Laptop) -> binhyen_store::Station {
    binhyen_store::Station::open(
        laptop.dir.path(),
        &binhyen_store::Credentials::new("truong", PASS),
    )
    .unwrap()
}

/// Plants an identity key dated before the commune's own and grants it to the officer keys
/// of `users` (sealed to their public halves, signatures made up): what someone with the
/// database key can write. Returns the planted key's id.
fn plant_key(db: &binhyen_store::Station, users: &[&str]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let planted = crypto_box::SecretKey::generate(&mut rand::rngs::OsRng);
    let id = binhyen_store::identity::key_id(&planted.public_key());
    let authority = binhyen_domain::grant::GrantAuthority::of_identity_secret(&planted.to_bytes());
    let conn = db.conn();
    conn.execute(
        "INSERT INTO identity_keys(id, unit_code, public, created_at, retired, authority)
         VALUES (?1, ?2, ?3, '2020-01-01T00:00:00.000Z', 0, ?4)",
        (
            &id,
            COMMUNE,
            hex::encode(planted.public_key().as_bytes()),
            authority.public_hex(),
        ),
    )
    .unwrap();
    for user in users {
        let (key, public): (String, String) = conn
            .query_row(
                "SELECT k.id, k.public FROM officer_keys k JOIN officers o ON o.id = k.officer_id
                 WHERE o.username = ?1 ORDER BY k.created_at DESC LIMIT 1",
                [user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let to: [u8; 32] = hex::decode(&public).unwrap().try_into().unwrap();
        let sealed = b64.encode(
            crypto_box::PublicKey::from(to)
                .seal(&mut rand::rngs::OsRng, &planted.to_bytes())
                .unwrap(),
        );
        conn.execute(
            "INSERT INTO identity_grants(id, unit_code, key_id, officer_key_id, sealed, created_at,
                                         granted_by, signature, granter_key, granter_signature)
             VALUES (?1, ?2, ?3, ?4, ?5, '2020-01-01T00:00:00.000Z', 'x', ?6, ?4, ?6)",
            (
                format!("planted-{user}"),
                COMMUNE,
                &id,
                &key,
                &sealed,
                "00".repeat(64),
            ),
        )
        .unwrap();
    }
    id
}

#[test]
fn a_key_planted_in_the_laptops_database_is_never_sealed_to_once_the_officer_synced() {
    let work = tempfile::tempdir().unwrap();
    let (db, server) = sqlite_server(work.path());
    let a = enroll(&db, &server, COMMUNE, work.path());
    // The chief records the commune's first identity (the key is made) and syncs: the
    // province anchors it. Officer Ba syncs too (their pin), then signs in again (bound into
    // their slot); officer Mới has never synced.
    let first = ok(add_tip(&a, "truong", PASS, "Người Báo Đầu"));
    officer(&a, "canbo.ba", "mật khẩu của Ba 2026");
    a.sync();
    let real = sealed_to(&open_db(&a), first["id"].as_str().unwrap());
    let ba = |args: &[&str]| ok(as_user(&a, "canbo.ba", "mật khẩu của Ba 2026", args, &[]));
    let slot = |user: &str| -> Value {
        let keys: Value =
            serde_json::from_str(&std::fs::read_to_string(a.dir.path().join("keys.json")).unwrap())
                .unwrap();
        keys["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == user)
            .unwrap()
            .clone()
    };
    // An anchor the release key has not signed (as one from a server of the administrator's
    // own would be) is not taken.
    ba(&["sync"]);
    let status = ba(&["status"]);
    assert!(
        slot("canbo.ba").get("anchor").is_none(),
        "{}",
        slot("canbo.ba")
    );
    assert_eq!(status["identity"]["anchored"], false, "{status}");
    // Signed by the release key for the province: Ba's sync pins it, Ba's next sign-in
    // binds it into Ba's slot.
    crate::sync::certify_anchor(&db, work.path());
    a.sync();
    ba(&["sync"]);
    let status = ba(&["status"]);
    assert_eq!(status["identity"]["anchored"], true, "{status}");
    assert!(
        slot("canbo.ba")["anchor"]
            .as_str()
            .is_some_and(|a| a.len() == 64 + 6 && a.ends_with("@24280")),
        "Ba's slot pins the province's anchor: {}",
        slot("canbo.ba")
    );
    officer(&a, "canbo.moi", "mật khẩu của Mới 2026");
    // Both officers hold the commune's key (the chief grants it).
    crate::sync::grant_waiting(&a);

    // The attack: a key older than the commune's, granted to both officers.
    let planted = plant_key(&open_db(&a), &["canbo.ba", "canbo.moi"]);
    assert_ne!(planted, real);

    // Ba's next reporter is sealed to the commune's anchored key.
    let tip = ok(add_tip(
        &a,
        "canbo.ba",
        "mật khẩu của Ba 2026",
        "Người Báo Hai",
    ));
    let sealed = sealed_to(&open_db(&a), tip["id"].as_str().unwrap());
    assert_eq!(
        sealed, real,
        "Ba sealed to the anchored key, not the planted one"
    );
    // Mới, before any sync, still falls for it: the limit SECURITY.md states, and the proof
    // that this test would catch the attack.
    let tip = ok(add_tip(
        &a,
        "canbo.moi",
        "mật khẩu của Mới 2026",
        "Người Báo Ba",
    ));
    assert_eq!(
        sealed_to(&open_db(&a), tip["id"].as_str().unwrap()),
        planted
    );
    // After Mới's own sync, never again; and the province anchors only the commune's key.
    // (The sync itself may end in a checksum difference: the rows planted behind the
    // program's back are not the province's.)
    let _ = as_user(&a, "canbo.moi", "mật khẩu của Mới 2026", &["sync"], &[]);
    let tip = ok(add_tip(
        &a,
        "canbo.moi",
        "mật khẩu của Mới 2026",
        "Người Báo Bốn",
    ));
    assert_eq!(sealed_to(&open_db(&a), tip["id"].as_str().unwrap()), real);
    let anchored: Vec<String> = open_db(&a)
        .conn()
        .prepare("SELECT key_id FROM identity_anchors")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(anchored, vec![real.clone()]);

    // The certificates removed from the database: nothing is sealed to the planted key;
    // recording an identity is refused whole, with what to do.
    let db_now = open_db(&a);
    db_now
        .conn()
        .execute("DELETE FROM identity_anchors", [])
        .unwrap();
    db_now
        .conn()
        .execute("DELETE FROM anchor_pins", [])
        .unwrap();
    let tips_before = db_now
        .conn()
        .query_row("SELECT count(*) FROM tips", [], |r| r.get::<_, i64>(0))
        .unwrap();
    drop(db_now);
    let refused = add_tip(&a, "canbo.ba", "mật khẩu của Ba 2026", "Người Báo Năm");
    assert!(!refused.status.success());
    let err: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("chưa được Công an tỉnh xác nhận")),
        "{err}"
    );
    let tips_after = open_db(&a)
        .conn()
        .query_row("SELECT count(*) FROM tips", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(tips_after, tips_before, "nothing half-written");
    // Ba's next sync brings the certificates back.
    let _ = as_user(&a, "canbo.ba", "mật khẩu của Ba 2026", &["sync"], &[]);
    let tip = ok(add_tip(
        &a,
        "canbo.ba",
        "mật khẩu của Ba 2026",
        "Người Báo Sáu",
    ));
    assert_eq!(sealed_to(&open_db(&a), tip["id"].as_str().unwrap()), real);

    // The anchor in Ba's slot changed or removed in keys.json: Ba's password opens nothing.
    let path = a.dir.path().join("keys.json");
    let original = std::fs::read_to_string(&path).unwrap();
    for edit in [Some("ab".repeat(32)), None] {
        let mut keys: Value = serde_json::from_str(&original).unwrap();
        let slot = keys["slots"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|s| s["label"] == "canbo.ba")
            .unwrap();
        match &edit {
            Some(other) => slot["anchor"] = json!(other),
            None => {
                slot.as_object_mut().unwrap().remove("anchor");
            }
        }
        std::fs::write(&path, serde_json::to_string_pretty(&keys).unwrap()).unwrap();
        let out = as_user(&a, "canbo.ba", "mật khẩu của Ba 2026", &["status"], &[]);
        assert!(!out.status.success(), "{edit:?}");
    }
    std::fs::write(&path, &original).unwrap();
    ok(as_user(
        &a,
        "canbo.ba",
        "mật khẩu của Ba 2026",
        &["status"],
        &[],
    ));
    drop(server);
    let _ = db;
}
