//! The server's rules that are not the push (`push_with` in `mod.rs`), written once over the
//! per-backend SQL primitives of [`Tx`]: importing the official units, creating a station,
//! the full checksum scan with its repair of the running sums, and taking a station's audit
//! trail. Each backend opens (and locks) the transaction, calls the rule, and commits.

use binhyen_protocol::wire::AuditPush;
use chrono::{DateTime, Utc};

use super::{audit_new, refuse, Code, DbResult, ScopeScan, StationRow, Tx};

/// One row of the official units file: a province and one of its communes.
struct UnitRow {
    province_code: String,
    province_name: String,
    code: String,
    name: String,
}

/// Reads the whole file first: a damaged file is refused before anything is written.
fn parse_units(csv_text: &str) -> DbResult<Vec<UnitRow>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| refuse(Code::BadCsv, format!("Tệp đơn vị hỏng: {e}")))?;
        if rec.len() < 4 {
            return Err(refuse(Code::BadCsv, "Tệp đơn vị thiếu cột."));
        }
        rows.push(UnitRow {
            province_code: rec[0].to_string(),
            province_name: rec[1].to_string(),
            code: rec[2].to_string(),
            name: rec[3].to_string(),
        });
    }
    Ok(rows)
}

/// Imports the official units (province, commune); returns how many rows were written.
pub(crate) fn import_units(tx: &mut impl Tx, csv_text: &str) -> DbResult<usize> {
    let mut n = 0;
    for row in parse_units(csv_text)? {
        n += tx.insert_unit_if_absent(&row.province_code, &row.province_name)?;
        tx.upsert_unit(&row.code, &row.name, &row.province_code)?;
        n += 1;
    }
    Ok(n)
}

/// Creates a station of a known unit, on the laptop number given or the next free one;
/// returns its id and laptop number. The transaction must keep other creations out.
pub(crate) fn create_station(
    tx: &mut impl Tx,
    unit_code: &str,
    device_no: Option<u32>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> DbResult<(String, u32)> {
    if !tx.unit_known(unit_code)? {
        return Err(refuse(
            Code::UnknownUnit,
            format!("Mã đơn vị {unit_code} không có; hãy nhập danh mục đơn vị trước."),
        ));
    }
    let device = match device_no {
        Some(d) => d,
        None => tx.next_device(unit_code)?,
    };
    if tx.device_taken(unit_code, device)? {
        return Err(refuse(
            Code::DeviceTaken,
            format!("Máy số {device} của đơn vị {unit_code} đã được cấp."),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    tx.insert_station(&id, unit_code, device, token_hash, &now.to_rfc3339())?;
    Ok((id, device))
}

/// The full checksum of a station's scope, read from every record; where the running sums
/// a push keeps have drifted from the records, they are set again from the scan. The
/// transaction must keep pushes out between the scan and the sums it sets.
pub(crate) fn checksum(tx: &mut impl Tx, station: &StationRow) -> DbResult<(String, u64)> {
    let mut scan = ScopeScan::new(binhyen_domain::unit::is_commune_code(&station.unit_code));
    tx.scan_scope(&station.unit_code, &mut scan)?;
    let (digest, sums) = scan.finish();
    if tx.stored_sums(&station.unit_code)? != sums {
        tracing::warn!(unit = %station.unit_code, "the checksum's running sums differed from the records; refilled");
        tx.clear_sums(&station.unit_code)?;
        for ((unit, entity), s) in &sums {
            tx.add_sums(unit, entity, s)?;
        }
    }
    Ok(digest)
}

/// Takes the part of a station's audit trail the server does not hold yet (see
/// [`audit_new`] for what is refused); returns the last entry now held. The transaction must
/// keep other writers of this station's trail out.
pub(crate) fn push_audit(
    tx: &mut impl Tx,
    station: &StationRow,
    push: &AuditPush,
    now: DateTime<Utc>,
) -> DbResult<i64> {
    let last = tx.audit_last(&station.id)?;
    let fresh = audit_new(push, last.clone(), &mut |seq| {
        tx.audit_hash(&station.id, seq)
    })?;
    let received = now.to_rfc3339();
    for e in &fresh {
        tx.insert_audit(&station.id, e, &received)?;
    }
    Ok(fresh
        .last()
        .map(|e| e.seq)
        .or(last.map(|(s, _)| s))
        .unwrap_or(0))
}
