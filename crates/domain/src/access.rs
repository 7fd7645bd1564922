//! Who may do what: the four roles of an account and the permissions each one holds. The
//! store checks these before it reads or writes (the window only hides what the store would
//! refuse anyway).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::tip::{string_enum, Status};

string_enum!(
    /// The role of an officer's account.
    Role, "Vai trò", {
        Officer => ("officer", "cán bộ"),
        Chief => ("chief", "lãnh đạo Công an xã"),
        Analyst => ("analyst", "cán bộ phân tích của tỉnh"),
        Admin => ("admin", "quản trị viên"),
    }
);

string_enum!(
    /// One thing an account may be allowed to do. The label completes the sentence "Tài
    /// khoản … không được …".
    Permission, "Quyền", {
        TipRead => ("tip_read", "xem nguồn tin"),
        TipRecord => ("tip_record", "tiếp nhận nguồn tin mới"),
        TipEdit => ("tip_edit", "sửa hoặc ghi diễn biến nguồn tin"),
        TipAssign => ("tip_assign", "phân công cán bộ thụ lý"),
        TipTransfer => ("tip_transfer", "chuyển nguồn tin cho cơ quan điều tra"),
        TipClose => ("tip_close", "kết thúc, đóng hoặc loại nguồn tin"),
        IdentityView => ("identity_view", "xem danh tính người tố giác"),
        IdentityGrant => ("identity_grant", "trao khóa danh tính cho cán bộ"),
        ReportView => ("report_view", "xem báo cáo"),
        Export => ("export", "xuất dữ liệu ra tệp"),
        RosterManage => ("roster_manage", "sửa danh sách thôn, nhóm, kênh"),
        AccountsManage => ("accounts_manage", "quản lý tài khoản"),
        SettingsManage => ("settings_manage", "đổi cài đặt của trạm"),
        ConflictResolve => ("conflict_resolve", "giải quyết xung đột đồng bộ"),
        AuditView => ("audit_view", "xem nhật ký kiểm tra"),
        Backup => ("backup", "sao lưu dữ liệu của trạm"),
    }
);

impl Role {
    /// Whether this role holds `p`.
    ///
    /// - officers receive and follow up tips, see a reporter when they must call back, keep
    ///   rosters current; they do not transfer, close, assign or export;
    /// - the station chief does everything at the station, including accounts;
    /// - province analysts read tips (without identity) and figures and export them;
    /// - administrators manage accounts, rosters and settings, read the audit trail and make
    ///   backups (encrypted), but never read tips.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Chief => true,
            Role::Officer => matches!(
                p,
                TipRead
                    | TipRecord
                    | TipEdit
                    | IdentityView
                    | ReportView
                    | RosterManage
                    | ConflictResolve
            ),
            Role::Analyst => matches!(p, TipRead | ReportView | Export),
            Role::Admin => matches!(
                p,
                ReportView | RosterManage | AccountsManage | SettingsManage | AuditView | Backup
            ),
        }
    }

    /// Everything this role holds, for the window to show only what will work.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.allows(*p))
            .collect()
    }

    /// Which roles an account of this role may give (to a new account, by a change of
    /// role, or by setting a password that opens the account): the chief any role (it holds
    /// every permission); an administrator only roles that may not see a reporter's identity,
    /// so that it can neither make an account that reads identities nor take one over.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::Chief => true,
            Role::Admin => !other.allows(Permission::IdentityView),
            _ => false,
        }
    }

    /// Which accounts an account of this role may take rights from (disable, or move to a
    /// role it may grant): the chief any; an administrator any but the chief's.
    pub fn may_manage(self, other: Role) -> bool {
        match self {
            Role::Chief => true,
            Role::Admin => other != Role::Chief,
            _ => false,
        }
    }
}

/// The permission a move to `status` needs beyond editing.
pub fn status_permission(status: Status) -> Permission {
    match status {
        Status::Received | Status::Verifying => Permission::TipEdit,
        Status::Transferred => Permission::TipTransfer,
        _ => Permission::TipClose,
    }
}

/// A username as typed, in its stored form (trimmed, lower case), or why it is refused.
pub fn normalize_username(username: &str) -> Result<String, &'static str> {
    let u = username.trim().to_lowercase();
    let ok_len = (3..=32).contains(&u.chars().count());
    let ok_chars = u
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars && u.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Ok(u)
    } else {
        Err("Tên đăng nhập gồm 3–32 chữ cái không dấu, chữ số, dấu chấm, gạch dưới hoặc gạch ngang, bắt đầu bằng chữ hoặc số.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_holds() {
        use Permission::*;
        assert!(Role::Officer.allows(TipRecord));
        assert!(Role::Officer.allows(IdentityView));
        assert!(!Role::Officer.allows(TipTransfer));
        assert!(!Role::Officer.allows(Export));
        assert!(!Role::Officer.allows(AccountsManage));
        assert!(Role::Chief.allows(TipTransfer) && Role::Chief.allows(AccountsManage));
        assert!(Role::Analyst.allows(Export) && !Role::Analyst.allows(IdentityView));
        assert!(!Role::Analyst.allows(TipRecord));
        assert!(!Role::Admin.allows(TipRead) && !Role::Admin.allows(IdentityView));
        assert!(Role::Admin.allows(AccountsManage));
        assert!(Role::Chief.may_grant(Role::Admin) && Role::Chief.may_grant(Role::Officer));
        assert!(Role::Admin.may_grant(Role::Analyst) && Role::Admin.may_grant(Role::Admin));
        // An administrator never makes an account that may see identity.
        assert!(!Role::Admin.may_grant(Role::Chief) && !Role::Admin.may_grant(Role::Officer));
        assert!(Role::Admin.may_manage(Role::Officer) && !Role::Admin.may_manage(Role::Chief));
        assert!(Role::Chief.allows(IdentityGrant) && !Role::Officer.allows(IdentityGrant));
        assert!(!Role::Admin.allows(IdentityGrant));
        assert!(!Role::Officer.may_grant(Role::Officer));
    }

    #[test]
    fn status_moves_need_their_permission() {
        assert_eq!(status_permission(Status::Verifying), Permission::TipEdit);
        assert_eq!(
            status_permission(Status::Transferred),
            Permission::TipTransfer
        );
        assert_eq!(status_permission(Status::Closed), Permission::TipClose);
        assert_eq!(status_permission(Status::Rejected), Permission::TipClose);
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username("  Lan.Nguyen "), Ok("lan.nguyen".into()));
        assert!(normalize_username("lân").is_err());
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username(".abc").is_err());
        assert!(normalize_username("a b c").is_err());
    }
}

/// The window's copy of the tip workflow, generated from the rules above and in `tip.rs`
/// (`ui/src/lib/bindings/workflow.ts`, beside the types ts-rs writes; `scripts/test.sh`
/// fails when the committed copy is stale), so that the window never offers a move the
/// library would refuse and the rules are written once.
#[cfg(test)]
mod workflow_export {
    use crate::access::status_permission;
    use crate::tip::Status;

    fn name<T: serde::Serialize>(v: T) -> String {
        serde_json::to_string(&v).unwrap()
    }

    fn list(statuses: impl Iterator<Item = Status>) -> String {
        statuses.map(name).collect::<Vec<_>>().join(", ")
    }

    #[test]
    fn the_window_gets_the_workflow_from_the_library() {
        let mut ts = String::from(
            "// Generated from binhyen_domain (Status::next, Status::needs_note, Status::is_open,\n\
             // access::status_permission) by `cargo test -p binhyen-domain`. Do not edit.\n\
             import type { Permission } from \"./Permission\";\n\
             import type { Status } from \"./Status\";\n\n\
             /** The statuses a tip may move to from each one. */\n\
             export const NEXT: Record<Status, Status[]> = {\n",
        );
        for s in Status::ALL {
            ts.push_str(&format!(
                "  {}: [{}],\n",
                s.as_str(),
                list(s.next().iter().copied())
            ));
        }
        ts.push_str("};\n\n/** The moves whose note must say something. */\n");
        ts.push_str(&format!(
            "export const NEEDS_NOTE: Status[] = [{}];\n\n",
            list(Status::ALL.iter().copied().filter(|s| s.needs_note()))
        ));
        ts.push_str("/** The statuses that still need the station's work. */\n");
        ts.push_str(&format!(
            "export const OPEN: Status[] = [{}];\n\n",
            list(Status::ALL.iter().copied().filter(|s| s.is_open()))
        ));
        ts.push_str("/** The permission a move to each status needs. */\n");
        ts.push_str("export const MOVE_NEEDS: Record<Status, Permission> = {\n");
        for s in Status::ALL {
            ts.push_str(&format!(
                "  {}: {},\n",
                s.as_str(),
                name(status_permission(*s))
            ));
        }
        ts.push_str("};\n");
        assert!(
            ts.contains("transferred: [\"resolved\", \"closed\"]"),
            "{ts}"
        );
        let dir = std::env::var("TS_RS_EXPORT_DIR").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/src/lib/bindings").into()
        });
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join("workflow.ts"), ts).unwrap();
    }
}
