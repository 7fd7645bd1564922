//! Creating, opening and recovering a station: the steps that make the first account, fill
//! the demo, migrate and re-index, and sign an officer in. Above every other layer, since
//! these steps touch accounts, identity, rosters and tips.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

use binhyen_domain::unit::{is_commune_code, is_province_code};

use crate::accounts::{self, Credentials, FirstOfficer, Session};
use crate::audit::Action;
use crate::changes::{meta_get, meta_set, Writer};
use crate::identity::Ring;
use crate::keys::{new_box_secret, BoxSecret, DbKey, KeyFile};
use crate::station::{connect, SessionKey, DB_FILE, KEYS_FILE, SEARCH_INDEX_VERSION};
use crate::{migrate, units, Result, Station, StoreError};

/// How to create a station.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub unit_code: String,
    /// The first account, made with the station (the chief, or whoever sets it up).
    pub first_officer: FirstOfficer,
    /// This laptop's number within the station (1, 2, …). Register numbers carry it, so two
    /// laptops of one station never hand out the same number.
    pub device_no: u32,
    pub demo: bool,
}

fn remove_station_files(dir: &Path) {
    for name in [DB_FILE, "station.db-wal", "station.db-shm", KEYS_FILE] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

impl Station {
    /// Creates a station in `dir`. On any failure nothing is left behind.
    pub fn init(dir: &Path, opts: &InitOptions, now: DateTime<Utc>) -> Result<Station> {
        if Station::exists(dir) {
            return Err(StoreError::StationExists(dir.to_path_buf()));
        }
        let code = opts.unit_code.trim();
        if !(is_commune_code(code) || is_province_code(code))
            || !units::official()?.iter().any(|u| u.code == code)
        {
            return Err(StoreError::UnknownUnit(code.to_string()));
        }
        if opts.device_no == 0 || opts.device_no > 99 {
            return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                "device_no",
                "out_of_range",
                "Số máy trong trạm phải từ 1 đến 99.",
            )));
        }
        crate::private_files::private_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        let result = Station::create_files(dir, code, opts, now);
        if result.is_err() {
            remove_station_files(dir);
        }
        result
    }

    fn write_identity(
        conn: &mut Connection,
        code: &str,
        opts: &InitOptions,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = conn.transaction()?;
        units::load(&tx)?;
        meta_set(&tx, "station_id", &Uuid::new_v4().to_string())?;
        meta_set(&tx, "unit_code", code)?;
        meta_set(&tx, "device_no", &opts.device_no.to_string())?;
        // The clock node: short, unique per laptop, stable for its life.
        meta_set(&tx, "node_id", &Uuid::new_v4().simple().to_string()[..12])?;
        meta_set(&tx, "created_at", &crate::sql::ts(now))?;
        meta_set(&tx, "demo", if opts.demo { "1" } else { "0" })?;
        meta_set(&tx, "search_index", SEARCH_INDEX_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    fn create_files(
        dir: &Path,
        code: &str,
        opts: &InitOptions,
        now: DateTime<Utc>,
    ) -> Result<Station> {
        let first = &opts.first_officer;
        let (username, full_name) =
            accounts::check_new(&first.username, &first.full_name, &first.password)?;
        let key = DbKey::random();
        let mut conn = connect(&dir.join(DB_FILE), &key, true)?;
        migrate::migrate(&mut conn)?;
        Station::write_identity(&mut conn, code, opts, now)?;
        let officer_id = {
            let mut w = Writer::begin(&mut conn, now, &username)?;
            let id = accounts::insert_account(
                &mut w, code, &username, &full_name, first.role, None, None,
            )?;
            w.audit(
                Action::AccountChange,
                Some(&id),
                serde_json::json!({"op": "create", "username": username, "role": first.role.as_str()}),
            )?;
            w.commit()?;
            id
        };
        let own_box = new_box_secret();
        {
            let mut w = Writer::begin(&mut conn, now, &username)?;
            let station_id = meta_get(w.conn(), "station_id")?.unwrap_or_default();
            crate::identity::publish_officer_key(
                &mut w,
                code,
                &station_id,
                Some(&officer_id),
                &own_box,
            )?;
            w.commit()?;
        }
        let mut keyfile = KeyFile::empty();
        keyfile.set_password(
            &key,
            &username,
            &officer_id,
            &first.password,
            false,
            &own_box,
        )?;
        // The key file last: a directory with a key file always has a complete database.
        keyfile.write(&dir.join(KEYS_FILE))?;
        let officer = accounts::load(&conn, &officer_id)?
            .ok_or_else(|| StoreError::not_found("tài khoản", &officer_id))?;
        let mut station = Station::from_conn(
            conn,
            dir,
            Session::new(&officer, false),
            key,
            Ring::new(Some(own_box)),
        )?;
        if opts.demo {
            crate::demo::fill(&mut station, now)?;
        }
        Ok(station)
    }

    /// Opens and unlocks the station in `dir`, migrating its schema if it is older. A
    /// station the provincial server has revoked stays locked (see [`Station::open_revoked`]).
    pub fn open(dir: &Path, credentials: &Credentials) -> Result<Station> {
        let station = Station::open_revoked(dir, credentials)?;
        match station.revoked_at()? {
            Some(at) => Err(StoreError::Revoked(at)),
            None => Ok(station),
        }
    }
    /// Opens even a revoked station; only a new enrolment may use this (it lifts the lock).
    pub fn open_revoked(dir: &Path, credentials: &Credentials) -> Result<Station> {
        let keys_path = dir.join(KEYS_FILE);
        if !dir.join(DB_FILE).exists() || !keys_path.exists() {
            return Err(StoreError::NoStation(dir.to_path_buf()));
        }
        let now = Utc::now();
        let mut keys = KeyFile::read(&keys_path)?;
        let opened = match keys.unlock(&credentials.username, &credentials.password, now) {
            Ok(o) => o,
            Err(e) => {
                // The failure count must survive, or the hold-back would never start.
                keys.write(&keys_path)?;
                return Err(e);
            }
        };
        if opened.failures_before > 0 || opened.box_created || opened.rewrapped {
            keys.write(&keys_path)?;
        }
        let mut conn = Station::connect_migrated(dir, &opened.key)?;
        let mut own_box = opened.box_secret.clone();
        let officer = match &opened.officer_id {
            Some(id) => match accounts::load(&conn, id)? {
                Some(a) if a.active => a,
                _ => {
                    // Disabled (here or at the province): the password stops working.
                    keys.remove_officer(id);
                    keys.write(&keys_path)?;
                    return Err(StoreError::AccountDisabled);
                }
            },
            None => {
                let secret = new_box_secret();
                let officer = Station::adopt_legacy(
                    &mut conn,
                    &mut keys,
                    &keys_path,
                    &opened.key,
                    credentials,
                    &secret,
                    now,
                )?;
                own_box = Some(secret);
                officer
            }
        };
        let mut station = Station::from_conn(
            conn,
            dir,
            Session::new(&officer, opened.must_change),
            opened.key,
            Ring {
                slot_anchor: opened.anchor.clone(),
                ..Ring::new(own_box)
            },
        )?;
        // An anchor this officer's own sync pinned since the last sign-in is bound into
        // their slot now, with the password at hand: from then on, changing it in the file
        // locks the slot (see `keys.rs`).
        if opened.anchor.is_none() {
            if let Some(anchor) = station.pinned_anchor()? {
                if keys.bind_anchor(&credentials.username, &credentials.password, &anchor)? {
                    keys.write(&keys_path)?;
                }
                station.ring.slot_anchor = Some(anchor);
            }
        }
        station.audit(
            Action::SignIn,
            None,
            serde_json::json!({"failed_attempts_before": opened.failures_before}),
            now,
        )?;
        station.identity_at_sign_in(now)?;
        Ok(station)
    }

    /// Opens the station with a key already proven at sign-in, acting as `officer_id`: the
    /// desktop's sync thread, which needs its own connection. Refused if the account has
    /// been disabled since, or the station revoked.
    pub fn open_with_key(dir: &Path, key: &SessionKey, officer_id: &str) -> Result<Station> {
        let conn = Station::connect_migrated(dir, &key.db)?;
        let officer = match accounts::load(&conn, officer_id)? {
            Some(a) if a.active => a,
            _ => return Err(StoreError::AccountDisabled),
        };
        let station = Station::from_conn(
            conn,
            dir,
            Session::new(&officer, false),
            key.db.clone(),
            Ring {
                slot_anchor: key.anchor.clone(),
                ..Ring::new(key.own_box.clone())
            },
        )?;
        match station.revoked_at()? {
            Some(at) => Err(StoreError::Revoked(at)),
            None => Ok(station),
        }
    }

    /// When every password of the station is forgotten: unlocks it with its recovery code
    /// (see [`Station::set_recovery_code`]) and gives `officer` (a chief; an existing
    /// account of that username is enabled again) the new password.
    pub fn recover(
        dir: &Path,
        code: &str,
        officer: &FirstOfficer,
        now: DateTime<Utc>,
    ) -> Result<Station> {
        let keys_path = dir.join(KEYS_FILE);
        if !dir.join(DB_FILE).exists() || !keys_path.exists() {
            return Err(StoreError::NoStation(dir.to_path_buf()));
        }
        let mut keys = KeyFile::read(&keys_path)?;
        let (key, recovery_box) = keys.unlock_recovery(code)?;
        let mut conn = Station::connect_migrated(dir, &key)?;
        let own_box = new_box_secret();
        let id = Station::claim_account(
            &mut conn,
            &mut keys,
            &keys_path,
            &key,
            officer,
            &own_box,
            Action::RecoveryUse,
            serde_json::json!({}),
            now,
        )?;
        let account =
            accounts::load(&conn, &id)?.ok_or_else(|| StoreError::not_found("tài khoản", &id))?;
        // The code has been read out over the telephone: the next sync hands the province a
        // new one (and wraps the key under it), so the old one stops working.
        meta_set(&conn, "sync.recovery_escrowed", "")?;
        // The recovery slot's box key opens the identity keys granted to it, which this
        // session passes on to the new chief's key.
        let mut ring = Ring::new(Some(own_box));
        if let Some(r) = recovery_box {
            ring.add(r);
        }
        let mut station = Station::from_conn(conn, dir, Session::new(&account, false), key, ring)?;
        station.identity_at_sign_in(now)?;
        // The recovery, audited, is the grant of the commune's key to the new chief's key.
        if let Some(own) = station.ring.own() {
            let own = crate::identity::key_id(&own.public_key());
            match station.grant_identity(&own, now) {
                Ok(_) | Err(StoreError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(station)
    }
    /// A station from before accounts, opened with its passphrase: the officer who opens it
    /// becomes its first account (a chief), with that passphrase as password.
    fn adopt_legacy(
        conn: &mut Connection,
        keys: &mut KeyFile,
        keys_path: &Path,
        key: &DbKey,
        credentials: &Credentials,
        own_box: &BoxSecret,
        now: DateTime<Utc>,
    ) -> Result<accounts::Account> {
        let officer = FirstOfficer {
            username: credentials.username.clone(),
            full_name: credentials.username.clone(),
            password: credentials.password.to_string(),
            role: binhyen_domain::access::Role::Chief,
        };
        let id = Station::claim_account(
            conn,
            keys,
            keys_path,
            key,
            &officer,
            own_box,
            Action::AccountChange,
            serde_json::json!({"op": "create", "from": "station passphrase"}),
            now,
        )?;
        tracing::info!("station passphrase became the first account's password");
        accounts::load(conn, &id)?.ok_or_else(|| StoreError::not_found("tài khoản", id))
    }

    /// Gives `officer` an active account with its role (the one of that username, enabled
    /// again, or a new one), records `action` in the audit trail, and wraps the key under
    /// its password. The account is committed before the key file names it, so a slot
    /// never points at an officer who does not exist (and a repeat after a failed key-file
    /// write reuses the account). Returns the officer's id.
    #[allow(clippy::too_many_arguments)]
    fn claim_account(
        conn: &mut Connection,
        keys: &mut KeyFile,
        keys_path: &Path,
        key: &DbKey,
        officer: &FirstOfficer,
        own_box: &BoxSecret,
        action: Action,
        detail: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let (username, full_name) =
            accounts::check_new(&officer.username, &officer.full_name, &officer.password)?;
        let unit = meta_get(conn, "unit_code")?.unwrap_or_default();
        let existing: Option<(String, i64)> = conn
            .query_row(
                "SELECT id, active FROM officers WHERE username = ?1 ORDER BY active DESC LIMIT 1",
                [&username],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut w = Writer::begin(conn, now, &username)?;
        let id = match existing {
            Some((id, active)) => {
                let mut fields = serde_json::Map::new();
                if active == 0 {
                    fields.insert("active".into(), true.into());
                }
                fields.insert("role".into(), officer.role.as_str().into());
                fields.insert("updated_at".into(), crate::sql::ts(now).into());
                crate::roster::update_record(&mut w, "officer", "officers", &id, fields)?;
                id
            }
            None => accounts::insert_account(
                &mut w,
                &unit,
                &username,
                &full_name,
                officer.role,
                None,
                None,
            )?,
        };
        let mut detail = detail;
        detail["username"] = username.clone().into();
        detail["role"] = officer.role.as_str().into();
        w.audit(action, Some(&id), detail)?;
        w.commit()?;
        keys.set_password(key, &username, &id, &officer.password, false, own_box)?;
        keys.write(keys_path)?;
        Ok(id)
    }

    fn connect_migrated(dir: &Path, key: &DbKey) -> Result<Connection> {
        let mut conn = connect(&dir.join(DB_FILE), key, false)?;
        migrate::migrate(&mut conn)?;
        if meta_get(&conn, "search_index")?.as_deref() != Some(SEARCH_INDEX_VERSION) {
            let tx = conn.transaction()?;
            let n = crate::tips::rebuild_tip_index(&tx)?;
            meta_set(&tx, "search_index", SEARCH_INDEX_VERSION)?;
            tx.commit()?;
            tracing::info!(tips = n, "search index rebuilt");
        }
        Ok(conn)
    }
}
