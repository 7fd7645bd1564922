//! The province's anchor of the commune's identity keys, on the laptop: what keeps a key
//! planted in the database by someone who holds the database key (a station administrator)
//! from being sealed to.
//!
//! - Each sync (and each reply bundle) brings the unit's keys the provincial server
//!   anchored, each with the anchor's certificate (see the server's `anchor.rs`), and the
//!   release key's signature of the anchor for this station's province: without that
//!   signature nothing is taken (the server's address and authority are in the database,
//!   which an administrator can point at a server of their own).
//! - The anchor's public half is pinned **per officer**: the officer's own sync signs it with
//!   their personal key (`anchor_pins`, which nobody else can sign), and their next sign-in
//!   binds it into their slot of `keys.json` (the box key's wrapping is then bound to it; see
//!   `keys.rs`). A pin or a certificate someone else wrote is not believed.
//! - A session with a pinned anchor seals new identities and files only to keys it
//!   certifies, or to a key its own officer made (see `identity.rs`'s sealer); where it finds
//!   none, an officer is refused (a chief makes a key of their own). Before the officer's
//!   first sync it seals as before; SECURITY.md says so.

use std::collections::BTreeSet;

use rusqlite::{params, OptionalExtension};

use binhyen_domain::grant::{self, KeyTerms, PersonalKey};
use binhyen_protocol::wire::IdentityAnchors;

use crate::station::Station;
use crate::Result;

fn personal(station: &Station) -> Option<PersonalKey> {
    station
        .ring
        .own()
        .map(|b| PersonalKey::of_box_secret(&zeroize::Zeroizing::new(b.to_bytes())))
}

impl Station {
    /// The anchor this officer's own sync pinned (signed with their personal key), if any.
    pub(crate) fn pinned_anchor(&self) -> Result<Option<String>> {
        let Some((own_id, _)) = self.ring.openers.first() else {
            return Ok(None);
        };
        let Some(personal) = personal(self) else {
            return Ok(None);
        };
        let pin: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT anchor, signature FROM anchor_pins WHERE officer_key_id = ?1",
                [own_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(pin
            .filter(|(anchor, sig)| personal.pinned(anchor, sig))
            .map(|(anchor, _)| anchor))
    }

    /// The province's anchor key this session trusts, as `ANCHOR@UNIT` (the unit it was
    /// received for): pinned in the officer's slot, else by the officer's own sync since the
    /// last sign-in; `None` before their first sync.
    pub(crate) fn anchor(&self) -> Result<Option<String>> {
        match &self.ring.slot_anchor {
            Some(a) => Ok(Some(a.clone())),
            None => self.pinned_anchor(),
        }
    }

    /// Keeps the anchored keys the provincial server gave this sync (each checked against
    /// the anchor's certificate), and pins the anchor for this session's officer if they
    /// had none. An anchor other than the one this officer pinned is not taken (the server's
    /// key does not change; a different one means someone in between). Returns the unit's
    /// keys now certified here.
    pub fn receive_anchors(&mut self, got: &IdentityAnchors) -> Result<usize> {
        let unit = self.info().unit_code.clone();
        // The release key vouches for the anchor, for this station's province: the server's
        // address and authority are in the database, and someone who points the laptop at a
        // server of their own brings an anchor of their own.
        // The province from the country's official list built into the program, never from
        // the database (whose units table an administrator can edit).
        let province = crate::units::official()?
            .into_iter()
            .find(|u| u.code == unit)
            .and_then(|u| u.parent_code)
            .unwrap_or_else(|| unit.clone());
        if !got
            .signatures
            .iter()
            .any(|s| binhyen_protocol::release::verify_anchor(&got.anchor, &province, s))
        {
            tracing::warn!(
                "the provincial server's anchor is not signed by the release key for this province; not taken"
            );
            return Ok(0);
        }
        // What is pinned is the anchor with the unit it was received for: a database whose
        // unit was changed afterwards certifies nothing (see `anchored_keys`).
        let pin = format!("{}@{unit}", got.anchor);
        if let Some(pinned) = self.anchor()? {
            if pinned != pin {
                tracing::warn!(
                    "the provincial server's anchor key differs from the one this officer pinned; not taken"
                );
                return Ok(0);
            }
        }
        if got.unit_code != unit {
            return Ok(0);
        }
        let valid: Vec<_> = got
            .keys
            .iter()
            .filter(|k| {
                grant::verify_certificate(
                    &got.anchor,
                    &KeyTerms {
                        unit_code: &unit,
                        key_id: &k.key_id,
                        public: &k.public,
                        authority: &k.authority,
                    },
                    &k.certificate,
                )
            })
            .collect();
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM identity_anchors WHERE unit_code = ?1", [&unit])?;
        for k in &valid {
            tx.execute(
                "INSERT INTO identity_anchors(key_id, unit_code, public, authority, anchor, certificate)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![k.key_id, unit, k.public, k.authority, got.anchor, k.certificate],
            )?;
        }
        if self.ring.slot_anchor.is_none() {
            if let (Some((own_id, _)), Some(personal)) = (self.ring.openers.first(), personal(self))
            {
                tx.execute(
                    "INSERT INTO anchor_pins(officer_key_id, anchor, signature) VALUES (?1, ?2, ?3)
                     ON CONFLICT(officer_key_id) DO UPDATE SET anchor = excluded.anchor,
                                                               signature = excluded.signature",
                    params![own_id, pin, personal.pin(&pin)],
                )?;
            }
        }
        tx.commit()?;
        Ok(valid.len())
    }

    /// The unit's identity keys this session finds certified by the anchor it trusts, as
    /// the database holds them now (public half and authority); `None` where it trusts no
    /// anchor yet.
    pub(crate) fn anchored_keys(&self, unit: &str) -> Result<Option<BTreeSet<String>>> {
        let Some(pinned) = self.anchor()? else {
            return Ok(None);
        };
        // Pinned for another unit than the database now says: nothing is certified.
        let Some(anchor) = pinned.strip_suffix(&format!("@{unit}")).map(str::to_string) else {
            return Ok(Some(BTreeSet::new()));
        };
        let rows: Vec<(String, String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT k.id, k.public, k.authority, a.certificate
                 FROM identity_anchors a JOIN identity_keys k ON k.id = a.key_id
                 WHERE a.unit_code = ?1 AND k.unit_code = ?1 AND a.anchor = ?2
                   AND k.authority IS NOT NULL",
            )?
            .query_map(params![unit, anchor], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(
            rows.into_iter()
                .filter(|(id, public, authority, cert)| {
                    grant::verify_certificate(
                        &anchor,
                        &KeyTerms {
                            unit_code: unit,
                            key_id: id,
                            public,
                            authority,
                        },
                        cert,
                    )
                })
                .map(|(id, ..)| id)
                .collect(),
        ))
    }
}
