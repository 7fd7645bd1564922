//! The digest of a scope's records that a station and the server compare after a sync. Both
//! sides call this one function over (entity, id, versions JSON, deleted) rows sorted by
//! entity and id, so equal digests mean the same writes.

use sha2::{Digest, Sha256};

use crate::catalog::is_identity;

/// (digest, number of records counted). `with_identity` counts reporter-identity records,
/// which a province never holds.
pub fn digest(
    rows: impl IntoIterator<Item = (String, String, String, Option<String>)>,
    with_identity: bool,
) -> (String, u64) {
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    for (entity_name, id, versions, deleted) in rows {
        if !with_identity && is_identity(&entity_name) {
            continue;
        }
        let canonical = serde_json::from_str::<serde_json::Value>(&versions)
            .map(|v| v.to_string())
            .unwrap_or(versions);
        hasher.update(format!(
            "{entity_name}\u{1f}{id}\u{1f}{canonical}\u{1f}{}\n",
            deleted.unwrap_or_default()
        ));
        n += 1;
    }
    (hex::encode(hasher.finalize()), n)
}
