//! Benchmark (prints figures; asserts nothing about speed): a year's province report over
//! 100 communes and 500,000 tips, as a province-level station computes it from its
//! encrypted replica (and as `binhyen-server report` computes it from the replica it
//! builds).
//!
//! The tips are written straight into the replica's tables in one transaction (what sync
//! would have brought, in the order it would have brought them), each with its timeline:
//! received, then for most of them verifying, and then transferred, resolved or rejected,
//! spread over the year in Vietnam time across randomly chosen communes.
//!
//! Run: `cargo bench -p binhyen-store --bench province_report`
//! (BINHYEN_BENCH_PROVINCE_TIPS changes the 500,000).

use std::time::{Duration, Instant};

use binhyen_domain::period::Period;
use binhyen_domain::tip::{Category, Channel};
use binhyen_store::report::DeadlineRules;
use binhyen_store::{InitOptions, Station};
use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::params;

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let tips: usize = std::env::var("BINHYEN_BENCH_PROVINCE_TIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = InitOptions {
        unit_code: "66".into(),
        first_officer: binhyen_store::FirstOfficer {
            username: "tinh".into(),
            full_name: "Phòng Tham mưu Công an tỉnh".into(),
            password: "benchmark passphrase".into(),
            role: binhyen_domain::access::Role::Chief,
        },
        device_no: 1,
        demo: false,
    };
    let station = Station::init(dir.path(), &opts, Utc::now()).expect("init station");
    let mut communes: Vec<String> = binhyen_store::units::children(station.conn(), "66")
        .expect("communes")
        .into_iter()
        .map(|u| u.code)
        .collect();
    communes.truncate(100);
    println!(
        "Bình Yên province report benchmark ({} cores): {} tips over {} communes of Đắk Lắk, year 2026",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        tips,
        communes.len()
    );

    let started = Instant::now();
    let conn = station.conn();
    conn.execute_batch("BEGIN").expect("begin");
    let mut rng = StdRng::seed_from_u64(66);
    let year_start = chrono::FixedOffset::east_opt(7 * 3600)
        .and_then(|tz| tz.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single())
        .expect("1/1/2026")
        .with_timezone(&Utc);
    let year_ms = 365 * 24 * 3600 * 1000_i64;
    let mut actions = 0usize;
    {
        let mut tip = conn
            .prepare(
                "INSERT INTO tips(id, unit_code, register_no, register_year, register_device, register_seq,
                    received_at, category, channel, status, urgency, content, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 2026, 1, ?4, ?5, ?6, ?7, ?8, 'normal', 'Nội dung nguồn tin', ?5, ?5)",
            )
            .expect("prepare tips");
        let mut action = conn
            .prepare(
                "INSERT INTO tip_actions(id, tip_id, at, kind, from_status, to_status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .expect("prepare actions");
        let mut seq = vec![0i64; communes.len()];
        // Tips reach the replica in about the order they were received (sync replays each
        // station's outbox in order), and their ids are time-ordered (UUID v7).
        let mut times: Vec<i64> = (0..tips).map(|_| rng.gen_range(0..year_ms)).collect();
        times.sort_unstable();
        for (i, offset) in times.into_iter().enumerate() {
            let c = rng.gen_range(0..communes.len());
            seq[c] += 1;
            let id = format!("{i:08x}-0000-7000-8000-000000000000");
            let received = year_start + chrono::Duration::milliseconds(offset);
            let at = |h: i64| (received + chrono::Duration::hours(h)).to_rfc3339();
            let category = Category::ALL[rng.gen_range(0..Category::ALL.len())].as_str();
            let path: &[&str] = match rng.gen_range(0..10) {
                0..=1 => &[],
                2..=3 => &["verifying"],
                4..=6 => &["verifying", "transferred"],
                7..=8 => &["verifying", "resolved"],
                _ => &["rejected"],
            };
            let status = path.last().copied().unwrap_or("received");
            tip.execute(params![
                id,
                communes[c],
                format!("{:04}/2026/M1", seq[c]),
                seq[c],
                received.to_rfc3339(),
                category,
                Channel::ALL[rng.gen_range(0..Channel::ALL.len())].as_str(),
                status
            ])
            .expect("insert tip");
            action
                .execute(params![
                    format!("{id}-0"),
                    id,
                    received.to_rfc3339(),
                    "received",
                    None::<&str>,
                    "received"
                ])
                .expect("insert action");
            let mut from = "received";
            for (k, to) in path.iter().enumerate() {
                let hours = rng.gen_range(1..72) * (k as i64 + 1);
                action
                    .execute(params![
                        format!("{id}-{}", k + 1),
                        id,
                        at(hours),
                        "status_changed",
                        from,
                        to
                    ])
                    .expect("insert action");
                from = to;
            }
            actions += 1 + path.len();
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
    println!(
        "  written: {tips} tips and {actions} timeline entries in {} (setup, not measured)",
        ms(started.elapsed())
    );

    let year = Period::parse("2026").expect("period");
    let now = Utc
        .with_ymd_and_hms(2027, 1, 15, 3, 0, 0)
        .single()
        .expect("now");
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t = Instant::now();
        let report = station
            .unit_report(&year, DeadlineRules::default(), now)
            .expect("report");
        runs.push(t.elapsed());
        last = Some(report);
    }
    runs.sort();
    let report = last.expect("a report");
    let counted: i64 = report.by_unit.iter().map(|f| f.current).sum();
    println!(
        "  year report: median {} (fastest {}, slowest {}) over 3 runs",
        ms(runs[1]),
        ms(runs[0]),
        ms(runs[2])
    );
    println!(
        "  figures: {} tips in 2026 ({} counted per commune over {} communes), {} transferred \
         (median {:?} h), {} overdue at year end",
        report.tips.current,
        counted,
        report.by_unit.len(),
        report.transfer.count,
        report.transfer.median_hours,
        report.overdue.len()
    );
    let q4 = Period::parse("2026-Q4").expect("period");
    let t = Instant::now();
    let quarter = station
        .unit_report(&q4, DeadlineRules::default(), now)
        .expect("report");
    println!(
        "  quarter report (2026-Q4, {} tips): {}",
        quarter.tips.current,
        ms(t.elapsed())
    );
}
