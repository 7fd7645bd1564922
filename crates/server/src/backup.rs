//! The server's backup: every table, read in one consistent snapshot while the server goes on
//! serving (SQLite: a read transaction on a connection of its own, which WAL lets run beside
//! the writers; PostgreSQL: a `REPEATABLE READ` transaction), and the vault's key, so that a
//! restored server keeps its certificate authority, its anchor and every station's secrets,
//! and is trusted by every station without provisioning again.
//!
//! The file: a first line naming the format, a second holding the key derivation's salt
//! (Argon2id over the passphrase), then the content (JSON lines, compressed with zstd) in
//! chunks sealed one by one (XChaCha20-Poly1305 in the STREAM construction: a chunk moved,
//! dropped or cut off is refused, and the last chunk says it is the last). A backup is read
//! whole before a restore writes anything, and a restore goes only into an empty database.
//! The same file restores into SQLite or PostgreSQL, whichever it came from.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::db::{DbError, DbResult};

const MAGIC: &str = "BINHYEN-SERVER-BACKUP 1";
/// Plain bytes per sealed chunk.
const CHUNK: usize = 64 * 1024;
/// XChaCha20's 24-byte nonce less the STREAM construction's 5 bytes (counter and last flag).
const NONCE_PREFIX: usize = 19;

/// Every table, parents before children, as both backends name them.
pub const TABLES: [&str; 16] = [
    "units",
    "stations",
    "records",
    "checksum_sums",
    "conflicts",
    "changes",
    "server_meta",
    "audit_entries",
    "station_keys",
    "server_events",
    "station_recovery",
    "attachment_content",
    "station_seen",
    "station_waiting",
    "releases",
    "release_content",
];

/// How each table is read, so that a parent row comes before its children (units: provinces
/// before their communes).
fn order_of(table: &str) -> &'static str {
    match table {
        "units" => "ORDER BY (parent_code IS NOT NULL), code",
        "changes" => "ORDER BY seq",
        _ => "",
    }
}

fn err(e: impl std::fmt::Display) -> DbError {
    DbError::Other(e.to_string())
}

/// The head of the content: what made it and when.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    format: u32,
    created_at: String,
    from: String,
    /// The vault's key (hex): the server's secrets are sealed under it in the tables.
    vault_key: String,
}

/// One line of the content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Head(Head),
    Table { name: String, columns: Vec<String> },
    Row(Vec<Value>),
    End { rows: u64 },
}

/// What a backup holds, as `restore` and `backup` report it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub created_at: String,
    pub from: String,
    /// Rows per table.
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
}

fn derive(passphrase: &str, salt: &[u8]) -> DbResult<Zeroizing<[u8; 32]>> {
    if passphrase.chars().count() < 12 {
        return Err(err(
            "the backup passphrase must have at least 12 characters (BINHYEN_BACKUP_PASSPHRASE)",
        ));
    }
    let params = argon2::Params::new(64 * 1024, 3, 1, Some(32)).map_err(err)?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(err)?;
    Ok(key)
}

/// Seals what is written into chunks on `out`.
struct Sealer<W: Write> {
    out: W,
    enc: Option<EncryptorBE32<XChaCha20Poly1305>>,
    buf: Vec<u8>,
}

impl<W: Write> Sealer<W> {
    fn chunk(&mut self, last: bool) -> std::io::Result<()> {
        let data = std::mem::take(&mut self.buf);
        let sealed = if last {
            self.enc
                .take()
                .ok_or_else(|| std::io::Error::other("the backup is already closed"))?
                .encrypt_last(data.as_slice())
        } else {
            self.enc
                .as_mut()
                .ok_or_else(|| std::io::Error::other("the backup is already closed"))?
                .encrypt_next(data.as_slice())
        }
        .map_err(|_| std::io::Error::other("cannot seal the backup"))?;
        self.out.write_all(&[u8::from(last)])?;
        self.out.write_all(&(sealed.len() as u32).to_be_bytes())?;
        self.out.write_all(&sealed)
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.chunk(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.chunk(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens the chunks read from `input`; refuses a chunk changed, moved or missing, and a file
/// that ends before its last chunk.
struct Opener<R: Read> {
    input: R,
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    plain: Vec<u8>,
    at: usize,
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.plain.len() {
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let mut head = [0u8; 5];
            self.input.read_exact(&mut head).map_err(|_| {
                std::io::Error::other("the backup is cut short: its last part is missing")
            })?;
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            if len > CHUNK + 64 {
                return Err(std::io::Error::other("the backup is damaged"));
            }
            let mut sealed = vec![0u8; len];
            self.input.read_exact(&mut sealed).map_err(|_| {
                std::io::Error::other("the backup is cut short: its last part is missing")
            })?;
            let bad = || {
                std::io::Error::other(
                    "the backup does not open: a wrong passphrase, or a damaged file",
                )
            };
            self.plain = if head[0] == 1 {
                let dec = self.dec.take().ok_or_else(bad)?;
                let last = dec.decrypt_last(sealed.as_slice()).map_err(|_| bad())?;
                // Nothing may follow the last part.
                let mut more = [0u8; 1];
                if self.input.read(&mut more)? != 0 {
                    return Err(std::io::Error::other(
                        "the backup is damaged: something follows its end",
                    ));
                }
                last
            } else {
                dec.decrypt_next(sealed.as_slice()).map_err(|_| bad())?
            };
            self.at = 0;
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A value of a cell as the content holds it: blobs as `{"b64": …}`.
fn blob(bytes: &[u8]) -> Value {
    serde_json::json!({ "b64": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

fn unblob(v: &Value) -> Option<Vec<u8>> {
    v.get("b64")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
}

/// Reads every table of `spec` in one snapshot, giving each table's columns then its rows.
fn dump(spec: &str, emit: &mut dyn FnMut(Line) -> DbResult<()>) -> DbResult<()> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        // A connection of its own: the server's goes on writing beside this read.
        let mut conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        for table in &TABLES {
            let mut stmt = tx.prepare(&format!("SELECT * FROM {table} {}", order_of(table)))?;
            let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
            emit(Line::Table {
                name: table.to_string(),
                columns: columns.clone(),
            })?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let mut cells = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    use rusqlite::types::ValueRef;
                    cells.push(match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::from(n),
                        ValueRef::Real(f) => Value::from(f),
                        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => blob(b),
                    });
                }
                emit(Line::Row(cells))?;
            }
        }
        return Ok(());
    }
    let mut client = postgres::Client::connect(spec, postgres::NoTls)?;
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    for table in &TABLES {
        let stmt = tx.prepare(&format!("SELECT * FROM {table} {}", order_of(table)))?;
        let columns: Vec<String> = stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        emit(Line::Table {
            name: table.to_string(),
            columns,
        })?;
        // In portions, so that a large table is never held whole.
        let portal = tx.bind(&stmt, &[])?;
        // Files (up to 20 MiB a row) a few at a time; other rows by the hundred.
        let portion = if table.ends_with("_content") { 4 } else { 500 };
        loop {
            let rows = tx.query_portal(&portal, portion)?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let mut cells = Vec::with_capacity(r.len());
                for (i, c) in r.columns().iter().enumerate() {
                    use postgres::types::Type;
                    let t = c.type_();
                    cells.push(if *t == Type::INT8 {
                        r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::from)
                    } else if *t == Type::INT4 {
                        r.get::<_, Option<i32>>(i).map_or(Value::Null, Value::from)
                    } else if *t == Type::INT2 {
                        r.get::<_, Option<i16>>(i).map_or(Value::Null, Value::from)
                    } else if *t == Type::BOOL {
                        r.get::<_, Option<bool>>(i).map_or(Value::Null, Value::from)
                    } else if *t == Type::FLOAT8 {
                        r.get::<_, Option<f64>>(i).map_or(Value::Null, Value::from)
                    } else if *t == Type::BYTEA {
                        r.get::<_, Option<Vec<u8>>>(i)
                            .map_or(Value::Null, |b| blob(&b))
                    } else {
                        r.try_get::<_, Option<String>>(i)
                            .map_err(|e| err(format!("{table}.{}: {e}", c.name())))?
                            .map_or(Value::Null, Value::from)
                    });
                }
                emit(Line::Row(cells))?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Writes a backup of the database `spec` (and of the vault key in `key_file`) to `out`,
/// sealed under `passphrase`. The file appears whole or not at all.
pub fn backup(spec: &str, key_file: &Path, out: &Path, passphrase: &str) -> DbResult<Summary> {
    let vault_key = std::fs::read_to_string(key_file)
        .map_err(|e| err(format!("the vault's key file {}: {e}", key_file.display())))?;
    let mut salt = [0u8; 16];
    let mut prefix = [0u8; NONCE_PREFIX];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut prefix);
    let key = derive(passphrase, &salt)?;
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let mut file = std::io::BufWriter::new(tmp.reopen().map_err(err)?);
    let b64 = base64::engine::general_purpose::STANDARD;
    writeln!(file, "{MAGIC}").map_err(err)?;
    writeln!(file, "{} {}", b64.encode(salt), b64.encode(prefix)).map_err(err)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let sealer = Sealer {
        out: file,
        enc: Some(EncryptorBE32::from_aead(cipher, prefix.as_ref().into())),
        buf: Vec::with_capacity(CHUNK),
    };
    let mut z = zstd::Encoder::new(sealer, 3).map_err(err)?;
    let created_at = chrono::Utc::now().to_rfc3339();
    let from = if spec.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgresql"
    };
    let mut summary = Summary {
        created_at: created_at.clone(),
        from: from.into(),
        ..Default::default()
    };
    let put = |line: &Line, z: &mut zstd::Encoder<'_, Sealer<_>>| -> DbResult<()> {
        serde_json::to_writer(&mut *z, line).map_err(err)?;
        z.write_all(b"\n").map_err(err)
    };
    put(
        &Line::Head(Head {
            format: 1,
            created_at,
            from: from.into(),
            vault_key: vault_key.trim().to_string(),
        }),
        &mut z,
    )?;
    dump(spec, &mut |line| {
        match &line {
            Line::Table { name, .. } => summary.tables.push((name.clone(), 0)),
            Line::Row(_) => {
                summary.rows += 1;
                if let Some(t) = summary.tables.last_mut() {
                    t.1 += 1;
                }
            }
            _ => {}
        }
        put(&line, &mut z)
    })?;
    put(&Line::End { rows: summary.rows }, &mut z)?;
    let sealer = z.finish().map_err(err)?;
    let file = sealer.finish().map_err(err)?;
    file.into_inner()
        .map_err(|e| err(e.to_string()))?
        .sync_all()
        .map_err(err)?;
    binhyen_store::private_files::make_private(tmp.path()).map_err(err)?;
    tmp.persist(out)
        .map_err(|e| err(format!("{}: {e}", out.display())))?;
    Ok(summary)
}

/// Reads the backup at `path` through, calling `each` for every line; refuses a file that
/// is not whole.
fn read(path: &Path, passphrase: &str, each: &mut dyn FnMut(Line) -> DbResult<()>) -> DbResult<()> {
    let file = std::fs::File::open(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let mut input = BufReader::new(file);
    // The two head lines are short: a file that is not a backup is not read far.
    let mut magic = String::new();
    (&mut input).take(64).read_line(&mut magic).map_err(err)?;
    if magic.trim_end() != MAGIC {
        return Err(err(format!(
            "{} is not a backup of the Bình Yên server",
            path.display()
        )));
    }
    let mut salts = String::new();
    (&mut input).take(128).read_line(&mut salts).map_err(err)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (salt, prefix) = salts
        .trim_end()
        .split_once(' ')
        .and_then(|(s, p)| Some((b64.decode(s).ok()?, b64.decode(p).ok()?)))
        .filter(|(s, p)| s.len() == 16 && p.len() == NONCE_PREFIX)
        .ok_or_else(|| err("the backup's head is damaged"))?;
    let key = derive(passphrase, &salt)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let opener = Opener {
        input,
        dec: Some(DecryptorBE32::from_aead(cipher, prefix.as_slice().into())),
        plain: Vec::new(),
        at: 0,
    };
    let z = zstd::Decoder::new(opener).map_err(err)?;
    let mut ended = false;
    for line in BufReader::new(z).lines() {
        let line = line.map_err(err)?;
        if ended {
            return Err(err("the backup goes on after its end"));
        }
        let parsed: Line =
            serde_json::from_str(&line).map_err(|e| err(format!("the backup is damaged: {e}")))?;
        ended = matches!(parsed, Line::End { .. });
        each(parsed)?;
    }
    if !ended {
        return Err(err("the backup is cut short: its end is missing"));
    }
    Ok(())
}

/// Checks the backup at `path` whole (it opens, every part is there, its count of rows is
/// right) and says what it holds.
pub fn verify(path: &Path, passphrase: &str) -> DbResult<Summary> {
    let mut s = Summary::default();
    let mut counted = 0u64;
    let mut head = false;
    read(path, passphrase, &mut |line| {
        match line {
            Line::Head(h) => {
                head = true;
                s.created_at = h.created_at;
                s.from = h.from;
            }
            Line::Table { name, .. } => {
                if !TABLES.contains(&name.as_str()) {
                    return Err(err(format!("the backup holds an unknown table {name:?}")));
                }
                s.tables.push((name, 0));
            }
            Line::Row(_) => {
                counted += 1;
                match s.tables.last_mut() {
                    Some(t) => t.1 += 1,
                    None => return Err(err("the backup is damaged: a row before its table")),
                }
            }
            Line::End { rows } => {
                if rows != counted {
                    return Err(err(format!(
                        "the backup is damaged: it says {rows} rows and holds {counted}"
                    )));
                }
            }
        }
        Ok(())
    })?;
    if !head {
        return Err(err("the backup is damaged: its head is missing"));
    }
    s.rows = counted;
    Ok(s)
}

/// Restores the backup at `path` into the database `spec`, which must hold no station and
/// no record, and writes the vault's key to `key_file` (which must not hold another key).
/// The file is checked whole first; the rows go in one transaction.
pub fn restore(spec: &str, key_file: &Path, path: &Path, passphrase: &str) -> DbResult<Summary> {
    let summary = verify(path, passphrase)?;
    // The key file: absent, or holding the backup's own key (checked below); unreadable is
    // an error, not "absent".
    let existing_key = match std::fs::read_to_string(key_file) {
        Ok(k) => Some(k),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(format!("{}: {e}", key_file.display()))),
    };
    // The tables exist (made as a server makes them).
    drop(crate::db::open(spec)?);
    let mut key_hex = String::new();
    let mut write = Writer::open(spec)?;
    // Checked inside the write transaction: nothing can land between the check and the rows.
    write.require_empty()?;
    write.clear()?;
    read(path, passphrase, &mut |line| match line {
        Line::Head(h) => {
            key_hex = h.vault_key;
            Ok(())
        }
        Line::Table { name, columns } => write.table(&name, &columns),
        Line::Row(cells) => write.row(&cells),
        Line::End { .. } => Ok(()),
    })?;
    let key_hex = Zeroizing::new(key_hex.trim().to_string());
    if key_hex.len() != 64 || !key_hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(
            "the backup's vault key is damaged (nothing was restored)",
        ));
    }
    match &existing_key {
        Some(k) if k.trim() != key_hex.as_str() => {
            return Err(err(format!(
                "{} holds another vault key: move it away first (nothing was restored)",
                key_file.display()
            )))
        }
        Some(_) => write.commit()?,
        None => {
            // The key file first (written whole, 0600), then the rows: a restore that fails
            // after it leaves an empty database and can be run again.
            if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                binhyen_store::private_files::private_dir(dir).map_err(err)?;
            }
            let tmp = key_file.with_extension("key.restoring");
            binhyen_store::private_files::write_private(
                &tmp,
                format!("{}\n", key_hex.as_str()).as_bytes(),
            )
            .map_err(err)?;
            std::fs::rename(&tmp, key_file)
                .map_err(|e| err(format!("{}: {e}", key_file.display())))?;
            if let Err(e) = write.commit() {
                let _ = std::fs::remove_file(key_file);
                return Err(e);
            }
        }
    }
    Ok(summary)
}

/// How far past the last change restored the next one is numbered. Stations pulled up to
/// the server's last change before it was lost, which may be past the backup's: their next
/// pull must find what comes after the restore (their changes pushed again by the
/// checksum's repair, the others' new ones), so numbers start well beyond any they saw.
pub const SEQ_GAP: i64 = 1_000_000_000;

/// Inserts rows into one backend, in one transaction.
enum Writer {
    Sqlite(rusqlite::Connection, Option<(String, usize)>),
    Pg(postgres::Client, Option<(postgres::Statement, usize)>, bool),
}

impl Writer {
    fn open(spec: &str) -> DbResult<Writer> {
        if let Some(path) = spec.strip_prefix("sqlite:") {
            let conn = rusqlite::Connection::open(path)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            return Ok(Writer::Sqlite(conn, None));
        }
        let mut client = postgres::Client::connect(spec, postgres::NoTls)?;
        client.batch_execute("BEGIN")?;
        // No server writes while the check and the rows go in.
        client.batch_execute(&format!(
            "LOCK TABLE {} IN EXCLUSIVE MODE",
            TABLES.join(", ")
        ))?;
        Ok(Writer::Pg(client, None, false))
    }

    /// Refuses a database that holds anything but what a server writes when it first opens
    /// one (the checksum sums' mark): a restore never replaces a server's data.
    fn require_empty(&mut self) -> DbResult<()> {
        for table in TABLES {
            let sql = if table == "server_meta" {
                "SELECT count(*) FROM server_meta WHERE key <> 'checksum_sums'".to_string()
            } else if table == "units" || table == "checksum_sums" {
                // Units are the official list (imported before a restore or not); the sums
                // are recomputed from the records restored.
                continue;
            } else {
                format!("SELECT count(*) FROM {table}")
            };
            let n: i64 = match self {
                Writer::Sqlite(c, _) => c.query_row(&sql, [], |r| r.get(0))?,
                Writer::Pg(c, ..) => c.query_one(&sql, &[])?.get(0),
            };
            if n > 0 {
                return Err(err(format!(
                    "the database is not empty ({table} holds {n} rows): a backup is restored only into a new, empty database"
                )));
            }
        }
        Ok(())
    }

    /// Empties every table (a new database holds rows the server writes at its first
    /// opening, which the backup's replace).
    fn clear(&mut self) -> DbResult<()> {
        for table in TABLES.iter().rev() {
            let sql = format!("DELETE FROM {table}");
            match self {
                Writer::Sqlite(c, _) => {
                    c.execute_batch(&sql)?;
                }
                Writer::Pg(c, ..) => {
                    c.batch_execute(&sql)?;
                }
            }
        }
        Ok(())
    }

    fn table(&mut self, name: &str, columns: &[String]) -> DbResult<()> {
        if !TABLES.contains(&name)
            || !columns.iter().all(|c| {
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch.is_ascii_digit())
            })
        {
            return Err(err(format!(
                "the backup names a table or column not allowed: {name}"
            )));
        }
        let cols = columns.join(", ");
        match self {
            Writer::Sqlite(_, current) => {
                let marks = (1..=columns.len())
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                *current = Some((
                    format!("INSERT INTO {name} ({cols}) VALUES ({marks})"),
                    columns.len(),
                ));
            }
            Writer::Pg(c, current, has_changes) => {
                let marks = (1..=columns.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let stmt = c.prepare(&format!("INSERT INTO {name} ({cols}) VALUES ({marks})"))?;
                *current = Some((stmt, columns.len()));
                if name == "changes" {
                    *has_changes = true;
                }
            }
        }
        Ok(())
    }

    fn row(&mut self, cells: &[Value]) -> DbResult<()> {
        match self {
            Writer::Sqlite(c, current) => {
                let (sql, n) = current
                    .as_ref()
                    .ok_or_else(|| err("a row before its table"))?;
                if cells.len() != *n {
                    return Err(err("the backup is damaged: a row of the wrong width"));
                }
                let values: Vec<rusqlite::types::Value> = cells
                    .iter()
                    .map(|v| match v {
                        Value::Null => rusqlite::types::Value::Null,
                        Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
                        Value::Number(n) => match n.as_i64() {
                            Some(i) => rusqlite::types::Value::Integer(i),
                            None => rusqlite::types::Value::Real(n.as_f64().unwrap_or(0.0)),
                        },
                        Value::String(s) => rusqlite::types::Value::Text(s.clone()),
                        other => match unblob(other) {
                            Some(b) => rusqlite::types::Value::Blob(b),
                            None => rusqlite::types::Value::Text(other.to_string()),
                        },
                    })
                    .collect();
                c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(values.iter()))?;
            }
            Writer::Pg(c, current, _) => {
                let (stmt, n) = current
                    .as_ref()
                    .ok_or_else(|| err("a row before its table"))?;
                if cells.len() != *n {
                    return Err(err("the backup is damaged: a row of the wrong width"));
                }
                use postgres::types::{ToSql, Type};
                let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(*n);
                for (v, t) in cells.iter().zip(stmt.params()) {
                    let p: Box<dyn ToSql + Sync> = if *t == Type::INT8 {
                        Box::new(v.as_i64())
                    } else if *t == Type::INT4 {
                        let n = v.as_i64().map(i32::try_from).transpose();
                        Box::new(n.map_err(|_| err("the backup is damaged: a number too large"))?)
                    } else if *t == Type::INT2 {
                        let n = v.as_i64().map(i16::try_from).transpose();
                        Box::new(n.map_err(|_| err("the backup is damaged: a number too large"))?)
                    } else if *t == Type::BOOL {
                        Box::new(v.as_bool().or_else(|| v.as_i64().map(|i| i != 0)))
                    } else if *t == Type::FLOAT8 {
                        Box::new(v.as_f64())
                    } else if *t == Type::BYTEA {
                        Box::new(unblob(v))
                    } else {
                        Box::new(match v {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                    };
                    params.push(p);
                }
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
                c.execute(stmt, &refs)?;
            }
        }
        Ok(())
    }

    fn commit(self) -> DbResult<()> {
        match self {
            Writer::Sqlite(c, _) => {
                c.execute_batch(&format!(
                    "INSERT INTO changes (seq, change_id, origin, unit_code, entity, entity_id, op, hlc, data, received_at)
                     SELECT COALESCE(max(seq), 0) + {SEQ_GAP}, 'restore-gap', 'restore', '', '', '', 'gap', '', '{{}}', ''
                     FROM changes;
                     DELETE FROM changes WHERE change_id = 'restore-gap';
                     COMMIT"
                ))?;
            }
            Writer::Pg(mut c, _, has_changes) => {
                if has_changes {
                    c.batch_execute(&format!(
                        "SELECT setval(pg_get_serial_sequence('changes', 'seq'),
                                       COALESCE((SELECT max(seq) FROM changes), 0) + {SEQ_GAP}, false)"
                    ))?;
                }
                c.batch_execute("COMMIT")?;
            }
        }
        Ok(())
    }
}
