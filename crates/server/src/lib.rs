//! The provincial server: enrols stations, receives their changes, serves each station the
//! changes of its scope, and proves convergence with a checksum per scope. Storage sits
//! behind [`db::Backend`]; the HTTP layer knows nothing of SQL.

pub mod accounts;
pub mod anchor;
pub mod api;
pub mod backup;
pub mod bundle;
pub mod db;
pub mod metrics;
pub mod pki;
pub mod release;
pub mod report;
pub mod tls;

pub use api::{router, router_measured, router_with};
