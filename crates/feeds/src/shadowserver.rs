//! The `shadowserver` format: Shadowserver's CSV reports, read as their IntelMQ schema says.
//!
//! The schema is the JSON that Shadowserver publishes for IntelMQ (`intelmq.json`): per report
//! type, a feed name, a file name, constant fields, and required and optional
//! `[field, column, converter, pass_row]` rules. farol ships its own schema for the reports
//! national CERTs receive most (`schema/shadowserver.json`); an operator can load Shadowserver's
//! current file instead, and every report type in it then works. Columns that no rule names are
//! kept as `extra.<column>`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use farol_model::{Event, Field, Timestamp};
use serde_json::Value;

use crate::csv::{CsvRecords, Item};
use crate::{Confidence, ConfigError, CsvOptions, Format, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "shadowserver",
    description: "Shadowserver CSV reports, mapped by a Shadowserver IntelMQ schema",
    build: |config, name| Ok(Box::new(ShadowserverParser::new(config, name)?)),
    detect,
};

/// farol's own schema, compiled into the binary.
const BUILTIN: &str = include_str!("../schema/shadowserver.json");

/// A Shadowserver schema: report types and how each maps to events.
#[derive(Debug)]
pub struct Schema {
    reports: HashMap<String, Arc<ReportSpec>>,
    /// When the schema was written (`_meta.date_created`).
    pub created: Option<String>,
    /// Converters the schema names that farol does not know; their values pass unchanged.
    pub unknown_converters: Vec<String>,
}

#[derive(Debug)]
struct ReportSpec {
    file_name: String,
    constants: Event,
    required: Vec<Rule>,
    optional: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// A field name, `extra.NAME`, or `None` for IntelMQ's `"extra."` (keep under the column's name).
    target: Option<String>,
    column: String,
    convert: Convert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convert {
    None,
    AddUtc,
    ValidateIp,
    ValidateNetwork,
    ValidateFqdn,
    Int,
    Float,
    Bool,
    InvalidateZero,
    ValidateToNone,
    Date,
    HttpHostAndUrl,
    ForceBase64,
    CategoryOrDetail,
    ExchangeTaxonomy,
    ExchangeType,
    ExchangeIdentifier,
}

impl Convert {
    fn parse(name: &str) -> Option<Convert> {
        Some(match name {
            "add_UTC_to_timestamp" => Convert::AddUtc,
            "validate_ip" => Convert::ValidateIp,
            "validate_network" => Convert::ValidateNetwork,
            "validate_fqdn" => Convert::ValidateFqdn,
            "convert_int" => Convert::Int,
            "convert_float" => Convert::Float,
            "convert_bool" => Convert::Bool,
            "invalidate_zero" => Convert::InvalidateZero,
            "validate_to_none" => Convert::ValidateToNone,
            "convert_date" | "convert_date_utc" => Convert::Date,
            "convert_http_host_and_url" => Convert::HttpHostAndUrl,
            "force_base64" => Convert::ForceBase64,
            "category_or_detail" => Convert::CategoryOrDetail,
            "scan_exchange_taxonomy" => Convert::ExchangeTaxonomy,
            "scan_exchange_type" => Convert::ExchangeType,
            "scan_exchange_identifier" => Convert::ExchangeIdentifier,
            _ => return None,
        })
    }
}

impl Schema {
    /// The schema farol ships.
    pub fn builtin() -> Arc<Schema> {
        static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                // A test checks that the shipped file loads; an empty schema is the fallback.
                Arc::new(Schema::from_json(BUILTIN).unwrap_or_else(|_| Schema {
                    reports: HashMap::new(),
                    created: None,
                    unknown_converters: Vec::new(),
                }))
            })
            .clone()
    }

    /// Reads a schema in the format of Shadowserver's `intelmq.json`, reporting every problem.
    pub fn from_json(text: &str) -> Result<Schema, ConfigError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ConfigError(format!("the Shadowserver schema is not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ConfigError("the Shadowserver schema must be a JSON object of report types".into()));
        };
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        let mut reports = HashMap::new();
        let mut created = None;
        for (key, spec) in &map {
            if key == "_meta" {
                created = spec.get("date_created").and_then(Value::as_str).map(str::to_owned);
                continue;
            }
            match ReportSpec::from_json(key, spec, &mut unknown) {
                Ok(spec) => {
                    let spec = Arc::new(spec);
                    if let Some(feed) = map[key].get("feed_name").and_then(Value::as_str) {
                        reports.entry(feed.to_owned()).or_insert_with(|| spec.clone());
                    }
                    reports.insert(spec.file_name.clone(), spec);
                }
                Err(e) => errors.push(format!("{key}: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(format!("the Shadowserver schema has problems: {}", errors.join("; "))));
        }
        unknown.sort();
        unknown.dedup();
        Ok(Schema { reports, created, unknown_converters: unknown })
    }

    /// The report type with this file name or feed name; IPv6 reports fall back to their IPv4
    /// twin (`scan6_http` to `scan_http`, `event6_sinkhole` to `event4_sinkhole`).
    fn report(&self, name: &str) -> Option<&Arc<ReportSpec>> {
        self.reports.get(name).or_else(|| {
            let twin = if let Some(rest) = name.strip_prefix("scan6_") {
                format!("scan_{rest}")
            } else if let Some(rest) = name.strip_prefix("event6_") {
                format!("event4_{rest}")
            } else {
                name.strip_suffix('6')?.to_owned()
            };
            self.reports.get(&twin)
        })
    }

    /// The report types it knows, by file name.
    pub fn report_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> =
            self.reports.iter().filter(|(k, v)| **k == v.file_name).map(|(k, _)| k.as_str()).collect();
        types.sort_unstable();
        types
    }
}

impl ReportSpec {
    fn from_json(key: &str, spec: &Value, unknown: &mut Vec<String>) -> Result<ReportSpec, String> {
        let file_name = spec.get("file_name").and_then(Value::as_str).unwrap_or(key).to_owned();
        let mut constants = Event::default();
        if let Some(Value::Object(c)) = spec.get("constant_fields") {
            for (field, value) in c {
                constants.set_json(field, value).map_err(|e| format!("constant_fields: {e}"))?;
            }
        }
        if constants.feed_documentation.is_none() {
            // The report's page tells a network owner what the finding means and how to fix it.
            constants.feed_documentation = spec.get("url").and_then(Value::as_str).map(Into::into);
        }
        constants.share_texts();
        let rules = |name: &str, unknown: &mut Vec<String>| -> Result<Vec<Rule>, String> {
            let Some(list) = spec.get(name) else { return Ok(Vec::new()) };
            let list = list.as_array().ok_or_else(|| format!("{name} must be an array"))?;
            list.iter().map(|r| Rule::from_json(r, unknown).map_err(|e| format!("{name}: {e}"))).collect()
        };
        Ok(ReportSpec {
            file_name,
            constants,
            required: rules("required_fields", unknown)?,
            optional: rules("optional_fields", unknown)?,
        })
    }
}

impl Rule {
    fn from_json(rule: &Value, unknown: &mut Vec<String>) -> Result<Rule, String> {
        let parts = rule.as_array().ok_or_else(|| format!("expected [field, column, converter], found {rule}"))?;
        let text = |i: usize| parts.get(i).and_then(Value::as_str);
        let (Some(field), Some(column)) = (text(0), text(1)) else {
            return Err(format!("expected [field, column, converter], found {rule}"));
        };
        let convert = match text(2) {
            None | Some("") => Convert::None,
            Some(name) => Convert::parse(name).unwrap_or_else(|| {
                unknown.push(name.to_owned());
                Convert::None
            }),
        };
        let target = match field {
            "extra." => None,
            f if f.starts_with("extra.") || farol_model::Field::from_name(f).is_some() => Some(f.to_owned()),
            // A field this farol does not know: kept under extra, not lost.
            f => Some(format!("extra.{f}")),
        };
        Ok(Rule { target, column: column.to_owned(), convert })
    }
}

/// A value after its converter; text is borrowed from the record when unchanged.
enum Converted<'a> {
    Text(std::borrow::Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(Timestamp),
}

impl Converted<'_> {
    fn json(&self) -> Value {
        match self {
            Converted::Text(s) => Value::String(s.to_string()),
            Converted::Int(i) => Value::from(*i),
            Converted::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Converted::Bool(b) => Value::Bool(*b),
            Converted::Time(t) => Value::String(t.to_string()),
        }
    }
}

/// Applies a converter; `Ok(None)` means "no value" (IntelMQ's `None`).
fn convert<'a>(c: Convert, value: &'a str, row: &Row<'a>) -> Result<Option<Converted<'a>>, String> {
    use Converted::{Bool, Float, Int, Text, Time};
    use std::borrow::Cow::{Borrowed, Owned};
    let some = |s: &'a str| (!s.is_empty()).then_some(Text(Borrowed(s)));
    let int = |s: &str| s.parse::<i64>().map_err(|_| format!("expected an integer, found {s:?}"));
    Ok(match c {
        Convert::None => some(value),
        Convert::AddUtc | Convert::Date => {
            if value.is_empty() {
                None
            } else {
                Some(Time(Timestamp::parse(value).ok_or_else(|| format!("expected a date and time, found {value:?}"))?))
            }
        }
        Convert::ValidateIp => {
            (value != "0.0.0.0" && !value.contains('/') && value.parse::<std::net::IpAddr>().is_ok())
                .then_some(Text(Borrowed(value)))
        }
        Convert::ValidateNetwork => {
            use farol_model::kinds::FieldKind as _;
            (value.contains('/') && farol_model::kinds::Network::parse(value).is_some())
                .then_some(Text(Borrowed(value)))
        }
        Convert::ValidateFqdn => {
            use farol_model::kinds::FieldKind as _;
            farol_model::kinds::Fqdn::parse(value).is_some().then_some(Text(Borrowed(value)))
        }
        Convert::Int => (!value.is_empty()).then(|| int(value)).transpose()?.map(Int),
        Convert::Float => (!value.is_empty())
            .then(|| value.parse::<f64>().map_err(|_| format!("expected a number, found {value:?}")))
            .transpose()?
            .filter(|f| f.is_finite())
            .map(Float),
        Convert::Bool => match value.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "enabled" | "1" => Some(Bool(true)),
            "n" | "no" | "false" | "disabled" | "0" => Some(Bool(false)),
            _ => None,
        },
        Convert::InvalidateZero => match value {
            "" => None,
            v => Some(int(v)?).filter(|&i| i != 0).map(Int),
        },
        Convert::ValidateToNone => (!matches!(value, "" | "0" | "unknown")).then_some(Text(Borrowed(value))),
        Convert::HttpHostAndUrl => {
            let host = row.get("cc_dns").or_else(|| row.get("http_host")).unwrap_or("");
            let path = row.get("url").or_else(|| row.get("http_url")).unwrap_or("");
            if host.is_empty() || path.is_empty() {
                some(value)
            } else {
                // The column may hold a whole request line ("GET /x HTTP/1.1"): keep the path.
                let path = path.find('/').map_or("", |i| &path[i..]);
                let path = path.split(char::is_whitespace).next().unwrap_or("");
                let scheme = row.get("application").filter(|a| matches!(*a, "http" | "https")).unwrap_or("http");
                Some(Text(Owned(format!("{scheme}://{host}{path}"))))
            }
        }
        Convert::ForceBase64 => some(value).map(|_| {
            let engine = base64::engine::general_purpose::STANDARD;
            if engine.decode(value).is_ok() { Text(Borrowed(value)) } else { Text(Owned(engine.encode(value))) }
        }),
        Convert::CategoryOrDetail => some(value).or_else(|| row.get("detail").and_then(some)),
        Convert::ExchangeTaxonomy => {
            Some(Text(Borrowed(if value == "exchange;webshell" { "intrusions" } else { "vulnerable" })))
        }
        Convert::ExchangeType => {
            Some(Text(Borrowed(if value == "exchange;webshell" { "system-compromise" } else { "vulnerable-system" })))
        }
        Convert::ExchangeIdentifier => Some(Text(Borrowed(if value == "exchange;webshell" {
            "exchange-server-webshell"
        } else {
            "vulnerable-exchange-server"
        }))),
    })
}

/// A record's cells with the header, for converters that look at other columns.
struct Row<'a> {
    header: &'a HashMap<String, usize>,
    cells: &'a [&'a str],
}

impl<'a> Row<'a> {
    fn get(&self, column: &str) -> Option<&'a str> {
        self.header.get(column).and_then(|&i| self.cells.get(i)).copied()
    }
}

/// Where a rule's value goes, resolved once per report.
#[derive(Debug, Clone)]
enum Put {
    Field(Field),
    Extra(String),
}

#[derive(Debug)]
struct PlanRule {
    put: Put,
    column: usize,
    convert: Convert,
    required: bool,
    /// The converter only checks what the target field's own parser checks (an address into
    /// an address field, a name into a name field): the value is parsed once, by the field.
    by_field: bool,
}

/// How a report's columns are read, decided from its header.
#[derive(Debug)]
struct Plan {
    spec: Arc<ReportSpec>,
    /// The fields the schema sets to constants.
    constants: Vec<Field>,
    names: Vec<String>,
    index: HashMap<String, usize>,
    rules: Vec<PlanRule>,
    /// Columns that no rule reads: kept as `extra.<column>`.
    rest: Vec<usize>,
}

impl Plan {
    fn new(spec: Arc<ReportSpec>, names: Vec<String>) -> Result<Plan, String> {
        let index: HashMap<String, usize> = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        let mut rules = Vec::new();
        let mut missing = Vec::new();
        for (rule, required) in spec.required.iter().map(|r| (r, true)).chain(spec.optional.iter().map(|r| (r, false)))
        {
            let Some(&column) = index.get(&rule.column) else {
                if required {
                    missing.push(rule.column.as_str());
                }
                continue;
            };
            let put = match &rule.target {
                None => Put::Extra(rule.column.clone()),
                Some(t) => match t.strip_prefix("extra.") {
                    Some(key) => Put::Extra(key.to_owned()),
                    None => Put::Field(Field::from_name(t).ok_or_else(|| format!("unknown field {t}"))?),
                },
            };
            let by_field = match (&put, rule.convert) {
                (Put::Field(f), Convert::ValidateIp) => f.expected() == Field::SourceIp.expected(),
                (Put::Field(f), Convert::ValidateFqdn) => f.expected() == Field::SourceFqdn.expected(),
                _ => false,
            };
            rules.push(PlanRule { put, column, convert: rule.convert, required, by_field });
        }
        if !missing.is_empty() {
            return Err(format!(
                "this {} report has no column {}, which its schema requires; the header has: {}",
                spec.file_name,
                missing.join(", "),
                names.join(", ")
            ));
        }
        let used: Vec<bool> = (0..names.len()).map(|i| rules.iter().any(|r| r.column == i)).collect();
        let rest = (0..names.len()).filter(|&i| !used[i]).collect();
        let constants = spec.constants.iter().map(|(f, _)| f).collect();
        Ok(Plan { spec, constants, names, index, rules, rest })
    }

    fn fill(&self, event: &mut Event, texts: &[&str]) -> Result<(), String> {
        let row = Row { header: &self.index, cells: texts };
        for &f in &self.constants {
            event.copy_field(&self.spec.constants, f);
        }
        for rule in &self.rules {
            let column = &self.names[rule.column];
            let raw = texts[rule.column];
            if let (true, Put::Field(f)) = (rule.by_field, &rule.put) {
                let address_only = rule.convert == Convert::ValidateIp && (raw == "0.0.0.0" || raw.contains('/'));
                if (raw.is_empty() || address_only || event.set_field(*f, raw).is_err()) && rule.required {
                    return Err(format!("column {column:?}: a value is required, found {raw:?}"));
                }
                continue;
            }
            let value = match convert(rule.convert, raw, &row) {
                Ok(Some(v)) => v,
                Ok(None) if rule.required => {
                    return Err(format!("column {column:?}: a value is required, found {raw:?}"));
                }
                Ok(None) => continue,
                Err(e) if rule.required => return Err(format!("column {column:?}: {e}")),
                Err(_) => {
                    // An optional value that its converter cannot read is kept as it came.
                    event.extra.insert(column, Value::String(raw.to_owned()));
                    continue;
                }
            };
            let result = match (&rule.put, &value) {
                (Put::Extra(key), v) => {
                    event.extra.insert(key, v.json());
                    Ok(())
                }
                (Put::Field(f), Converted::Text(s)) => event.set_field(*f, s),
                (Put::Field(f), Converted::Time(t)) => event.set_timestamp(*f, *t),
                // The text the integer was read from: the field reads it again, without a copy.
                (Put::Field(f), Converted::Int(_)) => event.set_field(*f, raw),
                (Put::Field(f), other) => event.set_json(f.name(), &other.json()),
            };
            match result {
                Ok(()) => {}
                Err(e) if rule.required => return Err(format!("column {column:?}: {e}")),
                // An optional value that does not fit its field is kept, not lost.
                Err(_) => {
                    event.extra.insert(column, Value::String(raw.to_owned()));
                }
            }
        }
        for &i in &self.rest {
            if !texts[i].is_empty() {
                event.extra.insert(self.names[i].clone(), Value::String(texts[i].to_owned()));
            }
        }
        Ok(())
    }
}

/// The report type in a Shadowserver file name: `2024-06-01-scan_http-pt.csv` is `scan_http`.
pub(crate) fn report_type_from_name(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let b = base.as_bytes();
    let dated = b.len() > 11
        && b[..10].iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && b[10] == b'-';
    if !dated {
        return None;
    }
    let rest = &base[11..];
    let kind = rest.split('-').next()?;
    let kind = kind.split('.').next()?;
    (!kind.is_empty()).then_some(kind)
}

fn detect(probe: &Probe<'_>) -> Option<Confidence> {
    let header = probe.head.split(|&b| b == b'\n').next()?;
    let header = String::from_utf8_lossy(header).to_ascii_lowercase().replace('"', "");
    let looks = header.starts_with("timestamp,") && (header.contains(",src_ip,") || header.contains(",ip,"));
    let named = probe.name.and_then(report_type_from_name).is_some_and(|t| Schema::builtin().report(t).is_some());
    match (looks, named) {
        (true, true) => Some(Confidence::Certain),
        (true, false) | (false, true) => Some(Confidence::Plausible),
        (false, false) => None,
    }
}

#[derive(Debug)]
pub(crate) struct ShadowserverParser {
    records: CsvRecords,
    state: State,
}

#[derive(Debug)]
struct State {
    schema: Arc<Schema>,
    report_type: Option<String>,
    plan: Option<Plan>,
    failed: bool,
}

impl ShadowserverParser {
    pub(crate) fn new(config: &ParseConfig, name: Option<&str>) -> Result<ShadowserverParser, ConfigError> {
        let schema = config.shadowserver_schema.clone().unwrap_or_else(Schema::builtin);
        let report_type =
            config.shadowserver.report.clone().or_else(|| name.and_then(report_type_from_name).map(str::to_owned));
        if let Some(t) = &config.shadowserver.report
            && schema.report(t).is_none()
        {
            return Err(ConfigError(format!(
                "shadowserver.report: {t:?} is not a report type of the schema (it knows: {})",
                schema.report_types().join(", ")
            )));
        }
        let opts = CsvOptions { comment: String::new(), ..CsvOptions::default() };
        Ok(ShadowserverParser {
            records: CsvRecords::new(&opts, config.max_record())?,
            state: State { schema, report_type, plan: None, failed: false },
        })
    }
}

impl State {
    fn record(&mut self, item: Item<'_>, out: &mut Output) {
        if self.failed {
            return;
        }
        let Some(plan) = &self.plan else {
            match self.start(item) {
                Ok(plan) => self.plan = Some(plan),
                Err(message) => {
                    out.fatal = Some(message);
                    self.failed = true;
                }
            }
            return;
        };
        let Some(record) = item.record(out, &plan.names) else { return };
        if record.cells.len() != plan.names.len() {
            let reason =
                format!("expected {} columns (as in the header), found {}", plan.names.len(), record.cells.len());
            out.reject(record.position, reason, record.raw);
            return;
        }
        out.build(record.position, record.raw, |event| plan.fill(event, record.cells));
    }

    fn start(&self, header: Item<'_>) -> Result<Plan, String> {
        let Some(kind) = &self.report_type else {
            return Err("cannot tell which Shadowserver report this is: its name is not YYYY-MM-DD-<type>-<id>.csv; \
                        set shadowserver.report in the feed's configuration"
                .to_owned());
        };
        let spec = self.schema.report(kind).ok_or_else(|| {
            format!(
                "{kind:?} is not a report type of the Shadowserver schema in use ({} types); point farol at \
                 Shadowserver's current schema with FAROL_SHADOWSERVER_SCHEMA or [shadowserver] schema in farol.toml",
                self.schema.report_types().len()
            )
        })?;
        Plan::new(spec.clone(), header.names()?)
    }
}

impl Parser for ShadowserverParser {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        let state = &mut self.state;
        self.records.push(chunk, &mut |item| state.record(item, out));
    }

    fn finish(&mut self, out: &mut Output) {
        let state = &mut self.state;
        self.records.finish(&mut |item| state.record(item, out));
        if state.plan.is_none() && !state.failed {
            out.fatal = Some("the report is empty: expected a header line".to_owned());
        }
    }
}
