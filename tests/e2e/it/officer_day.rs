//! The officer's day in the real window, at 1366×768: the statutory transfer deadline shown
//! where the tip is (the list's column, the tip's page, a badge on every screen), the time
//! received corrected only with a reason, the list keeping its place when the officer comes
//! back from a tip, and the lock keeping the officer's name and screen.

use chrono::{Duration as Hours, Utc};
use serde_json::json;

use crate::harness::App;
use crate::journeys::open_station;

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
        let mut s = open_station(&app);
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

/// The paper the station owes, from the window: the register book of what the list's
/// filters select (PDF landscape, XLSX), no reporter named in it; the folder it went to
/// opened in the system's file manager; a month not yet over labelled so in the report.
#[tokio::test(flavor = "multi_thread")]
async fn the_register_book_and_reports_from_the_window() {
    // The system's file opener, replaced by one that writes down what it was asked to open.
    let bin = tempfile::tempdir().unwrap();
    let opened = bin.path().join("opened.txt");
    let fake = bin.path().join("xdg-open");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            opened.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let app = App::start_with(tempfile::tempdir().unwrap(), &[("PATH", &path)]).await;
    app.sign_in("truong", DEMO).await;

    // One row of filters; the others on demand.
    app.click("nav-tips").await;
    app.wait_text("tip-count", |t| t.starts_with("300 ")).await;
    assert!(app.texts("filter-channel").await.is_empty());
    app.screenshot("tips-filters-one-row").await;
    // A day filter is typed the Vietnamese way; what is not a day says so and filters nothing.
    assert_eq!(value(&app, "filter-from").await, json!(""));
    app.type_in("filter-from", "31/2/2026\u{E007}").await;
    app.wait_text("filter-from-error", |t| t.contains("Ngày không hợp lệ"))
        .await;
    assert!(app.text("tip-count").await.starts_with("300 "));
    app.clear("filter-from").await;
    app.type_in("filter-from", "1/1/20\u{E007}").await;
    app.wait_text("tip-count", |t| t.starts_with("300 ")).await;
    assert_eq!(value(&app, "filter-from").await, json!("01/01/2020"));
    assert!(app.texts("filter-from-error").await.is_empty());
    app.click("filter-more").await;
    app.select("filter-channel", "phone").await;
    app.click("filter-more").await;
    let more = app.text("filter-more").await;
    assert_eq!(more, "Lọc thêm (1)");
    let phone = app.wait_text("tip-count", |t| !t.starts_with("300 ")).await;
    let phone: usize = phone
        .split_whitespace()
        .next()
        .unwrap()
        .replace('.', "")
        .parse()
        .unwrap();

    // The register book of what the filters select: every phone tip, not the page.
    app.click("register-xlsx").await;
    let written = app.wait_text("export-path", |t| t.contains(".xlsx")).await;
    let file = written
        .split_whitespace()
        .find(|w| w.ends_with(".xlsx"))
        .unwrap()
        .to_string();
    assert!(file.starts_with(&app.data_dir.path().join("exports").display().to_string()));
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"PK"));
    app.click("register-pdf").await;
    let written = app.wait_text("export-path", |t| t.contains(".pdf")).await;
    let file = written
        .split_whitespace()
        .find(|w| w.ends_with(".pdf"))
        .unwrap()
        .to_string();
    let text = pdf_extract::extract_text_from_mem(&std::fs::read(&file).unwrap()).unwrap();
    assert!(text.contains("SỔ TIẾP NHẬN NGUỒN TIN"), "{text}");
    assert!(
        text.contains(&format!("Tổng số: {phone} nguồn tin")),
        "{phone} phone tips: {text}"
    );
    // No reporter's name: those the station holds, read through the library.
    {
        let mut s = open_station(&app);
        let tips = s.list_tips(&Default::default()).unwrap();
        let mut names = 0;
        for tip in tips.iter().filter(|t| t.has_reporter).take(20) {
            let shown = s
                .reveal_tip(&tip.id.to_string(), "đối chiếu sổ tiếp nhận", Utc::now())
                .unwrap();
            if let Some(name) = shown.reporter.and_then(|r| r.name) {
                assert!(!text.contains(&name), "{name} printed in the book");
                names += 1;
            }
        }
        assert!(names > 3);
    }
    // The folder it went to, opened in the file manager.
    app.click("open-folder").await;
    let start = std::time::Instant::now();
    while !opened.exists() && start.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let asked = std::fs::read_to_string(&opened).unwrap();
    assert_eq!(
        asked.trim(),
        app.data_dir.path().join("exports").display().to_string()
    );
    app.screenshot("register-exported").await;

    // This month's report says it is not over, and is compared with as many days before.
    app.click("nav-reports").await;
    app.click("report-show").await;
    let note = app
        .wait_text("report-unfinished", |t| t.contains("chưa kết thúc"))
        .await;
    assert!(note.contains("so với cùng kỳ"), "{note}");
    app.click("export-pdf").await;
    app.wait_text("export-path", |t| t.contains(".pdf")).await;
    app.el("open-folder").await;
    app.screenshot("report-unfinished").await;
}

/// Whether the checkbox `id` is ticked, as the webview says ("true"/"false").
async fn checked(app: &App, id: &str) -> String {
    app.el(id)
        .await
        .prop("checked")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Opens a tip by typing its register number whole in the header's search box.
async fn open_by_number(app: &App, no: &str) {
    app.type_in("global-search", &format!("{no}{ENTER}")).await;
    app.wait_text("tip-register-no", |t| t.contains(no)).await;
}

/// Admin actions that cannot slip: a role list moved by the arrow keys changes nothing; a
/// role change, disabling an account, marking a hamlet remote and unlinking tips each ask
/// first, naming whom and the effect, and each can be undone.
#[tokio::test(flavor = "multi_thread")]
async fn admin_actions_ask_first_and_can_be_undone() {
    let app = App::start().await;
    app.click("nav-accounts").await;
    // Arrow keys on the focused list only choose.
    app.el("role-vinh").await.send_keys(DOWN).await.unwrap();
    app.el("role-vinh").await.send_keys(DOWN).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let role_of = |s: &binhyen_store::Station| {
        s.accounts()
            .unwrap()
            .into_iter()
            .find(|a| a.username.as_deref() == Some("vinh"))
            .unwrap()
            .role
    };
    let station = || open_station(&app);
    assert_eq!(role_of(&station()), binhyen_domain::access::Role::Officer);
    app.select("role-vinh", "analyst").await;
    app.click("role-apply-vinh").await;
    let title = app.text("confirm-title").await;
    assert_eq!(title, "Đổi vai trò của Trần Quang Vinh (vinh)?");
    let effect = app.text("confirm-effect").await;
    assert!(
        effect.starts_with("Từ Cán bộ sang Cán bộ phân tích (tỉnh):"),
        "{effect}"
    );
    app.screenshot("confirm-role").await;
    // Hủy is where the focus starts: Enter alone changes nothing.
    app.el("confirm-cancel")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    assert!(app.texts("confirm-dialog").await.is_empty());
    assert_eq!(role_of(&station()), binhyen_domain::access::Role::Officer);
    app.click("role-apply-vinh").await;
    app.click("confirm-ok").await;
    app.wait_text("undo-text", |t| t.contains("sang Cán bộ phân tích"))
        .await;
    assert_eq!(role_of(&station()), binhyen_domain::access::Role::Analyst);
    app.click("undo").await;
    app.wait_text("undo-text", |t| t.starts_with("Đã hoàn tác"))
        .await;
    assert_eq!(role_of(&station()), binhyen_domain::access::Role::Officer);

    // Disabling names the person and what it does; undone, the account works again.
    app.click("disable-dinh").await;
    assert!(app
        .text("confirm-title")
        .await
        .contains("Lê Văn Định (dinh)"));
    assert!(app
        .text("confirm-effect")
        .await
        .contains("không đăng nhập được"));
    app.click("confirm-ok").await;
    app.wait_text("undo-text", |t| t.contains("dinh")).await;
    app.el("enable-dinh").await;
    app.click("undo").await;
    app.el("disable-dinh").await;

    // A remote hamlet changes the legal deadline: asked with the hours, and undoable.
    app.click("nav-hamlets").await;
    let remote = "remote-Buôn Drai";
    assert_eq!(checked(&app, remote).await, "false");
    app.click(remote).await;
    assert_eq!(
        app.text("confirm-title").await,
        "Đánh dấu Buôn Drai là địa bàn xa?"
    );
    assert!(app
        .text("confirm-effect")
        .await
        .contains("48 giờ thay vì 24 giờ"));
    // Until confirmed, the box stays as it was.
    assert_eq!(checked(&app, remote).await, "false");
    app.click("confirm-ok").await;
    app.wait_text("undo-text", |t| t.contains("Buôn Drai"))
        .await;
    let drai_remote = || {
        station()
            .list_hamlets()
            .unwrap()
            .into_iter()
            .find(|h| h.name == "Buôn Drai")
            .unwrap()
            .remote
    };
    assert!(drai_remote());
    app.click("undo").await;
    app.wait_text("undo-text", |t| t.starts_with("Đã hoàn tác"))
        .await;
    assert!(!drai_remote());

    // Unlinking two tips: asked, naming the other tip, and undone.
    let (a, b) = {
        let mut s = station();
        let tips = s.list_tips(&Default::default()).unwrap();
        let (a, b) = (tips[0].clone(), tips[1].clone());
        s.link_tips(
            &a.id.to_string(),
            &b.id.to_string(),
            binhyen_domain::tip::LinkRelation::Related,
            Utc::now(),
        )
        .unwrap();
        (a, b)
    };
    app.click("nav-tips").await;
    open_by_number(&app, &a.register_no).await;
    app.click("unlink").await;
    assert_eq!(
        app.text("confirm-title").await,
        format!("Bỏ liên kết với nguồn tin {}?", b.register_no)
    );
    app.click("confirm-ok").await;
    app.wait_text("undo-text", |t| t.contains(&b.register_no))
        .await;
    assert!(station()
        .get_tip(&a.id.to_string())
        .unwrap()
        .links
        .is_empty());
    app.click("undo").await;
    app.wait_text("undo-text", |t| t.starts_with("Đã hoàn tác"))
        .await;
    assert_eq!(station().get_tip(&a.id.to_string()).unwrap().links.len(), 1);
}

/// Search from anywhere: Ctrl+K, the station's tips first, a register number typed whole
/// opens its tip; the similar tips of the form open and mark a duplicate; a Zalo message
/// pasted proposes each field, the officer confirming.
#[tokio::test(flavor = "multi_thread")]
async fn search_from_anywhere_and_a_pasted_zalo_message() {
    let app = App::start().await;
    let (first, hamlet) = {
        let s = open_station(&app);
        let tip = s.list_tips(&Default::default()).unwrap().remove(0);
        let hamlet = s
            .list_hamlets()
            .unwrap()
            .into_iter()
            .find(|h| h.name == "Buôn Ea Kmar")
            .unwrap();
        (tip, hamlet)
    };
    // Ctrl+K from the Hôm nay screen.
    app.el("screen-today").await;
    press(&app, &format!("{CTRL}k{RELEASE}")).await;
    assert_eq!(focused(&app).await, "global-search");
    press(&app, "dak lak").await;
    let groups = app.wait_texts("global-results", |t| !t.is_empty()).await;
    assert!(
        groups[0].contains("NGUỒN TIN") || groups[0].contains("Nguồn tin"),
        "{groups:?}"
    );
    let order = app
        .client
        .execute(
            "return [...document.querySelectorAll('[data-testid^=global-group-]')].map(e => e.dataset.testid)",
            vec![],
        )
        .await
        .unwrap();
    let order: Vec<String> = serde_json::from_value(order).unwrap();
    assert_eq!(
        order.first().map(String::as_str),
        Some("global-group-tip"),
        "{order:?}"
    );
    assert_eq!(
        order.last().map(String::as_str),
        Some("global-group-unit"),
        "{order:?}"
    );
    app.screenshot("global-search").await;
    // A register number typed whole: straight to the tip.
    app.clear("global-search").await;
    open_by_number(&app, &first.register_no).await;
    // A number the station does not have says so.
    app.type_in("global-search", "9999/2026/M9").await;
    app.el("global-search")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    app.wait_text("global-note", |t| {
        t.contains("Không có nguồn tin số 9999/2026/M9")
    })
    .await;

    // Recording: a pasted Zalo message proposes; the officer leaves the phone out.
    app.click("nav-record").await;
    app.click("paste-zalo").await;
    let words: Vec<&str> = first.content.split_whitespace().take(6).collect();
    let message = format!(
        "[07/12/2026 07:45] Y Khiêm Mlô: {} ở buôn Ea Kmar, gọi 0912 345 678",
        words.join(" ")
    );
    app.type_in("paste-text", &message).await;
    app.click("paste-read").await;
    let proposals = app.text("paste-proposals").await;
    for expected in [
        "07/12/2026 07:45",
        "Buôn Ea Kmar",
        "Y Khiêm Mlô",
        "0912345678",
    ] {
        assert!(proposals.contains(expected), "{expected} in {proposals}");
    }
    app.click("paste-take-phone").await;
    app.click("paste-apply").await;
    let content = value(&app, "tip-content-input").await;
    assert!(
        content.as_str().unwrap().ends_with("gọi 0912 345 678"),
        "{content}"
    );
    assert_eq!(value(&app, "reporter-name").await, json!("Y Khiêm Mlô"));
    assert_eq!(
        value(&app, "reporter-phone").await,
        json!(""),
        "left out by the officer"
    );
    assert_eq!(
        value(&app, "tip-received-at").await,
        json!("2026-12-07T07:45")
    );
    assert!(value(&app, "tip-hamlet")
        .await
        .as_str()
        .unwrap()
        .contains("Ea Kmar"));
    // The similar tip is proposed: marked as the one this repeats, it is linked on saving.
    app.wait_texts("similar-tip", |t| !t.is_empty()).await;
    app.click("similar-duplicate").await;
    app.screenshot("record-pasted").await;
    app.click("tip-save").await;
    app.click("open-saved").await;
    app.wait_text("tip-links", |t| t.contains("Trùng với"))
        .await;
    let _ = hamlet;
}

/// The desktop is told when a crime tip nears its transfer deadline or passes it: through
/// the desktop's notification service, once per tip and stage, by register number and hours,
/// never the tip's content.
#[tokio::test(flavor = "multi_thread")]
async fn the_desktop_is_told_of_deadlines_once() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    // A session bus of the test's own, and a monitor writing down every notice sent on it
    // (no notification service runs: the call itself is what the desktop would show).
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (apt-get install dbus)");
    let mut address = String::new();
    std::io::BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let address = address.trim().to_string();
    let _bus = crate::harness::Proc(bus);
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("notices.txt");
    let monitor = Command::new("dbus-monitor")
        .args([
            "--address",
            &address,
            "interface='org.freedesktop.Notifications',member='Notify'",
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _monitor = crate::harness::Proc(monitor);
    std::thread::sleep(std::time::Duration::from_millis(500));

    let app = App::start_with(
        tempfile::tempdir().unwrap(),
        &[("DBUS_SESSION_BUS_ADDRESS", &address)],
    )
    .await;
    app.el("sign-in").await;
    let secret_words = "Tố giác nhóm Rồng Xanh vận chuyển ma túy";
    let (near, late) = {
        let mut s = open_station(&app);
        let now = Utc::now();
        let mut add = |hours: i64| {
            let input: binhyen_domain::tip::TipInput = serde_json::from_value(json!({
                "content": secret_words, "category": "crime_denunciation", "channel": "phone",
                "received_at": (now - Hours::hours(hours)).to_rfc3339()}))
            .unwrap();
            s.add_tip(&input, now).unwrap().register_no
        };
        (add(20), add(30))
    };
    app.sign_in("truong", DEMO).await;
    app.wait_text("deadline-badge", |t| t.contains("quá hạn"))
        .await;
    let start = std::time::Instant::now();
    let said = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&near) && text.contains(&late) {
            break text;
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            app.fail(&format!(
                "no notice of {near} and {late} on the bus: {text}"
            ))
            .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        said.contains("quá hạn") && said.contains("còn 4 giờ"),
        "{said}"
    );
    assert!(
        !said.contains("Rồng Xanh"),
        "the content reached a notice: {said}"
    );
    // Locked and opened again: the badge loads anew, and nothing is said twice.
    app.click("lock").await;
    app.sign_in("truong", DEMO).await;
    app.wait_text("deadline-badge", |t| t.contains("quá hạn"))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches(&late).count(), 1, "{text}");
}
