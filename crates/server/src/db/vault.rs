//! The server's secrets (its certificate authority's private key, each station's recovery
//! code and bundle key) kept sealed under a key that is not in the database: a 256-bit key in
//! a file of its own (0600), made at the first start, its path in the server's settings. A
//! copy of the database alone (a backup left on a share, a dump sent for support) gives none
//! of them away; the database without its key file is refused with a clear message.
//!
//! [`Sealed`] wraps a backend: the rest of the server reads and writes secrets in clear
//! through it, and only sealed values reach storage. Values stored in clear by an earlier
//! version are sealed when the vault is first opened on that database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{
    AuditPush, AuditRecord, Backend, DbError, DbResult, PulledChange, PushOutcome, ReleaseRow,
    ScopeRecord, ServerStats, StationRow,
};
use binhyen_protocol::wire::WireChange;
use std::collections::BTreeMap;

/// The prefix of a sealed value.
const SEALED: &str = "vault1:";
/// Meta key: a known text sealed under the vault's key, proving a key file belongs here.
const CHECK: &str = "vault.check";
const CHECK_TEXT: &str = "binhyen server vault v1";
/// Server settings that are secrets (the authority's certificate and private key).
const SECRET_META: &[&str] = &["tls.ca", crate::anchor::ANCHOR_KEY];
/// What a bundle key is sealed for (its station is not known before the enrolment).
const BUNDLE: &str = "bundle_key";

fn recovery_for(station_id: &str) -> String {
    format!("recovery:{station_id}")
}

fn vault_err(message: impl Into<String>) -> DbError {
    DbError::Other(message.into())
}

/// The server's secrets key.
pub struct Vault {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(…)")
    }
}

impl Vault {
    /// A vault with a random key, kept nowhere (tests of the wrapper itself).
    pub fn ephemeral() -> Vault {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Vault { key }
    }

    /// Reads the key file at `path`.
    fn read(path: &Path) -> DbResult<Vault> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            vault_err(format!(
                "cannot read the server's key file {}: {e}",
                path.display()
            ))
        })?);
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            vault_err(format!(
                "the server's key file {} is damaged",
                path.display()
            ))
        })?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            vault_err(format!(
                "the server's key file {} is damaged",
                path.display()
            ))
        })?;
        Ok(Vault {
            key: Zeroizing::new(key),
        })
    }

    /// Makes a new key file at `path` (0600); refuses to replace one.
    fn create(path: &Path) -> DbResult<Vault> {
        let vault = Vault::ephemeral();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            binhyen_store::private_files::private_dir(dir)
                .map_err(|e| vault_err(format!("{}: {e}", dir.display())))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            vault_err(format!(
                "cannot create the server's key file {}: {e}",
                path.display()
            ))
        })?;
        use std::io::Write;
        let text = Zeroizing::new(hex::encode(vault.key.as_ref()));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| vault_err(format!("{}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), "the server's key file was made; back it up apart from the database");
        Ok(vault)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }

    /// `plain` sealed for `purpose` (a sealed value cannot be moved to another purpose).
    pub fn seal(&self, purpose: &str, plain: &str) -> DbResult<String> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| vault_err("cannot seal a server secret"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// A sealed value opened. Anything else (a value in clear, one sealed under another
    /// key or for another purpose) is refused: after the vault's first opening, nothing is
    /// stored in clear.
    pub fn open(&self, purpose: &str, stored: &str) -> DbResult<String> {
        let refused = || {
            vault_err(format!(
                "a server secret ({purpose}) is not sealed under this server's key file: the database or the key file was replaced"
            ))
        };
        let body = stored.strip_prefix(SEALED).ok_or_else(refused)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| refused())?;
        if bytes.len() < 24 {
            return Err(refused());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plain).map_err(|_| refused())
    }
}

/// Where the key file of a database is by default: beside an SQLite file (`server.db` →
/// `server.key`); a PostgreSQL server must be told (`--key-file`).
pub fn default_key_file(spec: &str) -> Option<PathBuf> {
    spec.strip_prefix("sqlite:")
        .map(|p| Path::new(p).with_extension("key"))
}

/// A backend whose secrets are sealed under a vault.
pub struct Sealed {
    inner: Arc<dyn Backend>,
    vault: Vault,
}

impl Sealed {
    /// Opens the vault of `inner` with the key file at `key_file`: made there at the first
    /// start (and the secrets stored in clear by an earlier version sealed), read on every
    /// later one. A database whose secrets are sealed and no key file, or the wrong one, is
    /// refused with a message that says what to do.
    pub fn open(inner: Arc<dyn Backend>, key_file: &Path) -> DbResult<Sealed> {
        let check = inner.meta_get(CHECK)?;
        let vault = match (&check, key_file.exists()) {
            (Some(_), false) => {
                return Err(vault_err(format!(
                    "the server's key file {} is missing: this database's secrets (its certificate authority, the stations' recovery codes) are sealed under it. Restore the key file from where it was backed up, or give its path with --key-file (BINHYEN_SERVER_KEY_FILE).",
                    key_file.display()
                )))
            }
            (_, true) => Vault::read(key_file)?,
            (None, false) => Vault::create(key_file)?,
        };
        binhyen_store::private_files::make_private(key_file)
            .map_err(|e| vault_err(format!("{}: {e}", key_file.display())))?;
        let sealed = Sealed { inner, vault };
        match check {
            Some(c) => {
                if sealed.vault.open(CHECK, &c).ok().as_deref() != Some(CHECK_TEXT) {
                    return Err(vault_err(format!(
                        "the key file {} does not open this database's secrets: it belongs to another server, or the database was replaced",
                        key_file.display()
                    )));
                }
            }
            None => sealed.seal_what_is_in_clear()?,
        }
        Ok(sealed)
    }

    /// The first opening on a database: seals what an earlier version stored in clear,
    /// then records the check that ties the key file to this database.
    fn seal_what_is_in_clear(&self) -> DbResult<()> {
        let in_clear = |v: &str| !v.starts_with(SEALED);
        for key in SECRET_META {
            if let Some(v) = self.inner.meta_get(key)?.filter(|v| in_clear(v)) {
                self.inner.meta_set(key, &self.vault.seal(key, &v)?)?;
            }
        }
        let mut sealed = 0;
        for station in self.inner.stations()? {
            if let Some((_, Some(k))) = self.inner.station_with_key(&station.id)? {
                if in_clear(&k) {
                    self.inner
                        .set_bundle_key(&station.id, &self.vault.seal(BUNDLE, &k)?)?;
                    sealed += 1;
                }
            }
            if let Some((code, at)) = self.inner.recovery_code(&station.id)? {
                if in_clear(&code) {
                    let at = DateTime::parse_from_rfc3339(&at)
                        .map(|d| d.with_timezone(&Utc))
                        .unwrap_or_else(|_| Utc::now());
                    let sealed_code = self.vault.seal(&recovery_for(&station.id), &code)?;
                    self.inner
                        .set_recovery_code(&station.id, &sealed_code, at)?;
                    sealed += 1;
                }
            }
        }
        self.inner
            .meta_set(CHECK, &self.vault.seal(CHECK, CHECK_TEXT)?)?;
        if sealed > 0 {
            tracing::info!(sealed, "server secrets stored in clear are now sealed");
        }
        Ok(())
    }
}

impl Backend for Sealed {
    fn import_units(&self, csv: &str) -> DbResult<usize> {
        self.inner.import_units(csv)
    }
    fn unit_exists(&self, code: &str) -> DbResult<bool> {
        self.inner.unit_exists(code)
    }
    fn unit_name(&self, code: &str) -> DbResult<Option<String>> {
        self.inner.unit_name(code)
    }
    fn create_station(
        &self,
        unit_code: &str,
        device_no: Option<u32>,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<(String, u32)> {
        self.inner
            .create_station(unit_code, device_no, token_hash, now)
    }
    fn stations(&self) -> DbResult<Vec<StationRow>> {
        self.inner.stations()
    }
    fn revoke(&self, id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        self.inner.revoke(id, now)
    }
    fn enroll(
        &self,
        token_hash: &str,
        secret_hash: &str,
        bundle_key: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<StationRow> {
        let sealed = self.vault.seal(BUNDLE, bundle_key)?;
        self.inner
            .enroll(token_hash, secret_hash, &sealed, only, now)
    }
    fn station_by_secret(&self, id: &str, secret_hash: &str) -> DbResult<Option<StationRow>> {
        self.inner.station_by_secret(id, secret_hash)
    }
    fn push(
        &self,
        station: &StationRow,
        changes: &[WireChange],
        now: DateTime<Utc>,
    ) -> DbResult<PushOutcome> {
        self.inner.push(station, changes, now)
    }
    fn pull(
        &self,
        station: &StationRow,
        after: i64,
        limit: u32,
    ) -> DbResult<(Vec<PulledChange>, i64, bool)> {
        self.inner.pull(station, after, limit)
    }
    fn checksum(&self, station: &StationRow) -> DbResult<(String, u64)> {
        self.inner.checksum(station)
    }
    fn checksum_sums(&self, station: &StationRow) -> DbResult<(String, u64)> {
        self.inner.checksum_sums(station)
    }
    fn records(
        &self,
        station: &StationRow,
        after: Option<(String, String)>,
        limit: u32,
    ) -> DbResult<Vec<ScopeRecord>> {
        self.inner.records(station, after, limit)
    }
    fn station_with_key(&self, id: &str) -> DbResult<Option<(StationRow, Option<String>)>> {
        match self.inner.station_with_key(id)? {
            Some((row, Some(k))) => Ok(Some((row, Some(self.vault.open(BUNDLE, &k)?)))),
            other => Ok(other),
        }
    }
    fn push_audit(
        &self,
        station: &StationRow,
        push: &AuditPush,
        now: DateTime<Utc>,
    ) -> DbResult<i64> {
        self.inner.push_audit(station, push, now)
    }
    fn audit_chain(&self, station_id: &str) -> DbResult<Vec<AuditRecord>> {
        self.inner.audit_chain(station_id)
    }
    fn set_recovery_code(&self, station_id: &str, code: &str, now: DateTime<Utc>) -> DbResult<()> {
        let sealed = self.vault.seal(&recovery_for(station_id), code)?;
        self.inner.set_recovery_code(station_id, &sealed, now)
    }
    fn recovery_code(&self, station_id: &str) -> DbResult<Option<(String, String)>> {
        match self.inner.recovery_code(station_id)? {
            Some((code, at)) => Ok(Some((
                self.vault.open(&recovery_for(station_id), &code)?,
                at,
            ))),
            None => Ok(None),
        }
    }
    fn attachment_named(&self, unit: &str, sha256: &str) -> DbResult<bool> {
        self.inner.attachment_named(unit, sha256)
    }
    fn store_attachment(
        &self,
        unit: &str,
        sha256: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.inner.store_attachment(unit, sha256, data, now)
    }
    fn attachment(&self, unit: &str, sha256: &str) -> DbResult<Option<Vec<u8>>> {
        self.inner.attachment(unit, sha256)
    }
    fn meta_get(&self, key: &str) -> DbResult<Option<String>> {
        let v = self.inner.meta_get(key)?;
        match v {
            Some(v) if SECRET_META.contains(&key) => Ok(Some(self.vault.open(key, &v)?)),
            other => Ok(other),
        }
    }
    fn meta_set(&self, key: &str, value: &str) -> DbResult<()> {
        if SECRET_META.contains(&key) {
            return self.inner.meta_set(key, &self.vault.seal(key, value)?);
        }
        self.inner.meta_set(key, value)
    }
    fn meta_init(&self, key: &str, value: &str) -> DbResult<String> {
        if SECRET_META.contains(&key) {
            let stored = self.inner.meta_init(key, &self.vault.seal(key, value)?)?;
            return self.vault.open(key, &stored);
        }
        self.inner.meta_init(key, value)
    }
    fn set_bundle_key(&self, station_id: &str, bundle_key: &str) -> DbResult<()> {
        self.inner
            .set_bundle_key(station_id, &self.vault.seal(BUNDLE, bundle_key)?)
    }
    fn record_event(
        &self,
        at: DateTime<Utc>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> DbResult<()> {
        self.inner.record_event(at, action, target, detail)
    }
    fn events(&self, limit: u32) -> DbResult<Vec<(String, String, String, String)>> {
        self.inner.events(limit)
    }

    fn station_seen(&self, station_id: &str, version: &str, now: DateTime<Utc>) -> DbResult<()> {
        self.inner.station_seen(station_id, version, now)
    }
    fn stations_seen(&self) -> DbResult<BTreeMap<String, (String, String)>> {
        self.inner.stations_seen()
    }
    fn station_waiting(
        &self,
        station_id: &str,
        remaining: u64,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.inner.station_waiting(station_id, remaining, now)
    }
    fn stations_waiting(&self) -> DbResult<BTreeMap<String, (u64, String)>> {
        self.inner.stations_waiting()
    }
    fn stats(&self) -> DbResult<ServerStats> {
        self.inner.stats()
    }
    fn audit_heads(&self) -> DbResult<BTreeMap<String, (i64, String)>> {
        self.inner.audit_heads()
    }
    fn unit_records(&self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>> {
        self.inner.unit_records(unit, entity)
    }
    fn entity_records(&self, entity: &str) -> DbResult<Vec<(String, String, String)>> {
        self.inner.entity_records(entity)
    }
    fn publish_release(&self, release: &ReleaseRow, data: &[u8]) -> DbResult<()> {
        self.inner.publish_release(release, data)
    }
    fn releases(&self) -> DbResult<Vec<ReleaseRow>> {
        self.inner.releases()
    }
    fn withdraw_release(&self, version: &str, now: DateTime<Utc>) -> DbResult<bool> {
        self.inner.withdraw_release(version, now)
    }
    fn release_piece(&self, version: &str, offset: u64, len: u32) -> DbResult<Option<Vec<u8>>> {
        self.inner.release_piece(version, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_purpose_and_key() {
        let vault = Vault::ephemeral();
        let sealed = vault.seal("recovery:a", "ABCDE-FGHJK").unwrap();
        assert!(!sealed.contains("ABCDE"));
        assert_eq!(vault.open("recovery:a", &sealed).unwrap(), "ABCDE-FGHJK");
        assert!(vault.open("recovery:b", &sealed).is_err());
        assert!(Vault::ephemeral().open("recovery:a", &sealed).is_err());
        assert!(vault.open("recovery:a", "ABCDE-FGHJK").is_err());
    }
}
