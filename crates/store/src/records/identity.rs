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
//!   public half is published in `officer_keys`.
//! - A **grant is an explicit act** of a chief who holds the key ([`Station::grant_identity`]:
//!   the accounts screen's "Trao khóa", a chief creating an account or resetting its
//!   password, a recovery), signed with the key's grant authority (see the domain's
//!   `grant.rs`) and written to the audit trail. A key row that merely shows up (written into
//!   the database by someone holding the database key, or pushed from elsewhere) is never
//!   granted anything: it waits for a chief, who sees it on the accounts screen.
//! - The only grants made without a chief's click carry an earlier chief's decision on: when
//!   a key is replaced (someone lost the right to see identity), or a laptop holds a second
//!   key of the unit, the session passes the keys it holds to the officer keys that hold a
//!   grant it can verify itself (signed by the authority of a key it holds).
//! - The unit's first key is made by a chief (at sign-in); an officer whose laptop has not
//!   been granted a key yet seals to the oldest key of the unit and reads it back once a
//!   chief has granted it.

use base64::Engine;
use chrono::{DateTime, Utc};
use crypto_box::{PublicKey, SecretKey};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use binhyen_domain::access::{Permission, Role};
use binhyen_domain::grant::{GrantAuthority, GrantTerms, PersonalKey};
use binhyen_domain::tip::Reporter;

use crate::audit::Action;
use crate::changes::{Op, Writer};
use crate::keys::BoxSecret;
use crate::roster::{insert_record, insert_record_with_id, obj, update_record};
pub use crate::session::key_id;
pub(crate) use crate::session::Ring;
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

    /// An attachment's content sealed for its trip through the server (see the domain's
    /// `attachment::sealed`).
    pub(crate) fn seal_file(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let sealed = self
            .public
            .seal(&mut rand::rngs::OsRng, plain)
            .map_err(|_| broken("không niêm phong được tệp"))?;
        Ok(binhyen_domain::attachment::sealed::envelope(
            &self.key_id,
            &sealed,
        ))
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
        let signing = personal_key(secret).public_hex();
        let fields = json!({"unit_code": unit, "officer_id": officer_id, "station_id": station_id,
                            "public": hex::encode(public.as_bytes()), "created_at": ts(w.now()),
                            "signing": signing});
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

/// An officer key of the unit, as a grant names it.
#[derive(Debug, Clone)]
struct OfficerKey {
    id: String,
    public: String,
    /// None for a station's recovery slot.
    officer_id: Option<String>,
}

fn officer_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OfficerKey> {
    Ok(OfficerKey {
        id: r.get(0)?,
        public: r.get(1)?,
        officer_id: r.get(2)?,
    })
}

/// The keys of the unit that may hold identity key `key_id` (an active officer whose role
/// may see identity, or a recovery slot) and do not yet.
fn eligible_without(conn: &Connection, unit: &str, key_id: &str) -> Result<Vec<OfficerKey>> {
    let sql = format!(
        "SELECT k.id, k.public, k.officer_id FROM officer_keys k LEFT JOIN officers o ON o.id = k.officer_id
         WHERE k.unit_code = ?1 AND ({})
           AND NOT EXISTS (SELECT 1 FROM identity_grants g WHERE g.officer_key_id = k.id AND g.key_id = ?2)
         ORDER BY k.id",
        eligible_keys_sql()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params![unit, key_id], officer_key_row)?
        .collect::<rusqlite::Result<_>>()?)
}

/// One officer key of the unit, if it may hold the identity key (see [`eligible_without`]).
fn eligible_key(conn: &Connection, unit: &str, id: &str) -> Result<Option<OfficerKey>> {
    let sql = format!(
        "SELECT k.id, k.public, k.officer_id FROM officer_keys k LEFT JOIN officers o ON o.id = k.officer_id
         WHERE k.unit_code = ?1 AND k.id = ?2 AND ({})",
        eligible_keys_sql()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![unit, id], officer_key_row)
        .optional()?)
}

/// A signed grant as stored, with the officer key it is sealed to.
struct StoredGrant {
    target: String,
    public: String,
    officer_id: Option<String>,
    sealed: String,
    granted_by: String,
    granter_key: String,
    created_at: String,
    signature: String,
    granter_signature: String,
}

/// An officer's personal signing key, from their box key.
fn personal_key(box_secret: &BoxSecret) -> PersonalKey {
    PersonalKey::of_box_secret(&zeroize::Zeroizing::new(box_secret.to_bytes()))
}

/// Who makes a grant: the officer, and the box key of theirs that signs it.
struct Granter<'a> {
    officer_id: &'a str,
    box_secret: &'a BoxSecret,
}

/// Seals `secret` (identity key `key_id`) to each of `targets`, each grant signed by the
/// key's authority and by the granter's own key.
fn write_grants(
    w: &mut Writer<'_>,
    unit: &str,
    key_id: &str,
    secret: &SecretKey,
    targets: &[OfficerKey],
    granter: &Granter<'_>,
) -> Result<()> {
    let secret_bytes = zeroize::Zeroizing::new(secret.to_bytes());
    let authority = GrantAuthority::of_identity_secret(&secret_bytes);
    let personal = personal_key(granter.box_secret);
    let granter_key = crate::identity::key_id(&granter.box_secret.public_key());
    let created_at = ts(w.now());
    for target in targets {
        let sealed = b64().encode(
            parse_public(&target.public)?
                .seal(&mut rand::rngs::OsRng, secret_bytes.as_ref())
                .map_err(|_| broken("không niêm phong được"))?,
        );
        let terms = GrantTerms {
            unit_code: unit,
            key_id,
            officer_key_id: &target.id,
            officer_key_public: &target.public,
            officer_id: target.officer_id.as_deref(),
            sealed: &sealed,
            granted_by: granter.officer_id,
            granter_key: &granter_key,
            created_at: &created_at,
        };
        let fields = json!({"unit_code": unit, "key_id": key_id, "officer_key_id": target.id,
                            "sealed": sealed, "created_at": created_at,
                            "granted_by": granter.officer_id, "signature": authority.sign(&terms),
                            "granter_key": granter_key,
                            "granter_signature": personal.sign(&terms)});
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
    /// Attachments that reached this laptop sealed to a key this session does not hold:
    /// they open when an officer who holds it signs in or syncs here.
    pub sealed_files: u32,
    /// This officer pinned the province's anchor and it certifies a key of the unit: new
    /// identities go only to certified keys (see `anchors.rs`).
    pub anchored: bool,
}

/// An officer key that may hold the unit's identity keys, as the accounts screen shows it:
/// whether it holds them, or waits for a chief to grant them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct IdentityHolder {
    pub officer_key_id: String,
    /// None for a station's recovery slot.
    pub officer_id: Option<String>,
    pub full_name: Option<String>,
    pub username: Option<String>,
    /// The laptop (station) the key is on.
    pub station_id: String,
    pub this_laptop: bool,
    pub published_at: String,
    /// The unit's identity keys granted to it, of all the unit's keys.
    pub keys_held: u32,
    pub keys_total: u32,
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

    /// Makes the commune's identity key where it has none yet (the chief's act, from the
    /// accounts screen): officers can then seal the identities they record to it, and read
    /// them once granted. A chief also makes it by recording the first identity or making
    /// an account that may see identity. Returns whether a key was made.
    pub fn ensure_identity_key(&mut self, now: DateTime<Utc>) -> Result<bool> {
        self.require(Permission::IdentityGrant)?;
        if self.has_identity_key()? {
            return Ok(false);
        }
        self.create_identity_key(now)?;
        let id = unit_keys(&self.conn, &self.info().unit_code, true)?
            .first()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        self.audit(Action::IdentityGrant, None, json!({"created_key": id}), now)?;
        Ok(true)
    }

    /// Whether the unit has an identity key new identities can be sealed to.
    pub(crate) fn has_identity_key(&self) -> Result<bool> {
        Ok(!unit_keys(&self.conn, &self.info().unit_code, true)?.is_empty())
    }

    /// What new identities are sealed with, among the unit's keys not retired: one this
    /// session's officer granted itself (the chief who made it); else the oldest this session
    /// can open, so that what an officer records they can read back; where they can open none
    /// (a laptop not granted the commune's key yet, a role that may not see identity), the
    /// oldest of the unit, which a chief will grant them. Only where the unit has no key at
    /// all is one made, by a chief (see [`Station::create_identity_key`]).
    pub(crate) fn identity_sealer(&mut self, now: DateTime<Utc>) -> Result<Sealer> {
        match self.chosen_sealer()? {
            Some(sealer) => Ok(sealer),
            // The unit has keys, but none this officer's pinned anchor certifies (not yet
            // received, or the certificates were removed): only a chief makes a new one.
            None if !self.session.role.allows(Permission::IdentityGrant)
                && self.has_identity_key()?
                && self.anchor()?.is_some() =>
            {
                Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                    "reporter",
                    "identity_key_not_anchored",
                    "Khóa danh tính của xã trên máy này chưa được Công an tỉnh xác nhận, nên chưa thể niêm phong danh tính người tố giác: hãy đồng bộ rồi ghi lại (hoặc ghi nguồn tin không kèm danh tính và bổ sung sau). Nguồn tin chưa được ghi.",
                )))
            }
            None => self.create_identity_key(now),
        }
    }

    /// The key [`Station::identity_sealer`] seals with, among the unit's keys; `None` where
    /// the unit has none.
    fn chosen_sealer(&self) -> Result<Option<Sealer>> {
        let unit = self.info().unit_code.clone();
        let keys = unit_keys(&self.conn, &unit, true)?;
        let sealer = |id: &String, public: &String| -> Result<Option<Sealer>> {
            Ok(Some(Sealer {
                key_id: id.clone(),
                public: parse_public(public)?,
            }))
        };
        // First a key this session's officer granted itself (made, or took over from a key
        // it made): a key planted in the database with a grant to this officer is not one.
        let own: Vec<String> = self.ring.openers.iter().map(|(id, _)| id.clone()).collect();
        for (id, public) in &keys {
            if self.made_by_own_officer(&unit, id, &own)? {
                return sealer(id, public);
            }
        }
        // Then, once this officer pinned the province's anchor, only keys it certifies (a
        // key written into the database by someone else has no certificate, and neither has
        // one whose certificate was removed). Before their first sync, as before.
        let keys = match self.anchored_keys(&unit)? {
            Some(anchored) => keys
                .into_iter()
                .filter(|(id, _)| anchored.contains(id))
                .collect(),
            None => keys,
        };
        for (id, public) in &keys {
            if self.identity_secret(id)?.is_some() {
                return sealer(id, public);
            }
        }
        match keys.first() {
            Some((id, public)) => sealer(id, public),
            None => Ok(None),
        }
    }

    /// Whether this session's officer granted key `id` to themselves (made it, or took it
    /// over from a key they made), as this session checks with its own keys.
    fn made_by_own_officer(&self, unit: &str, id: &str, own: &[String]) -> Result<bool> {
        let Some(secret) = self.identity_secret(id)? else {
            return Ok(false);
        };
        Ok(self
            .own_grants(unit, id, &secret)?
            .iter()
            .any(|target| own.contains(target)))
    }

    /// What attachments are sealed with for their trip through the server: the key
    /// identities are sealed with. Where the unit has no identity key yet, a chief's session
    /// makes it (as recording the first identity would); any other session gets `None`, and
    /// the files wait on this laptop for the chief.
    pub(crate) fn file_sealer(&mut self, now: DateTime<Utc>) -> Result<Option<Sealer>> {
        if let Some(sealer) = self.chosen_sealer()? {
            return Ok(Some(sealer));
        }
        let role = self.session.role;
        if !(role.allows(Permission::IdentityGrant) && role.allows(Permission::IdentityView))
            || self.ring.own().is_none()
        {
            return Ok(None);
        }
        let sealer = self.create_identity_key(now)?;
        self.audit(
            Action::IdentityGrant,
            None,
            json!({"created_key": sealer.key_id, "for": "attachments"}),
            now,
        )?;
        Ok(Some(sealer))
    }

    /// An attachment's content opened from its sealed envelope: `Ok(None)` where this
    /// session holds no key that opens it (or the envelope is not one); `corrupt` where it
    /// holds the key the envelope names and the box does not open with it.
    pub(crate) fn open_file(&self, envelope: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some((key, body)) = binhyen_domain::attachment::sealed::parse(envelope) else {
            return Ok(None);
        };
        let Some(secret) = self.identity_secret(key)? else {
            return Ok(None);
        };
        secret.unseal(body).map(Some).map_err(|_| {
            StoreError::Corrupt("tệp đính kèm niêm phong không mở được bằng khóa của xã".into())
        })
    }

    /// Makes a new identity key of the unit, granted to this session's own key and to every
    /// officer key an earlier chief authorised (see [`Station::authorised_keys`]). Only a
    /// chief makes the unit's first key; a session that holds a key may make its
    /// replacement.
    pub(crate) fn create_identity_key(&mut self, now: DateTime<Utc>) -> Result<Sealer> {
        let unit = self.info().unit_code.clone();
        let authorised = self.authorised_keys(&unit)?;
        let own = self.ring.own().map(|b| key_id(&b.public_key()));
        let may_make = self.session.role.allows(Permission::IdentityView)
            && own.is_some()
            && (self.session.role.allows(Permission::IdentityGrant)
                || own.as_ref().is_some_and(|o| authorised.contains(o)));
        if !may_make {
            return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                "reporter",
                "no_identity_holder",
                "Xã chưa có khóa danh tính: trưởng Công an xã cần tạo khóa (màn hình Tài khoản, «Tạo khóa danh tính»), hoặc máy này cần đồng bộ để nhận khóa của xã, trước khi ghi danh tính người tố giác. Nguồn tin chưa được ghi.",
            )));
        }
        let secret = SecretKey::generate(&mut rand::rngs::OsRng);
        let public = secret.public_key();
        let id = key_id(&public);
        let authority =
            GrantAuthority::of_identity_secret(&zeroize::Zeroizing::new(secret.to_bytes()));
        let granted_by = self.session.officer_id.clone();
        let own_box = self
            .ring
            .own()
            .cloned()
            .ok_or_else(|| broken("phiên chưa có khóa riêng"))?;
        // Endorsed by a key of the unit this session holds (a certified one first), so that
        // the province anchors the new key too (see `anchors.rs`).
        let endorsement = self.endorse_new_key(&unit, &id, &public, &authority)?;
        let mut w = self.writer(now)?;
        let mut fields = json!({"unit_code": unit, "public": hex::encode(public.as_bytes()),
                                "created_at": ts(now), "retired": 0,
                                "authority": authority.public_hex()});
        if let Some((by, signature)) = endorsement {
            fields["endorsed_by"] = json!(by);
            fields["endorsement"] = json!(signature);
        }
        insert_record_with_id(&mut w, "identity_key", "identity_keys", &id, obj(fields))?;
        let targets: Vec<OfficerKey> = eligible_without(w.conn(), &unit, &id)?
            .into_iter()
            .filter(|k| own.as_deref() == Some(k.id.as_str()) || authorised.contains(&k.id))
            .collect();
        let granter = Granter {
            officer_id: &granted_by,
            box_secret: &own_box,
        };
        write_grants(&mut w, &unit, &id, &secret, &targets, &granter)?;
        w.commit()?;
        tracing::info!(key = %id, grants = targets.len(), "identity key created");
        self.ring.opened.borrow_mut().insert(id.clone(), secret);
        Ok(Sealer { key_id: id, public })
    }

    /// The endorsement of a new key of the unit by a key this session holds: a certified
    /// one if it holds one, else the oldest it holds; `None` where it holds none (the unit's
    /// first key).
    fn endorse_new_key(
        &self,
        unit: &str,
        id: &str,
        public: &PublicKey,
        authority: &GrantAuthority,
    ) -> Result<Option<(String, String)>> {
        // Only a key this session trusts endorses: certified, or made by its own officer
        // (a key planted and granted to this officer is neither). Without an anchor, as
        // before: the province anchors only what an anchored key endorsed anyway.
        let anchored = self.anchored_keys(unit)?;
        let own: Vec<String> = self.ring.openers.iter().map(|(id, _)| id.clone()).collect();
        let mut held = Vec::new();
        for (key, _) in unit_keys(&self.conn, unit, false)? {
            if key == id {
                continue;
            }
            let certified = anchored.as_ref().is_some_and(|a| a.contains(&key));
            let trusted =
                certified || anchored.is_none() || self.made_by_own_officer(unit, &key, &own)?;
            if !trusted {
                continue;
            }
            if let Some(secret) = self.identity_secret(&key)? {
                held.push((certified, key, secret));
            }
        }
        held.sort_by_key(|(certified, ..)| !*certified);
        let Some((_, by, secret)) = held.into_iter().next() else {
            return Ok(None);
        };
        let endorser =
            GrantAuthority::of_identity_secret(&zeroize::Zeroizing::new(secret.to_bytes()));
        let terms = binhyen_domain::grant::KeyTerms {
            unit_code: unit,
            key_id: id,
            public: &hex::encode(public.as_bytes()),
            authority: &authority.public_hex(),
        };
        Ok(Some((by, endorser.endorse(&terms))))
    }

    /// The grants of key `key` (which this session holds, as `secret`) that this session's
    /// own officer made: signed by the key's authority and by one of this session's own keys,
    /// both as this session derives them (never as the database says they are). A grant row
    /// that someone else wrote, whatever it claims, is not among them. Returns the officer
    /// keys they were made to.
    fn own_grants(&self, unit: &str, key: &str, secret: &SecretKey) -> Result<Vec<String>> {
        let authority =
            GrantAuthority::of_identity_secret(&zeroize::Zeroizing::new(secret.to_bytes()));
        let mut stmt = self.conn.prepare_cached(
            "SELECT g.officer_key_id, k.public, k.officer_id, g.sealed, g.granted_by, g.granter_key,
                    g.created_at, g.signature, g.granter_signature
             FROM identity_grants g JOIN officer_keys k ON k.id = g.officer_key_id
             WHERE g.key_id = ?1 AND g.unit_code = ?2 AND k.unit_code = ?2
               AND g.signature IS NOT NULL AND g.granted_by IS NOT NULL
               AND g.granter_key IS NOT NULL AND g.granter_signature IS NOT NULL",
        )?;
        let rows: Vec<StoredGrant> = stmt
            .query_map(params![key, unit], |r| {
                Ok(StoredGrant {
                    target: r.get(0)?,
                    public: r.get(1)?,
                    officer_id: r.get(2)?,
                    sealed: r.get(3)?,
                    granted_by: r.get(4)?,
                    granter_key: r.get(5)?,
                    created_at: r.get(6)?,
                    signature: r.get(7)?,
                    granter_signature: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for g in rows {
            let Some((_, opener)) = self
                .ring
                .openers
                .iter()
                .find(|(id, _)| *id == g.granter_key)
            else {
                continue;
            };
            let terms = GrantTerms {
                unit_code: unit,
                key_id: key,
                officer_key_id: &g.target,
                officer_key_public: &g.public,
                officer_id: g.officer_id.as_deref(),
                sealed: &g.sealed,
                granted_by: &g.granted_by,
                granter_key: &g.granter_key,
                created_at: &g.created_at,
            };
            if authority.signed(&terms, &g.signature)
                && personal_key(opener).signed(&terms, &g.granter_signature)
            {
                out.push(g.target);
            }
        }
        Ok(out)
    }

    /// The officer keys of the unit a chief authorised to hold its identity, as far as this
    /// session can tell by itself: those its own officer granted a key it holds (see
    /// [`Station::own_grants`]), and its own keys that open one. A grant someone else wrote
    /// authorises nothing here, however it is signed.
    fn authorised_keys(&self, unit: &str) -> Result<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        for (key, _) in unit_keys(&self.conn, unit, false)? {
            if let Some(secret) = self.identity_secret(&key)? {
                out.extend(self.own_grants(unit, &key, &secret)?);
            }
        }
        // This session's own keys, where a grant to them opened (whoever signed it).
        let opened = self.ring.opened.borrow();
        for (officer_key_id, _) in &self.ring.openers {
            let granted: Vec<String> = self
                .conn
                .prepare_cached("SELECT key_id FROM identity_grants WHERE officer_key_id = ?1")?
                .query_map([officer_key_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if granted.iter().any(|k| opened.contains_key(k)) {
                out.insert(officer_key_id.clone());
            }
        }
        Ok(out)
    }

    /// Grants every identity key of the unit this session holds to officer key
    /// `officer_key_id` (an officer's key on some laptop of the unit, or a station's recovery
    /// slot): the chief's explicit act, signed and written to the audit trail. Returns the
    /// grants made (0 where it held them all already).
    pub fn grant_identity(&mut self, officer_key_id: &str, now: DateTime<Utc>) -> Result<usize> {
        self.require(Permission::IdentityGrant)?;
        let unit = self.info().unit_code.clone();
        let target = eligible_key(&self.conn, &unit, officer_key_id)?.ok_or_else(|| {
            StoreError::Invalid(binhyen_domain::Invalid::one(
                "officer_key",
                "not_eligible",
                "Không thể trao khóa danh tính cho khóa này: khóa không thuộc đơn vị, hoặc tài khoản đã bị khóa, hoặc vai trò của tài khoản không được xem danh tính.",
            ))
        })?;
        let mut due = Vec::new();
        let mut held = 0;
        for (id, _) in unit_keys(&self.conn, &unit, false)? {
            let Some(secret) = self.identity_secret(&id)? else {
                continue;
            };
            held += 1;
            if eligible_without(&self.conn, &unit, &id)?
                .iter()
                .any(|k| k.id == target.id)
            {
                due.push((id, secret));
            }
        }
        if held == 0 {
            return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                "officer_key",
                "no_key_held",
                "Tài khoản của đồng chí chưa giữ khóa danh tính của xã trên máy này nên chưa trao được; hãy trao từ máy đã giữ khóa.",
            )));
        }
        if due.is_empty() {
            return Ok(0);
        }
        let granted_by = self.session.officer_id.clone();
        let own_box = self
            .ring
            .own()
            .cloned()
            .ok_or_else(|| broken("phiên chưa có khóa riêng"))?;
        let granter = Granter {
            officer_id: &granted_by,
            box_secret: &own_box,
        };
        let mut w = self.writer(now)?;
        for (id, secret) in &due {
            write_grants(
                &mut w,
                &unit,
                id,
                secret,
                std::slice::from_ref(&target),
                &granter,
            )?;
        }
        w.audit(
            Action::IdentityGrant,
            Some(target.officer_id.as_deref().unwrap_or(&target.id)),
            json!({"officer_key": target.id, "recovery": target.officer_id.is_none(),
                   "keys": due.len()}),
        )?;
        w.commit()?;
        tracing::info!(grants = due.len(), "identity key granted");
        Ok(due.len())
    }

    /// Carries earlier grants on, run at sign-in, after account changes and after every
    /// sync: retires the keys granted to someone who may no longer see identity (and makes
    /// their replacement), records the grant authority of keys from before signed grants,
    /// and passes every key this session holds to the officer keys a chief authorised (see
    /// [`Station::authorised_keys`]). Never grants a key nobody authorised. Returns the
    /// grants and retirements made.
    pub fn share_identity_keys(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let unit = self.info().unit_code.clone();
        // A key granted to someone who may no longer see identity is retired and replaced
        // (by a session that holds a key: it makes the new key and grants it). What it
        // sealed stays readable to those who hold it; nothing new is sealed to it.
        let exposed = exposed_keys(&self.conn, &unit)?;
        let mut retired = 0;
        let holds_one = unit_keys(&self.conn, &unit, false)?
            .iter()
            .map(|(id, _)| self.identity_secret(id))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .any(Option::is_some);
        if !exposed.is_empty() && holds_one {
            let mut w = self.writer(now)?;
            for id in &exposed {
                let fields = obj(json!({"retired": 1}));
                update_record(&mut w, "identity_key", "identity_keys", id, fields)?;
            }
            w.commit()?;
            tracing::info!(keys = exposed.len(), "identity keys retired");
            retired = exposed.len();
            // The replacement, unless a key this session holds is still in use.
            let mut in_use = false;
            for (id, _) in unit_keys(&self.conn, &unit, true)? {
                in_use |= self.identity_secret(&id)?.is_some();
            }
            if !in_use {
                self.create_identity_key(now)?;
            }
        }
        self.record_authorities(&unit, now)?;
        // Read first: a sign-in or a sync with nothing to grant writes nothing.
        let authorised = self.authorised_keys(&unit)?;
        let mut due = Vec::new();
        for (id, _) in unit_keys(&self.conn, &unit, false)? {
            let targets: Vec<OfficerKey> = eligible_without(&self.conn, &unit, &id)?
                .into_iter()
                .filter(|k| authorised.contains(&k.id))
                .collect();
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
        let granted_by = self.session.officer_id.clone();
        let Some(own_box) = self.ring.own().cloned() else {
            return Ok(retired);
        };
        let granter = Granter {
            officer_id: &granted_by,
            box_secret: &own_box,
        };
        let mut w = self.writer(now)?;
        let mut n = 0;
        for (id, secret, targets) in &due {
            write_grants(&mut w, &unit, id, secret, targets, &granter)?;
            n += targets.len();
        }
        w.commit()?;
        tracing::info!(grants = n, "identity keys shared");
        Ok(n + retired)
    }

    /// Gives the keys this session holds that were made before signed grants their grant
    /// authority (derived here from the secret), so that their grants can be checked.
    fn record_authorities(&mut self, unit: &str, now: DateTime<Utc>) -> Result<()> {
        let missing: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM identity_keys WHERE unit_code = ?1 AND authority IS NULL ORDER BY id",
            )?
            .query_map([unit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut found = Vec::new();
        for id in missing {
            if let Some(secret) = self.identity_secret(&id)? {
                let authority =
                    GrantAuthority::of_identity_secret(&zeroize::Zeroizing::new(secret.to_bytes()));
                found.push((id, authority.public_hex()));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let mut w = self.writer(now)?;
        for (id, authority) in &found {
            let fields = obj(json!({ "authority": authority }));
            update_record(&mut w, "identity_key", "identity_keys", id, fields)?;
        }
        w.commit()
    }

    /// Who holds the unit's identity keys and who waits for a chief to grant them, for the
    /// accounts screen: every officer key of the unit that may hold them (an active officer
    /// whose role may see identity, on any laptop; a station's recovery slot).
    pub fn identity_holders(&self) -> Result<Vec<IdentityHolder>> {
        self.require(Permission::AccountsManage)?;
        let unit = self.info().unit_code.clone();
        let total = unit_keys(&self.conn, &unit, false)?.len() as u32;
        let sql = format!(
            "SELECT k.id, k.officer_id, o.full_name, o.username, k.station_id, k.created_at,
                    (SELECT count(DISTINCT g.key_id) FROM identity_grants g
                       JOIN identity_keys i ON i.id = g.key_id AND i.unit_code = k.unit_code
                     WHERE g.officer_key_id = k.id)
             FROM officer_keys k LEFT JOIN officers o ON o.id = k.officer_id
             WHERE k.unit_code = ?1 AND ({})
             ORDER BY o.full_name IS NULL, o.full_name, k.created_at",
            eligible_keys_sql()
        );
        let this_station = self.info().station_id.to_string();
        let rows = self
            .conn
            .prepare(&sql)?
            .query_map([&unit], |r| {
                let station_id: String = r.get(4)?;
                let held: i64 = r.get(6)?;
                Ok(IdentityHolder {
                    officer_key_id: r.get(0)?,
                    officer_id: r.get(1)?,
                    full_name: r.get(2)?,
                    username: r.get(3)?,
                    this_laptop: station_id == this_station,
                    station_id,
                    published_at: r.get(5)?,
                    keys_held: held.max(0) as u32,
                    keys_total: total,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Grants every key this session holds to every officer key of the unit that waits for
    /// one: the demo station's set-up, acting as its chief.
    pub(crate) fn grant_all_waiting(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let mut n = 0;
        for h in self.identity_holders()? {
            if h.keys_held < h.keys_total {
                n += self.grant_identity(&h.officer_key_id, now)?;
            }
        }
        Ok(n)
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
            sealed_files: self.files_waiting_for_key()? as u32,
            anchored: self
                .anchored_keys(&unit)?
                .is_some_and(|keys| !keys.is_empty()),
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
        self.open_waiting_files()?;
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
