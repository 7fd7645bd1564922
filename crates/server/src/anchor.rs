//! The province's anchor of each commune's identity keys: the outside reference a laptop
//! checks its keys against, so that a key planted in its database by someone holding the
//! database key (a station administrator) is never sealed to.
//!
//! - The server keeps an Ed25519 **anchor key** (a secret setting, sealed under the server's
//!   key file like the certificate authority).
//! - A commune's keys are **anchored**: its first identity key to reach the server (decided
//!   in the push's transaction, see `db/rights.rs`; keys a unit had before this version are
//!   all anchored, as they were accepted then), and every key that a key already anchored
//!   endorsed (signed by that key's grant authority, which only its holders can derive).
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

/// The server setting that lists a unit's keys anchored without an endorsement (JSON array
/// of key ids): its first key, or the keys it had before anchors.
pub fn first_keys_setting(unit: &str) -> String {
    format!("identity.anchored.{unit}")
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
    let setting = first_keys_setting(unit);
    let first: Vec<String> = match db.meta_get(&setting)? {
        Some(v) => serde_json::from_str(&v).unwrap_or_default(),
        // A unit whose keys all came before anchors: they were accepted then.
        None if !keys.is_empty() => {
            let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
            let stored =
                db.meta_init(&setting, &serde_json::to_string(&ids).unwrap_or_default())?;
            serde_json::from_str(&stored).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let mut anchored: Vec<&Key> = keys.iter().filter(|k| first.contains(&k.id)).collect();
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
    Ok(IdentityAnchors {
        anchor: anchor_key(db)?.public_hex(),
        unit_code: station.unit_code.clone(),
        keys: anchored(db, &station.unit_code)?,
    })
}
