//! Helpers the journeys share: find by test id, read text, wait for text, click, type.

use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::Locator;

use crate::harness::{screenshot_dir, App};

impl App {
    /// Signs in through the sign-in screen and waits until the window shows who is in.
    pub async fn sign_in(&self, user: &str, password: &str) {
        self.clear("sign-in-user").await;
        self.clear("sign-in-password").await;
        self.type_in("sign-in-user", user).await;
        self.type_in("sign-in-password", password).await;
        self.click("sign-in-submit").await;
        self.el("signed-in-as").await;
    }

    /// Tries to sign in with a wrong password and returns the refusal the window shows.
    pub async fn sign_in_refused(&self, user: &str, password: &str) -> String {
        self.type_in("sign-in-user", user).await;
        self.type_in("sign-in-password", password).await;
        self.click("sign-in-submit").await;
        self.text("sign-in-error").await
    }

    /// The element with `data-testid=id`, waiting for it up to a minute; on failure, the
    /// window's text and a screenshot say what was shown instead.
    pub async fn el(&self, id: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(&format!("[data-testid='{id}']")))
            .await
        {
            Ok(e) => e,
            Err(e) => self.fail(&format!("no element {id}: {e}")).await,
        }
    }

    pub async fn fail(&self, what: &str) -> ! {
        let png = tokio::time::timeout(Duration::from_secs(10), self.png()).await;
        if let Ok(png) = png {
            let _ = std::fs::write(screenshot_dir().join("failure.png"), png);
        }
        let body = self.body().await;
        panic!("{what}; the window shows:\n{body}")
    }

    /// All the text the window shows.
    pub async fn body(&self) -> String {
        let v = self
            .client
            .execute("return document.body.innerText;", vec![])
            .await
            .unwrap_or_default();
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn text(&self, id: &str) -> String {
        self.el(id).await.text().await.unwrap()
    }

    /// Clicks the element as an officer would: scrolled to the middle of its view first, so
    /// that a bar kept at the window's foot (the form's Lưu) does not cover it.
    pub async fn click(&self, id: &str) {
        let el = self.el(id).await;
        self.client
            .execute(
                "arguments[0].scrollIntoView({ block: 'center' });",
                vec![serde_json::to_value(&el).unwrap()],
            )
            .await
            .unwrap();
        el.click().await.unwrap();
    }

    /// Empties an input the way typing would (WebDriver's clear fires no input event).
    pub async fn clear(&self, id: &str) {
        self.el(id).await;
        self.client
            .execute(
                "const i = document.querySelector(`[data-testid='${arguments[0]}']`); i.value = ''; i.dispatchEvent(new Event('input', { bubbles: true }));",
                vec![serde_json::json!(id)],
            )
            .await
            .unwrap();
    }

    pub async fn type_in(&self, id: &str, text: &str) {
        self.el(id).await.send_keys(text).await.unwrap();
    }

    pub async fn select(&self, id: &str, value: &str) {
        self.el(id).await.select_by_value(value).await.unwrap();
    }

    /// Chooses the option of a select that the officer reads as `label`.
    pub async fn select_label(&self, id: &str, label: &str) {
        self.el(id).await.select_by_label(label).await.unwrap();
    }

    /// Waits until the element's text satisfies `check`, and returns it.
    pub async fn wait_text(&self, id: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let found = self
                .client
                .find(Locator::Css(&format!("[data-testid='{id}']")))
                .await;
            if let Ok(e) = found {
                if let Ok(t) = e.text().await {
                    if check(&t) {
                        return t;
                    }
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.fail(&format!("{id} never showed the expected text"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until the whole window's text satisfies `check`.
    pub async fn wait_body(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let body = self.body().await;
            if check(&body) {
                return body;
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.fail(what).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The texts of every element with the test id, read in one call.
    pub async fn texts(&self, id: &str) -> Vec<String> {
        let v = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll(`[data-testid='${arguments[0]}']`)).map(e => e.textContent.trim());",
                vec![serde_json::json!(id)],
            )
            .await
            .unwrap();
        serde_json::from_value(v).unwrap()
    }

    /// Waits until the texts of the test id satisfy `check`.
    pub async fn wait_texts(&self, id: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let t = self.texts(id).await;
            if check(&t) {
                return t;
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.fail(&format!("{id}: {t:?}")).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The first figure of the table row holding the element `id` (a report's line).
    pub async fn row_figure(&self, id: &str) -> u64 {
        self.client
            .execute(
                "return document.querySelector(`[data-testid='${arguments[0]}']`).closest('tr').querySelector('td.num').textContent.replace(/\\./g, '');",
                vec![serde_json::json!(id)],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Hands a file to a file input as if the officer had picked it.
    pub async fn pick_file(&self, id: &str, name: &str, bytes: &[u8]) {
        self.client
            .execute(
                "const [id, name, data] = arguments;
                 const input = document.querySelector(`[data-testid='${id}']`);
                 const file = new File([new Uint8Array(data)], name);
                 const dt = new DataTransfer();
                 dt.items.add(file);
                 input.files = dt.files;
                 input.dispatchEvent(new Event('change', { bubbles: true }));",
                vec![
                    serde_json::json!(id),
                    serde_json::json!(name),
                    serde_json::json!(bytes),
                ],
            )
            .await
            .unwrap();
    }

    /// Hands several files to a file input at once (a multiple choice).
    pub async fn pick_files(&self, id: &str, files: &[(&str, &[u8])]) {
        let files: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, bytes)| serde_json::json!([name, bytes]))
            .collect();
        self.client
            .execute(
                "const [id, files] = arguments;
                 const input = document.querySelector(`[data-testid='${id}']`);
                 const dt = new DataTransfer();
                 for (const [name, data] of files) dt.items.add(new File([new Uint8Array(data)], name));
                 input.files = dt.files;
                 input.dispatchEvent(new Event('change', { bubbles: true }));",
                vec![serde_json::json!(id), serde_json::json!(files)],
            )
            .await
            .unwrap();
    }

    /// The window as a PNG. WebKitWebDriver's snapshot waits for the next paint, and a
    /// window that has finished drawing never paints again: an invisible change of the
    /// outline colour, repeated for a moment, gives it one.
    pub async fn png(&self) -> Vec<u8> {
        self.client
            .execute(
                "let n = 0;
                 const tick = setInterval(() => {
                   n += 1;
                   document.body.style.outline = `1px solid rgba(0, 0, ${n % 2}, 0)`;
                   if (n > 60) { clearInterval(tick); document.body.style.outline = ''; }
                 }, 50);",
                vec![],
            )
            .await
            .unwrap();
        self.client.screenshot().await.unwrap()
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.png().await;
        std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
    }
}
