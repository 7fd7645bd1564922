//! The Bình Yên desktop app's entry point.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    binhyen_desktop_lib::run();
}
