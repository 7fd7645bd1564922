//! The station's sync client: enrol, push the outbox, pull and merge, compare checksums and
//! repair, move attachments' files, write and read offline bundles. The wire types and the
//! bundle format are `binhyen-protocol`, shared with the server; the merge itself is
//! `binhyen_domain::merge`, the same everywhere.

pub mod engine;

pub use engine::{
    enroll, export_bundle, import_reply, repair, sync_once, sync_with, BundleExport, SyncError,
    SyncReport, Transport,
};
