//! Officers' accounts on a shared station laptop: who is signed in (the [`Session`]), what
//! their role allows ([`Station::require`], called by every library function that reads or
//! writes on an officer's behalf), and managing accounts (create, role, disable, reset a
//! password, change one's own).
//!
//! An account is an `officers` record (synchronised, so accounts made at the province reach
//! the station and a disabled account stops working at the next sync) plus, on each laptop
//! where the officer has a password, a slot in `keys.json` (never synchronised: a password
//! wraps this laptop's database key).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use ts_rs::TS;
use zeroize::Zeroizing;

use binhyen_domain::access::{normalize_username, Permission, Role};
use binhyen_domain::text::normalize_line;
use binhyen_domain::Invalid;

use crate::audit::Action;
use crate::identity::publish_officer_key;
use crate::keys::{check_password, new_box_secret, KeyFile};
use crate::roster::{insert_record, update_record};
pub use crate::session::Session;
use crate::sql::ts;
use crate::station::KEYS_FILE;
use crate::{Result, Station, StoreError};

/// A username and password as typed at sign-in (or given to a script in `BINHYEN_USER` and
/// `BINHYEN_PASSWORD`). The password is zeroed when dropped.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Zeroizing<String>,
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.trim().to_lowercase(),
            password: Zeroizing::new(password.to_string()),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, …)", self.username)
    }
}

impl Session {
    pub(crate) fn new(officer: &Account, must_change_password: bool) -> Session {
        Session {
            officer_id: officer.id.clone(),
            username: officer.username.clone().unwrap_or_default(),
            full_name: officer.full_name.clone(),
            role: officer.role,
            role_label: officer.role.label().to_string(),
            permissions: officer.role.permissions(),
            must_change_password,
        }
    }
}

/// An officer's account as the accounts screen lists it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Account {
    pub id: String,
    pub username: Option<String>,
    pub full_name: String,
    pub rank: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub role_label: String,
    pub active: bool,
    /// Whether the officer has a password on this laptop (an account made at the province
    /// needs one set here before its first sign-in).
    pub password_here: bool,
}

/// An officer who may be given a tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct OfficerChoice {
    pub id: String,
    pub full_name: String,
}

/// A new account as the chief or an administrator enters it. The password is temporary:
/// the officer must change it at the first sign-in.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct NewAccount {
    pub username: String,
    pub full_name: String,
    pub role: Role,
    pub password: String,
    #[serde(default)]
    #[ts(optional)]
    pub rank: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub phone: Option<String>,
}

/// The first account of a new station, made with it.
#[derive(Debug, Clone)]
pub struct FirstOfficer {
    pub username: String,
    pub full_name: String,
    pub password: String,
    pub role: Role,
}

fn invalid(field: &str, code: &str, message: &str) -> StoreError {
    StoreError::Invalid(Invalid::one(field, code, message))
}

/// Checks a new account's fields; returns the stored username and full name.
pub(crate) fn check_new(
    username: &str,
    full_name: &str,
    password: &str,
) -> Result<(String, String)> {
    let username = normalize_username(username).map_err(|m| invalid("username", "invalid", m))?;
    let full_name = normalize_line(full_name);
    if full_name.chars().count() < 2 {
        return Err(invalid("full_name", "required", "Hãy nhập họ tên cán bộ."));
    }
    check_password(&username, password)?;
    Ok((username, full_name))
}

const ACCOUNT_COLUMNS: &str = "id, username, full_name, rank, phone, role, active";

fn account_row(row: &rusqlite::Row<'_>, keys: &[String]) -> rusqlite::Result<Account> {
    let id: String = row.get(0)?;
    let role = crate::sql::get_enum(row, 5, Role::parse)?;
    Ok(Account {
        password_here: keys.contains(&id),
        id,
        username: row.get(1)?,
        full_name: row.get(2)?,
        rank: row.get(3)?,
        phone: row.get(4)?,
        role,
        role_label: role.label().to_string(),
        active: row.get::<_, i64>(6)? != 0,
    })
}

/// The officer record `id`, whatever its state.
pub(crate) fn load(conn: &rusqlite::Connection, id: &str) -> Result<Option<Account>> {
    Ok(conn
        .query_row(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM officers WHERE id = ?1"),
            [id],
            |r| account_row(r, &[]),
        )
        .optional()?)
}

/// Inserts the officer record of an account (in the caller's transaction).
pub(crate) fn insert_account(
    w: &mut crate::changes::Writer<'_>,
    unit: &str,
    username: &str,
    full_name: &str,
    role: Role,
    rank: Option<&str>,
    phone: Option<&str>,
) -> Result<String> {
    let now = ts(w.now());
    let Value::Object(fields) = json!({
        "unit_code": unit, "username": username, "full_name": full_name, "role": role.as_str(),
        "rank": rank, "phone": phone, "active": true, "created_at": now, "updated_at": now,
    }) else {
        unreachable!()
    };
    insert_record(w, "officer", "officers", fields)
}

impl Station {
    /// Who is signed in.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Refuses, with a message naming the role and the action, unless the signed-in
    /// officer's role allows `p`. Every library function acting for an officer calls it.
    pub fn require(&self, p: Permission) -> Result<()> {
        if self.session.must_change_password {
            return Err(StoreError::PasswordChangeRequired);
        }
        if self.session.role.allows(p) {
            Ok(())
        } else {
            Err(StoreError::Forbidden {
                role: self.session.role.label(),
                what: p.label(),
            })
        }
    }

    fn key_file(&self) -> Result<KeyFile> {
        KeyFile::read(&self.dir().join(KEYS_FILE))
    }

    /// Every account of the station, active ones first, by name.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.require(Permission::AccountsManage)?;
        let keys = self.key_file()?.officer_ids();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM officers WHERE username IS NOT NULL
             ORDER BY active DESC, full_name"
        ))?;
        let rows = stmt.query_map([], |r| account_row(r, &keys))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn account(&self, id: &str) -> Result<Account> {
        load(&self.conn, id)?
            .filter(|a| a.username.is_some())
            .ok_or_else(|| StoreError::not_found("tài khoản", id))
    }

    fn username_taken(&self, username: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM officers WHERE username = ?1 AND active = 1",
                [username],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Whether the session may give `role` (see [`Role::may_grant`]).
    fn check_grant(&self, role: Role) -> Result<()> {
        if self.session.role.may_grant(role) {
            Ok(())
        } else if role.allows(Permission::IdentityView) && role != Role::Chief {
            Err(invalid(
                "role",
                "not_allowed",
                &format!(
                    "Chỉ trưởng Công an xã mới được tạo, cấp vai trò {}, mở lại hoặc đặt lại mật khẩu cho tài khoản được xem danh tính người tố giác.",
                    role.label()
                ),
            ))
        } else {
            Err(invalid(
                "role",
                "not_allowed",
                &format!(
                    "Tài khoản {} không được cấp vai trò {}.",
                    self.session.role.label(),
                    role.label()
                ),
            ))
        }
    }

    /// Whether the session may take rights from an account of `role` (see
    /// [`Role::may_manage`]).
    fn check_manage(&self, role: Role) -> Result<()> {
        if self.session.role.may_manage(role) {
            Ok(())
        } else {
            Err(invalid(
                "role",
                "not_allowed",
                &format!(
                    "Tài khoản {} không được thay đổi tài khoản {}.",
                    self.session.role.label(),
                    role.label()
                ),
            ))
        }
    }

    /// After a chief made or reset an account that may see identity: the chief's act is
    /// the grant of the commune's identity key to its new key (where the chief holds it).
    fn grant_new_key(
        &mut self,
        role: Role,
        officer_key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !role.allows(Permission::IdentityView)
            || !self.session.role.allows(Permission::IdentityGrant)
        {
            return Ok(());
        }
        if !self.has_identity_key()? {
            // The commune's first key, made by the chief now, so that the account is
            // granted it as it is made.
            self.create_identity_key(now)?;
        }
        match self.grant_identity(officer_key_id, now) {
            Ok(_) => Ok(()),
            // The chief holds no key on this laptop yet: the account waits for a grant.
            Err(StoreError::Invalid(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates an account with a temporary password (to be changed at the first sign-in).
    pub fn create_account(&mut self, new: &NewAccount, now: DateTime<Utc>) -> Result<Account> {
        self.require(Permission::AccountsManage)?;
        let (username, full_name) = check_new(&new.username, &new.full_name, &new.password)?;
        self.check_grant(new.role)?;
        if self.username_taken(&username)? {
            return Err(invalid(
                "username",
                "taken",
                &format!("Tên đăng nhập \"{username}\" đã có người dùng."),
            ));
        }
        let rank = new
            .rank
            .as_deref()
            .map(normalize_line)
            .filter(|s| !s.is_empty());
        let phone =
            match new
                .phone
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                Some(p) => Some(binhyen_domain::phone::normalize_phone(p).map_err(|e| {
                    StoreError::Invalid(Invalid(vec![e.to_field_error("phone", p)]))
                })?),
                None => None,
            };
        let unit = self.info().unit_code.clone();
        let station_id = self.info().station_id.to_string();
        let key = self.key.clone();
        let keys_path = self.dir().join(KEYS_FILE);
        let mut keys = self.key_file()?;
        let own_box = new_box_secret();
        let mut w = self.writer(now)?;
        let id = insert_account(
            &mut w,
            &unit,
            &username,
            &full_name,
            new.role,
            rank.as_deref(),
            phone.as_deref(),
        )?;
        w.audit(
            Action::AccountChange,
            Some(&id),
            json!({"op": "create", "username": username, "role": new.role.as_str()}),
        )?;
        let officer_key = publish_officer_key(&mut w, &unit, &station_id, Some(&id), &own_box)?;
        // The key slot before the commit: if it cannot be written, no account is left
        // without a password.
        keys.set_password(&key, &username, &id, &new.password, true, &own_box)?;
        keys.write(&keys_path)?;
        w.commit()?;
        // A chief making an account that may see identity grants it the commune's key.
        self.grant_new_key(new.role, &officer_key, now)?;
        self.account(&id)
    }

    fn update_account(
        &mut self,
        id: &str,
        fields: Map<String, Value>,
        detail: Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut fields = fields;
        fields.insert("updated_at".into(), json!(ts(now)));
        let mut w = self.writer(now)?;
        update_record(&mut w, "officer", "officers", id, fields)?;
        w.audit(Action::AccountChange, Some(id), detail)?;
        w.commit()
    }

    /// Whether another active account holding `p` remains if `id` loses it.
    fn another_with(&self, id: &str, roles: &[Role]) -> Result<bool> {
        let others: Vec<String> = self
            .conn
            .prepare(
                "SELECT role FROM officers WHERE active = 1 AND username IS NOT NULL AND id <> ?1",
            )?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(others
            .iter()
            .filter_map(|r| Role::parse(r))
            .any(|r| roles.contains(&r)))
    }

    /// Changes an account's role.
    pub fn set_account_role(
        &mut self,
        id: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Account> {
        self.require(Permission::AccountsManage)?;
        let account = self.account(id)?;
        self.check_grant(role)?;
        self.check_manage(account.role)?;
        if account.role == role {
            return Ok(account);
        }
        if !role.allows(Permission::AccountsManage)
            && !self.another_with(id, &[Role::Chief, Role::Admin])?
        {
            return Err(invalid(
                "role",
                "last_manager",
                "Đây là tài khoản cuối cùng quản lý được tài khoản; hãy cấp quyền cho người khác trước.",
            ));
        }
        let Value::Object(fields) = json!({"role": role.as_str()}) else {
            unreachable!()
        };
        self.update_account(
            id,
            fields,
            json!({"op": "role", "from": account.role.as_str(), "to": role.as_str()}),
            now,
        )?;
        // A role without identity_view no longer holds the commune's key: it is replaced.
        self.share_identity_keys(now)?;
        self.account(id)
    }

    /// Disables (or enables again) an account. A disabled officer's password is removed
    /// from this laptop at once, and from the others at their next sync.
    pub fn set_account_active(
        &mut self,
        id: &str,
        active: bool,
        now: DateTime<Utc>,
    ) -> Result<Account> {
        self.require(Permission::AccountsManage)?;
        let account = self.account(id)?;
        if active {
            // Opening an account again gives its rights back.
            self.check_grant(account.role)?;
        } else {
            self.check_manage(account.role)?;
        }
        if account.active == active {
            return Ok(account);
        }
        if !active {
            if id == self.session.officer_id {
                return Err(invalid(
                    "active",
                    "self",
                    "Không thể tự vô hiệu hóa tài khoản đang đăng nhập.",
                ));
            }
            if account.role.allows(Permission::AccountsManage)
                && !self.another_with(id, &[Role::Chief, Role::Admin])?
            {
                return Err(invalid(
                    "active",
                    "last_manager",
                    "Đây là tài khoản cuối cùng quản lý được tài khoản; không thể vô hiệu hóa.",
                ));
            }
        }
        let Value::Object(fields) = json!({"active": active}) else {
            unreachable!()
        };
        self.update_account(
            id,
            fields,
            json!({"op": if active { "enable" } else { "disable" }}),
            now,
        )?;
        self.sync_key_slots()?;
        // A disabled officer's key no longer receives identities: the key they held is
        // replaced (an account enabled again is granted the current one by a chief).
        self.share_identity_keys(now)?;
        self.account(id)
    }

    /// Sets a temporary password for an account (forgotten, or made at the province and
    /// never used here). The officer must change it at the next sign-in.
    pub fn reset_password(
        &mut self,
        id: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Account> {
        self.require(Permission::AccountsManage)?;
        let account = self.account(id)?;
        self.check_grant(account.role)?;
        if !account.active {
            return Err(StoreError::AccountDisabled);
        }
        let username = account.username.clone().unwrap_or_default();
        let mut keys = self.key_file()?;
        // The old password is gone and with it the old box key: a new one, granted anew.
        let own_box = new_box_secret();
        keys.set_password(&self.key, &username, id, password, true, &own_box)?;
        let (unit, station_id) = (
            self.info().unit_code.clone(),
            self.info().station_id.to_string(),
        );
        let keys_path = self.dir().join(KEYS_FILE);
        let mut w = self.writer(now)?;
        let officer_key = publish_officer_key(&mut w, &unit, &station_id, Some(id), &own_box)?;
        w.audit(
            Action::AccountChange,
            Some(id),
            json!({"op": "reset_password", "username": username}),
        )?;
        keys.write(&keys_path)?;
        w.commit()?;
        // Only a chief resets an account that may see identity, and that reset grants it.
        self.grant_new_key(account.role, &officer_key, now)?;
        self.account(id)
    }

    /// Changes the signed-in officer's own password. The database key stays the same, so
    /// nothing is re-encrypted.
    pub fn change_password(&mut self, old: &str, new: &str, now: DateTime<Utc>) -> Result<()> {
        let mut keys = self.key_file()?;
        let username = self.session.username.clone();
        // The old password is asked again: an unattended, signed-in window is not enough.
        keys.unlock(&username, old, now).inspect_err(|_| {
            let _ = keys.write(&self.dir().join(KEYS_FILE));
        })?;
        if old == new {
            return Err(invalid(
                "password",
                "unchanged",
                "Mật khẩu mới phải khác mật khẩu cũ.",
            ));
        }
        let id = self.session.officer_id.clone();
        // The same box key under the new password: what was granted to it still opens.
        let own_box = match self.ring.own() {
            Some(b) => b.clone(),
            None => new_box_secret(),
        };
        keys.set_password(&self.key, &username, &id, new, false, &own_box)?;
        self.audit(
            Action::PasswordChange,
            Some(&id),
            json!({"username": username}),
            now,
        )?;
        keys.write(&self.dir().join(KEYS_FILE))?;
        self.session.must_change_password = false;
        Ok(())
    }

    /// Removes from `keys.json` the passwords of officers whose account is disabled or gone
    /// (after a sync brought the change, or here). Returns how many were removed.
    pub fn sync_key_slots(&self) -> Result<usize> {
        let path = self.dir().join(KEYS_FILE);
        let mut keys = KeyFile::read(&path)?;
        let mut removed = 0;
        for id in keys.officer_ids() {
            let active = self
                .conn
                .query_row("SELECT active FROM officers WHERE id = ?1", [&id], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                == Some(1);
            if !active && id != self.session.officer_id && keys.remove_officer(&id) {
                removed += 1;
            }
        }
        if removed > 0 {
            keys.write(&path)?;
            tracing::info!(removed, "passwords of disabled accounts removed");
        }
        Ok(removed)
    }

    /// Whether the signed-in officer's account is still active (a sync may have disabled
    /// it). The desktop asks before every command.
    pub fn session_valid(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT active FROM officers WHERE id = ?1",
                params![self.session.officer_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            == Some(1))
    }

    /// The station's active officers who may handle tips (chiefs and officers), for choosing
    /// who handles a tip and for filtering the list, in Vietnamese name order.
    pub fn officers(&self) -> Result<Vec<OfficerChoice>> {
        self.require(Permission::TipRead)?;
        let mut stmt = self.conn.prepare(
            "SELECT id, full_name, role FROM officers
             WHERE active = 1 AND username IS NOT NULL AND unit_code = ?1",
        )?;
        let rows = stmt.query_map([&self.info().unit_code], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out: Vec<OfficerChoice> = rows
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|(_, _, role)| Role::parse(role).is_some_and(|r| r.allows(Permission::TipEdit)))
            .map(|(id, full_name, _)| OfficerChoice { id, full_name })
            .collect();
        binhyen_domain::text::vi_sort_by_key(&mut out, |o| &o.full_name);
        Ok(out)
    }

    /// Wraps the database key under a recovery code (kept by the provincial server only),
    /// with a box key of its own that is granted the commune's identity keys: a station
    /// whose every password is forgotten keeps its reporters' identities.
    pub fn set_recovery_code(&mut self, code: &str, now: DateTime<Utc>) -> Result<()> {
        let path = self.dir().join(KEYS_FILE);
        let mut keys = KeyFile::read(&path)?;
        let recovery_box = new_box_secret();
        let (unit, station_id) = (
            self.info().unit_code.clone(),
            self.info().station_id.to_string(),
        );
        keys.set_recovery(&self.key, code, &recovery_box)?;
        let mut w = self.writer(now)?;
        let officer_key = publish_officer_key(&mut w, &unit, &station_id, None, &recovery_box)?;
        w.commit()?;
        keys.write(&path)?;
        // Set up by a chief, the slot is granted the commune's key now; otherwise it waits
        // on the accounts screen for a chief.
        if self.session.role.allows(Permission::IdentityGrant) {
            match self.grant_identity(&officer_key, now) {
                Ok(_) | Err(StoreError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// An officer of `unit` who can handle tips (an active officer or chief), found by id or
/// username: (id, full name). Otherwise a field error on `field` saying why not.
pub(crate) fn handling_officer(
    conn: &rusqlite::Connection,
    officer: &str,
    unit: &str,
    field: &str,
) -> Result<(String, String)> {
    let officer = officer.trim();
    let found: Option<(String, String, bool, String)> = conn
        .query_row(
            "SELECT id, full_name, active, role FROM officers
             WHERE (id = ?1 OR username = ?2) AND unit_code = ?3 AND username IS NOT NULL",
            rusqlite::params![officer, officer.to_lowercase(), unit],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let refuse = |message: String| {
        crate::StoreError::Invalid(binhyen_domain::Invalid::one(
            field,
            "unknown_officer",
            message,
        ))
    };
    let (id, name, active, role) = found.ok_or_else(|| {
        refuse(format!(
            "Không có cán bộ \"{officer}\" trong đơn vị; hãy chọn từ danh sách."
        ))
    })?;
    let handles = Role::parse(&role).is_some_and(|r| r.allows(Permission::TipEdit));
    if !active || !handles {
        return Err(refuse(format!(
            "Tài khoản của {name} {}.",
            if active {
                "không có quyền xử lý nguồn tin nên không thể được giao việc này"
            } else {
                "đã bị khóa"
            }
        )));
    }
    Ok((id, name))
}
