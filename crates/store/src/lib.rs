//! The station's store: one encrypted SQLite file per station, its schema and migrations,
//! the change log every write feeds, register numbers, search, rosters and demo data.
//!
//! The store knows nothing of HTTP, of Tauri or of the command line: callers pass in the
//! time (`now`) and get typed errors with stable codes.

pub mod accounts;
pub mod attachments;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod channels;
pub mod demo;
pub mod doctor;
pub mod documents;
pub mod error;
pub mod identity;
pub mod keys;
pub mod migrate;
pub mod private_files;
pub mod replica;
pub mod report;
pub mod report_export;
pub mod report_pdf;
pub mod roster;
pub mod search;
pub mod settings;
pub mod station;
pub mod sums;
pub mod tips;
pub mod today;
pub mod units;

mod sql;

pub use accounts::{Credentials, FirstOfficer, Session};
pub use error::StoreError;
pub use station::{Checkpointer, InitOptions, Station, StationInfo};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
