//! What the CLI prints: JSON on stdout with `--json`, readable Vietnamese text otherwise;
//! errors on stderr (as a JSON object with a stable code when `--json` is given).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use binhyen_domain::phone::format_national;
use binhyen_domain::roster::{Hamlet, RosterPerson};
use binhyen_domain::time::format_vn;
use binhyen_domain::tip::Tip;
use binhyen_store::doctor::Check;
use binhyen_store::roster::RosterPlan;
use binhyen_store::search::SearchGroup;
use binhyen_store::{Station, StoreError};

pub struct Out {
    pub json: bool,
}

/// An error from outside the store that still has a stable code.
#[derive(Debug)]
pub struct CodedError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodedError {}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

fn short(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n - 1).collect::<String>())
    }
}

impl Out {
    pub fn station(&self, station: &Station, dir: &Path) -> Result<()> {
        let info = station.info();
        let tips = station.count_tips(&Default::default())?;
        let pending = station.pending_count()?;
        if self.json {
            return print_json(
                &json!({"station": info, "data_dir": dir, "tips": tips, "pending_changes": pending}),
            );
        }
        let name = info
            .unit_name
            .strip_prefix(&info.unit_type)
            .map(|rest| format!("{}{rest}", info.unit_type.to_lowercase()));
        println!(
            "Trạm: Công an {} ({})",
            name.as_deref().unwrap_or(&info.unit_name),
            info.unit_code
        );
        if let Some(p) = &info.province_name {
            println!("Tỉnh: {p}");
        }
        println!(
            "Máy số: {}   Dữ liệu mẫu: {}",
            info.device_no,
            if info.demo { "có" } else { "không" }
        );
        println!("Thư mục dữ liệu: {}", dir.display());
        println!("Nguồn tin: {tips}   Thay đổi chờ đồng bộ: {pending}");
        Ok(())
    }

    pub fn tip(&self, tip: &Tip) -> Result<()> {
        if self.json {
            return print_json(tip);
        }
        println!("Số {}  ({})", tip.register_no, tip.id);
        println!(
            "Tiếp nhận: {}  qua {}",
            format_vn(tip.received_at),
            tip.channel.label()
        );
        println!(
            "Loại: {}   Trạng thái: {}   Mức độ: {}",
            tip.category.label(),
            tip.status.label(),
            tip.urgency.label()
        );
        if let Some(h) = &tip.hamlet_name {
            println!("Địa bàn: {h}");
        }
        if let Some(a) = &tip.address {
            println!("Địa chỉ: {a}");
        }
        if let Some(n) = &tip.received_by_name {
            println!("Người tiếp nhận: {n}");
        }
        if let Some(n) = &tip.assigned_to_name {
            println!("Cán bộ thụ lý: {n}");
        }
        println!("Nội dung: {}", tip.content);
        for l in &tip.links {
            let how = match (l.relation, l.outgoing) {
                (binhyen_domain::tip::LinkRelation::DuplicateOf, false) => "Bị trùng bởi",
                (r, _) => r.label(),
            };
            println!(
                "{how}: {} ({})",
                l.other_register_no,
                l.other_status.label()
            );
        }
        for a in &tip.attachments {
            let here = if a.available {
                ""
            } else {
                " — chưa về máy này"
            };
            println!(
                "Tệp đính kèm: {} ({}, {:.1} KB) [{}]{here}",
                a.file_name,
                a.media_type,
                a.size_bytes as f64 / 1024.0,
                a.id
            );
        }
        match &tip.reporter {
            Some(r) => {
                let secret = if r.secret {
                    " [YÊU CẦU GIỮ BÍ MẬT]"
                } else {
                    ""
                };
                let name = r.name.as_deref().unwrap_or("(không tên)");
                let phone = r.phone.as_deref().map(format_national).unwrap_or_default();
                println!("Người báo tin: {name} {phone}{secret}");
            }
            None => println!("Người báo tin: nặc danh"),
        }
        for a in &tip.timeline {
            let status = match (a.from_status, a.to_status) {
                (Some(f), Some(t)) => format!("{} → {}", f.label(), t.label()),
                (None, Some(t)) => t.label().to_string(),
                _ => String::new(),
            };
            println!(
                "  {}  {}  {} {}",
                format_vn(a.at),
                a.kind.label(),
                status,
                a.note.as_deref().unwrap_or("")
            );
        }
        Ok(())
    }

    pub fn tips(&self, tips: &[Tip]) -> Result<()> {
        if self.json {
            return print_json(tips);
        }
        for t in tips {
            println!(
                "{:<14} {}  {:<16} {:<28} {:<14} {}",
                t.register_no,
                format_vn(t.received_at),
                t.status.label(),
                t.category.label(),
                t.hamlet_name.as_deref().unwrap_or("-"),
                short(&t.content, 70)
            );
        }
        println!("({} nguồn tin)", tips.len());
        Ok(())
    }

    pub fn imported(&self, station: &Station, ids: &[Uuid]) -> Result<()> {
        let first = ids
            .first()
            .map(|id| station.get_tip(&id.to_string()))
            .transpose()?;
        let last = ids
            .last()
            .map(|id| station.get_tip(&id.to_string()))
            .transpose()?;
        if self.json {
            return print_json(&json!({
                "imported": ids.len(),
                "ids": ids,
                "first_register_no": first.map(|t| t.register_no),
                "last_register_no": last.map(|t| t.register_no),
            }));
        }
        match (first, last) {
            (Some(f), Some(l)) => println!(
                "Đã nhập {} nguồn tin, số {} đến {}.",
                ids.len(),
                f.register_no,
                l.register_no
            ),
            _ => println!("Tệp không có nguồn tin nào."),
        }
        Ok(())
    }

    pub fn search_groups(&self, groups: &[SearchGroup]) -> Result<()> {
        if self.json {
            return print_json(groups);
        }
        let kind = |k: &str| match k {
            "tip" => "Nguồn tin",
            "hamlet" => "Thôn, buôn, tổ dân phố",
            "person" => "Người trong danh sách",
            "unit" => "Đơn vị hành chính",
            _ => "Khác",
        };
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                println!();
            }
            println!("{}:", kind(&g.kind));
            for h in &g.hits {
                println!("  {:<40} {}", short(&h.label, 40), short(&h.detail, 80));
            }
            if g.more {
                println!("  … còn nữa (dùng --limit để xem thêm)");
            }
        }
        if groups.is_empty() {
            println!("Không tìm thấy kết quả nào.");
        }
        Ok(())
    }

    pub fn plan(&self, plan: &RosterPlan) -> Result<()> {
        if self.json {
            return print_json(plan);
        }
        let verb = if plan.applied {
            "Đã nhập"
        } else {
            "Xem trước (chưa ghi gì)"
        };
        println!("{verb}: {} dòng.", plan.rows);
        println!(
            "  Thôn/buôn thêm mới: {}   cập nhật: {}",
            plan.hamlets_created.len(),
            plan.hamlets_updated.len()
        );
        println!(
            "  Người thêm mới: {}   cập nhật: {}   dòng không đổi: {}",
            plan.people_created.len(),
            plan.people_updated.len(),
            plan.unchanged_rows
        );
        for d in &plan.possible_duplicates {
            println!(
                "  Có thể trùng người: {} ({}) và {} ({}): {}",
                d.first,
                d.first_hamlet.as_deref().unwrap_or("-"),
                d.second,
                d.second_hamlet.as_deref().unwrap_or("-"),
                d.reason
            );
        }
        Ok(())
    }

    pub fn hamlets(&self, hamlets: &[Hamlet]) -> Result<()> {
        if self.json {
            return print_json(hamlets);
        }
        for h in hamlets {
            let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "{:<24} {:<11} {:>5} hộ {:>6} khẩu{}",
                h.name,
                h.kind.label(),
                n(h.households),
                n(h.population),
                if h.remote { "  (vùng sâu, xa)" } else { "" }
            );
            if let Some(head) = &h.head_name {
                let phone = h
                    .head_phone
                    .as_deref()
                    .map(format_national)
                    .unwrap_or_default();
                println!("    Trưởng thôn: {head} {phone}");
            }
            if let Some(o) = &h.area_officer_name {
                println!("    Công an phụ trách: {o}");
            }
        }
        Ok(())
    }

    pub fn people(&self, people: &[RosterPerson]) -> Result<()> {
        if self.json {
            return print_json(people);
        }
        for p in people {
            let phone = p.phone.as_deref().map(format_national).unwrap_or_default();
            println!(
                "{:<24} {:<22} {:<30} {}",
                p.full_name,
                p.hamlet_name.as_deref().unwrap_or("-"),
                p.role.label(),
                phone
            );
        }
        Ok(())
    }

    pub fn checks(&self, checks: &[Check]) -> Result<()> {
        if self.json {
            return print_json(&json!({"ok": checks.iter().all(|c| c.ok), "checks": checks}));
        }
        for c in checks {
            println!(
                "{} {:<18} {}",
                if c.ok { "[ổn]  " } else { "[LỖI] " },
                c.name,
                c.detail
            );
        }
        Ok(())
    }

    pub fn raw(&self, bytes: &[u8]) -> Result<()> {
        std::io::stdout().lock().write_all(bytes)?;
        Ok(())
    }

    pub fn accounts(&self, accounts: &[binhyen_store::accounts::Account]) -> Result<()> {
        if self.json {
            return print_json(accounts);
        }
        for a in accounts {
            println!(
                "{:<16}  {:<28}  {:<26}  {}{}",
                a.username.as_deref().unwrap_or("-"),
                a.full_name,
                a.role_label,
                if a.active {
                    "đang dùng"
                } else {
                    "đã vô hiệu hóa"
                },
                if a.active && !a.password_here {
                    " (chưa có mật khẩu trên máy này)"
                } else {
                    ""
                }
            );
        }
        Ok(())
    }

    pub fn identity_holders(
        &self,
        holders: &[binhyen_store::identity::IdentityHolder],
    ) -> Result<()> {
        if self.json {
            return print_json(holders);
        }
        for h in holders {
            let who = match (&h.officer_id, &h.full_name) {
                (None, _) => "mã khôi phục của máy".to_string(),
                (Some(_), Some(name)) => {
                    format!("{name} ({})", h.username.as_deref().unwrap_or("-"))
                }
                (Some(id), None) => id.clone(),
            };
            let state = if h.keys_total > 0 && h.keys_held >= h.keys_total {
                "đang giữ khóa danh tính".to_string()
            } else {
                format!(
                    "chờ trưởng Công an xã trao khóa ({}/{})",
                    h.keys_held, h.keys_total
                )
            };
            println!(
                "{}  {:<40}  {:<10}  {state}",
                h.officer_key_id,
                who,
                if h.this_laptop {
                    "máy này"
                } else {
                    "máy khác"
                }
            );
        }
        Ok(())
    }

    pub fn update_status(&self, s: &binhyen_sync::update::UpdateStatus) -> Result<()> {
        if self.json {
            return print_json(s);
        }
        println!("Phiên bản đang dùng: {}", s.installed);
        match &s.offered {
            None => println!("Công an tỉnh chưa gửi bản cập nhật nào cho máy này."),
            Some(v) if s.ready => println!(
                "Có bản cập nhật {v}, đã tải và kiểm tra chữ ký: cài bằng `binhyen update apply`."
            ),
            Some(v) => println!(
                "Có bản cập nhật {v}: đã tải {:.1}/{:.1} MB (tiếp tục ở mỗi lần đồng bộ).",
                s.downloaded as f64 / 1e6,
                s.size as f64 / 1e6
            ),
        }
        if let Some(e) = &s.error {
            println!("Lần tải trước: {e}");
        }
        if s.development_key {
            println!("(Bản dựng thử: chỉ tin khóa phát hành dùng khi phát triển.)");
        }
        Ok(())
    }

    pub fn update_applied(&self, p: &binhyen_sync::update::Prepared, checked: bool) -> Result<()> {
        if self.json {
            return print_json(&json!({"installed": p.info.version, "backup": p.backup,
                                      "doctor_ok": checked}));
        }
        println!(
            "Đã cài bản {}. Bản sao lưu trước khi cập nhật: {}.",
            p.info.version,
            p.backup.display()
        );
        if checked {
            println!("Đã kiểm tra trạm bằng bản mới: không có lỗi.");
        } else {
            println!("Bản mới chưa kiểm tra được trạm: hãy chạy `binhyen doctor`.");
        }
        Ok(())
    }

    pub fn message(&self, text: &str) -> Result<()> {
        if self.json {
            return print_json(&json!({"message": text}));
        }
        println!("{text}");
        Ok(())
    }

    /// `seconds`: how long the exchange took (after the station was unlocked).
    pub fn sync(&self, r: &binhyen_sync::SyncReport, seconds: Option<f64>) -> Result<()> {
        if self.json {
            let mut v = serde_json::to_value(r)?;
            if let (Some(obj), Some(secs)) = (v.as_object_mut(), seconds) {
                obj.insert("seconds".into(), json!((secs * 1000.0).round() / 1000.0));
            }
            return print_json(&v);
        }
        println!(
            "Đã gửi {} thay đổi, nhận {} thay đổi, {} xung đột mới{}.",
            r.pushed,
            r.pulled,
            r.conflicts,
            seconds
                .map(|s| format!(" trong {s:.1} giây"))
                .unwrap_or_default()
        );
        if r.files_sent + r.files_received > 0 {
            println!(
                "Tệp đính kèm: gửi {}, nhận {}.",
                r.files_sent, r.files_received
            );
        }
        if r.files_refused > 0 {
            println!(
                "CẢNH BÁO: {} tệp đính kèm nhận từ máy chủ không đúng nội dung và đã bị từ chối; báo Công an tỉnh nếu còn lặp lại.",
                r.files_refused
            );
        }
        if r.files_waiting > 0 {
            println!(
                "{} tệp đính kèm chờ khóa danh tính của xã (được niêm phong): tệp mở khi cán bộ được trưởng Công an xã trao khóa đăng nhập hay đồng bộ trên máy này.",
                r.files_waiting
            );
        }
        if r.checksum_ok {
            println!("Dữ liệu khớp với máy chủ tỉnh.");
        } else {
            println!("CẢNH BÁO: dữ liệu chưa khớp với máy chủ tỉnh; cần đồng bộ lại.");
        }
        Ok(())
    }

    pub fn bundle_export(
        &self,
        info: &binhyen_sync::BundleExport,
        file: &std::path::Path,
    ) -> Result<()> {
        if self.json {
            return print_json(info);
        }
        println!(
            "Đã ghi {} thay đổi và {} tệp đính kèm vào gói {} ({} byte). Mang gói tới Công an tỉnh; các thay đổi vẫn chờ gửi cho tới khi nhập gói trả lời.",
            info.changes,
            info.files,
            file.display(),
            info.bytes
        );
        Ok(())
    }

    pub fn audit_entries(&self, entries: &[binhyen_store::audit::AuditEntry]) -> Result<()> {
        if self.json {
            return print_json(entries);
        }
        for e in entries {
            println!(
                "{:>6}  {}  {:<18}  {}  {}",
                e.seq,
                e.at,
                e.action,
                e.actor,
                e.target.as_deref().unwrap_or("")
            );
        }
        Ok(())
    }

    pub fn audit_check(&self, check: &binhyen_store::audit::AuditCheck) -> Result<()> {
        if self.json {
            return print_json(check);
        }
        if check.ok {
            println!("Nhật ký kiểm tra nguyên vẹn: {} mục.", check.entries);
        }
        Ok(())
    }

    pub fn status(&self, station: &Station) -> Result<()> {
        let state = binhyen_app::sync_state(station)?;
        if self.json {
            return print_json(&state);
        }
        match &state.server_url {
            Some(url) => println!(
                "Máy chủ tỉnh: {url}   Mã trạm: {}",
                state.station_id.as_deref().unwrap_or_default()
            ),
            None => println!("Chưa đăng ký với máy chủ tỉnh."),
        }
        if let Some(f) = &state.server_fingerprint {
            println!("Dấu vân tay chứng chỉ máy chủ được tin: {f}");
        }
        if state.enrolled {
            println!(
                "Mã khôi phục: {}",
                if state.recovery_code_at_province {
                    "Công an tỉnh đang giữ"
                } else {
                    "sẽ gửi Công an tỉnh ở lần đồng bộ tới"
                }
            );
        }
        println!(
            "Đồng bộ thành công lần cuối: {}",
            state.last_success.as_deref().unwrap_or("chưa có")
        );
        println!(
            "Thay đổi chờ gửi: {}   Xung đột chưa giải quyết: {}",
            state.pending_changes, state.open_conflicts
        );
        if state.identity.may_see {
            println!(
                "Khóa danh tính người tố giác: {}",
                identity_line(&state.identity)
            );
        }
        if state.rejected_changes > 0 {
            println!(
                "Thay đổi bị máy chủ từ chối (vẫn giữ trên máy, cần xem lại): {}",
                state.rejected_changes
            );
        }
        if let Some(e) = &state.last_error {
            println!("Lỗi lần trước: {e}");
        }
        Ok(())
    }

    pub fn conflicts(&self, list: &[binhyen_store::replica::ConflictView]) -> Result<()> {
        if self.json {
            return print_json(list);
        }
        for c in list {
            println!(
                "{}  {} {}  [{}]  máy này: {}  máy khác: {}  (đang giữ: {})",
                &c.id[..8],
                c.entity,
                &c.entity_id[..8.min(c.entity_id.len())],
                c.field,
                c.local_value,
                c.remote_value,
                if c.winner == "local" {
                    "máy này"
                } else {
                    "máy khác"
                }
            );
        }
        if list.is_empty() {
            println!("Không có xung đột nào.");
        }
        Ok(())
    }

    pub fn error(&self, e: &anyhow::Error) {
        let store = e.downcast_ref::<StoreError>();
        let coded = e.downcast_ref::<CodedError>();
        let code = store
            .map(StoreError::code)
            .or(coded.map(|c| c.code.as_str()))
            .unwrap_or("error");
        let message = match store {
            Some(s) => s.to_string(),
            None => format!("{e:#}"),
        };
        if self.json {
            let mut body = json!({"code": code, "message": message});
            if let Some(s) = store {
                let fields = s.field_errors();
                if !fields.is_empty() {
                    body["fields"] = json!(fields);
                }
                if let StoreError::Rows(rows) = s {
                    body["rows"] = json!(rows);
                }
                if let StoreError::Line { line, .. } = s {
                    body["line"] = json!(line);
                }
            }
            eprintln!("{}", json!({"error": body}));
        } else {
            eprintln!("Lỗi: {message}");
            if let Some(StoreError::Rows(rows)) = store {
                for r in rows {
                    let hint = r
                        .suggestion
                        .as_deref()
                        .map(|s| format!(" (gợi ý: {s})"))
                        .unwrap_or_default();
                    eprintln!("  Dòng {} [{}]: {}{hint}", r.line, r.field, r.message);
                }
            }
        }
    }
}

/// Where the commune's identity key stands on this laptop, in a sentence.
fn identity_line(s: &binhyen_store::identity::IdentityStatus) -> String {
    let mut line = if s.unit_keys == 0 {
        "chưa có (trưởng Công an xã tạo bằng 'binhyen account keys --create', hoặc khi ghi danh tính người báo tin đầu tiên)".to_string()
    } else if s.opened_keys == s.unit_keys {
        "máy này đã có".to_string()
    } else {
        "máy này chưa nhận; sẽ có sau khi một máy khác của xã đã có khóa đồng bộ".to_string()
    };
    if s.waiting_officer_keys > 0 {
        line.push_str(&format!(
            "; {} khóa cán bộ chờ trưởng Công an xã trao ('binhyen account keys', 'binhyen account grant')",
            s.waiting_officer_keys
        ));
    }
    if s.sealed_files > 0 {
        line.push_str(&format!(
            "; {} tệp đính kèm đã về nhưng còn niêm phong (mở khi máy này nhận khóa)",
            s.sealed_files
        ));
    }
    line
}
