//! Aggregation: repeated observations of the same thing within a time window become one
//! stored event with a count and first and last seen, as n6 does for high-frequency data.

use std::collections::HashMap;

use farol_model::{Field, Record, Timestamp};
use farol_store::{Part, Row};

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// A feed's aggregation: which fields make two observations the same, and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    pub key: Vec<Field>,
    /// The window's length in seconds; windows start at multiples of it since the epoch.
    pub window: i64,
}

impl Aggregation {
    /// Checks a configuration: the key names fields and includes `source.ip` (events are
    /// stored and found by their address); the window is a whole number of seconds.
    pub fn new(key: &[String], window: i64) -> Result<Aggregation, String> {
        let key: Vec<Field> = key
            .iter()
            .map(|k| Field::from_name(k).ok_or_else(|| format!("aggregate.key: {k:?} is not a harmonization field")))
            .collect::<Result<_, _>>()?;
        if !key.contains(&Field::SourceIp) {
            return Err("aggregate.key must include source.ip: aggregated events are stored by their address".into());
        }
        if window <= 0 {
            return Err("aggregate.window must be positive, such as \"1h\"".into());
        }
        Ok(Aggregation { key, window })
    }

    /// One row per key and window, standing for every observation of this batch. The row is
    /// filed under the start of its window; its identity (the hash) is the key's values, the
    /// feed and the window, so that later batches and reports add to the same event.
    pub(crate) fn rows(&self, feed: &str, kept: Vec<Record>, common: &farol_model::Event, out: &mut Vec<Row>) {
        let window = self.window.saturating_mul(1_000_000);
        let mut at: HashMap<i64, usize> = HashMap::new();
        for mut record in kept {
            let time = record.event.time().map_or(0, Timestamp::micros);
            let start = time.div_euclid(window) * window;
            let mut salt = feed.as_bytes().to_vec();
            salt.extend_from_slice(&start.to_le_bytes());
            record.hash = record.event.hash_of(&self.key, &salt);
            let mut row = Row::new(&record, common);
            match at.get(&row.hash) {
                Some(&i) => {
                    let p = out[i].part.as_mut().expect("aggregated rows have a part");
                    p.count += 1;
                    p.first_seen = p.first_seen.min(time);
                    p.last_seen = p.last_seen.max(time);
                }
                None => {
                    row.time = start;
                    row.hour = start.div_euclid(MICROS_PER_HOUR);
                    row.part = Some(Part { count: 1, first_seen: time, last_seen: time });
                    at.insert(row.hash, out.len());
                    out.push(row);
                }
            }
        }
    }
}
