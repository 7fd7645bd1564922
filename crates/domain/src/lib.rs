//! The Bình Yên domain: what a tip, a hamlet, a unit and a roster person are, how input is
//! validated, and the Vietnamese text rules. Pure: no I/O, no clock (time is passed in).

/// Bình Yên's version, as every binary and package shows it: `BINHYEN_VERSION` when the
/// release was built (`scripts/package.sh` stamps it), else the workspace's.
pub const VERSION: &str = match option_env!("BINHYEN_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

pub mod access;
pub mod attachment;
pub mod audit;
pub mod catalog;
pub mod checksum;
pub mod citizen_id;
pub mod error;
pub mod grant;
pub mod hlc;
pub mod merge;
pub mod period;
pub mod phone;
pub mod roster;
pub mod text;
pub mod time;
pub mod tip;
pub mod unit;
pub mod versions;

pub use error::{FieldError, Invalid};
