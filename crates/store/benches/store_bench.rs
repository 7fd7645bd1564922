//! Benchmark (prints figures; asserts nothing about speed): the cost of Bình Yên's layers
//! over bare SQLite for the two things a station does most.
//!
//! 1. Importing 10,000 tips: validation, NFC, register numbers, change log, folded search
//!    index, all on the encrypted file; beside plain inserts of the same rows into an
//!    unencrypted SQLite file with an FTS5 index.
//! 2. Diacritic-insensitive search over 200,000 tips (median of many queries, 50 hits each);
//!    beside FTS5 `remove_diacritics 2` on the raw text, which is what bare SQLite offers
//!    (it does not fold "đ", so it finds less).
//!
//! 3. Paging the tips list over the same 200,000 tips as the Tips screen does (a page of 50
//!    and the count of matches, each time), with each of the screen's filters and sorts:
//!    the first page, page 100 and the last page.
//!
//! Run: `cargo bench -p binhyen-store` (BINHYEN_BENCH_TIPS changes the 200,000).

use std::time::{Duration, Instant};

use binhyen_domain::tip::{Category, Channel, Status, TipFilter, TipSort};
use binhyen_store::{InitOptions, Station};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};

const WORDS: &[&str] = &[
    "nhóm",
    "thanh niên",
    "tụ tập",
    "đánh bạc",
    "trộm",
    "con bò",
    "xe máy",
    "lừa đảo",
    "qua mạng",
    "rẫy",
    "cà phê",
    "chợ",
    "trường",
    "mẫu giáo",
    "ban đêm",
    "hung khí",
    "tin giả",
    "Zalo",
    "Facebook",
    "đất",
    "tranh chấp",
    "hàng xóm",
    "đường",
    "quốc lộ",
    "đối tượng",
    "người lạ",
    "ma túy",
    "cho vay",
    "nặng lãi",
    "bom mìn",
    "vật nổ",
    "cháy",
    "karaoke",
    "gây rối",
    "say rượu",
    "công an",
    "xác minh",
    "phản ánh",
];
const PLACES: &[&str] = &[
    "Buôn Ea Mdroh",
    "Buôn Cuôr Kniê",
    "Buôn Ko Ênh",
    "Thôn Hòa Bình",
    "Thôn Đoàn Kết",
    "Tổ dân phố 2",
    "Đắk Lắk",
    "Buôn Ma Thuột",
    "Cư M'gar",
    "Thôn Tân Lập",
];
/// The hamlets of the benchmark's commune (a roster imported first).
const HAMLETS: &[&str] = &[
    "Ea Kmar",
    "Cuôr Kniê",
    "Ko Ênh",
    "Hòa Bình",
    "Đoàn Kết",
    "Tân Lập",
    "Ea Mdroh",
    "Tân Thành",
    "Thắng Lợi",
    "Quyết Tiến",
];

fn content(rng: &mut StdRng) -> String {
    let n = rng.gen_range(10..30);
    let mut words: Vec<&str> = (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"tin"))
        .collect();
    words.insert(
        rng.gen_range(0..words.len()),
        PLACES.choose(rng).unwrap_or(&"Thôn 1"),
    );
    let mut s = words.join(" ");
    s.push('.');
    s
}

struct Row {
    content: String,
    hamlet: &'static str,
    urgency: &'static str,
    category: &'static str,
    channel: &'static str,
    received_at: String,
}

fn rows(n: usize, seed: u64) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    (0..n)
        .map(|_| Row {
            content: content(&mut rng),
            hamlet: HAMLETS.choose(&mut rng).unwrap_or(&"Ea Kmar"),
            urgency: ["normal", "normal", "normal", "urgent", "critical"]
                .choose(&mut rng)
                .unwrap_or(&"normal"),
            category: Category::ALL
                .choose(&mut rng)
                .map_or("other", |c| c.as_str()),
            channel: Channel::ALL
                .choose(&mut rng)
                .map_or("other", |c| c.as_str()),
            received_at: (now - chrono::Duration::minutes(rng.gen_range(1..525_600))).to_rfc3339(),
        })
        .collect()
}

fn jsonl(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| serde_json::json!({"content": r.content, "category": r.category, "channel": r.channel, "received_at": r.received_at, "hamlet": format!("Thôn {}", r.hamlet), "urgency": r.urgency}).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn bare_db(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).expect("open bare db");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE tips (id INTEGER PRIMARY KEY, content TEXT NOT NULL, category TEXT NOT NULL, channel TEXT NOT NULL, received_at TEXT NOT NULL);
         CREATE INDEX tips_received ON tips(received_at);
         CREATE VIRTUAL TABLE tips_fts USING fts5(content, content = 'tips', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2');",
    )
    .expect("bare schema");
    conn
}

fn bare_insert(conn: &mut Connection, rows: &[Row]) {
    let tx = conn.transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO tips(content, category, channel, received_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .expect("prepare");
        let mut fts = tx
            .prepare("INSERT INTO tips_fts(rowid, content) VALUES (?1, ?2)")
            .expect("prepare");
        for r in rows {
            ins.execute(params![r.content, r.category, r.channel, r.received_at])
                .expect("insert");
            fts.execute(params![tx.last_insert_rowid(), r.content])
                .expect("fts");
        }
    }
    tx.commit().expect("commit");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn new_station(dir: &std::path::Path) -> Station {
    let opts = InitOptions {
        unit_code: "24280".into(),
        first_officer: binhyen_store::FirstOfficer {
            username: "truong".into(),
            full_name: "Nguyễn Hữu Thành".into(),
            password: "benchmark passphrase".into(),
            role: binhyen_domain::access::Role::Chief,
        },
        device_no: 1,
        demo: false,
    };
    let mut station = Station::init(dir, &opts, Utc::now()).expect("init station");
    let mut roster = String::from("Loại,Thôn,Số hộ\n");
    for h in HAMLETS {
        roster.push_str(&format!("Thôn,{h},150\n"));
    }
    station
        .import_roster(roster.as_bytes(), false, Utc::now())
        .expect("roster");
    station
}

/// The Tips screen's request for one page: the page and the count of matches.
fn page(station: &Station, filter: &TipFilter, page: u32) -> (Duration, usize, u64) {
    let f = TipFilter {
        limit: Some(PAGE),
        offset: Some(page * PAGE),
        ..filter.clone()
    };
    let start = Instant::now();
    let rows = station.list_tips(&f).expect("page").len();
    let count = station.count_tips(&f).expect("count");
    (start.elapsed(), rows, count)
}

const PAGE: u32 = 50;

fn paging(station: &Station, big: usize) {
    let hamlet = station
        .list_hamlets()
        .expect("hamlets")
        .into_iter()
        .next()
        .expect("a hamlet")
        .id
        .to_string();
    let now = Utc::now();
    let month_ago = (now - chrono::Duration::days(30)).to_rfc3339();
    let cases: Vec<(&str, TipFilter)> = vec![
        ("no filter, newest first", TipFilter::default()),
        (
            "oldest first",
            TipFilter {
                sort: Some(TipSort::Oldest),
                ..Default::default()
            },
        ),
        (
            "by urgency",
            TipFilter {
                sort: Some(TipSort::Urgency),
                ..Default::default()
            },
        ),
        (
            "status received",
            TipFilter {
                status: Some(Status::Received),
                ..Default::default()
            },
        ),
        (
            "one hamlet",
            TipFilter {
                hamlet: Some(hamlet),
                ..Default::default()
            },
        ),
        (
            "category + last 30 days",
            TipFilter {
                category: Some(Category::CrimeReport),
                from: Some(month_ago),
                ..Default::default()
            },
        ),
        (
            "channel zalo",
            TipFilter {
                channel: Some(Channel::Zalo),
                ..Default::default()
            },
        ),
        (
            "overdue crime tips",
            TipFilter {
                overdue_at: Some(now.to_rfc3339()),
                ..Default::default()
            },
        ),
        (
            "handled by an officer",
            TipFilter {
                officer: Some("truong".into()),
                ..Default::default()
            },
        ),
        (
            "text \"trom con bo\"",
            TipFilter {
                query: Some("trom con bo".into()),
                ..Default::default()
            },
        ),
    ];
    println!(
        "\npaging the tips list over {big} tips (a page of {PAGE} and the count, as the Tips screen asks; median of 3)"
    );
    println!(
        "  {:<26} {:>9} {:>12} {:>12} {:>12}",
        "filter", "matches", "first page", "page 100", "last page"
    );
    for (name, filter) in cases {
        let mut cells = Vec::new();
        let mut matches = 0;
        for which in 0..3 {
            let mut times = Vec::new();
            for _ in 0..3 {
                let n = if which == 0 {
                    0
                } else if which == 1 {
                    99
                } else {
                    (matches.max(1) as u32 - 1) / PAGE
                };
                let (t, rows, count) = page(station, &filter, n);
                assert!(rows <= PAGE as usize);
                matches = count;
                times.push(t);
            }
            cells.push(ms(median(times)));
        }
        println!(
            "  {name:<26} {matches:>9} {:>12} {:>12} {:>12}",
            cells[0], cells[1], cells[2]
        );
    }
}

fn main() {
    let big: usize = std::env::var("BINHYEN_BENCH_TIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!(
        "Bình Yên store benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // 1. Import 10,000 tips.
    let ten_k = rows(10_000, 1);
    let text = jsonl(&ten_k);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut station = new_station(dir.path());
    let start = Instant::now();
    station.import_tips(&text, Utc::now()).expect("import");
    let ours = start.elapsed();
    let bare_dir = tempfile::tempdir().expect("tempdir");
    let mut bare = bare_db(&bare_dir.path().join("bare.db"));
    let start = Instant::now();
    bare_insert(&mut bare, &ten_k);
    let theirs = start.elapsed();
    println!("\nimport 10,000 tips (one transaction)");
    println!(
        "  Bình Yên (encrypted, validated, change log, folded index): {}",
        ms(ours)
    );
    println!(
        "  bare SQLite (plain file, FTS5):                           {}",
        ms(theirs)
    );
    println!("  ratio: {:.1}x", ours.as_secs_f64() / theirs.as_secs_f64());

    // 2. Search over `big` tips.
    let many = rows(big, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut station = new_station(dir.path());
    let start = Instant::now();
    for chunk in many.chunks(20_000) {
        station
            .import_tips(&jsonl(chunk), Utc::now())
            .expect("import");
    }
    let load = start.elapsed();
    let bare_dir = tempfile::tempdir().expect("tempdir");
    let mut bare = bare_db(&bare_dir.path().join("bare.db"));
    let start = Instant::now();
    bare_insert(&mut bare, &many);
    let bare_load = start.elapsed();
    println!(
        "\nloading {big} tips: Bình Yên {:.1} s, bare SQLite {:.1} s",
        load.as_secs_f64(),
        bare_load.as_secs_f64()
    );

    let queries = [
        "danh bac",
        "trom con bo",
        "buon ma thuot",
        "lua dao qua mang",
        "doan ket",
        "dat tranh chap",
        "ma tuy",
        "cho vay nang lai",
        "hung khi",
        "thanh nien tu tap",
    ];
    let rounds = 5;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let (mut our_hits, mut bare_hits) = (0usize, 0usize);
    let mut stmt = bare
        .prepare("SELECT t.id, t.content FROM tips_fts JOIN tips t ON t.id = tips_fts.rowid WHERE tips_fts MATCH ?1 ORDER BY t.received_at DESC LIMIT 50")
        .expect("prepare");
    for _ in 0..rounds {
        for q in queries {
            let filter = TipFilter {
                query: Some(q.into()),
                limit: Some(50),
                ..Default::default()
            };
            let start = Instant::now();
            our_hits += station.list_tips(&filter).expect("search").len();
            ours.push(start.elapsed());
            let fts: String = q
                .split(' ')
                .map(|w| format!("\"{w}\"*"))
                .collect::<Vec<_>>()
                .join(" ");
            let start = Instant::now();
            bare_hits += stmt
                .query_map([&fts], |r| r.get::<_, i64>(0))
                .expect("query")
                .count();
            theirs.push(start.elapsed());
        }
    }
    let (o, t) = (median(ours), median(theirs));
    println!(
        "\ndiacritic-insensitive search over {big} tips, newest 50 hits, median of {} queries",
        rounds * queries.len()
    );
    println!(
        "  Bình Yên (folds đ → d, filters, joins hamlet and reporter flags): {}",
        ms(o)
    );
    println!(
        "  bare SQLite FTS5 remove_diacritics 2 (misses words with đ):      {}",
        ms(t)
    );
    println!(
        "  ratio: {:.1}x   hits returned: Bình Yên {our_hits}, bare {bare_hits}",
        o.as_secs_f64() / t.as_secs_f64()
    );

    // 3. Paging the list.
    paging(&station, big);
}
