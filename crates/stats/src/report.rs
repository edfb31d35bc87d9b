//! The national threat report: one self-contained, print-friendly HTML page (inline CSS and
//! SVG, nothing fetched) with key findings, the infection rate against the world and peers,
//! trends, families, sectors and the most affected networks.

use std::fmt::Write as _;

use farol_model::org::Org;
use farol_store::{Breakdown, HostScope, Result, Store};

use crate::svg::{Stacked, escape, number};
use crate::{
    By, Day, Denominators, Filter, Mark, Ranked, Ranking, Subject, asn_bars, date, family_shares, line, mark_ratios,
    most_improved, periods, ranking, rate_chart, rate_line, series, world_series,
};

/// What the report covers.
#[derive(Debug, Clone)]
pub struct Spec {
    pub center: String,
    pub country: String,
    pub from: Day,
    pub to: Day,
    /// Public (TLP:CLEAR): aggregates only, no organization named, and nothing from events
    /// above TLP:AMBER (AMBER+STRICT and RED stay out even of the counts).
    pub public: bool,
    pub peers: Vec<String>,
    pub marks: Vec<Mark>,
}

const CSS: &str = "body{font-family:system-ui,sans-serif;color:#222;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
.tlp{display:inline-block;background:#000;font-weight:700;padding:.1rem .5rem;font-family:monospace}
.tlp-clear{color:#fff}.tlp-amber{color:#ffc000}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .7rem;border-bottom:1px solid #e5e5e5;text-align:right}
td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.9rem}svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg,table{break-inside:avoid}}";

/// A ranking as a table: name, infected addresses, a day, and the rate.
fn table(h: &mut String, what: &str, per: &str, rows: &[Ranked]) {
    let _ = write!(h, "<table><tr><th>{what}</th><th>infected addresses</th><th>a day</th><th>{per}</th></tr>");
    for r in rows {
        let rate = r.rate().map_or("–".into(), number);
        let (label, mean) = (escape(&r.label), number(r.daily_mean));
        let _ = write!(h, "<tr><td>{label}</td><td>{}</td><td>{mean}</td><td>{rate}</td></tr>", r.hosts);
    }
    h.push_str("</table>");
}

/// The report as one HTML document.
pub fn render(store: &dyn Store, spec: &Spec, orgs: &[Org], denominators: &Denominators) -> Result<String> {
    let mut filter = Filter::infected(spec.from, spec.to);
    if spec.public {
        filter.max_tlp = Some(farol_policy::AGGREGATES);
    }
    let country = Subject::Country(spec.country.to_ascii_uppercase());
    let nation_scope = country.scope();
    let by = if spec.to - spec.from > 120 { By::Week } else { By::Day };
    let nation = series(store, &country, &filter, by, denominators)?;
    let world = world_series(store, &filter, by, denominators)?;
    let whole = store.hosts(&filter.query(nation_scope.clone(), spec.from, spec.to))?;
    let days = spec.to - spec.from + 1;
    let whole_denominator = denominators.of(&country, spec.from);
    let nation_rate = whole_denominator.as_ref().map(|d| whole.host_days as f64 / days as f64 / d.value * 1000.0);
    let world_total: Vec<&crate::Point> = world.iter().filter(|p| p.denominator.is_some()).collect();
    let world_rate = (!world_total.is_empty())
        .then(|| world_total.iter().filter_map(|p| p.rate()).sum::<f64>() / world_total.len() as f64);

    let (tlp, tlp_class) = if spec.public { ("TLP:CLEAR", "tlp-clear") } else { ("TLP:AMBER", "tlp-amber") };
    let title =
        format!("Botnet infections in {}, {} to {}", spec.country.to_ascii_uppercase(), date(spec.from), date(spec.to));
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head><body>\
         <p><span class=\"tlp {tlp_class}\">{tlp}</span></p><h1>{t}</h1><p class=\"note\">{c}, national threat report. \
         Counts are distinct infected IP addresses (classification type infected-system); a rate is the mean number \
         seen a day per 1,000 of the denominator.</p>",
        t = escape(&title),
        c = escape(&spec.center)
    );

    // Key findings.
    h.push_str("<h2>Key findings</h2><ul>");
    let _ = write!(
        h,
        "<li>{} distinct infected addresses over the period, {} on an average day{}.</li>",
        whole.hosts,
        number(whole.host_days as f64 / days as f64),
        nation_rate.map_or(String::new(), |r| format!(
            ": {} per 1,000 {}",
            number(r),
            whole_denominator.as_ref().map_or("", |d| if d.proxy {
                "announced addresses (proxy)"
            } else {
                "internet users"
            })
        ))
    );
    if let (Some(n), Some(w)) = (nation_rate, world_rate) {
        let _ = write!(
            h,
            "<li>The national rate is {}× the average of the countries in the data ({} against {} per 1,000).</li>",
            number(n / w),
            number(n),
            number(w)
        );
    }
    for (mark, rr) in mark_ratios(store, &nation_scope, &filter, &spec.marks)? {
        let _ = write!(
            h,
            "<li>Since {} ({}): {} infected addresses a day against {} before, a rate ratio of {} (95% CI {} to {}).</li>",
            date(mark.day),
            escape(&mark.label),
            number(rr.after),
            number(rr.before),
            number(rr.ratio),
            number(rr.low),
            number(rr.high)
        );
    }
    let families = store.host_breakdown(&filter.query(nation_scope.clone(), spec.from, spec.to), Breakdown::Family)?;
    let family_total: u64 = families.iter().map(|c| c.hosts).sum();
    if let Some(top) = families.first().filter(|_| family_total > 0) {
        let _ = write!(
            h,
            "<li>The most widespread family is {}: {}% of infected addresses.</li>",
            escape(if top.key.is_empty() { "unnamed" } else { &top.key }),
            number(top.hosts as f64 * 100.0 / family_total as f64)
        );
    }
    // Sectors and organizations are the constituency's, whatever country their addresses are
    // registered in.
    let sectors = ranking(store, HostScope::All, &filter, Ranking::Sector, orgs, denominators, 30)?;
    if let Some(top) = sectors.first() {
        let _ = write!(
            h,
            "<li>Among the constituency, the sector with the most infected addresses is {}.</li>",
            escape(&top.label)
        );
    }
    h.push_str("</ul>");

    // The rate against the world and the peers.
    h.push_str("<h2>Infection rate</h2>");
    let mut lines = vec![line(spec.country.to_ascii_uppercase(), &nation)];
    if world.iter().any(|p| p.denominator.is_some()) {
        lines.push(line("countries in the data".into(), &world));
    }
    for peer in &spec.peers {
        lines.push(rate_line(store, &Subject::Country(peer.to_ascii_uppercase()), &filter, by, denominators)?);
    }
    h.push_str(&rate_chart(&nation, lines, &spec.marks));
    let _ = write!(
        h,
        "<p class=\"note\">Denominator for {}: {}.</p>",
        escape(&spec.country.to_ascii_uppercase()),
        whole_denominator
            .as_ref()
            .map_or_else(|| "none loaded".to_owned(), |d| format!("{} ({})", number(d.value), escape(&d.source)))
    );

    // Families.
    h.push_str("<h2>Malware families</h2>");
    let months = periods(spec.from, spec.to, By::Month);
    let shares = family_shares(store, nation_scope.clone(), &filter, &months, 6)?;
    h.push_str(
        &Stacked {
            title: "Malware families' shares of infected addresses, by month".into(),
            x_labels: months.iter().map(|p| p.label.clone()).collect(),
            series: shares,
        }
        .render(),
    );

    h.push_str("<h2>Sectors</h2>");
    table(&mut h, "sector", "per 1,000", &sectors);

    // Networks.
    h.push_str("<h2>Most affected networks</h2>");
    let asns = ranking(store, nation_scope.clone(), &filter, Ranking::Asn, orgs, denominators, 10)?;
    h.push_str(&asn_bars(&asns));
    table(&mut h, "network", "per 1,000 addresses", &asns);
    if !spec.public {
        let top_orgs = ranking(store, HostScope::All, &filter, Ranking::Org, orgs, denominators, 10)?;
        table(&mut h, "organization", "per 1,000", &top_orgs);
    }
    if let Some(mark) = spec.marks.iter().find(|m| m.day > spec.from && m.day <= spec.to) {
        let improved = most_improved(store, nation_scope, &filter, mark.day, 1.0, 5)?;
        if !improved.is_empty() {
            let _ = write!(
                h,
                "<h2>Most improved networks since {}</h2><table><tr><th>network</th><th>a day before</th><th>a day after</th><th>change</th></tr>",
                date(mark.day)
            );
            for c in &improved {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}%</td></tr>",
                    escape(&c.label),
                    number(c.before),
                    number(c.after),
                    number(c.relative() * 100.0)
                );
            }
            h.push_str("</table>");
        }
    }
    let _ = write!(
        h,
        "<h2>Method</h2><p class=\"note\">Events are those farol received from its feeds{}. An address counts once a \
         day however many events it caused; the distinct counts are exact. Where no population was loaded for a \
         country, network or sector, the announced IPv4 address space of the loaded IP data stands in for it, \
         labelled as a proxy. The world comparison covers the countries present in the data with a denominator, \
         not every country.</p></body></html>",
        if spec.public { " up to TLP:AMBER, in aggregate only" } else { "" }
    );
    Ok(h)
}
