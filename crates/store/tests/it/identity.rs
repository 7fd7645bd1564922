//! Reporter identity under keys of its own: sealed in the database and in what travels,
//! opened only by officers whose role may see it, handed to a new officer, a new laptop of
//! the commune and a recovery slot, and never to anyone else.

use binhyen_domain::access::Role;
use binhyen_store::identity::{is_sealed, LOCKED_NAME};
use binhyen_store::{Credentials, Station};
use serde_json::json;

use crate::{add_account, now, opts, relay_scope, station, tip_input, PASS, TEMP};

const NAME: &str = "Nguyễn Thị Tố Giác";
const PHONE: &str = "0905 123 456";

fn tip_with_reporter(s: &mut Station) -> String {
    s.add_tip(
        &tip_input(json!({"content": "Trộm bò ở buôn Ea Tar",
            "reporter": {"name": NAME, "phone": PHONE, "id_number": "066190001234",
                         "address": "Buôn Ea Tar"}})),
        now(),
    )
    .unwrap()
    .id
    .to_string()
}

/// The stored row and every change record of a reporter, as anyone holding the database
/// key would read them.
fn stored_identity(s: &Station) -> Vec<String> {
    let mut values: Vec<String> = s
        .conn()
        .prepare("SELECT coalesce(name, ''), coalesce(phone, ''), coalesce(id_number, ''), coalesce(address, '') FROM tip_reporters")
        .unwrap()
        .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
        .unwrap()
        .flat_map(|r: rusqlite::Result<[String; 4]>| r.unwrap())
        .collect();
    values.extend(
        s.conn()
            .prepare("SELECT data FROM changes WHERE entity = 'tip_reporter'")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap()),
    );
    values
}

fn reveal_name(s: &mut Station, tip: &str) -> Option<String> {
    s.reveal_tip(tip, "xác minh lời khai", now())
        .unwrap()
        .reporter
        .and_then(|r| r.name)
}

/// How many grants of an identity key went to officers matching `condition` (on `o`, the
/// officer, and `g`, the grant).
fn grants_where(s: &Station, condition: &str) -> i64 {
    s.conn()
        .query_row(
            &format!(
                "SELECT count(*) FROM identity_grants g JOIN officer_keys k ON k.id = g.officer_key_id
                 JOIN officers o ON o.id = k.officer_id WHERE {condition}"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// The reception record of a tip, as printed with the reporter (for a stated reason).
fn reception_paper(s: &mut Station, tip: &str) -> binhyen_store::documents::PrintDoc {
    s.print_doc(
        tip,
        binhyen_store::documents::DocKind::Reception,
        Some("người báo ký biên bản"),
        now(),
    )
    .unwrap()
}

fn reception_paper_refused(s: &mut Station, tip: &str) -> String {
    s.print_doc(
        tip,
        binhyen_store::documents::DocKind::Reception,
        Some("người báo ký biên bản"),
        now(),
    )
    .unwrap_err()
    .code()
    .to_string()
}

fn sign_in(dir: &std::path::Path, user: &str, password: &str) -> Station {
    Station::open(dir, &Credentials::new(user, password)).unwrap()
}

#[test]
fn identity_is_sealed_in_the_database_and_the_outbox_and_the_database_key_does_not_open_it() {
    let (dir, mut chief) = station();
    let tip = tip_with_reporter(&mut chief);
    let stored = stored_identity(&chief);
    assert!(!stored.is_empty());
    for v in &stored {
        assert!(
            !v.contains("Tố Giác") && !v.contains("905123456") && !v.contains("066190001234"),
            "{v}"
        );
    }
    assert!(stored[..4].iter().all(|v| is_sealed(v)), "{stored:?}");
    assert_eq!(reveal_name(&mut chief, &tip).as_deref(), Some(NAME));

    // An administrator holds the database key (they manage accounts) but not the identity
    // key: the library refuses, and the rows they could read are sealed.
    add_account(&mut chief, "quantri", Role::Admin);
    drop(chief);
    let mut admin = sign_in(dir.path(), "quantri", TEMP);
    admin
        .change_password(TEMP, "quản trị mới 2026", now())
        .unwrap();
    assert_eq!(
        admin
            .reveal_tip(&tip, "xem danh tính người báo", now())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert!(stored_identity(&admin)[..4].iter().all(|v| is_sealed(v)));
    assert_eq!(
        grants_where(&admin, "o.username = 'quantri'"),
        0,
        "no identity key is ever sealed to an administrator"
    );
}

#[test]
fn a_new_officer_a_password_change_and_a_reset_all_keep_identity_readable() {
    let (dir, mut chief) = station();
    let tip = tip_with_reporter(&mut chief);
    let officer = add_account(&mut chief, "canbo", Role::Officer);
    add_account(&mut chief, "phantich", Role::Analyst);
    drop(chief);

    let mut s = sign_in(dir.path(), "canbo", TEMP);
    s.change_password(TEMP, "mật khẩu của cán bộ", now())
        .unwrap();
    assert_eq!(reveal_name(&mut s, &tip).as_deref(), Some(NAME));
    drop(s);
    let mut s = sign_in(dir.path(), "canbo", "mật khẩu của cán bộ");
    assert_eq!(reveal_name(&mut s, &tip).as_deref(), Some(NAME));
    // An identity the officer records, the chief reads.
    let second = tip_with_reporter(&mut s);
    drop(s);

    // A forgotten password: the old box key is gone with it; the chief's reset grants the
    // new one.
    let mut chief = sign_in(dir.path(), "truong", PASS);
    assert_eq!(reveal_name(&mut chief, &second).as_deref(), Some(NAME));
    chief
        .reset_password(&officer, "mật khẩu tạm mới", now())
        .unwrap();
    drop(chief);
    let mut s = sign_in(dir.path(), "canbo", "mật khẩu tạm mới");
    s.change_password("mật khẩu tạm mới", "mật khẩu thứ ba", now())
        .unwrap();
    assert_eq!(reveal_name(&mut s, &tip).as_deref(), Some(NAME));
    drop(s);

    // The analyst's key was published but never granted, and no paper shows them the
    // reporter.
    let mut analyst = sign_in(dir.path(), "phantich", TEMP);
    analyst
        .change_password(TEMP, "mật khẩu phân tích", now())
        .unwrap();
    let paper = analyst
        .print_doc(
            &tip,
            binhyen_store::documents::DocKind::Reception,
            None,
            now(),
        )
        .unwrap();
    assert!(paper.reporter.is_empty(), "{:?}", paper.reporter);
    assert_eq!(
        reception_paper_refused(&mut analyst, &tip),
        "forbidden",
        "an analyst prints no reporter, whatever the reason"
    );
    assert_eq!(grants_where(&analyst, "o.role = 'analyst'"), 0);
}

#[test]
fn identities_stored_in_clear_before_this_version_are_sealed_at_the_next_sign_in() {
    let (dir, mut chief) = station();
    let tip = chief
        .add_tip(&tip_input(json!({"content": "Đánh nhau ở chợ"})), now())
        .unwrap()
        .id
        .to_string();
    // As a version-9 station stored it.
    chief
        .conn()
        .execute(
            "INSERT INTO tip_reporters(tip_id, name, phone, secret) VALUES (?1, ?2, '+84905123456', 1)",
            rusqlite::params![tip, NAME],
        )
        .unwrap();
    drop(chief);
    let mut chief = sign_in(dir.path(), "truong", PASS);
    let stored = stored_identity(&chief);
    assert!(is_sealed(&stored[0]) && is_sealed(&stored[1]), "{stored:?}");
    assert!(stored.iter().all(|v| !v.contains("Tố Giác")));
    let opened = chief
        .reveal_tip(&tip, "xác minh lời khai", now())
        .unwrap()
        .reporter
        .unwrap();
    assert_eq!(opened.name.as_deref(), Some(NAME));
    assert_eq!(opened.phone.as_deref(), Some("+84905123456"));
    assert!(opened.secret);
    // The sealing travels: the other laptops replace their clear copy.
    let sealed_update = binhyen_store::changes::pending(chief.conn(), 100)
        .unwrap()
        .into_iter()
        .any(|c| c.entity == "tip_reporter" && c.op == "update");
    assert!(sealed_update);
}

/// The officer keys of another laptop, as a chief sees them on the accounts screen.
fn other_laptops_keys(s: &Station) -> Vec<binhyen_store::identity::IdentityHolder> {
    s.identity_holders()
        .unwrap()
        .into_iter()
        .filter(|h| !h.this_laptop)
        .collect()
}

#[test]
fn a_second_laptop_of_the_commune_reads_identities_once_a_chief_grants_its_key() {
    let (_a_dir, mut a) = station();
    let tip = tip_with_reporter(&mut a);
    let b_dir = tempfile::tempdir().unwrap();
    let mut b = Station::init(b_dir.path(), &opts("24280", 2, false), now()).unwrap();

    let before = b.identity_status().unwrap();
    assert_eq!((before.unit_keys, before.opened_keys), (0, 0));
    // B receives the tip and its sealed identity before anyone granted it the key.
    relay_scope(&a, &mut b, true);
    let waiting = b.identity_status().unwrap();
    assert!(waiting.may_see);
    assert_eq!(
        (
            waiting.unit_keys,
            waiting.opened_keys,
            waiting.waiting_officer_keys
        ),
        (1, 0, 1),
        "B's chief waits for the commune's key"
    );
    let locked = b
        .reveal_tip(&tip, "xác minh lời khai", now())
        .unwrap()
        .reporter
        .unwrap();
    assert_eq!(locked.name.as_deref(), Some(LOCKED_NAME));
    assert_eq!(locked.phone, None);
    // Nothing can overwrite what B cannot read.
    let err = b
        .update_tip(
            &tip,
            &serde_json::from_value(json!({"reporter": {"name": "Người khác"}})).unwrap(),
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid");
    assert!(err.to_string().contains("chưa mở được"), "{err}");

    // Nor does a paper print it.
    let paper = reception_paper(&mut b, &tip);
    assert!(paper.reporter.is_empty());
    assert!(paper.reporter_note.unwrap().contains("niêm phong"));

    // What B's chief records meanwhile is sealed to the commune's key (B makes no key of
    // its own when the commune has one): B reads it once granted.
    let early = tip_with_reporter(&mut b);
    assert_eq!(reveal_name(&mut b, &early).as_deref(), Some(LOCKED_NAME));
    assert_eq!(b.identity_status().unwrap().unit_keys, 1);

    // B's key reaches A. A's syncs and sign-ins never grant it by themselves: a key that
    // shows up is not a chief's decision.
    relay_scope(&b, &mut a, true);
    assert_eq!(reveal_name(&mut a, &early).as_deref(), Some(NAME));
    assert_eq!(a.share_identity_keys(now()).unwrap(), 0);
    relay_scope(&a, &mut b, true);
    assert_eq!(reveal_name(&mut b, &tip).as_deref(), Some(LOCKED_NAME));

    // A's chief sees it waiting, and grants it: signed, and on the audit trail.
    let waiting = other_laptops_keys(&a);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].username.as_deref(), Some("truong"));
    assert_eq!((waiting[0].keys_held, waiting[0].keys_total), (0, 1));
    assert_eq!(
        a.grant_identity(&waiting[0].officer_key_id, now()).unwrap(),
        1
    );
    assert_eq!(
        a.grant_identity(&waiting[0].officer_key_id, now()).unwrap(),
        0,
        "a key is granted once"
    );
    let grant = a
        .audit_entries(5)
        .unwrap()
        .into_iter()
        .find(|e| e.action == "identity.grant")
        .expect("the grant is on the audit trail");
    assert!(
        grant.detail.contains(&waiting[0].officer_key_id),
        "{grant:?}"
    );
    relay_scope(&a, &mut b, true);
    assert_eq!(reveal_name(&mut b, &tip).as_deref(), Some(NAME));
    assert_eq!(reveal_name(&mut b, &early).as_deref(), Some(NAME));
    let held = b.identity_status().unwrap();
    assert_eq!(
        (held.unit_keys, held.opened_keys, held.waiting_officer_keys),
        (1, 1, 0)
    );
    let paper = reception_paper(&mut b, &tip);
    assert_eq!(paper.reporter[0].value, NAME);

    // An identity B records (sealed with the commune's key it now holds) A reads.
    let from_b = tip_with_reporter(&mut b);
    relay_scope(&b, &mut a, true);
    assert_eq!(reveal_name(&mut a, &from_b).as_deref(), Some(NAME));
}

#[test]
fn two_laptops_that_each_made_a_key_before_meeting_end_with_both_once_their_chiefs_grant() {
    let (_a_dir, mut a) = station();
    let b_dir = tempfile::tempdir().unwrap();
    let mut b = Station::init(b_dir.path(), &opts("24280", 2, false), now()).unwrap();
    let from_a = tip_with_reporter(&mut a);
    let from_b = tip_with_reporter(&mut b);
    relay_scope(&a, &mut b, true);
    relay_scope(&b, &mut a, true);
    assert_eq!(a.share_identity_keys(now()).unwrap(), 0);
    assert_eq!(b.share_identity_keys(now()).unwrap(), 0);
    for s in [&mut a, &mut b] {
        for h in other_laptops_keys(s) {
            assert_eq!(s.grant_identity(&h.officer_key_id, now()).unwrap(), 1);
        }
    }
    relay_scope(&a, &mut b, true);
    relay_scope(&b, &mut a, true);
    for s in [&mut a, &mut b] {
        assert_eq!(reveal_name(s, &from_a).as_deref(), Some(NAME));
        assert_eq!(reveal_name(s, &from_b).as_deref(), Some(NAME));
    }
}

/// Someone holding the database key (an administrator of the laptop) writes an officer and
/// a box key of their own into the database, with a forged grant for good measure: no
/// sign-in, sync or key replacement ever grants them the commune's key, and the chief sees
/// the key waiting on the accounts screen.
#[test]
fn a_key_written_into_the_database_by_someone_with_the_database_key_is_never_granted() {
    let (dir, mut chief) = station();
    let officer = add_account(&mut chief, "canbo", Role::Officer);
    let tip = tip_with_reporter(&mut chief);
    let attacker = crypto_box::SecretKey::generate(&mut rand::rngs::OsRng);
    let public = hex::encode(attacker.public_key().as_bytes());
    let attacker_key = binhyen_store::identity::key_id(&attacker.public_key());
    let key_of_unit: String = chief
        .conn()
        .query_row("SELECT id FROM identity_keys", [], |r| r.get(0))
        .unwrap();
    chief
        .conn()
        .execute_batch(&format!(
            "INSERT INTO officers(id, unit_code, full_name, active, username, role, created_at, updated_at)
               VALUES ('ke-gian', '24280', 'Kẻ gian', 1, 'kegian', 'officer', '2026-11-20T03:00:00Z', '2026-11-20T03:00:00Z');
             INSERT INTO officer_keys(id, unit_code, officer_id, station_id, public, created_at)
               VALUES ('{attacker_key}', '24280', 'ke-gian', 'x', '{public}', '2026-11-20T03:00:00Z');
             INSERT INTO identity_grants(id, unit_code, key_id, officer_key_id, sealed, created_at, granted_by, signature)
               VALUES ('gia-mao', '24280', '{key_of_unit}', '{attacker_key}', 'AAAA', '2026-11-20T03:00:00Z', 'ke-gian', '{}');",
            "00".repeat(64)
        ))
        .unwrap();
    let real_grants = |s: &Station| -> i64 {
        s.conn()
            .query_row(
                "SELECT count(*) FROM identity_grants WHERE officer_key_id = ?1 AND id <> 'gia-mao'",
                [&attacker_key],
                |r| r.get(0),
            )
            .unwrap()
    };
    drop(chief);
    // The chief signs in, syncs (the same sharing), and replaces the key after disabling an
    // officer: a new key is made and passed to those a chief authorised, not to the intruder.
    let mut chief = sign_in(dir.path(), "truong", PASS);
    assert_eq!(chief.share_identity_keys(now()).unwrap(), 0);
    chief.set_account_active(&officer, false, now()).unwrap();
    let after = tip_with_reporter(&mut chief);
    assert_ne!(sealed_key(&chief, &after), sealed_key(&chief, &tip));
    assert_eq!(
        real_grants(&chief),
        0,
        "nothing was sealed to the intruder's key"
    );
    // The chief sees it waiting, by the name the intruder chose.
    let waiting: Vec<_> = chief
        .identity_holders()
        .unwrap()
        .into_iter()
        .filter(|h| h.officer_key_id == attacker_key)
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0].keys_held, 1,
        "only the forged grant, which opens nothing"
    );
    // Whatever is in the database, the intruder's secret opens no grant.
    let sealed: Vec<String> = chief
        .conn()
        .prepare("SELECT sealed FROM identity_grants")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    use base64::Engine;
    for s in sealed {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap_or_default();
        assert!(attacker.unseal(&bytes).is_err());
    }
}

/// An administrator can neither make an account that may see identity nor take one over:
/// creating or promoting one, opening a disabled one and resetting its password all need a
/// chief; an administrator's own accounts get no key.
#[test]
fn an_administrator_cannot_make_or_take_over_an_account_that_sees_identity() {
    let (dir, mut chief) = station();
    let officer = add_account(&mut chief, "canbo", Role::Officer);
    let analyst = add_account(&mut chief, "phantich", Role::Analyst);
    add_account(&mut chief, "quantri", Role::Admin);
    tip_with_reporter(&mut chief);
    drop(chief);
    let mut admin = sign_in(dir.path(), "quantri", TEMP);
    admin
        .change_password(TEMP, "quản trị mới 2026", now())
        .unwrap();
    let refused = |r: binhyen_store::Result<binhyen_store::accounts::Account>| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "invalid", "{e}");
        assert!(e.to_string().contains("Chỉ trưởng Công an xã"), "{e}");
    };
    let new = |role| binhyen_store::accounts::NewAccount {
        username: "moi".into(),
        full_name: "Cán bộ mới".into(),
        role,
        password: TEMP.into(),
        rank: None,
        phone: None,
    };
    refused(admin.create_account(&new(Role::Officer), now()));
    refused(admin.set_account_role(&analyst, Role::Officer, now()));
    refused(admin.reset_password(&officer, "mật khẩu của quản trị", now()));
    admin.set_account_active(&officer, false, now()).unwrap();
    refused(admin.set_account_active(&officer, true, now()));
    // What an administrator may do, it still does: an analyst's account, a disabled officer.
    admin.create_account(&new(Role::Analyst), now()).unwrap();
    assert_eq!(admin.identity_status().unwrap().opened_keys, 0);
    assert_eq!(
        admin.grant_identity("bất kỳ", now()).unwrap_err().code(),
        "forbidden"
    );
}

#[test]
fn a_station_recovered_with_its_code_keeps_its_reporters_identities() {
    let (dir, mut s) = station();
    let tip = tip_with_reporter(&mut s);
    let code = binhyen_store::keys::new_recovery_code();
    s.set_recovery_code(&code, now()).unwrap();
    drop(s);
    let chief = binhyen_store::FirstOfficer {
        username: "truong".into(),
        full_name: "Nguyễn Hữu Thành".into(),
        password: "mật khẩu mới sau khôi phục".into(),
        role: Role::Chief,
    };
    drop(Station::recover(dir.path(), &code, &chief, now()).unwrap());
    let mut s = sign_in(dir.path(), "truong", "mật khẩu mới sau khôi phục");
    assert_eq!(reveal_name(&mut s, &tip).as_deref(), Some(NAME));
}

#[test]
fn an_identity_received_in_clear_from_an_older_laptop_is_sealed_after_the_pull() {
    let (_a_dir, mut a) = station();
    let tip = a
        .add_tip(&tip_input(json!({"content": "Mất trộm xe máy"})), now())
        .unwrap()
        .id
        .to_string();
    let b_dir = tempfile::tempdir().unwrap();
    let mut b = Station::init(b_dir.path(), &opts("24280", 2, false), now()).unwrap();
    relay_scope(&a, &mut b, true);
    // Nothing in clear: the scan runs once, then not again.
    assert_eq!(b.seal_clear_identities(now()).unwrap(), 0);
    // A laptop still on version 9 sends its reporter in clear.
    let hlc = binhyen_store::changes::pending(a.conn(), 100)
        .unwrap()
        .last()
        .unwrap()
        .hlc
        .clone();
    let clear = binhyen_store::replica::RemoteChange {
        seq: 1000,
        change_id: uuid::Uuid::now_v7().to_string(),
        hlc,
        entity: "tip_reporter".into(),
        entity_id: tip.clone(),
        op: "insert".into(),
        data: json!({"name": NAME, "phone": "+84905123456", "secret": false})
            .as_object()
            .cloned()
            .unwrap(),
        base: None,
    };
    b.apply_remote(&[clear], now()).unwrap();
    assert_eq!(b.seal_clear_identities(now()).unwrap(), 1);
    assert!(stored_identity(&b).iter().all(|v| !v.contains("Tố Giác")));
    assert_eq!(reveal_name(&mut b, &tip).as_deref(), Some(NAME));
    assert_eq!(b.seal_clear_identities(now()).unwrap(), 0);
}

/// The key id a stored value is sealed to.
fn sealed_key(s: &Station, tip: &str) -> String {
    let name: String = s
        .conn()
        .query_row(
            "SELECT name FROM tip_reporters WHERE tip_id = ?1",
            [tip],
            |r| r.get(0),
        )
        .unwrap();
    name.trim_start_matches("sealed1:")
        .split(':')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_key_held_by_someone_who_may_no_longer_see_identity_is_retired_and_replaced() {
    let (dir, mut chief) = station();
    let officer = add_account(&mut chief, "canbo", Role::Officer);
    let second = add_account(&mut chief, "canbo2", Role::Officer);
    let before = tip_with_reporter(&mut chief);
    let first_key = sealed_key(&chief, &before);

    // Disabled: the key the officer held is retired, a new one made; new identities are
    // sealed to it, and nothing of it is sealed to the disabled officer's key.
    chief.set_account_active(&officer, false, now()).unwrap();
    let after = tip_with_reporter(&mut chief);
    let second_key = sealed_key(&chief, &after);
    assert_ne!(first_key, second_key);
    assert_eq!(
        grants_where(
            &chief,
            &format!("o.id = '{officer}' AND g.key_id = '{second_key}'")
        ),
        0
    );
    // Those who may see identity read both, the old key being kept for what it sealed.
    assert_eq!(reveal_name(&mut chief, &before).as_deref(), Some(NAME));
    assert_eq!(reveal_name(&mut chief, &after).as_deref(), Some(NAME));
    drop(chief);
    let mut s = sign_in(dir.path(), "canbo2", TEMP);
    s.change_password(TEMP, "mật khẩu cán bộ hai", now())
        .unwrap();
    assert_eq!(reveal_name(&mut s, &before).as_deref(), Some(NAME));
    assert_eq!(reveal_name(&mut s, &after).as_deref(), Some(NAME));
    drop(s);

    // Moved to a role without identity_view: the same again.
    let mut chief = sign_in(dir.path(), "truong", PASS);
    chief
        .set_account_role(&second, Role::Analyst, now())
        .unwrap();
    let third = tip_with_reporter(&mut chief);
    let third_key = sealed_key(&chief, &third);
    assert!(third_key != second_key && third_key != first_key);
    let status = chief.identity_status().unwrap();
    assert_eq!((status.unit_keys, status.opened_keys), (3, 3));
}

/// Regression: the answer to recording a tip and to an update (an empty patch included)
/// carried the reporter's identity, with no reason asked and nothing audited.
#[test]
fn recording_and_updating_answer_without_the_reporter() {
    let (_dir, mut s) = station();
    let added = s
        .add_tip(
            &tip_input(json!({"content": "Trộm bò", "reporter": {"name": NAME, "phone": PHONE}})),
            now(),
        )
        .unwrap();
    assert!(added.has_reporter && added.reporter.is_none());
    let id = added.id.to_string();
    for patch in [
        json!({}),
        json!({"note": "Đã gọi lại"}),
        json!({"reporter": {"name": NAME, "phone": PHONE}}),
        json!({"reporter": {"name": "Nguyễn Văn Khác"}}),
    ] {
        let answer = s
            .update_tip(&id, &serde_json::from_value(patch.clone()).unwrap(), now())
            .unwrap();
        assert!(answer.reporter.is_none(), "{patch}: {:?}", answer.reporter);
    }
    assert!(s.get_tip(&id).unwrap().reporter.is_none());
    // Sending the reporter unchanged (a guess checked) is on the record too.
    let unchanged_updates = s
        .audit_entries(50)
        .unwrap()
        .iter()
        .filter(|e| e.action == "tip.update" && e.detail.contains("unchanged"))
        .count();
    assert_eq!(unchanged_updates, 1);
    // A word is not a reason; nothing is audited for it.
    let err = s.reveal_tip(&id, "xem", now()).unwrap_err();
    assert_eq!(err.code(), "invalid");
    assert!(!s
        .audit_entries(50)
        .unwrap()
        .iter()
        .any(|e| e.action == "identity.view"));
    assert_eq!(reveal_name(&mut s, &id).as_deref(), Some("Nguyễn Văn Khác"));
}

/// Regression: the conflicts view opened a reporter's identity for anyone who may see it,
/// with no reason asked and nothing audited. That there is a conflict shows; the two values
/// only through the reasoned, audited reveal.
#[test]
fn a_conflict_on_a_reporter_shows_its_values_only_through_the_reveal() {
    let (_dir, mut s) = station();
    let tip = tip_with_reporter(&mut s);
    let sealed_name: String = s
        .conn()
        .query_row(
            "SELECT name FROM tip_reporters WHERE tip_id = ?1",
            [&tip],
            |r| r.get(0),
        )
        .unwrap();
    // As the server's conflict event leaves it: the same field written on two laptops.
    s.conn()
        .execute(
            "INSERT INTO conflicts(id, entity, entity_id, field, kind, local_value, local_hlc,
                                   remote_value, remote_hlc, winner, detected_at)
             VALUES ('xd-1', 'tip_reporter', ?1, 'name', 'field', ?2, '000001764000000-00000000-a',
                     ?2, '000001764000001-00000000-b', 'remote', '2026-11-20T03:00:00Z')",
            rusqlite::params![tip, serde_json::to_string(&sealed_name).unwrap()],
        )
        .unwrap();
    let listed = s.conflicts(true).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].identity && listed[0].withheld);
    let shown = serde_json::to_string(&listed).unwrap();
    assert!(
        !shown.contains("Tố Giác") && !shown.contains("sealed1:"),
        "{shown}"
    );
    assert_eq!(
        s.reveal_conflict("xd-1", "xem", now()).unwrap_err().code(),
        "invalid"
    );
    let views = |s: &Station| {
        s.audit_entries(50)
            .unwrap()
            .iter()
            .filter(|e| e.action == "identity.view")
            .count()
    };
    assert_eq!(views(&s), 0);
    let revealed = s
        .reveal_conflict("xd-1", "chọn tên đúng của người báo", now())
        .unwrap();
    assert_eq!(revealed.local_value, json!(NAME));
    assert_eq!(revealed.local_text, NAME);
    assert!(!revealed.withheld);
    assert!(
        listed[0].local_text.contains("bấm Xem"),
        "{}",
        listed[0].local_text
    );
    assert_eq!(views(&s), 1);
}

/// Regression: the tip form's draft (which may hold a reporter's name half typed) was one for
/// the whole station, in clear in the database. It is now each officer's, sealed to their own
/// box key: the database key does not open it, nor does another officer.
#[test]
fn a_draft_is_sealed_to_its_officer() {
    let (dir, mut chief) = station();
    add_account(&mut chief, "canbo", Role::Officer);
    let draft = json!({"content": "Đang ghi", "reporter": {"name": NAME}});
    chief.set_draft(Some(&draft)).unwrap();
    let raw: String = chief
        .conn()
        .query_row(
            "SELECT group_concat(value, ' ') FROM meta WHERE key LIKE 'draft%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        !raw.contains("Tố Giác") && !raw.contains("Đang ghi"),
        "{raw}"
    );
    assert_eq!(chief.draft().unwrap(), Some(draft.clone()));
    drop(chief);
    let mut officer = sign_in(dir.path(), "canbo", TEMP);
    officer
        .change_password(TEMP, "mật khẩu cán bộ mới", now())
        .unwrap();
    assert_eq!(officer.draft().unwrap(), None, "another officer's draft");
    drop(officer);
    let chief = sign_in(dir.path(), "truong", PASS);
    assert_eq!(chief.draft().unwrap(), Some(draft));
    chief.set_draft(None).unwrap();
    assert_eq!(chief.draft().unwrap(), None);
}

/// Regression (an attacker's read of the signed grants): someone with the database key makes
/// a key of their own, "grants" it to the chief (anyone can seal to a public key) and grants
/// it, signed with its own authority and their own personal key, to a recovery-like key of
/// theirs. The chief's laptop may open the planted key, but carries nothing on to the
/// intruder (at sign-in, at a sync, when a key is replaced), and new identities stay sealed
/// to the commune's own key.
#[test]
fn a_planted_identity_key_granted_to_the_chief_leads_nowhere() {
    use base64::Engine;
    use binhyen_domain::grant::{GrantAuthority, GrantTerms, PersonalKey};
    let b64 = base64::engine::general_purpose::STANDARD;
    let (dir, mut chief) = station();
    let officer = add_account(&mut chief, "canbo", Role::Officer);
    let before = tip_with_reporter(&mut chief);
    let real_key = sealed_key(&chief, &before);
    let key_of = |k: &crypto_box::PublicKey| binhyen_store::identity::key_id(k);
    let planted = crypto_box::SecretKey::generate(&mut rand::rngs::OsRng);
    let planted_id = key_of(&planted.public_key());
    let authority = GrantAuthority::of_identity_secret(&planted.to_bytes());
    let intruder = crypto_box::SecretKey::generate(&mut rand::rngs::OsRng);
    let intruder_id = key_of(&intruder.public_key());
    let intruder_public = hex::encode(intruder.public_key().as_bytes());
    let personal = PersonalKey::of_box_secret(&intruder.to_bytes());
    let (chief_key, chief_public): (String, String) = chief
        .conn()
        .query_row(
            "SELECT k.id, k.public FROM officer_keys k JOIN officers o ON o.id = k.officer_id
             WHERE o.username = 'truong'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let t = "2020-01-01T00:00:00Z";
    let conn = chief.conn();
    conn.execute(
        "INSERT INTO identity_keys(id, unit_code, public, created_at, retired, authority)
         VALUES (?1, '24280', ?2, ?3, 0, ?4)",
        (
            &planted_id,
            hex::encode(planted.public_key().as_bytes()),
            t,
            authority.public_hex(),
        ),
    )
    .unwrap();
    conn.execute(
        "INSERT INTO officer_keys(id, unit_code, officer_id, station_id, public, created_at, signing)
         VALUES (?1, '24280', NULL, 'x', ?2, ?3, ?4)",
        (&intruder_id, &intruder_public, t, personal.public_hex()),
    )
    .unwrap();
    for (grant, to, public, officer_id) in [
        (
            "g-chief",
            chief_key.as_str(),
            chief_public.as_str(),
            Some("gia"),
        ),
        (
            "g-intruder",
            intruder_id.as_str(),
            intruder_public.as_str(),
            None,
        ),
    ] {
        let to_key: [u8; 32] = hex::decode(public).unwrap().try_into().unwrap();
        let sealed = b64.encode(
            crypto_box::PublicKey::from(to_key)
                .seal(&mut rand::rngs::OsRng, &planted.to_bytes())
                .unwrap(),
        );
        let terms = GrantTerms {
            unit_code: "24280",
            key_id: &planted_id,
            officer_key_id: to,
            officer_key_public: public,
            officer_id,
            sealed: &sealed,
            granted_by: "gia",
            granter_key: &intruder_id,
            created_at: t,
        };
        conn.execute(
            "INSERT INTO identity_grants(id, unit_code, key_id, officer_key_id, sealed, created_at,
                                         granted_by, signature, granter_key, granter_signature)
             VALUES (?1, '24280', ?2, ?3, ?4, ?5, 'gia', ?6, ?7, ?8)",
            rusqlite::params![
                grant,
                planted_id,
                to,
                sealed,
                t,
                authority.sign(&terms),
                intruder_id,
                personal.sign(&terms)
            ],
        )
        .unwrap();
    }
    let real_grants_to_intruder = |s: &Station| -> i64 {
        s.conn()
            .query_row(
                "SELECT count(*) FROM identity_grants WHERE officer_key_id = ?1 AND key_id <> ?2",
                [&intruder_id, &planted_id],
                |r| r.get(0),
            )
            .unwrap()
    };
    drop(chief);
    let mut chief = sign_in(dir.path(), "truong", PASS);
    assert_eq!(chief.share_identity_keys(now()).unwrap(), 0);
    assert_eq!(real_grants_to_intruder(&chief), 0);
    // New identities go to the commune's key, not to the older planted one.
    let after = tip_with_reporter(&mut chief);
    assert_eq!(sealed_key(&chief, &after), real_key);
    // A key replaced (an officer disabled): the new key goes to those the chief granted.
    chief.set_account_active(&officer, false, now()).unwrap();
    let replaced = tip_with_reporter(&mut chief);
    assert_ne!(sealed_key(&chief, &replaced), planted_id);
    assert_eq!(real_grants_to_intruder(&chief), 0);
    assert_eq!(reveal_name(&mut chief, &replaced).as_deref(), Some(NAME));
}
