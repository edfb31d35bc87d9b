//! The expert role: a step that looks at each event after parsing and may change or drop it.

use crate::report::Record;

/// What an expert decided about a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Drop the event on purpose (it is counted, not rejected).
    Drop,
    /// The event is not acceptable; it becomes a reject with this reason.
    Reject(String),
}

/// One step of the expert chain (enrichment, routing, filtering). Experts are pure with respect
/// to the store: whatever data they need is loaded before the chain runs.
pub trait Expert: Send + Sync {
    /// A short name for logs and summaries.
    fn name(&self) -> &str;

    fn process(&self, record: &mut Record) -> Verdict;
}
