//! The station's store: one encrypted SQLite file per station, its schema and migrations,
//! the change log every write feeds, register numbers, search, rosters and demo data.
//!
//! The store knows nothing of HTTP, of Tauri or of the command line: callers pass in the
//! time (`now`) and get typed errors with stable codes.
//!
//! It is built in layers, each a folder, none importing one above it (the test
//! `tests/it/layers.rs` reads the `use` lines and holds this):
//!
//! 1. [`base`](base/mod.rs): connection, migrations, keys, the change writer, the audit
//!    trail, meta, official units, search folding;
//! 2. [`records`](records/mod.rs): tips, rosters, channels, accounts, identity,
//!    attachments, settings;
//! 3. [`replica`](replica/mod.rs) (applying pulls, acknowledgements, conflicts, checksum
//!    scans) and [`reports`](reports/mod.rs) (report, exports, PDF, documents, today), side
//!    by side, neither importing the other;
//! 4. [`lifecycle`](lifecycle/mod.rs): create, open, recover, demo, backup, doctor.
//!
//! The modules callers outside name are re-exported here by name, so they write
//! `binhyen_store::roster::…` whatever the layer; the rest stay private to the crate (what
//! they offer is reached through `Station`'s methods).

mod base;
mod lifecycle;
mod records;
pub mod replica;
mod reports;

pub use base::{audit, changes, error, keys, migrate, private_files, search, station, sums, units};
pub(crate) use base::{session, sql};
pub(crate) use lifecycle::open;
pub use lifecycle::{backup, demo, doctor};
pub use records::{accounts, attachments, channels, identity, roster};
pub(crate) use records::{settings, tips};
pub use reports::{documents, register, report, report_export, report_pdf, today};

pub use accounts::{Credentials, FirstOfficer, Session};
pub use error::StoreError;
pub use open::InitOptions;
pub use station::{Checkpointer, Station, StationInfo};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
