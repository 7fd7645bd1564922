//! Synchronisation between a station and the provincial server: the wire protocol (shared
//! with `binhyen-server`) and the station's engine (enrol, push the outbox, pull and merge,
//! compare checksums). The merge itself is `binhyen_domain::merge`, the same everywhere.

pub mod bundle;
pub mod engine;
pub mod protocol;

pub use engine::{
    enroll, export_bundle, import_reply, repair, sync_once, sync_with, BundleExport, SyncError,
    SyncReport, Transport,
};
