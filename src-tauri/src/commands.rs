//! The commands the window may call. Each is a few lines: take the state, call the store,
//! convert the error into one with a stable code and a Vietnamese message.

use chrono::Utc;
use serde::Serialize;
use tauri::State;
use ts_rs::TS;

use binhyen_domain::roster::Hamlet;
use binhyen_domain::tip::{Tip, TipFilter, TipInput};
use binhyen_domain::FieldError;
use binhyen_store::search::SearchHit;
use binhyen_store::StoreError;

use crate::state::{AppState, StationStatus};

/// The error every command returns: `code` is stable (the UI branches on it), `message` is
/// Vietnamese, `fields` say which form fields are wrong.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct AppError {
    pub code: String,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        if matches!(e, StoreError::Sqlite(_) | StoreError::Io { .. }) {
            tracing::error!(code = e.code(), error = %e, "command failed");
        }
        AppError {
            code: e.code().into(),
            message: e.to_string(),
            fields: e.field_errors(),
        }
    }
}

type Res<T> = Result<T, AppError>;

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn station_status(state: State<'_, AppState>) -> Res<StationStatus> {
    Ok(state.status()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn unlock(state: State<'_, AppState>, passphrase: String) -> Res<StationStatus> {
    Ok(state.unlock(&passphrase)?)
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

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn get_tip(state: State<'_, AppState>, id: String) -> Res<Tip> {
    Ok(state.with(|s| s.reveal_tip(&id, "xem chi tiết trên ứng dụng", Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn add_tip(state: State<'_, AppState>, input: TipInput) -> Res<Tip> {
    Ok(state.with(|s| s.add_tip(&input, Utc::now()))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn search(state: State<'_, AppState>, text: String, limit: u32) -> Res<Vec<SearchHit>> {
    Ok(state.with(|s| binhyen_store::search::search(s.conn(), &text, None, limit.min(200)))?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn list_hamlets(state: State<'_, AppState>) -> Res<Vec<Hamlet>> {
    Ok(state.with(|s| s.list_hamlets())?)
}

/// What the window shows of synchronisation.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SyncStatus {
    pub enrolled: bool,
    #[ts(optional)]
    pub server_url: Option<String>,
    #[ts(optional)]
    pub last_success: Option<String>,
    #[ts(type = "number")]
    pub pending_changes: u64,
    /// Changes the server refused for good: kept on the laptop, no longer sent.
    #[ts(type = "number")]
    pub rejected_changes: u64,
    pub open_conflicts: u32,
    /// Why the last attempt failed, in Vietnamese; absent after a success.
    #[ts(optional)]
    pub last_error: Option<String>,
    #[ts(optional)]
    pub next_attempt: Option<String>,
    pub running: bool,
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sync_status(state: State<'_, AppState>) -> Res<SyncStatus> {
    let (running, next) = (state.sync.running(), state.sync.next_attempt());
    Ok(state.with(|s| {
        let get = |k: &str| s.sync_get(k).ok().flatten().filter(|v| !v.is_empty());
        Ok(SyncStatus {
            enrolled: get("station_id").is_some(),
            server_url: get("server_url"),
            last_success: get("last_success"),
            pending_changes: binhyen_store::changes::pending_count(s.conn())?,
            rejected_changes: binhyen_store::changes::rejected_count(s.conn())?,
            open_conflicts: s.conflicts(true)?.len() as u32,
            last_error: get("last_error"),
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
