//! `binhyen doctor`: checks that the station's database is whole and consistent.

use rusqlite::Connection;
use serde::Serialize;
use ts_rs::TS;

use crate::{migrate, Result, Station};

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn count(conn: &Connection, sql: &str) -> Result<i64> {
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

fn check(
    name: &str,
    problems: i64,
    ok_detail: String,
    bad_detail: impl FnOnce(i64) -> String,
) -> Check {
    Check {
        name: name.into(),
        ok: problems == 0,
        detail: if problems == 0 {
            ok_detail
        } else {
            bad_detail(problems)
        },
    }
}

/// Tables whose every row must have a change record, with their entity names.
const SYNCED: &[(&str, &str, &str)] = &[
    ("tips", "tip", "id"),
    ("tip_reporters", "tip_reporter", "tip_id"),
    ("tip_actions", "tip_action", "id"),
    ("hamlets", "hamlet", "id"),
    ("roster_people", "roster_person", "id"),
    ("online_groups", "online_group", "id"),
    ("group_member_counts", "group_member_count", "id"),
    ("channels", "channel", "id"),
    ("channel_metrics", "channel_metric", "id"),
    ("officers", "officer", "id"),
    ("identity_keys", "identity_key", "id"),
    ("officer_keys", "officer_key", "id"),
    ("identity_grants", "identity_grant", "id"),
];

impl Station {
    /// Runs every check; never changes anything.
    pub fn doctor(&self) -> Result<Vec<Check>> {
        let c = &self.conn;
        let mut checks = Vec::new();

        let integrity: Vec<String> = c
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        checks.push(Check {
            name: "integrity".into(),
            ok: integrity == ["ok"],
            detail: if integrity == ["ok"] {
                "Cấu trúc tệp cơ sở dữ liệu nguyên vẹn.".into()
            } else {
                integrity.join("; ")
            },
        });

        let cipher: Vec<String> = c
            .prepare("PRAGMA cipher_integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        checks.push(check(
            "encryption",
            cipher.len() as i64,
            "Mọi trang đã mã hóa đều khớp mã xác thực (HMAC).".into(),
            |n| {
                format!(
                    "{n} trang mã hóa bị hỏng hoặc bị sửa: {}",
                    cipher.join("; ")
                )
            },
        ));

        let fk = count(c, "SELECT count(*) FROM pragma_foreign_key_check")?;
        checks.push(check(
            "foreign_keys",
            fk,
            "Mọi liên kết giữa các bảng đều hợp lệ.".into(),
            |n| format!("{n} liên kết trỏ tới bản ghi không tồn tại."),
        ));

        let version = migrate::user_version(c)?;
        checks.push(Check {
            name: "schema".into(),
            ok: version == migrate::SCHEMA_VERSION,
            detail: format!(
                "Phiên bản lược đồ {version} (phần mềm: {}).",
                migrate::SCHEMA_VERSION
            ),
        });

        // A record without a change of its own is this laptop's concern only if this laptop
        // wrote it: its versions hold this laptop's clock node (`…-NODE"`), or it has no
        // versions at all (made behind the program's back). A record pulled from the server
        // (another laptop's work, a repair) has none of this laptop's clock values and needs
        // no change here.
        let info = self.info();
        let own_node = format!("%-{}\"%", info.node_id);
        let mut unlogged = 0;
        for (table, entity, key) in SYNCED {
            unlogged += c.query_row(
                &format!(
                    "SELECT count(*) FROM {table} t
                     LEFT JOIN versions v ON v.entity = '{entity}' AND v.entity_id = t.{key}
                     WHERE NOT EXISTS (SELECT 1 FROM changes ch WHERE ch.entity = '{entity}' AND ch.entity_id = t.{key})
                       AND (v.fields IS NULL OR v.fields LIKE ?1)"
                ),
                [&own_node],
                |r| r.get::<_, i64>(0),
            )?;
        }
        checks.push(check(
            "change_log",
            unlogged,
            "Mọi bản ghi đều có bản ghi thay đổi để đồng bộ.".into(),
            |n| format!("{n} bản ghi không có bản ghi thay đổi: sẽ không được đồng bộ."),
        ));

        let hlc_behind = count(c, "SELECT count(*) FROM changes WHERE hlc > COALESCE((SELECT value FROM meta WHERE key = 'hlc'), '')")?;
        checks.push(check(
            "clock",
            hlc_behind,
            "Đồng hồ logic của trạm không lùi.".into(),
            |n| format!("{n} thay đổi có dấu thời gian lớn hơn đồng hồ của trạm."),
        ));

        // Only this laptop's counters hand out numbers here; another laptop's numbers came
        // with its pulled tips and its counter lives on that laptop.
        let counters: i64 = c.query_row(
            "SELECT count(*) FROM (SELECT unit_code, register_year, register_device, max(register_seq) AS m FROM tips WHERE register_device = ?1 GROUP BY 1, 2, 3) t
             WHERE t.m > COALESCE((SELECT last_seq FROM register_counters r WHERE r.unit_code = t.unit_code AND r.year = t.register_year AND r.device_no = t.register_device), 0)",
            [info.device_no],
            |r| r.get(0),
        )?;
        checks.push(check(
            "register_numbers",
            counters,
            "Bộ đếm số sổ tiếp nhận không cấp trùng số đã dùng.".into(),
            |n| format!("{n} bộ đếm số sổ thấp hơn số đã cấp: số mới có thể trùng."),
        ));

        let mut missing = 0;
        for (table, kind) in [
            ("tips", "tip"),
            ("hamlets", "hamlet"),
            ("roster_people", "person"),
        ] {
            missing += count(c, &format!("SELECT count(*) FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.kind = '{kind}' AND d.ref_id = t.id)"))?;
        }
        let orphans = count(c, "SELECT count(*) FROM search_docs d WHERE NOT EXISTS (SELECT 1 FROM search_fts f WHERE f.rowid = d.doc)")?
            + count(c, "SELECT (SELECT count(*) FROM search_fts) - (SELECT count(*) FROM search_docs)")?.abs();
        checks.push(check(
            "search_index",
            missing + orphans,
            "Chỉ mục tìm kiếm khớp với dữ liệu.".into(),
            |n| format!("{n} mục tìm kiếm thiếu hoặc thừa."),
        ));

        let fts = c.execute(
            "INSERT INTO search_fts(search_fts) VALUES ('integrity-check')",
            [],
        );
        let fts_ok = fts.is_ok();
        checks.push(Check {
            name: "search_fts".into(),
            ok: fts_ok,
            detail: if fts_ok {
                "Bảng tìm kiếm toàn văn nguyên vẹn.".into()
            } else {
                format!("Bảng tìm kiếm hỏng: {fts:?}")
            },
        });

        let stored = crate::sums::stored(c)?;
        let scanned = crate::sums::scan(c)?;
        let differing = scanned
            .keys()
            .chain(stored.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| stored.get(*k) != scanned.get(*k))
            .count();
        checks.push(check(
            "checksum_sums",
            differing as i64,
            "Tổng kiểm đồng bộ khớp với dữ liệu.".into(),
            |n| format!("Tổng kiểm đồng bộ lệch ở {n} loại bản ghi; lần đồng bộ đối chiếu đầy đủ kế tiếp sẽ tự tính lại."),
        ));

        let audit = self.verify_audit()?;
        checks.push(Check {
            name: "audit_chain".into(),
            ok: audit.ok,
            detail: match &audit.problem {
                None => format!("Nhật ký kiểm tra nguyên vẹn ({} mục).", audit.entries),
                Some(p) => format!("Nhật ký kiểm tra đã bị can thiệp: {p}."),
            },
        });
        Ok(checks)
    }
}
