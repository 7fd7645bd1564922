//! The digest of a scope's records that a station and the server compare after a sync. Both
//! sides call this one function over (entity, id, versions JSON, deleted) rows sorted by
//! entity and id, so equal digests mean the same writes.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::catalog::is_identity;

/// (digest, number of records counted). `with_identity` counts reporter-identity records,
/// which a province never holds. The first version of the checksum: one hash over every
/// record's line in (entity, id) order, so a full scan of the scope each time. Kept for the
/// peers not yet updated; see [`Sums`] for the second.
pub fn digest(
    rows: impl IntoIterator<Item = (String, String, String, Option<String>)>,
    with_identity: bool,
) -> (String, u64) {
    let mut d = FullDigest::new(with_identity);
    for (entity_name, id, versions, deleted) in rows {
        d.add(&entity_name, &id, &versions, deleted.as_deref());
    }
    d.finish()
}

/// [`digest`] a record at a time, for a scan that reads records one by one (a province's
/// server may hold millions): records added in (entity, id) order.
pub struct FullDigest {
    hasher: Sha256,
    n: u64,
    line: Vec<u8>,
    with_identity: bool,
}

impl FullDigest {
    pub fn new(with_identity: bool) -> FullDigest {
        FullDigest {
            hasher: Sha256::new(),
            n: 0,
            line: Vec::with_capacity(512),
            with_identity,
        }
    }

    pub fn add(&mut self, entity: &str, id: &str, versions: &str, deleted: Option<&str>) {
        if !self.with_identity && is_identity(entity) {
            return;
        }
        record_line(entity, id, versions, deleted, &mut self.line);
        self.hasher.update(&self.line);
        self.n += 1;
    }

    /// (digest, number of records counted).
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.n)
    }
}

/// A record's line as both versions of the checksum hash it: entity, id, versions in their
/// canonical form and tombstone, separated by U+001F and ended by a newline.
pub fn record_line(
    entity: &str,
    id: &str,
    versions: &str,
    deleted: Option<&str>,
    line: &mut Vec<u8>,
) {
    framed_line(entity, id, deleted, line, |out| {
        canonical_into(versions, out)
    });
}

/// A record's line around its versions, which `versions` writes.
fn framed_line(
    entity: &str,
    id: &str,
    deleted: Option<&str>,
    line: &mut Vec<u8>,
    versions: impl FnOnce(&mut Vec<u8>),
) {
    line.clear();
    line.extend_from_slice(entity.as_bytes());
    line.push(0x1f);
    line.extend_from_slice(id.as_bytes());
    line.push(0x1f);
    versions(line);
    line.push(0x1f);
    line.extend_from_slice(deleted.unwrap_or_default().as_bytes());
    line.push(b'\n');
}

/// Versions that need no escape as their canonical JSON object: `{"field":"value",…}`.
fn plain_object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (field, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
}

/// The second version of the checksum, kept up to date as records are written instead of
/// computed by a scan: every record adds its line's 128-bit SipHash-1-3 (keys zero), as four
/// 32-bit lanes, to a running sum (an additive multiset hash, as PowerSync's per-bucket
/// checksums), and a write takes the record's old line out and puts the new one in. The hash
/// needs no strength against an attacker (a station could only fool its own comparison), only
/// to tell lines apart; SipHash does so at a fraction of SHA-256's cost, which every write
/// pays. Sums add: a scope's is the sum of its units' and
/// entities'. Lanes are summed in 64-bit integers without a modulus, so that the databases
/// can add to them in SQL (`a = a + ?`); they are reduced modulo 2^32 only to compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Records counted.
    pub n: i64,
    pub lanes: [i64; 4],
}

/// The prefix of a second-version checksum: a peer that answers without it computed the first.
pub const V2_PREFIX: &str = "v2:";

impl Sums {
    /// One record's share, from its versions as stored.
    pub fn of_record(entity: &str, id: &str, versions: &str, deleted: Option<&str>) -> Sums {
        let mut line = Vec::with_capacity(512);
        record_line(entity, id, versions, deleted, &mut line);
        Sums::of_line(&line)
    }

    /// One record's share, from its versions in hand ((field, clock value) in field order),
    /// without reading them from their stored text: the same as [`Sums::of_record`] gives
    /// for the text they are stored as. `None` when a field or value holds a character that
    /// JSON escapes (never a field name or a clock value this program writes): the caller
    /// then takes the stored text's way.
    pub fn of_versions(
        entity: &str,
        id: &str,
        versions: &[(&str, &str)],
        deleted: Option<&str>,
    ) -> Option<Sums> {
        let plain = |s: &str| !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        if !versions.iter().all(|(f, v)| plain(f) && plain(v)) {
            return None;
        }
        let mut line = Vec::with_capacity(512);
        framed_line(entity, id, deleted, &mut line, |out| {
            plain_object(versions.iter().copied(), out)
        });
        Some(Sums::of_line(&line))
    }

    /// A record's share from its versions in hand (field → clock value, in field order), or
    /// from `stored` (their text as stored) when they hold anything but clock values.
    pub fn share<'a>(
        entity: &str,
        id: &str,
        versions: impl Iterator<Item = (&'a str, Option<&'a str>)>,
        stored: &str,
        deleted: Option<&str>,
    ) -> Sums {
        let pairs: Option<Vec<(&str, &str)>> = versions.map(|(f, v)| v.map(|v| (f, v))).collect();
        pairs
            .and_then(|p| Sums::of_versions(entity, id, &p, deleted))
            .unwrap_or_else(|| Sums::of_record(entity, id, stored, deleted))
    }

    /// [`Sums::share`] of versions as read ([`crate::versions::parse`]).
    pub fn share_of_map(
        entity: &str,
        id: &str,
        versions: &serde_json::Map<String, serde_json::Value>,
        stored: &str,
        deleted: Option<&str>,
    ) -> Sums {
        Sums::share(
            entity,
            id,
            versions.iter().map(|(f, v)| (f.as_str(), v.as_str())),
            stored,
            deleted,
        )
    }

    /// [`Sums::share`] of a merge's outcome.
    pub fn share_of_outcome(
        entity: &str,
        id: &str,
        versions: &BTreeMap<&str, crate::versions::Version<'_>>,
        stored: &str,
        deleted: Option<&str>,
    ) -> Sums {
        Sums::share(
            entity,
            id,
            versions.iter().map(|(f, v)| {
                (
                    *f,
                    match v {
                        crate::versions::Version::Clock(h) => Some(*h),
                        crate::versions::Version::Other(_) => None,
                    },
                )
            }),
            stored,
            deleted,
        )
    }

    fn of_line(line: &[u8]) -> Sums {
        use siphasher::sip128::Hasher128;
        let mut hasher = siphasher::sip128::SipHasher13::new_with_keys(0, 0);
        std::hash::Hasher::write(&mut hasher, line);
        let hash = hasher.finish128().as_bytes();
        let mut lanes = [0i64; 4];
        for (lane, bytes) in lanes.iter_mut().zip(hash.chunks_exact(4)) {
            *lane = i64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
        }
        Sums { n: 1, lanes }
    }

    pub fn add(&mut self, other: &Sums) {
        self.n += other.n;
        for (a, b) in self.lanes.iter_mut().zip(other.lanes) {
            *a += b;
        }
    }

    pub fn sub(&mut self, other: &Sums) {
        self.n -= other.n;
        for (a, b) in self.lanes.iter_mut().zip(other.lanes) {
            *a -= b;
        }
    }

    /// A write's effect: the record's old line out (when it had one), its new line in.
    pub fn change(
        &mut self,
        entity: &str,
        id: &str,
        old: Option<(&str, Option<&str>)>,
        new: (&str, Option<&str>),
    ) {
        if let Some((versions, deleted)) = old {
            self.sub(&Sums::of_record(entity, id, versions, deleted));
        }
        self.add(&Sums::of_record(entity, id, new.0, new.1));
    }

    pub fn is_zero(&self) -> bool {
        *self == Sums::default()
    }

    /// The checksum as it travels: `v2:` and the four lanes modulo 2^32, and the count.
    pub fn checksum(&self) -> (String, u64) {
        let mut text = String::with_capacity(V2_PREFIX.len() + 32);
        text.push_str(V2_PREFIX);
        for lane in self.lanes {
            text.push_str(&format!("{:08x}", lane.rem_euclid(1 << 32)));
        }
        (text, self.n.max(0) as u64)
    }
}

/// The second version computed from scratch, by a scan: what the running sums must equal
/// (`doctor`, the tests, and filling the sums the first time).
pub fn sums_of(
    rows: impl IntoIterator<Item = (String, String, String, Option<String>)>,
    with_identity: bool,
) -> Sums {
    let mut sums = Sums::default();
    let mut line = Vec::with_capacity(512);
    for (entity_name, id, versions, deleted) in rows {
        if !with_identity && is_identity(&entity_name) {
            continue;
        }
        record_line(&entity_name, &id, &versions, deleted.as_deref(), &mut line);
        sums.add(&Sums::of_line(&line));
    }
    sums
}

/// Writes a versions object in one canonical form, whichever backend stored it and however
/// it spaced it: serde_json's compact rendering, keys in order. Versions are objects of
/// plain strings (field → clock value), or on a station the same grouped by clock value
/// ([`crate::versions`]); those are written out directly, which is what serde_json would
/// write for strings that needed no escape to read. Anything else goes through serde_json;
/// text that is not JSON counts as it is.
fn canonical_into(versions: &str, out: &mut Vec<u8>) {
    let fields = crate::versions::ungroup(versions)
        .or_else(|| serde_json::from_str::<BTreeMap<&str, &str>>(versions).ok());
    if let Some(fields) = fields {
        plain_object(fields.iter().map(|(f, v)| (*f, *v)), out);
        return;
    }
    match serde_json::from_str::<serde_json::Value>(versions) {
        Ok(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Err(_) => out.extend_from_slice(versions.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the digest hashed before the direct rendering: every versions text parsed and
    /// written again by serde_json.
    fn through_serde_json(versions: &str) -> Vec<u8> {
        serde_json::from_str::<serde_json::Value>(versions)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| versions.to_string())
            .into_bytes()
    }

    #[test]
    fn the_direct_rendering_is_serde_jsons() {
        for text in [
            r#"{"status":"0000018f3a1b2c3d-0001-ab12","content":"0000018f3a1b2c3d-0000-ab12"}"#,
            r#"{"b": "2", "a": "1"}"#,
            "{ \"a\" :\n \"1\" }",
            r#"{}"#,
            r#"{"tên":"giá trị","a/b":"x"}"#,
            r#"{"a":"quote \" inside","b":"back\\slash"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":null,"b":"1"}"#,
            r#"{"a":{"nested":"1"}}"#,
            r#"not json"#,
            r#"["a","b"]"#,
        ] {
            let mut direct = Vec::new();
            canonical_into(text, &mut direct);
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(through_serde_json(text)).unwrap(),
                "{text}"
            );
        }
    }

    /// A station's grouped versions digest as the server's object of the same versions.
    #[test]
    fn grouped_versions_digest_as_their_object() {
        for object in [
            serde_json::json!({}),
            serde_json::json!({"content": "h1", "status": "h2", "address": "h1"}),
        ] {
            let object = object.as_object().unwrap().clone();
            let grouped = crate::versions::grouped(&object).unwrap();
            let mut a = Vec::new();
            canonical_into(&grouped, &mut a);
            assert_eq!(
                String::from_utf8(a).unwrap(),
                String::from_utf8(through_serde_json(
                    &serde_json::Value::Object(object).to_string()
                ))
                .unwrap(),
                "{grouped}"
            );
        }
    }

    #[test]
    fn equal_writes_give_equal_digests_and_any_difference_shows() {
        let row = |v: &str, d: Option<&str>| {
            (
                "tip".to_string(),
                "t1".to_string(),
                v.to_string(),
                d.map(str::to_string),
            )
        };
        let a = digest([row(r#"{"a":"1","b":"2"}"#, None)], true);
        let spaced = digest([row(r#"{"b": "2", "a": "1"}"#, None)], true);
        assert_eq!(a, spaced);
        assert_ne!(a, digest([row(r#"{"a":"1","b":"3"}"#, None)], true));
        assert_ne!(a, digest([row(r#"{"a":"1","b":"2"}"#, Some("h"))], true));
        let reporter = (
            "tip_reporter".to_string(),
            "t1".to_string(),
            "{}".to_string(),
            None,
        );
        assert_eq!(digest([reporter.clone()], false).1, 0);
        assert_eq!(digest([reporter], true).1, 1);
    }

    fn rows(
        list: &[(&str, &str, &str, Option<&str>)],
    ) -> Vec<(String, String, String, Option<String>)> {
        list.iter()
            .map(|(e, i, v, d)| {
                (
                    e.to_string(),
                    i.to_string(),
                    v.to_string(),
                    d.map(str::to_string),
                )
            })
            .collect()
    }

    #[test]
    fn running_sums_equal_a_scan_whatever_the_order_of_writes() {
        // Three records written, rewritten, deleted and undeleted, in one order; the sums kept
        // along the way equal the scan of where they ended, which ignores order.
        let mut sums = Sums::default();
        sums.change("tip", "t1", None, (r#"{"a":"1"}"#, None));
        sums.change("tip", "t2", None, (r#"{"a":"1"}"#, None));
        sums.change("tip_reporter", "t1", None, (r#"{"name":"1"}"#, None));
        sums.change(
            "tip",
            "t1",
            Some((r#"{"a":"1"}"#, None)),
            (r#"{"a": "2", "b":"2"}"#, None),
        );
        sums.change(
            "tip",
            "t2",
            Some((r#"{"a":"1"}"#, None)),
            (r#"{"a":"1"}"#, Some("h3")),
        );
        sums.change(
            "tip",
            "t2",
            Some((r#"{"a":"1"}"#, Some("h3"))),
            (r#"{"a":"4"}"#, None),
        );
        let end = rows(&[
            ("tip_reporter", "t1", r#"{"name":"1"}"#, None),
            ("tip", "t2", r#"{"a":"4"}"#, None),
            ("tip", "t1", r#"{"b":"2","a":"2"}"#, None),
        ]);
        assert_eq!(sums, sums_of(end.clone(), true));
        assert_eq!(sums.n, 3);
        let mut reversed = end.clone();
        reversed.reverse();
        assert_eq!(sums_of(reversed, true).checksum(), sums.checksum());
        // A province leaves reporter identity out.
        let mut without = sums;
        without.sub(&Sums::of_record(
            "tip_reporter",
            "t1",
            r#"{"name":"1"}"#,
            None,
        ));
        assert_eq!(sums_of(end, false), without);
    }

    #[test]
    fn any_difference_shows_in_the_running_sums() {
        let one = |v: &str, d: Option<&str>| sums_of(rows(&[("tip", "t1", v, d)]), true).checksum();
        let base = one(r#"{"a":"1","b":"2"}"#, None);
        assert!(base.0.starts_with(V2_PREFIX) && base.0.len() == V2_PREFIX.len() + 32);
        assert_eq!(base, one(r#"{"b": "2", "a": "1"}"#, None));
        assert_ne!(base, one(r#"{"a":"1","b":"3"}"#, None));
        assert_ne!(base, one(r#"{"a":"1","b":"2"}"#, Some("h")));
        assert_ne!(
            base.0,
            sums_of(rows(&[("tip", "t2", r#"{"a":"1","b":"2"}"#, None)]), true)
                .checksum()
                .0
        );
        // A record counted twice is not the same as once, nor as none (no lane cancels).
        let twice = sums_of(
            rows(&[("tip", "t1", "{}", None), ("tip", "t1", "{}", None)]),
            true,
        );
        assert_ne!(twice.checksum().0, Sums::default().checksum().0);
        // Lanes far below zero or past 2^32 compare by their value modulo 2^32.
        let low = Sums {
            n: 0,
            lanes: [-1, 1 << 32, (1 << 33) + 5, -(1 << 40)],
        };
        assert_eq!(low.checksum().0, "v2:ffffffff000000000000000500000000");
    }

    #[test]
    fn a_share_from_versions_in_hand_is_the_share_of_their_text() {
        let object = serde_json::json!({"content": "000001764000001-00000000-n1",
            "status": "000001764000000-00000000-n1", "address": "000001764000001-00000000-n1"});
        let map = object.as_object().unwrap();
        let grouped = crate::versions::grouped(map).unwrap();
        for deleted in [None, Some("000001764000009-00000000-n1")] {
            for text in [grouped.as_str(), &object.to_string()] {
                let from_text = Sums::of_record("tip", "t1", text, deleted);
                assert_eq!(
                    Sums::share_of_map("tip", "t1", map, text, deleted),
                    from_text
                );
                let parsed = crate::versions::parse(text);
                let outcome: BTreeMap<&str, crate::versions::Version<'_>> = parsed
                    .iter()
                    .map(|(f, v)| (f.as_str(), crate::versions::Version::of(v)))
                    .collect();
                assert_eq!(
                    Sums::share_of_outcome("tip", "t1", &outcome, text, deleted),
                    from_text
                );
            }
        }
        // What JSON escapes, or a version that is not a clock value, takes the text's way.
        assert_eq!(Sums::of_versions("tip", "t1", &[("a", "x\"y")], None), None);
        let odd = serde_json::json!({"a": "x\"y", "b": 5});
        let odd_map = odd.as_object().unwrap();
        assert_eq!(
            Sums::share_of_map("tip", "t1", odd_map, &odd.to_string(), None),
            Sums::of_record("tip", "t1", &odd.to_string(), None)
        );
    }
}
