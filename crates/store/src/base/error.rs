//! Errors of the store. Each has a stable `code` the CLI and the UI branch on, and a
//! Vietnamese message that says what to do.

use std::path::PathBuf;

use binhyen_domain::{FieldError, Invalid};
use serde::Serialize;
use ts_rs::TS;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("Không tìm thấy {what} \"{key}\".")]
    NotFound { what: &'static str, key: String },
    #[error("Sai tên đăng nhập hoặc mật khẩu; dữ liệu vẫn nguyên vẹn, hãy nhập lại.")]
    WrongCredentials,
    #[error("Tài khoản tạm khóa vì nhập sai mật khẩu nhiều lần; hãy thử lại sau {seconds} giây.")]
    LockedOut { seconds: u64 },
    #[error("Tài khoản này đã bị vô hiệu hóa; hãy liên hệ trưởng Công an xã hoặc quản trị viên.")]
    AccountDisabled,
    #[error("Tài khoản {role} không được {what}.")]
    Forbidden {
        role: &'static str,
        what: &'static str,
    },
    #[error("Mật khẩu này do người khác đặt: hãy đổi mật khẩu của mình trước khi làm việc.")]
    PasswordChangeRequired,
    #[error("Mã khôi phục không đúng; hãy đọc lại mã do Công an tỉnh cấp.")]
    WrongRecoveryCode,
    #[error("Chưa đăng nhập hoặc màn hình đã khóa; hãy đăng nhập lại.")]
    SignedOut,
    #[error("Chưa có trạm nào trong thư mục {0}; hãy chạy `binhyen init --unit MÃ_XÃ`.")]
    NoStation(PathBuf),
    #[error("Thư mục {0} đã có một trạm; Bình Yên không ghi đè dữ liệu có sẵn.")]
    StationExists(PathBuf),
    #[error("Cơ sở dữ liệu ở phiên bản {found}, mới hơn phần mềm này (tối đa {supported}); hãy cài bản Bình Yên mới hơn. Không có gì bị thay đổi.")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("Mã đơn vị \"{0}\" không có trong danh mục đơn vị hành chính 2025 (xã 5 chữ số, tỉnh 2 chữ số).")]
    UnknownUnit(String),
    #[error("Tệp khóa {path} không đọc được ({reason}); hãy khôi phục tệp này từ bản sao lưu.")]
    KeyFile { path: PathBuf, reason: String },
    #[error("Dòng {line}: {message}")]
    Line {
        line: usize,
        message: String,
        errors: Vec<FieldError>,
    },
    #[error("Tệp nhập có {} dòng lỗi; chưa nhập dòng nào. {}", .0.len(), .0.iter().take(5).map(|e| format!("Dòng {}: {}", e.line, e.message)).collect::<Vec<_>>().join(" "))]
    Rows(Vec<RowError>),
    #[error("Lỗi đọc/ghi tệp {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Trạm này đã bị Công an tỉnh thu hồi ({0}); dữ liệu được khóa lại, không mất. Để dùng lại, hãy liên hệ cán bộ kỹ thuật Công an tỉnh: họ mang tệp cấp phép mới để đăng ký lại máy.")]
    Revoked(String),
    #[error("Tệp sao lưu không dùng được: {0}. Không có gì bị thay đổi.")]
    BadBackup(String),
    #[error("Tệp \"{0}\" chưa về máy này: nó được đính kèm trên máy khác của trạm và sẽ về sau lần đồng bộ tới.")]
    AttachmentMissing(String),
    #[error("Tệp \"{0}\" đã về máy này nhưng còn niêm phong bằng khóa danh tính của xã: chỉ cán bộ đã được trưởng Công an xã trao khóa mới mở được (tệp tự mở khi cán bộ đó đăng nhập hay đồng bộ trên máy này).")]
    AttachmentSealed(String),
    #[error("Dữ liệu nhận về bị hỏng: {0}. Không có gì được ghi.")]
    Corrupt(String),
    #[error("Lỗi cơ sở dữ liệu: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("Lỗi dữ liệu JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One refused row of an imported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RowError {
    pub line: usize,
    pub field: String,
    pub message: String,
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl StoreError {
    /// A stable, machine-readable code (see [`ErrorCode`]).
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// What kind of error this is, as the window and the command line branch on it.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            StoreError::Invalid(_) => ErrorCode::Invalid,
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::WrongCredentials => ErrorCode::WrongCredentials,
            StoreError::LockedOut { .. } => ErrorCode::LockedOut,
            StoreError::AccountDisabled => ErrorCode::AccountDisabled,
            StoreError::Forbidden { .. } => ErrorCode::Forbidden,
            StoreError::PasswordChangeRequired => ErrorCode::PasswordChangeRequired,
            StoreError::WrongRecoveryCode => ErrorCode::WrongRecoveryCode,
            StoreError::SignedOut => ErrorCode::SignedOut,
            StoreError::NoStation(_) => ErrorCode::NoStation,
            StoreError::StationExists(_) => ErrorCode::StationExists,
            StoreError::BadBackup(_) => ErrorCode::BadBackup,
            StoreError::SchemaTooNew { .. } => ErrorCode::SchemaTooNew,
            StoreError::UnknownUnit(_) => ErrorCode::UnknownUnit,
            StoreError::KeyFile { .. } => ErrorCode::KeyFile,
            StoreError::Line { .. } => ErrorCode::BadLine,
            StoreError::Rows(_) => ErrorCode::BadRows,
            StoreError::Io { .. } => ErrorCode::Io,
            StoreError::AttachmentMissing(_) => ErrorCode::AttachmentMissing,
            StoreError::AttachmentSealed(_) => ErrorCode::AttachmentSealed,
            StoreError::Corrupt(_) => ErrorCode::Corrupt,
            StoreError::Sqlite(_) => ErrorCode::Database,
            StoreError::Revoked(_) => ErrorCode::Revoked,
            StoreError::Json(_) => ErrorCode::BadJson,
        }
    }

    /// The field errors behind this error, when there are any.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            StoreError::Invalid(Invalid(errors)) => errors.clone(),
            StoreError::Line { errors, .. } => errors.clone(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn not_found(what: &'static str, key: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            what,
            key: key.into(),
        }
    }
}

/// The stable codes of [`StoreError`]: what the window and the command line branch on
/// (exported to TypeScript, so the window names only codes that exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    Invalid,
    NotFound,
    WrongCredentials,
    LockedOut,
    AccountDisabled,
    Forbidden,
    PasswordChangeRequired,
    WrongRecoveryCode,
    SignedOut,
    NoStation,
    StationExists,
    BadBackup,
    SchemaTooNew,
    UnknownUnit,
    KeyFile,
    BadLine,
    BadRows,
    Io,
    AttachmentMissing,
    AttachmentSealed,
    Corrupt,
    Database,
    Revoked,
    BadJson,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Invalid,
        ErrorCode::NotFound,
        ErrorCode::WrongCredentials,
        ErrorCode::LockedOut,
        ErrorCode::AccountDisabled,
        ErrorCode::Forbidden,
        ErrorCode::PasswordChangeRequired,
        ErrorCode::WrongRecoveryCode,
        ErrorCode::SignedOut,
        ErrorCode::NoStation,
        ErrorCode::StationExists,
        ErrorCode::BadBackup,
        ErrorCode::SchemaTooNew,
        ErrorCode::UnknownUnit,
        ErrorCode::KeyFile,
        ErrorCode::BadLine,
        ErrorCode::BadRows,
        ErrorCode::Io,
        ErrorCode::AttachmentMissing,
        ErrorCode::AttachmentSealed,
        ErrorCode::Corrupt,
        ErrorCode::Database,
        ErrorCode::Revoked,
        ErrorCode::BadJson,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotFound => "not_found",
            ErrorCode::WrongCredentials => "wrong_credentials",
            ErrorCode::LockedOut => "locked_out",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::PasswordChangeRequired => "password_change_required",
            ErrorCode::WrongRecoveryCode => "wrong_recovery_code",
            ErrorCode::SignedOut => "signed_out",
            ErrorCode::NoStation => "no_station",
            ErrorCode::StationExists => "station_exists",
            ErrorCode::BadBackup => "bad_backup",
            ErrorCode::SchemaTooNew => "schema_too_new",
            ErrorCode::UnknownUnit => "unknown_unit",
            ErrorCode::KeyFile => "key_file",
            ErrorCode::BadLine => "bad_line",
            ErrorCode::BadRows => "bad_rows",
            ErrorCode::Io => "io",
            ErrorCode::AttachmentMissing => "attachment_missing",
            ErrorCode::AttachmentSealed => "attachment_sealed",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::Database => "database",
            ErrorCode::Revoked => "revoked",
            ErrorCode::BadJson => "bad_json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn each_code_reads_the_same_in_rust_and_on_the_wire() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }
}
