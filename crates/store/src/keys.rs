//! Key handling, all of it: the database is encrypted with a random 256-bit key; that key is
//! stored only wrapped (XChaCha20-Poly1305) under keys derived from passphrases (Argon2id),
//! one slot per passphrase, in `keys.json` beside the database. Adding a passphrase or
//! changing one rewraps the key and never re-encrypts the database.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{Result, StoreError};

/// The passphrase of the demo station that opens when nothing is set up. Demo data only.
pub const DEMO_PASSPHRASE: &str = "binhyen-demo";

const AAD: &[u8] = b"binhyen db key v1";

/// The database key. Zeroed when dropped.
pub struct DbKey(Zeroizing<[u8; 32]>);

impl DbKey {
    fn random() -> DbKey {
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

/// Argon2id cost. 19 MiB and 2 passes (the OWASP minimum) keep unlocking under a second on
/// a cheap laptop.
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
    label: String,
    kdf: KdfParams,
    nonce: String,
    wrapped: String,
}

/// The contents of `keys.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    version: u32,
    /// True while the passphrase is the public [`DEMO_PASSPHRASE`]: the station opens
    /// without asking, which is only acceptable for demo data.
    #[serde(default)]
    pub demo_passphrase: bool,
    slots: Vec<Slot>,
}

fn derive(passphrase: &str, kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>, String> {
    let salt = hex::decode(&kdf.salt).map_err(|e| e.to_string())?;
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).map_err(|e| e.to_string())?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, out.as_mut())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn wrap(key: &DbKey, label: &str, passphrase: &str) -> Result<Slot, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let kdf = KdfParams {
        alg: "argon2id".into(),
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
        salt: hex::encode(salt),
    };
    let kek = derive(passphrase, &kdf)?;
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let wrapped = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: key.0.as_ref(),
                aad: AAD,
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(Slot {
        label: label.into(),
        kdf,
        nonce: hex::encode(nonce),
        wrapped: hex::encode(wrapped),
    })
}

impl KeyFile {
    /// A new random database key, wrapped for one passphrase.
    pub fn create(passphrase: &str) -> Result<(KeyFile, DbKey), String> {
        let demo_passphrase = passphrase == DEMO_PASSPHRASE;
        if passphrase.chars().count() < 8 {
            return Err("Mật khẩu của trạm phải có ít nhất 8 ký tự.".into());
        }
        let key = DbKey::random();
        let slot = wrap(&key, "station", passphrase)?;
        Ok((
            KeyFile {
                version: 1,
                demo_passphrase,
                slots: vec![slot],
            },
            key,
        ))
    }

    /// The database key, if `passphrase` opens one of the slots.
    pub fn unlock(&self, passphrase: &str) -> Result<DbKey> {
        for slot in &self.slots {
            let Ok(kek) = derive(passphrase, &slot.kdf) else {
                continue;
            };
            let (Ok(nonce), Ok(wrapped)) = (hex::decode(&slot.nonce), hex::decode(&slot.wrapped))
            else {
                continue;
            };
            if nonce.len() != 24 {
                continue;
            }
            let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
            if let Ok(plain) = cipher.decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &wrapped,
                    aad: AAD,
                },
            ) {
                let plain = Zeroizing::new(plain);
                if plain.len() == 32 {
                    let mut k = Zeroizing::new([0u8; 32]);
                    k.copy_from_slice(&plain);
                    return Ok(DbKey(k));
                }
            }
        }
        Err(StoreError::WrongPassphrase)
    }

    /// Replaces the passphrase of every slot with a new one; the database key is unchanged.
    pub fn change_passphrase(&mut self, old: &str, new: &str) -> Result<()> {
        let key = self.unlock(old)?;
        if new.chars().count() < 8 {
            return Err(StoreError::Invalid(binhyen_domain::Invalid::one(
                "passphrase",
                "too_short",
                "Mật khẩu của trạm phải có ít nhất 8 ký tự.",
            )));
        }
        let slot = wrap(&key, "station", new).map_err(|reason| StoreError::KeyFile {
            path: "keys.json".into(),
            reason,
        })?;
        self.slots = vec![slot];
        self.demo_passphrase = new == DEMO_PASSPHRASE;
        Ok(())
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
        let mut f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_passphrase_is_refused_right_one_opens() {
        let (file, key) = KeyFile::create("mật khẩu đúng").unwrap();
        assert!(matches!(
            file.unlock("sai rồi"),
            Err(StoreError::WrongPassphrase)
        ));
        assert_eq!(
            file.unlock("mật khẩu đúng").unwrap().0.as_ref(),
            key.0.as_ref()
        );
    }

    #[test]
    fn passphrase_change_keeps_the_key() {
        let (mut file, key) = KeyFile::create("old passphrase").unwrap();
        file.change_passphrase("old passphrase", "new passphrase")
            .unwrap();
        assert!(file.unlock("old passphrase").is_err());
        assert_eq!(
            file.unlock("new passphrase").unwrap().0.as_ref(),
            key.0.as_ref()
        );
    }

    #[test]
    fn short_passphrase_refused() {
        assert!(KeyFile::create("short").is_err());
    }
}
