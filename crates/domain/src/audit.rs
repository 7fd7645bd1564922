//! The audit entry and its hash, shared by the station (which writes the chain) and the
//! provincial server (which keeps a copy of each station's chain and checks it on arrival).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry of a station's audit trail, as stored and as sent to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this entry must carry, given its content and the hash before it.
    pub fn computed_hash(&self) -> String {
        entry_hash(
            &self.prev_hash,
            self.seq,
            &self.at,
            &self.actor,
            &self.action,
            self.target.as_deref(),
            &self.detail,
        )
    }
}

/// The hash that starts a station's chain.
pub fn genesis(station_id: &str) -> String {
    hex::encode(Sha256::digest(format!("binhyen audit v1|{station_id}")))
}

/// SHA-256 over the previous hash and every field, each prefixed with its length (so no
/// two different entries can be made to hash alike by moving text between fields).
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        at,
        actor,
        action,
        target.unwrap_or(""),
        detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Checks that `entries` follow one another and each carries its own hash, starting after
/// `(last_seq, last_hash)` when given. Returns the first entry that does not hold, with
/// what is wrong (in Vietnamese).
pub fn check_chain<'a>(
    after: Option<(i64, &str)>,
    entries: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<(), (i64, String)> {
    let mut prev: Option<(i64, String)> = after.map(|(s, h)| (s, h.to_string()));
    for e in entries {
        if let Some((s, h)) = &prev {
            if e.seq != s + 1 {
                return Err((
                    e.seq,
                    format!(
                        "mục số {} bị xóa hoặc thứ tự bị đảo (gặp mục {})",
                        s + 1,
                        e.seq
                    ),
                ));
            }
            if &e.prev_hash != h {
                return Err((
                    e.seq,
                    format!("mục {} không nối tiếp mục trước (chuỗi băm bị cắt)", e.seq),
                ));
            }
        }
        if e.computed_hash() != e.hash {
            return Err((e.seq, format!("nội dung mục {} đã bị sửa", e.seq)));
        }
        prev = Some((e.seq, e.hash.clone()));
    }
    Ok(())
}
