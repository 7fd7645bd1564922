//! Officers' accounts on the real station files: each role's permissions allowed and
//! refused through the library, passwords per officer, disabling, temporary passwords, the
//! station passphrase of older versions, and the recovery code.

use binhyen_domain::access::{Permission, Role};
use binhyen_domain::period::Period;
use binhyen_domain::tip::{Status, TipPatch};
use binhyen_store::accounts::NewAccount;
use binhyen_store::documents::DocKind;
use binhyen_store::report_export::ReportFormat;
use binhyen_store::{Credentials, FirstOfficer, Station};

use crate::{add_account, now, station, tip_input, PASS, TEMP};

const OWN: &str = "của riêng tôi 2026";

fn add(s: &mut Station, user: &str, role: Role) -> String {
    add_account(s, user, role)
}

/// Signs `user` in for the first time and sets their own password.
fn first_sign_in(dir: &std::path::Path, user: &str) -> Station {
    let mut s = Station::open(dir, &Credentials::new(user, TEMP)).unwrap();
    assert!(s.session().must_change_password);
    // Nothing works with a password someone else chose.
    assert_eq!(
        s.list_tips(&Default::default()).unwrap_err().code(),
        "password_change_required"
    );
    s.change_password(TEMP, OWN, now()).unwrap();
    assert!(!s.session().must_change_password);
    drop(s);
    Station::open(dir, &Credentials::new(user, OWN)).unwrap()
}

fn forbidden<T: std::fmt::Debug>(r: binhyen_store::Result<T>) -> bool {
    matches!(r, Err(binhyen_store::StoreError::Forbidden { .. }))
}

#[test]
fn each_role_is_allowed_and_refused_in_the_library() {
    let (dir, mut chief) = station();
    let tip = chief
        .add_tip(
            &tip_input(
                serde_json::json!({"content": "Trộm bò ở buôn Ea Kpam", "category": "crime_report",
                "reporter": {"name": "Y Bhim", "phone": "0912345678", "secret": true}}),
            ),
            now(),
        )
        .unwrap();
    let key = tip.id.to_string();
    for (user, role) in [
        ("canbo", Role::Officer),
        ("phantich", Role::Analyst),
        ("quantri", Role::Admin),
    ] {
        add(&mut chief, user, role);
    }
    drop(chief);
    let period = Period::parse("2026-11").unwrap();

    // An officer records and follows up, sees the reporter when needed, but does not
    // transfer, close, export or manage accounts.
    let mut officer = first_sign_in(dir.path(), "canbo");
    assert_eq!(officer.session().role, Role::Officer);
    assert!(officer
        .add_tip(
            &tip_input(serde_json::json!({"content": "Đánh bạc ở chợ"})),
            now()
        )
        .is_ok());
    let verifying = TipPatch {
        status: Some(Status::Verifying),
        ..Default::default()
    };
    assert!(officer.update_tip(&key, &verifying, now()).is_ok());
    let transfer = TipPatch {
        status: Some(Status::Transferred),
        note: Some("Chuyển Cơ quan CSĐT Công an tỉnh".into()),
        ..Default::default()
    };
    assert!(forbidden(officer.update_tip(&key, &transfer, now())));
    let close = TipPatch {
        status: Some(Status::Closed),
        ..Default::default()
    };
    assert!(forbidden(officer.update_tip(&key, &close, now())));
    assert!(officer.reveal_tip(&key, "gọi lại người báo", now()).is_ok());
    assert!(forbidden(officer.assign_tip(&key, "canbo", None, now())));
    assert!(forbidden(officer.print_doc(
        &key,
        DocKind::Transfer,
        None,
        now()
    )));
    assert!(officer
        .print_doc(&key, DocKind::Reception, None, now())
        .is_ok());
    assert!(forbidden(officer.export_report(
        &period,
        ReportFormat::Csv,
        "test",
        now()
    )));
    assert!(forbidden(officer.accounts()));
    assert!(forbidden(officer.audit_entries(10)));
    assert!(officer
        .unit_report(&period, Default::default(), now())
        .is_ok());
    drop(officer);

    // A province analyst reads and exports figures, never identity, and writes nothing.
    let mut analyst = first_sign_in(dir.path(), "phantich");
    assert!(analyst.list_tips(&Default::default()).is_ok());
    assert!(forbidden(analyst.reveal_tip(
        &key,
        "xem thử danh tính",
        now()
    )));
    assert!(forbidden(analyst.add_tip(
        &tip_input(serde_json::json!({"content": "Thử ghi"})),
        now()
    )));
    assert!(forbidden(analyst.update_tip(&key, &verifying, now())));
    assert!(analyst
        .export_report(&period, ReportFormat::Csv, "test", now())
        .is_ok());
    assert!(forbidden(analyst.list_people()));
    let hits = analyst.search("trom bo", 10).unwrap();
    assert!(hits.iter().all(|h| h.kind != "person"));
    drop(analyst);

    // An administrator manages accounts and rosters, reads the audit trail, and never a tip.
    let mut admin = first_sign_in(dir.path(), "quantri");
    assert!(forbidden(admin.list_tips(&Default::default())));
    assert!(forbidden(admin.get_tip(&key)));
    assert!(admin
        .search("trom bo", 10)
        .unwrap()
        .iter()
        .all(|h| h.kind != "tip"));
    assert!(admin.accounts().is_ok());
    assert!(admin.verify_audit().unwrap().ok);
    assert!(admin.set_deadline_rules(Default::default(), now()).is_ok());
    assert!(forbidden(admin.export_report(
        &period,
        ReportFormat::Csv,
        "test",
        now()
    )));
    drop(admin);

    // The chief may do all of it.
    let mut chief = Station::open(dir.path(), &Credentials::new("truong", PASS)).unwrap();
    for p in Permission::ALL {
        assert!(chief.require(*p).is_ok(), "{p:?}");
    }
    assert!(chief.update_tip(&key, &transfer, now()).is_ok());
    assert!(chief
        .export_report(&period, ReportFormat::Csv, "test", now())
        .is_ok());
    // Every sign-in is in the audit trail, under the officer's username.
    let entries = chief.audit_entries(500).unwrap();
    for user in ["canbo", "phantich", "quantri", "truong"] {
        assert!(
            entries
                .iter()
                .any(|e| e.action == "sign_in" && e.actor == user),
            "{user}"
        );
    }
    assert!(entries
        .iter()
        .any(|e| e.action == "identity.view" && e.actor == "canbo"));
}

#[test]
fn the_receiver_handles_a_tip_until_the_chief_assigns_another_officer() {
    let (dir, mut chief) = station();
    let canbo = add(&mut chief, "canbo", Role::Officer);
    add(&mut chief, "phantich", Role::Analyst);
    let gone = add(&mut chief, "dinh", Role::Officer);
    chief.set_account_active(&gone, false, now()).unwrap();
    let own = chief.session().officer_id.clone();
    let tip = chief
        .add_tip(
            &tip_input(serde_json::json!({"content": "Trộm gà ở thôn 3"})),
            now(),
        )
        .unwrap();
    let key = tip.id.to_string();
    assert_eq!(tip.received_by.map(|u| u.to_string()), Some(own.clone()));
    assert_eq!(tip.assigned_to, tip.received_by);
    assert!(tip.assigned_to_name.is_some());

    // Only active chiefs and officers may be chosen, in Vietnamese name order.
    let choices = chief.officers().unwrap();
    assert_eq!(choices.len(), 2, "{choices:?}");
    assert!(choices.iter().any(|o| o.id == canbo));
    assert!(!choices.iter().any(|o| o.id == gone));
    for (who, why) in [
        ("phantich", "không có quyền"),
        ("dinh", "đã bị khóa"),
        ("ai-do", "Không có cán bộ"),
    ] {
        let err = chief.assign_tip(&key, who, None, now()).unwrap_err();
        assert_eq!(err.code(), "invalid", "{who}");
        assert!(err.to_string().contains(why), "{who}: {err}");
    }

    let tip = chief
        .assign_tip(&key, "canbo", Some("xác minh trong tuần"), now())
        .unwrap();
    assert_eq!(tip.assigned_to.map(|u| u.to_string()), Some(canbo.clone()));
    assert_eq!(tip.assigned_to_name.as_deref(), Some("Cán bộ canbo"));
    assert_eq!(tip.received_by.map(|u| u.to_string()), Some(own));
    let last = tip.timeline.last().unwrap();
    assert_eq!(last.kind.as_str(), "assigned");
    assert_eq!(
        last.note.as_deref(),
        Some("Cán bộ canbo: xác minh trong tuần")
    );
    // Assigning again to the same officer without a note changes nothing.
    let again = chief.assign_tip(&key, &canbo, None, now()).unwrap();
    assert_eq!(again.timeline.len(), tip.timeline.len());

    // The list filters by the handling officer, by id or username.
    chief
        .add_tip(
            &tip_input(serde_json::json!({"content": "Hỏi thủ tục tạm trú"})),
            now(),
        )
        .unwrap();
    for who in [canbo.as_str(), "canbo", "CANBO"] {
        let filter = binhyen_domain::tip::TipFilter {
            officer: Some(who.into()),
            ..Default::default()
        };
        let mine = chief.list_tips(&filter).unwrap();
        assert_eq!(mine.len(), 1, "{who}");
        assert_eq!(mine[0].id.to_string(), key);
        assert_eq!(chief.count_tips(&filter).unwrap(), 1);
    }
    let entries = chief.audit_entries(50).unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "tip.assign" && e.target.as_deref() == Some(key.as_str())));
    // The assignment is one field change that sync carries.
    let pending = chief.conn().query_row(
        "SELECT count(*) FROM changes WHERE entity = 'tip' AND entity_id = ?1 AND data LIKE '%assigned_to%'",
        [&key],
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(pending.unwrap(), 2, "insert and assignment");
    drop(chief);

    // The new handler finds it under their name.
    let officer = first_sign_in(dir.path(), "canbo");
    let filter = binhyen_domain::tip::TipFilter {
        officer: Some(canbo),
        ..Default::default()
    };
    assert_eq!(officer.list_tips(&filter).unwrap().len(), 1);
}

#[test]
fn a_disabled_officer_is_refused_and_the_password_removed() {
    let (dir, mut chief) = station();
    let id = add(&mut chief, "canbo", Role::Officer);
    drop(chief);
    drop(first_sign_in(dir.path(), "canbo"));
    let mut chief = Station::open(dir.path(), &Credentials::new("truong", PASS)).unwrap();
    // The chief cannot lock themself out, nor leave the station without a manager.
    let own = chief.session().officer_id.clone();
    assert_eq!(
        chief
            .set_account_active(&own, false, now())
            .unwrap_err()
            .code(),
        "invalid"
    );
    assert_eq!(
        chief
            .set_account_role(&own, Role::Officer, now())
            .unwrap_err()
            .code(),
        "invalid"
    );
    chief.set_account_active(&id, false, now()).unwrap();
    let keys = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
    assert!(
        !keys.contains("\"canbo\""),
        "the disabled officer's slot is gone"
    );
    assert_eq!(
        Station::open(dir.path(), &Credentials::new("canbo", OWN))
            .unwrap_err()
            .code(),
        "wrong_credentials"
    );
    // Enabled again, the officer needs a new temporary password from the chief.
    chief.set_account_active(&id, true, now()).unwrap();
    assert!(
        !chief
            .accounts()
            .unwrap()
            .iter()
            .find(|a| a.id == id)
            .unwrap()
            .password_here
    );
    chief.reset_password(&id, TEMP, now()).unwrap();
    drop(chief);
    drop(first_sign_in(dir.path(), "canbo"));
}

#[test]
fn an_admin_cannot_make_a_chief_and_usernames_are_unique() {
    let (dir, mut chief) = station();
    add(&mut chief, "quantri", Role::Admin);
    drop(chief);
    let mut admin = first_sign_in(dir.path(), "quantri");
    let err = admin
        .create_account(
            &NewAccount {
                username: "truong2".into(),
                full_name: "Trưởng mới".into(),
                role: Role::Chief,
                password: TEMP.into(),
                rank: None,
                phone: None,
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid");
    let truong = admin
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.username.as_deref() == Some("truong"))
        .unwrap();
    assert_eq!(
        admin
            .set_account_active(&truong.id, false, now())
            .unwrap_err()
            .code(),
        "invalid"
    );
    drop(admin);
    let mut chief = Station::open(dir.path(), &Credentials::new("truong", PASS)).unwrap();
    add(&mut chief, "canbo", Role::Officer);
    let dup = chief.create_account(
        &NewAccount {
            username: "CanBo".into(),
            full_name: "Người khác".into(),
            role: Role::Officer,
            password: TEMP.into(),
            rank: None,
            phone: None,
        },
        now(),
    );
    assert_eq!(
        dup.unwrap_err().to_string(),
        "Tên đăng nhập \"canbo\" đã có người dùng."
    );
    let bad = chief.create_account(
        &NewAccount {
            username: "cán bộ".into(),
            full_name: "Cán bộ".into(),
            role: Role::Officer,
            password: TEMP.into(),
            rank: None,
            phone: None,
        },
        now(),
    );
    assert_eq!(bad.unwrap_err().code(), "invalid");
}

#[test]
fn repeated_wrong_passwords_hold_the_account_back() {
    let (dir, s) = station();
    drop(s);
    let creds = Credentials::new("truong", "sai mật khẩu");
    let codes: Vec<&str> = (0..6)
        .map(|_| Station::open(dir.path(), &creds).unwrap_err().code())
        .collect();
    assert_eq!(codes[..4], ["wrong_credentials"; 4]);
    assert_eq!(codes[4..], ["locked_out"; 2]);
    // Held back: even the right password waits (the counter is in keys.json, on disk).
    let err = Station::open(dir.path(), &Credentials::new("truong", PASS)).unwrap_err();
    assert_eq!(err.code(), "locked_out");
    assert!(err.to_string().contains("giây"), "{err}");
}

#[test]
fn the_recovery_code_sets_a_new_chief_password() {
    let (dir, mut s) = station();
    s.add_tip(
        &tip_input(serde_json::json!({"content": "Trộm bò ở buôn"})),
        now(),
    )
    .unwrap();
    let code = binhyen_store::keys::new_recovery_code();
    s.set_recovery_code(&code, now()).unwrap();
    drop(s);
    let chief = FirstOfficer {
        username: "truong".into(),
        full_name: "Nguyễn Hữu Thành".into(),
        password: "mật khẩu mới sau khôi phục".into(),
        role: Role::Chief,
    };
    assert_eq!(
        Station::recover(
            dir.path(),
            &binhyen_store::keys::new_recovery_code(),
            &chief,
            now()
        )
        .unwrap_err()
        .code(),
        "wrong_recovery_code"
    );
    let s = Station::recover(dir.path(), &code.to_lowercase(), &chief, now()).unwrap();
    drop(s);
    assert!(Station::open(dir.path(), &Credentials::new("truong", PASS)).is_err());
    let s = Station::open(
        dir.path(),
        &Credentials::new("truong", "mật khẩu mới sau khôi phục"),
    )
    .unwrap();
    assert_eq!(s.count_tips(&Default::default()).unwrap(), 1);
    assert!(s
        .audit_entries(50)
        .unwrap()
        .iter()
        .any(|e| e.action == "recovery.use"));
}
