//! Schema migrations, `PRAGMA user_version` style: every step from the file's version to the
//! binary's runs in one transaction; a database newer than the binary is refused untouched.

use rusqlite::{Connection, TransactionBehavior};

use crate::{Result, StoreError};

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/v1.sql"),
    include_str!("schema/v2.sql"),
    include_str!("schema/v3.sql"),
    include_str!("schema/v4.sql"),
    include_str!("schema/v5.sql"),
    include_str!("schema/v6.sql"),
    include_str!("schema/v7.sql"),
    include_str!("schema/v8.sql"),
    include_str!("schema/v9.sql"),
    include_str!("schema/v10.sql"),
    include_str!("schema/v11.sql"),
    include_str!("schema/v12.sql"),
    include_str!("schema/v13.sql"),
    include_str!("schema/v14.sql"),
    include_str!("schema/v15.sql"),
    include_str!("schema/v16.sql"),
    include_str!("schema/v17.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the schema up to [`SCHEMA_VERSION`]. Returns the version found.
pub fn migrate(conn: &mut Connection) -> Result<i64> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Migrates to `target` (tests use it to build old-schema databases).
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<i64> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found >= target {
        return Ok(found);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(found as usize)
    {
        tracing::info!(from = i, to = i + 1, "migrating schema");
        tx.execute_batch(sql)?;
        // v14's sums are filled from the versions rows as they stand.
        if i + 1 == 14 {
            crate::sums::fill(&tx)?;
        }
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Schema 13 rewrites every record's versions grouped by clock value; versions it cannot
    /// stand for exactly are kept as they were, and all read back the same.
    #[test]
    fn v13_groups_versions_and_loses_none() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 12).unwrap();
        let rows = [
            (
                "1",
                r#"{"content":"h1","status":"h2","address":"h1"}"#,
                None,
            ),
            ("2", "{}", Some("h9")),
            ("3", r#"{"content":"quote \" inside"}"#, None),
            ("4", r#"{"content":null}"#, None),
            ("5", r#"{"tên":"h1"}"#, None),
            ("6", r#"{"a\\b":"h1"}"#, None),
        ];
        for (id, fields, deleted) in rows {
            conn.execute(
                "INSERT INTO versions(entity, entity_id, fields, deleted) VALUES ('tip', ?1, ?2, ?3)",
                rusqlite::params![id, fields, deleted],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        for (id, before, deleted) in rows {
            let (after, d): (String, Option<String>) = conn
                .query_row(
                    "SELECT fields, deleted FROM versions WHERE entity = 'tip' AND entity_id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let grouped = matches!(id, "1" | "2" | "5");
            assert_eq!(after.starts_with('['), grouped, "{id}: {after}");
            assert_eq!(
                binhyen_domain::versions::parse(&after),
                binhyen_domain::versions::parse(before),
                "{id}: {after}"
            );
            assert_eq!(d.as_deref(), deleted);
        }
        let unique = conn.execute(
            "INSERT INTO versions(entity, entity_id, fields) VALUES ('tip', '1', '[]')",
            [],
        );
        assert!(unique.is_err(), "(entity, entity_id) is still unique");
    }
}
