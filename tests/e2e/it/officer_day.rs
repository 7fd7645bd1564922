//! The officer's day in the real window, at 1366×768: the statutory transfer deadline shown
//! where the tip is (the list's column, the tip's page, a badge on every screen), the time
//! received corrected only with a reason, the list keeping its place when the officer comes
//! back from a tip, and the lock keeping the officer's name and screen.

use chrono::{Duration as Hours, Utc};
use serde_json::json;

use crate::harness::App;

const DEMO: &str = binhyen_store::keys::DEMO_PASSPHRASE;

async fn attr(app: &App, id: &str, name: &str) -> String {
    app.el(id)
        .await
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn deadlines_show_where_the_tip_is_and_the_officer_keeps_their_place() {
    let app = App::start_in(tempfile::tempdir().unwrap()).await;
    app.el("sign-in").await;
    // Two crime denunciations, received 20 and 30 hours ago (the legal deadline is 24 hours):
    // one near its deadline, one past it.
    {
        let mut s = binhyen_store::Station::open(
            app.data_dir.path(),
            &binhyen_store::Credentials::new("truong", DEMO),
        )
        .unwrap();
        let now = Utc::now();
        for (content, hours) in [
            ("Tố giác nhóm Xoăn Lửa cho vay nặng lãi", 20),
            ("Tố giác nhóm Khướu Đen buôn lậu gỗ trắc", 30),
        ] {
            let input: binhyen_domain::tip::TipInput = serde_json::from_value(json!({
                "content": content, "category": "crime_denunciation", "channel": "phone",
                "received_at": (now - Hours::hours(hours)).to_rfc3339()}))
            .unwrap();
            s.add_tip(&input, now).unwrap();
        }
        // Enough tips for the list to have a second page.
        for i in 0..60 {
            let input: binhyen_domain::tip::TipInput = serde_json::from_value(json!({
                "content": format!("Phản ánh tiếng ồn karaoke khuya, lần {i}"),
                "category": "security_order", "channel": "zalo",
                "received_at": (now - Hours::hours(48 + i)).to_rfc3339()}))
            .unwrap();
            s.add_tip(&input, now).unwrap();
        }
    }
    app.sign_in("truong", DEMO).await;

    // On every screen, the header says tips are late or near their deadline.
    let badge = app
        .wait_text("deadline-badge", |t| t.contains("quá hạn chuyển"))
        .await;
    assert!(badge.contains("sắp hết hạn"), "{badge}");

    // Sổ nguồn tin: the deadline is a column, amber when near, red once passed.
    app.click("nav-tips").await;
    app.type_in("tip-search", "xoan lua").await;
    app.wait_texts("tip-content", |rows| {
        rows.len() == 1 && rows[0].contains("Xoăn Lửa")
    })
    .await;
    let left = app
        .wait_text("tip-deadline", |t| t.starts_with("còn "))
        .await;
    assert!(left.contains("giờ"), "{left}");
    assert_eq!(attr(&app, "tip-deadline", "data-level").await, "soon");
    app.screenshot("tips-deadline-soon").await;
    app.clear("tip-search").await;
    app.type_in("tip-search", "khuou den").await;
    app.wait_texts("tip-content", |rows| {
        rows.len() == 1 && rows[0].contains("Khướu Đen")
    })
    .await;
    app.wait_text("tip-deadline", |t| t.starts_with("quá hạn"))
        .await;
    assert_eq!(attr(&app, "tip-deadline", "data-level").await, "late");

    // The tip's page shows it next to its status; back returns to the list as it was.
    app.click("tip-open").await;
    let pill = app.text("tip-deadline").await;
    assert!(pill.starts_with("quá hạn"), "{pill}");
    app.screenshot("tip-deadline-late").await;

    // The time received is corrected (the deadline counts from it): only with a reason.
    app.click("tip-edit").await;
    let later = (Utc::now() - Hours::hours(2)) + Hours::hours(7);
    let local = later.format("%Y-%m-%dT%H:%M").to_string();
    app.el("edit-received-at").await;
    app.client
        .execute(
            "const i = document.querySelector(`[data-testid='edit-received-at']`); i.value = arguments[0]; i.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![json!(local)],
        )
        .await
        .unwrap();
    app.click("edit-save").await;
    let refused = app.text("edit-received-reason-error").await;
    assert!(refused.contains("lý do"), "{refused}");
    app.type_in("edit-received-reason", "ghi nhầm ngày khi nhận điện thoại")
        .await;
    app.click("edit-save").await;
    let moved = app
        .wait_text("tip-deadline", |t| t.starts_with("còn "))
        .await;
    assert!(
        moved.contains("giờ"),
        "two hours ago, 24 hours to go: {moved}"
    );
    let timeline = app.text("screen-tip").await;
    assert!(
        timeline.contains("ghi nhầm ngày khi nhận điện thoại"),
        "the reason is on the timeline: {timeline}"
    );

    // Another edit that leaves the time alone asks for no reason.
    app.click("tip-edit").await;
    app.select("edit-urgency", "urgent").await;
    app.click("edit-save").await;
    app.wait_text("tip-done", |t| !t.is_empty()).await;
    assert!(app.texts("edit-received-reason-error").await.is_empty());

    app.click("tip-back").await;
    let search = attr(&app, "tip-search", "value").await;
    let value = app
        .client
        .execute(
            "return document.querySelector(`[data-testid='tip-search']`).value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(value, json!("khuou den"), "{search}");

    // A later page of the whole list: back from a tip, the same page.
    app.clear("tip-search").await;
    app.wait_text("page-label", |t| {
        t.starts_with("Trang 1/") && t != "Trang 1/1"
    })
    .await;
    app.click("page-next").await;
    app.wait_text("page-label", |t| t.starts_with("Trang 2/"))
        .await;
    app.click("tip-open").await;
    app.el("screen-tip").await;
    app.click("tip-back").await;
    let page = app.text("page-label").await;
    assert!(page.starts_with("Trang 2/"), "{page}");

    // Locked: the officer's username is filled in, and signing in again returns here.
    app.click("lock").await;
    app.el("sign-in").await;
    let user = app
        .client
        .execute(
            "return document.querySelector(`[data-testid='sign-in-user']`).value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(user, json!("truong"));
    app.screenshot("locked-username-kept").await;
    app.type_in("sign-in-password", DEMO).await;
    app.click("sign-in-submit").await;
    app.el("signed-in-as").await;
    app.el("screen-tips").await;
    let page = app.text("page-label").await;
    assert!(page.starts_with("Trang 2/"), "{page}");

    // Đồng bộ: plain words and the details to send the province's IT staff, never a command
    // line to type.
    app.click("nav-sync").await;
    let details = app.text("support-card").await;
    assert!(
        details.contains("Cần hỗ trợ?") && details.contains("Chép thông tin"),
        "{details}"
    );
    let value = app
        .client
        .execute(
            "return document.querySelector(`[data-testid='support-details']`).value;",
            vec![],
        )
        .await
        .unwrap();
    let value = value.as_str().unwrap_or_default().to_string();
    assert!(
        value.contains("Mã trạm")
            && value.contains("Phiên bản Bình Yên")
            && value.contains("Thay đổi chờ gửi"),
        "{value}"
    );
    let body = app.body().await;
    assert!(
        !body.contains("binhyen "),
        "a command line in the window: {body}"
    );
    app.screenshot("sync-support").await;
}

/// WebDriver's codes for the keys an officer presses.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const CTRL: &str = "\u{E009}";
const RELEASE: &str = "\u{E000}";
const DOWN: &str = "\u{E015}";
const UP: &str = "\u{E013}";

/// Presses `keys` in whatever has the focus; returns how many keys that is.
async fn press(app: &App, keys: &str) -> usize {
    app.client
        .active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
    keys.chars().filter(|c| *c != '\u{E000}').count()
}

async fn focused(app: &App) -> String {
    app.client
        .execute(
            "return document.activeElement && document.activeElement.dataset.testid || '';",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn value(app: &App, id: &str) -> serde_json::Value {
    app.client
        .execute(
            "return document.querySelector(`[data-testid='${arguments[0]}']`).value;",
            vec![json!(id)],
        )
        .await
        .unwrap()
}

/// Tabs forward until the field `id` has the focus; returns the presses, never passing by
/// "Bỏ bản nháp" (it is out of the tab order).
async fn tab_to(app: &App, id: &str) -> usize {
    let mut n = 0;
    while focused(app).await != id {
        n += press(app, TAB).await;
        let at = focused(app).await;
        assert_ne!(at, "tip-discard", "Tab reached Bỏ bản nháp");
        assert!(n < 40, "{id} is not reachable by Tab (at {at})");
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_tip_is_recorded_by_keyboard_alone_and_one_key_loses_nothing() {
    let app = App::start().await;
    app.el("screen-today").await;

    // A phone call: Ctrl+N, the content, the channel, Ctrl+Enter. Every key counted.
    let mut keys = press(&app, &format!("{CTRL}n{RELEASE}")).await;
    app.el("tip-form").await;
    assert_eq!(focused(&app).await, "tip-content-input");
    let content =
        "Ông Ksor Y báo qua điện thoại: xe máy bị lấy trộm trước nhà văn hóa buôn Ea Tul tối qua";
    keys += press(&app, content).await;
    keys += tab_to(&app, "tip-channel").await;
    const ORDER: [&str; 8] = [
        "zalo",
        "facebook",
        "phone",
        "in_person",
        "vneid",
        "hotline",
        "letter",
        "other",
    ];
    while value(&app, "tip-channel").await != json!("phone") {
        // The form starts on the channel of the last tip recorded: up or down from there.
        let at = value(&app, "tip-channel").await;
        let i = ORDER.iter().position(|c| json!(c) == at).unwrap_or(0);
        keys += press(&app, if i > 2 { UP } else { DOWN }).await;
        if keys >= 400 {
            let at = focused(&app).await;
            let v = value(&app, "tip-channel").await;
            app.fail(&format!(
                "the channel did not move by arrow keys (focus {at}, value {v})"
            ))
            .await;
        }
    }
    let save = app.text("tip-save").await;
    assert!(
        save.contains("Ctrl+Enter"),
        "the shortcut is shown on the button: {save}"
    );
    keys += press(&app, &format!("{CTRL}{ENTER}{RELEASE}")).await;
    let saved = app.text("tip-saved").await;
    assert!(saved.contains("/2026/") || saved.contains("/20"), "{saved}");
    println!(
        "a phone tip recorded by keyboard alone: {keys} key presses ({} of them the content's characters)",
        content.chars().count()
    );
    // The next tip starts on the channel just used (read from the station as the new form
    // opens).
    let start = std::time::Instant::now();
    while value(&app, "tip-channel").await != json!("phone") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the new form starts on {}",
            value(&app, "tip-channel").await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // "Bỏ bản nháp" asks first, and can be undone.
    app.type_in(
        "tip-content-input",
        "Bà H'Nhi hỏi thủ tục đăng ký tạm trú cho con",
    )
    .await;
    app.click("tip-discard").await;
    app.el("discard-confirm").await;
    app.screenshot("record-discard-confirm").await;
    app.click("discard-yes").await;
    app.el("draft-discarded").await;
    assert_eq!(value(&app, "tip-content-input").await, json!(""));
    app.click("draft-undo").await;
    assert_eq!(
        value(&app, "tip-content-input").await,
        json!("Bà H'Nhi hỏi thủ tục đăng ký tạm trú cho con")
    );

    // A question answered on the spot: recorded as resolved in one step, the answer on its
    // timeline.
    app.select("tip-category", "admin_question").await;
    app.click("tip-answered").await;
    app.type_in("tip-answer", "Đã hướng dẫn nộp hồ sơ qua VNeID")
        .await;
    app.screenshot("record-answered-on-the-spot").await;
    app.click("tip-save").await;
    app.wait_text("tip-saved", |t| t != saved).await;
    app.click("open-saved").await;
    let status = app.text("tip-status").await;
    assert_eq!(status, "Đã giải quyết");
    let shown = app.text("screen-tip").await;
    assert!(
        shown.contains("Đã hướng dẫn nộp hồ sơ qua VNeID"),
        "{shown}"
    );

    // Next steps say what they do; a finished tip is reopened by the chief, with a reason.
    let close = app.text("move-closed").await;
    assert!(close.contains("Kết thúc, lưu hồ sơ"), "{close}");
    app.click("move-closed").await;
    app.click("move-confirm").await;
    app.wait_text("tip-status", |t| t == "Đã kết thúc").await;
    app.click("move-reopen").await;
    app.click("move-confirm").await;
    let refused = app.text("move-error").await;
    assert!(refused.contains("lý do"), "{refused}");
    app.type_in("move-note", "bà H'Nhi hỏi thêm về hồ sơ của con")
        .await;
    app.screenshot("tip-reopen").await;
    app.click("move-confirm").await;
    app.wait_text("tip-status", |t| t == "Đang xác minh").await;
    let shown = app.text("screen-tip").await;
    assert!(
        shown.contains("bà H'Nhi hỏi thêm về hồ sơ của con"),
        "{shown}"
    );
}
