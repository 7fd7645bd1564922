//! What can go wrong in a sync, and which refusals are for good.

use binhyen_protocol::wire::ApiError;
use binhyen_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "Không kết nối được máy chủ {url}: {reason}. Dữ liệu vẫn an toàn trên máy; sẽ thử lại."
    )]
    Unreachable { url: String, reason: String },
    #[error("Máy chủ {url} không xuất trình đúng chứng chỉ đã ghim trong tệp cấp phép ({reason}). Có thể đã kết nối nhầm máy chủ hoặc bị giả mạo; không có dữ liệu nào được gửi. Hãy báo Công an tỉnh.")]
    Untrusted { url: String, reason: String },
    #[error("Máy chủ từ chối ({status}): {}", .error.message)]
    Refused { status: u16, error: ApiError },
    #[error("Trạm chưa đăng ký với máy chủ tỉnh: cán bộ kỹ thuật Công an tỉnh đăng ký máy bằng tệp cấp phép.")]
    NotEnrolled,
    #[error("Tệp cấp phép không hợp lệ: {0}")]
    Provisioning(String),
    #[error("{}{}", capitalised(.0), ".")]
    SealedProvisioning(binhyen_protocol::provisioning::ProvisioningError),
    #[error("Đây là trạm dùng thử với dữ liệu mẫu: không bao giờ được đăng ký với máy chủ tỉnh, để dữ liệu mẫu không lẫn vào dữ liệu thật. Hãy thiết lập trạm thật từ tệp cấp phép trên một thư mục dữ liệu mới.")]
    DemoStation,
    #[error("Trả lời của máy chủ không đọc được: {0}")]
    BadResponse(String),
    #[error("{0}")]
    Bundle(#[from] binhyen_protocol::bundle::BundleError),
    #[error("{0}")]
    Release(#[from] binhyen_protocol::release::ReleaseError),
    #[error("{0}")]
    Update(String),
}

impl SyncError {
    pub fn code(&self) -> &str {
        match self {
            SyncError::Store(e) => e.code(),
            SyncError::Unreachable { .. } => "unreachable",
            SyncError::Untrusted { .. } => "untrusted_server",
            SyncError::Refused { error, .. } => &error.code,
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::Provisioning(_) => "bad_provisioning",
            SyncError::SealedProvisioning(e) => match e {
                binhyen_protocol::provisioning::ProvisioningError::CodeNeeded => "code_needed",
                binhyen_protocol::provisioning::ProvisioningError::WrongCode => "wrong_code",
                binhyen_protocol::provisioning::ProvisioningError::Unreadable(_) => {
                    "bad_provisioning"
                }
            },
            SyncError::DemoStation => "demo_station",
            SyncError::BadResponse(_) => "bad_response",
            SyncError::Bundle(e) => e.code(),
            SyncError::Release(e) => e.code(),
            SyncError::Update(_) => "update_failed",
        }
    }
}

/// A message of the protocol's, as a sentence.
fn capitalised(e: &binhyen_protocol::provisioning::ProvisioningError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A refusal that sending again will not change: the change itself is at fault.
pub(crate) fn refused_for_good_code(code: &str) -> bool {
    binhyen_protocol::wire::refused_for_good(code)
}

pub(crate) fn refused_for_good(e: &SyncError) -> bool {
    matches!(e, SyncError::Refused { error, .. } if refused_for_good_code(&error.code))
}
