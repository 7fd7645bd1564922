//! Search without diacritics across tips, hamlets, people and units. Text is folded in Rust
//! (tones, marks and "đ" → "d") before FTS5 sees it, both when indexing and when querying.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use ts_rs::TS;

use binhyen_domain::text::fold;

use crate::Result;

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SearchHit {
    /// "tip", "hamlet", "person" or "unit".
    pub kind: String,
    pub id: String,
    pub label: String,
    pub detail: String,
    /// Higher is better.
    pub score: f64,
}

/// Tip documents are numbered from their received time (milliseconds × 1024, plus a
/// tie-breaker), so that FTS5's own order, by rowid, is recency: a search walks the matches
/// newest first and stops at the page it needs. Every other document takes a small number,
/// below every tip's.
pub(crate) fn tip_doc_order(received_at: chrono::DateTime<chrono::Utc>) -> i64 {
    received_at.timestamp_millis().max(0) * 1024
}

/// Numbers below this are documents other than tips.
pub(crate) const TIP_DOCS_FROM: i64 = 1 << 40;

/// Full-text writes held back to the end of a transaction, then made in document order.
///
/// FTS5 buffers the terms of the documents written in a transaction and writes them out as
/// one segment at commit, but only while the documents come in rising rowid order: a
/// document numbered below the one before makes it write out what it holds first
/// (`sqlite3Fts5IndexBeginWrite`). Tips are numbered by when they were received, and a pull
/// brings them in the order they were entered, so a page of them made hundreds of small
/// segments, each merged again. Held here, a page's documents make one.
///
/// Nothing may read `search_fts` for a document held here before [`FtsBatch::write`].
#[derive(Debug, Default)]
pub(crate) struct FtsBatch {
    /// Document → its new folded (title, body), or None when it is only to go.
    docs: BTreeMap<i64, Option<(String, String)>>,
}

impl FtsBatch {
    /// Writes what is held, in document order. Each document is first taken out of the
    /// index (as [`index_doc`] does), so that a document indexed before is replaced.
    pub(crate) fn write(self, conn: &Connection) -> Result<()> {
        for (doc, text) in self.docs {
            fts_write(
                conn,
                doc,
                text.as_ref().map(|(t, b)| (t.as_str(), b.as_str())),
            )?;
        }
        Ok(())
    }
}

/// Replaces document `doc` in the full-text index by `text` (folded title and body), or
/// takes it out for None.
fn fts_write(conn: &Connection, doc: i64, text: Option<(&str, &str)>) -> Result<()> {
    conn.prepare_cached("DELETE FROM search_fts WHERE rowid = ?1")?
        .execute([doc])?;
    if let Some((title, body)) = text {
        conn.prepare_cached("INSERT INTO search_fts(rowid, title, body) VALUES (?1, ?2, ?3)")?
            .execute(params![doc, title, body])?;
    }
    Ok(())
}

/// [`fts_write`] now, or held in `batch`.
fn fts_change(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    doc: i64,
    text: Option<(&str, &str)>,
) -> Result<()> {
    match batch {
        Some(b) => {
            b.docs
                .insert(doc, text.map(|(t, b)| (t.to_string(), b.to_string())));
            Ok(())
        }
        None => fts_write(conn, doc, text),
    }
}

/// The kind of search document a record of `entity` has, if any.
pub(crate) fn doc_kind(entity: &str) -> Option<&'static str> {
    match entity {
        "tip" => Some("tip"),
        "hamlet" => Some("hamlet"),
        "roster_person" => Some("person"),
        _ => None,
    }
}

/// Removes the search document of a record (one deleted), now or with `batch`.
pub(crate) fn unindex(
    conn: &Connection,
    batch: Option<&mut FtsBatch>,
    kind: &str,
    ref_id: &str,
) -> Result<()> {
    let doc: Option<i64> = conn
        .prepare_cached("DELETE FROM search_docs WHERE kind = ?1 AND ref_id = ?2 RETURNING doc")?
        .query_row(params![kind, ref_id], |r| r.get(0))
        .optional()?;
    if let Some(d) = doc {
        fts_change(conn, batch, d, None)?;
    }
    Ok(())
}

/// (Re)indexes one document. `title` and `body` must already be folded; `order` is
/// [`tip_doc_order`] for a tip, None for anything else. The full-text write is made now, or
/// held in `batch`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn index_doc(
    conn: &Connection,
    mut batch: Option<&mut FtsBatch>,
    kind: &str,
    ref_id: &str,
    title: &str,
    body: &str,
    label: &str,
    detail: &str,
    order: Option<i64>,
) -> Result<()> {
    let existing: Option<i64> = conn
        .prepare_cached("SELECT doc FROM search_docs WHERE kind = ?1 AND ref_id = ?2")?
        .query_row(params![kind, ref_id], |r| r.get(0))
        .optional()?;
    let keep = match (existing, order) {
        (Some(d), Some(o)) => (d >> 10) == (o >> 10),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let doc = match existing {
        Some(d) if keep => d,
        _ => {
            if let Some(d) = existing {
                fts_change(conn, batch.as_deref_mut(), d, None)?;
                conn.prepare_cached("DELETE FROM search_docs WHERE doc = ?1")?
                    .execute([d])?;
            }
            let start: i64 = match order {
                Some(o) => o,
                None => conn
                    .prepare_cached(
                        "SELECT COALESCE(max(doc), 0) + 1 FROM search_docs WHERE doc < ?1",
                    )?
                    .query_row([TIP_DOCS_FROM], |r| r.get(0))?,
            };
            // A free number at or after `start`. Tips received in the same millisecond take
            // the numbers after it, in the order they are indexed; past 1,024 of them they
            // spill into the next milliseconds' numbers, which moves them in the order by
            // at most that much (a bulk import with one timestamp, say).
            let mut taken =
                conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM search_docs WHERE doc = ?1)")?;
            let mut doc = start;
            if taken.query_row([doc], |r| r.get::<_, bool>(0))? {
                doc = conn
                    .prepare_cached(
                        "SELECT max(doc) + 1 FROM search_docs WHERE doc >= ?1 AND doc < ?1 + 1048576",
                    )?
                    .query_row([start], |r| r.get(0))?;
                while taken.query_row([doc], |r| r.get::<_, bool>(0))? {
                    doc += 1;
                }
            }
            doc
        }
    };
    conn.prepare_cached(
        "INSERT INTO search_docs(doc, kind, ref_id, label, detail) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(doc) DO UPDATE SET label = excluded.label, detail = excluded.detail",
    )?
    .execute(params![doc, kind, ref_id, label, detail])?;
    fts_change(conn, batch, doc, Some((title, body)))
}

/// Turns what a person typed into an FTS5 query: folded, split into words, each word a
/// quoted prefix, all words required. None when nothing searchable is left.
pub fn fts_query(text: &str) -> Option<String> {
    let folded = fold(text);
    let terms: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .take(16)
        .map(|t| format!("\"{t}\"*"))
        .collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" "))
    }
}

/// A hit from a row of `kind, ref_id, label, detail, rank`.
fn hit(r: &rusqlite::Row<'_>) -> rusqlite::Result<SearchHit> {
    Ok(SearchHit {
        kind: r.get(0)?,
        id: r.get(1)?,
        label: r.get(2)?,
        detail: r.get(3)?,
        score: -r.get::<_, f64>(4)?,
    })
}

/// Ranked hits across every kind of document, best first.
pub fn search(
    conn: &Connection,
    text: &str,
    kinds: Option<&[&str]>,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    let Some(q) = fts_query(text) else {
        return Ok(Vec::new());
    };
    // Title words (register number, names) weigh ten times body words. CROSS JOIN keeps the
    // full-text match as the outer loop (see tips::filter_sql).
    let mut stmt = conn.prepare_cached(
        "SELECT d.kind, d.ref_id, d.label, d.detail, bm25(search_fts, 10.0, 1.0) AS rank
         FROM search_fts CROSS JOIN search_docs d ON d.doc = search_fts.rowid
         WHERE search_fts MATCH ?1
         ORDER BY rank LIMIT ?2",
    )?;
    // Fetch more than asked when filtering by kind, so the filter does not starve the list.
    let fetch = if kinds.is_some() {
        limit.saturating_mul(20)
    } else {
        limit
    };
    let hits = stmt
        .query_map(params![q, fetch], hit)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(hits
        .into_iter()
        .filter(|h| kinds.is_none_or(|k| k.contains(&h.kind.as_str())))
        .take(limit as usize)
        .collect())
}

/// The hits of one kind of document, best first, and whether there are more.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SearchGroup {
    /// "tip", "hamlet", "person" or "unit".
    pub kind: String,
    pub hits: Vec<SearchHit>,
    pub more: bool,
}

/// The kinds in the order an officer looks for them: the station's own work first (tips),
/// then its hamlets and people, then the country's units.
pub const GROUP_ORDER: [&str; 4] = ["tip", "hamlet", "person", "unit"];

/// Up to `per_kind` hits of `kind`, best first, and whether there are more. A unit whose
/// own name holds every word searched comes before one found only through its detail (its
/// province's name: "dak lak" finds every commune of Đắk Lắk, Tỉnh Đắk Lắk first).
fn search_kind(
    conn: &Connection,
    q: &str,
    words: &[String],
    kind: &str,
    per_kind: u32,
) -> Result<SearchGroup> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.kind, d.ref_id, d.label, d.detail, bm25(search_fts, 10.0, 1.0) AS rank
         FROM search_fts CROSS JOIN search_docs d ON d.doc = search_fts.rowid
         WHERE search_fts MATCH ?1 AND d.kind = ?2
         ORDER BY rank LIMIT ?3",
    )?;
    // Units are many and ranked again below: a wider window of them.
    let fetch = if kind == "unit" {
        per_kind.saturating_mul(40).max(200)
    } else {
        per_kind + 1
    };
    let mut hits = stmt
        .query_map(params![q, kind, fetch], hit)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if kind == "unit" {
        let own = |h: &SearchHit| {
            let label = fold(&h.label);
            let label_words: Vec<&str> = label.split_whitespace().collect();
            words
                .iter()
                .all(|w| label_words.iter().any(|l| l.starts_with(w.as_str())))
        };
        // Stable: bm25's order kept within each side.
        hits.sort_by_key(|h| !own(h));
    }
    let more = hits.len() > per_kind as usize;
    hits.truncate(per_kind as usize);
    Ok(SearchGroup {
        kind: kind.to_string(),
        hits,
        more,
    })
}

impl crate::Station {
    /// Search as the window's search box and `binhyen search` show it: grouped by kind in
    /// [`GROUP_ORDER`], a few of each (`per_kind`), over what the signed-in officer may read.
    /// Empty groups are left out.
    pub fn search_grouped(&self, text: &str, per_kind: u32) -> Result<Vec<SearchGroup>> {
        let Some(q) = fts_query(text) else {
            return Ok(Vec::new());
        };
        let words: Vec<String> = fold(text)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let mut groups = Vec::new();
        for kind in self.searchable_kinds() {
            let g = search_kind(&self.conn, &q, &words, kind, per_kind.clamp(1, 200))?;
            if !g.hits.is_empty() {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    /// The kinds of document the signed-in officer may search, in [`GROUP_ORDER`].
    fn searchable_kinds(&self) -> Vec<&'static str> {
        use binhyen_domain::access::Permission;
        let role = self.session().role;
        GROUP_ORDER
            .into_iter()
            .filter(|k| match *k {
                "tip" => role.allows(Permission::TipRead),
                "person" => role.allows(Permission::RosterManage),
                _ => true,
            })
            .collect()
    }

    /// Ranked search across what the signed-in officer may read: tips for those who read
    /// tips, roster people for those who keep rosters, hamlets and units for everyone.
    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let kinds = self.searchable_kinds();
        let all = kinds.len() == GROUP_ORDER.len();
        search(&self.conn, text, (!all).then_some(&kinds[..]), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn queries_are_folded_and_quoted() {
        assert_eq!(
            fts_query("Buôn Ma Thuột").as_deref(),
            Some("\"buon\"* \"ma\"* \"thuot\"*")
        );
        assert_eq!(fts_query("dak lak").as_deref(), Some("\"dak\"* \"lak\"*"));
        assert_eq!(
            fts_query("Đắk \"OR\" *").as_deref(),
            Some("\"dak\"* \"or\"*")
        );
        assert_eq!(fts_query("  ,.- "), None);
    }
}
