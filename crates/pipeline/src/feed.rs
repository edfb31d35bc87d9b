//! A feed as the pipeline sees it: how to parse its reports and what to fill into its events.

use std::sync::Arc;

use farol_feeds::ParseConfig;
use farol_model::expert::Expert;
use farol_model::org::Distribution;
use farol_model::{Event, Field, FieldError};

use crate::Aggregation;

/// What builds a feed's expert chain for each report (enrichment with the current data).
pub type Experts = Arc<dyn Fn(&Feed) -> Vec<Box<dyn Expert>> + Send + Sync>;

/// Everything the pipeline needs to process one feed's reports.
#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    /// The format's name; `None` detects it from each report's name and content.
    pub format: Option<String>,
    pub parse: ParseConfig,
    pub defaults: Defaults,
    /// Repeated observations become one event with a count.
    pub aggregate: Option<Aggregation>,
    /// Events whose source is on a warninglist are dropped instead of marked.
    pub drop_warninglisted: bool,
    /// Who besides the national center may receive its events (within their TLP).
    pub distribution: Distribution,
    /// The sharing community, by name, when the distribution is `community`.
    pub community: Option<String>,
}

impl Feed {
    /// A feed with no configuration: the format is given or detected, nothing is filled in.
    pub fn adhoc(name: &str, format: Option<&str>) -> Feed {
        Feed {
            name: name.to_owned(),
            format: format.map(str::to_owned),
            parse: ParseConfig::default(),
            defaults: Defaults::default(),
            aggregate: None,
            drop_warninglisted: false,
            distribution: Distribution::Affected,
            community: None,
        }
    }
}

/// Field values set on every event that does not already have them: the feed's provider, its
/// default TLP, constant classifications.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// A scratch event holding the validated values.
    values: Event,
    /// The fields it sets.
    fields: Vec<Field>,
}

impl Defaults {
    /// Checks every value; returns all the errors at once.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Defaults, Vec<FieldError>> {
        let mut values = Event::default();
        let errors: Vec<FieldError> = pairs.into_iter().filter_map(|(k, v)| values.set(k, v).err()).collect();
        values.share_texts();
        let fields = values.iter().map(|(f, _)| f).collect();
        if errors.is_empty() { Ok(Defaults { values, fields }) } else { Err(errors) }
    }

    /// Fills what the event lacks.
    pub fn apply(&self, event: &mut Event) {
        for &field in &self.fields {
            if !event.has(field) {
                event.copy_field(&self.values, field);
            }
        }
        for (k, v) in &self.values.extra {
            event.extra.insert_if_absent(k, || v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_only_what_is_missing() {
        let d = Defaults::new([("tlp", "AMBER"), ("feed.provider", "Example"), ("extra.source", "sinkhole")]).unwrap();
        let mut e = Event::default();
        e.set("tlp", "RED").unwrap();
        d.apply(&mut e);
        assert_eq!(e.to_intelmq_json(), r#"{"extra.source":"sinkhole","feed.provider":"Example","tlp":"RED"}"#);
    }

    #[test]
    fn reports_every_bad_value() {
        let errors = Defaults::new([("tlp", "PINK"), ("source.asn", "x"), ("feed.provider", "ok")]).unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
