//! The synchronised entities: their names on the wire, their tables, their key and the
//! fields that may travel. Stations and the server refuse anything not listed here, which
//! is also what keeps field names from a peer out of SQL.

/// One synchronised entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityDef {
    pub name: &'static str,
    pub table: &'static str,
    pub key: &'static str,
    pub fields: &'static [&'static str],
    /// Carries a reporter's identity: travels only on need to know.
    pub identity: bool,
    /// A superior unit's station (the province's) may write it in a subordinate unit's
    /// scope. Only the follow-up of tips: never accounts, keys, grants, reporters, files or
    /// rosters, which are the commune's own (the server refuses the rest, see `SECURITY.md`).
    pub superior_writes: bool,
}

pub const ENTITIES: &[EntityDef] = &[
    EntityDef {
        name: "tip",
        table: "tips",
        key: "id",
        fields: &[
            "unit_code",
            "register_no",
            "register_year",
            "register_device",
            "register_seq",
            "received_at",
            "category",
            "channel",
            "status",
            "urgency",
            "content",
            "hamlet_id",
            "address",
            "latitude",
            "longitude",
            "received_by",
            "assigned_to",
            "created_at",
            "updated_at",
        ],
        identity: false,
        superior_writes: true,
    },
    EntityDef {
        name: "tip_reporter",
        table: "tip_reporters",
        key: "tip_id",
        fields: &["name", "phone", "id_number", "address", "secret"],
        identity: true,
        superior_writes: false,
    },
    EntityDef {
        name: "tip_link",
        table: "tip_links",
        key: "id",
        fields: &["tip_id", "related_id", "relation", "created_at"],
        identity: false,
        superior_writes: true,
    },
    EntityDef {
        name: "attachment",
        table: "attachments",
        key: "id",
        fields: &[
            "tip_id",
            "file_name",
            "media_type",
            "size_bytes",
            "sha256",
            "created_at",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "tip_action",
        table: "tip_actions",
        key: "id",
        fields: &[
            "tip_id",
            "at",
            "kind",
            "from_status",
            "to_status",
            "note",
            "officer_id",
        ],
        identity: false,
        superior_writes: true,
    },
    EntityDef {
        name: "hamlet",
        table: "hamlets",
        key: "id",
        fields: &[
            "unit_code",
            "kind",
            "name",
            "name_key",
            "households",
            "population",
            "remote",
            "area_officer_id",
            "created_at",
            "updated_at",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "roster_person",
        table: "roster_people",
        key: "id",
        fields: &[
            "unit_code",
            "hamlet_id",
            "full_name",
            "name_key",
            "role",
            "phone",
            "note",
            "created_at",
            "updated_at",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "online_group",
        table: "online_groups",
        key: "id",
        fields: &[
            "hamlet_id",
            "platform",
            "name",
            "url",
            "admin_person_id",
            "created_at",
            "updated_at",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "group_member_count",
        table: "group_member_counts",
        key: "id",
        fields: &["group_id", "counted_on", "members"],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "channel",
        table: "channels",
        key: "id",
        fields: &[
            "unit_code",
            "platform",
            "name",
            "url",
            "created_at",
            "updated_at",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "channel_metric",
        table: "channel_metrics",
        key: "id",
        fields: &[
            "channel_id",
            "recorded_on",
            "followers",
            "posts",
            "views",
            "questions_answered",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "officer",
        table: "officers",
        key: "id",
        fields: &[
            "unit_code",
            "full_name",
            "rank",
            "phone",
            "active",
            "username",
            "role",
            "created_at",
            "updated_at",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "identity_key",
        table: "identity_keys",
        key: "id",
        fields: &[
            "unit_code",
            "public",
            "created_at",
            "retired",
            "authority",
            "endorsed_by",
            "endorsement",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "officer_key",
        table: "officer_keys",
        key: "id",
        fields: &[
            "unit_code",
            "officer_id",
            "station_id",
            "public",
            "created_at",
            "signing",
        ],
        identity: false,
        superior_writes: false,
    },
    EntityDef {
        name: "identity_grant",
        table: "identity_grants",
        key: "id",
        fields: &[
            "unit_code",
            "key_id",
            "officer_key_id",
            "sealed",
            "created_at",
            "granted_by",
            "signature",
            "granter_key",
            "granter_signature",
        ],
        identity: false,
        superior_writes: false,
    },
];

pub fn entity(name: &str) -> Option<&'static EntityDef> {
    ENTITIES.iter().find(|e| e.name == name)
}

/// Whether a superior unit's station may write records of this entity in a subordinate
/// unit's scope (see [`EntityDef::superior_writes`]).
pub fn superior_writes(name: &str) -> bool {
    entity(name).is_some_and(|d| d.superior_writes)
}

/// Whether records of this entity carry reporter identity (which stays in its commune).
pub fn is_identity(name: &str) -> bool {
    entity(name).is_some_and(|d| d.identity)
}

impl EntityDef {
    pub fn has_field(&self, field: &str) -> bool {
        self.fields.contains(&field)
    }
}

/// Checks a change against the catalogue: a synchronised entity, a known operation, and only
/// the fields that may travel. The message says what is wrong (Vietnamese, lower case, to be
/// placed in a sentence). Stations and the server both call this one check.
pub fn check_change(
    entity_name: &str,
    op: &str,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Result<(&'static EntityDef, crate::merge::ChangeOp), String> {
    let def = entity(entity_name)
        .ok_or_else(|| format!("loại bản ghi \"{entity_name}\" không được đồng bộ"))?;
    let op = crate::merge::ChangeOp::parse(op)
        .ok_or_else(|| format!("thao tác \"{op}\" không hợp lệ"))?;
    if let Some(bad) = data.keys().find(|k| !def.has_field(k)) {
        return Err(format!(
            "trường \"{bad}\" không thuộc bản ghi \"{entity_name}\""
        ));
    }
    Ok((def, op))
}
