//! Times the tip search at scale and prints SQLite's plan, to find where the time goes.
//! Builds a station of BINHYEN_PROBE_TIPS tips (default 200,000) once in /tmp/binhyen-probe.

use std::time::Instant;

use binhyen_domain::tip::TipFilter;
use binhyen_store::{InitOptions, Station};
use chrono::Utc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("BINHYEN_PROBE_TIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = std::path::PathBuf::from(format!("/tmp/binhyen-probe-{n}"));
    let pass = "probe passphrase";
    let mut station = if Station::exists(&dir) {
        Station::open(&dir, &binhyen_store::Credentials::new("truong", pass))?
    } else {
        let opts = InitOptions {
            unit_code: "24280".into(),
            first_officer: binhyen_store::FirstOfficer {
                username: "truong".into(),
                full_name: "Nguyễn Hữu Thành".into(),
                password: pass.into(),
                role: binhyen_domain::access::Role::Chief,
            },
            device_no: 1,
            demo: false,
        };
        let mut s = Station::init(&dir, &opts, Utc::now())?;
        let words = [
            "đánh bạc",
            "trộm",
            "con bò",
            "lừa đảo",
            "qua mạng",
            "rẫy",
            "cà phê",
            "chợ",
            "thanh niên",
            "tụ tập",
            "Buôn Ma Thuột",
            "đất",
            "ma túy",
            "hung khí",
            "say rượu",
        ];
        for chunk in 0..(n / 20_000).max(1) {
            let mut lines = Vec::new();
            for i in 0..20_000.min(n) {
                let k = chunk * 20_000 + i;
                let content: Vec<&str> = (0..12)
                    .map(|j| words[(k * 7 + j * 13 + k / 3) % words.len()])
                    .collect();
                let at = Utc::now() - chrono::Duration::minutes((k % 500_000) as i64 + 1);
                lines.push(serde_json::json!({"content": content.join(" "), "received_at": at.to_rfc3339()}).to_string());
            }
            s.import_tips(&lines.join("\n"), Utc::now())?;
        }
        s
    };
    let _ = &mut station;
    for q in ["danh bac", "trom con bo", "buon ma thuot"] {
        let filter = TipFilter {
            query: Some(q.into()),
            limit: Some(50),
            ..Default::default()
        };
        let start = Instant::now();
        let hits = station.list_tips(&filter)?.len();
        println!("list_tips {q:?}: {hits} hits in {:?}", start.elapsed());
        let start = Instant::now();
        let total = station.count_tips(&TipFilter {
            query: Some(q.into()),
            ..Default::default()
        })?;
        println!("  count_tips: {total} in {:?}", start.elapsed());
        let fts = binhyen_store::search::fts_query(q).unwrap_or_default();
        let start = Instant::now();
        let count: i64 = station.conn().query_row(
            "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?1",
            [&fts],
            |r| r.get(0),
        )?;
        println!("  fts match alone: {count} docs in {:?}", start.elapsed());
        let start = Instant::now();
        let count: i64 = station.conn().query_row(
            "SELECT count(*) FROM search_fts CROSS JOIN search_docs d ON d.doc = search_fts.rowid WHERE search_fts MATCH ?1 AND d.kind = 'tip'", [&fts], |r| r.get(0))?;
        println!("  fts + docs join: {count} in {:?}", start.elapsed());
    }
    let fts = binhyen_store::search::fts_query("danh bac").unwrap_or_default();
    let mut stmt = station.conn().prepare(
        "EXPLAIN QUERY PLAN SELECT t.id FROM tips t LEFT JOIN hamlets h ON h.id = t.hamlet_id LEFT JOIN tip_reporters r ON r.tip_id = t.id
         WHERE t.id IN (SELECT d.ref_id FROM search_fts CROSS JOIN search_docs d ON d.doc = search_fts.rowid WHERE search_fts MATCH ?1 AND d.kind = 'tip')
         ORDER BY t.received_at DESC, t.register_no DESC LIMIT 50")?;
    let rows: Vec<String> = stmt
        .query_map([&fts], |r| r.get::<_, String>(3))?
        .collect::<Result<_, _>>()?;
    println!("plan:\n  {}", rows.join("\n  "));
    Ok(())
}
