//! The station as a whole: creating, opening and recovering it ([`open`]), the demo data,
//! encrypted backups and the `doctor`'s checks. The top layer: it may call any other.

pub mod backup;
pub mod demo;
pub mod doctor;
pub mod open;
