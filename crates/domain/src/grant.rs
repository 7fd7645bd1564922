//! Who may hold a commune's identity key: the signed terms of a grant, which every laptop and
//! the provincial server can check.
//!
//! An identity key (X25519, see the store's `identity.rs`) has a **grant authority**: an
//! Ed25519 key derived from the identity key's secret half, so that only someone who holds
//! the identity key can sign with it, and its public half travels with the key's record.
//! Each officer key has a **personal signing key**, derived from the officer's box key (so
//! only that officer, with their password, signs with it), its public half published with the
//! officer key. A grant names the identity key, the officer key it is sealed to (with that
//! key's public half and officer), what is sealed, who granted it, with which of their keys
//! and when, and carries two signatures over all of it: the authority's (whoever made it held
//! the identity key) and the granter's (which officer made it). A grant cannot be moved to
//! another officer key nor its sealed secret swapped; and a laptop carries grants on by itself
//! only where it can check, with its own key, that its own officer made them.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;

/// What the derivation of the authority is bound to.
const AUTHORITY_INFO: &[u8] = b"binhyen identity grant authority v1";
/// What a grant's signature is over, before its terms.
const GRANT_CONTEXT: &str = "binhyen identity grant v1";

/// The terms of one grant, as signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantTerms<'a> {
    pub unit_code: &'a str,
    /// The identity key granted (its key id).
    pub key_id: &'a str,
    /// The officer key it is sealed to (its key id) and that key's public half (hex).
    pub officer_key_id: &'a str,
    pub officer_key_public: &'a str,
    /// The officer the key belongs to; `None` for a station's recovery slot.
    pub officer_id: Option<&'a str>,
    /// What is sealed to the officer key (the identity key's secret, base64).
    pub sealed: &'a str,
    /// The officer who granted it, and the officer key they granted it with.
    pub granted_by: &'a str,
    pub granter_key: &'a str,
    pub created_at: &'a str,
}

impl GrantTerms<'_> {
    /// The signed bytes: the terms as a JSON array (unambiguous whatever they contain).
    fn message(&self) -> Vec<u8> {
        serde_json::to_vec(&[
            GRANT_CONTEXT,
            self.unit_code,
            self.key_id,
            self.officer_key_id,
            self.officer_key_public,
            self.officer_id.unwrap_or(""),
            self.sealed,
            self.granted_by,
            self.granter_key,
            self.created_at,
        ])
        .unwrap_or_default()
    }
}

/// An Ed25519 key derived from a 32-byte secret for one purpose (`info`).
fn derived(secret: &[u8; 32], info: &[u8]) -> SigningKey {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, secret)
        .expand(info, seed.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SigningKey::from_bytes(&seed)
}

/// What the derivation of a personal key is bound to.
const PERSONAL_INFO: &[u8] = b"binhyen officer signing key v1";

macro_rules! signer {
    ($(#[$doc:meta])* $name:ident, $from:ident, $info:expr) => {
        $(#[$doc])*
        pub struct $name(SigningKey);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.public_hex())
            }
        }

        impl $name {
            pub fn $from(secret: &[u8; 32]) -> $name {
                $name(derived(secret, $info))
            }

            /// The public half, as the record it belongs to carries it (hex).
            pub fn public_hex(&self) -> String {
                hex::encode(self.0.verifying_key().as_bytes())
            }

            /// The signature over `terms` (hex).
            pub fn sign(&self, terms: &GrantTerms<'_>) -> String {
                hex::encode(self.0.sign(&terms.message()).to_bytes())
            }

            /// Whether `signature` is this key's over `terms`.
            pub fn signed(&self, terms: &GrantTerms<'_>, signature: &str) -> bool {
                verify(&self.public_hex(), terms, signature)
            }
        }
    };
}

signer!(
    /// The grant authority of one identity key, derived from its secret half.
    GrantAuthority,
    of_identity_secret,
    AUTHORITY_INFO
);

signer!(
    /// An officer's personal signing key, derived from their box key's secret half.
    PersonalKey,
    of_box_secret,
    PERSONAL_INFO
);

/// Whether `signature` (hex) is the signature of the authority `authority_hex` over `terms`.
/// Anything malformed is simply not a valid signature.
pub fn verify(authority_hex: &str, terms: &GrantTerms<'_>, signature: &str) -> bool {
    verify_bytes(authority_hex, &terms.message(), signature)
}

/// Whether `signature` (hex) is the Ed25519 signature of `public_hex` over `message`.
fn verify_bytes(public_hex: &str, message: &[u8], signature: &str) -> bool {
    let Some(public) = hex::decode(public_hex)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return false;
    };
    let Some(sig) = hex::decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
    else {
        return false;
    };
    public.verify_strict(message, &sig).is_ok()
}

/// An identity key as the province's anchor certifies it and as another key of the unit
/// endorses it: the unit, the key, its public half and its grant authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTerms<'a> {
    pub unit_code: &'a str,
    pub key_id: &'a str,
    /// The identity key's public half (hex).
    pub public: &'a str,
    /// Its grant authority's public half (hex).
    pub authority: &'a str,
}

/// What an endorsement is over, before the key's terms.
const ENDORSE_CONTEXT: &str = "binhyen identity key endorsement v1";
/// What the anchor's certificate is over, before the key's terms.
const ANCHOR_CONTEXT: &str = "binhyen identity key anchor v1";
/// What an officer's pin of the anchor is over.
const PIN_CONTEXT: &str = "binhyen anchor pin v1";

impl KeyTerms<'_> {
    fn message(&self, context: &str) -> Vec<u8> {
        serde_json::to_vec(&[
            context,
            self.unit_code,
            self.key_id,
            self.public,
            self.authority,
        ])
        .unwrap_or_default()
    }
}

impl GrantAuthority {
    /// Endorses another identity key of the same unit (a key this key's holder made to
    /// replace or join it): the province anchors a key a key it anchored endorses.
    pub fn endorse(&self, key: &KeyTerms<'_>) -> String {
        hex::encode(self.0.sign(&key.message(ENDORSE_CONTEXT)).to_bytes())
    }
}

/// Whether `signature` is the endorsement of `key` by the authority `authority_hex`.
pub fn verify_endorsement(authority_hex: &str, key: &KeyTerms<'_>, signature: &str) -> bool {
    verify_bytes(authority_hex, &key.message(ENDORSE_CONTEXT), signature)
}

impl PersonalKey {
    /// An officer's pin of the province's anchor key (hex), kept beside the database until
    /// the officer's next sign-in binds it into their password's slot: only that officer
    /// makes it, so a pin written by anyone else is not believed.
    pub fn pin(&self, anchor_hex: &str) -> String {
        let message = serde_json::to_vec(&[PIN_CONTEXT, anchor_hex]).unwrap_or_default();
        hex::encode(self.0.sign(&message).to_bytes())
    }

    /// Whether `signature` is this officer's pin of `anchor_hex`.
    pub fn pinned(&self, anchor_hex: &str, signature: &str) -> bool {
        let message = serde_json::to_vec(&[PIN_CONTEXT, anchor_hex]).unwrap_or_default();
        verify_bytes(&self.public_hex(), &message, signature)
    }
}

/// The provincial server's **anchor**: an Ed25519 key kept under the server's key file,
/// which certifies the identity keys the province knows a commune made (its first key, and
/// each key a key already anchored endorsed). A laptop pins its public half (fetched over the
/// authority-pinned connection, and bound into each officer's slot at their next sign-in) and
/// seals new identities only to keys it certifies: a key planted in the laptop's database
/// by someone holding the database key has no certificate, and is never sealed to.
pub struct AnchorKey(SigningKey);

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnchorKey({})", self.public_hex())
    }
}

impl AnchorKey {
    pub fn from_seed(seed: &[u8; 32]) -> AnchorKey {
        AnchorKey(SigningKey::from_bytes(seed))
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    /// The certificate of `key` (hex).
    pub fn certify(&self, key: &KeyTerms<'_>) -> String {
        hex::encode(self.0.sign(&key.message(ANCHOR_CONTEXT)).to_bytes())
    }
}

/// Whether `signature` is the anchor `anchor_hex`'s certificate of `key`.
pub fn verify_certificate(anchor_hex: &str, key: &KeyTerms<'_>, signature: &str) -> bool {
    verify_bytes(anchor_hex, &key.message(ANCHOR_CONTEXT), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms<'a>(officer_key_public: &'a str, officer_id: Option<&'a str>) -> GrantTerms<'a> {
        GrantTerms {
            unit_code: "24280",
            key_id: "k1",
            officer_key_id: "ok1",
            officer_key_public,
            officer_id,
            sealed: "c2VhbGVk",
            granted_by: "chief-1",
            granter_key: "ok-chief",
            created_at: "2026-12-07T09:00:00Z",
        }
    }

    #[test]
    fn a_signature_holds_for_its_terms_only() {
        let authority = GrantAuthority::of_identity_secret(&[7u8; 32]);
        let t = terms("aa", Some("o1"));
        let sig = authority.sign(&t);
        assert!(verify(&authority.public_hex(), &t, &sig));
        assert!(authority.signed(&t, &sig));
        // Moved to another officer key, another officer, or made a recovery grant: refused.
        assert!(!verify(
            &authority.public_hex(),
            &terms("bb", Some("o1")),
            &sig
        ));
        assert!(!verify(
            &authority.public_hex(),
            &terms("aa", Some("o2")),
            &sig
        ));
        assert!(!verify(&authority.public_hex(), &terms("aa", None), &sig));
        // Another identity key's authority did not sign it.
        let other = GrantAuthority::of_identity_secret(&[8u8; 32]);
        assert!(!verify(&other.public_hex(), &t, &sig));
        // Nor can the sealed secret be swapped under it.
        let swapped = GrantTerms {
            sealed: "b3RoZXI=",
            ..t
        };
        assert!(!verify(&authority.public_hex(), &swapped, &sig));
        // The granter's own signature: only their key makes it.
        let chief = PersonalKey::of_box_secret(&[1u8; 32]);
        let by_chief = chief.sign(&t);
        assert!(chief.signed(&t, &by_chief));
        assert!(!PersonalKey::of_box_secret(&[2u8; 32]).signed(&t, &by_chief));
        // Junk is not a signature.
        for junk in ["", "zz", &"00".repeat(64)] {
            assert!(!verify(&authority.public_hex(), &t, junk));
        }
        assert!(!verify("not hex", &t, &sig));
    }

    #[test]
    fn endorsements_certificates_and_pins_hold_for_their_terms_only() {
        let key = KeyTerms {
            unit_code: "24280",
            key_id: "k2",
            public: "aa",
            authority: "bb",
        };
        let older = GrantAuthority::of_identity_secret(&[3u8; 32]);
        let e = older.endorse(&key);
        assert!(verify_endorsement(&older.public_hex(), &key, &e));
        let moved = KeyTerms {
            unit_code: "24281",
            ..key
        };
        let other_authority = KeyTerms {
            authority: "cc",
            ..key
        };
        assert!(!verify_endorsement(&older.public_hex(), &moved, &e));
        assert!(!verify_endorsement(
            &older.public_hex(),
            &other_authority,
            &e
        ));
        let anchor = AnchorKey::from_seed(&[4u8; 32]);
        let c = anchor.certify(&key);
        assert!(verify_certificate(&anchor.public_hex(), &key, &c));
        assert!(!verify_certificate(&anchor.public_hex(), &moved, &c));
        // An endorsement is not a certificate, nor the other way round.
        assert!(!verify_certificate(&older.public_hex(), &key, &e));
        assert!(!verify_endorsement(&anchor.public_hex(), &key, &c));
        let other = AnchorKey::from_seed(&[5u8; 32]);
        assert!(!verify_certificate(&other.public_hex(), &key, &c));
        // A pin: only its officer makes it, for the anchor it names.
        let officer = PersonalKey::of_box_secret(&[6u8; 32]);
        let pin = officer.pin(&anchor.public_hex());
        assert!(officer.pinned(&anchor.public_hex(), &pin));
        assert!(!officer.pinned(&other.public_hex(), &pin));
        assert!(!PersonalKey::of_box_secret(&[7u8; 32]).pinned(&anchor.public_hex(), &pin));
    }

    #[test]
    fn the_authority_is_the_same_for_the_same_identity_key() {
        let a = GrantAuthority::of_identity_secret(&[9u8; 32]);
        let b = GrantAuthority::of_identity_secret(&[9u8; 32]);
        assert_eq!(a.public_hex(), b.public_hex());
        assert_ne!(
            a.public_hex(),
            GrantAuthority::of_identity_secret(&[10u8; 32]).public_hex()
        );
    }
}
