//! Who is signed in, and the keys their session holds: what the connection owner
//! ([`crate::Station`]) carries from sign-in to sign-out. The records layer fills them in
//! (`accounts.rs` makes the session, `identity.rs` opens keys with the ring).

use std::cell::RefCell;
use std::collections::HashMap;

use crypto_box::{PublicKey, SecretKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ts_rs::TS;

use binhyen_domain::access::{Permission, Role};

use crate::keys::BoxSecret;

/// Who is signed in on an open station.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Session {
    pub officer_id: String,
    pub username: String,
    pub full_name: String,
    pub role: Role,
    pub role_label: String,
    /// Everything the role allows; the window shows only these.
    pub permissions: Vec<Permission>,
    /// The password was set by someone else: nothing works until it is changed.
    pub must_change_password: bool,
}

/// The key id of a public key: 16 bytes of its SHA-256, in hex.
pub fn key_id(public: &PublicKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..16])
}

/// The keys the signed-in session can open identity keys with: the officer's own box key
/// on this laptop (and, after a recovery, the recovery slot's), with their officer-key ids;
/// and the identity keys opened so far.
#[derive(Default)]
pub(crate) struct Ring {
    pub(crate) openers: Vec<(String, BoxSecret)>,
    pub(crate) opened: RefCell<HashMap<String, SecretKey>>,
    /// The province's anchor key as pinned in the officer's slot of `keys.json` (see the
    /// identity module's anchors).
    pub(crate) slot_anchor: Option<String>,
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
