//! The station's sync client: enrol, push the outbox, pull and merge, compare checksums and
//! repair, move attachments' files, write and read offline bundles. The wire types and the
//! bundle format are `binhyen-protocol`, shared with the server; the merge itself is
//! `binhyen_domain::merge`, the same everywhere.
//!
//! One module a concern: [`engine`] runs a sync in order over [`transport`] (the pinned HTTP
//! client, or any [`Transport`]); [`push`], [`pull`], [`audit`], [`escrow`], [`files`] and
//! [`verify`] are its steps; [`enrol`] and [`offline`] stand beside it, and [`update`] (the
//! program's own updates, learnt of at sync or taken from a USB stick).

mod audit;
mod engine;
mod enrol;
mod error;
mod escrow;
mod files;
mod offline;
mod pull;
mod push;
mod transport;
pub mod update;
mod verify;

pub use engine::{sync_once, sync_with, SyncReport};
pub use enrol::{
    ca_fingerprint, enroll, enroll_text, enrolment_pending, needs_code, pinned_fingerprint,
    read_file, Enrolment,
};
pub use error::SyncError;
pub use offline::{export_bundle, import_reply, BundleExport};
pub use transport::{transport_for, Transport};
pub use verify::repair;
