//! End-to-end tests live in `it/`: they drive the built desktop app (`binhyen-desktop`)
//! through tauri-driver and WebKitWebDriver under Xvfb. Build the app first
//! (`scripts/test.sh` does).
