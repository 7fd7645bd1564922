//! The province's anchor of each commune's identity keys: the outside reference a laptop
//! checks its keys against, so that a key planted in its database by someone holding the
//! database key (a station administrator) is never sealed to.
//!
//! - The server keeps an Ed25519 **anchor key** (a secret setting, sealed under the server's
//!   key file like the certificate authority).
//! - A commune's keys are **anchored**: its first identity key to reach the server (decided
//!   in the push's transaction, see `db/rights.rs`; the keys a unit had before this version
//!   are anchored with their authority as it was when the server first opened its storage,
//!   [`anchor_existing`]), and every key that a key already anchored endorsed (signed by
//!   that key's grant authority, which only its holders can derive). What is anchored is
//!   the key with its public half and authority, never an id alone.
//! - The release key (kept offline by those who build releases) signs the anchor for the
//!   province the server serves (`scripts/sign-anchor.sh`, then `binhyen-server anchor
//!   --province P --signature FILE`):
//!   a station trusts an anchor only with that signature, so a server someone else runs
//!   cannot hand out an anchor of its own.
//! - `GET /api/v1/identity-anchors` gives a station its unit's anchored keys, each certified
//!   by the anchor key, with the anchor's public half. The laptop pins that public half for
//!   each officer who syncs (see the store's `identity.rs`).

use rand::RngCore;
use serde_json::{Map, Value};

use binhyen_domain::grant::{self, AnchorKey, KeyTerms};
use binhyen_protocol::wire::{AnchoredKey, IdentityAnchors};

use crate::db::{Backend, DbError, DbResult, StationRow};

/// The server setting that holds the anchor key's seed (hex; sealed by the vault).
pub const ANCHOR_KEY: &str = "identity.anchor_key";

/// The server setting that lists a unit's keys anchored without an endorsement, as they
/// were when anchored (JSON array of `[id, public, authority]`): its first key, or the keys
/// it had, with their authority, when anchors came.
pub fn first_keys_setting(unit: &str) -> String {
    format!("identity.anchored.v2.{unit}")
}

/// The server setting that holds the release key's signatures of the anchor, by province
/// (JSON object).
pub const SIGNATURES: &str = "identity.anchor_signatures";

/// A key as anchored: (id, public, authority).
pub type Anchored = (String, String, String);

/// Anchors, once, the keys of units that had identity keys before anchors (each with its
/// authority as it is now; a key with none is not anchored): run when the server's storage
/// is opened, before any station can write an authority to such a key.
pub fn anchor_existing(db: &dyn Backend) -> DbResult<usize> {
    if db.meta_get("identity.anchors_migrated")?.is_some() {
        return Ok(0);
    }
    let mut by_unit: std::collections::BTreeMap<String, Vec<Anchored>> = Default::default();
    for (unit, id, vals) in db.entity_records("identity_key")? {
        let list = by_unit.entry(unit).or_default();
        let Ok(m) = serde_json::from_str::<Map<String, Value>>(&vals) else {
            continue;
        };
        if let (Some(public), Some(authority)) = (text(&m, "public"), text(&m, "authority")) {
            list.push((id, public, authority));
        }
    }
    let mut n = 0;
    for (unit, list) in by_unit {
        if !list.is_empty() {
            n += list.len();
            db.meta_init(
                &first_keys_setting(&unit),
                &serde_json::to_string(&list).unwrap_or_default(),
            )?;
        }
    }
    db.meta_set("identity.anchors_migrated", "1")?;
    Ok(n)
}

/// Keeps the release key's signature of this server's anchor for `province` (made with
/// `scripts/sign-anchor.sh`), after checking it.
pub fn certify(db: &dyn Backend, province: &str, signature: &str) -> DbResult<()> {
    let anchor = anchor_key(db)?.public_hex();
    if !binhyen_protocol::release::verify_anchor(&anchor, province, signature) {
        return Err(DbError::Other(format!(
            "this is not the release key's signature of this server's anchor ({anchor}) for province {province}: sign the anchor `binhyen-server anchor show` prints, with scripts/sign-anchor.sh"
        )));
    }
    let mut all: Map<String, Value> = db
        .meta_get(SIGNATURES)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    all.insert(province.to_string(), Value::String(signature.to_string()));
    db.meta_set(SIGNATURES, &Value::Object(all).to_string())
}

/// The provinces whose signature of the anchor this server keeps.
pub fn certified_provinces(db: &dyn Backend) -> DbResult<Vec<String>> {
    Ok(db
        .meta_get(SIGNATURES)?
        .and_then(|v| serde_json::from_str::<Map<String, Value>>(&v).ok())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

/// The server's anchor key, made at its first use.
pub fn anchor_key(db: &dyn Backend) -> DbResult<AnchorKey> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let stored = zeroize::Zeroizing::new(db.meta_init(ANCHOR_KEY, &hex::encode(seed.as_ref()))?);
    let bytes: [u8; 32] = hex::decode(stored.as_str())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| DbError::Other("the server's anchor key is damaged".into()))?;
    Ok(AnchorKey::from_seed(&bytes))
}

struct Key {
    id: String,
    public: String,
    authority: String,
    endorsed_by: Option<String>,
    endorsement: Option<String>,
}

fn text(m: &Map<String, Value>, field: &str) -> Option<String> {
    m.get(field).and_then(Value::as_str).map(str::to_string)
}

/// The unit's anchored keys: those anchored without an endorsement, then (until nothing
/// changes) every key a key already anchored endorsed.
pub fn anchored(db: &dyn Backend, unit: &str) -> DbResult<Vec<AnchoredKey>> {
    let keys: Vec<Key> = db
        .unit_records(unit, "identity_key")?
        .into_iter()
        .filter_map(|(id, vals)| {
            let m: Map<String, Value> = serde_json::from_str(&vals).ok()?;
            Some(Key {
                id,
                public: text(&m, "public")?,
                authority: text(&m, "authority")?,
                endorsed_by: text(&m, "endorsed_by"),
                endorsement: text(&m, "endorsement"),
            })
        })
        .collect();
    let first: Vec<Anchored> = db
        .meta_get(&first_keys_setting(unit))?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let mut anchored: Vec<&Key> = keys
        .iter()
        .filter(|k| {
            first.iter().any(|(id, public, authority)| {
                *id == k.id && *public == k.public && *authority == k.authority
            })
        })
        .collect();
    loop {
        let before = anchored.len();
        for k in &keys {
            if anchored.iter().any(|a| a.id == k.id) {
                continue;
            }
            let (Some(by), Some(sig)) = (&k.endorsed_by, &k.endorsement) else {
                continue;
            };
            let terms = KeyTerms {
                unit_code: unit,
                key_id: &k.id,
                public: &k.public,
                authority: &k.authority,
            };
            if anchored
                .iter()
                .any(|a| &a.id == by && grant::verify_endorsement(&a.authority, &terms, sig))
            {
                anchored.push(k);
            }
        }
        if anchored.len() == before {
            break;
        }
    }
    let key = anchor_key(db)?;
    Ok(anchored
        .into_iter()
        .map(|k| AnchoredKey {
            key_id: k.id.clone(),
            public: k.public.clone(),
            authority: k.authority.clone(),
            certificate: key.certify(&KeyTerms {
                unit_code: unit,
                key_id: &k.id,
                public: &k.public,
                authority: &k.authority,
            }),
        })
        .collect())
}

/// What `GET /api/v1/identity-anchors` answers a station: its own unit's anchored keys.
pub fn for_station(db: &dyn Backend, station: &StationRow) -> DbResult<IdentityAnchors> {
    let signatures = db
        .meta_get(SIGNATURES)?
        .and_then(|v| serde_json::from_str::<Map<String, Value>>(&v).ok())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(IdentityAnchors {
        anchor: anchor_key(db)?.public_hex(),
        signatures,
        unit_code: station.unit_code.clone(),
        keys: anchored(db, &station.unit_code)?,
    })
}
