//! How a record's versions (field → the clock value of its last write) are written down.
//! On the wire and on the server they are a JSON object. A station stores them grouped by
//! clock value, `[["HLC", "field", …], …]`: the fields written together share one clock
//! value (every field of a record inserted, say), so a tip's versions take about 300 bytes
//! against 1,000 as an object, and a station writes that much less on every sync.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One field's version as found: a clock value (what is always written), or any other JSON
/// found stored, kept as it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Version<'a> {
    Clock(&'a str),
    Other(&'a Value),
}

impl<'a> Version<'a> {
    pub fn of(value: &'a Value) -> Version<'a> {
        match value {
            Value::String(s) => Version::Clock(s),
            other => Version::Other(other),
        }
    }

    fn to_value(self) -> Value {
        match self {
            Version::Clock(s) => Value::String(s.to_string()),
            Version::Other(v) => v.clone(),
        }
    }
}

/// The grouped form of `versions`, or None where it cannot stand for them exactly: a
/// version that is not a string, or a string that JSON must escape (neither is ever
/// written; such versions are kept as an object).
pub fn grouped(versions: &Map<String, Value>) -> Option<String> {
    grouped_from(versions.iter().map(|(f, v)| (f.as_str(), Version::of(v))))
}

/// [`grouped`], from (field, version) pairs in field order.
fn grouped_from<'v>(versions: impl Iterator<Item = (&'v str, Version<'v>)>) -> Option<String> {
    let plain = |s: &str| !s.chars().any(|c| c == '"' || c == '\\' || c.is_control());
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut n = 0;
    for (field, version) in versions {
        let hlc = match version {
            Version::Clock(h) if plain(h) => h,
            _ => return None,
        };
        if !plain(field) {
            return None;
        }
        groups.entry(hlc).or_default().push(field);
        n += 1;
    }
    let mut out = String::with_capacity(64 + n * 16);
    out.push('[');
    for (i, (hlc, fields)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        out.push_str(hlc);
        out.push('"');
        for f in fields {
            out.push_str(",\"");
            out.push_str(f);
            out.push('"');
        }
        out.push(']');
    }
    out.push(']');
    Some(out)
}

/// The field → clock value pairs of a text in the grouped form, borrowed from it; None for
/// any other text (an object among them).
pub fn ungroup(text: &str) -> Option<BTreeMap<&str, &str>> {
    if !text.starts_with('[') {
        return None;
    }
    let groups: Vec<Vec<&str>> = serde_json::from_str(text).ok()?;
    let mut fields = BTreeMap::new();
    for group in &groups {
        let (hlc, names) = group.split_first()?;
        for name in names {
            fields.insert(*name, *hlc);
        }
    }
    Some(fields)
}

/// The versions in a stored text, in either form, as an object (empty for text that is
/// neither).
pub fn parse(text: &str) -> Map<String, Value> {
    if let Some(fields) = ungroup(text) {
        return fields
            .into_iter()
            .map(|(f, h)| (f.to_string(), Value::String(h.to_string())))
            .collect();
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The text a station stores for `versions`: grouped where it can be.
pub fn stored(versions: &Map<String, Value>) -> String {
    stored_pairs(versions.iter().map(|(f, v)| (f.as_str(), Version::of(v))))
}

/// [`stored`], for versions as a merge hands them over (field → version, in field order).
pub fn stored_from(versions: &BTreeMap<&str, Version<'_>>) -> String {
    stored_pairs(versions.iter().map(|(f, v)| (*f, *v)))
}

/// [`stored`], from (field, version) pairs in field order: grouped, or else an object.
fn stored_pairs<'v>(pairs: impl Iterator<Item = (&'v str, Version<'v>)> + Clone) -> String {
    grouped_from(pairs.clone()).unwrap_or_else(|| {
        let object: Map<String, Value> =
            pairs.map(|(f, v)| (f.to_string(), v.to_value())).collect();
        Value::Object(object).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_grouped_form_reads_back_as_the_same_versions() {
        for v in [
            serde_json::json!({}),
            serde_json::json!({"content": "h1", "status": "h1", "address": "h1"}),
            serde_json::json!({"content": "h2", "status": "h1", "address": "h1", "tên": "h3"}),
        ] {
            let v = map(v);
            let text = grouped(&v).unwrap();
            assert!(text.starts_with('['), "{text}");
            assert_eq!(parse(&text), v, "{text}");
            assert_eq!(parse(&stored(&v)), v);
            // And it is JSON: what serde_json makes of it is what was written.
            let rows: Vec<Vec<String>> = serde_json::from_str(&text).unwrap();
            assert_eq!(rows.iter().map(|r| r.len() - 1).sum::<usize>(), v.len());
        }
        let tip = map(serde_json::json!({
            "address": "001795887800504-00000003-9cdcf6062417",
            "category": "001795887800504-00000003-9cdcf6062417",
            "content": "001795887800504-00000003-9cdcf6062417",
            "status": "001795887800504-00000009-9cdcf6062417",
        }));
        assert_eq!(
            grouped(&tip).unwrap(),
            r#"[["001795887800504-00000003-9cdcf6062417","address","category","content"],["001795887800504-00000009-9cdcf6062417","status"]]"#
        );
    }

    /// Versions handed over by a merge are written as the same versions in a map would be.
    #[test]
    fn versions_from_a_merge_are_stored_alike() {
        for v in [
            serde_json::json!({}),
            serde_json::json!({"content": "h2", "status": "h1", "address": "h1", "tên": "h3"}),
            serde_json::json!({"a": "quote \" inside", "b": "h1"}),
            serde_json::json!({"a": null, "b": "h1"}),
            serde_json::json!({"a": {"nested": "h1"}}),
        ] {
            let v = map(v);
            let from: BTreeMap<&str, Version<'_>> = v
                .iter()
                .map(|(f, x)| (f.as_str(), Version::of(x)))
                .collect();
            assert_eq!(stored_from(&from), stored(&v), "{v:?}");
        }
    }

    #[test]
    fn versions_it_cannot_stand_for_stay_an_object() {
        for v in [
            serde_json::json!({"a": "quote \" inside"}),
            serde_json::json!({"a\\b": "h1"}),
            serde_json::json!({"a": null}),
            serde_json::json!({"a": {"nested": "h1"}}),
        ] {
            let v = map(v);
            assert_eq!(grouped(&v), None, "{v:?}");
            let text = stored(&v);
            assert!(text.starts_with('{'), "{text}");
            assert_eq!(parse(&text), v);
        }
    }

    #[test]
    fn the_object_form_is_still_read() {
        let text = r#"{"content":"h1","status":"h2"}"#;
        assert_eq!(ungroup(text), None);
        assert_eq!(
            parse(text),
            map(serde_json::json!({"content": "h1", "status": "h2"}))
        );
        assert!(parse("not json").is_empty());
        assert!(parse(r#"["a","b"]"#).is_empty());
    }
}
