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
    let Some(public) = hex::decode(authority_hex)
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
    public.verify_strict(&terms.message(), &sig).is_ok()
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
