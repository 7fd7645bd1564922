//! The commands the window may call. Each is a few lines: take the state, call the store,
//! convert the error into one with a stable code and a Vietnamese message.

use chrono::{NaiveDate, Utc};
use serde::Serialize;
use tauri::State;
use ts_rs::TS;

use binhyen_domain::access::Role;
use binhyen_domain::attachment::NewAttachment;
use binhyen_domain::period::Period;
use binhyen_domain::roster::{Hamlet, RosterPerson};
use binhyen_domain::tip::{LinkRelation, Tip, TipFilter, TipInput, TipPatch};
use binhyen_domain::FieldError;
use binhyen_store::accounts::{Account, NewAccount, OfficerChoice};
use binhyen_store::channels::{ChannelFigures, ChannelInput, ChannelView, GroupInput, GroupView};
use binhyen_store::documents::{DocKind, PrintDoc};
use binhyen_store::error::ErrorCode;
use binhyen_store::error::RowError;
use binhyen_store::identity::IdentityHolder;
use binhyen_store::register::RegisterFormat;
use binhyen_store::replica::{Choice, ConflictView, SyncAttempt};
use binhyen_store::report::{DeadlineRules, UnitReport};
use binhyen_store::report_export::ReportFormat;
use binhyen_store::roster::RosterPlan;
use binhyen_store::search::{SearchGroup, SearchHit};
use binhyen_store::today::Today;
use binhyen_store::StoreError;

use crate::state::{AppState, StationStatus};

/// A provisioning file is a few kilobytes (the authority's certificate and a token).
const MAX_PROVISIONING_BYTES: usize = 256 * 1024;

/// The error every command returns: `code` is stable (the UI branches on it), `message` is
/// Vietnamese, `fields` say which form fields are wrong.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct AppError {
    pub code: AppErrorCode,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// The refused rows of an imported file, each with its line.
    pub rows: Vec<RowError>,
}

/// The code of an [`AppError`]: the store's, or one of the window's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(untagged)]
#[ts(export)]
pub enum AppErrorCode {
    Store(ErrorCode),
    Window(WindowCode),
}

/// Errors of the window's own making (not the store's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum WindowCode {
    /// A file too large to send to the library.
    TooLarge,
    /// A conflict resolved with neither value nor a typed one.
    BadChoice,
    /// A report period that does not read as one.
    BadPeriod,
    /// A provisioning file refused, or an enrolment the server refused.
    Enrolment,
}

impl From<binhyen_sync::SyncError> for AppError {
    fn from(e: binhyen_sync::SyncError) -> AppError {
        match e {
            binhyen_sync::SyncError::Store(e) => e.into(),
            other => AppError::new(WindowCode::Enrolment, other.to_string(), Vec::new()),
        }
    }
}

impl From<ErrorCode> for AppErrorCode {
    fn from(c: ErrorCode) -> AppErrorCode {
        AppErrorCode::Store(c)
    }
}

impl From<WindowCode> for AppErrorCode {
    fn from(c: WindowCode) -> AppErrorCode {
        AppErrorCode::Window(c)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        if matches!(e, StoreError::Sqlite(_) | StoreError::Io { .. }) {
            tracing::error!(code = e.code(), error = %e, "command failed");
        }
        AppError {
            code: e.error_code().into(),
            message: e.to_string(),
            fields: e.field_errors(),
            rows: match &e {
                StoreError::Rows(rows) => rows.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl AppError {
    /// An error of the window's own making (not the store's): a code and what to do.
    fn new(
        code: impl Into<AppErrorCode>,
        message: impl Into<String>,
        fields: Vec<FieldError>,
    ) -> AppError {
        AppError {
            code: code.into(),
            message: message.into(),
            fields,
            rows: Vec::new(),
        }
    }
}

type Res<T> = Result<T, AppError>;

/// The set-up screen's demo: a station of sample data, never enrolled.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn setup_demo(state: State<'_, AppState>) -> Res<StationStatus> {
    Ok(state.setup_demo()?)
}

/// What a station set up from a provisioning file became.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SetupDone {
    /// The server took the enrolment now; otherwise the first sync makes it.
    pub enrolled: bool,
    pub status: StationStatus,
}

/// The set-up screen's station from a provisioning file (its text, read by the window from
/// the file the installer picks, and for a sealed file the code the province reads out),
/// with its chief's account.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn setup_station(
    state: State<'_, AppState>,
    provisioning: String,
    code: Option<String>,
    full_name: String,
    username: String,
    password: String,
) -> Res<SetupDone> {
    if provisioning.len() > MAX_PROVISIONING_BYTES {
        return Err(AppError::new(
            WindowCode::TooLarge,
            "Tệp này quá lớn để là tệp cấp phép; hãy chọn đúng tệp .json Công an tỉnh cấp.",
            Vec::new(),
        ));
    }
    let enrolled = state.setup_station(
        &provisioning,
        code.as_deref(),
        &full_name,
        &username,
        &password,
    )?;
    Ok(SetupDone {
        enrolled,
        status: state.status()?,
    })
}

/// The library's password rule, for the strength shown as a password is typed.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn check_password(username: String, password: String) -> Res<()> {
    Ok(binhyen_store::keys::check_password(&username, &password)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn station_status(state: State<'_, AppState>) -> Res<StationStatus> {
    Ok(state.status()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sign_in(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> Res<StationStatus> {
    Ok(state.sign_in(&username, &password)?)
}

/// Locks the window (the officer's button, or the window's own inactivity timer).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sign_out(state: State<'_, AppState>) -> Res<StationStatus> {
    state.sign_out();
    Ok(state.status()?)
}

/// The officer is active in the window (typing, clicking) without calling anything else.
#[tauri::command(async)]
pub fn still_here(state: State<'_, AppState>) -> Res<()> {
    Ok(state.with_password_due(|_| Ok(()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn change_password(state: State<'_, AppState>, old: String, new: String) -> Res<StationStatus> {
    let (key, officer) = state.with_password_due(|s| {
        s.change_password(&old, &new, Utc::now())?;
        Ok((s.session_key(), s.session().officer_id.clone()))
    })?;
    // The background sync starts now that the password is the officer's own.
    state.sync.set_key(key, &officer);
    Ok(state.status()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_accounts(state: State<'_, AppState>) -> Res<Vec<Account>> {
    Ok(state.with(|s| s.accounts())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn create_account(state: State<'_, AppState>, account: NewAccount) -> Res<Account> {
    Ok(state.with(|s| s.create_account(&account, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn set_account_role(state: State<'_, AppState>, id: String, role: Role) -> Res<Account> {
    Ok(state.with(|s| s.set_account_role(&id, role, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn set_account_active(state: State<'_, AppState>, id: String, active: bool) -> Res<Account> {
    Ok(state.with(|s| s.set_account_active(&id, active, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn reset_password(state: State<'_, AppState>, id: String, password: String) -> Res<Account> {
    Ok(state.with(|s| s.reset_password(&id, &password, Utc::now()))?)
}

/// Who holds the commune's identity key and who waits for a chief to grant it.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn identity_holders(state: State<'_, AppState>) -> Res<Vec<IdentityHolder>> {
    Ok(state.with(|s| s.identity_holders())?)
}

/// A chief makes the commune's identity key where it has none yet.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn create_identity_key(state: State<'_, AppState>) -> Res<bool> {
    Ok(state.with(|s| s.ensure_identity_key(Utc::now()))?)
}

/// A chief grants the commune's identity key to one officer key (signed, audited).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn grant_identity(state: State<'_, AppState>, officer_key_id: String) -> Res<u32> {
    Ok(state.with(|s| s.grant_identity(&officer_key_id, Utc::now()))? as u32)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_tips(state: State<'_, AppState>, filter: TipFilter) -> Res<Vec<Tip>> {
    Ok(state.with(|s| s.list_tips(&filter))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn count_tips(state: State<'_, AppState>, filter: TipFilter) -> Res<u64> {
    Ok(state.with(|s| s.count_tips(&filter))?)
}

/// A tip with its timeline, without its reporter's identity (see `reveal_reporter`).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn get_tip(state: State<'_, AppState>, id: String) -> Res<Tip> {
    Ok(state.with(|s| s.get_tip(&id))?)
}

/// The tip with its reporter's identity, for a stated reason that goes to the audit trail
/// (the library refuses a reason of too few words).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn reveal_reporter(state: State<'_, AppState>, id: String, reason: String) -> Res<Tip> {
    Ok(state.with(|s| s.reveal_tip(&id, &reason, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn update_tip(state: State<'_, AppState>, id: String, patch: TipPatch) -> Res<Tip> {
    Ok(state.with(|s| {
        s.update_tip(&id, &patch, Utc::now())?;
        // Never the reporter's identity, even just typed: only the reveal returns it.
        s.get_tip(&id)
    })?)
}

/// Gives the tip to an officer of the station to handle.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn assign_tip(
    state: State<'_, AppState>,
    id: String,
    officer: String,
    note: Option<String>,
) -> Res<Tip> {
    Ok(state.with(|s| s.assign_tip(&id, &officer, note.as_deref(), Utc::now()))?)
}

/// Where a backup made in the window goes: BINHYEN_BACKUP_DIR, or a folder in the user's
/// documents (from where it is copied to a USB stick).
fn backup_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("BINHYEN_BACKUP_DIR") {
        return d.into();
    }
    dirs::document_dir()
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| ".".into())
        .join("BinhYen-saoluu")
}

/// A backup made from the window.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BackupDone {
    pub path: String,
    pub manifest: binhyen_store::backup::BackupManifest,
}

/// Writes an encrypted backup of the station (chief, administrator).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn backup_now(state: State<'_, AppState>) -> Res<BackupDone> {
    let dir = backup_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        AppError::from(StoreError::Io {
            path: dir.clone(),
            source: e,
        })
    })?;
    let now = Utc::now();
    Ok(state.with(|s| {
        let name = format!(
            "binhyen-{}-may{}-{}.byk",
            s.info().unit_code,
            s.info().device_no,
            now.with_timezone(&binhyen_domain::time::VN_TZ)
                .format("%Y%m%d-%H%M%S")
        );
        let path = dir.join(name);
        let manifest = s.backup(&path, now)?;
        Ok(BackupDone {
            path: path.display().to_string(),
            manifest,
        })
    })?)
}

/// Links the tip to another of its unit (by register number or id).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn link_tips(
    state: State<'_, AppState>,
    id: String,
    other: String,
    relation: LinkRelation,
) -> Res<Tip> {
    Ok(state.with(|s| s.link_tips(&id, &other, relation, Utc::now()))?)
}

/// Removes a link; returns the tip as it is now.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn unlink_tips(state: State<'_, AppState>, id: String, link: String) -> Res<Tip> {
    Ok(state.with(|s| {
        s.unlink_tips(&link, Utc::now())?;
        s.get_tip(&id)
    })?)
}

/// The officers a tip may be given to (and the list filtered by).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_officers(state: State<'_, AppState>) -> Res<Vec<OfficerChoice>> {
    Ok(state.with(|s| s.officers())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn print_doc(
    state: State<'_, AppState>,
    id: String,
    kind: DocKind,
    reveal_reason: Option<String>,
) -> Res<PrintDoc> {
    Ok(state.with(|s| s.print_doc(&id, kind, reveal_reason.as_deref(), Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn today(state: State<'_, AppState>) -> Res<Today> {
    Ok(state.with(|s| s.today(Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn get_draft(state: State<'_, AppState>) -> Res<Option<serde_json::Value>> {
    Ok(state.with(|s| s.draft())?)
}

/// Keeps the form's draft in the encrypted database (never in the webview's storage).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn save_draft(state: State<'_, AppState>, draft: Option<serde_json::Value>) -> Res<()> {
    Ok(state.with(|s| s.set_draft(draft.as_ref()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn deadline_rules(state: State<'_, AppState>) -> Res<DeadlineRules> {
    Ok(state.with(|s| s.deadline_rules())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn set_deadline_rules(state: State<'_, AppState>, rules: DeadlineRules) -> Res<DeadlineRules> {
    Ok(state.with(|s| {
        s.set_deadline_rules(rules, Utc::now())?;
        s.deadline_rules()
    })?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_people(state: State<'_, AppState>) -> Res<Vec<RosterPerson>> {
    Ok(state.with(|s| s.list_people())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn set_hamlet_remote(state: State<'_, AppState>, id: String, remote: bool) -> Res<()> {
    Ok(state.with(|s| s.set_hamlet_remote(&id, remote, Utc::now()))?)
}

/// Puts an officer (by id) in charge of a hamlet, or no one.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn set_area_officer(
    state: State<'_, AppState>,
    id: String,
    officer: Option<String>,
) -> Res<Hamlet> {
    Ok(state.with(|s| s.set_area_officer(&id, officer.as_deref(), Utc::now()))?)
}

/// The largest roster file the window accepts.
const MAX_IMPORT_BYTES: usize = 10 * 1024 * 1024;

/// Imports a roster file (CSV or XLSX); `dry_run` previews without writing anything.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn import_roster(state: State<'_, AppState>, bytes: Vec<u8>, dry_run: bool) -> Res<RosterPlan> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(AppError::new(
            WindowCode::TooLarge,
            "Tệp quá lớn (tối đa 10 MB); hãy chia danh sách thành nhiều tệp.",
            Vec::new(),
        ));
    }
    Ok(state.with(|s| s.import_roster_file(&bytes, dry_run, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_groups(state: State<'_, AppState>) -> Res<Vec<GroupView>> {
    Ok(state.with(|s| s.list_groups())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn add_group(state: State<'_, AppState>, input: GroupInput) -> Res<String> {
    Ok(state.with(|s| s.add_group(&input, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn record_group_count(
    state: State<'_, AppState>,
    group_id: String,
    on: NaiveDate,
    members: u32,
) -> Res<()> {
    Ok(state.with(|s| s.record_group_count(&group_id, on, members, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_channels(state: State<'_, AppState>) -> Res<Vec<ChannelView>> {
    Ok(state.with(|s| s.list_channels())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn add_channel(state: State<'_, AppState>, input: ChannelInput) -> Res<String> {
    Ok(state.with(|s| s.add_channel(&input, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn record_channel_figures(
    state: State<'_, AppState>,
    channel_id: String,
    figures: ChannelFigures,
) -> Res<()> {
    Ok(state.with(|s| s.record_channel_figures(&channel_id, &figures, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_conflicts(state: State<'_, AppState>, open_only: bool) -> Res<Vec<ConflictView>> {
    Ok(state.with(|s| s.conflicts(open_only))?)
}

/// The two values of a conflict on a reporter's identity, for a stated reason (audited).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn reveal_conflict(
    state: State<'_, AppState>,
    id: String,
    reason: String,
) -> Res<ConflictView> {
    Ok(state.with(|s| s.reveal_conflict(&id, &reason, Utc::now()))?)
}

/// Resolves a conflict: `take` is "local", "server", or (with `value`) a value typed in.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn resolve_conflict(
    state: State<'_, AppState>,
    id: String,
    take: Choice,
    value: Option<serde_json::Value>,
) -> Res<()> {
    let Some(take) = take.take(value) else {
        return Err(AppError::new(
            WindowCode::BadChoice,
            "Hãy chọn một trong hai giá trị, hoặc nhập giá trị mới.",
            Vec::new(),
        ));
    };
    Ok(state.with(|s| s.resolve_conflict(&id, take, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sync_history(state: State<'_, AppState>) -> Res<Vec<SyncAttempt>> {
    Ok(state.with(|s| s.sync_history())?)
}

fn period_of(period: &str) -> Res<Period> {
    Period::parse(period).map_err(|m| {
        AppError::new(
            WindowCode::BadPeriod,
            m,
            vec![FieldError::new(
                "period",
                "bad_period",
                "Kỳ báo cáo không hợp lệ.",
            )],
        )
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn unit_report(state: State<'_, AppState>, period: String) -> Res<UnitReport> {
    let period = period_of(&period)?;
    Ok(state.with(|s| {
        let rules = s.deadline_rules()?;
        s.unit_report(&period, rules, Utc::now())
    })?)
}

/// Writes the report for `period` as `format` into the data directory's
/// `exports` folder and returns the file's path.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn export_report(
    state: State<'_, AppState>,
    period: String,
    format: ReportFormat,
) -> Res<String> {
    let period = period_of(&period)?;
    let now = Utc::now();
    let bytes = state.with(|s| s.export_report(&period, format, "desktop", now))?;
    let name = binhyen_app::report_file_name(&period, format, now);
    write_export(&state, &name, &bytes, "tệp báo cáo")
}

/// Writes the register book of the tips `filter` selects (the list's filter: its dates,
/// kind, status…) as `format` into the `exports` folder and returns the file's path. No
/// reporter is named in it (the library reads no identity for it).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn export_register(
    state: State<'_, AppState>,
    filter: TipFilter,
    format: RegisterFormat,
) -> Res<String> {
    let now = Utc::now();
    let (_, bytes) = state.with(|s| s.export_register(&filter, format, "desktop", now))?;
    let stamp = now
        .with_timezone(&binhyen_domain::time::VN_TZ)
        .format("%Y%m%d-%H%M%S");
    let name = format!("so-tiep-nhan-nguon-tin-{stamp}.{}", format.as_str());
    write_export(&state, &name, &bytes, "sổ tiếp nhận")
}

/// Opens the data directory's `exports` folder (where every export of the window is
/// written) in the system's file manager. It takes no path: the window cannot have any
/// other folder or file opened.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn open_exports_folder(state: State<'_, AppState>) -> Res<()> {
    // Signed in, unlocked, and allowed to write exports: the folder holds what was exported.
    state.with(|s| s.require(binhyen_domain::access::Permission::Export))?;
    let dir = state.dir().join("exports");
    let io = |e: String| {
        AppError::new(
            ErrorCode::Io,
            format!("Không mở được thư mục {}: {e}", dir.display()),
            Vec::new(),
        )
    };
    binhyen_store::private_files::private_dir(&dir).map_err(|e| io(e.to_string()))?;
    // A folder, by its absolute path (never read as an option by the opener), and not a
    // link to somewhere else.
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| io(e.to_string()))?;
    if !meta.is_dir() {
        return Err(io("không phải một thư mục".to_string()));
    }
    let dir = dir.canonicalize().map_err(|e| io(e.to_string()))?;
    opener::open(&dir).map_err(|e| io(e.to_string()))
}

/// The header badge's refresh: today's figures (as [`today`]), and the desktop told (its
/// notification service) when crime tips come near their transfer deadline or pass it: once
/// per tip and stage, by register number and hours only, never content or a reporter. One
/// read of the tips serves both.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn notify_deadlines(app: tauri::AppHandle, state: State<'_, AppState>) -> Res<Today> {
    use tauri_plugin_notification::NotificationExt;
    let today = state.with(|s| s.today(Utc::now()))?;
    let notice = {
        let mut told = state
            .deadlines_told
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        binhyen_store::today::deadline_notice(&today, &mut told)
    };
    if let Some((title, body)) = notice {
        tracing::info!(%title, "deadline notice");
        if let Err(e) = app.notification().builder().title(title).body(body).show() {
            // No notification service (a bare session): the header's badge still says it.
            tracing::warn!(error = %e, "the desktop's notification service did not take the notice");
        }
    }
    Ok(today)
}

/// Writes an exported file into the data directory's `exports` folder under `name` (made
/// safe for any file system; never over an existing file) and returns its path.
fn write_export(state: &AppState, name: &str, bytes: &[u8], what: &str) -> Res<String> {
    let dir = state.dir().join("exports");
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut path = dir.join(&safe);
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{n}-{safe}"));
    }
    std::fs::create_dir_all(&dir)
        .and_then(|_| binhyen_protocol::bundle::write_file_atomically(&path, bytes))
        .map_err(|e| {
            AppError::new(
                ErrorCode::Io,
                format!("Không ghi được {what} {}: {e}", path.display()),
                Vec::new(),
            )
        })?;
    Ok(path.display().to_string())
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn add_tip(
    state: State<'_, AppState>,
    input: TipInput,
    attachments: Option<Vec<NewAttachment>>,
) -> Res<Tip> {
    let files = attachments.unwrap_or_default();
    Ok(state.with(|s| s.add_tip_with_files(&input, &files, Utc::now()))?)
}

/// Attaches photos or scans to a tip (all or none); returns the tip as it is now.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn attach_files(state: State<'_, AppState>, id: String, files: Vec<NewAttachment>) -> Res<Tip> {
    Ok(state.with(|s| {
        s.attach_files(&id, &files, Utc::now())?;
        s.get_tip(&id)
    })?)
}

/// An attachment's content, as raw bytes (the window shows photos from it).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn attachment_content(
    state: State<'_, AppState>,
    attachment: String,
) -> Res<tauri::ipc::Response> {
    let (_, data) = state.with(|s| s.attachment_content(&attachment))?;
    Ok(tauri::ipc::Response::new(data))
}

/// Removes an attachment; returns the tip as it is now.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn remove_attachment(state: State<'_, AppState>, id: String, attachment: String) -> Res<Tip> {
    Ok(state.with(|s| {
        s.remove_attachment(&attachment, Utc::now())?;
        s.get_tip(&id)
    })?)
}

/// Saves a copy of an attachment into the data directory's `exports` folder (logged, for
/// those who may export) and returns its path. An existing file is never overwritten.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn save_attachment(state: State<'_, AppState>, attachment: String) -> Res<String> {
    let now = Utc::now();
    let (a, data) = state.with(|s| s.export_attachment(&attachment, now))?;
    write_export(&state, &a.file_name, &data, "tệp")
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn search(state: State<'_, AppState>, text: String, limit: u32) -> Res<Vec<SearchHit>> {
    Ok(state.with(|s| s.search(&text, limit.min(200)))?)
}

/// The search box of the header: a few hits of each kind, the station's tips first.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn search_grouped(
    state: State<'_, AppState>,
    text: String,
    per_kind: u32,
) -> Res<Vec<SearchGroup>> {
    Ok(state.with(|s| s.search_grouped(&text, per_kind.min(50)))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_hamlets(state: State<'_, AppState>) -> Res<Vec<Hamlet>> {
    Ok(state.with(|s| s.list_hamlets())?)
}

/// What the window shows of synchronisation: the station's state (the same as
/// `binhyen status`), and the desktop's own sync loop.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SyncStatus {
    #[serde(flatten)]
    #[ts(flatten)]
    pub state: binhyen_app::SyncState,
    #[ts(optional)]
    pub next_attempt: Option<String>,
    pub running: bool,
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sync_status(state: State<'_, AppState>) -> Res<SyncStatus> {
    let (running, next) = (state.sync.running(), state.sync.next_attempt());
    Ok(state.with(|s| {
        let station = binhyen_app::sync_state(s).map_err(|e| match e {
            binhyen_sync::SyncError::Store(e) => e,
            other => StoreError::Io {
                path: "server_ca".into(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        Ok(SyncStatus {
            state: station,
            next_attempt: next.map(|n| n.to_rfc3339()),
            running,
        })
    })?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sync_now(state: State<'_, AppState>) -> Res<()> {
    state.sync.wake_now();
    Ok(())
}

/// Where the program's own update stands (Cài đặt, and the banner when one is ready).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn update_status(state: State<'_, AppState>) -> Res<binhyen_sync::update::UpdateStatus> {
    let status = state.with(|s| Ok(binhyen_sync::update::status(s)))??;
    Ok(status)
}

/// What the window says of an update about to be installed.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct UpdateScheduled {
    pub version: String,
    /// The encrypted backup made before anything is installed.
    pub backup: String,
}

fn schedule(state: &AppState, prepared: binhyen_sync::update::Prepared) -> UpdateScheduled {
    let done = UpdateScheduled {
        version: prepared.info.version.clone(),
        backup: prepared.backup.display().to_string(),
    };
    *state
        .pending_update
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(prepared);
    done
}

/// "Cài đặt khi đóng ứng dụng": the downloaded update is checked and the station backed up
/// now; the system's package tool installs it as the app closes.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn install_update_on_close(state: State<'_, AppState>) -> Res<UpdateScheduled> {
    let now = Utc::now();
    let prepared = state.with(|s| Ok(binhyen_sync::update::prepare(s, None, None, now)))??;
    Ok(schedule(&state, prepared))
}

/// An update from a USB stick (the package and its signature, picked in Cài đặt), checked
/// and the station backed up now, installed as the app closes.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn install_update_from_usb(
    state: State<'_, AppState>,
    file_name: String,
    bytes: Vec<u8>,
    signature: String,
) -> Res<UpdateScheduled> {
    let now = Utc::now();
    let prepared = state.with(|s| {
        Ok(binhyen_sync::update::prepare_from_bytes(
            s, &file_name, &bytes, &signature, now,
        ))
    })??;
    Ok(schedule(&state, prepared))
}

/// Closes the app now, so that the scheduled update is installed.
#[tauri::command]
pub fn quit_to_install(app: tauri::AppHandle) {
    app.exit(0);
}

/// An offline bundle written for the USB stick.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BundleSaved {
    pub path: String,
    pub changes: u32,
    pub files: u32,
}

/// Writes every pending change into an offline bundle (the Đồng bộ screen's "Xuất gói"),
/// into the data folder's `exports`, for a station no network reaches; a station set up
/// with no network enrols by it.
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn export_bundle(state: State<'_, AppState>) -> Res<BundleSaved> {
    let now = Utc::now();
    let (bytes, info) = state.with(|s| Ok(binhyen_sync::export_bundle(s, now)))??;
    let name = format!(
        "goi-dong-bo-{}.byb",
        now.with_timezone(&binhyen_domain::time::VN_TZ)
            .format("%Y%m%d-%H%M%S")
    );
    let path = write_export(&state, &name, &bytes, "gói đồng bộ")?;
    Ok(BundleSaved {
        path,
        changes: info.changes as u32,
        files: info.files as u32,
    })
}

/// What importing the server's reply did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BundleApplied {
    /// Changes of this station the server now holds.
    pub acknowledged: u32,
    /// Changes of the commune received.
    pub received: u32,
    pub conflicts: u32,
    pub rejected: u32,
    /// The station's records match the server's as the reply left them.
    pub checksum_ok: bool,
}

/// Applies the server's reply to an offline bundle (the file the officer picks).
#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn import_bundle(state: State<'_, AppState>, bytes: Vec<u8>) -> Res<BundleApplied> {
    let now = Utc::now();
    let report = state.with(|s| Ok(binhyen_sync::import_reply(s, &bytes, now)))??;
    Ok(BundleApplied {
        acknowledged: report.pushed as u32,
        received: report.pulled as u32,
        conflicts: report.conflicts as u32,
        rejected: report.rejected as u32,
        checksum_ok: report.checksum_ok,
    })
}
