//! The per-field merge that every replica (each laptop and the server) applies to every
//! change it receives, in the server's order, so that all replicas reach the same state.
//!
//! A change carries, for each field it edits, the version (clock value) it started from:
//! its `base`. An edit whose base is the version the replica holds follows it: it applies.
//! Otherwise the two edits were concurrent: if the values differ, both are kept as a
//! conflict for a person, the later clock value wins for now, and the record is flagged. A
//! delete that did not see every edit, or an edit of a deleted record, is a conflict too:
//! the record stays (interim), nothing is silently lost.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::versions::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
}

impl ChangeOp {
    pub fn parse(s: &str) -> Option<ChangeOp> {
        match s {
            "insert" => Some(ChangeOp::Insert),
            "update" => Some(ChangeOp::Update),
            "delete" => Some(ChangeOp::Delete),
            _ => None,
        }
    }
}

/// What a replica holds of one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    pub exists: bool,
    pub values: Map<String, Value>,
    /// field → clock value of its last write
    pub versions: Map<String, Value>,
    /// clock value of the delete, for a tombstone
    pub deleted: Option<String>,
}

/// A change as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming<'a> {
    pub entity: &'a str,
    pub entity_id: &'a str,
    pub hlc: &'a str,
    pub op: ChangeOp,
    pub data: &'a Map<String, Value>,
    pub base: Option<&'a Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    Field,
    DeleteVsEdit,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::Field => "field",
            ConflictKind::DeleteVsEdit => "delete_vs_edit",
        }
    }
}

/// Two concurrent writes of one field, both kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The same on every replica that sees these two writes.
    pub id: Uuid,
    pub field: String,
    pub kind: ConflictKind,
    pub local_value: Value,
    pub local_hlc: String,
    pub remote_value: Value,
    pub remote_hlc: String,
    pub remote_wins: bool,
}

/// What to do to the record. Names and values are borrowed from the record's state and
/// the change (a merge runs for every change a replica receives: copying every field of
/// each was much of its cost).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome<'a> {
    /// Fields to write, with their values, in field order.
    pub set: BTreeMap<&'a str, &'a Value>,
    /// The record's versions afterwards (see [`crate::versions::stored_from`]).
    pub versions: BTreeMap<&'a str, Version<'a>>,
    /// Remove the record (a tombstone stays in the versions).
    pub delete: Option<String>,
    /// A deleted record comes back (an edit concurrent with its delete).
    pub undelete: bool,
    pub conflicts: Vec<Conflict>,
}

/// Bookkeeping fields: concurrent writes of these are not a person's business; the later
/// clock value wins silently.
const BOOKKEEPING: &[&str] = &["updated_at"];

fn conflict_id(entity: &str, entity_id: &str, field: &str, a: &str, b: &str) -> Uuid {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{entity}\u{1f}{entity_id}\u{1f}{field}\u{1f}{lo}\u{1f}{hi}").as_bytes(),
    )
}

fn version(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// Merges one incoming change into a record's state.
pub fn merge<'a>(state: &'a RecordState, change: &Incoming<'a>) -> Outcome<'a> {
    let mut out = Outcome {
        versions: state
            .versions
            .iter()
            .map(|(f, v)| (f.as_str(), Version::of(v)))
            .collect(),
        ..Default::default()
    };
    let no_base = Map::new();
    let base = change.base.unwrap_or(&no_base);
    match change.op {
        ChangeOp::Delete => {
            if let Some(deleted) = &state.deleted {
                // Two laptops deleted the record: the later delete is the tombstone, in
                // whatever order the two arrive, so every replica keeps the same one.
                if change.hlc > deleted.as_str() {
                    out.delete = Some(change.hlc.to_string());
                }
                return out;
            }
            // Edits the deleter did not see: the delete does not win silently.
            let unseen: Vec<(&String, &Value)> = state
                .versions
                .iter()
                .filter(|(f, v)| version(base.get(*f)) != version(Some(v)))
                .collect();
            if unseen.is_empty() || !state.exists {
                out.delete = Some(change.hlc.to_string());
            } else {
                for (field, v) in unseen {
                    let local_hlc = version(Some(v)).unwrap_or_default().to_string();
                    out.conflicts.push(Conflict {
                        id: conflict_id(
                            change.entity,
                            change.entity_id,
                            field,
                            &local_hlc,
                            change.hlc,
                        ),
                        field: field.clone(),
                        kind: ConflictKind::DeleteVsEdit,
                        local_value: state.values.get(field).cloned().unwrap_or(Value::Null),
                        local_hlc,
                        remote_value: Value::Null,
                        remote_hlc: change.hlc.to_string(),
                        remote_wins: false,
                    });
                }
            }
        }
        ChangeOp::Insert | ChangeOp::Update => {
            if let Some(deleted) = &state.deleted {
                // An edit of a record deleted elsewhere: bring it back, and say so.
                out.undelete = true;
                out.conflicts.push(Conflict {
                    id: conflict_id(change.entity, change.entity_id, "*", deleted, change.hlc),
                    field: "*".into(),
                    kind: ConflictKind::DeleteVsEdit,
                    local_value: Value::Null,
                    local_hlc: deleted.clone(),
                    remote_value: Value::Object(change.data.clone()),
                    remote_hlc: change.hlc.to_string(),
                    remote_wins: true,
                });
            }
            for (field, value) in change.data {
                let current = version(state.versions.get(field));
                let follows = match current {
                    None => true,
                    Some(cur) => version(base.get(field)) == Some(cur),
                };
                if current == Some(change.hlc) {
                    continue; // this very write, seen before
                }
                if follows || out.undelete {
                    out.set.insert(field, value);
                    out.versions.insert(field, Version::Clock(change.hlc));
                    continue;
                }
                let cur = current.unwrap_or_default().to_string();
                let remote_wins = change.hlc > cur.as_str();
                let local_value = state.values.get(field).cloned().unwrap_or(Value::Null);
                if local_value != *value && !BOOKKEEPING.contains(&field.as_str()) {
                    out.conflicts.push(Conflict {
                        id: conflict_id(change.entity, change.entity_id, field, &cur, change.hlc),
                        field: field.clone(),
                        kind: ConflictKind::Field,
                        local_value,
                        local_hlc: cur.clone(),
                        remote_value: value.clone(),
                        remote_hlc: change.hlc.to_string(),
                        remote_wins,
                    });
                }
                if remote_wins {
                    out.set.insert(field, value);
                    out.versions.insert(field, Version::Clock(change.hlc));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// An outcome, owning what it borrowed.
    struct Applied {
        set: Map<String, Value>,
        versions: BTreeMap<String, String>,
        delete: Option<String>,
        undelete: bool,
        conflicts: Vec<Conflict>,
    }

    fn state(values: Value, versions: Value) -> RecordState {
        RecordState {
            exists: true,
            values: obj(values),
            versions: obj(versions),
            deleted: None,
        }
    }

    fn apply(
        s: &RecordState,
        op: ChangeOp,
        hlc: &str,
        data: Value,
        base: Option<Value>,
    ) -> Applied {
        let data = obj(data);
        let base = base.map(obj);
        let o = merge(
            s,
            &Incoming {
                entity: "tip",
                entity_id: "t1",
                hlc,
                op,
                data: &data,
                base: base.as_ref(),
            },
        );
        Applied {
            set: o
                .set
                .iter()
                .map(|(f, v)| (f.to_string(), (*v).clone()))
                .collect(),
            versions: o
                .versions
                .iter()
                .map(|(f, v)| {
                    let v = match v {
                        Version::Clock(h) => h.to_string(),
                        Version::Other(x) => x.to_string(),
                    };
                    (f.to_string(), v)
                })
                .collect(),
            delete: o.delete,
            undelete: o.undelete,
            conflicts: o.conflicts,
        }
    }

    #[test]
    fn an_edit_that_follows_applies() {
        let s = state(json!({"status": "received"}), json!({"status": "h1"}));
        let o = apply(
            &s,
            ChangeOp::Update,
            "h2",
            json!({"status": "verifying"}),
            Some(json!({"status": "h1"})),
        );
        assert_eq!(o.set, obj(json!({"status": "verifying"})));
        assert!(o.conflicts.is_empty());
        assert_eq!(o.versions["status"], "h2");
    }

    #[test]
    fn concurrent_edits_of_different_fields_merge() {
        let s = state(
            json!({"status": "verifying", "content": "a"}),
            json!({"status": "h2", "content": "h1"}),
        );
        let o = apply(
            &s,
            ChangeOp::Update,
            "h3",
            json!({"content": "b"}),
            Some(json!({"content": "h1"})),
        );
        assert_eq!(o.set, obj(json!({"content": "b"})));
        assert!(o.conflicts.is_empty());
    }

    #[test]
    fn concurrent_edits_of_one_field_conflict_later_clock_wins_for_now() {
        let s = state(json!({"content": "local"}), json!({"content": "h5"}));
        let later = apply(
            &s,
            ChangeOp::Update,
            "h6",
            json!({"content": "remote"}),
            Some(json!({"content": "h1"})),
        );
        assert_eq!(later.set, obj(json!({"content": "remote"})));
        assert_eq!(later.conflicts.len(), 1);
        assert!(later.conflicts[0].remote_wins);
        assert_eq!(later.conflicts[0].local_value, "local");
        let earlier = apply(
            &s,
            ChangeOp::Update,
            "h4",
            json!({"content": "remote"}),
            Some(json!({"content": "h1"})),
        );
        assert!(earlier.set.is_empty());
        assert!(!earlier.conflicts[0].remote_wins);
        // Both replicas name the conflict alike.
        assert_eq!(
            conflict_id("tip", "t1", "content", "h5", "h6"),
            conflict_id("tip", "t1", "content", "h6", "h5")
        );
    }

    #[test]
    fn concurrent_equal_values_are_no_conflict() {
        let s = state(json!({"status": "closed"}), json!({"status": "h5"}));
        let o = apply(
            &s,
            ChangeOp::Update,
            "h6",
            json!({"status": "closed"}),
            Some(json!({"status": "h1"})),
        );
        assert!(o.conflicts.is_empty());
    }

    #[test]
    fn delete_that_saw_everything_deletes() {
        let s = state(json!({"name": "A"}), json!({"name": "h1"}));
        let o = apply(
            &s,
            ChangeOp::Delete,
            "h2",
            json!({}),
            Some(json!({"name": "h1"})),
        );
        assert_eq!(o.delete.as_deref(), Some("h2"));
    }

    #[test]
    fn two_deletes_keep_the_later_tombstone_in_either_order() {
        let mut s = state(json!({}), json!({"name": "h1"}));
        s.exists = false;
        let base = Some(json!({"name": "h1"}));
        s.deleted = Some("h2".into());
        let later_second = apply(&s, ChangeOp::Delete, "h3", json!({}), base.clone());
        assert_eq!(later_second.delete.as_deref(), Some("h3"));
        s.deleted = Some("h3".into());
        let earlier_second = apply(&s, ChangeOp::Delete, "h2", json!({}), base);
        assert_eq!(earlier_second.delete, None, "h3 stays the tombstone");
    }

    #[test]
    fn delete_concurrent_with_an_edit_keeps_the_record() {
        let s = state(json!({"name": "B"}), json!({"name": "h3"}));
        let o = apply(
            &s,
            ChangeOp::Delete,
            "h4",
            json!({}),
            Some(json!({"name": "h1"})),
        );
        assert_eq!(o.delete, None);
        assert_eq!(o.conflicts[0].kind, ConflictKind::DeleteVsEdit);
    }

    #[test]
    fn edit_of_a_deleted_record_brings_it_back() {
        let mut s = state(json!({}), json!({"name": "h1"}));
        s.deleted = Some("h2".into());
        let o = apply(
            &s,
            ChangeOp::Update,
            "h3",
            json!({"name": "C"}),
            Some(json!({"name": "h1"})),
        );
        assert!(o.undelete);
        assert_eq!(o.set, obj(json!({"name": "C"})));
        assert_eq!(o.conflicts[0].kind, ConflictKind::DeleteVsEdit);
    }

    #[test]
    fn bookkeeping_fields_never_conflict() {
        let s = state(json!({"updated_at": "a"}), json!({"updated_at": "h5"}));
        let o = apply(
            &s,
            ChangeOp::Update,
            "h6",
            json!({"updated_at": "b"}),
            Some(json!({"updated_at": "h1"})),
        );
        assert!(o.conflicts.is_empty());
        assert_eq!(o.set, obj(json!({"updated_at": "b"})));
    }

    #[test]
    fn the_same_write_twice_changes_nothing() {
        let s = state(json!({"content": "x"}), json!({"content": "h2"}));
        let o = apply(
            &s,
            ChangeOp::Update,
            "h2",
            json!({"content": "x"}),
            Some(json!({"content": "h1"})),
        );
        assert!(o.set.is_empty() && o.conflicts.is_empty());
    }
}
