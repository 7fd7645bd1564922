//! The digest of a scope's records that a station and the server compare after a sync. Both
//! sides call this one function over (entity, id, versions JSON, deleted) rows sorted by
//! entity and id, so equal digests mean the same writes.

use std::collections::BTreeMap;

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
    let mut line = Vec::with_capacity(512);
    for (entity_name, id, versions, deleted) in rows {
        if !with_identity && is_identity(&entity_name) {
            continue;
        }
        line.clear();
        line.extend_from_slice(entity_name.as_bytes());
        line.push(0x1f);
        line.extend_from_slice(id.as_bytes());
        line.push(0x1f);
        canonical_into(&versions, &mut line);
        line.push(0x1f);
        line.extend_from_slice(deleted.unwrap_or_default().as_bytes());
        line.push(b'\n');
        hasher.update(&line);
        n += 1;
    }
    (hex::encode(hasher.finalize()), n)
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
        out.push(b'{');
        for (i, (field, value)) in fields.iter().enumerate() {
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
}
