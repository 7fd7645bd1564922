//! Releases the server relays to its stations (`binhyen-server release`): a station
//! package and its signature, made with the release key that never sits here. The server
//! checks the signature when a release is published (so that an operator's mistake is
//! caught at once), but the stations check it again themselves: nothing the server holds
//! can make a station install what the release key did not sign.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use binhyen_protocol::release::{verify, ReleaseError, ReleaseInfo};
use binhyen_protocol::wire::ReleaseOffer;

use crate::db::{Backend, DbError, ReleaseRow, StationRow};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Release(#[from] ReleaseError),
    #[error("Phần trăm phải từ 1 đến 100 (đã cho {0}).")]
    BadPercent(u32),
    #[error("Mã đơn vị {0:?} không có trên máy chủ này.")]
    UnknownUnit(String),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// Who a release goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    All,
    /// These units' stations (commune codes; a province's code, its own station).
    Units(Vec<String>),
    /// This share of the stations, chosen by a hash of their ids (the same stations each
    /// time, and the share only grows as the percentage is raised).
    Percent(u32),
}

/// Checks a release and makes it available to `audience`.
pub fn publish(
    db: &dyn Backend,
    package: &[u8],
    signature: &str,
    audience: &Audience,
    now: DateTime<Utc>,
) -> Result<ReleaseInfo, PublishError> {
    let info = verify(&mut &package[..], signature)?;
    let (units, percent) = match audience {
        Audience::All => (None, None),
        Audience::Units(codes) => {
            for code in codes {
                if !db.unit_exists(code)? {
                    return Err(PublishError::UnknownUnit(code.clone()));
                }
            }
            (Some(codes.join(",")), None)
        }
        Audience::Percent(p) if (1..=100).contains(p) => (None, Some(*p)),
        Audience::Percent(p) => return Err(PublishError::BadPercent(*p)),
    };
    db.publish_release(
        &ReleaseRow {
            version: info.version.clone(),
            file_name: info.file.clone(),
            size: info.size,
            sha256: info.sha256.clone(),
            signature: signature.to_string(),
            units,
            percent,
            published_at: now.to_rfc3339(),
            withdrawn_at: None,
        },
        package,
    )?;
    db.record_event(
        now,
        "release.publish",
        &info.version,
        &format!("{} ({} bytes)", info.file, info.size),
    )?;
    Ok(info)
}

/// Where a station falls in a staged roll-out: 0 to 99, from its id.
pub fn bucket(station_id: &str) -> u32 {
    let h = Sha256::digest(station_id.as_bytes());
    u32::from(u16::from_be_bytes([h[0], h[1]])) % 100
}

/// Whether a release goes to this station.
pub fn reaches(release: &ReleaseRow, station: &StationRow) -> bool {
    if release.withdrawn_at.is_some() {
        return false;
    }
    if let Some(units) = &release.units {
        return units.split(',').any(|u| station.unit_code == u.trim());
    }
    match release.percent {
        Some(p) => bucket(&station.id) < p,
        None => true,
    }
}

/// The newest release that goes to this station, if any.
pub fn offer_for(db: &dyn Backend, station: &StationRow) -> Result<Option<ReleaseOffer>, DbError> {
    let mut best: Option<ReleaseRow> = None;
    for r in db.releases()? {
        if !reaches(&r, station) {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| binhyen_protocol::release::older(&b.version, &r.version))
        {
            best = Some(r);
        }
    }
    Ok(best.map(|r| ReleaseOffer {
        version: r.version,
        file_name: r.file_name,
        size: r.size,
        sha256: r.sha256,
        signature: r.signature,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station(id: &str, unit: &str) -> StationRow {
        StationRow {
            id: id.into(),
            unit_code: unit.into(),
            device_no: 1,
            created_at: String::new(),
            enrolled_at: None,
            revoked_at: None,
        }
    }

    fn release(units: Option<&str>, percent: Option<u32>) -> ReleaseRow {
        ReleaseRow {
            version: "0.2.0".into(),
            file_name: "binhyen_0.2.0_amd64.deb".into(),
            size: 1,
            sha256: String::new(),
            signature: String::new(),
            units: units.map(str::to_string),
            percent,
            published_at: String::new(),
            withdrawn_at: None,
        }
    }

    #[test]
    fn a_staged_release_reaches_exactly_its_audience() {
        let r = release(Some("24280,24283"), None);
        assert!(reaches(&r, &station("a", "24280")));
        assert!(reaches(&r, &station("b", "24283")));
        assert!(!reaches(&r, &station("c", "24281")));
        let share = release(None, Some(30));
        let n = (0..1000)
            .filter(|i| reaches(&share, &station(&format!("st-{i}"), "24280")))
            .count();
        assert!((200..400).contains(&n), "{n} of 1000");
        let all = release(None, None);
        assert!(reaches(&all, &station("x", "00001")));
        let withdrawn = ReleaseRow {
            withdrawn_at: Some("now".into()),
            ..all
        };
        assert!(!reaches(&withdrawn, &station("x", "00001")));
    }
}
