//! What a station and the provincial server agree on, and nothing else: the HTTP API's
//! types (`wire`), the offline bundle format (`bundle`), the sealed provisioning file
//! (`provisioning`), signed releases (`release`) and the rule for which server
//! addresses may be plain HTTP (`address`). It depends only on `binhyen-domain`; the
//! station's sync client (`binhyen-sync`) and the server (`binhyen-server`) both build on
//! it, and neither on the other.

pub mod address;
pub mod bundle;
pub mod provisioning;
pub mod release;
pub mod wire;

pub use address::is_loopback_url;
