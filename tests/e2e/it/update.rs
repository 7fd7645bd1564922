//! The update channel with real processes: releases signed with the (development) release
//! key by `scripts/sign-release.sh`, published on a real `binhyen-server`, learnt of and
//! downloaded by stations at sync over a link that drops, checked, and applied; and every
//! release a station must refuse, refused with nothing installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sync::{bin, provision, run, server_bin, server_cmd, start_server_with, Laptop};

const COMMUNE: &str = "24280"; // Xã Cư M'gar
const OTHER: &str = "24235"; // Xã Buôn Đôn

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A station package of `version` (a real .deb, with a few megabytes that do not compress,
/// so that its download takes several pieces), signed with the development release key.
fn signed_package(dir: &Path, version: &str) -> PathBuf {
    let root = dir.join(format!("pkg-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/binhyen")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: binhyen\nVersion: {version}\nArchitecture: amd64\nMaintainer: Binh Yen <dev@binhyen.invalid>\nDescription: test release\n"
        ),
    )
    .unwrap();
    let mut noise = vec![0u8; 3 * 1024 * 1024];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ version.len() as u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(root.join("usr/share/binhyen/payload.bin"), noise).unwrap();
    let deb = dir.join(format!("binhyen_{version}_amd64.deb"));
    let out = run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "-z0", "--build"])
        .arg(&root)
        .arg(&deb));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sign(&deb, &[]);
    deb
}

fn sign(deb: &Path, extra: &[&str]) {
    let out = run(Command::new(repo().join("scripts/sign-release.sh"))
        .args(["--key"])
        .arg(repo().join("packaging/release/dev-release.key"))
        .args(extra)
        .arg(deb));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A link that drops: a TCP relay to the server that cuts every connection after `cut`
/// bytes towards the station (a 256 kbit/s line in a commune does that many times a day).
struct DroppingLink {
    port: u16,
}

impl DroppingLink {
    fn start(upstream: u16, cut: usize) -> DroppingLink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut sent = 0usize;
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let n = n.min(cut.saturating_sub(sent));
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                        if sent >= cut {
                            break; // the line drops
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                    let _ = s_in.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        DroppingLink { port }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A laptop of `unit` enrolled through `url` (the dropping link).
fn laptop(db: &str, unit: &str, url: &str, work: &Path, n: u32) -> Laptop {
    let file = work.join(format!("{unit}-{n}.json"));
    provision(db, unit, url, &file, &[]);
    let l = Laptop {
        dir: tempfile::tempdir().unwrap(),
    };
    // Enrolment may be cut by the link too: tried again, as an installer would.
    for _ in 0..5 {
        if l.cli(&["enroll", file.to_str().unwrap()], None)
            .status
            .success()
        {
            return l;
        }
    }
    l.ok(&["enroll", file.to_str().unwrap()], None);
    l
}

/// A sync over the dropping link: the sync itself may be cut too; it is tried again.
fn sync(l: &Laptop) {
    for _ in 0..8 {
        if l.cli(&["sync"], None).status.success() {
            return;
        }
    }
    panic!("no sync got through the link");
}

fn status(l: &Laptop) -> Value {
    l.ok(&["update", "status"], None)
}

/// A stand-in for the system's package tool (`BINHYEN_INSTALL_COMMAND`) that records what
/// it was given: (the tool, the file it writes). The real one runs in a Debian root in
/// scripts/test-package.sh.
fn stand_in_package_tool(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let installed = dir.join("installed.txt");
    let tool = dir.join("install-tool.sh");
    std::fs::write(
        &tool,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", installed.display()),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    (tool, installed)
}

fn publish(db: &str, deb: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["release", "publish", deb.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(server_bin(db).args(&args).arg("--db").arg(db))
}

#[test]
fn a_signed_release_reaches_its_communes_over_a_link_that_drops_and_bad_ones_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let db = format!("sqlite:{}", w.join("server.db").display());
    let units = repo().join("crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let port = free_port();
    let mut server = start_server_with(&db, port, &[]);
    // Each connection drops after 700 kB towards the station: a piece is 512 kB.
    let link = DroppingLink::start(port, 700 * 1024);
    let a = laptop(&db, COMMUNE, &link.url(), w, 1);
    let b = laptop(&db, OTHER, &link.url(), w, 2);
    sync(&a);
    sync(&b);
    let nothing = status(&a);
    assert!(nothing["offered"].is_null(), "{nothing}");
    assert_eq!(nothing["installed"], binhyen_domain::VERSION);

    // The province's view: each station's version and last sync.
    let list: Value =
        serde_json::from_slice(&server_cmd(&db, &["station", "list", "--json"]).stdout).unwrap();
    for s in list.as_array().unwrap() {
        assert_eq!(s["version"], binhyen_domain::VERSION, "{s}");
        assert!(s["last_sync_at"].is_string(), "{s}");
    }

    // The server refuses what the release key did not sign, and a version twice.
    let v020 = signed_package(w, "0.2.0");
    let forged = w.join("forged/binhyen_0.2.0_amd64.deb");
    std::fs::create_dir_all(forged.parent().unwrap()).unwrap();
    let mut bytes = std::fs::read(&v020).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&forged, &bytes).unwrap();
    std::fs::copy(
        w.join("binhyen_0.2.0_amd64.deb.minisig"),
        w.join("forged/binhyen_0.2.0_amd64.deb.minisig"),
    )
    .unwrap();
    let out = publish(&db, &forged, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Chữ ký không hợp lệ"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Published to Cư M'gar first; withdrawn while Cư M'gar's laptop is half-way.
    let out = publish(&db, &v020, &["--units", COMMUNE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = publish(&db, &v020, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("đã được phát hành"));
    sync(&a);
    let half = status(&a);
    assert_eq!(half["offered"], "0.2.0", "{half}");
    let got = half["downloaded"].as_u64().unwrap();
    assert!(got > 0 && got < half["size"].as_u64().unwrap(), "{half}");
    sync(&b);
    assert!(
        status(&b)["offered"].is_null(),
        "the other commune is not offered it"
    );
    server_cmd(&db, &["release", "withdraw", "0.2.0"]);
    sync(&a);
    let gone = status(&a);
    assert!(gone["offered"].is_null(), "{gone}");
    let left: Vec<_> = std::fs::read_dir(a.dir.path().join("updates"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "nothing of a withdrawn release stays: {left:?}"
    );

    // 0.2.1, to Cư M'gar: downloaded across several syncs, never from the start again.
    let v021 = signed_package(w, "0.2.1");
    let out = publish(&db, &v021, &["--units", COMMUNE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut progress = Vec::new();
    for _ in 0..20 {
        sync(&a);
        let s = status(&a);
        progress.push(s["downloaded"].as_u64().unwrap());
        if s["ready"] == true {
            break;
        }
    }
    let ready = status(&a);
    assert_eq!(ready["ready"], true, "{ready} after {progress:?}");
    assert!(
        progress.len() >= 3,
        "the link dropped on the way: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|p| p[0] <= p[1]),
        "each sync went on from where the last stopped: {progress:?}"
    );
    let file = PathBuf::from(ready["file"].as_str().unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&v021).unwrap());
    sync(&b);
    assert!(
        status(&b)["offered"].is_null(),
        "staged: only the communes named"
    );

    // Installing, through a stand-in for the package tool.
    let (tool, installed) = stand_in_package_tool(w);
    let apply = |args: &[&str]| {
        let mut cmd = Command::new(bin("binhyen"));
        cmd.arg("--data-dir")
            .arg(a.dir.path())
            .arg("--json")
            .args(["update", "apply"])
            .args(args)
            .env("BINHYEN_USER", "truong")
            .env("BINHYEN_PASSWORD", crate::sync::PASS)
            .env("BINHYEN_INSTALL_COMMAND", &tool);
        run(&mut cmd)
    };
    let refused = |args: &[&str], code: &str, says: &str| {
        let out = apply(args);
        assert!(!out.status.success(), "{args:?} was installed");
        let err: Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(err["error"]["code"], code, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(says),
            "{err}"
        );
        assert!(!installed.exists(), "nothing installed for {args:?}");
    };
    // From a USB stick: a package changed after signing, one without its signature, a
    // signature of another package, an older version.
    refused(
        &[forged.to_str().unwrap()],
        "release_bad_signature",
        "Chữ ký không hợp lệ",
    );
    let unsigned = w.join("usb/binhyen_0.2.1_amd64.deb");
    std::fs::create_dir_all(unsigned.parent().unwrap()).unwrap();
    std::fs::copy(&v021, &unsigned).unwrap();
    refused(
        &[unsigned.to_str().unwrap()],
        "release_unsigned",
        "Thiếu chữ ký",
    );
    let other_sig = w.join("binhyen_0.2.0_amd64.deb.minisig");
    refused(
        &[
            unsigned.to_str().unwrap(),
            "--sig",
            other_sig.to_str().unwrap(),
        ],
        "release_bad_signature",
        "Chữ ký không hợp lệ",
    );
    let old = signed_package(w, "0.0.9");
    refused(&[old.to_str().unwrap()], "release_older", "cũ hơn");
    // The downloaded one installs, after an encrypted backup.
    let out = apply(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["installed"], "0.2.1", "{done}");
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert!(backup.starts_with(a.dir.path().join("backups")), "{done}");
    assert!(std::fs::metadata(&backup).unwrap().len() > 0);
    let given = std::fs::read_to_string(&installed).unwrap();
    assert!(
        given.trim_end().ends_with(&file.display().to_string()),
        "{given}"
    );
    // And a roll-back is one only when signed as such.
    std::fs::remove_file(&installed).unwrap();
    sign(&old, &["--downgrade"]);
    let out = apply(&[old.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(installed.exists());

    // A server that serves only newer stations tells an old one, in words, to update.
    drop(server);
    server = start_server_with(&db, port, &["--min-station-version", "9.0.0"]);
    let out = b.cli(&["sync"], None);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "update_required", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Hãy cập nhật"),
        "{err}"
    );
    drop(server);
}

/// In the window: Cài đặt shows the version in use; an update picked from a USB stick is
/// checked (a changed package, a package without its signature refused, in words), the
/// station backed up, and the update installed by the system's package tool as the app
/// closes ("Đóng ứng dụng và cài ngay"); the new version's first sign-in checks the station
/// and says so.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_from_a_usb_stick_is_checked_in_the_window_and_installed_as_it_closes() {
    use crate::harness::App;
    let work = tempfile::tempdir().unwrap();
    let (tool, installed) = stand_in_package_tool(work.path());
    let fixtures = repo().join("crates/protocol/tests/fixtures");
    let package = std::fs::read(fixtures.join("binhyen_0.2.0_amd64.deb")).unwrap();
    let signature = std::fs::read(fixtures.join("binhyen_0.2.0_amd64.deb.minisig")).unwrap();

    let data = tempfile::tempdir().unwrap();
    let data_path = data.path().to_path_buf();
    let app = App::start_with(data, &[("BINHYEN_INSTALL_COMMAND", tool.to_str().unwrap())]).await;
    app.sign_in("truong", binhyen_store::keys::DEMO_PASSPHRASE)
        .await;
    app.click("nav-settings").await;
    let in_use = app.text("update-installed").await;
    assert_eq!(in_use, binhyen_domain::VERSION);
    let offered = app.text("update-offered").await;
    assert!(offered.contains("Chưa có bản cập nhật"), "{offered}");

    // A package changed after it was signed.
    let mut changed = package.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    app.pick_files(
        "update-usb",
        &[
            ("binhyen_0.2.0_amd64.deb", &changed),
            ("binhyen_0.2.0_amd64.deb.minisig", &signature),
        ],
    )
    .await;
    let err = app
        .wait_text("update-error", |t| t.contains("Chữ ký không hợp lệ"))
        .await;
    assert!(err.contains("Không cài gì cả"), "{err}");
    // A package without its signature.
    app.pick_files("update-usb", &[("binhyen_0.2.0_amd64.deb", &package)])
        .await;
    app.wait_text("update-error", |t| t.contains("Cần chọn cả tệp gói"))
        .await;
    assert!(!installed.exists());

    // The real pair: checked, backed up, installed as the app closes.
    app.pick_files(
        "update-usb",
        &[
            ("binhyen_0.2.0_amd64.deb", &package),
            ("binhyen_0.2.0_amd64.deb.minisig", &signature),
        ],
    )
    .await;
    let scheduled = app
        .wait_text("update-scheduled", |t| t.contains("0.2.0"))
        .await;
    assert!(
        scheduled.contains("sẽ được cài khi đóng ứng dụng"),
        "{scheduled}"
    );
    let banner = app.text("update-banner").await;
    assert!(banner.contains("Bản 0.2.0 sẽ được cài"), "{banner}");
    app.screenshot("update-scheduled").await;
    assert!(
        !installed.exists(),
        "nothing is installed before the app closes"
    );
    let backups: Vec<_> = std::fs::read_dir(data_path.join("backups"))
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(backups.len(), 1, "one backup before the update");

    // The app closes while WebDriver waits for the click's answer: no answer is expected.
    let _ = app.el("update-quit").await.click().await;
    let start = Instant::now();
    while !installed.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the app did not install the update as it closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let given = std::fs::read_to_string(&installed).unwrap();
    assert!(
        given
            .trim_end()
            .ends_with("updates/usb/binhyen_0.2.0_amd64.deb"),
        "{given}"
    );
    let start = Instant::now();
    let said = loop {
        if let Ok(t) = std::fs::read_to_string(data_path.join("updates/last-install.txt")) {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no record of the installation"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(said.starts_with("Đã cài bản 0.2.0"), "{said}");
    let mut app = app;
    let data = std::mem::replace(&mut app.data_dir, tempfile::tempdir().unwrap());
    drop(app);

    // The next start is the new version (here: as the installation left the record for
    // it): its first sign-in checks the station once, and Cài đặt says so.
    std::fs::write(
        data_path.join("updates/last-install.txt"),
        format!(
            "Đã cài bản {} lúc 10:00 07/12/2026.",
            binhyen_domain::VERSION
        ),
    )
    .unwrap();
    let app = App::start_in(data).await;
    app.sign_in("truong", binhyen_store::keys::DEMO_PASSPHRASE)
        .await;
    app.click("nav-settings").await;
    let last = app.text("update-last-install").await;
    assert!(
        last.contains("Kiểm tra trạm bằng bản mới: không có lỗi"),
        "{last}"
    );
    app.client.clone().close().await.unwrap();
}
