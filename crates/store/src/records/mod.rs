//! The records officers keep: tips (with their reporters, actions, links and attachments),
//! the rosters of hamlets, people and online groups, channels, accounts, reporter identity
//! and the station's settings. Each writes through the core's change writer; none reads the
//! replica or the reports.

pub mod accounts;
pub mod anchors;
pub mod attachments;
pub mod channels;
pub mod identity;
pub mod roster;
pub mod settings;
pub mod tips;
