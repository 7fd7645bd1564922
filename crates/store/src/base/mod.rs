//! The core: the connection and its owner ([`station::Station`]), the schema and its
//! migrations, the keys, the change writer with its versions and checksum shares, the audit
//! trail every write may append to in its own transaction, the station's meta, the official
//! units and the search folding. Nothing here imports a layer above it.

pub mod audit;
pub mod changes;
pub mod error;
pub mod keys;
pub mod migrate;
pub mod private_files;
pub mod search;
pub mod session;
pub(crate) mod sql;
pub mod station;
pub mod sums;
pub mod units;
