//! `binhyen-server`: serve the provincial sync API, import units, enrol and revoke stations.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use clap::{Parser, Subcommand};
use rand::RngCore;

use binhyen_protocol::wire::Provisioning;
use binhyen_server::db::{sha256_hex, Backend};

#[derive(Parser)]
#[command(
    name = "binhyen-server",
    version = binhyen_domain::VERSION,
    about = "Bình Yên: máy chủ Công an tỉnh"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct DbArg {
    /// `sqlite:PATH` (default: a file in the server's data directory).
    #[arg(long, env = "BINHYEN_SERVER_DB")]
    db: Option<String>,
    /// The file holding the key the server's secrets are sealed under (made at the first
    /// start, 0600; back it up apart from the database). Default: beside an SQLite database
    /// (`server.db` → `server.key`); required with PostgreSQL.
    #[arg(long, env = "BINHYEN_SERVER_KEY_FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the sync API.
    Serve {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Plain HTTP, allowed on a loopback address only (tests, a laptop demo).
        #[arg(long)]
        insecure_http: bool,
        /// Another name or address stations reach this server by, for its certificate
        /// (repeatable; names given to `station enroll --url` are added by themselves).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Refuse stations whose program is older than this version (they are told to
        /// update); the default is the oldest this protocol serves.
        #[arg(long, default_value = binhyen_protocol::wire::MIN_STATION_VERSION)]
        min_station_version: String,
        /// Serve `/metrics` (Prometheus) on this address, apart from the stations' port: a
        /// loopback address (127.0.0.1:9464) unless the province's monitoring host must
        /// reach it from elsewhere.
        #[arg(long, env = "BINHYEN_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// text (the default) or json: one JSON object a line on standard error (and in the
        /// journal), for log collectors.
        #[arg(long, env = "BINHYEN_LOG_FORMAT", default_value = "text")]
        log_format: String,
        /// Serve this certificate (PEM: the server's, then any intermediates) issued by the
        /// province's own PKI instead of one from the server's authority; the stations'
        /// trust must first be handed over to its issuer (`ca --hand-over-to`). Read again
        /// when the file changes.
        #[arg(
            long,
            env = "BINHYEN_TLS_CERT",
            requires = "tls_key",
            conflicts_with = "insecure_http"
        )]
        tls_cert: Option<PathBuf>,
        /// The private key (PEM) of --tls-cert.
        #[arg(long, env = "BINHYEN_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Write a backup of the server while it serves: every table in one consistent read,
    /// and the key its secrets are sealed under (so a restored server is trusted by every
    /// station as before), sealed under a passphrase (BINHYEN_BACKUP_PASSPHRASE, or asked).
    Backup {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new, empty database (SQLite or PostgreSQL, whichever the
    /// backup came from), after checking the file whole; writes the vault's key file.
    Restore {
        #[command(flatten)]
        db: DbArg,
        file: PathBuf,
    },
    /// Check a backup whole (it opens, no part is missing or changed) and say what it holds.
    VerifyBackup { file: PathBuf },
    /// Signed releases of the station package, for the stations to download at sync.
    #[command(subcommand)]
    Release(ReleaseCmd),
    /// Offline bundles carried from stations without network.
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// The stations' audit trails as received: check every chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// A unit's report for a period, from the records the server holds: a province's over
    /// all its communes (per commune and in total), or one commune's.
    Report {
        #[command(flatten)]
        db: DbArg,
        /// A province code (66) or a commune code (24280).
        #[arg(long)]
        unit: String,
        /// Month 2026-10, quarter 2026-Q4 or year 2026.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        period: Option<String>,
        /// First day (YYYY-MM-DD), with --to.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// Last day, included.
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        /// json, csv, xlsx or pdf.
        #[arg(long, default_value = "json")]
        format: String,
        /// The file to write (standard output for json and csv when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The server's certificate authority, as provisioning files pin it, and when it and
    /// the certificates served end; with --hand-over-to, hands the stations' trust over to
    /// the province's own authority, for `serve --tls-cert`.
    Ca {
        #[command(flatten)]
        db: DbArg,
        /// The certificate served with `serve --tls-cert`, to say when it ends.
        #[arg(long, env = "BINHYEN_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        /// Hand the stations' trust over to the province's certificate authority (PEM)
        /// that issues --tls-cert (its issuing authority, not its root): the server's
        /// authority then vouches for it, for this server's names only, with --fingerprint.
        #[arg(long, conflicts_with = "withdraw_hand_over")]
        hand_over_to: Option<PathBuf>,
        /// The SHA-256 of --hand-over-to's certificate as the province's PKI publishes it
        /// (read from them, not from the file): nothing is handed over unless they match.
        #[arg(long, requires = "hand_over_to")]
        fingerprint: Option<String>,
        /// Another name stations reach this server by, for the hand-over (repeatable;
        /// names given to `station enroll --url` are included by themselves).
        #[arg(long = "name", requires = "hand_over_to")]
        names: Vec<String>,
        /// Withdraw the hand-over: the server no longer starts with the province's
        /// certificate, and what it signed for the province's authority lapses within 90 days.
        #[arg(long)]
        withdraw_hand_over: bool,
    },
    /// The anchor that certifies the communes' identity keys: prints it (hex) for the
    /// release key's holders to sign (scripts/sign-anchor.sh PROVINCE HEX); with --province
    /// and --signature, keeps their signature first. Stations trust the anchor only once it
    /// is signed for their province.
    Anchor {
        #[command(flatten)]
        db: DbArg,
        /// The signature to keep (ANCHOR.minisig), for --province.
        #[arg(long, requires = "province")]
        signature: Option<PathBuf>,
        /// The province (its code) the signature names.
        #[arg(long, requires = "signature")]
        province: Option<String>,
    },
    /// Official administrative units.
    #[command(subcommand)]
    Units(UnitsCmd),
    /// Stations: enrol, list, revoke.
    #[command(subcommand)]
    Station(StationCmd),
    /// Officers' accounts of a unit, managed at the province: the unit's laptops receive
    /// each change at their next sync.
    #[command(subcommand)]
    Account(AccountCmd),
}

#[derive(Subcommand)]
enum UnitsCmd {
    /// Import the units CSV (admin-units-2025.csv format).
    Import {
        #[command(flatten)]
        db: DbArg,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Checks each station's chain (or one station's); exits 1 if any does not hold.
    Verify {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        station: Option<String>,
    },
    /// What was done at this server that stays on the record (recovery codes read out),
    /// newest first, one JSON object a line.
    Server {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum BundleCmd {
    /// Apply a station's bundle and write the reply the station imports.
    Import {
        #[command(flatten)]
        db: DbArg,
        file: PathBuf,
        #[arg(long)]
        reply: PathBuf,
    },
}

#[derive(Subcommand)]
enum ReleaseCmd {
    /// Make a signed release available: to every station, to the units named first, or
    /// to a share of the stations (a staged roll-out). The signature is checked here, and
    /// again by every station before it installs anything.
    Publish {
        #[command(flatten)]
        db: DbArg,
        /// The station package (binhyen_VERSION_amd64.deb).
        package: PathBuf,
        /// Its signature (default: PACKAGE.minisig, from scripts/sign-release.sh).
        #[arg(long)]
        sig: Option<PathBuf>,
        /// Commune codes (comma-separated) whose stations get it first.
        #[arg(long, value_delimiter = ',', conflicts_with = "percent")]
        units: Vec<String>,
        /// The share of stations (1-100) that get it.
        #[arg(long)]
        percent: Option<u32>,
    },
    /// Every release, newest first.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a release: stations stop downloading it and discard what they have of it.
    Withdraw {
        #[command(flatten)]
        db: DbArg,
        version: String,
    },
}

#[derive(Subcommand)]
enum StationCmd {
    /// Create a station and write its one-time provisioning file; or, with --batch, the
    /// stations of a round of visits at once (OUT is then a directory, with a printable
    /// sheet of each station's laptop number and code).
    Enroll {
        #[command(flatten)]
        db: DbArg,
        /// Commune code (5 digits) or province code (2 digits).
        #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
        unit: Option<String>,
        /// A CSV file with a header and one station a line: unit[,device[,officer,officer_name]].
        #[arg(long, conflicts_with_all = ["device", "officer"])]
        batch: Option<PathBuf>,
        /// The address stations will reach this server at.
        #[arg(long)]
        url: String,
        /// The laptop number within the station (default: the next free one).
        #[arg(long)]
        device: Option<u32>,
        #[arg(long)]
        out: PathBuf,
        /// The station's first account (its chief), named in the file: the installer
        /// enrols with this username (with --officer-name).
        #[arg(long, requires = "officer_name")]
        officer: Option<String>,
        #[arg(long, requires = "officer")]
        officer_name: Option<String>,
        /// Write the file in clear instead of sealed under a code (only for a file carried
        /// by hand that never leaves the province's custody).
        #[arg(long)]
        unsealed: bool,
    },
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        json: bool,
    },
    Revoke {
        #[command(flatten)]
        db: DbArg,
        id: String,
    },
    /// Read out the code that unlocks a station whose passwords are all forgotten (the
    /// station hands it over at its first sync, and a new one after each use). Reading it
    /// is logged.
    RecoveryCode {
        #[command(flatten)]
        db: DbArg,
        id: String,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// The unit's accounts.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        json: bool,
    },
    /// Add an account; the station's chief gives it a temporary password on the laptop.
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// officer, chief, analyst or admin.
        #[arg(long, default_value = "officer")]
        role: String,
    },
    /// Give an account another role.
    Role {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        unit: String,
        user: String,
        role: String,
    },
    /// Disable an account: its password stops working on each laptop at the next sync.
    Disable {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        unit: String,
        user: String,
    },
    Enable {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        unit: String,
        user: String,
    },
}

fn set_active(db: &DbArg, unit: &str, user: &str, active: bool) -> Result<()> {
    let db = open(db)?;
    let a = binhyen_server::accounts::set_active(db.as_ref(), unit, user, active, Utc::now())?;
    tracing::info!(unit = %unit, user = %a.username, active, "account changed");
    print_account(&a);
    Ok(())
}

fn print_account(a: &binhyen_server::accounts::ProvinceAccount) {
    let state = if a.active { "active" } else { "disabled" };
    println!("{}  {}  {}  {state}", a.username, a.full_name, a.role);
}

/// The database spec and the vault's key file `db` names (the defaults filled in).
fn spec_and_key(db: &DbArg) -> Result<(String, PathBuf)> {
    let spec = match &db.db {
        Some(s) => s.clone(),
        None => {
            let dir = dirs::data_dir()
                .ok_or_else(|| anyhow!("no data directory; use --db"))?
                .join("binhyen-server");
            format!("sqlite:{}", dir.join("server.db").display())
        }
    };
    let key_file = match (&db.key_file, binhyen_server::db::vault::default_key_file(&spec)) {
        (Some(k), _) => k.clone(),
        (None, Some(k)) => k,
        (None, None) => bail!(
            "with PostgreSQL, give the server's key file with --key-file (or BINHYEN_SERVER_KEY_FILE): it holds the key the server's secrets are sealed under"
        ),
    };
    Ok((spec, key_file))
}

/// The backup's passphrase: BINHYEN_BACKUP_PASSPHRASE, or asked at the terminal (twice when
/// a new backup is sealed under it).
fn backup_passphrase(confirm: bool) -> Result<String> {
    if let Ok(p) = std::env::var("BINHYEN_BACKUP_PASSPHRASE") {
        return Ok(p);
    }
    let p = rpassword::prompt_password("Backup passphrase: ")?;
    if confirm && rpassword::prompt_password("Again: ")? != p {
        bail!("the two passphrases differ");
    }
    Ok(p)
}

fn print_summary(what: &str, s: &binhyen_server::backup::Summary) {
    println!(
        "{what}: {} rows, made {} from {}",
        s.rows, s.created_at, s.from
    );
    for (table, n) in &s.tables {
        println!("  {table:<20} {n}");
    }
}

fn open(db: &DbArg) -> Result<Arc<dyn Backend>> {
    let (spec, key_file) = spec_and_key(db)?;
    let inner = binhyen_server::db::open(&spec)?;
    let sealed = binhyen_server::db::vault::Sealed::open(inner, &key_file)?;
    // Before any station writes: the keys units had before anchors, as they are now.
    binhyen_server::anchor::anchor_existing(&sealed)?;
    Ok(Arc::new(sealed))
}

/// Resolves when the server is asked to stop: Ctrl+C at a terminal, or SIGTERM from systemd
/// (`systemctl stop`). The servers then take no new connection and let the requests in
/// flight finish (a push commits whole or, cut, rolls back whole: each is one transaction).
async fn stop_requested() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "SIGTERM cannot be caught; stopping on Ctrl+C only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: finishing the requests in flight");
}

async fn serve(
    db: Arc<dyn Backend>,
    listen: SocketAddr,
    insecure_http: bool,
    mut names: Vec<String>,
    min_station_version: &str,
    metrics_listen: Option<SocketAddr>,
    province: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    let metrics = Arc::new(binhyen_server::metrics::Metrics::default());
    if let Some(addr) = metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the metrics"))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "metrics served beyond loopback: let only the monitoring host reach this port");
        }
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        println!("metrics on http://{}/metrics", listener.local_addr()?);
        let app = binhyen_server::metrics::router(db.clone(), metrics.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    if insecure_http {
        if !listen.ip().is_loopback() {
            bail!("plain HTTP is allowed on loopback addresses only, not {listen}; leave out --insecure-http to serve HTTPS");
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(%listen, "serving (plain HTTP, loopback)");
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(
            listener,
            binhyen_server::router_measured(db, min_station_version, metrics),
        )
        .with_graceful_shutdown(stop_requested())
        .await?;
        tracing::info!("stopped");
        return Ok(());
    }
    // The province's certificate is checked for the names stations are given, not for the
    // address listened on.
    if !listen.ip().is_unspecified() && province.is_none() {
        names.push(listen.ip().to_string());
    }
    let db2 = db.clone();
    let config = tokio::task::spawn_blocking(move || {
        binhyen_server::tls::server_config(
            &db2,
            &names,
            province.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
    })
    .await??;
    let std_listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    tracing::info!(%local, "serving (HTTPS)");
    println!("listening on https://{local}");
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        stop_requested().await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    axum_server::from_tcp_rustls(
        std_listener,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )?
    .handle(handle)
    .serve(binhyen_server::router_measured(db, min_station_version, metrics).into_make_service())
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// One station to provision: from `--unit` (line 0) or a line of `--batch`.
struct BatchRow {
    line: usize,
    unit: String,
    device: Option<u32>,
    first_officer: Option<binhyen_protocol::wire::ProvisionedOfficer>,
}

/// A station made, with its provisioning file's text and (sealed) its code.
struct Provisioned {
    id: String,
    unit: String,
    unit_name: String,
    device_no: u32,
    text: String,
    code: Option<String>,
}

fn first_officer(
    officer: Option<String>,
    name: Option<String>,
) -> Result<Option<binhyen_protocol::wire::ProvisionedOfficer>> {
    Ok(match (officer, name) {
        (Some(u), Some(n)) if !u.trim().is_empty() => {
            Some(binhyen_protocol::wire::ProvisionedOfficer {
                username: binhyen_domain::access::normalize_username(&u)
                    .map_err(|m| anyhow!("officer {u}: {m}"))?,
                full_name: n.trim().to_string(),
            })
        }
        _ => None,
    })
}

/// Reads a round's CSV whole, and checks every line (known unit, laptop number, username)
/// before any station is made.
fn read_batch(backend: &dyn Backend, file: &std::path::Path) -> Result<Vec<BatchRow>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{} line {line}", file.display()))?;
        let unit = rec.get(0).unwrap_or("").to_string();
        if !backend.unit_exists(&unit)? {
            bail!(
                "{} line {line}: unit {unit:?} is not a known unit code; nothing was made",
                file.display()
            );
        }
        let device = match rec.get(1).filter(|d| !d.is_empty()) {
            Some(d) => Some(
                d.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=99).contains(n))
                    .ok_or_else(|| {
                        anyhow!(
                            "{} line {line}: laptop number {d:?} is not 1 to 99; nothing was made",
                            file.display()
                        )
                    })?,
            ),
            None => None,
        };
        let officer = first_officer(
            rec.get(2).map(str::to_string),
            rec.get(3).map(str::to_string),
        )
        .with_context(|| format!("{} line {line}; nothing was made", file.display()))?;
        rows.push(BatchRow {
            line,
            unit,
            device,
            first_officer: officer,
        });
    }
    if rows.is_empty() {
        bail!("{}: no station in the file", file.display());
    }
    Ok(rows)
}

/// Makes the stations and their provisioning files; on a refusal, the stations this call
/// made are revoked again, so a round is made whole or not at all.
fn provision_stations(
    backend: &dyn Backend,
    rows: &[BatchRow],
    url: &str,
    https: bool,
    unsealed: bool,
) -> Result<Vec<Provisioned>> {
    // The authority is pinned in the file; the address's host goes into the server's next
    // certificate.
    let ca = if https {
        let ca = binhyen_server::tls::ensure_ca(backend)?;
        if let Some(host) = binhyen_server::tls::url_host(url) {
            binhyen_server::tls::remember_name(backend, &host)?;
        }
        Some(ca)
    } else {
        None
    };
    let mut made: Vec<Provisioned> = Vec::new();
    for row in rows {
        match provision_one(backend, row, url, ca.as_ref(), unsealed) {
            Ok(p) => made.push(p),
            Err(e) => {
                for p in &made {
                    let _ = backend.revoke(&p.id, Utc::now());
                }
                let at = if row.line > 0 {
                    format!("line {}: ", row.line)
                } else {
                    String::new()
                };
                return Err(e.context(format!(
                    "{at}station of unit {} not made; {} made before it in this round revoked again",
                    row.unit,
                    made.len()
                )));
            }
        }
    }
    Ok(made)
}

fn provision_one(
    backend: &dyn Backend,
    row: &BatchRow,
    url: &str,
    ca: Option<&binhyen_server::tls::CaInfo>,
    unsealed: bool,
) -> Result<Provisioned> {
    let mut token = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut token);
    let token = hex::encode(token);
    let (id, device_no) =
        backend.create_station(&row.unit, row.device, &sha256_hex(&token), Utc::now())?;
    // The station's bundle key from the start, sealed in the file: a station set up with
    // no network on site can enrol by its first offline bundle.
    let mut bundle_key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bundle_key);
    let bundle_key = hex::encode(bundle_key);
    backend.set_bundle_key(&id, &bundle_key)?;
    let unit_name = backend.unit_name(&row.unit)?.unwrap_or_default();
    let p = Provisioning {
        version: 1,
        server_url: url.to_string(),
        unit_code: row.unit.clone(),
        unit_name: unit_name.clone(),
        device_no,
        token,
        server_ca_pem: ca.map(|c| c.cert_pem.clone()),
        server_ca_sha256: ca.map(|c| c.fingerprint.clone()),
        first_officer: row.first_officer.clone(),
        station_id: Some(id.clone()),
        bundle_key: Some(bundle_key),
    };
    let (text, code) = if unsealed {
        (serde_json::to_string_pretty(&p)?, None)
    } else {
        let code = binhyen_protocol::provisioning::new_code();
        let sealed = binhyen_protocol::provisioning::seal(&p, &code)?;
        (serde_json::to_string_pretty(&sealed)?, Some(code))
    };
    Ok(Provisioned {
        id,
        unit: row.unit.clone(),
        unit_name,
        device_no,
        text,
        code,
    })
}

/// A round's files in `dir` (`UNIT-LAPTOP.json`, 0600) and the sheet the province's office
/// keeps to read each code out by phone (`danh-sach-cap-phep.pdf`): it never travels with
/// the files.
fn write_batch(made: &[Provisioned], url: &str, dir: &std::path::Path) -> Result<()> {
    binhyen_store::private_files::private_dir(dir)
        .with_context(|| format!("cannot make {}", dir.display()))?;
    let mut sheet = format!(
        "# DANH SÁCH CẤP PHÉP TRẠM BÌNH YÊN\n\nMáy chủ {} · {} trạm · lập ngày {}\n\nGiữ tại Công an tỉnh; không gửi kèm các tệp cấp phép. Đọc mã cho cán bộ cài đặt qua điện thoại khi họ đã ở trạm.\n\n## Các trạm\n\n",
        url,
        made.len(),
        binhyen_domain::time::format_vn_date(Utc::now())
    );
    for (i, m) in made.iter().enumerate() {
        let name = format!("{}-{}.json", m.unit, m.device_no);
        binhyen_store::private_files::write_private(&dir.join(&name), m.text.as_bytes())
            .with_context(|| format!("cannot write {}", dir.join(&name).display()))?;
        sheet.push_str(&format!(
            "{}. {} ({}) · máy số {} · tệp {} · mã {}\n",
            i + 1,
            m.unit_name,
            m.unit,
            m.device_no,
            name,
            m.code.as_deref().unwrap_or("(không niêm phong)")
        ));
        println!(
            "station {} (unit {}, laptop {}): {}",
            m.id,
            m.unit,
            m.device_no,
            dir.join(&name).display()
        );
    }
    let pdf = binhyen_store::report_pdf::guide_to_pdf(&sheet)?;
    let sheet_path = dir.join("danh-sach-cap-phep.pdf");
    binhyen_store::private_files::write_private(&sheet_path, &pdf)
        .with_context(|| format!("cannot write {}", sheet_path.display()))?;
    println!(
        "sheet of the codes (keep it at the province): {}",
        sheet_path.display()
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BINHYEN_LOG")
        .unwrap_or_else(|_| "info".into());
    match &cli.cmd {
        Cmd::Serve { log_format, .. } if log_format == "json" => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        Cmd::Serve { log_format, .. } if log_format != "text" => {
            bail!("--log-format {log_format:?}: use text or json")
        }
        _ => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    match cli.cmd {
        Cmd::Serve {
            db,
            listen,
            insecure_http,
            names,
            min_station_version,
            metrics_listen,
            log_format: _,
            tls_cert,
            tls_key,
        } => {
            if semver::Version::parse(&min_station_version).is_err() {
                bail!("--min-station-version {min_station_version:?} is not a version (0.2.0)");
            }
            let backend = open(&db)?;
            tokio::runtime::Runtime::new()?.block_on(serve(
                backend,
                listen,
                insecure_http,
                names,
                &min_station_version,
                metrics_listen,
                tls_cert.zip(tls_key),
            ))?;
        }
        Cmd::Backup { db, out } => {
            let (spec, key_file) = spec_and_key(&db)?;
            let passphrase = backup_passphrase(true)?;
            let summary = binhyen_server::backup::backup(&spec, &key_file, &out, &passphrase)?;
            tracing::info!(file = %out.display(), rows = summary.rows, "backup written");
            print_summary(&format!("backup written to {}", out.display()), &summary);
        }
        Cmd::Restore { db, file } => {
            let (spec, key_file) = spec_and_key(&db)?;
            let passphrase = backup_passphrase(false)?;
            let summary = binhyen_server::backup::restore(&spec, &key_file, &file, &passphrase)?;
            tracing::info!(file = %file.display(), rows = summary.rows, "backup restored");
            print_summary(
                &format!(
                    "restored from {} (vault key in {})",
                    file.display(),
                    key_file.display()
                ),
                &summary,
            );
        }
        Cmd::VerifyBackup { file } => {
            let passphrase = backup_passphrase(false)?;
            let summary = binhyen_server::backup::verify(&file, &passphrase)?;
            print_summary(&format!("{} is whole", file.display()), &summary);
        }
        Cmd::Release(ReleaseCmd::Publish {
            db,
            package,
            sig,
            units,
            percent,
        }) => {
            let signature = binhyen_protocol::release::signature_beside(&package, sig.as_deref())?;
            let size = std::fs::metadata(&package)
                .with_context(|| format!("cannot read {}", package.display()))?
                .len();
            if size > binhyen_protocol::release::MAX_PACKAGE_BYTES {
                bail!(
                    "{} is too large to be the station package",
                    package.display()
                );
            }
            let bytes = std::fs::read(&package)
                .with_context(|| format!("cannot read {}", package.display()))?;
            let audience = match (units.is_empty(), percent) {
                (false, _) => binhyen_server::release::Audience::Units(units),
                (true, Some(p)) => binhyen_server::release::Audience::Percent(p),
                (true, None) => binhyen_server::release::Audience::All,
            };
            let info = binhyen_server::release::publish(
                open(&db)?.as_ref(),
                &bytes,
                &signature,
                &audience,
                Utc::now(),
            )?;
            tracing::info!(version = %info.version, "release published");
            println!(
                "published {} ({}, {} bytes)",
                info.version, info.file, info.size
            );
        }
        Cmd::Release(ReleaseCmd::List { db, json }) => {
            let rows = open(&db)?.releases()?;
            if json {
                let rows: Vec<_> = rows
                    .into_iter()
                    .map(|r| {
                        serde_json::json!({"version": r.version, "file_name": r.file_name,
                            "size": r.size, "sha256": r.sha256, "units": r.units,
                            "percent": r.percent, "published_at": r.published_at,
                            "withdrawn_at": r.withdrawn_at})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    let to = match (&r.units, r.percent) {
                        (Some(u), _) => format!("units {u}"),
                        (None, Some(p)) => format!("{p}% of stations"),
                        (None, None) => "all stations".into(),
                    };
                    let state = match &r.withdrawn_at {
                        Some(at) => format!("withdrawn {at}"),
                        None => "available".into(),
                    };
                    println!(
                        "{}  {}  {}  {to}  {state}",
                        r.version, r.file_name, r.published_at
                    );
                }
            }
        }
        Cmd::Release(ReleaseCmd::Withdraw { db, version }) => {
            let backend = open(&db)?;
            if !backend.withdraw_release(&version, Utc::now())? {
                bail!("no release {version} available to withdraw (see release list)");
            }
            backend.record_event(Utc::now(), "release.withdraw", &version, "")?;
            println!("withdrawn {version}: stations discard it at their next sync");
        }
        Cmd::Report {
            db,
            unit,
            period,
            from,
            to,
            format,
            out,
        } => {
            let period = binhyen_domain::period::Period::from_args(period.as_deref(), from, to)
                .map_err(|m| anyhow::anyhow!(m))?;
            if out.is_none() && (format == "xlsx" || format == "pdf") {
                bail!("a {} report needs --out FILE", format.to_uppercase());
            }
            let started = std::time::Instant::now();
            let bytes = binhyen_server::report::export(
                open(&db)?.as_ref(),
                &unit,
                &period,
                &format,
                Utc::now(),
            )?;
            tracing::info!(unit = %unit, period = %period.label, format = %format,
                seconds = started.elapsed().as_secs_f64(), "report computed");
            match out {
                Some(path) => {
                    binhyen_protocol::bundle::write_file_atomically(&path, &bytes)?;
                    eprintln!(
                        "report {} of {unit} written to {}",
                        period.label,
                        path.display()
                    );
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        Cmd::Audit(AuditCmd::Server { db, limit }) => {
            for (at, action, target, detail) in open(&db)?.events(limit)? {
                println!(
                    "{}",
                    serde_json::json!({"at": at, "action": action, "target": target, "detail": detail})
                );
            }
        }
        Cmd::Audit(AuditCmd::Verify { db, station }) => {
            let backend = open(&db)?;
            let ids: Vec<String> = match station {
                Some(id) => vec![id],
                None => backend.stations()?.into_iter().map(|s| s.id).collect(),
            };
            let mut broken = 0;
            for id in ids {
                let chain = backend.audit_chain(&id)?;
                let anchor = chain.first().map(|e| (e.seq - 1, e.prev_hash.clone()));
                let result = binhyen_domain::audit::check_chain(
                    anchor.as_ref().map(|(s, h)| (*s, h.as_str())),
                    &chain,
                );
                let line = match &result {
                    Ok(()) => {
                        serde_json::json!({"station": id, "entries": chain.len(), "ok": true})
                    }
                    Err((seq, problem)) => {
                        broken += 1;
                        serde_json::json!({"station": id, "entries": chain.len(), "ok": false,
                                           "first_bad_seq": seq, "problem": problem})
                    }
                };
                println!("{line}");
            }
            if broken > 0 {
                bail!("{broken} station audit chain(s) do not hold");
            }
        }
        Cmd::Ca {
            db,
            tls_cert,
            hand_over_to,
            fingerprint,
            names,
            withdraw_hand_over,
        } => {
            let backend = open(&db)?;
            let ca = binhyen_server::tls::ensure_ca(&*backend)?;
            if let Some(file) = hand_over_to {
                let pem = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let h = binhyen_server::pki::hand_over(
                    &*backend,
                    &pem,
                    fingerprint.as_deref(),
                    &names,
                )?;
                eprintln!(
                    "the stations' trust is handed over to {} (its certificate ends {}), for {}; serve with --tls-cert and --tls-key",
                    h.subject,
                    h.ends.date_naive(),
                    h.names.join(", ")
                );
            }
            if withdraw_hand_over {
                if binhyen_server::pki::withdraw(&*backend)? {
                    eprintln!("the hand-over is withdrawn: restart the server without --tls-cert (it would refuse to start with it)");
                } else {
                    eprintln!("there was no hand-over to withdraw");
                }
            }
            print!("{}", ca.cert_pem);
            let now = chrono::Utc::now();
            eprintln!("{}", binhyen_server::tls::validity_report(&ca, now)?);
            for line in binhyen_server::pki::report(&*backend, tls_cert.as_deref(), now) {
                eprintln!("{line}");
            }
            // Last, alone on its line: what scripts read.
            eprintln!("SHA-256: {}", ca.fingerprint);
        }
        Cmd::Anchor {
            db,
            signature,
            province,
        } => {
            let backend = open(&db)?;
            if let (Some(sig), Some(province)) = (signature, province) {
                let text = std::fs::read_to_string(&sig)
                    .with_context(|| format!("cannot read {}", sig.display()))?;
                binhyen_server::anchor::certify(&*backend, &province, &text)?;
                eprintln!("the anchor's signature for province {province} is kept");
            }
            println!(
                "{}",
                binhyen_server::anchor::anchor_key(&*backend)?.public_hex()
            );
            let provinces = binhyen_server::anchor::certified_provinces(&*backend)?;
            if provinces.is_empty() {
                eprintln!(
                    "not signed yet: stations do not trust it until it is (scripts/sign-anchor.sh)"
                );
            } else {
                eprintln!("signed for province(s): {}", provinces.join(", "));
            }
        }
        Cmd::Bundle(BundleCmd::Import { db, file, reply }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let backend = open(&db)?;
            let (out, summary) = binhyen_server::bundle::import(&*backend, &bytes, Utc::now())?;
            binhyen_protocol::bundle::write_file_atomically(&reply, &out)
                .with_context(|| format!("cannot write {}", reply.display()))?;
            println!("{}", serde_json::to_string(&summary)?);
        }
        Cmd::Units(UnitsCmd::Import { db, file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let n = open(&db)?.import_units(&text)?;
            println!("imported {n} units");
        }
        Cmd::Station(StationCmd::Enroll {
            db,
            unit,
            batch,
            url,
            device,
            out,
            officer,
            officer_name,
            unsealed,
        }) => {
            let backend = open(&db)?;
            let https = url.starts_with("https://");
            let loopback_http =
                url.starts_with("http://") && binhyen_protocol::is_loopback_url(&url);
            if !(https || loopback_http) {
                bail!("--url must be https://HOST:PORT (plain http:// only for this machine)");
            }
            let rows = match (&batch, unit) {
                (Some(file), _) => read_batch(&*backend, file)?,
                (None, Some(unit)) => vec![BatchRow {
                    line: 0,
                    first_officer: first_officer(officer, officer_name)?,
                    unit,
                    device,
                }],
                (None, None) => bail!("give --unit, or --batch with a CSV file"),
            };
            let made = provision_stations(&*backend, &rows, &url, https, unsealed)?;
            if batch.is_some() {
                write_batch(&made, &url, &out)?;
            } else {
                let m = &made[0];
                binhyen_store::private_files::write_private(&out, m.text.as_bytes())
                    .with_context(|| format!("cannot write {}", out.display()))?;
                println!(
                    "station {} (unit {}, laptop {}): provisioning file {}",
                    m.id,
                    m.unit,
                    m.device_no,
                    out.display()
                );
                if let Some(code) = &m.code {
                    // The code goes by another way than the file: read out over the phone.
                    println!(
                        "code (read it out to the installer by phone, never with the file): {code}"
                    );
                }
            }
        }
        Cmd::Station(StationCmd::List { db, json }) => {
            let backend = open(&db)?;
            let rows = backend.stations()?;
            let seen = backend.stations_seen()?;
            let heads = backend.audit_heads()?;
            let waiting = backend.stations_waiting()?;
            if json {
                let rows: Vec<_> = rows
                    .into_iter()
                    .map(|r| {
                        let (version, last_sync) = seen
                            .get(&r.id)
                            .map(|(v, at)| {
                                (Some(v.clone()).filter(|v| !v.is_empty()), Some(at.clone()))
                            })
                            .unwrap_or_default();
                        let mut v = serde_json::to_value(&r).unwrap_or_default();
                        v["version"] = serde_json::json!(version);
                        v["last_sync_at"] = serde_json::json!(last_sync);
                        let head = heads.get(&r.id);
                        v["audit_last_seq"] = serde_json::json!(head.map(|h| h.0));
                        v["audit_last_at"] = serde_json::json!(head.map(|h| &h.1));
                        // Known from the station's last push; null when it never said.
                        let w = waiting.get(&r.id);
                        v["changes_waiting"] = serde_json::json!(w.map(|w| w.0));
                        v["changes_waiting_at"] = serde_json::json!(w.map(|w| &w.1));
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    let state = if r.revoked_at.is_some() {
                        "revoked"
                    } else if r.enrolled_at.is_some() {
                        "enrolled"
                    } else {
                        "waiting"
                    };
                    let (version, last) = match seen.get(&r.id) {
                        Some((v, at)) if !v.is_empty() => (v.as_str(), at.as_str()),
                        Some((_, at)) => ("?", at.as_str()),
                        None => ("-", "never synced"),
                    };
                    let audit = match heads.get(&r.id) {
                        Some((seq, at)) => format!("audit #{seq} of {at}"),
                        None => "no audit yet".to_string(),
                    };
                    let waiting = match waiting.get(&r.id) {
                        Some((n, at)) => {
                            format!("changes waiting: {n} (as the station said at {at})")
                        }
                        None => "changes waiting: unknown".to_string(),
                    };
                    println!(
                        "{}  {}  M{}  {state}  version {version}  last sync {last}  {waiting}  {audit}",
                        r.id, r.unit_code, r.device_no
                    );
                }
            }
        }
        Cmd::Account(AccountCmd::List { db, unit, json }) => {
            let rows = binhyen_server::accounts::list(open(&db)?.as_ref(), &unit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                rows.iter().for_each(print_account);
            }
        }
        Cmd::Account(AccountCmd::Add {
            db,
            unit,
            user,
            name,
            role,
        }) => {
            let db = open(&db)?;
            let a =
                binhyen_server::accounts::add(db.as_ref(), &unit, &user, &name, &role, Utc::now())?;
            tracing::info!(unit = %unit, user = %a.username, "account added");
            print_account(&a);
        }
        Cmd::Account(AccountCmd::Role {
            db,
            unit,
            user,
            role,
        }) => {
            let db = open(&db)?;
            let a =
                binhyen_server::accounts::set_role(db.as_ref(), &unit, &user, &role, Utc::now())?;
            tracing::info!(unit = %unit, user = %a.username, role = %a.role, "account role changed");
            print_account(&a);
        }
        Cmd::Account(AccountCmd::Disable { db, unit, user }) => {
            set_active(&db, &unit, &user, false)?;
        }
        Cmd::Account(AccountCmd::Enable { db, unit, user }) => {
            set_active(&db, &unit, &user, true)?;
        }
        Cmd::Station(StationCmd::RecoveryCode { db, id }) => {
            let db = open(&db)?;
            if db.station_with_key(&id)?.is_none() {
                bail!("no station {id}");
            }
            match db.recovery_code(&id)? {
                Some((code, stored_at)) => {
                    // On the record before it is shown: a read that is not recorded is not
                    // shown.
                    let who = std::env::var("SUDO_USER")
                        .or_else(|_| std::env::var("USER"))
                        .unwrap_or_default();
                    db.record_event(
                        Utc::now(),
                        "recovery.read",
                        &id,
                        &serde_json::json!({"stored_at": stored_at, "os_user": who}).to_string(),
                    )?;
                    tracing::warn!(station = %id, "recovery code read out");
                    println!("{code}");
                    eprintln!(
                        "Mã khôi phục của trạm {id} (nhận lúc {stored_at}). Trạm dùng mã này với \
                         `binhyen recover --user TÊN`; lần đồng bộ sau đó trạm gửi mã mới."
                    );
                }
                None => bail!(
                    "station {id} has not handed over a recovery code yet (it does so at its first sync)"
                ),
            }
        }
        Cmd::Station(StationCmd::Revoke { db, id }) => {
            if open(&db)?.revoke(&id, Utc::now())? {
                println!("station {id} revoked");
            } else {
                bail!("no active station {id}");
            }
        }
    }
    Ok(())
}
