//! Events as CSV, the way network owners receive them: the fields needed to act in fixed
//! columns, everything else as JSON in `extra`, and no cell a spreadsheet would run as a formula.

use crate::{Event, Field};

/// The columns, after which comes `extra`.
pub const CSV_FIELDS: &[Field] = &[
    Field::TimeSource,
    Field::FeedName,
    Field::ClassificationTaxonomy,
    Field::ClassificationType,
    Field::ClassificationIdentifier,
    Field::SourceIp,
    Field::SourcePort,
    Field::SourceAsn,
    Field::SourceNetwork,
    Field::SourceGeolocationCc,
    Field::SourceReverseDns,
    Field::SourceFqdn,
    Field::SourceUrl,
    Field::DestinationIp,
    Field::DestinationPort,
    Field::DestinationFqdn,
    Field::ProtocolTransport,
    Field::ProtocolApplication,
    Field::MalwareName,
    Field::Tlp,
];

/// The header line, without its line end.
pub fn csv_header() -> String {
    CSV_FIELDS.iter().map(|f| f.name()).chain(["extra"]).collect::<Vec<_>>().join(",")
}

/// One event as a CSV line, without its line end.
pub fn csv_row(e: &Event) -> String {
    let mut cells: Vec<String> =
        CSV_FIELDS.iter().map(|&f| csv_cell(&e.get(f).map(|v| v.to_text()).unwrap_or_default())).collect();
    let extra = if e.extra.is_empty() { String::new() } else { serde_json::to_string(&e.extra).unwrap_or_default() };
    cells.push(csv_cell(&extra));
    cells.join(",")
}

/// A CSV cell, quoted when needed, and with a leading `'` when a spreadsheet would otherwise
/// run it as a formula (cells starting with `=`, `+`, `-`, `@`, tab or carriage return).
pub fn csv_cell(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("192.0.2.1"), "192.0.2.1");
    }
}
