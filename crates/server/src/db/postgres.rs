//! The production backend: PostgreSQL. Same tables and the same shared push logic as the
//! SQLite backend; pushes take an exclusive lock on `changes`, so sequence numbers are
//! handed out in commit order and no change can commit behind a station's cursor.

use chrono::{DateTime, Utc};
use postgres::types::Type;
use postgres::{Client, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use binhyen_domain::audit::AuditRecord;
use binhyen_protocol::wire::{AuditPush, PulledChange, WireChange};

use binhyen_domain::checksum::Sums;

use super::{
    push_with, scope_checksum, wire_change, Backend, DbError, DbResult, PushOutcome, ReleaseRow,
    ScopeRecord, ScopeScan, ScopeSums, ServerStats, StationRow, StoredRecord, StoredSums, Tx,
    SCHEMA,
};
use std::collections::BTreeMap;

pub struct PgBackend {
    /// A few connections, so that reads (pulls, checksums, the station list) go on beside
    /// a push; pushes still take their turn on the `changes` lock, in commit order.
    pool: Option<r2d2::Pool<PostgresConnectionManager<NoTls>>>,
    /// The turn of the writers that lock `changes` (pushes, full checksum scans).
    turn: std::sync::Mutex<()>,
}

/// How many connections the server keeps to PostgreSQL at most.
const POOL_SIZE: u32 = 8;

impl Drop for PgBackend {
    fn drop(&mut self) {
        // The synchronous client blocks when it closes, which must not happen on an async
        // worker thread (the server drops its storage there when it shuts down).
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// Puts each new connection in the test's own schema, if any.
#[derive(Debug)]
struct InSchema(Option<String>);

impl r2d2::CustomizeConnection<Client, postgres::Error> for InSchema {
    fn on_acquire(&self, conn: &mut Client) -> Result<(), postgres::Error> {
        if let Some(s) = &self.0 {
            conn.batch_execute(&format!("SET search_path TO {s}"))?;
        }
        Ok(())
    }
}

const STATION_COLS: &str = "id, unit_code, device_no, created_at, enrolled_at, revoked_at";

fn row_station(r: &postgres::Row) -> StationRow {
    StationRow {
        id: r.get(0),
        unit_code: r.get(1),
        device_no: r.get::<_, i32>(2).max(0) as u32,
        created_at: r.get(3),
        enrolled_at: r.get(4),
        revoked_at: r.get(5),
    }
}

impl PgBackend {
    /// Connects and creates the tables if needed. `schema` (tests) isolates a run in its
    /// own PostgreSQL schema.
    pub fn open(url: &str, schema: Option<&str>) -> DbResult<PgBackend> {
        let mut client = Client::connect(url, NoTls)?;
        // "already exists, skipping" at every start is no news for the log.
        client.batch_execute("SET client_min_messages TO warning")?;
        if let Some(s) = schema {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(DbError::Other(format!("bad schema name {s:?}")));
            }
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
            ))?;
        }
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS changes (
                seq BIGSERIAL PRIMARY KEY, change_id TEXT NOT NULL UNIQUE, origin TEXT NOT NULL,
                unit_code TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, op TEXT NOT NULL,
                hlc TEXT NOT NULL, data TEXT NOT NULL, base TEXT, received_at TEXT NOT NULL)",
        )?;
        for sql in SCHEMA {
            client.batch_execute(sql)?;
        }
        fill_sums(&mut client)?;
        // The first connection is the pool's first (a bad address was said above, at once).
        let config: postgres::Config = url.parse()?;
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(std::time::Duration::from_secs(30))
            .connection_customizer(Box::new(InSchema(schema.map(str::to_string))))
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        // The connection made above goes back to the server here, off any async thread.
        let _ = std::thread::spawn(move || drop(client)).join();
        Ok(PgBackend {
            pool: Some(pool),
            turn: std::sync::Mutex::new(()),
        })
    }

    /// A connection of the pool, waiting for one to be free (or made) if needed; an error
    /// when PostgreSQL gives none within 30 s.
    fn lock(&self) -> DbResult<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool
            .as_ref()
            .ok_or_else(|| DbError::Other("the database is closed".into()))?
            .get()
            .map_err(|e| DbError::Other(format!("PostgreSQL does not answer: {e}")))
    }
}

/// Fills the checksum's running sums from every record, once (a database from before them).
fn fill_sums(client: &mut Client) -> DbResult<()> {
    let mut tx = client.transaction()?;
    tx.batch_execute("LOCK TABLE changes IN EXCLUSIVE MODE")?;
    let done = tx
        .query_opt("SELECT 1 FROM server_meta WHERE key = 'checksum_sums'", &[])?
        .is_some();
    if !done {
        // Read a record at a time: a province's server may hold millions.
        let mut sums = ScopeSums::default();
        {
            use postgres::fallible_iterator::FallibleIterator;
            let mut rows = tx.query_raw(
                "SELECT unit_code, entity, entity_id, versions, deleted FROM records",
                std::iter::empty::<&str>(),
            )?;
            while let Some(r) = rows.next()? {
                sums.add(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            }
        }
        tx.execute("DELETE FROM checksum_sums", &[])?;
        for ((unit, entity), s) in &sums.finish() {
            tx.add_sums(unit, entity, s)?;
        }
        tx.execute(
            "INSERT INTO server_meta(key, value) VALUES ('checksum_sums', '1')",
            &[],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The stored running sums of a unit and its communes, per (unit, entity), zeros left out.
fn stored_sums(
    client: &mut impl postgres::GenericClient,
    unit: &str,
) -> DbResult<std::collections::BTreeMap<(String, String), Sums>> {
    Ok(client
        .query(
            "SELECT unit_code, entity, n, a, b, c, d FROM checksum_sums
             WHERE unit_code = $1 OR unit_code IN (SELECT code FROM units WHERE parent_code = $1)",
            &[&unit],
        )?
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                Sums {
                    n: r.get(2),
                    lanes: [r.get(3), r.get(4), r.get(5), r.get(6)],
                },
            )
        })
        .filter(|(_, s)| !s.is_zero())
        .collect())
}

impl Tx for Transaction<'_> {
    fn unit_records(&mut self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>> {
        Ok(self
            .query(
                "SELECT entity_id, vals FROM records
                 WHERE unit_code = $1 AND entity = $2 AND deleted IS NULL ORDER BY entity_id",
                &[&unit, &entity],
            )?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn meta_set(&mut self, key: &str, value: &str) -> DbResult<()> {
        self.execute(
            "INSERT INTO server_meta(key, value) VALUES ($1, $2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn meta_init(&mut self, key: &str, value: &str) -> DbResult<String> {
        self.execute(
            "INSERT INTO server_meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING",
            &[&key, &value],
        )?;
        Ok(self
            .query_one("SELECT value FROM server_meta WHERE key = $1", &[&key])?
            .get(0))
    }

    fn insert_unit_if_absent(&mut self, code: &str, name: &str) -> DbResult<usize> {
        Ok(self.execute(
            "INSERT INTO units(code, name, parent_code) VALUES ($1, $2, NULL) ON CONFLICT (code) DO NOTHING",
            &[&code, &name],
        )? as usize)
    }

    fn upsert_unit(&mut self, code: &str, name: &str, parent: &str) -> DbResult<()> {
        self.execute(
            "INSERT INTO units(code, name, parent_code) VALUES ($1, $2, $3)
             ON CONFLICT(code) DO UPDATE SET name = excluded.name, parent_code = excluded.parent_code",
            &[&code, &name, &parent],
        )?;
        Ok(())
    }

    fn unit_known(&mut self, code: &str) -> DbResult<bool> {
        Ok(self
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM units WHERE code = $1)",
                &[&code],
            )?
            .get(0))
    }

    fn next_device(&mut self, unit: &str) -> DbResult<u32> {
        let next: i32 = self
            .query_one(
                "SELECT COALESCE(max(device_no), 0) + 1 FROM stations WHERE unit_code = $1",
                &[&unit],
            )?
            .get(0);
        Ok(next.max(1) as u32)
    }

    fn device_taken(&mut self, unit: &str, device: u32) -> DbResult<bool> {
        Ok(self
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM stations WHERE unit_code = $1 AND device_no = $2 AND revoked_at IS NULL)",
                &[&unit, &(device as i32)],
            )?
            .get(0))
    }

    fn insert_station(
        &mut self,
        id: &str,
        unit: &str,
        device: u32,
        token_hash: &str,
        at: &str,
    ) -> DbResult<()> {
        self.execute(
            "INSERT INTO stations(id, unit_code, device_no, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &unit, &(device as i32), &token_hash, &at],
        )?;
        Ok(())
    }

    fn scan_scope(&mut self, unit: &str, scan: &mut ScopeScan) -> DbResult<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut rows = self.query_raw(
            "SELECT unit_code, entity, entity_id, versions, deleted FROM records
             WHERE unit_code = $1 OR unit_code IN (SELECT code FROM units WHERE parent_code = $1)
             ORDER BY entity COLLATE \"C\", entity_id COLLATE \"C\"",
            [&unit],
        )?;
        while let Some(r) = rows.next()? {
            scan.add(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        }
        Ok(())
    }

    fn stored_sums(&mut self, unit: &str) -> DbResult<StoredSums> {
        stored_sums(self, unit)
    }

    fn clear_sums(&mut self, unit: &str) -> DbResult<()> {
        self.execute(
            "DELETE FROM checksum_sums
             WHERE unit_code = $1 OR unit_code IN (SELECT code FROM units WHERE parent_code = $1)",
            &[&unit],
        )?;
        Ok(())
    }

    fn audit_last(&mut self, station_id: &str) -> DbResult<Option<(i64, String)>> {
        Ok(self
            .query_opt(
                "SELECT seq, hash FROM audit_entries WHERE station_id = $1 ORDER BY seq DESC LIMIT 1",
                &[&station_id],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn audit_hash(&mut self, station_id: &str, seq: i64) -> DbResult<Option<String>> {
        Ok(self
            .query_opt(
                "SELECT hash FROM audit_entries WHERE station_id = $1 AND seq = $2",
                &[&station_id, &seq],
            )?
            .map(|r| r.get(0)))
    }

    fn insert_audit(
        &mut self,
        station_id: &str,
        e: &AuditRecord,
        received_at: &str,
    ) -> DbResult<()> {
        self.execute(
            "INSERT INTO audit_entries(station_id, seq, at, actor, action, target, detail, prev_hash, hash, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&station_id, &e.seq, &e.at, &e.actor, &e.action, &e.target, &e.detail, &e.prev_hash, &e.hash, &received_at],
        )?;
        Ok(())
    }

    fn add_sums(&mut self, unit: &str, entity: &str, s: &Sums) -> DbResult<()> {
        self.execute(
            "INSERT INTO checksum_sums(unit_code, entity, n, a, b, c, d) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT(unit_code, entity) DO UPDATE SET n = checksum_sums.n + excluded.n,
                 a = checksum_sums.a + excluded.a, b = checksum_sums.b + excluded.b,
                 c = checksum_sums.c + excluded.c, d = checksum_sums.d + excluded.d",
            &[&unit, &entity, &s.n, &s.lanes[0], &s.lanes[1], &s.lanes[2], &s.lanes[3]],
        )?;
        Ok(())
    }

    fn scope_units(&mut self, unit: &str) -> DbResult<Vec<String>> {
        Ok(self
            .query(
                "SELECT code FROM units WHERE code = $1 OR parent_code = $1",
                &[&unit],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn change_exists(&mut self, change_id: &str) -> DbResult<bool> {
        Ok(self
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM changes WHERE change_id = $1)",
                &[&change_id],
            )?
            .get(0))
    }

    fn changes_known(&mut self, ids: &[&str]) -> DbResult<std::collections::HashSet<String>> {
        Ok(self
            .query_typed(
                "SELECT change_id FROM changes WHERE change_id = ANY($1)",
                &[(&ids, Type::TEXT_ARRAY)],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn records_many(
        &mut self,
        keys: &[(&str, &str)],
    ) -> DbResult<std::collections::HashMap<(String, String), StoredRecord>> {
        let (entities, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        Ok(self
            .query_typed(
                "SELECT r.entity, r.entity_id, r.unit_code, r.vals, r.versions, r.deleted
                 FROM records r JOIN unnest($1::text[], $2::text[]) AS k(entity, entity_id)
                   ON r.entity = k.entity AND r.entity_id = k.entity_id",
                &[(&entities, Type::TEXT_ARRAY), (&ids, Type::TEXT_ARRAY)],
            )?
            .iter()
            .map(|r| {
                (
                    (r.get(0), r.get(1)),
                    (r.get(2), r.get(3), r.get(4), r.get(5)),
                )
            })
            .collect())
    }

    fn record(&mut self, entity: &str, id: &str) -> DbResult<Option<StoredRecord>> {
        Ok(self
            .query_opt(
                "SELECT unit_code, vals, versions, deleted FROM records WHERE entity = $1 AND entity_id = $2",
                &[&entity, &id],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
    }

    fn put_record(
        &mut self,
        entity: &str,
        id: &str,
        unit: &str,
        vals: &str,
        versions: &str,
        deleted: Option<&str>,
    ) -> DbResult<()> {
        // Typed: one round trip, no separate preparation (pushes do this for every change).
        self.execute_typed(
            "INSERT INTO records(entity, entity_id, unit_code, vals, versions, deleted) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT(entity, entity_id) DO UPDATE SET vals = excluded.vals, versions = excluded.versions, deleted = excluded.deleted",
            &[
                (&entity, Type::TEXT),
                (&id, Type::TEXT),
                (&unit, Type::TEXT),
                (&vals, Type::TEXT),
                (&versions, Type::TEXT),
                (&deleted, Type::TEXT),
            ],
        )?;
        Ok(())
    }

    fn insert_conflict(
        &mut self,
        id: &str,
        entity: &str,
        entity_id: &str,
        field: &str,
        kind: &str,
        at: &str,
    ) -> DbResult<usize> {
        Ok(self.execute(
            "INSERT INTO conflicts(id, entity, entity_id, field, kind, detected_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING",
            &[&id, &entity, &entity_id, &field, &kind, &at],
        )? as usize)
    }

    fn insert_change(&mut self, c: &WireChange, origin: &str, at: &str) -> DbResult<()> {
        let data = super::object_text(&c.data)?;
        let base = c.base.as_ref().map(super::object_text).transpose()?;
        self.execute_typed(
            "INSERT INTO changes(change_id, origin, unit_code, entity, entity_id, op, hlc, data, base, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                (&c.change_id, Type::TEXT),
                (&origin, Type::TEXT),
                (&c.unit_code, Type::TEXT),
                (&c.entity, Type::TEXT),
                (&c.entity_id, Type::TEXT),
                (&c.op, Type::TEXT),
                (&c.hlc, Type::TEXT),
                (&data, Type::TEXT),
                (&base, Type::TEXT),
                (&at, Type::TEXT),
            ],
        )?;
        Ok(())
    }

    fn open_conflicts(&mut self, entity: &str, entity_id: &str) -> DbResult<Vec<(String, String)>> {
        Ok(self
            .query_typed(
                "SELECT id, field FROM conflicts WHERE entity = $1 AND entity_id = $2 AND resolved_at IS NULL ORDER BY id COLLATE \"C\"",
                &[(&entity, Type::TEXT), (&entity_id, Type::TEXT)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn close_conflict(&mut self, id: &str, at: &str) -> DbResult<()> {
        self.execute(
            "UPDATE conflicts SET resolved_at = $2 WHERE id = $1",
            &[&id, &at],
        )?;
        Ok(())
    }
}

impl Backend for PgBackend {
    fn import_units(&self, csv_text: &str) -> DbResult<usize> {
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        let n = super::rules::import_units(&mut tx, csv_text)?;
        tx.commit()?;
        Ok(n)
    }

    fn unit_name(&self, code: &str) -> DbResult<Option<String>> {
        Ok(self
            .lock()?
            .query_opt("SELECT name FROM units WHERE code = $1", &[&code])?
            .map(|r| r.get(0)))
    }

    fn unit_exists(&self, code: &str) -> DbResult<bool> {
        Ok(self
            .lock()?
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM units WHERE code = $1)",
                &[&code],
            )?
            .get(0))
    }

    fn create_station(
        &self,
        unit_code: &str,
        device_no: Option<u32>,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> DbResult<(String, u32)> {
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        tx.batch_execute("LOCK TABLE stations IN EXCLUSIVE MODE")?;
        let out = super::rules::create_station(&mut tx, unit_code, device_no, token_hash, now)?;
        tx.commit()?;
        Ok(out)
    }

    fn stations(&self) -> DbResult<Vec<StationRow>> {
        Ok(self
            .lock()?
            .query(
                &format!("SELECT {STATION_COLS} FROM stations ORDER BY unit_code, device_no"),
                &[],
            )?
            .iter()
            .map(row_station)
            .collect())
    }

    fn revoke(&self, id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        Ok(self.lock()?.execute(
            "UPDATE stations SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now.to_rfc3339()],
        )? == 1)
    }

    fn enroll(
        &self,
        token_hash: &str,
        secret_hash: &str,
        bundle_key: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<StationRow> {
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        let row = tx
            .query_opt(
                &format!("SELECT {STATION_COLS} FROM stations WHERE token_hash = $1 FOR UPDATE"),
                &[&token_hash],
            )?
            .map(|r| row_station(&r));
        if let Some(r) = row.as_ref().filter(|r| super::enrolled_before(r, only)) {
            // The same enrolment again (its reply was lost): the station proves the secret.
            let same: Option<bool> = tx
                .query_one(
                    "SELECT secret_hash = $2 FROM stations WHERE id = $1",
                    &[&r.id, &secret_hash],
                )?
                .get(0);
            if same == Some(true) {
                return Ok(r.clone());
            }
        }
        let row = super::check_enrollable(row, only)?;
        tx.execute(
            "UPDATE stations SET secret_hash = $2, enrolled_at = $3 WHERE id = $1",
            &[&row.id, &secret_hash, &now.to_rfc3339()],
        )?;
        tx.execute(
            "INSERT INTO station_keys(station_id, bundle_key) VALUES ($1, $2)
             ON CONFLICT(station_id) DO UPDATE SET bundle_key = excluded.bundle_key",
            &[&row.id, &bundle_key],
        )?;
        tx.commit()?;
        Ok(StationRow {
            enrolled_at: Some(now.to_rfc3339()),
            ..row
        })
    }

    fn station_by_secret(&self, id: &str, secret_hash: &str) -> DbResult<Option<StationRow>> {
        Ok(self
            .lock()?
            .query_opt(
                &format!("SELECT {STATION_COLS} FROM stations WHERE id = $1 AND secret_hash = $2"),
                &[&id, &secret_hash],
            )?
            .map(|r| row_station(&r)))
    }

    fn push(
        &self,
        station: &StationRow,
        changes: &[WireChange],
        now: DateTime<Utc>,
    ) -> DbResult<PushOutcome> {
        // Pushes go one at a time on the `changes` lock anyway: waiting here rather than in
        // PostgreSQL keeps the other connections of the pool for reads.
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        tx.batch_execute("LOCK TABLE changes IN EXCLUSIVE MODE")?;
        let out = push_with(&mut tx, station, changes, now)?;
        tx.commit()?;
        Ok(out)
    }

    fn pull(
        &self,
        station: &StationRow,
        after: i64,
        limit: u32,
    ) -> DbResult<(Vec<PulledChange>, i64, bool)> {
        let mut client = self.lock()?;
        // One snapshot for the page and the highest number: a push committed between the two
        // (on another connection) must not move the station's cursor past changes it did not
        // get. Pushes commit in number order (the `changes` lock), so a snapshot holds every
        // change up to its highest number.
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let rows: Vec<PulledChange> = tx
            .query(
                "SELECT seq, change_id, origin, unit_code, entity, entity_id, op, hlc, data, base
                 FROM changes
                 WHERE seq > $1 AND origin <> $2
                   AND (unit_code = $3 OR (unit_code IN (SELECT code FROM units WHERE parent_code = $3)
                                           AND entity NOT IN ('tip_reporter', 'conflict_identity')))
                 ORDER BY seq LIMIT $4",
                &[&after, &station.id, &station.unit_code, &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                let data: String = r.get(8);
                PulledChange {
                    seq: r.get(0),
                    origin: r.get(2),
                    change: wire_change(r.get(1), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), &data, r.get(9)),
                }
            })
            .collect();
        let max: i64 = tx
            .query_one("SELECT COALESCE(max(seq), 0)::BIGINT FROM changes", &[])?
            .get(0);
        tx.commit()?;
        Ok(super::page(rows, after, limit, max))
    }

    fn checksum(&self, station: &StationRow) -> DbResult<(String, u64)> {
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        // No push between the scan and the sums it sets.
        tx.batch_execute("LOCK TABLE changes IN EXCLUSIVE MODE")?;
        let digest = super::rules::checksum(&mut tx, station)?;
        tx.commit()?;
        Ok(digest)
    }

    fn checksum_sums(&self, station: &StationRow) -> DbResult<(String, u64)> {
        let rows = stored_sums(&mut *self.lock()?, &station.unit_code)?
            .into_iter()
            .map(|((_, entity), s)| (entity, s))
            .collect();
        Ok(scope_checksum(
            rows,
            binhyen_domain::unit::is_commune_code(&station.unit_code),
        ))
    }

    fn records(
        &self,
        station: &StationRow,
        after: Option<(String, String)>,
        limit: u32,
    ) -> DbResult<Vec<ScopeRecord>> {
        let (e, id) = after.unwrap_or_default();
        let rows = self
            .lock()?
            .query(
                "SELECT entity, entity_id, vals, versions, deleted FROM records
                 WHERE (unit_code = $1 OR unit_code IN (SELECT code FROM units WHERE parent_code = $1))
                   AND (entity COLLATE \"C\" > $2 OR (entity = $2 AND entity_id COLLATE \"C\" > $3))
                   AND ($5 OR entity <> 'tip_reporter')
                 ORDER BY entity COLLATE \"C\", entity_id COLLATE \"C\" LIMIT $4",
                &[
                    &station.unit_code,
                    &e,
                    &id,
                    &i64::from(limit),
                    &binhyen_domain::unit::is_commune_code(&station.unit_code),
                ],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        Ok(super::scope_records(rows))
    }

    fn station_with_key(&self, id: &str) -> DbResult<Option<(StationRow, Option<String>)>> {
        let mut client = self.lock()?;
        let row = client
            .query_opt(
                &format!("SELECT {STATION_COLS} FROM stations WHERE id = $1"),
                &[&id],
            )?
            .map(|r| row_station(&r));
        let Some(row) = row else { return Ok(None) };
        let key = client
            .query_opt(
                "SELECT bundle_key FROM station_keys WHERE station_id = $1",
                &[&id],
            )?
            .map(|r| r.get(0));
        Ok(Some((row, key)))
    }

    fn push_audit(
        &self,
        station: &StationRow,
        push: &AuditPush,
        now: DateTime<Utc>,
    ) -> DbResult<i64> {
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        // One writer per station's chain at a time.
        tx.execute(
            "SELECT 1 FROM stations WHERE id = $1 FOR UPDATE",
            &[&station.id],
        )?;
        let last = super::rules::push_audit(&mut tx, station, push, now)?;
        tx.commit()?;
        Ok(last)
    }

    fn audit_chain(&self, station_id: &str) -> DbResult<Vec<AuditRecord>> {
        Ok(self
            .lock()?
            .query(
                "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_entries
                 WHERE station_id = $1 ORDER BY seq",
                &[&station_id],
            )?
            .iter()
            .map(|r| AuditRecord {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                detail: r.get(5),
                prev_hash: r.get(6),
                hash: r.get(7),
            })
            .collect())
    }

    fn meta_get(&self, key: &str) -> DbResult<Option<String>> {
        Ok(self
            .lock()?
            .query_opt("SELECT value FROM server_meta WHERE key = $1", &[&key])?
            .map(|r| r.get(0)))
    }

    fn meta_set(&self, key: &str, value: &str) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO server_meta(key, value) VALUES ($1, $2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn set_recovery_code(&self, station_id: &str, code: &str, now: DateTime<Utc>) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO station_recovery(station_id, code, stored_at) VALUES ($1, $2, $3)
             ON CONFLICT(station_id) DO UPDATE SET code = excluded.code, stored_at = excluded.stored_at",
            &[&station_id, &code, &now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn set_bundle_key(&self, station_id: &str, bundle_key: &str) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO station_keys(station_id, bundle_key) VALUES ($1, $2)
             ON CONFLICT(station_id) DO UPDATE SET bundle_key = excluded.bundle_key",
            &[&station_id, &bundle_key],
        )?;
        Ok(())
    }

    fn record_event(
        &self,
        at: DateTime<Utc>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO server_events(at, action, target, detail) VALUES ($1, $2, $3, $4)",
            &[&at.to_rfc3339(), &action, &target, &detail],
        )?;
        Ok(())
    }

    fn events(&self, limit: u32) -> DbResult<Vec<(String, String, String, String)>> {
        Ok(self
            .lock()?
            .query(
                "SELECT at, action, target, detail FROM server_events ORDER BY at DESC LIMIT $1",
                &[&i64::from(limit)],
            )?
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn station_seen(&self, station_id: &str, version: &str, now: DateTime<Utc>) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO station_seen(station_id, version, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT(station_id) DO UPDATE SET version = excluded.version, seen_at = excluded.seen_at",
            &[&station_id, &version, &now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn unit_records(&self, unit: &str, entity: &str) -> DbResult<Vec<(String, String)>> {
        let mut client = self.lock()?;
        let mut tx = client.transaction()?;
        Tx::unit_records(&mut tx, unit, entity)
    }

    fn entity_records(&self, entity: &str) -> DbResult<Vec<(String, String, String)>> {
        Ok(self
            .lock()?
            .query(
                "SELECT unit_code, entity_id, vals FROM records
                 WHERE entity = $1 AND deleted IS NULL ORDER BY unit_code, entity_id",
                &[&entity],
            )?
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn stations_seen(&self) -> DbResult<BTreeMap<String, (String, String)>> {
        Ok(self
            .lock()?
            .query("SELECT station_id, version, seen_at FROM station_seen", &[])?
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect())
    }

    fn station_waiting(
        &self,
        station_id: &str,
        remaining: u64,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO station_waiting(station_id, remaining, reported_at) VALUES ($1, $2, $3)
             ON CONFLICT(station_id) DO UPDATE SET remaining = excluded.remaining, reported_at = excluded.reported_at",
            &[&station_id, &(remaining.min(i64::MAX as u64) as i64), &now.to_rfc3339()],
        )?;
        Ok(())
    }

    fn stations_waiting(&self) -> DbResult<BTreeMap<String, (u64, String)>> {
        Ok(self
            .lock()?
            .query(
                "SELECT station_id, remaining, reported_at FROM station_waiting",
                &[],
            )?
            .into_iter()
            .map(|r| (r.get(0), (r.get::<_, i64>(1).max(0) as u64, r.get(2))))
            .collect())
    }

    fn stats(&self) -> DbResult<ServerStats> {
        let mut conn = self.lock()?;
        let open_conflicts: i64 = conn
            .query_one(
                "SELECT count(*) FROM conflicts WHERE resolved_at IS NULL",
                &[],
            )?
            .get(0);
        let database_bytes: i64 = conn
            .query_one("SELECT pg_database_size(current_database())", &[])?
            .get(0);
        Ok(ServerStats {
            open_conflicts: open_conflicts.max(0) as u64,
            database_bytes: database_bytes.max(0) as u64,
        })
    }

    fn audit_heads(&self) -> DbResult<BTreeMap<String, (i64, String)>> {
        Ok(self
            .lock()?
            .query(
                "SELECT DISTINCT ON (station_id) station_id, seq, at FROM audit_entries
                 ORDER BY station_id, seq DESC",
                &[],
            )?
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect())
    }

    fn publish_release(&self, release: &ReleaseRow, data: &[u8]) -> DbResult<()> {
        let mut conn = self.lock()?;
        let mut tx = conn.transaction()?;
        let known: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM releases WHERE version = $1)",
                &[&release.version],
            )?
            .get(0);
        if known {
            return Err(super::release_exists(&release.version));
        }
        let percent = release.percent.map(|p| p as i32);
        tx.execute(
            "INSERT INTO releases(version, file_name, size_bytes, sha256, signature, units, percent,
                                  published_at, withdrawn_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
            &[
                &release.version,
                &release.file_name,
                &(release.size as i64),
                &release.sha256,
                &release.signature,
                &release.units,
                &percent,
                &release.published_at,
            ],
        )?;
        tx.execute(
            "INSERT INTO release_content(version, data) VALUES ($1, $2)",
            &[&release.version, &data],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn releases(&self) -> DbResult<Vec<ReleaseRow>> {
        Ok(self
            .lock()?
            .query(
                "SELECT version, file_name, size_bytes, sha256, signature, units, percent, published_at,
                        withdrawn_at
                 FROM releases ORDER BY published_at DESC, version DESC",
                &[],
            )?
            .into_iter()
            .map(|r| ReleaseRow {
                version: r.get(0),
                file_name: r.get(1),
                size: r.get::<_, i64>(2) as u64,
                sha256: r.get(3),
                signature: r.get(4),
                units: r.get(5),
                percent: r.get::<_, Option<i32>>(6).map(|p| p as u32),
                published_at: r.get(7),
                withdrawn_at: r.get(8),
            })
            .collect())
    }

    fn withdraw_release(&self, version: &str, now: DateTime<Utc>) -> DbResult<bool> {
        Ok(self.lock()?.execute(
            "UPDATE releases SET withdrawn_at = $2 WHERE version = $1 AND withdrawn_at IS NULL",
            &[&version, &now.to_rfc3339()],
        )? == 1)
    }

    fn release_piece(&self, version: &str, offset: u64, len: u32) -> DbResult<Option<Vec<u8>>> {
        Ok(self
            .lock()?
            .query_opt(
                "SELECT substring(data from $2 for $3) FROM release_content WHERE version = $1",
                &[&version, &((offset + 1) as i32), &(len as i32)],
            )?
            .map(|r| r.get(0)))
    }

    fn recovery_code(&self, station_id: &str) -> DbResult<Option<(String, String)>> {
        Ok(self
            .lock()?
            .query_opt(
                "SELECT code, stored_at FROM station_recovery WHERE station_id = $1",
                &[&station_id],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn attachment_named(&self, unit: &str, sha256: &str) -> DbResult<bool> {
        Ok(self
            .lock()?
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM records WHERE unit_code = $1 AND entity = 'attachment'
                   AND deleted IS NULL AND (vals::jsonb)->>'sha256' = $2)",
                &[&unit, &sha256],
            )?
            .get(0))
    }

    fn store_attachment(
        &self,
        unit: &str,
        sha256: &str,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.lock()?.execute(
            "INSERT INTO attachment_content(unit_code, sha256, data, size_bytes, stored_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT(unit_code, sha256) DO NOTHING",
            &[
                &unit,
                &sha256,
                &data,
                &(data.len() as i64),
                &now.to_rfc3339(),
            ],
        )?;
        Ok(())
    }

    fn attachment(&self, unit: &str, sha256: &str) -> DbResult<Option<Vec<u8>>> {
        Ok(self
            .lock()?
            .query_opt(
                "SELECT data FROM attachment_content WHERE unit_code = $1 AND sha256 = $2",
                &[&unit, &sha256],
            )?
            .map(|r| r.get(0)))
    }

    fn meta_init(&self, key: &str, value: &str) -> DbResult<String> {
        let mut client = self.lock()?;
        client.execute(
            "INSERT INTO server_meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING",
            &[&key, &value],
        )?;
        Ok(client
            .query_one("SELECT value FROM server_meta WHERE key = $1", &[&key])?
            .get(0))
    }
}
