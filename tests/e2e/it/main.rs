//! Journeys through the real app in its real webview: tauri-driver + WebKitWebDriver under
//! Xvfb (started here when no display is set).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod anchor;
mod desktop_sync;
mod harness;
mod journeys;
mod officer_day;
mod offline;
mod server_ops;
mod sync;
mod ui;
mod update;
