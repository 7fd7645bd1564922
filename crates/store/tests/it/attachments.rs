//! Attachments on the real encrypted file: stored with the tip in one transaction, checked
//! by content, unreadable on disk, removed with a tombstone, and carried to the commune's
//! other laptop as a record whose content follows.

use base64::Engine;
use binhyen_domain::access::Role;
use binhyen_domain::attachment::{content_hash, NewAttachment};
use binhyen_store::attachments::Received;
use binhyen_store::{Credentials, Station};

use crate::{
    add_account, now, opts, relay, relay_scope, row_counts, station, tip_input, PASS, TEMP,
};

/// A PNG with a marker that must never appear in any file of the data directory.
fn photo(marker: &str) -> Vec<u8> {
    let mut b =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    b.extend_from_slice(marker.as_bytes());
    b
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec()
}

fn file(name: &str, data: &[u8]) -> NewAttachment {
    NewAttachment {
        file_name: name.into(),
        data_base64: base64::engine::general_purpose::STANDARD.encode(data),
    }
}

fn new_tip(s: &mut Station, files: &[NewAttachment]) -> binhyen_domain::tip::Tip {
    s.add_tip_with_files(
        &tip_input(serde_json::json!({"content": "Trộm bò ở rẫy, có ảnh dấu chân", "category": "crime_report", "channel": "zalo"})),
        files,
        now(),
    )
    .unwrap()
}

#[test]
fn files_recorded_with_the_tip_are_kept_whole_and_encrypted() {
    let (dir, mut s) = station();
    let marker = "DAU-CHAN-TRAU-BO-RAY-CA-PHE";
    let tip = new_tip(
        &mut s,
        &[
            file("ảnh hiện trường.jpg", &photo(marker)),
            file("đơn tố giác.pdf", &pdf()),
        ],
    );
    assert_eq!(tip.attachments.len(), 2);
    let a = &tip.attachments[0];
    // The type is read from the content: the name said JPEG, the bytes are a PNG.
    assert_eq!(a.media_type, "image/png");
    assert_eq!(a.file_name, "ảnh hiện trường.jpg");
    assert!(a.available);
    assert_eq!(a.size_bytes, photo(marker).len() as u64);
    assert_eq!(tip.attachments[1].media_type, "application/pdf");
    let (_, data) = s.attachment_content(&a.id.to_string()).unwrap();
    assert_eq!(data, photo(marker));
    // Each record has its change for sync.
    let changes = binhyen_store::changes::pending(s.conn(), 1000).unwrap();
    assert_eq!(
        changes.iter().filter(|c| c.entity == "attachment").count(),
        2
    );
    // The audit trail names the files by id only.
    let audit = s.audit_entries(10).unwrap();
    let created = audit.iter().find(|e| e.action == "tip.create").unwrap();
    assert!(created.detail.to_string().contains(&a.id.to_string()));
    assert!(!created.detail.to_string().contains("hiện trường"));
    drop(s);
    for entry in walkdir(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds the photo readable",
            entry.display()
        );
    }
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_refused_file_refuses_the_tip_and_writes_nothing() {
    let (_d, mut s) = station();
    let before = row_counts(&s);
    let err = s
        .add_tip_with_files(
            &tip_input(serde_json::json!({"content": "", "category": "crime_report"})),
            &[
                file("a.png", &photo("x")),
                file("virus.exe", b"MZ\x90\0\x03\0\0\0"),
            ],
            now(),
        )
        .unwrap_err();
    let fields: Vec<String> = err.field_errors().into_iter().map(|f| f.field).collect();
    assert!(fields.contains(&"content".to_string()), "{fields:?}");
    assert!(fields.contains(&"attachments.1".to_string()), "{fields:?}");
    assert!(err.to_string().contains("virus.exe"));
    // A good tip with one bad file: still nothing.
    let err = s
        .add_tip_with_files(
            &tip_input(serde_json::json!({"content": "Tin báo", "category": "crime_report"})),
            &[file("rỗng.png", b"")],
            now(),
        )
        .unwrap_err();
    assert_eq!(err.field_errors()[0].code, "empty_file");
    assert_eq!(row_counts(&s), before);
}

#[test]
fn attaching_later_removing_and_the_same_photo_twice() {
    let (_d, mut s) = station();
    let one = new_tip(&mut s, &[]);
    let two = new_tip(&mut s, &[]);
    let same = photo("cùng một ảnh");
    let added = s
        .attach_files(&one.register_no, &[file("a.png", &same)], now())
        .unwrap();
    assert_eq!(added.len(), 1);
    s.attach_files(&two.id.to_string(), &[file("b.png", &same)], now())
        .unwrap();
    let stored: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM attachment_content", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1, "the same content is kept once");
    // Removing it from one tip keeps it for the other.
    let left = s
        .remove_attachment(&added[0].id.to_string(), now())
        .unwrap();
    assert!(left.is_empty());
    let other = s.get_tip(&two.id.to_string()).unwrap();
    let (_, data) = s
        .attachment_content(&other.attachments[0].id.to_string())
        .unwrap();
    assert_eq!(data, same);
    let deletes = binhyen_store::changes::pending(s.conn(), 1000)
        .unwrap()
        .into_iter()
        .filter(|c| c.entity == "attachment" && c.op == "delete")
        .map(|c| c.unit_code)
        .collect::<Vec<_>>();
    // The delete keeps the unit of what it removed: it travels in the commune's scope.
    assert_eq!(deletes, [Some("24280".to_string())]);
    // Removing the last one drops the content.
    s.remove_attachment(&other.attachments[0].id.to_string(), now())
        .unwrap();
    let stored: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM attachment_content", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
    assert_eq!(
        s.remove_attachment(&added[0].id.to_string(), now())
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[test]
fn who_may_attach_see_and_export() {
    let (dir, mut chief) = station();
    let tip = new_tip(&mut chief, &[file("a.png", &photo("p"))]);
    let id = tip.attachments[0].id.to_string();
    for (user, role) in [("canbo", Role::Officer), ("quantri", Role::Admin)] {
        add_account(&mut chief, user, role);
    }
    // The chief exports a copy, and that is logged.
    let (_, data) = chief.export_attachment(&id, now()).unwrap();
    assert_eq!(data, photo("p"));
    assert!(chief
        .audit_entries(5)
        .unwrap()
        .iter()
        .any(|e| e.action == "attachment.export"));
    drop(chief);
    let open = |user: &str| {
        let mut s = Station::open(dir.path(), &Credentials::new(user, TEMP)).unwrap();
        s.change_password(TEMP, "của riêng tôi 2026", now())
            .unwrap();
        s
    };
    // An officer attaches and sees, but does not export.
    let mut officer = open("canbo");
    officer
        .attach_files(&tip.register_no, &[file("b.pdf", &pdf())], now())
        .unwrap();
    assert!(officer.attachment_content(&id).is_ok());
    assert_eq!(
        officer.export_attachment(&id, now()).unwrap_err().code(),
        "forbidden"
    );
    drop(officer);
    // An administrator never reads tips, so never their files either.
    let mut admin = open("quantri");
    assert_eq!(
        admin.attachment_content(&id).unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        admin
            .attach_files(&tip.register_no, &[file("c.png", &photo("c"))], now())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        admin.remove_attachment(&id, now()).unwrap_err().code(),
        "forbidden"
    );
}

#[test]
fn the_other_laptop_gets_the_record_then_the_content_sealed_for_the_commune() {
    let (_d1, mut one) = station();
    let d2 = tempfile::tempdir().unwrap();
    let mut two = Station::init(d2.path(), &opts("24280", 2, false), now()).unwrap();
    let _ = PASS;
    let content = photo("ảnh từ máy 1");
    let tip = new_tip(&mut one, &[file("a.png", &content)]);
    let hash = content_hash(&content);
    assert_eq!(one.attachments_to_upload().unwrap(), vec![hash.clone()]);
    // What goes to the server is sealed to the commune's identity key (the chief's upload
    // makes the key where the commune had none): neither the server nor a province-level
    // station can read it.
    let sealed = one.content_for_upload(&hash, now()).unwrap().unwrap();
    let (key, _) = binhyen_domain::attachment::sealed::parse(&sealed).expect("an envelope");
    let marker = "ảnh từ máy 1".as_bytes();
    assert!(!sealed.windows(marker.len()).any(|w| w == marker));
    assert_eq!(
        one.identity_status().unwrap().unit_keys,
        1,
        "the commune's key, made for it"
    );
    relay_scope(&one, &mut two, true);
    let there = two.get_tip(&tip.id.to_string()).unwrap();
    assert_eq!(there.attachments.len(), 1);
    assert!(!there.attachments[0].available);
    let aid = there.attachments[0].id.to_string();
    assert_eq!(
        two.attachment_content(&aid).unwrap_err().code(),
        "attachment_missing"
    );
    assert_eq!(two.attachments_missing().unwrap(), vec![hash.clone()]);
    // Content in clear that is not what its name says is refused.
    assert_eq!(
        two.store_downloaded_content(&hash, b"something else")
            .unwrap_err()
            .code(),
        "corrupt"
    );
    assert!(two.attachments_missing().unwrap().len() == 1);
    // Laptop 2's chief holds no key of the commune yet: the file waits sealed, is not
    // fetched again, and says why it does not open.
    assert_eq!(
        two.store_downloaded_content(&hash, &sealed).unwrap(),
        Received::Waiting
    );
    assert!(two.attachments_missing().unwrap().is_empty());
    assert_eq!(two.files_waiting_for_key().unwrap(), 1);
    let err = two.attachment_content(&aid).unwrap_err();
    assert_eq!(err.code(), "attachment_sealed");
    assert!(err.to_string().contains("niêm phong"), "{err}");
    assert_eq!(two.open_waiting_files().unwrap(), 0);
    // Laptop 1's chief grants laptop 2's key: the file opens there.
    relay_scope(&two, &mut one, true);
    let theirs = one
        .identity_holders()
        .unwrap()
        .into_iter()
        .find(|h| !h.this_laptop)
        .unwrap();
    assert_eq!(
        one.grant_identity(&theirs.officer_key_id, now()).unwrap(),
        1
    );
    relay_scope(&one, &mut two, true);
    assert_eq!(two.open_waiting_files().unwrap(), 1);
    assert_eq!(two.files_waiting_for_key().unwrap(), 0);
    assert!(two.attachments_missing().unwrap().is_empty());
    assert_eq!(two.attachment_content(&aid).unwrap().1, content);
    // A sealed file that opens to something other than its name is refused whole.
    let other = content_hash(b"another file");
    assert_eq!(
        two.store_downloaded_content(&other, &sealed)
            .unwrap_err()
            .code(),
        "corrupt"
    );
    assert_eq!(key.len(), 32);
    // It came from the server: laptop 2 does not send it back.
    assert!(two.attachments_to_upload().unwrap().is_empty());
    one.mark_content_uploaded(&hash).unwrap();
    assert!(one.attachments_to_upload().unwrap().is_empty());
    // A removal on laptop 1 reaches laptop 2, whose copy of the content goes too.
    one.remove_attachment(&tip.attachments[0].id.to_string(), now())
        .unwrap();
    relay(&one, &mut two);
    assert!(two
        .get_tip(&tip.id.to_string())
        .unwrap()
        .attachments
        .is_empty());
    assert_eq!(two.prune_attachment_content().unwrap(), 1);
}
