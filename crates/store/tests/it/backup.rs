//! Backups on the real files: nothing readable in the file, restored only into an empty
//! directory with an officer's password, refused whole when damaged, and the restored
//! station holds what the original held.

use binhyen_domain::access::Role;
use binhyen_store::{Credentials, Station};

use crate::{add_account, now, station, tip_input, PASS, TEMP};

const SECRET_NAME: &str = "Hoàng Thị Bí Mật";
const CONTENT: &str = "Tố giác đường dây cho vay nặng lãi ở buôn Ea Kpam";

fn filled() -> (tempfile::TempDir, Station) {
    let (dir, mut s) = station();
    s.add_tip(
        &tip_input(
            serde_json::json!({"content": CONTENT, "category": "crime_denunciation",
            "reporter": {"name": SECRET_NAME, "phone": "0912345678", "secret": true}}),
        ),
        now(),
    )
    .unwrap();
    (dir, s)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_backup_is_unreadable_and_restores_whole() {
    let (_dir, mut s) = filled();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("tram.byk");
    let manifest = s.backup(&file, now()).unwrap();
    assert_eq!(manifest.unit_code, "24280");
    assert_eq!(manifest.created_by, "truong");
    let bytes = std::fs::read(&file).unwrap();
    for secret in [
        CONTENT,
        SECRET_NAME,
        "0912345678",
        "+84912345678",
        "cho vay",
    ] {
        assert!(!contains(&bytes, secret), "{secret} readable in the backup");
    }
    assert_eq!(Station::read_backup_manifest(&file).unwrap(), manifest);
    assert!(s
        .audit_entries(10)
        .unwrap()
        .iter()
        .any(|e| e.action == "backup.create"));
    // Only a temporary-free directory is left beside it.
    let names: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["tram.byk"]);

    let target = tempfile::tempdir().unwrap();
    let here = target.path().join("tram");
    // A wrong password opens nothing and leaves nothing behind.
    let err = Station::restore(
        &file,
        &here,
        &Credentials::new("truong", "sai mật khẩu"),
        now(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "wrong_credentials");
    assert!(!Station::exists(&here));
    let restored =
        Station::restore(&file, &here, &Credentials::new("truong", PASS), now()).unwrap();
    let tips = restored.list_tips(&Default::default()).unwrap();
    assert_eq!(tips.len(), 1);
    assert_eq!(tips[0].content, CONTENT);
    let mut restored = restored;
    let full = restored
        .reveal_tip(&tips[0].id.to_string(), "kiểm tra bản khôi phục", now())
        .unwrap();
    assert_eq!(full.reporter.unwrap().name.as_deref(), Some(SECRET_NAME));
    assert!(restored
        .audit_entries(10)
        .unwrap()
        .iter()
        .any(|e| e.action == "backup.restore"));
    assert!(restored.verify_audit().unwrap().ok);
    drop(restored);
    // Never over a station.
    let err = Station::restore(&file, &here, &Credentials::new("truong", PASS), now()).unwrap_err();
    assert_eq!(err.code(), "station_exists");
    assert!(Station::open(&here, &Credentials::new("truong", PASS)).is_ok());
}

#[test]
fn a_damaged_or_foreign_file_is_refused_and_nothing_is_written() {
    let (_dir, mut s) = filled();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("tram.byk");
    s.backup(&file, now()).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            let at = b.len() - 4096;
            b[at] ^= 0x55;
            b
        }),
        ("foreign", b"PK\x03\x04 not a backup at all".to_vec()),
    ];
    for (what, damaged) in cases {
        let bad = out_dir.path().join(format!("{what}.byk"));
        std::fs::write(&bad, &damaged).unwrap();
        let here = out_dir.path().join(format!("restore-{what}"));
        let err =
            Station::restore(&bad, &here, &Credentials::new("truong", PASS), now()).unwrap_err();
        assert_eq!(err.code(), "bad_backup", "{what}: {err}");
        assert!(err.to_string().contains("Không có gì bị thay đổi"), "{err}");
        assert!(!Station::exists(&here), "{what}");
    }
}

#[test]
fn only_chiefs_and_administrators_back_up_and_an_enrolled_copy_must_enrol_again() {
    let (dir, mut s) = filled();
    s.sync_set("station_id", "st-1").unwrap();
    s.sync_set("secret", "bí mật của trạm").unwrap();
    add_account(&mut s, "canbo", Role::Officer);
    drop(s);
    let mut officer = Station::open(dir.path(), &Credentials::new("canbo", TEMP)).unwrap();
    officer
        .change_password(TEMP, "của cán bộ 2026", now())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = officer
        .backup(&out.path().join("x.byk"), now())
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    drop(officer);

    let mut chief = Station::open(dir.path(), &Credentials::new("truong", PASS)).unwrap();
    let file = out.path().join("tram.byk");
    chief.backup(&file, now()).unwrap();
    // Any officer of that day may restore it with their own password.
    let here = out.path().join("restored");
    let restored = Station::restore(
        &file,
        &here,
        &Credentials::new("canbo", "của cán bộ 2026"),
        now(),
    )
    .unwrap();
    assert_eq!(restored.sync_get("station_id").unwrap(), None);
    assert_eq!(restored.sync_get("secret").unwrap(), None);
}

/// A forged backup on a USB stick: a part that says it is huge, a part given twice, an
/// archive of thousands of parts. Each is refused with a reason, before anything of it is
/// read into memory or written.
#[test]
fn a_forged_backup_is_refused_before_it_is_read_whole() {
    let (_dir, mut s) = filled();
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("that.byk");
    s.backup(&good, now()).unwrap();
    let part = |name: &str| -> Vec<u8> {
        let mut archive = tar::Archive::new(std::fs::File::open(&good).unwrap());
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == name {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).unwrap();
                return v;
            }
        }
        panic!("{name} missing");
    };
    let manifest = part("binhyen-backup.json");
    let write = |name: &str, parts: &[(&str, u64, &[u8])]| -> std::path::PathBuf {
        let path = work.path().join(name);
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (part, declared, bytes) in parts {
            let mut h = tar::Header::new_gnu();
            h.set_size(*declared);
            h.set_mode(0o600);
            h.set_cksum();
            // What follows the header is whatever the forger put there.
            b.append_data(&mut h.clone(), part, *bytes).ok();
        }
        b.into_inner().unwrap();
        path
    };
    let huge = write(
        "huge.byk",
        &[
            ("binhyen-backup.json", manifest.len() as u64, &manifest),
            ("keys.json", 3, b"{}\n"),
            ("station.db", 40 * 1024 * 1024 * 1024, b"SQLite format 3"),
        ],
    );
    let twice = write(
        "twice.byk",
        &[
            ("binhyen-backup.json", manifest.len() as u64, &manifest),
            ("binhyen-backup.json", manifest.len() as u64, &manifest),
        ],
    );
    let many: Vec<(String, u64, Vec<u8>)> = (0..2000)
        .map(|i| (format!("x{i}"), 1, vec![b'x']))
        .collect();
    let many_refs: Vec<(&str, u64, &[u8])> = many
        .iter()
        .map(|(n, d, b)| (n.as_str(), *d, b.as_slice()))
        .collect();
    let many = write("many.byk", &many_refs);
    for (file, says) in [
        (huge, "lớn bất thường"),
        (twice, "hai lần"),
        (many, "không phải"),
    ] {
        let here = work.path().join(file.file_stem().unwrap()).join("restored");
        let err = Station::restore(&file, &here, &Credentials::new("truong", PASS), now())
            .err()
            .unwrap_or_else(|| panic!("{} was restored", file.display()));
        assert_eq!(err.code(), "bad_backup", "{err}");
        assert!(err.to_string().contains(says), "{}: {err}", file.display());
        assert!(!Station::exists(&here));
    }
}
