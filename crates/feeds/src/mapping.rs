//! Column mappings for the generic CSV and JSON formats: which column goes to which field, and
//! how times are written.

use std::collections::BTreeMap;

use farol_model::{Event, Field, FieldError, Timestamp, kinds::FieldKind as _};
use serde::Deserialize;

use crate::ConfigError;

/// Which input column goes to which field: by header name (a table) or by position (an array,
/// for reports without a header). A target is a field name, `extra.NAME`, or `""` to ignore the
/// column.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    ByName(BTreeMap<String, String>),
    ByPosition(Vec<String>),
}

/// What happens to columns that the mapping does not name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    /// Kept as `extra.<column>`: nothing is lost.
    #[default]
    Extra,
    Drop,
}

/// How time values are written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "String")]
pub enum TimeFormat {
    /// ISO 8601 and its common variants; numbers are Unix seconds (or milliseconds when they
    /// have 13 digits).
    #[default]
    Auto,
    /// Unix seconds, possibly with a fraction.
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// A strftime pattern such as `%d/%m/%Y %H:%M`; without `%z` the time is UTC.
    Pattern(Pattern),
}

/// A strftime pattern, compiled once.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    text: String,
    /// `None` when the pattern is not valid strftime.
    items: Option<Vec<chrono::format::Item<'static>>>,
    /// The pattern is one of the ISO 8601 forms that [`Timestamp::parse`] reads faster.
    iso: bool,
    zoned: bool,
}

impl Pattern {
    fn new(text: String) -> Pattern {
        let items = chrono::format::StrftimeItems::new(&text).parse_to_owned().ok();
        let iso =
            matches!(text.as_str(), "%Y-%m-%d %H:%M:%S" | "%Y-%m-%dT%H:%M:%S" | "%Y-%m-%dT%H:%M:%SZ" | "%Y-%m-%d");
        let zoned = text.contains("%z") || text.contains("%:z");
        Pattern { text, items, iso, zoned }
    }

    fn parse(&self, s: &str) -> Option<Timestamp> {
        if self.iso {
            return Timestamp::parse(s);
        }
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, s, self.items.as_ref()?.iter()).ok()?;
        let micros = if self.zoned {
            parsed.to_datetime().ok()?.timestamp_micros()
        } else if let Ok(dt) = parsed.to_naive_datetime_with_offset(0) {
            dt.and_utc().timestamp_micros()
        } else {
            parsed.to_naive_date().ok()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros()
        };
        Timestamp::from_micros(micros)
    }
}

impl From<String> for TimeFormat {
    fn from(s: String) -> TimeFormat {
        match s.as_str() {
            "auto" | "" => TimeFormat::Auto,
            "unix" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            _ => TimeFormat::Pattern(Pattern::new(s)),
        }
    }
}

impl TimeFormat {
    /// A pattern that strftime does not understand is a configuration error.
    pub fn check(&self) -> Result<(), ConfigError> {
        match self {
            TimeFormat::Pattern(p) if p.items.is_none() => Err(ConfigError(format!(
                "time_format: {:?} is not a strftime pattern (for example %Y-%m-%d %H:%M:%S); \
                 or use auto, unix or unix_ms",
                p.text
            ))),
            _ => Ok(()),
        }
    }

    pub fn parse(&self, s: &str) -> Option<Timestamp> {
        let s = s.trim();
        match self {
            TimeFormat::Auto => Timestamp::parse(s).or_else(|| {
                let n: f64 = s.parse().ok()?;
                let digits = s.split('.').next().unwrap_or("").trim_start_matches('-').len();
                if digits >= 13 { Timestamp::from_secs_f64(n / 1000.0) } else { Timestamp::from_secs_f64(n) }
            }),
            TimeFormat::Unix => s.parse().ok().and_then(Timestamp::from_secs_f64),
            TimeFormat::UnixMs => s.parse::<f64>().ok().and_then(|ms| Timestamp::from_secs_f64(ms / 1000.0)),
            TimeFormat::Pattern(p) => p.parse(s),
        }
    }

    fn describe(&self) -> String {
        match self {
            TimeFormat::Auto => farol_model::kinds::Time::EXPECTED.to_owned(),
            TimeFormat::Unix => "a Unix time in seconds".to_owned(),
            TimeFormat::UnixMs => "a Unix time in milliseconds".to_owned(),
            TimeFormat::Pattern(p) => format!("a time written as {}", p.text),
        }
    }
}

/// Where one column's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Field(Field),
    Extra(String),
    Skip,
}

impl Target {
    pub(crate) fn parse(name: &str) -> Result<Target, ConfigError> {
        if name.is_empty() {
            return Ok(Target::Skip);
        }
        if let Some(key) = name.strip_prefix("extra.").filter(|k| !k.is_empty()) {
            return Ok(Target::Extra(key.to_owned()));
        }
        Field::from_name(name).map(Target::Field).ok_or_else(|| {
            ConfigError(format!(
                "columns: {name:?} is not a harmonization field; use a field name such as source.ip, \
                 extra.NAME to keep the column under extra, or \"\" to ignore it"
            ))
        })
    }

    /// The target of a column that the mapping does not name.
    pub(crate) fn unmapped(column: &str, unmapped: Unmapped) -> Target {
        match unmapped {
            Unmapped::Extra if !column.is_empty() => Target::Extra(column.to_owned()),
            _ => Target::Skip,
        }
    }
}

/// Stores one text value where its target says. Empty values are absent values.
pub(crate) fn apply(event: &mut Event, target: &Target, value: &str, time: &TimeFormat) -> Result<(), FieldError> {
    if value.is_empty() {
        return Ok(());
    }
    match target {
        Target::Skip => Ok(()),
        Target::Extra(key) => {
            event.extra.insert(key, serde_json::Value::String(value.to_owned()));
            Ok(())
        }
        Target::Field(field) if is_time(*field) => match time.parse(value) {
            Some(t) => event.set_timestamp(*field, t),
            None => Err(FieldError::new(field.name(), time.describe(), value)),
        },
        Target::Field(field) => event.set_field(*field, value),
    }
}

pub(crate) fn is_time(field: Field) -> bool {
    matches!(field, Field::TimeSource | Field::TimeObservation | Field::SourceAllocated | Field::DestinationAllocated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(format: &str, input: &str, expected: Option<&str>) {
        let got = TimeFormat::from(format.to_owned()).parse(input).map(|t| t.to_string());
        assert_eq!(got.as_deref(), expected, "{format} {input}");
    }

    #[test]
    fn time_formats() {
        check("auto", "2024-06-01 10:12:44", Some("2024-06-01T10:12:44+00:00"));
        check("auto", "1717236764", Some("2024-06-01T10:12:44+00:00"));
        check("auto", "1717236764500", Some("2024-06-01T10:12:44.500000+00:00"));
        check("unix", "1717236764.25", Some("2024-06-01T10:12:44.250000+00:00"));
        check("unix_ms", "1717236764000", Some("2024-06-01T10:12:44+00:00"));
        check("%d/%m/%Y %H:%M", "01/06/2024 10:12", Some("2024-06-01T10:12:00+00:00"));
        check("%d/%m/%Y", "01/06/2024", Some("2024-06-01T00:00:00+00:00"));
        check("%Y-%m-%d %H:%M:%S %z", "2024-06-01 12:12:44 +0200", Some("2024-06-01T10:12:44+00:00"));
        check("%d/%m/%Y", "2024-06-01", None);
        check("unix", "soon", None);
        check("unix", "1e300", None);
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("source.ip").unwrap(), Target::Field(Field::SourceIp));
        assert_eq!(Target::parse("extra.tag").unwrap(), Target::Extra("tag".into()));
        assert_eq!(Target::parse("").unwrap(), Target::Skip);
        assert!(Target::parse("src.ip").unwrap_err().0.starts_with("columns: \"src.ip\" is not a harmonization field"));
        let mut e = Event::default();
        let err =
            apply(&mut e, &Target::Field(Field::TimeSource), "yesterday", &TimeFormat::from("%d/%m/%Y".to_owned()));
        assert_eq!(
            err.unwrap_err().to_string(),
            r#"time.source: expected a time written as %d/%m/%Y, found "yesterday""#
        );
    }
}
