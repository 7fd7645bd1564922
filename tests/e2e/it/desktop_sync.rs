//! The desktop app syncs an enrolled station: the header shows changes waiting, "Đồng bộ
//! ngay" sends them to a real `binhyen-server`, and the header says when it last synced.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fantoccini::Locator;

use crate::harness::{screenshot_dir, App};
use crate::sync::{bin, provision, provision_sealed, run, server_cmd, start_server};

const PASS: &str = "mật khẩu máy trạm";

async fn text(app: &App, id: &str) -> String {
    let found = app
        .client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(&format!("[data-testid={id}]")))
        .await;
    match found {
        Ok(el) => el.text().await.unwrap(),
        Err(e) => {
            // What the window showed instead, for whoever reads the failure.
            let png = tokio::time::timeout(Duration::from_secs(10), app.png()).await;
            if let Ok(png) = png {
                std::fs::write(screenshot_dir().join("desktop-sync-failure.png"), png).unwrap();
            }
            let body = app
                .client
                .find(Locator::Css("body"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap_or_default();
            panic!("no element {id}: {e}; the window shows: {body}")
        }
    }
}

/// A one-time provisioning file for the next laptop of Xã Cư M'gar.
/// `binhyen` on a laptop's data directory; fails the test if it fails.
/// Clicks the sync bar's "Đồng bộ ngay" if it is enabled (a sync may be under way).
async fn press_sync_now(app: &App) {
    let button = app
        .client
        .find(Locator::Css("[data-testid=sync-now]"))
        .await
        .unwrap();
    if button.attr("disabled").await.unwrap().is_none() {
        button.click().await.unwrap();
    }
}

fn binhyen(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin("binhyen"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", PASS);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "binhyen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `binhyen` with `input` on stdin; fails the test if it fails.
fn binhyen_in(dir: &Path, args: &[&str], input: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new(bin("binhyen"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .env("BINHYEN_USER", "truong")
        .env("BINHYEN_PASSWORD", PASS)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "binhyen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Two laptops of one commune move the same tip to different statuses while apart; the
/// officer at the desktop sees the conflict side by side, keeps this laptop's value, and
/// after the next sync both laptops agree with no conflict left open.
#[tokio::test(flavor = "multi_thread")]
async fn resolve_a_conflict_side_by_side() {
    let work = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", work.path().join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let server = start_server(&db);
    let (f1, f2) = (work.path().join("a.json"), work.path().join("b.json"));
    provision(&db, "24280", &server.url, &f1, &[]);
    provision(&db, "24280", &server.url, &f2, &[]);
    let desk = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    binhyen(desk.path(), &["enroll", f1.to_str().unwrap()]);
    binhyen(other.path(), &["enroll", f2.to_str().unwrap()]);
    let tip = binhyen_in(
        desk.path(),
        &["tip", "add"],
        r#"{"content": "Tin báo trộm bò ở Buôn Drai", "category": "crime_report"}"#,
    );
    let id = tip["id"].as_str().unwrap().to_string();
    binhyen(desk.path(), &["--json", "sync"]);
    binhyen(other.path(), &["--json", "sync"]);
    // Apart, each laptop moves the tip on.
    binhyen_in(
        desk.path(),
        &["tip", "update", &id],
        r#"{"status": "verifying", "note": "Đang xác minh tại chỗ"}"#,
    );
    binhyen_in(
        other.path(),
        &["tip", "update", &id],
        r#"{"status": "resolved", "note": "Đã tìm thấy bò"}"#,
    );
    binhyen(other.path(), &["--json", "sync"]);
    binhyen(desk.path(), &["--json", "sync"]);

    let app = App::start_in(desk).await;
    app.sign_in("truong", PASS).await;
    app.wait_text("today-conflicts", |t| t.starts_with('1'))
        .await;
    app.click("today-conflicts").await;
    // The server decided the order; whichever side holds this laptop's value, it is kept.
    let first = app.text("conflict-local").await;
    let later = app.text("conflict-server").await;
    let mut sides = [first.clone(), later];
    sides.sort();
    assert_eq!(sides, ["Đang xác minh", "Đã giải quyết"]);
    // Named as the station names it, each side saying where and when it was written.
    let subject = app.text("conflict-subject").await;
    let no = tip["register_no"].as_str().unwrap();
    assert_eq!(subject, format!("Nguồn tin số {no} · Trạng thái"));
    let (here, there) = if first == "Đang xác minh" {
        ("conflict-local-by", "conflict-server-by")
    } else {
        ("conflict-server-by", "conflict-local-by")
    };
    let here = app.text(here).await;
    assert!(here.starts_with("Máy này (máy số "), "{here}");
    assert!(here.contains(" · ") && here.contains('/'), "a time: {here}");
    assert!(app.text(there).await.starts_with("Máy khác"));
    app.screenshot("conflict").await;
    // The side this laptop wrote says so.
    if first == "Đang xác minh" {
        app.el("mine-local").await;
        app.click("take-local").await;
    } else {
        app.el("mine-remote").await;
        app.click("take-server").await;
    }
    app.el("no-conflicts").await;
    assert!(app.text("conflicts-message").await.contains("Đã xử lý"));
    app.client.clone().close().await.unwrap();

    let desk = &app.data_dir;
    binhyen(desk.path(), &["--json", "sync"]);
    binhyen(other.path(), &["--json", "sync"]);
    for dir in [desk.path(), other.path()] {
        let shown = binhyen_in(dir, &["tip", "show", &id], "");
        assert_eq!(shown["status"], "verifying", "{shown}");
        let open = binhyen_in(dir, &["conflict", "list"], "");
        assert_eq!(open.as_array().map(Vec::len), Some(0), "{open}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_now_sends_the_waiting_changes() {
    let work = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", work.path().join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let server = start_server(&db);
    let file = work.path().join("station.json");
    provision(&db, "24280", &server.url, &file, &[]);

    // The installer enrols the laptop; an officer records a tip with the command line.
    let data = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        binhyen(data.path(), args);
    };
    cli(&["enroll", file.to_str().unwrap()]);

    // The officer opens the window and signs in; a wrong password is refused first.
    let app = App::start_in(data).await;
    let refused = app.sign_in_refused("truong", "sai mật khẩu").await;
    assert!(
        refused.contains("Sai tên đăng nhập hoặc mật khẩu"),
        "{refused}"
    );
    app.sign_in("truong", PASS).await;
    let bar = text(&app, "sync-status").await;
    assert!(bar.contains("thay đổi chờ gửi"), "{bar}");

    // Wait for the first automatic sync to settle, then record a tip through the window.
    app.client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=sync-last]"))
        .await
        .unwrap();
    app.client
        .find(Locator::Css("[data-testid=nav-record]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    app.client
        .wait()
        .for_element(Locator::Css("[data-testid=tip-content-input]"))
        .await
        .unwrap()
        .send_keys("Tin báo mất trộm xe máy ở chợ, ghi trên máy trạm")
        .await
        .unwrap();
    app.client
        .find(Locator::Css("[data-testid=tip-save]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The bar counts the waiting change (the new tip)...
    let start = std::time::Instant::now();
    while text(&app, "sync-pending").await.starts_with("0 ") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the new tip is not counted as waiting"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...and "Đồng bộ ngay" sends them.
    let start = std::time::Instant::now();
    loop {
        let pending = text(&app, "sync-pending").await;
        if pending.starts_with("0 ") {
            break;
        }
        press_sync_now(&app).await;
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "still waiting: {pending}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut last = text(&app, "sync-last").await;
    let start = std::time::Instant::now();
    while !last.starts_with("Đồng bộ lần cuối:") && start.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = text(&app, "sync-last").await;
    }
    let bar = text(&app, "sync-status").await;
    assert!(last.starts_with("Đồng bộ lần cuối:"), "{bar}");
    // The sync screen says where the commune's identity key stands: none before the first
    // reporter's identity is recorded.
    app.click("nav-sync").await;
    let identity = app.text("sync-identity").await;
    assert!(identity.starts_with("Chưa có"), "{identity}");
    // And which server authority it trusts, as the province reads its fingerprint out.
    let ca = server_cmd(&db, &["ca"]);
    let said = String::from_utf8(ca.stderr).unwrap();
    // It also says when the authority ends (25 years on: no warning).
    assert!(said.contains("authority valid until"), "{said}");
    assert!(!said.contains("WARNING"), "{said}");
    let fingerprint = said
        .split("SHA-256: ")
        .nth(1)
        .unwrap()
        .trim()
        .to_uppercase();
    let shown = app.text("sync-fingerprint").await.replace(' ', "");
    assert_eq!(shown, fingerprint);
    // The first reporter's identity (recorded at the command line by the same chief) makes
    // the commune's key; the next sync has the province certify it (its anchor signed by the
    // release key), and the screen says so.
    crate::sync::certify_anchor(&db, work.path());
    binhyen_in(
        app.data_dir.path(),
        &["tip", "add"],
        &serde_json::json!({"content": "Tố giác đánh bạc ở rẫy cà phê", "category": "crime_denunciation",
                            "reporter": {"name": "Người Báo Tin", "secret": true}})
        .to_string(),
    );
    let start = std::time::Instant::now();
    loop {
        app.click("nav-today").await;
        app.click("nav-sync").await;
        let anchored = app.text("sync-identity-anchored").await;
        if anchored.contains("đã được Công an tỉnh xác nhận") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still not certified: {anchored}"
        );
        press_sync_now(&app).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    app.screenshot("sync-screen").await;
    app.client.clone().close().await.unwrap();

    // The server has the tip: a second laptop of the station receives it.
    let file2 = work.path().join("station2.json");
    provision(&db, "24280", &server.url, &file2, &[]);
    let other = tempfile::tempdir().unwrap();
    binhyen(other.path(), &["enroll", file2.to_str().unwrap()]);
    binhyen(other.path(), &["--json", "sync"]);
    let out = binhyen(
        other.path(),
        &["--json", "tip", "list", "--query", "trom xe may cho"],
    );
    let tips: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tips.as_array().unwrap().len(), 1, "{tips}");
}

/// A laptop with no station opens on the set-up screen, never on a demo. The installer
/// picks the provisioning file, reads the server's fingerprint, makes the chief's account
/// (the library's password rule shown as it is typed, the password twice) and the station
/// is enrolled and signed into. Then, on another laptop, the demo is chosen from the same
/// screen: its sign-in lists the demo accounts and every screen says it is sample data.
#[tokio::test(flavor = "multi_thread")]
async fn a_blank_laptop_is_set_up_from_the_provisioning_file_in_the_window() {
    let work = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", work.path().join("server.db").display());
    let units =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    server_cmd(&db, &["units", "import", units.to_str().unwrap()]);
    let server = start_server(&db);
    // Sealed, as the province issues it: the code comes by phone.
    let file = work.path().join("cu-mgar-1.json");
    let code = provision_sealed(&db, "24280", &server.url, &file);
    let provisioning = std::fs::read(&file).unwrap();

    let data = tempfile::tempdir().unwrap();
    let data_path = data.path().to_path_buf();
    let app = App::start_with(data, &[("BINHYEN_DEMO", "0")]).await;
    let first = text(&app, "setup").await;
    assert!(first.contains("Thiết lập trạm từ tệp cấp phép"), "{first}");
    assert!(first.contains("Dùng thử với dữ liệu mẫu"), "{first}");
    assert!(
        !data_path.join("station.db").exists(),
        "nothing is made before a choice"
    );
    app.screenshot("setup-first-screen").await;

    app.click("setup-from-file").await;
    // A file that is not a provisioning file is named as such.
    app.pick_file("setup-file", "ghi-chu.json", b"{\"ghi_chu\": 1}")
        .await;
    let err = text(&app, "setup-error").await;
    assert!(err.contains("Không đọc được tệp này"), "{err}");
    app.pick_file("setup-file", "cu-mgar-1.json", &provisioning)
        .await;
    let preview = text(&app, "setup-preview").await;
    assert!(preview.contains("Xã Cư M'gar (24280)"), "{preview}");
    assert!(
        !preview.contains(&server.url),
        "sealed until the code opens it: {preview}"
    );
    app.type_in("setup-full-name", "Nguyễn Hữu Thành").await;
    app.type_in("setup-username", "truong").await;
    app.type_in("setup-password", "truong").await;
    let rule = app
        .wait_text("setup-password-rule", |t| t.contains("ít nhất 8 ký tự"))
        .await;
    assert!(rule.contains("ít nhất 8 ký tự"), "{rule}");
    app.clear("setup-password").await;
    app.type_in("setup-password", PASS).await;
    app.wait_text("setup-password-rule", |t| t.contains("đạt yêu cầu"))
        .await;
    app.type_in("setup-password-again", "khác hẳn").await;
    app.click("setup-submit").await;
    let err = app
        .wait_text("setup-error", |t| t.contains("không khớp"))
        .await;
    assert!(err.contains("không khớp"), "{err}");
    assert!(
        !data_path.join("station.db").exists(),
        "a refused form makes nothing"
    );
    app.clear("setup-password-again").await;
    app.type_in("setup-password-again", PASS).await;
    // A wrong code is refused, and nothing is set up.
    app.type_in("setup-code", "1111 2222 3333").await;
    app.click("setup-submit").await;
    let err = app
        .wait_text("setup-error", |t| t.contains("Mã mở tệp không đúng"))
        .await;
    assert!(err.contains("Mã mở tệp không đúng"), "{err}");
    assert!(
        !data_path.join("station.db").exists(),
        "a wrong code makes nothing"
    );
    app.clear("setup-code").await;
    app.type_in("setup-code", &code).await;
    app.screenshot("setup-form").await;
    app.click("setup-submit").await;

    // Enrolled and signed in as the chief; the sync screen names the server it trusts.
    let who = text(&app, "signed-in-as").await;
    assert!(who.contains("Nguyễn Hữu Thành"), "{who}");
    let station = text(&app, "station-name").await;
    assert!(!station.contains("Dữ liệu mẫu"), "{station}");
    let status = binhyen_in(&data_path, &["status"], "");
    assert_eq!(status["enrolled"], true, "{status}");
    app.client.clone().close().await.unwrap();

    // Another blank laptop: the demo, chosen on the same screen.
    let demo = App::start_with(tempfile::tempdir().unwrap(), &[("BINHYEN_DEMO", "0")]).await;
    text(&demo, "setup").await;
    demo.click("setup-demo").await;
    let accounts = text(&demo, "demo-accounts").await;
    assert!(accounts.contains("truong"), "{accounts}");
    demo.sign_in("truong", binhyen_store::keys::DEMO_PASSPHRASE)
        .await;
    let station = text(&demo, "station-name").await;
    assert!(
        station.contains("Dữ liệu mẫu"),
        "every screen says it: {station}"
    );
    demo.client.clone().close().await.unwrap();
}

/// A laptop set up in a commune no network reaches: the window says the station is not
/// enrolled yet and works anyway; the officer records a tip, writes the first sync bundle
/// from the Đồng bộ screen, the province imports it (which enrols the station) and the
/// reply, picked in the same card, finishes the enrolment and acknowledges the tip.
#[tokio::test(flavor = "multi_thread")]
async fn a_laptop_with_no_network_enrols_by_a_bundle_from_the_window() {
    let work = tempfile::tempdir().unwrap();
    let (db, server) = crate::sync::sqlite_server(work.path());
    let file = work.path().join("cu-mgar-1.json");
    let code = provision_sealed(&db, "24280", &server.url, &file);
    let provisioning = std::fs::read(&file).unwrap();
    // No network on site.
    drop(server);

    let data = tempfile::tempdir().unwrap();
    let data_path = data.path().to_path_buf();
    let app = App::start_with(data, &[("BINHYEN_DEMO", "0")]).await;
    text(&app, "setup").await;
    app.click("setup-from-file").await;
    app.pick_file("setup-file", "cu-mgar-1.json", &provisioning)
        .await;
    text(&app, "setup-preview").await;
    app.type_in("setup-full-name", "Nguyễn Hữu Thành").await;
    app.type_in("setup-username", "truong").await;
    app.type_in("setup-password", PASS).await;
    app.type_in("setup-password-again", PASS).await;
    app.type_in("setup-code", &code).await;
    app.click("setup-submit").await;
    let who = text(&app, "signed-in-as").await;
    assert!(who.contains("Nguyễn Hữu Thành"), "{who}");

    // The officer works at once.
    app.click("nav-record").await;
    app.type_in(
        "tip-content-input",
        "Trộm bò ở buôn Ea Tul, ghi khi xã mất mạng",
    )
    .await;
    app.select("tip-category", "crime_report").await;
    app.click("tip-save").await;
    let saved = app.wait_text("tip-saved", |t| t.contains("Đã lưu")).await;
    assert!(saved.contains("Đã lưu nguồn tin số"), "{saved}");

    app.click("nav-sync").await;
    let server_line = text(&app, "sync-server").await;
    assert!(server_line.contains("Chưa đăng ký"), "{server_line}");
    let card = text(&app, "sync-bundles").await;
    assert!(
        card.contains("Gói đầu tiên mang cả yêu cầu đăng ký"),
        "{card}"
    );
    app.click("bundle-export").await;
    let saved = app
        .wait_text("bundle-saved", |t| t.contains("Đã ghi gói"))
        .await;
    assert!(saved.contains(".byb"), "{saved}");
    let bundle = std::fs::read_dir(data_path.join("exports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "byb"))
        .expect("the bundle is in the exports folder");
    assert!(
        saved.contains(bundle.to_str().unwrap()),
        "the window names the file to copy: {saved}"
    );
    app.screenshot("sync-bundle-written").await;

    // At the province.
    let reply = work.path().join("tra-loi.byb");
    server_cmd(
        &db,
        &[
            "bundle",
            "import",
            bundle.to_str().unwrap(),
            "--reply",
            reply.to_str().unwrap(),
        ],
    );
    // Back at the commune: a file that is not a reply is refused plainly...
    app.pick_file("bundle-import", "ghi-chu.byb", b"khong phai goi")
        .await;
    let err = app.wait_text("bundle-error", |t| !t.is_empty()).await;
    assert!(err.contains("không phải gói đồng bộ"), "{err}");
    // ...and the reply enrols the station and acknowledges the tip.
    app.pick_file(
        "bundle-import",
        "tra-loi.byb",
        &std::fs::read(&reply).unwrap(),
    )
    .await;
    let applied = app
        .wait_text("bundle-applied", |t| t.contains("Đã nhập gói trả lời"))
        .await;
    assert!(applied.contains("thay đổi máy chủ đã nhận"), "{applied}");
    let server_line = app
        .wait_text("sync-server", |t| t.contains("https://"))
        .await;
    assert!(server_line.contains("127.0.0.1"), "{server_line}");
    text(&app, "sync-last-bundle").await;
    app.screenshot("sync-bundle-imported").await;
    let status = binhyen_in(&data_path, &["status"], "");
    assert_eq!(status["enrolled"], true, "{status}");
    assert_eq!(status["pending_changes"], 0, "{status}");
    app.client.clone().close().await.unwrap();
}
