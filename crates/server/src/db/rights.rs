//! What a station may write, beyond its scope: the rules a pushed change must pass before it
//! is merged, the same for both backends. A province-level station writes in its communes'
//! scope only the follow-up of tips (never accounts, keys, grants, reporters, files or
//! rosters); a grant of an identity key must carry the signature of the key's grant
//! authority, which only a holder of the key can make; keys are never edited in place.

use serde_json::{Map, Value};

use binhyen_domain::catalog::EntityDef;
use binhyen_domain::grant::{self, GrantTerms};
use binhyen_domain::merge::ChangeOp;
use binhyen_protocol::wire::WireChange;

use super::{refuse, Code, DbError, DbResult, StationRow, StoredRecord, Tx};

/// Checks `c` (already in the station's scope) against the rights above. `existing` is the
/// record as the server holds it.
pub(crate) fn check(
    tx: &mut dyn Tx,
    station: &StationRow,
    def: &EntityDef,
    op: ChangeOp,
    c: &WireChange,
    existing: Option<&StoredRecord>,
) -> DbResult<()> {
    if c.unit_code != station.unit_code && !def.superior_writes {
        return Err(refuse(
            Code::OutOfScope,
            format!(
                "trạm của đơn vị {} không được ghi \"{}\" của đơn vị cấp dưới {}: tài khoản, khóa, danh tính người tố giác, tệp đính kèm và danh sách thôn là của chính đơn vị đó",
                station.unit_code, def.name, c.unit_code
            ),
        ));
    }
    let held: Option<Map<String, Value>> = existing.map(|(_, vals, _, _)| {
        serde_json::from_str::<Map<String, Value>>(vals).unwrap_or_default()
    });
    if op == ChangeOp::Delete && def.name == "identity_key" {
        return Err(unauthorised(
            "khóa danh tính không được xóa (chỉ thôi dùng)",
        ));
    }
    if def.name == "identity_key"
        && held
            .as_ref()
            .and_then(|h| h.get("retired"))
            .is_some_and(|r| r.as_i64() == Some(1) || r.as_bool() == Some(true))
        && c.data
            .get("retired")
            .is_some_and(|r| r.as_i64() == Some(0) || r.as_bool() == Some(false))
    {
        return Err(unauthorised(
            "khóa danh tính đã thôi dùng thì không được dùng lại",
        ));
    }
    match def.name {
        "identity_grant" => check_grant(tx, op, c, held.is_some()),
        "identity_key" => {
            unchanged(
                c,
                held.as_ref(),
                &[
                    "unit_code",
                    "public",
                    "created_at",
                    "authority",
                    "endorsed_by",
                    "endorsement",
                ],
            )?;
            check_endorsement(tx, c, held.as_ref())?;
            if held.is_none() {
                anchor_first_key(tx, c)?;
            }
            Ok(())
        }
        "officer_key" => unchanged(
            c,
            held.as_ref(),
            &[
                "unit_code",
                "officer_id",
                "station_id",
                "public",
                "created_at",
                "signing",
            ],
        ),
        _ => Ok(()),
    }
}

/// A unit's first identity key to reach the server is anchored, with its public half and
/// authority as pushed (see `crate::anchor`); a unit that has anchored keys anchors more only
/// by endorsement.
fn anchor_first_key(tx: &mut dyn Tx, c: &WireChange) -> DbResult<()> {
    let setting = crate::anchor::first_keys_setting(&c.unit_code);
    let stored = tx.meta_init(&setting, "[]")?;
    // Anything but an empty list (a value this version cannot read included) means the
    // unit has its first key already.
    let anchored: Option<Vec<crate::anchor::Anchored>> = serde_json::from_str(&stored).ok();
    if anchored.is_none_or(|a| !a.is_empty()) {
        return Ok(());
    }
    if let (Some(public), Some(authority)) = (text(&c.data, "public"), text(&c.data, "authority")) {
        let first = [(c.entity_id.as_str(), public, authority)];
        tx.meta_set(&setting, &serde_json::to_string(&first).unwrap_or_default())?;
    }
    Ok(())
}

/// An identity key's endorsement by another key of its unit must be that key's authority's
/// signature over it: a key nobody who held the other key endorsed cannot claim to be.
fn check_endorsement(
    tx: &mut dyn Tx,
    c: &WireChange,
    held: Option<&Map<String, Value>>,
) -> DbResult<()> {
    let field = |f: &str| {
        text(&c.data, f)
            .or_else(|| held.and_then(|h| text(h, f)))
            .map(str::to_string)
    };
    let Some(endorsement) = text(&c.data, "endorsement") else {
        return Ok(());
    };
    let (Some(by), Some(public), Some(authority)) =
        (field("endorsed_by"), field("public"), field("authority"))
    else {
        return Err(unauthorised(
            "lời xác nhận khóa danh tính thiếu khóa xác nhận hoặc khóa ký",
        ));
    };
    let endorser = tx
        .record("identity_key", &by)?
        .filter(|(unit, _, _, deleted)| *unit == c.unit_code && deleted.is_none())
        .and_then(|(_, vals, _, _)| serde_json::from_str::<Map<String, Value>>(&vals).ok());
    let terms = grant::KeyTerms {
        unit_code: &c.unit_code,
        key_id: &c.entity_id,
        public: &public,
        authority: &authority,
    };
    match endorser.as_ref().and_then(|e| text(e, "authority")) {
        Some(a) if grant::verify_endorsement(a, &terms, endorsement) => Ok(()),
        _ => Err(unauthorised(
            "lời xác nhận khóa danh tính không phải của một khóa khác của đơn vị; máy chủ không nhận",
        )),
    }
}

fn unauthorised(message: impl Into<String>) -> DbError {
    refuse(Code::UnauthorisedGrant, message)
}

/// A key's record is written once: of a record the server holds, a value of `fixed` fields
/// never changes once given (an identity key's authority may still be given to a key made
/// before signed grants, which had none).
fn unchanged(c: &WireChange, held: Option<&Map<String, Value>>, fixed: &[&str]) -> DbResult<()> {
    let Some(held) = held else {
        return Ok(());
    };
    for (field, value) in &c.data {
        let before = held.get(field).filter(|v| !v.is_null());
        if fixed.contains(&field.as_str()) && before.is_some_and(|b| b != value) {
            return Err(unauthorised(format!(
                "trường \"{field}\" của khóa \"{}\" đã ghi thì không được sửa",
                c.entity_id
            )));
        }
    }
    Ok(())
}

fn text<'a>(m: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    m.get(field).and_then(Value::as_str)
}

/// A grant is written once, by a holder of the key it grants, and never removed: its two
/// signatures are checked, the authority's against the key's record and the granter's
/// against the granter's officer key (over the officer key it is sealed to, and what is
/// sealed).
fn check_grant(tx: &mut dyn Tx, op: ChangeOp, c: &WireChange, held: bool) -> DbResult<()> {
    if op == ChangeOp::Delete {
        return Err(unauthorised("một lần trao khóa danh tính không được xóa"));
    }
    if held {
        return Err(unauthorised(
            "một lần trao khóa danh tính đã ghi thì không được ghi lại hay sửa",
        ));
    }
    let d = &c.data;
    let text_of = |f: &str| text(d, f);
    let (
        Some(key_id),
        Some(officer_key_id),
        Some(sealed),
        Some(created_at),
        Some(granted_by),
        Some(granter_key),
        Some(signature),
        Some(granter_signature),
    ) = (
        text_of("key_id"),
        text_of("officer_key_id"),
        text_of("sealed"),
        text_of("created_at"),
        text_of("granted_by"),
        text_of("granter_key"),
        text_of("signature"),
        text_of("granter_signature"),
    )
    else {
        return Err(unauthorised(
            "lần trao khóa danh tính này không có đủ chữ ký của người giữ khóa và người trao; máy chủ không nhận",
        ));
    };
    let record =
        |tx: &mut dyn Tx, entity: &str, id: &str| -> DbResult<Option<Map<String, Value>>> {
            Ok(tx
                .record(entity, id)?
                .filter(|(unit, _, _, deleted)| *unit == c.unit_code && deleted.is_none())
                .map(|(_, vals, _, _)| serde_json::from_str(&vals).unwrap_or_default()))
        };
    let key = record(tx, "identity_key", key_id)?;
    let officer_key = record(tx, "officer_key", officer_key_id)?;
    let granter = record(tx, "officer_key", granter_key)?;
    let (Some(key), Some(officer_key), Some(granter)) = (key, officer_key, granter) else {
        return Err(unauthorised(
            "lần trao khóa danh tính nhắc đến khóa không có trong đơn vị",
        ));
    };
    let (Some(authority), Some(public), Some(signing)) = (
        text(&key, "authority"),
        text(&officer_key, "public"),
        text(&granter, "signing"),
    ) else {
        return Err(unauthorised(
            "thiếu khóa ký để kiểm tra lần trao khóa danh tính này",
        ));
    };
    let terms = GrantTerms {
        unit_code: &c.unit_code,
        key_id,
        officer_key_id,
        officer_key_public: public,
        officer_id: text(&officer_key, "officer_id"),
        sealed,
        granted_by,
        granter_key,
        created_at,
    };
    if !grant::verify(authority, &terms, signature)
        || !grant::verify(signing, &terms, granter_signature)
    {
        return Err(unauthorised(
            "chữ ký của lần trao khóa danh tính không hợp lệ; máy chủ không nhận",
        ));
    }
    Ok(())
}
