//! The Bình Yên domain: what a tip, a hamlet, a unit and a roster person are, how input is
//! validated, and the Vietnamese text rules. Pure: no I/O, no clock (time is passed in).

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
