//! Integration tests of the station store: the real encrypted SQLite file on disk.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod accounts;
mod attachments;
mod audit;
mod backup;
mod changes;
mod desk;
mod identity;
mod layers;
mod migrations;
mod register;
mod report;
mod roster;
mod station;
mod tips;

use binhyen_store::{InitOptions, Station};
use chrono::{DateTime, Utc};

pub const PASS: &str = "mật khẩu thử nghiệm";

pub fn now() -> DateTime<Utc> {
    "2026-11-20T03:00:00Z".parse().unwrap()
}

pub fn opts(unit: &str, device: u32, demo: bool) -> InitOptions {
    InitOptions {
        unit_code: unit.into(),
        first_officer: binhyen_store::FirstOfficer {
            username: "truong".into(),
            full_name: "Nguyễn Hữu Thành".into(),
            password: PASS.into(),
            role: binhyen_domain::access::Role::Chief,
        },
        device_no: device,
        demo,
    }
}

/// A fresh station (no demo data) in a temporary directory.
pub fn station() -> (tempfile::TempDir, Station) {
    let dir = tempfile::tempdir().unwrap();
    let s = Station::init(dir.path(), &opts("24280", 1, false), now()).unwrap();
    (dir, s)
}

pub fn demo_station() -> (tempfile::TempDir, Station) {
    let dir = tempfile::tempdir().unwrap();
    let s = Station::init(dir.path(), &opts("24280", 1, true), now()).unwrap();
    (dir, s)
}

/// The temporary password an account is created with.
pub const TEMP: &str = "tạm thời 2026";

/// Creates an account ("Cán bộ USER") with the temporary password; returns its id.
pub fn add_account(s: &mut Station, user: &str, role: binhyen_domain::access::Role) -> String {
    s.create_account(
        &binhyen_store::accounts::NewAccount {
            username: user.into(),
            full_name: format!("Cán bộ {user}"),
            role,
            password: TEMP.into(),
            rank: None,
            phone: None,
        },
        now(),
    )
    .unwrap()
    .id
}

pub fn tip_input(json: serde_json::Value) -> binhyen_domain::tip::TipInput {
    serde_json::from_value(json).unwrap()
}

/// Every table's row count, to prove a refused write left nothing behind.
pub fn row_counts(s: &Station) -> Vec<(String, i64)> {
    let tables: Vec<String> = s
        .conn()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'search_fts_%' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n = s
                .conn()
                .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
}

/// Relays every change of `from` to `to`, as the server would (identity left out, as the
/// server leaves it out for a province-level station).
pub fn relay(from: &Station, to: &mut Station) {
    relay_scope(from, to, false)
}

/// Relays every change of `from` to `to`, identity included where `with_identity` (as the
/// server does between two laptops of one commune).
pub fn relay_scope(from: &Station, to: &mut Station, with_identity: bool) {
    let changes = binhyen_store::changes::pending(from.conn(), 10_000).unwrap();
    let remote: Vec<binhyen_store::replica::RemoteChange> = changes
        .into_iter()
        .filter(|c| with_identity || !binhyen_domain::catalog::is_identity(&c.entity))
        .enumerate()
        .map(|(i, c)| binhyen_store::replica::RemoteChange {
            seq: i as i64 + 1,
            change_id: c.change_id.to_string(),
            hlc: c.hlc,
            entity: c.entity,
            entity_id: c.entity_id,
            op: c.op,
            data: c.data.as_object().cloned().unwrap_or_default(),
            base: c.base.and_then(|b| b.as_object().cloned()),
        })
        .collect();
    to.apply_remote(&remote, now()).unwrap();
}
