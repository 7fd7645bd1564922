//! What is read out of the records: the unit's report and its exports (CSV, XLSX, PDF), the
//! printed documents of a tip, the register book, and the Hôm nay screen's figures. Reads
//! records; never writes them, except the audit entry of an export.

pub mod documents;
pub mod register;
pub mod report;
pub mod report_export;
pub mod report_pdf;
pub mod today;
