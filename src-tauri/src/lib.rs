//! The desktop shell: Tauri set-up, logging, the window, and the command list. Everything
//! the commands do is done by the libraries in `crates/`.

mod commands;
mod state;
mod sync_loop;

use std::path::PathBuf;

pub use commands::AppError;
pub use commands::SyncStatus;
pub use state::StationStatus;

/// The station's data directory: BINHYEN_DATA_DIR, or the user's data directory (shared
/// with the `binhyen` command line).
pub fn data_dir() -> PathBuf {
    binhyen_app::default_data_dir().unwrap_or_else(|| PathBuf::from("binhyen-data"))
}

/// Native date and time fields (the record form, the filters, reports) are laid out by the
/// web engine in the process locale's order. A commune reads "21:37 28/11/2026", not
/// "11/28/2026 09:37 PM": where the vi_VN.UTF-8 locale is installed (the .deb package and
/// scripts/setup.sh generate it), the app runs in it whatever the system's language. Runs
/// first, before any thread starts. Returns whether the locale was set.
#[cfg(target_os = "linux")]
fn use_vietnamese_locale() -> bool {
    if std::env::var("LC_ALL").is_ok_and(|v| v.starts_with("vi_VN")) {
        return true;
    }
    let installed = std::process::Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                l.eq_ignore_ascii_case("vi_VN.utf8") || l.eq_ignore_ascii_case("vi_VN.UTF-8")
            })
        })
        .unwrap_or(false);
    if installed {
        std::env::set_var("LC_ALL", "vi_VN.UTF-8");
    }
    installed
}

#[cfg(not(target_os = "linux"))]
fn use_vietnamese_locale() -> bool {
    false
}

/// The WebKitGTK settings that keep the window from staying blank on weak or odd graphics
/// (old integrated chips, NVIDIA's driver, virtual machines, a virtual display): the
/// DMA-BUF renderer off always, and compositing off where the machine has no GPU render
/// node. Each only where the user has not set it; returns what to set.
fn webkit_fallbacks(
    has_render_node: bool,
    is_set: impl Fn(&str) -> bool,
) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if !is_set("WEBKIT_DISABLE_DMABUF_RENDERER") {
        out.push(("WEBKIT_DISABLE_DMABUF_RENDERER", "1"));
    }
    if !has_render_node && !is_set("WEBKIT_DISABLE_COMPOSITING_MODE") {
        out.push(("WEBKIT_DISABLE_COMPOSITING_MODE", "1"));
    }
    out
}

/// Whether the machine has a GPU render node (`/dev/dri/renderD*`).
fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false)
}

pub fn run() {
    // Before any thread starts and before GTK reads them.
    if cfg!(target_os = "linux") {
        for (name, value) in webkit_fallbacks(has_render_node(), |n| std::env::var_os(n).is_some())
        {
            std::env::set_var(name, value);
        }
    }
    let vietnamese = use_vietnamese_locale();
    let dir = data_dir();
    let _guard = binhyen_app::init_logging(&dir, "binhyen-desktop");
    tracing::info!(dir = %dir.display(), "starting Bình Yên desktop");
    if !vietnamese {
        tracing::warn!(
            "the vi_VN.UTF-8 locale is not installed: date fields follow the system's order"
        );
    }
    let state = state::AppState::new(dir.clone());
    let control = state.sync.clone();
    std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || sync_loop::run(dir, control))
        .expect("the sync thread could not start");
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::setup_demo,
            commands::setup_station,
            commands::check_password,
            commands::station_status,
            commands::sign_in,
            commands::sign_out,
            commands::still_here,
            commands::change_password,
            commands::list_accounts,
            commands::identity_holders,
            commands::create_identity_key,
            commands::reveal_conflict,
            commands::grant_identity,
            commands::create_account,
            commands::set_account_role,
            commands::set_account_active,
            commands::reset_password,
            commands::list_tips,
            commands::count_tips,
            commands::get_tip,
            commands::add_tip,
            commands::search,
            commands::list_hamlets,
            commands::sync_status,
            commands::sync_now,
            commands::export_bundle,
            commands::import_bundle,
            commands::update_status,
            commands::install_update_on_close,
            commands::install_update_from_usb,
            commands::quit_to_install,
            commands::reveal_reporter,
            commands::update_tip,
            commands::assign_tip,
            commands::list_officers,
            commands::backup_now,
            commands::link_tips,
            commands::attach_files,
            commands::attachment_content,
            commands::remove_attachment,
            commands::save_attachment,
            commands::unlink_tips,
            commands::print_doc,
            commands::notify_deadlines,
            commands::search_grouped,
            commands::export_register,
            commands::open_exports_folder,
            commands::today,
            commands::get_draft,
            commands::save_draft,
            commands::deadline_rules,
            commands::set_deadline_rules,
            commands::list_people,
            commands::set_hamlet_remote,
            commands::set_area_officer,
            commands::import_roster,
            commands::list_groups,
            commands::add_group,
            commands::record_group_count,
            commands::list_channels,
            commands::add_channel,
            commands::record_channel_figures,
            commands::list_conflicts,
            commands::resolve_conflict,
            commands::sync_history,
            commands::unit_report,
            commands::export_report,
        ])
        .build(tauri::generate_context!())
        .expect("Bình Yên could not start its window")
        .run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                install_scheduled_update(app);
            }
        });
}

/// As the app closes: the update the officer chose is installed by the system's package
/// tool (its authorisation prompt appears); what happened is kept for the next start.
fn install_scheduled_update(app: &tauri::AppHandle) {
    use tauri::Manager;
    let state = app.state::<state::AppState>();
    let prepared = state
        .pending_update
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(prepared) = prepared {
        let result = binhyen_sync::update::install(&prepared);
        if let Err(e) = &result {
            tracing::error!(error = %e, "the update was not installed");
        }
        binhyen_sync::update::record_install(state.dir(), &prepared.info.version, &result);
    }
}

#[cfg(test)]
mod tests {
    use super::webkit_fallbacks;

    #[test]
    fn webkit_fallbacks_are_set_where_needed_and_never_over_the_users_choice() {
        assert_eq!(
            webkit_fallbacks(true, |_| false),
            vec![("WEBKIT_DISABLE_DMABUF_RENDERER", "1")]
        );
        assert_eq!(
            webkit_fallbacks(false, |_| false),
            vec![
                ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
                ("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            ]
        );
        assert!(webkit_fallbacks(false, |_| true).is_empty());
    }
}
