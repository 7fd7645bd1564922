//! Reporter identity under keys of its own, so that the database key (which an administrator
//! holds, and which a backup or a stolen laptop with one password gives away) does not open
//! the names and phone numbers of people who denounced a crime.
//!
//! - Each commune has an **identity key** (X25519, `identity_keys`). Its public half is in
//!   the database: anyone recording a tip can seal a reporter's name, phone, ID number and
//!   address to it ("sealed1:KEY_ID:BASE64", a libsodium sealed box). The values stay sealed
//!   in `tip_reporters`, in the outbox, on the wire and on the provincial server.
//! - Its secret half exists only sealed to officers' **box keys** (`identity_grants`): each
//!   officer's slot in `keys.json` holds a box key wrapped under their password, whose
//!   public half is published in `officer_keys`. Only keys of active officers whose role may
//!   see identity (and of recovery slots) are granted.
//! - The three tables are synchronised in the unit, so a new laptop of the commune publishes
//!   its officers' keys, and the next sync of any laptop whose signed-in officer holds the
//!   identity key grants it to them. Until then that laptop shows identities as sealed.
//! - A laptop that recorded identities before it learnt of the commune's key made a key of
//!   its own; both are granted everywhere, and every laptop seals with the oldest key it can
//!   open.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use crypto_box::{PublicKey, SecretKey};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use sha2::{Digest, Sha256};

use binhyen_domain::access::{Permission, Role};
use binhyen_domain::tip::Reporter;

use crate::changes::{Op, Writer};
use crate::keys::BoxSecret;
use crate::roster::{insert_record, insert_record_with_id, obj, update_record};
use crate::sql::ts;
use crate::station::Station;
use crate::{Result, StoreError};

/// The prefix of a sealed value.
pub const SEALED: &str = "sealed1:";

/// Meta key: "1" once no reporter identity of the unit is stored in clear.
pub(crate) const SEALED_ALL: &str = "identity.sealed_all";

/// What a reporter's name reads as where the identity key has not reached this laptop yet.
pub const LOCKED_NAME: &str =
    "(Danh tính đã niêm phong; máy này chưa nhận khóa danh tính của xã: hãy đồng bộ lại sau khi một máy khác của xã đã đồng bộ.)";

/// The key id of a public key: 16 bytes of its SHA-256, in hex.
pub fn key_id(public: &PublicKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..16])
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn parse_public(hex_text: &str) -> Result<PublicKey> {
    let bytes: [u8; 32] = hex::decode(hex_text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| broken("khóa công khai không hợp lệ"))?;
    Ok(PublicKey::from(bytes))
}

fn broken(what: &str) -> StoreError {
    StoreError::Invalid(binhyen_domain::Invalid::one(
        "identity",
        "broken_key",
        format!("Khóa danh tính: {what}."),
    ))
}

/// The roles whose officers' keys are granted the identity key, as an SQL list
/// (`'officer', 'chief'`): the domain's own constant names, never input.
fn identity_roles_sql() -> String {
    Role::ALL
        .iter()
        .filter(|r| r.allows(Permission::IdentityView))
        .map(|r| format!("'{}'", r.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The officer keys of a unit that may hold the identity key (`k`), for a WHERE clause.
fn eligible_keys_sql() -> String {
    format!(
        "k.officer_id IS NULL OR (o.active = 1 AND o.role IN ({}))",
        identity_roles_sql()
    )
}

/// The keys the signed-in session can open identity keys with: the officer's own box key
/// on this laptop (and, after a recovery, the recovery slot's), with their officer-key ids;
/// and the identity keys opened so far.
#[derive(Default)]
pub(crate) struct Ring {
    openers: Vec<(String, BoxSecret)>,
    opened: RefCell<HashMap<String, SecretKey>>,
}

impl Ring {
    pub(crate) fn new(own: Option<BoxSecret>) -> Ring {
        let mut ring = Ring::default();
        if let Some(s) = own {
            ring.add(s);
        }
        ring
    }

    pub(crate) fn add(&mut self, secret: BoxSecret) {
        self.openers.push((key_id(&secret.public_key()), secret));
    }

    /// The signed-in officer's own box key.
    pub(crate) fn own(&self) -> Option<&BoxSecret> {
        self.openers.first().map(|(_, s)| s)
    }
}

/// Seals values to one identity key.
pub(crate) struct Sealer {
    key_id: String,
    public: PublicKey,
}

impl Sealer {
    pub(crate) fn seal(&self, plain: &str) -> Result<String> {
        let sealed = self
            .public
            .seal(&mut rand::rngs::OsRng, plain.as_bytes())
            .map_err(|_| broken("không niêm phong được"))?;
        Ok(format!("{SEALED}{}:{}", self.key_id, b64().encode(sealed)))
    }

    fn seal_opt(&self, plain: Option<&str>) -> Result<Option<String>> {
        plain.map(|p| self.seal(p)).transpose()
    }

    /// The reporter with every identifying field sealed (the secrecy request stays plain:
    /// the window needs it to warn before anything is printed).
    pub(crate) fn seal_reporter(&self, r: &Reporter) -> Result<Reporter> {
        Ok(Reporter {
            name: self.seal_opt(r.name.as_deref())?,
            phone: self.seal_opt(r.phone.as_deref())?,
            id_number: self.seal_opt(r.id_number.as_deref())?,
            address: self.seal_opt(r.address.as_deref())?,
            secret: r.secret,
        })
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(v: &str) -> bool {
    v.starts_with(SEALED)
}

/// Publishes a box key in the unit (replacing the same officer's, or the recovery slot's,
/// earlier key on this laptop). `officer_id` is None for a recovery slot.
pub(crate) fn publish_officer_key(
    w: &mut Writer<'_>,
    unit: &str,
    station_id: &str,
    officer_id: Option<&str>,
    secret: &BoxSecret,
) -> Result<String> {
    let public = secret.public_key();
    let id = key_id(&public);
    let old: Vec<String> = w
        .conn()
        .prepare_cached(
            "SELECT id FROM officer_keys WHERE station_id = ?1 AND officer_id IS ?2 AND id <> ?3",
        )?
        .query_map(params![station_id, officer_id, id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for old_id in old {
        w.record("officer_key", &old_id, Op::Delete, json!({}))?;
        w.conn()
            .execute("DELETE FROM officer_keys WHERE id = ?1", [&old_id])?;
    }
    if !officer_key_known(w.conn(), &id)? {
        let fields = json!({"unit_code": unit, "officer_id": officer_id, "station_id": station_id,
                            "public": hex::encode(public.as_bytes()), "created_at": ts(w.now())});
        insert_record_with_id(w, "officer_key", "officer_keys", &id, obj(fields))?;
    }
    Ok(id)
}

fn officer_key_known(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM officer_keys WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The keys of the unit that may hold identity key `key_id` and do not yet: (officer key id,
/// public key).
fn grant_targets(conn: &Connection, unit: &str, key_id: &str) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT k.id, k.public FROM officer_keys k LEFT JOIN officers o ON o.id = k.officer_id
         WHERE k.unit_code = ?1 AND ({})
           AND NOT EXISTS (SELECT 1 FROM identity_grants g WHERE g.officer_key_id = k.id AND g.key_id = ?2)
         ORDER BY k.id",
        eligible_keys_sql()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params![unit, key_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Seals `secret` (identity key `key_id`) to each of `targets` (see [`grant_targets`]).
fn write_grants(
    w: &mut Writer<'_>,
    unit: &str,
    key_id: &str,
    secret: &SecretKey,
    targets: &[(String, String)],
) -> Result<()> {
    let secret_bytes = zeroize::Zeroizing::new(secret.to_bytes());
    for (officer_key_id, public_hex) in targets {
        let sealed = parse_public(public_hex)?
            .seal(&mut rand::rngs::OsRng, secret_bytes.as_ref())
            .map_err(|_| broken("không niêm phong được"))?;
        let fields = json!({"unit_code": unit, "key_id": key_id, "officer_key_id": officer_key_id,
                            "sealed": b64().encode(sealed), "created_at": ts(w.now())});
        insert_record(w, "identity_grant", "identity_grants", obj(fields))?;
    }
    Ok(())
}

/// The unit's identity keys, oldest first: all of them, or only those new identities may
/// be sealed to (not retired).
fn unit_keys(conn: &Connection, unit: &str, sealing_only: bool) -> Result<Vec<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, public FROM identity_keys WHERE unit_code = ?1 AND (?2 = 0 OR retired = 0)
             ORDER BY created_at, id",
        )?
        .query_map(params![unit, sealing_only], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Keys of the unit, not retired yet, granted to an officer who may no longer see identity
/// (disabled, or moved to a role without it).
fn exposed_keys(conn: &Connection, unit: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT DISTINCT i.id FROM identity_keys i
           JOIN identity_grants g ON g.key_id = i.id
           JOIN officer_keys k ON k.id = g.officer_key_id
           JOIN officers o ON o.id = k.officer_id
         WHERE i.unit_code = ?1 AND i.retired = 0
           AND (o.active = 0 OR o.role NOT IN ({}))
         ORDER BY i.id",
        identity_roles_sql()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map([unit], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Where reporter identity stands for the signed-in officer on this laptop (the sync
/// screen and `binhyen status` show it: the installer checks that a new laptop received
/// the commune's key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct IdentityStatus {
    /// The signed-in officer's role may see identity at all.
    pub may_see: bool,
    /// The unit's identity keys (none until the first identity is recorded).
    pub unit_keys: u32,
    /// Those this session can open.
    pub opened_keys: u32,
    /// Keys of officers of the unit, on any laptop, that may see identity and still wait
    /// for a key (granted at the next sync of a laptop that holds it).
    pub waiting_officer_keys: u32,
}

/// Whether an opened reporter is the sealed placeholder (this laptop has not received the
/// key it is sealed to).
pub(crate) fn is_locked(r: &Reporter) -> bool {
    r.name.as_deref() == Some(LOCKED_NAME)
}

impl Station {
    /// The secret half of identity key `key_id`, if the signed-in officer may see identity
    /// and one of their keys was granted it.
    pub(crate) fn identity_secret(&self, wanted: &str) -> Result<Option<SecretKey>> {
        if !self.session.role.allows(Permission::IdentityView) {
            return Ok(None);
        }
        if let Some(s) = self.ring.opened.borrow().get(wanted) {
            return Ok(Some(s.clone()));
        }
        for (officer_key_id, opener) in &self.ring.openers {
            let grants: Vec<String> = self
                .conn
                .prepare_cached(
                    "SELECT sealed FROM identity_grants WHERE officer_key_id = ?1 AND key_id = ?2",
                )?
                .query_map(params![officer_key_id, wanted], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for sealed in grants {
                let Some(plain) = b64()
                    .decode(&sealed)
                    .ok()
                    .and_then(|b: Vec<u8>| opener.unseal(b.as_slice()).ok())
                    .map(zeroize::Zeroizing::new)
                else {
                    continue;
                };
                let Ok(bytes) = <[u8; 32]>::try_from(plain.as_slice()) else {
                    continue;
                };
                let secret = SecretKey::from(bytes);
                // A grant is only believed if it opens to the key it names.
                if key_id(&secret.public_key()) == wanted {
                    self.ring
                        .opened
                        .borrow_mut()
                        .insert(wanted.to_string(), secret.clone());
                    return Ok(Some(secret));
                }
            }
        }
        Ok(None)
    }

    /// What new identities are sealed with: the oldest key of the unit that this session can
    /// open, so that what an officer records they can read back. Where they can open none (a
    /// unit without a key, or a new laptop not granted the commune's yet) a key is made now,
    /// granted to every officer of the unit who may see identity, on every laptop this one
    /// knows of; the others receive it like any key. A role that may not see identity seals
    /// with the oldest key.
    pub(crate) fn identity_sealer(&mut self, now: DateTime<Utc>) -> Result<Sealer> {
        let unit = self.info().unit_code.clone();
        let keys = unit_keys(&self.conn, &unit, true)?;
        for (id, public) in &keys {
            if self.identity_secret(id)?.is_some() {
                return Ok(Sealer {
                    key_id: id.clone(),
                    public: parse_public(public)?,
                });
            }
        }
        if !self.session.role.allows(Permission::IdentityView) {
            if let Some((id, public)) = keys.first() {
                return Ok(Sealer {
                    key_id: id.clone(),
                    public: parse_public(public)?,
                });
            }
        }
        let secret = SecretKey::generate(&mut rand::rngs::OsRng);
        let public = secret.public_key();
        let id = key_id(&public);
        let public_hex = hex::encode(public.as_bytes());
        let mut w = self.writer(now)?;
        let fields =
            json!({"unit_code": unit, "public": public_hex, "created_at": ts(now), "retired": 0});
        insert_record_with_id(&mut w, "identity_key", "identity_keys", &id, obj(fields))?;
        let targets = grant_targets(w.conn(), &unit, &id)?;
        write_grants(&mut w, &unit, &id, &secret, &targets)?;
        if targets.is_empty() {
            // Nobody could ever open it: refuse rather than seal identities into a void.
            return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                "reporter",
                "no_identity_holder",
                "Chưa có cán bộ nào của đơn vị giữ được khóa danh tính: một cán bộ hoặc trưởng Công an xã cần đăng nhập trên máy này trước khi ghi danh tính người tố giác.",
            )));
        }
        w.commit()?;
        tracing::info!(key = %id, "identity key created");
        self.ring.opened.borrow_mut().insert(id.clone(), secret);
        Ok(Sealer { key_id: id, public })
    }

    /// Grants every identity key this session holds to the keys of the unit that may hold
    /// it and do not yet (a new officer, a new laptop of the commune, a recovery slot), after
    /// retiring the keys granted to someone who may no longer see identity. Run at sign-in,
    /// after account changes and after every sync. Returns the grants and retirements made.
    pub fn share_identity_keys(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let unit = self.info().unit_code.clone();
        // A key granted to someone who may no longer see identity is retired and replaced
        // (by a session that may: it makes the new key and grants it). What it sealed stays
        // readable to those who hold it; nothing new is sealed to it.
        let exposed = exposed_keys(&self.conn, &unit)?;
        let mut retired = 0;
        if !exposed.is_empty() && self.session.role.allows(Permission::IdentityView) {
            let mut w = self.writer(now)?;
            for id in &exposed {
                let fields = obj(json!({"retired": 1}));
                update_record(&mut w, "identity_key", "identity_keys", id, fields)?;
            }
            w.commit()?;
            tracing::info!(keys = exposed.len(), "identity keys retired");
            retired = exposed.len();
            // The replacement, unless a key nobody lost is still there.
            self.identity_sealer(now)?;
        }
        // Read first: a sign-in or a sync with nothing to grant writes nothing.
        let mut due = Vec::new();
        for (id, _) in unit_keys(&self.conn, &unit, false)? {
            let targets = grant_targets(&self.conn, &unit, &id)?;
            if targets.is_empty() {
                continue;
            }
            if let Some(secret) = self.identity_secret(&id)? {
                due.push((id, secret, targets));
            }
        }
        if due.is_empty() {
            return Ok(retired);
        }
        let mut w = self.writer(now)?;
        let mut n = 0;
        for (id, secret, targets) in &due {
            write_grants(&mut w, &unit, id, secret, targets)?;
            n += targets.len();
        }
        w.commit()?;
        tracing::info!(grants = n, "identity keys shared");
        Ok(n + retired)
    }

    /// Where reporter identity stands for this session (see [`IdentityStatus`]).
    pub fn identity_status(&self) -> Result<IdentityStatus> {
        let unit = self.info().unit_code.clone();
        let keys = unit_keys(&self.conn, &unit, false)?;
        let mut opened = 0;
        for (id, _) in &keys {
            if self.identity_secret(id)?.is_some() {
                opened += 1;
            }
        }
        let sql = format!(
            "SELECT count(*) FROM officer_keys k LEFT JOIN officers o ON o.id = k.officer_id
             WHERE k.unit_code = ?1 AND ({})
               AND (SELECT count(DISTINCT g.key_id) FROM identity_grants g WHERE g.officer_key_id = k.id)
                   < (SELECT count(*) FROM identity_keys i WHERE i.unit_code = k.unit_code)",
            eligible_keys_sql()
        );
        let waiting: i64 = self.conn.query_row(&sql, [&unit], |r| r.get(0))?;
        Ok(IdentityStatus {
            may_see: self.session.role.allows(Permission::IdentityView),
            unit_keys: keys.len() as u32,
            opened_keys: opened,
            waiting_officer_keys: waiting.max(0) as u32,
        })
    }

    /// Publishes the signed-in officer's box key if this laptop's database does not have it
    /// (a new slot, or a slot from before schema 10).
    pub(crate) fn publish_own_key(&mut self, now: DateTime<Utc>) -> Result<()> {
        let Some(secret) = self.ring.own().cloned() else {
            return Ok(());
        };
        let id = key_id(&secret.public_key());
        if officer_key_known(&self.conn, &id)? {
            return Ok(());
        }
        let (unit, station) = (
            self.info().unit_code.clone(),
            self.info().station_id.to_string(),
        );
        let officer = self.session.officer_id.clone();
        let mut w = self.writer(now)?;
        publish_officer_key(&mut w, &unit, &station, Some(&officer), &secret)?;
        w.commit()
    }

    /// Everything a sign-in does for identity keys: publish the officer's key, share what
    /// the session holds, and seal identities still stored in clear (written before schema
    /// 10, or received from a laptop that had not been updated).
    pub(crate) fn identity_at_sign_in(&mut self, now: DateTime<Utc>) -> Result<()> {
        self.publish_own_key(now)?;
        self.share_identity_keys(now)?;
        self.seal_clear_identities(now)?;
        Ok(())
    }

    /// Seals reporter identities of the unit stored in clear. Returns how many. The scan
    /// runs until it has found none left (then `identity.sealed_all` says so), and again
    /// only after a pull brought a value in clear (see `replica.rs`).
    pub fn seal_clear_identities(&mut self, now: DateTime<Utc>) -> Result<usize> {
        if crate::changes::meta_get(&self.conn, SEALED_ALL)?.as_deref() == Some("1") {
            return Ok(0);
        }
        let n = self.seal_clear_scan(now)?;
        if let Some(n) = n {
            crate::changes::meta_set(&self.conn, SEALED_ALL, "1")?;
            return Ok(n);
        }
        Ok(0)
    }

    /// One pass: `None` where identities in clear remain (nobody here may hold a key yet).
    fn seal_clear_scan(&mut self, now: DateTime<Utc>) -> Result<Option<usize>> {
        let unit = self.info().unit_code.clone();
        let clear: Vec<(String, Reporter)> = self
            .conn
            .prepare(
                "SELECT r.tip_id, r.name, r.phone, r.id_number, r.address, r.secret
                 FROM tip_reporters r JOIN tips t ON t.id = r.tip_id
                 WHERE t.unit_code = ?1
                   AND (substr(r.name, 1, 8) <> ?2 OR substr(r.phone, 1, 8) <> ?2
                        OR substr(r.id_number, 1, 8) <> ?2 OR substr(r.address, 1, 8) <> ?2)",
            )?
            .query_map(params![unit, SEALED], |r| {
                Ok((
                    r.get(0)?,
                    Reporter {
                        name: r.get(1)?,
                        phone: r.get(2)?,
                        id_number: r.get(3)?,
                        address: r.get(4)?,
                        secret: r.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if clear.is_empty() {
            return Ok(Some(0));
        }
        let sealer = match self.identity_sealer(now) {
            Ok(s) => s,
            // No one here may hold a key yet: they stay as they are until someone does.
            Err(StoreError::Invalid(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut w = self.writer(now)?;
        for (tip_id, r) in &clear {
            let mut data = serde_json::Map::new();
            let mut seal = |field: &str, v: &Option<String>| -> Result<Option<String>> {
                match v {
                    Some(v) if !is_sealed(v) => {
                        let s = sealer.seal(v)?;
                        data.insert(field.into(), s.clone().into());
                        Ok(Some(s))
                    }
                    other => Ok(other.clone()),
                }
            };
            let name = seal("name", &r.name)?;
            let phone = seal("phone", &r.phone)?;
            let id_number = seal("id_number", &r.id_number)?;
            let address = seal("address", &r.address)?;
            w.conn().execute(
                "UPDATE tip_reporters SET name = ?2, phone = ?3, id_number = ?4, address = ?5 WHERE tip_id = ?1",
                params![tip_id, name, phone, id_number, address],
            )?;
            w.record(
                "tip_reporter",
                tip_id,
                Op::Update,
                serde_json::Value::Object(data),
            )?;
        }
        w.commit()?;
        tracing::info!(count = clear.len(), "reporter identities sealed");
        Ok(Some(clear.len()))
    }

    /// One stored value opened: `Ok(None)` where it cannot be opened on this laptop.
    pub(crate) fn open_identity_value(&self, v: &str) -> Result<Option<String>> {
        let Some(rest) = v.strip_prefix(SEALED) else {
            return Ok(Some(v.to_string()));
        };
        let Some((key, body)) = rest.split_once(':') else {
            return Ok(None);
        };
        let Some(secret) = self.identity_secret(key)? else {
            return Ok(None);
        };
        Ok(b64()
            .decode(body)
            .ok()
            .and_then(|b: Vec<u8>| secret.unseal(b.as_slice()).ok())
            .and_then(|p| String::from_utf8(p).ok()))
    }

    /// A stored reporter opened for someone who may see it; where a field cannot be opened
    /// here, the sealed placeholder (see [`is_locked`]).
    pub(crate) fn open_reporter(&self, stored: Reporter) -> Result<Reporter> {
        let mut locked = false;
        let mut open = |v: Option<String>| -> Result<Option<String>> {
            match v {
                None => Ok(None),
                Some(v) => match self.open_identity_value(&v)? {
                    Some(p) => Ok(Some(p)),
                    None => {
                        locked = true;
                        Ok(None)
                    }
                },
            }
        };
        let reporter = Reporter {
            name: open(stored.name)?,
            phone: open(stored.phone)?,
            id_number: open(stored.id_number)?,
            address: open(stored.address)?,
            secret: stored.secret,
        };
        Ok(if locked {
            Reporter {
                name: Some(LOCKED_NAME.to_string()),
                secret: stored.secret,
                ..Reporter::default()
            }
        } else {
            reporter
        })
    }
}
