//! Journeys through the real app in its real webview: tauri-driver + WebKitWebDriver under
//! Xvfb (started here when no display is set).

mod harness;
mod record_and_find;
