//! Key handling, all of it. The database is encrypted with a random 256-bit key; that key is
//! stored only wrapped (XChaCha20-Poly1305) under keys derived (Argon2id) from each
//! officer's password, one slot per officer, in `keys.json` beside the database. Adding an
//! officer or changing a password rewraps the key and never re-encrypts the database.
//!
//! A slot also counts failed sign-ins: after [`FREE_ATTEMPTS`] in a row it refuses every
//! attempt for a while, doubling each time (30 s, 1 min, … up to 15 min). The counter lives
//! in this file because the database is still locked when a password is wrong; someone who
//! can edit the file could reset it, but could equally copy it and guess offline, which
//! Argon2id's cost is there to slow.
//!
//! The **recovery slot** wraps the same key under a random code that only the provincial
//! server keeps (sent once over the pinned connection, never stored on the laptop): when
//! every password of a station is forgotten, the province reads the code out and the
//! station sets a new chief's password with it (`binhyen recover`).
//!
//! Each slot also holds the officer's **box key** (X25519), its secret half wrapped under the
//! same password-derived key: the commune's reporter-identity keys are sealed to it (see
//! `identity.rs`), so only officers whose role may see identity can open them, and the
//! database key alone (an administrator's) cannot. The recovery slot has one too, so that a
//! station whose every password is forgotten does not lose its reporters' identities.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, RngCore};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{Result, StoreError};

/// The password of the demo station's accounts. Demo data only.
pub const DEMO_PASSPHRASE: &str = "binhyen-demo";

/// Failed sign-ins allowed in a row before the account is held back.
pub const FREE_ATTEMPTS: u32 = 5;

/// The label of the slot opened by the recovery code.
const RECOVERY: &str = "#recovery";
/// The label of a version-1 key file's single slot (the station passphrase, before accounts).
const LEGACY: &str = "station";

const AAD: &[u8] = b"binhyen db key v1";

/// What a slot's wrapped database key is bound to: its username and officer, so that a slot
/// whose officer id is edited in `keys.json` (to sign in as someone else with one's own
/// password) no longer opens. Slots from before this binding use [`AAD`] until their next
/// sign-in makes them again.
fn slot_aad(label: &str, officer_id: Option<&str>, bound: bool) -> Vec<u8> {
    if bound {
        format!("binhyen db key v2|{label}|{}", officer_id.unwrap_or("")).into_bytes()
    } else {
        AAD.to_vec()
    }
}
const BOX_AAD: &[u8] = b"binhyen officer box key v1";

/// What the box key's wrapping is bound to: with the province's anchor key pinned in the
/// slot (see [`KeyFile::bind_anchor`]), the anchor too, so that a slot whose anchor was
/// changed or removed opens no box key.
fn box_aad(anchor: Option<&str>) -> Vec<u8> {
    match anchor {
        None => BOX_AAD.to_vec(),
        Some(a) => [BOX_AAD, b" anchor:", a.as_bytes()].concat(),
    }
}

/// The database key. Zeroed when dropped.
#[derive(Clone)]
pub struct DbKey(Zeroizing<[u8; 32]>);

impl DbKey {
    pub(crate) fn random() -> DbKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        DbKey(k)
    }

    /// Unlocks a connection to an SQLCipher database with this key. The raw-key form skips
    /// SQLCipher's own PBKDF2: the key is already the output of Argon2id.
    pub fn apply(&self, conn: &Connection) -> Result<()> {
        let mut hex = Zeroizing::new(hex::encode(self.0.as_ref()));
        let pragma = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex.as_str()));
        hex.zeroize();
        conn.execute_batch(&pragma)?;
        Ok(())
    }
}

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(…)")
    }
}

/// Argon2id cost of a slot, stored with it (a slot keeps the cost it was made with until
/// its next opening, which makes it again at [`KDF_M_KIB`] and [`KDF_T`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KdfParams {
    alg: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot {
    /// The officer's username, [`RECOVERY`], or [`LEGACY`].
    label: String,
    /// The officer's record (`officers.id`); the database says what role the officer has
    /// and whether the account is still active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    officer_id: Option<String>,
    kdf: KdfParams,
    nonce: String,
    wrapped: String,
    /// The password is the public demo one.
    #[serde(default, skip_serializing_if = "is_false")]
    demo: bool,
    /// The password was set by someone else (a new account, a reset): it must be changed
    /// at the next sign-in.
    #[serde(default, skip_serializing_if = "is_false")]
    must_change: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locked_until: Option<DateTime<Utc>>,
    /// The officer's box key: public half, and the secret half wrapped like the database
    /// key. Absent in slots written before schema 10 (made at the next sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    box_key: Option<BoxSlot>,
    /// The wrapped key is bound to the label and officer id (see [`slot_aad`]).
    #[serde(default, skip_serializing_if = "is_false")]
    bound: bool,
    /// The province's anchor key (hex) this officer pinned: the box key's wrapping is bound
    /// to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BoxSlot {
    public: String,
    nonce: String,
    wrapped: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The contents of `keys.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    version: u32,
    /// Version 1 only: the single passphrase was the public demo one.
    #[serde(default, skip_serializing_if = "is_false")]
    demo_passphrase: bool,
    slots: Vec<Slot>,
}

/// What opening a slot tells the caller besides the key.
#[derive(Debug, Clone)]
pub struct Opened {
    pub key: DbKey,
    /// None for a version-1 key file (the station passphrase): the caller makes the first
    /// account from it.
    pub officer_id: Option<String>,
    pub must_change: bool,
    /// Failed attempts since the last sign-in (the audit trail records them).
    pub failures_before: u32,
    /// The officer's box key on this laptop (none for a version-1 key file).
    pub box_secret: Option<BoxSecret>,
    /// The box key was made at this sign-in (the slot predates box keys): the caller
    /// writes the file and publishes the public half.
    pub box_created: bool,
    /// The slot was made again at the current Argon2id cost: the caller writes the file.
    pub rewrapped: bool,
    /// The province's anchor key pinned in the officer's slot, if any.
    pub anchor: Option<String>,
}

/// An officer's X25519 box key (identity keys are sealed to its public half).
pub type BoxSecret = crypto_box::SecretKey;

/// A new random box key.
pub fn new_box_secret() -> BoxSecret {
    crypto_box::SecretKey::generate(&mut rand::rngs::OsRng)
}

fn seal_box(kek: &[u8; 32], secret: &BoxSecret, anchor: Option<&str>) -> Result<BoxSlot> {
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let bytes = Zeroizing::new(secret.to_bytes());
    let wrapped = XChaCha20Poly1305::new(kek.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: bytes.as_ref(),
                aad: &box_aad(anchor),
            },
        )
        .map_err(|e| key_error(e.to_string()))?;
    Ok(BoxSlot {
        public: hex::encode(secret.public_key().as_bytes()),
        nonce: hex::encode(nonce),
        wrapped: hex::encode(wrapped),
    })
}

fn open_box(kek: &[u8; 32], slot: &BoxSlot, anchor: Option<&str>) -> Option<BoxSecret> {
    let nonce = hex::decode(&slot.nonce).ok().filter(|n| n.len() == 24)?;
    let wrapped = hex::decode(&slot.wrapped).ok()?;
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(kek.into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &wrapped,
                    aad: &box_aad(anchor),
                },
            )
            .ok()?,
    );
    let bytes: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some(crypto_box::SecretKey::from(bytes))
}

fn derive(passphrase: &str, kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>, String> {
    // A key file is read from disk (or from a backup on a USB stick): a cost no slot of this
    // program has would only make the laptop run out of memory or hang.
    if kdf.m_kib > 1024 * 1024 || kdf.t > 16 || kdf.p > 8 || kdf.alg != "argon2id" {
        return Err("tham số dẫn xuất khóa bất thường; tệp khóa đã bị sửa".into());
    }
    let salt = hex::decode(&kdf.salt).map_err(|e| e.to_string())?;
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).map_err(|e| e.to_string())?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, out.as_mut())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Argon2id memory (KiB) and passes for new slots: 64 MiB and 3 passes (RFC 9106's second
/// recommendation, one lane). About 0.2 s on this project's 2-core build machine, so well
/// under a second for one sign-in on a cheap laptop three times slower; each guess at a
/// stolen `keys.json` costs an attacker as much (the OWASP minimum used before, 19 MiB and 2
/// passes, cost a sixth of it). Figures: README, "Signing in".
pub const KDF_M_KIB: u32 = 64 * 1024;
pub const KDF_T: u32 = 3;

fn new_kdf() -> KdfParams {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    KdfParams {
        alg: "argon2id".into(),
        m_kib: KDF_M_KIB,
        t: KDF_T,
        p: 1,
        salt: hex::encode(salt),
    }
}

impl KdfParams {
    /// Cheaper than what new slots get.
    fn below_current(&self) -> bool {
        self.m_kib < KDF_M_KIB || self.t < KDF_T
    }
}

fn wrap(
    key: &DbKey,
    label: &str,
    officer_id: Option<&str>,
    passphrase: &str,
    box_secret: &BoxSecret,
    anchor: Option<&str>,
) -> Result<Slot> {
    let kdf = new_kdf();
    let kek = derive(passphrase, &kdf).map_err(key_error)?;
    let box_key = seal_box(&kek, box_secret, anchor)?;
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let wrapped = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: key.0.as_ref(),
                aad: &slot_aad(label, officer_id, true),
            },
        )
        .map_err(|e| key_error(e.to_string()))?;
    Ok(Slot {
        label: label.into(),
        officer_id: officer_id.map(str::to_string),
        kdf,
        nonce: hex::encode(nonce),
        wrapped: hex::encode(wrapped),
        demo: passphrase == DEMO_PASSPHRASE,
        must_change: false,
        failures: 0,
        locked_until: None,
        box_key: Some(box_key),
        bound: true,
        anchor: anchor.map(str::to_string),
    })
}

fn key_error(reason: String) -> StoreError {
    StoreError::KeyFile {
        path: "keys.json".into(),
        reason,
    }
}

/// The database key and the password-derived key, if `passphrase` opens the slot.
fn unwrap_slot(slot: &Slot, passphrase: &str) -> Option<(DbKey, Zeroizing<[u8; 32]>)> {
    let kek = derive(passphrase, &slot.kdf).ok()?;
    let nonce = hex::decode(&slot.nonce).ok()?;
    let wrapped = hex::decode(&slot.wrapped).ok()?;
    if nonce.len() != 24 {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &wrapped,
                    aad: &slot_aad(&slot.label, slot.officer_id.as_deref(), slot.bound),
                },
            )
            .ok()?,
    );
    if plain.len() != 32 {
        return None;
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&plain);
    Some((DbKey(k), kek))
}

/// How long an account is held back after `failures` failed attempts in a row.
pub fn hold_back(failures: u32) -> Option<Duration> {
    if failures < FREE_ATTEMPTS {
        return None;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(5);
    Some(Duration::seconds(30 << doublings))
}

/// Passwords everyone tries first (compared without diacritics, spaces or case), among them
/// the ones a commune station would think of.
const COMMON_PASSWORDS: &[&str] = &[
    "12345678",
    "123456789",
    "1234567890",
    "87654321",
    "11111111",
    "00000000",
    "88888888",
    "66666666",
    "password",
    "password1",
    "passw0rd",
    "matkhau",
    "matkhau1",
    "matkhau123",
    "matkhaumoi",
    "congan",
    "congan123",
    "conganxa",
    "conganxa123",
    "congantinh",
    "admin123",
    "administrator",
    "quantri",
    "quantri123",
    "abc12345",
    "abcd1234",
    "qwerty123",
    "qwertyuiop",
    "asdfghjkl",
    "iloveyou",
    "vietnam",
    "vietnam123",
    "binhyen",
    "binhyen123",
    "truongcongan",
    "123123123",
    "147258369",
    "0123456789",
    "zxcvbnm123",
];

/// Checks a password's strength (the same rule for every account). It fits Vietnamese
/// passphrases ("trời mưa to quá 2026" is long and easy to remember; a letter with its
/// diacritic counts as one character): at least 8 characters of which at least 5 differ,
/// not the username however written, and not a password everyone tries first.
pub fn check_password(username: &str, password: &str) -> Result<()> {
    let refuse = |code: &'static str, message: &str| {
        Err(StoreError::Invalid(binhyen_domain::Invalid::one(
            "password", code, message,
        )))
    };
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < 8 {
        return refuse("too_short", "Mật khẩu phải có ít nhất 8 ký tự.");
    }
    // Folded: no diacritics, no spaces or punctuation, lower case.
    let folded: String = binhyen_domain::text::fold(password)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let user: String = binhyen_domain::text::fold(username)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    if folded == user {
        return refuse(
            "same_as_username",
            "Mật khẩu không được trùng tên đăng nhập.",
        );
    }
    let distinct: std::collections::HashSet<&char> = chars.iter().collect();
    if distinct.len() < 5 || COMMON_PASSWORDS.contains(&folded.as_str()) {
        return refuse(
            "too_common",
            "Mật khẩu này quá dễ đoán. Hãy dùng một câu ngắn dễ nhớ, ví dụ \"trời mưa to quá 2026\".",
        );
    }
    Ok(())
}

/// A new recovery code: 25 characters of Crockford base32 (125 bits) in groups of five.
pub fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::rngs::OsRng;
    (0..5)
        .map(|_| {
            (0..5)
                .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A recovery code as typed (lower case, spaces, O for 0…) in its canonical form.
fn canonical_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

impl KeyFile {
    /// A new random database key, wrapped for the first officer's password.
    #[cfg(test)]
    fn create(username: &str, officer_id: &str, password: &str) -> Result<(KeyFile, DbKey)> {
        let key = DbKey::random();
        let mut file = KeyFile::empty();
        file.set_password(
            &key,
            username,
            officer_id,
            password,
            false,
            &new_box_secret(),
        )?;
        Ok((file, key))
    }

    /// A key file with no slot yet (a new station, before its first account).
    pub(crate) fn empty() -> KeyFile {
        KeyFile {
            version: 2,
            demo_passphrase: false,
            slots: Vec::new(),
        }
    }

    /// A version-1 file: one passphrase for the whole station, no accounts yet.
    pub fn is_legacy(&self) -> bool {
        self.slots.iter().any(|s| s.label == LEGACY)
    }

    /// Whether the demo password opens the slot of `username` (the demo station).
    pub fn has_demo_account(&self, username: &str) -> bool {
        self.demo_passphrase || self.slot(username).is_some_and(|s| s.demo)
    }

    /// The usernames whose password is the public demo one.
    pub fn demo_usernames(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.demo && s.officer_id.is_some())
            .map(|s| s.label.clone())
            .collect()
    }

    fn slot(&self, username: &str) -> Option<&Slot> {
        let username = username.trim().to_lowercase();
        self.slots.iter().find(|s| s.label == username)
    }

    /// The usernames with a password on this laptop.
    pub fn usernames(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.officer_id.is_some())
            .map(|s| s.label.clone())
            .collect()
    }

    /// The officer ids with a password on this laptop.
    pub fn officer_ids(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter_map(|s| s.officer_id.clone())
            .collect()
    }

    /// Opens the slot of `username` with `password`, counting a failure (the caller writes
    /// the file back whether it succeeded or not). An account held back after repeated
    /// failures is refused without trying the password.
    pub fn unlock(&mut self, username: &str, password: &str, now: DateTime<Utc>) -> Result<Opened> {
        let username = username.trim().to_lowercase();
        if self.is_legacy() {
            let slot = self.slots.iter().find(|s| s.label == LEGACY).cloned();
            return match slot.and_then(|s| unwrap_slot(&s, password)) {
                Some((key, _)) => Ok(Opened {
                    key,
                    officer_id: None,
                    must_change: false,
                    failures_before: 0,
                    box_secret: None,
                    box_created: false,
                    rewrapped: false,
                    anchor: None,
                }),
                None => Err(StoreError::WrongCredentials),
            };
        }
        let Some(i) = self.slots.iter().position(|s| s.label == username) else {
            // The same work as a real attempt, so that timing does not tell which
            // usernames exist.
            let _ = derive(password, &new_kdf());
            return Err(StoreError::WrongCredentials);
        };
        if let Some(until) = self.slots[i].locked_until.filter(|u| *u > now) {
            return Err(StoreError::LockedOut {
                seconds: (until - now).num_seconds().max(1) as u64,
            });
        }
        match unwrap_slot(&self.slots[i], password) {
            Some((key, kek)) => {
                let slot = &mut self.slots[i];
                let failures_before = slot.failures;
                slot.failures = 0;
                slot.locked_until = None;
                let anchor = slot.anchor.clone();
                let (box_secret, box_created) = match slot.box_key.as_ref() {
                    Some(b) => (
                        Some(open_box(&kek, b, anchor.as_deref()).ok_or_else(|| {
                            key_error(format!("khoá hộp của \"{username}\" hỏng"))
                        })?),
                        false,
                    ),
                    None => {
                        let secret = new_box_secret();
                        slot.box_key = Some(seal_box(&kek, &secret, anchor.as_deref())?);
                        (Some(secret), true)
                    }
                };
                // A slot made at an older, cheaper cost is made again at the current one,
                // now that the password is at hand.
                let rewrapped = (slot.kdf.below_current() || !slot.bound) && box_secret.is_some();
                if rewrapped {
                    if let Some(secret) = &box_secret {
                        let mut again = wrap(
                            &key,
                            &slot.label,
                            slot.officer_id.as_deref(),
                            password,
                            secret,
                            anchor.as_deref(),
                        )?;
                        again.officer_id = slot.officer_id.clone();
                        again.must_change = slot.must_change;
                        again.demo = slot.demo;
                        *slot = again;
                    }
                }
                Ok(Opened {
                    key,
                    officer_id: slot.officer_id.clone(),
                    must_change: slot.must_change,
                    failures_before,
                    box_secret,
                    box_created,
                    rewrapped,
                    anchor,
                })
            }
            None => {
                let slot = &mut self.slots[i];
                slot.failures += 1;
                slot.locked_until = hold_back(slot.failures).map(|d| now + d);
                match slot.locked_until {
                    Some(until) => Err(StoreError::LockedOut {
                        seconds: (until - now).num_seconds().max(1) as u64,
                    }),
                    None => Err(StoreError::WrongCredentials),
                }
            }
        }
    }

    /// Sets (or replaces) the password of `username`'s slot, with `box_secret` as the
    /// officer's box key (the one they had for a change of their own password, a new one
    /// otherwise). `must_change`: someone else chose it, so the officer must change it at
    /// the next sign-in.
    pub fn set_password(
        &mut self,
        key: &DbKey,
        username: &str,
        officer_id: &str,
        password: &str,
        must_change: bool,
        box_secret: &BoxSecret,
    ) -> Result<()> {
        let username = username.trim().to_lowercase();
        check_password(&username, password)?;
        // The officer's own change keeps the anchor they pinned; a password someone else
        // set starts without one (that person could have chosen it).
        let anchor = if must_change {
            None
        } else {
            self.slots
                .iter()
                .find(|s| s.officer_id.as_deref() == Some(officer_id))
                .and_then(|s| s.anchor.clone())
        };
        let mut slot = wrap(
            key,
            &username,
            Some(officer_id),
            password,
            box_secret,
            anchor.as_deref(),
        )?;
        slot.officer_id = Some(officer_id.to_string());
        slot.must_change = must_change;
        self.slots
            .retain(|s| s.label != username && s.officer_id.as_deref() != Some(officer_id));
        self.slots.retain(|s| s.label != LEGACY);
        self.slots.push(slot);
        self.version = 2;
        self.demo_passphrase = false;
        Ok(())
    }

    /// Removes the password of an officer (disabled, or the account is gone): that password
    /// no longer opens anything on this laptop.
    pub fn remove_officer(&mut self, officer_id: &str) -> bool {
        let before = self.slots.len();
        self.slots
            .retain(|s| s.officer_id.as_deref() != Some(officer_id));
        before != self.slots.len()
    }

    /// Wraps the key and `box_secret` under a recovery code (replacing any earlier one).
    pub fn set_recovery(&mut self, key: &DbKey, code: &str, box_secret: &BoxSecret) -> Result<()> {
        let slot = wrap(key, RECOVERY, None, &canonical_code(code), box_secret, None)?;
        self.slots.retain(|s| s.label != RECOVERY);
        self.slots.push(slot);
        Ok(())
    }

    /// Pins the province's anchor key in `username`'s slot: the box key is wrapped again,
    /// bound to it, so that the slot opens no box key once the anchor is changed or removed.
    /// Needs the password (the caller has just signed in with it). Returns whether the slot
    /// changed (the caller writes the file).
    pub fn bind_anchor(&mut self, username: &str, password: &str, anchor: &str) -> Result<bool> {
        let username = username.trim().to_lowercase();
        let Some(slot) = self.slots.iter_mut().find(|s| s.label == username) else {
            return Ok(false);
        };
        if slot.anchor.as_deref() == Some(anchor) {
            return Ok(false);
        }
        if slot.anchor.is_some() {
            return Err(key_error(
                "khóa neo của tỉnh trong tệp khóa khác với khóa đã ghi nhận".into(),
            ));
        }
        let Some(b) = slot.box_key.clone() else {
            return Ok(false);
        };
        let kek = derive(password, &slot.kdf).map_err(key_error)?;
        let secret = open_box(&kek, &b, None).ok_or(StoreError::WrongCredentials)?;
        let mut bound = seal_box(&kek, &secret, Some(anchor))?;
        bound.public = b.public;
        slot.box_key = Some(bound);
        slot.anchor = Some(anchor.to_string());
        Ok(true)
    }

    pub fn has_recovery(&self) -> bool {
        self.slots.iter().any(|s| s.label == RECOVERY)
    }

    /// The database key and the recovery box key, if `code` is this station's recovery
    /// code.
    pub fn unlock_recovery(&self, code: &str) -> Result<(DbKey, Option<BoxSecret>)> {
        let code = canonical_code(code);
        let slot = self
            .slots
            .iter()
            .find(|s| s.label == RECOVERY)
            .ok_or(StoreError::WrongRecoveryCode)?;
        let (key, kek) = unwrap_slot(slot, &code).ok_or(StoreError::WrongRecoveryCode)?;
        let box_secret = slot
            .box_key
            .as_ref()
            .and_then(|b| open_box(&kek, b, slot.anchor.as_deref()));
        Ok((key, box_secret))
    }

    pub fn read(path: &Path) -> Result<KeyFile> {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| StoreError::KeyFile {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Writes atomically: a temporary file, synced, then renamed over the old one, so a
    /// crash never leaves a half-written key file (which would lock the station out).
    pub fn write(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        let mut f =
            crate::private_files::create_private(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-28T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn wrong_password_is_refused_right_one_opens() {
        let (mut file, key) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        assert!(matches!(
            file.unlock("lan", "sai rồi", now()),
            Err(StoreError::WrongCredentials)
        ));
        assert!(matches!(
            file.unlock("khong-co", "mật khẩu đúng", now()),
            Err(StoreError::WrongCredentials)
        ));
        let opened = file.unlock("Lan", "mật khẩu đúng", now()).unwrap();
        assert_eq!(opened.key.0.as_ref(), key.0.as_ref());
        assert_eq!(opened.officer_id.as_deref(), Some("o1"));
        assert_eq!(opened.failures_before, 1);
    }

    #[test]
    fn each_officer_has_a_slot_and_a_password_change_keeps_the_key() {
        let (mut file, key) = KeyFile::create("lan", "o1", "mật khẩu của Lan").unwrap();
        file.set_password(&key, "binh", "o2", "tạm thời 123", true, &new_box_secret())
            .unwrap();
        let b = file.unlock("binh", "tạm thời 123", now()).unwrap();
        assert!(b.must_change);
        assert_eq!(b.key.0.as_ref(), key.0.as_ref());
        let binh_box = b.box_secret.clone().unwrap();
        file.set_password(&key, "binh", "o2", "mật khẩu riêng", false, &binh_box)
            .unwrap();
        assert!(file.unlock("binh", "tạm thời 123", now()).is_err());
        let b = file.unlock("binh", "mật khẩu riêng", now()).unwrap();
        assert!(!b.must_change && !b.box_created);
        // The box key survives the password change: what was sealed to it still opens.
        assert_eq!(b.box_secret.unwrap().to_bytes(), binh_box.to_bytes());
        assert!(file.unlock("lan", "mật khẩu của Lan", now()).is_ok());
        assert!(file.remove_officer("o2"));
        assert!(file.unlock("binh", "mật khẩu riêng", now()).is_err());
    }

    #[test]
    fn repeated_failures_hold_the_account_back_then_let_it_try_again() {
        let (mut file, _) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        for _ in 0..FREE_ATTEMPTS - 1 {
            assert!(matches!(
                file.unlock("lan", "sai", now()),
                Err(StoreError::WrongCredentials)
            ));
        }
        assert!(matches!(
            file.unlock("lan", "sai", now()),
            Err(StoreError::LockedOut { seconds: 30 })
        ));
        // Even the right password waits.
        assert!(matches!(
            file.unlock("lan", "mật khẩu đúng", now() + Duration::seconds(10)),
            Err(StoreError::LockedOut { seconds: 20 })
        ));
        // Another failure after the wait doubles it.
        assert!(matches!(
            file.unlock("lan", "sai", now() + Duration::seconds(31)),
            Err(StoreError::LockedOut { seconds: 60 })
        ));
        let later = now() + Duration::seconds(31 + 61);
        let opened = file.unlock("lan", "mật khẩu đúng", later).unwrap();
        assert_eq!(opened.failures_before, FREE_ATTEMPTS + 1);
        assert!(matches!(
            file.unlock("lan", "sai", later),
            Err(StoreError::WrongCredentials)
        ));
    }

    #[test]
    fn recovery_code_opens_the_key_however_it_is_typed() {
        let (mut file, key) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        let code = new_recovery_code();
        assert_eq!(code.len(), 29);
        let recovery_box = new_box_secret();
        file.set_recovery(&key, &code, &recovery_box).unwrap();
        let typed = code.to_lowercase().replace('-', " ");
        let (opened, opened_box) = file.unlock_recovery(&typed).unwrap();
        assert_eq!(opened.0.as_ref(), key.0.as_ref());
        assert_eq!(opened_box.unwrap().to_bytes(), recovery_box.to_bytes());
        assert!(file.unlock_recovery(&new_recovery_code()).is_err());
        assert!(file.usernames() == vec!["lan".to_string()]);
    }

    #[test]
    fn a_slot_without_a_box_key_gets_one_at_sign_in_and_keeps_it() {
        let (mut file, _) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        file.slots[0].box_key = None;
        let first = file.unlock("lan", "mật khẩu đúng", now()).unwrap();
        assert!(first.box_created);
        let again = file.unlock("lan", "mật khẩu đúng", now()).unwrap();
        assert!(!again.box_created);
        let secret = again.box_secret.unwrap().to_bytes();
        assert_eq!(first.box_secret.unwrap().to_bytes(), secret);
        // The secret half is not in the file in clear.
        let text = serde_json::to_string(&file).unwrap();
        let secret = hex::encode(secret);
        assert!(!text.contains(&secret));
    }

    #[test]
    fn a_slot_made_at_the_old_cost_is_made_again_at_the_current_one() {
        let (mut file, key) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        assert_eq!(
            (file.slots[0].kdf.m_kib, file.slots[0].kdf.t),
            (KDF_M_KIB, KDF_T)
        );
        // As a slot written before the cost was raised.
        let old_box = file.slots[0].box_key.clone();
        let secret = file
            .unlock("lan", "mật khẩu đúng", now())
            .unwrap()
            .box_secret
            .unwrap();
        let mut old = wrap(&key, "lan", Some("o1"), "mật khẩu đúng", &secret, None).unwrap();
        old.bound = false;
        old.kdf = KdfParams {
            m_kib: 19 * 1024,
            t: 2,
            ..new_kdf()
        };
        let kek = derive("mật khẩu đúng", &old.kdf).unwrap();
        old.box_key = Some(seal_box(&kek, &secret, None).unwrap());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        old.nonce = hex::encode(nonce);
        old.wrapped = hex::encode(
            XChaCha20Poly1305::new(kek.as_ref().into())
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: key.0.as_ref(),
                        aad: AAD,
                    },
                )
                .unwrap(),
        );
        old.officer_id = Some("o1".into());
        file.slots[0] = old;
        assert!(old_box.is_some());
        let opened = file.unlock("lan", "mật khẩu đúng", now()).unwrap();
        assert!(opened.rewrapped);
        assert_eq!(opened.box_secret.unwrap().to_bytes(), secret.to_bytes());
        assert_eq!(
            (file.slots[0].kdf.m_kib, file.slots[0].kdf.t),
            (KDF_M_KIB, KDF_T)
        );
        let again = file.unlock("lan", "mật khẩu đúng", now()).unwrap();
        assert!(!again.rewrapped);
        assert_eq!(again.key.0.as_ref(), key.0.as_ref());
        assert_eq!(again.officer_id.as_deref(), Some("o1"));
    }

    /// Regression (an attacker's read): an administrator edited the officer id of their own
    /// slot in `keys.json` to the chief's and signed in as the chief with their own password.
    #[test]
    fn a_slot_opens_only_for_the_officer_it_was_made_for() {
        let (mut file, key) = KeyFile::create("quantri", "o-admin", "mật khẩu quản trị").unwrap();
        file.set_password(
            &key,
            "truong",
            "o-chief",
            "mật khẩu trưởng xã",
            false,
            &new_box_secret(),
        )
        .unwrap();
        let admin = file
            .slots
            .iter()
            .position(|s| s.label == "quantri")
            .unwrap();
        file.slots[admin].officer_id = Some("o-chief".into());
        assert!(matches!(
            file.unlock("quantri", "mật khẩu quản trị", now()),
            Err(StoreError::WrongCredentials)
        ));
        file.slots[admin].bound = false;
        assert!(file.unlock("quantri", "mật khẩu quản trị", now()).is_err());
        assert!(file.unlock("truong", "mật khẩu trưởng xã", now()).is_ok());
    }

    #[test]
    fn a_slot_with_an_absurd_cost_is_refused_without_trying_it() {
        let (mut file, _) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        for (m, t) in [(u32::MAX, 3), (KDF_M_KIB, u32::MAX)] {
            file.slots[0].kdf.m_kib = m;
            file.slots[0].kdf.t = t;
            // Without the bound this would exhaust memory, or never end.
            assert!(file.unlock("lan", "mật khẩu đúng", now()).is_err());
        }
    }

    #[test]
    fn short_password_refused() {
        assert!(KeyFile::create("lan", "o1", "short").is_err());
        assert!(KeyFile::create("lan12345", "o1", "LAN12345").is_err());
    }

    #[test]
    fn the_password_rule_fits_vietnamese_passphrases() {
        for (user, password, code) in [
            ("lan", "trời mưa to quá 2026", None),
            ("lan", "mật khẩu thử nghiệm", None),
            ("lan", "binhyen-demo", None),
            ("lan", "Công An Xã 2026!", None),
            ("lan", "ngắn", Some("too_short")),
            ("lan", "12345678", Some("too_common")),
            ("lan", "Mật Khẩu 123", Some("too_common")),
            ("lan", "công an 123", Some("too_common")),
            ("lan", "aaaaaaaaaaaa", Some("too_common")),
            ("lan", "ababababab", Some("too_common")),
            ("nguyenlan", "Nguyễn Lan", Some("same_as_username")),
            ("lan.nguyen", "LAN NGUYEN", Some("same_as_username")),
        ] {
            let got = check_password(user, password).err().map(|e| match e {
                StoreError::Invalid(i) => i.0[0].code.clone(),
                other => panic!("{other}"),
            });
            assert_eq!(got.as_deref(), code, "{user} {password}");
        }
    }

    #[test]
    fn an_anchor_pinned_in_a_slot_cannot_be_changed_or_removed_behind_the_officers_back() {
        let (mut file, key) = KeyFile::create("lan", "o1", "mật khẩu đúng").unwrap();
        let before = file.unlock("lan", "mật khẩu đúng", now()).unwrap();
        assert_eq!(before.anchor, None);
        let anchor = "ab".repeat(32);
        assert!(file.bind_anchor("lan", "mật khẩu đúng", &anchor).unwrap());
        assert!(!file.bind_anchor("lan", "mật khẩu đúng", &anchor).unwrap());
        let opened = file.unlock("lan", "mật khẩu đúng", now()).unwrap();
        assert_eq!(opened.anchor.as_deref(), Some(anchor.as_str()));
        // The same box key, bound now.
        assert_eq!(
            opened.box_secret.unwrap().to_bytes(),
            before.box_secret.clone().unwrap().to_bytes()
        );
        // Another anchor is not pinned over it.
        assert!(file
            .bind_anchor("lan", "mật khẩu đúng", &"cd".repeat(32))
            .is_err());
        // Edited or removed in the file: the slot opens no box key (the sign-in fails).
        for edit in [Some("cd".repeat(32)), None] {
            let mut text: serde_json::Value = serde_json::to_value(&file).unwrap();
            match &edit {
                Some(a) => text["slots"][0]["anchor"] = serde_json::json!(a),
                None => {
                    text["slots"][0].as_object_mut().unwrap().remove("anchor");
                }
            }
            let mut edited: KeyFile = serde_json::from_value(text).unwrap();
            assert!(
                edited.unlock("lan", "mật khẩu đúng", now()).is_err(),
                "{edit:?}"
            );
        }
        // The officer's own password change keeps it; a reset by someone else does not.
        let own = opened_box(&mut file);
        file.set_password(&key, "lan", "o1", "mật khẩu mới 2026", false, &own)
            .unwrap();
        let again = file.unlock("lan", "mật khẩu mới 2026", now()).unwrap();
        assert_eq!(again.anchor.as_deref(), Some(anchor.as_str()));
        file.set_password(&key, "lan", "o1", "tạm thời 12345", true, &new_box_secret())
            .unwrap();
        assert_eq!(
            file.unlock("lan", "tạm thời 12345", now()).unwrap().anchor,
            None
        );
    }

    fn opened_box(file: &mut KeyFile) -> BoxSecret {
        file.unlock("lan", "mật khẩu đúng", now())
            .unwrap()
            .box_secret
            .unwrap()
    }
}
