//! The foundation's journey: the window opens on the demo station, an officer records a
//! tip through the form, sees it at the top of the list, and finds it again by typing
//! without diacritics. Then the encrypted database is opened to check what was stored.

use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::Locator;

use crate::harness::{screenshot_dir, App};

const CONTENT: &str = "Phản ánh nhóm người lạ tụ tập đánh bạc ở rẫy cà phê gần Buôn Đôn, nghi do Hoàng Văn Xoài cầm đầu.";

/// The contents of the listed tips, read in one script call so that a list re-rendering
/// in between cannot leave the test holding stale elements.
async fn rows_text(app: &App) -> Vec<String> {
    let value = app
        .client
        .execute(
            "return Array.from(document.querySelectorAll('[data-testid=tip-content]')).map(e => e.textContent.trim());",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

/// Polls until `check` holds on the list's contents, or fails with what was last seen.
async fn wait_rows(app: &App, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let rows = rows_text(app).await;
        if check(&rows) {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: the list shows {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn by_testid(app: &App, id: &str) -> Element {
    app.client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(&format!("[data-testid={id}]")))
        .await
        .unwrap_or_else(|e| panic!("no element {id}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn record_a_tip_then_find_it_without_diacritics() {
    let app = App::start().await;

    // The demo station opens with its 300 tips.
    by_testid(&app, "tip-row").await;
    let station = by_testid(&app, "station-name").await.text().await.unwrap();
    assert!(station.contains("Công an xã Cư M'gar"), "{station}");
    let count = by_testid(&app, "tip-count").await.text().await.unwrap();
    assert!(count.contains("/300"), "{count}");

    // An empty form is refused with a Vietnamese message.
    by_testid(&app, "new-tip").await.click().await.unwrap();
    by_testid(&app, "tip-save").await.click().await.unwrap();
    let form = by_testid(&app, "tip-form").await.text().await.unwrap();
    assert!(form.contains("Nội dung nguồn tin là bắt buộc"), "{form}");

    // Record a tip with a reporter who asked for secrecy.
    by_testid(&app, "tip-content-input")
        .await
        .send_keys(CONTENT)
        .await
        .unwrap();
    by_testid(&app, "tip-category")
        .await
        .select_by_value("crime_report")
        .await
        .unwrap();
    by_testid(&app, "tip-channel")
        .await
        .select_by_value("zalo")
        .await
        .unwrap();
    by_testid(&app, "reporter-name")
        .await
        .send_keys("Trần Thị Bí Mật")
        .await
        .unwrap();
    by_testid(&app, "reporter-phone")
        .await
        .send_keys("0912 345 678")
        .await
        .unwrap();
    let secret = app
        .client
        .find(Locator::Css("[data-testid=reporter-secret]"))
        .await
        .unwrap();
    secret.click().await.unwrap();
    std::fs::write(
        screenshot_dir().join("tip-form.png"),
        app.client.screenshot().await.unwrap(),
    )
    .unwrap();
    assert_eq!(
        secret.prop("checked").await.unwrap().as_deref(),
        Some("true"),
        "the secrecy box is ticked"
    );
    by_testid(&app, "tip-save").await.click().await.unwrap();

    // It is at the top of the list, and the list now counts 301.
    let rows = wait_rows(&app, "the new tip at the top", |rows| {
        rows.first().is_some_and(|r| r == CONTENT)
    })
    .await;
    assert!(!rows.is_empty());
    let count = by_testid(&app, "tip-count").await.text().await.unwrap();
    assert!(count.contains("/301"), "{count}");
    std::fs::write(
        screenshot_dir().join("tip-recorded.png"),
        app.client.screenshot().await.unwrap(),
    )
    .unwrap();

    // Found by typing without diacritics, and in capitals.
    let search = by_testid(&app, "tip-search").await;
    search.send_keys("hoang van xoai").await.unwrap();
    wait_rows(&app, "search 'hoang van xoai'", |rows| {
        rows.len() == 1 && rows[0] == CONTENT
    })
    .await;
    search.clear().await.unwrap();
    search.send_keys("DANH BAC BUON DON").await.unwrap();
    wait_rows(&app, "search 'DANH BAC BUON DON'", |rows| {
        rows.len() == 1 && rows[0] == CONTENT
    })
    .await;
    std::fs::write(
        screenshot_dir().join("tip-found.png"),
        app.client.screenshot().await.unwrap(),
    )
    .unwrap();

    app.client.clone().close().await.unwrap();

    // What the window stored, read back from the encrypted file.
    let station =
        binhyen_store::Station::open(app.data_dir.path(), binhyen_store::keys::DEMO_PASSPHRASE)
            .unwrap();
    let filter = binhyen_domain_filter("hoang van xoai");
    let tips = station.list_tips(&filter).unwrap();
    assert_eq!(tips.len(), 1);
    let tip = station.get_tip(&tips[0].id.to_string(), true).unwrap();
    let reporter = tip.reporter.expect("the reporter was stored");
    assert_eq!(reporter.name.as_deref(), Some("Trần Thị Bí Mật"));
    assert_eq!(reporter.phone.as_deref(), Some("+84912345678"));
    assert!(reporter.secret);
    assert_eq!(serde_json::to_value(tip.category).unwrap(), "crime_report");
}

fn binhyen_domain_filter(query: &str) -> binhyen_domain::tip::TipFilter {
    binhyen_domain::tip::TipFilter {
        query: Some(query.into()),
        ..Default::default()
    }
}
