//! The event model shared by every part of farol: IntelMQ's harmonization fields as typed
//! values, the RSIT taxonomy, TLP 2.0, reports and rejects, and the wire forms of an event.
//!
//! Nothing here does I/O.

mod codec;
mod event;
pub mod expert;
pub mod export;
mod extra;
mod intelmq;
pub mod kinds;
// Its `named_enum!` serves the modules after it.
#[macro_use]
pub mod org;
pub mod incident;
pub mod indicator;
pub mod parse;
mod report;
mod taxonomy;
mod time;
mod tlp;

pub use codec::CorruptEvent;
pub use event::{Event, EventError, EventHash, Extra, Field, FieldError, quote_short};
pub use intelmq::IntelMqError;
pub use kinds::FieldValue;
pub use report::{Counts, Position, Record, Reject, Report, ReportId, ReportStatus, Routing, Scope};
pub use taxonomy::{ClassificationType, Recognized, Taxonomy};
pub use time::Timestamp;
pub use tlp::{InvalidTlp, Tlp};

/// An error and its causes on one line, `error: cause: its cause`: the HTTP and PostgreSQL
/// clients keep the causes apart, and without them a message says only "error connecting".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
