//! Enrichment and constituency: IP data (who announces an address, in which country), the
//! longest-prefix lookup behind it, routing of events to the organizations that own their
//! networks, and warninglists. Nothing here does I/O: loaders read bytes they are given.

pub mod constituency;
mod expert;
pub mod ipdata;
pub mod range;
pub mod ripe;
pub mod warninglist;

pub use expert::{DIFFERS, Enricher, Live, PROVENANCE, Snapshot, WARNINGLISTS, enrich};
