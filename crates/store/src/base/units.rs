//! The official administrative units (34 provinces, 3,321 communes, 2025), shipped with the
//! binary from `data/admin-units-2025.csv` (see `data/ATTRIBUTION.md`) and loaded at `init`.

use rusqlite::{params, Connection, OptionalExtension};

use binhyen_domain::text::fold;
use binhyen_domain::unit::Unit;

use crate::search::index_doc;
use crate::{Result, StoreError};

const UNITS_CSV: &str = include_str!("../../data/admin-units-2025.csv");

#[derive(serde::Deserialize)]
struct Row {
    province_code: String,
    province_name: String,
    commune_code: String,
    commune_name: String,
    commune_type: String,
    lat: Option<f64>,
    lon: Option<f64>,
    area_km2: Option<f64>,
}

/// Every official unit, provinces first (each once), then communes.
pub fn official() -> Result<Vec<Unit>> {
    let mut provinces: Vec<Unit> = Vec::new();
    let mut communes: Vec<Unit> = Vec::new();
    let mut reader = csv::Reader::from_reader(UNITS_CSV.as_bytes());
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(|e| StoreError::KeyFile {
            path: "admin-units-2025.csv".into(),
            reason: e.to_string(),
        })?;
        if !provinces.iter().any(|p| p.code == row.province_code) {
            let unit_type = if row.province_name.starts_with("Thành phố") {
                "Thành phố"
            } else {
                "Tỉnh"
            };
            provinces.push(Unit {
                code: row.province_code.clone(),
                name: row.province_name.clone(),
                unit_type: unit_type.into(),
                parent_code: None,
                latitude: None,
                longitude: None,
                area_km2: None,
            });
        }
        communes.push(Unit {
            code: row.commune_code,
            name: row.commune_name,
            unit_type: row.commune_type,
            parent_code: Some(row.province_code),
            latitude: row.lat,
            longitude: row.lon,
            area_km2: row.area_km2,
        });
    }
    provinces.extend(communes);
    Ok(provinces)
}

/// Loads the official units into an empty store and indexes them for search.
pub(crate) fn load(conn: &Connection) -> Result<usize> {
    let units = official()?;
    let mut stmt = conn.prepare(
        "INSERT INTO units(code, name, unit_type, parent_code, latitude, longitude, area_km2)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for u in &units {
        stmt.execute(params![
            u.code,
            u.name,
            u.unit_type,
            u.parent_code,
            u.latitude,
            u.longitude,
            u.area_km2
        ])?;
    }
    let province_name = |code: &Option<String>| {
        code.as_ref()
            .and_then(|c| units.iter().find(|p| &p.code == c))
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    for u in &units {
        let parent = province_name(&u.parent_code);
        let detail = if parent.is_empty() {
            u.unit_type.clone()
        } else {
            parent.clone()
        };
        index_doc(
            conn,
            None,
            "unit",
            &u.code,
            &fold(&u.name),
            &fold(&parent),
            &u.name,
            &detail,
            None,
        )?;
    }
    Ok(units.len())
}

fn row_to_unit(r: &rusqlite::Row<'_>) -> rusqlite::Result<Unit> {
    Ok(Unit {
        code: r.get(0)?,
        name: r.get(1)?,
        unit_type: r.get(2)?,
        parent_code: r.get(3)?,
        latitude: r.get(4)?,
        longitude: r.get(5)?,
        area_km2: r.get(6)?,
    })
}

pub fn get(conn: &Connection, code: &str) -> Result<Option<Unit>> {
    Ok(conn
        .query_row(
            "SELECT code, name, unit_type, parent_code, latitude, longitude, area_km2 FROM units WHERE code = ?1",
            [code],
            row_to_unit,
        )
        .optional()?)
}

/// The units directly under `parent`, in Vietnamese alphabetical order.
pub fn children(conn: &Connection, parent: &str) -> Result<Vec<Unit>> {
    let mut stmt = conn.prepare(
        "SELECT code, name, unit_type, parent_code, latitude, longitude, area_km2 FROM units WHERE parent_code = ?1",
    )?;
    let mut units = stmt
        .query_map([parent], row_to_unit)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    binhyen_domain::text::vi_sort_by_key(&mut units, |u| u.name.as_str());
    Ok(units)
}

#[cfg(test)]
mod tests {
    #[test]
    fn official_units_are_complete() {
        let units = super::official().unwrap();
        let provinces = units.iter().filter(|u| u.parent_code.is_none()).count();
        assert_eq!(provinces, 34);
        assert_eq!(units.len() - provinces, 3321);
        let dak_lak = units
            .iter()
            .filter(|u| u.parent_code.as_deref() == Some("66"))
            .count();
        assert_eq!(dak_lak, 102);
        let cu_mgar = units.iter().find(|u| u.code == "24280").unwrap();
        assert_eq!(cu_mgar.name, "Xã Cư M'gar");
    }
}
