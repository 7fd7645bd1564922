//! `binhyen-load`: the provincial server under a province's load. Run by hand
//! (`bench/load/run.sh`), never in CI; prints figures and asserts nothing about speed.
//!
//! It makes a PostgreSQL database of its own, starts the real `binhyen-server` on it over
//! loopback (HTTPS, the stations pinned to its authority, as in production), provisions
//! `--stations` laptops (two to a commune, so that each pulls what the other pushed), and
//! gives each a month of a commune's work through the station library: tips imported, a
//! third of them moved on, photos attached. Then every station syncs at the same moment
//! through its real HTTPS client, in rounds:
//!
//! 1. the month pushed (and what a sibling already sent pulled), files uploaded, checksums;
//! 2. a few new tips each, and the sibling's month pulled, files downloaded;
//! 3. a quiet round: nothing new, the sync every station runs every few minutes.
//!
//! Each request is timed at the station (route by route: p50, p95, p99, max), errors are
//! counted by kind, and the server process's CPU and memory (and PostgreSQL's CPU) are read
//! from /proc around each round. At the end every pair of laptops must hold the same tips,
//! with equal checksums.
//!
//! The stations run in this process, at a lower priority than the server (nice 10), on the
//! same two cores: the figures are what the server does while sharing its machine with two
//! hundred clients, a harder test than a province's real server has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use binhyen_protocol::wire::{
    AuditPush, AuditPushResponse, ChecksumResponse, IdentityAnchors, PullResponse, PushRequest,
    PushResponse, RecordsResponse, RecoveryEscrow, RecoveryEscrowResponse, ReleaseOffer,
};
use binhyen_store::{Credentials, Station};
use binhyen_sync::{SyncError, Transport};
use chrono::Utc;
use clap::Parser;
use rand::{Rng, SeedableRng};

const PASS: &str = "mật khẩu thử tải";

#[derive(Parser)]
#[command(about = "The provincial server under the load of a province's stations")]
struct Args {
    /// Stations (laptops), two to a commune.
    #[arg(long, default_value_t = 200)]
    stations: usize,
    /// Tips in each station's month.
    #[arg(long, default_value_t = 300)]
    tips: usize,
    /// Tips with a photo (about 150 KB) in each station's month.
    #[arg(long, default_value_t = 3)]
    files: usize,
    /// The province whose communes the stations belong to.
    #[arg(long, default_value = "38")]
    province: String,
    /// A PostgreSQL database the harness may create databases from.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg: String,
    /// The server binary (default: beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Threads that set the stations up (enrolment and their month).
    #[arg(long, default_value_t = 2)]
    setup_threads: usize,
    /// Random seed for the month's content.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Request timings by route, and errors by kind.
#[derive(Default)]
struct Stats {
    times: BTreeMap<&'static str, Vec<f64>>,
    bytes_out: u64,
    errors: BTreeMap<String, usize>,
}

type Shared = Arc<Mutex<Stats>>;

/// A [`Transport`] that times each request of the station's real HTTPS client.
struct Timed {
    inner: Box<dyn Transport>,
    stats: Shared,
}

impl Timed {
    fn time<T>(
        &mut self,
        route: &'static str,
        f: impl FnOnce(&mut dyn Transport) -> Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        let start = Instant::now();
        let out = f(&mut *self.inner);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match &out {
            Ok(_) => s.times.entry(route).or_default().push(ms),
            Err(e) => {
                *s.errors
                    .entry(format!("{route}: {}", e.code()))
                    .or_default() += 1
            }
        }
        out
    }
}

impl Transport for Timed {
    fn push(&mut self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.time("push", |t| t.push(req))
    }
    fn push_encoded(
        &mut self,
        req: &PushRequest,
        encoded: &[u8],
    ) -> Result<PushResponse, SyncError> {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes_out += encoded.len() as u64;
        self.time("push", |t| t.push_encoded(req, encoded))
    }
    fn pull(&mut self, after: i64, limit: u32) -> Result<PullResponse, SyncError> {
        self.time("pull", |t| t.pull(after, limit))
    }
    fn checksum(&mut self, full: bool) -> Result<ChecksumResponse, SyncError> {
        self.time(if full { "checksum (full)" } else { "checksum" }, |t| {
            t.checksum(full)
        })
    }
    fn records(
        &mut self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<RecordsResponse, SyncError> {
        self.time("records", |t| t.records(after, limit))
    }
    fn push_audit(&mut self, req: &AuditPush) -> Result<AuditPushResponse, SyncError> {
        self.time("audit", |t| t.push_audit(req))
    }
    fn escrow_recovery(
        &mut self,
        req: &RecoveryEscrow,
    ) -> Result<RecoveryEscrowResponse, SyncError> {
        self.time("recovery", |t| t.escrow_recovery(req))
    }
    fn put_attachment(&mut self, sha256: &str, data: &[u8]) -> Result<(), SyncError> {
        self.time("attachment upload", |t| t.put_attachment(sha256, data))
    }
    fn get_attachment(&mut self, sha256: &str) -> Result<Option<Vec<u8>>, SyncError> {
        self.time("attachment download", |t| t.get_attachment(sha256))
    }
    fn identity_anchors(&mut self) -> Result<Option<IdentityAnchors>, SyncError> {
        self.time("identity anchors", |t| t.identity_anchors())
    }
    fn release_offer(&mut self) -> Result<Option<ReleaseOffer>, SyncError> {
        self.time("release", |t| t.release_offer())
    }
    fn release_piece(
        &mut self,
        version: &str,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, SyncError> {
        self.time("release piece", |t| t.release_piece(version, offset, len))
    }
}

/// CPU seconds (user and system) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command may hold spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    // /proc counts in USER_HZ, 100 a second on Linux whatever the kernel's own tick.
    ticks / 100.0
}

/// A memory figure of a process (VmRSS, VmHWM) in MiB.
fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds of every PostgreSQL process.
fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_seconds)
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Server {
    child: Child,
    port: u16,
    metrics_port: u16,
}

/// The server's request-duration histogram as `/metrics` gives it: (route, bucket bound in
/// seconds) -> requests at or under it.
type Histogram = BTreeMap<(String, u64), f64>;

fn scrape(port: u16) -> Histogram {
    use std::io::{Read, Write};
    let mut out = Histogram::new();
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return out;
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_string())
    };
    for line in text
        .lines()
        .filter(|l| l.starts_with("binhyen_http_request_duration_seconds_bucket{"))
    {
        let (Some(route), Some(le), Some(n)) = (
            label(line, "route"),
            label(line, "le"),
            line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        // Bounds kept in microseconds, so that they order; +Inf last.
        let bound = le
            .parse::<f64>()
            .map_or(u64::MAX, |s| (s * 1_000_000.0).round() as u64);
        out.insert((route, bound), n);
    }
    out
}

/// The server's own view of a round: for each route, the bucket bounds (ms) under which
/// half, 95 % and 99 % of its requests were answered (from the time the request reached
/// it, its wait for a turn included, to its answer; the station's own work excluded).
fn server_view(before: &Histogram, after: &Histogram) {
    let mut routes: BTreeMap<&str, Vec<(u64, f64)>> = BTreeMap::new();
    for ((route, bound), n) in after {
        let was = before.get(&(route.clone(), *bound)).copied().unwrap_or(0.0);
        routes
            .entry(route.as_str())
            .or_default()
            .push((*bound, n - was));
    }
    println!(
        "  server's own time, by route (bucket bounds):   {:>7} {:>9} {:>9} {:>9}",
        "count", "p50 ≤ ms", "p95 ≤ ms", "p99 ≤ ms"
    );
    for (route, buckets) in routes {
        let total = buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            continue;
        }
        let at = |p: f64| {
            buckets
                .iter()
                .find(|(_, n)| *n >= p * total)
                .map_or("-".to_string(), |(b, _)| {
                    if *b == u64::MAX {
                        "> 32768".to_string()
                    } else {
                        format!("{}", *b as f64 / 1000.0)
                    }
                })
        };
        println!(
            "  {route:<46} {:>7} {:>9} {:>9} {:>9}",
            total as u64,
            at(0.5),
            at(0.95),
            at(0.99)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: the server finishes what is in flight.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn server_cmd(bin: &Path, spec: &str, key: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("BINHYEN_SERVER_KEY_FILE", key)
        .env("BINHYEN_SERVER_DB", spec);
    c
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().context("cannot run binhyen-server")?;
    if !out.status.success() {
        bail!(
            "binhyen-server failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The database the run uses, dropped at the end.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    fn create(admin: &str) -> Result<Database> {
        let name = format!("binhyen_load_{}", std::process::id());
        let mut c = postgres::Client::connect(admin, postgres::NoTls)
            .with_context(|| format!("cannot reach PostgreSQL at {admin}"))?;
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(Database {
            admin: admin.to_string(),
            name,
        })
    }

    fn spec(&self) -> String {
        match self.admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{}", self.name),
            None => self.admin.clone(),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

const WORDS: &[&str] = &[
    "trộm",
    "bò",
    "xe máy",
    "đánh nhau",
    "thôn",
    "buôn",
    "đêm qua",
    "người lạ",
    "cờ bạc",
    "ma túy",
    "tụ tập",
    "gây rối",
    "mất",
    "điện thoại",
    "nhà",
    "rẫy",
    "cà phê",
    "tiêu",
    "cháy",
    "tai nạn",
    "giao thông",
    "lừa đảo",
    "qua mạng",
    "vay",
    "nặng lãi",
    "chó",
];
const CATEGORIES: &[&str] = &["crime_report", "security_order", "admin_question"];
const PREFIXES: &[&str] = &[
    "091", "094", "096", "097", "098", "086", "032", "035", "070", "077", "081",
];
const CHANNELS: &[&str] = &["zalo", "facebook", "phone", "in_person"];

/// A month of a commune's tips as JSON Lines.
fn month(rng: &mut rand::rngs::StdRng, n: usize, station: usize) -> String {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..rng.gen_range(8..20))
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                .collect();
            let at = now - chrono::Duration::minutes(rng.gen_range(60..60 * 24 * 30));
            let mut tip = serde_json::json!({
                "content": format!("{} (tin {i} của máy {station})", words.join(" ")),
                "category": CATEGORIES[rng.gen_range(0..CATEGORIES.len())],
                "channel": CHANNELS[rng.gen_range(0..CHANNELS.len())],
                "address": format!("Thôn {}", rng.gen_range(1..13)),
                "received_at": at.to_rfc3339(),
            });
            if rng.gen_bool(0.4) {
                tip["reporter"] = serde_json::json!({
                    "name": format!("Người báo tin {station}-{i}"),
                    "phone": format!(
                        "{}{:07}",
                        PREFIXES[rng.gen_range(0..PREFIXES.len())],
                        rng.gen_range(0..10_000_000u32)
                    ),
                });
            }
            tip.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A photo's worth of bytes that the station takes for a JPEG.
fn photo(rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let mut data = vec![0xFF, 0xD8, 0xFF, 0xE0];
    data.extend((0..150_000).map(|_| rng.gen::<u8>()));
    data
}

/// Enrols a laptop and gives it its month.
fn set_up(file: &Path, dir: &Path, args: &Args, index: usize) -> Result<Station> {
    let text = binhyen_sync::read_file(file)?;
    let creds = Credentials::new("truong", PASS);
    let now = Utc::now();
    let mut station = binhyen_sync::enroll(dir, &text, None, &creds, now)
        .with_context(|| format!("enrolling {}", file.display()))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ index as u64);
    let ids = station.import_tips(&month(&mut rng, args.tips, index), now)?;
    for id in ids.iter().step_by(3) {
        let patch = serde_json::from_value(serde_json::json!({
            "status": "verifying", "note": "Đang xác minh tại chỗ"
        }))?;
        station.update_tip(&id.to_string(), &patch, now)?;
    }
    for f in 0..args.files {
        use base64::Engine;
        let input = serde_json::from_value(serde_json::json!({
            "content": format!("Ảnh hiện trường {f} của máy {index}"),
            "category": "crime_report", "channel": "in_person",
        }))?;
        let file = serde_json::from_value(serde_json::json!({
            "file_name": format!("hien-truong-{f}.jpg"),
            "data_base64": base64::engine::general_purpose::STANDARD.encode(photo(&mut rng)),
        }))?;
        station.add_tip_with_files(&input, &[file], now)?;
    }
    Ok(station)
}

/// One round: every station syncs at the same moment. Returns the stations' reports.
fn round(
    name: &str,
    stations: &[Mutex<Station>],
    server: &Server,
    before: impl Fn(&mut Station, usize) -> Result<()> + Sync,
) -> Result<Vec<binhyen_sync::SyncReport>> {
    let stats: Shared = Default::default();
    let barrier = Barrier::new(stations.len() + 1);
    let threads: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let reports: Mutex<Vec<(usize, Result<binhyen_sync::SyncReport, String>)>> =
        Mutex::new(Vec::new());
    let pid = server.child.id();
    let (cpu0, pg0) = (cpu_seconds(pid), postgres_cpu());
    let histogram0 = scrape(server.metrics_port);
    let mut wall = Duration::ZERO;
    std::thread::scope(|scope| -> Result<()> {
        for (i, station) in stations.iter().enumerate() {
            let (stats, barrier, reports, before, threads) =
                (stats.clone(), &barrier, &reports, &before, &threads);
            scope.spawn(move || {
                if let Ok(me) = std::fs::read_link("/proc/thread-self") {
                    if let Some(tid) = me.file_name().and_then(|t| t.to_str()) {
                        threads
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(tid.to_string());
                    }
                }
                let mut st = station.lock().unwrap_or_else(|e| e.into_inner());
                let prepared = before(&mut st, i);
                barrier.wait();
                barrier.wait();
                let result = prepared.map_err(|e| e.to_string()).and_then(|()| {
                    let inner = binhyen_sync::transport_for(&st).map_err(|e| e.to_string())?;
                    let mut timed = Timed { inner, stats };
                    binhyen_sync::sync_with(&mut st, &mut timed, Utc::now())
                        .map_err(|e| format!("{}: {e}", e.code()))
                });
                reports
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, result));
            });
        }
        barrier.wait();
        // The stations give way to the server on the shared cores (nice 10, thread by
        // thread: Linux keeps a niceness per thread).
        let tids = threads.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = Command::new("renice")
            .args(["-n", "10", "-p"])
            .args(&tids)
            .stdout(Stdio::null())
            .status();
        barrier.wait();
        let start = Instant::now();
        // Every thread of the scope is joined when it ends.
        loop {
            if reports.lock().unwrap_or_else(|e| e.into_inner()).len() == stations.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        wall = start.elapsed();
        Ok(())
    })?;
    let (cpu, pg) = (cpu_seconds(pid) - cpu0, postgres_cpu() - pg0);
    let histogram = scrape(server.metrics_port);
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.0);
    let stats = stats.lock().unwrap_or_else(|e| e.into_inner());
    let secs = wall.as_secs_f64();
    let requests: usize = stats.times.values().map(Vec::len).sum();
    let failed: Vec<&String> = reports.iter().filter_map(|r| r.1.as_ref().err()).collect();
    let ok: Vec<&binhyen_sync::SyncReport> =
        reports.iter().filter_map(|r| r.1.as_ref().ok()).collect();
    let pushed: usize = ok.iter().map(|r| r.pushed).sum();
    let pulled: usize = ok.iter().map(|r| r.pulled).sum();
    let files: usize = ok.iter().map(|r| r.files_sent + r.files_received).sum();
    let mismatched = ok.iter().filter(|r| !r.checksum_ok).count();
    println!("\n{name}");
    println!(
        "  {} stations at once: {:.1} s; {requests} requests ({:.0}/s); {pushed} changes pushed ({:.0}/s), {pulled} pulled ({:.0}/s), {files} files moved; {:.1} MiB pushed (compressed)",
        stations.len(),
        secs,
        requests as f64 / secs,
        pushed as f64 / secs,
        pulled as f64 / secs,
        stats.bytes_out as f64 / 1_048_576.0,
    );
    println!(
        "  syncs failed: {}; checksums unequal: {mismatched}; request errors: {}",
        failed.len(),
        if stats.errors.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", stats.errors)
        }
    );
    for f in failed.iter().take(5) {
        println!("    failed: {f}");
    }
    println!(
        "  server: CPU {cpu:.1} s ({:.0} % of one core), memory {:.0} MiB now, {:.0} MiB at most; PostgreSQL: CPU {pg:.1} s",
        100.0 * cpu / secs,
        memory_mib(pid, "VmRSS"),
        memory_mib(pid, "VmHWM"),
    );
    println!(
        "  {:<22} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "as stations saw it", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (route, times) in &stats.times {
        let mut t = times.clone();
        t.sort_by(f64::total_cmp);
        println!(
            "  {:<22} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            route,
            t.len(),
            percentile(&t, 50.0),
            percentile(&t, 95.0),
            percentile(&t, 99.0),
            t.last().copied().unwrap_or(0.0)
        );
    }
    server_view(&histogram0, &histogram);
    Ok(reports.into_iter().filter_map(|r| r.1.ok()).collect())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.stations < 2 || args.stations % 2 != 0 {
        bail!("--stations must be even: two laptops to a commune");
    }
    let server_bin = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("binhyen-server"),
    };
    let units_csv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/store/data/admin-units-2025.csv");
    let communes: Vec<String> = std::fs::read_to_string(&units_csv)?
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.first() == Some(&args.province.as_str())).then(|| f.get(2).map(|c| c.to_string()))?
        })
        .take(args.stations / 2)
        .collect();
    if communes.len() < args.stations / 2 {
        bail!(
            "province {} has {} communes, fewer than {}",
            args.province,
            communes.len(),
            args.stations / 2
        );
    }

    let work = tempfile::tempdir()?;
    let db = Database::create(&args.pg)?;
    let spec = db.spec();
    let key = work.path().join("server.key");
    println!(
        "Bình Yên under load: {} stations ({} communes of province {}, two laptops each), a month of {} tips and {} photographed tips each; PostgreSQL over loopback; {} cores",
        args.stations,
        communes.len(),
        args.province,
        args.tips,
        args.files,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    run(server_cmd(&server_bin, &spec, &key).args([
        "units",
        "import",
        units_csv.to_str().unwrap_or_default(),
    ]))?;
    let (port, metrics_port) = (free_port()?, free_port()?);
    let log = std::fs::File::create(work.path().join("server.log"))?;
    let child = server_cmd(&server_bin, &spec, &key)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let server = Server {
        child,
        port,
        metrics_port,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Provisioning files for every laptop, as the province makes them for a round of visits.
    let batch = work.path().join("batch.csv");
    let mut csv = String::from("unit,device\n");
    for c in &communes {
        csv.push_str(&format!("{c},1\n{c},2\n"));
    }
    std::fs::write(&batch, csv)?;
    let files_dir = work.path().join("provisioning");
    run(server_cmd(&server_bin, &spec, &key).args([
        "station",
        "enroll",
        "--batch",
        batch.to_str().unwrap_or_default(),
        "--url",
        &format!("https://127.0.0.1:{port}"),
        "--unsealed",
        "--out",
        files_dir.to_str().unwrap_or_default(),
    ]))?;
    let mut files: Vec<PathBuf> = communes
        .iter()
        .flat_map(|c| [1, 2].map(|d| files_dir.join(format!("{c}-{d}.json"))))
        .collect();
    files.retain(|f| f.exists());
    if files.len() != args.stations {
        bail!(
            "{} provisioning files written, not {}",
            files.len(),
            args.stations
        );
    }

    let t = Instant::now();
    let next = AtomicUsize::new(0);
    let made: Mutex<Vec<Option<Station>>> = Mutex::new((0..files.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..args.setup_threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(file) = files.get(i) else { break };
                let dir = work.path().join(format!("laptop-{i}"));
                match set_up(file, &dir, &args, i) {
                    Ok(st) => made.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(st),
                    Err(e) => eprintln!("laptop {i}: {e:#}"),
                }
            });
        }
    });
    let stations: Vec<Mutex<Station>> = made
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|s| s.map(Mutex::new))
        .collect::<Option<_>>()
        .context("a laptop could not be set up")?;
    println!(
        "set up (enrolled, a month each, not measured): {:.0} s",
        t.elapsed().as_secs_f64()
    );

    round(
        "Round 1: every station sends its month",
        &stations,
        &server,
        |_, _| Ok(()),
    )?;
    let new_tips = 5;
    round(
        "Round 2: a few new tips each; each laptop pulls its sibling's month",
        &stations,
        &server,
        |st, i| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ (1_000_000 + i as u64));
            st.import_tips(&month(&mut rng, new_tips, i), Utc::now())?;
            Ok(())
        },
    )?;
    let quiet = round(
        "Round 3: nothing new (the sync every few minutes)",
        &stations,
        &server,
        |_, _| Ok(()),
    )?;

    // Every pair of laptops holds the same tips.
    let expected = 2 * (args.tips + args.files + new_tips) as u64;
    let mut wrong = 0;
    for (i, st) in stations.iter().enumerate() {
        let st = st.lock().unwrap_or_else(|e| e.into_inner());
        let n = st.count_tips(&Default::default())?;
        if n != expected {
            wrong += 1;
            if wrong <= 5 {
                println!("  laptop {i} holds {n} tips, not {expected}");
            }
        }
    }
    let unequal = quiet.iter().filter(|r| !r.checksum_ok).count();
    println!(
        "\nAt the end: {} of {} laptops hold the {expected} tips of their commune; checksums unequal after the last round: {unequal}",
        stations.len() - wrong,
        stations.len()
    );
    drop(server);
    drop(db);
    if wrong > 0 || unequal > 0 || quiet.len() != stations.len() {
        bail!("the stations do not agree with the server");
    }
    Ok(())
}
