//! The desktop app syncs an enrolled station: the header shows changes waiting, "Đồng bộ
//! ngay" sends them to a real `binhyen-server`, and the header says when it last synced.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fantoccini::Locator;

use crate::harness::{screenshot_dir, App};
use crate::sync::{bin, provision, run, server_cmd, start_server};

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
            if let Ok(png) = app.client.screenshot().await {
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
fn binhyen(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin("binhyen"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("BINHYEN_PASSPHRASE", PASS);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "binhyen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

    // The officer opens the window and unlocks the station with its passphrase.
    let app = App::start_in(data).await;
    let pass = app
        .client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("input[type=password]"))
        .await
        .unwrap();
    pass.send_keys("sai mật khẩu").await.unwrap();
    app.client
        .find(Locator::Css("form.unlock button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = app
        .client
        .wait()
        .for_element(Locator::Css("form.unlock .error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused.contains("Sai mật khẩu"), "{refused}");
    pass.send_keys(PASS).await.unwrap();
    app.client
        .find(Locator::Css("form.unlock button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
        .find(Locator::Css("[data-testid=new-tip]"))
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

    // The bar counts the waiting changes (the tip and its timeline entry)...
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
        let button = app
            .client
            .find(Locator::Css("[data-testid=sync-now]"))
            .await
            .unwrap();
        if button.attr("disabled").await.unwrap().is_none() {
            button.click().await.unwrap();
        }
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
