//! Indicators in the forms defenders load: plain lists of addresses, domains or URLs, CSV,
//! Suricata and Snort rules, a DNS response policy zone (RPZ), a STIX bundle. The caller passes
//! only what the access policy lets the reader have, and usually only what is valid now.

use std::fmt::Write as _;
use std::net::IpAddr;

use farol_model::Timestamp;
use farol_model::export::csv_cell;
use farol_model::indicator::{Indicator, IndicatorKind};
use ipnet::IpNet;

use crate::stix::{Producer, time};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Addresses and networks, one a line.
    Ip,
    /// Domains, one a line.
    Domain,
    /// URLs, one a line.
    Url,
    Csv,
    Suricata,
    Snort,
    /// A response policy zone for BIND, Unbound, PowerDNS or Knot.
    Rpz,
    /// A STIX 2.1 bundle.
    Stix,
}

impl Format {
    pub const ALL: [(&'static str, Format, &'static str); 8] = [
        ("ip", Format::Ip, "text/plain; charset=utf-8"),
        ("domain", Format::Domain, "text/plain; charset=utf-8"),
        ("url", Format::Url, "text/plain; charset=utf-8"),
        ("csv", Format::Csv, "text/csv; charset=utf-8"),
        ("suricata", Format::Suricata, "text/plain; charset=utf-8"),
        ("snort", Format::Snort, "text/plain; charset=utf-8"),
        ("rpz", Format::Rpz, "text/dns; charset=utf-8"),
        ("stix", Format::Stix, "application/stix+json;version=2.1"),
    ];

    pub fn name(self) -> &'static str {
        Format::ALL.iter().find(|(_, f, _)| *f == self).map_or("", |(n, _, _)| n)
    }

    pub fn media_type(self) -> &'static str {
        Format::ALL.iter().find(|(_, f, _)| *f == self).map_or("", |(_, _, m)| m)
    }

    /// The kinds of indicator the format can carry.
    pub fn kinds(self) -> &'static [IndicatorKind] {
        use IndicatorKind as K;
        match self {
            Format::Ip | Format::Suricata | Format::Snort => match self {
                Format::Ip => &[K::Ip, K::Cidr],
                _ => &[K::Ip, K::Cidr, K::Domain, K::Url],
            },
            Format::Domain => &[K::Domain],
            Format::Url => &[K::Url],
            Format::Rpz => &[K::Ip, K::Cidr, K::Domain],
            Format::Csv | Format::Stix => &[],
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(s)).map(|(_, f, _)| *f).ok_or_else(|| {
            format!(
                "unknown export format {s:?}; one of: {}",
                Format::ALL.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// What a rule set numbers its rules from: each indicator's rule is `base + its id`.
pub const SID_BASE: u64 = 5_000_000;

/// Writes indicators in a format (those of kinds it cannot carry are left out).
pub fn write(format: Format, indicators: &[Indicator], producer: &Producer, now: Timestamp) -> String {
    let kinds = format.kinds();
    let carried = || indicators.iter().filter(|i| kinds.is_empty() || kinds.contains(&i.kind));
    let mut out = String::new();
    let header = |out: &mut String, comment: &str| {
        let tlp = indicators.iter().map(|i| i.tlp).max().map_or_else(|| "TLP:CLEAR".to_owned(), |t| t.label());
        let _ = writeln!(out, "{comment} {} indicators from {}, {}", tlp, producer.name, time(now));
        let _ = writeln!(out, "{comment} {} entries", carried().count());
    };
    match format {
        Format::Ip | Format::Domain | Format::Url => {
            header(&mut out, "#");
            for i in carried() {
                out.push_str(&i.value);
                out.push('\n');
            }
        }
        Format::Csv => {
            out.push_str(
                "kind,value,category,family,tlp,confidence,valid_from,valid_until,first_seen,last_seen,sightings,origin\n",
            );
            for i in carried() {
                let cells = [
                    i.kind.as_str().to_owned(),
                    i.value.clone(),
                    i.category.as_str().to_owned(),
                    i.family.clone().unwrap_or_default(),
                    i.tlp.label(),
                    i.confidence.to_string(),
                    i.valid_from.to_rfc3339(),
                    i.valid_until.map(Timestamp::to_rfc3339).unwrap_or_default(),
                    i.first_seen.to_rfc3339(),
                    i.last_seen.to_rfc3339(),
                    i.sightings.to_string(),
                    i.origin.to_string(),
                ];
                out.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
        }
        Format::Suricata | Format::Snort => {
            header(&mut out, "#");
            for i in carried() {
                if let Some(rule) = rule(format == Format::Suricata, i) {
                    out.push_str(&rule);
                    out.push('\n');
                }
            }
        }
        Format::Rpz => rpz(&mut out, carried(), producer, now),
        Format::Stix => {
            let all: Vec<Indicator> = carried().cloned().collect();
            out = serde_json::to_string_pretty(&producer.bundle(&all)).unwrap_or_default();
            out.push('\n');
        }
    }
    out
}

/// Text safe inside a rule's quoted option: no quotes, semicolons or backslashes, printable.
fn rule_text(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_graphic() && !"\";\\|".contains(c) || c == ' ' { c } else { '_' }).collect()
}

/// One IDS rule for an indicator (Suricata's keywords or Snort's).
fn rule(suricata: bool, i: &Indicator) -> Option<String> {
    let msg = rule_text(&format!(
        "farol {} {}{} {}",
        i.tlp.label(),
        i.category,
        i.family.as_deref().map(|f| format!(" {f}")).unwrap_or_default(),
        i.value
    ));
    let sid = SID_BASE + u64::try_from(i.id).ok()?;
    let tail = format!("msg:\"{msg}\"; classtype:trojan-activity; sid:{sid}; rev:1;");
    match i.kind {
        IndicatorKind::Ip | IndicatorKind::Cidr => Some(format!("alert ip $HOME_NET any <> {} any ({tail})", i.value)),
        IndicatorKind::Domain if suricata => Some(format!(
            "alert dns $HOME_NET any -> any any (dns.query; dotprefix; content:\".{}\"; nocase; endswith; {tail})",
            i.value
        )),
        IndicatorKind::Domain => {
            // The name as it travels in a DNS query: each label after its length.
            let wire: String = i.value.split('.').map(|l| format!("|{:02x}|{l}", l.len())).collect();
            Some(format!("alert udp $HOME_NET any -> any 53 (content:\"{wire}|00|\"; nocase; {tail})"))
        }
        IndicatorKind::Url => {
            let rest = i.value.split_once("://")?.1;
            let (host, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
            // Suricata's http.host and the Host header carry no credentials; Suricata's no port.
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let host = match host.rsplit_once(':') {
                Some((h, port)) if suricata && !h.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            };
            let (host, path) = (rule_text(host), rule_text(path));
            Some(if suricata {
                format!(
                    "alert http $HOME_NET any -> any any (http.host; content:\"{host}\"; nocase; http.uri; content:\"{path}\"; startswith; {tail})"
                )
            } else {
                format!(
                    "alert tcp $HOME_NET any -> any $HTTP_PORTS (flow:to_server,established; content:\"{host}\"; http_header; nocase; content:\"{path}\"; http_uri; {tail})"
                )
            })
        }
        _ => None,
    }
}

/// A response policy zone: names answered NXDOMAIN (with their subdomains), and answers that
/// hold a listed address (`rpz-ip` triggers) refused the same way.
fn rpz<'a>(out: &mut String, indicators: impl Iterator<Item = &'a Indicator>, producer: &Producer, now: Timestamp) {
    let _ = writeln!(out, "; {} response policy zone, {}", producer.name, time(now));
    let _ = writeln!(out, "$TTL 300");
    let serial = now.secs().clamp(1, i64::from(u32::MAX));
    let _ = writeln!(out, "@ IN SOA localhost. hostmaster.localhost. ({serial} 3600 600 86400 300)");
    let _ = writeln!(out, "@ IN NS localhost.");
    for i in indicators {
        let _ = writeln!(out, "; {} {}", rule_text(&i.tlp.label()), rule_text(&format!("{} {}", i.category, i.origin)));
        match i.kind {
            IndicatorKind::Domain => {
                let _ = writeln!(out, "{} CNAME .", i.value);
                let _ = writeln!(out, "*.{} CNAME .", i.value);
            }
            IndicatorKind::Ip | IndicatorKind::Cidr => {
                let Some(net) =
                    i.value.parse::<IpNet>().ok().or_else(|| i.value.parse::<IpAddr>().ok().map(IpNet::from))
                else {
                    continue;
                };
                let _ = writeln!(out, "{}.rpz-ip CNAME .", rpz_ip(net));
            }
            _ => {}
        }
    }
}

/// An address trigger's owner name: the prefix length, then the address backwards (IPv4 by
/// octet; IPv6 by 16-bit group, the longest run of zero groups written `zz`).
fn rpz_ip(net: IpNet) -> String {
    match net {
        IpNet::V4(n) => {
            let o = n.network().octets();
            format!("{}.{}.{}.{}.{}", n.prefix_len(), o[3], o[2], o[1], o[0])
        }
        IpNet::V6(n) => {
            let g = n.network().segments();
            // The longest run of zero groups (two or more), written once as `zz`.
            let (mut best, mut run) = ((0, 0), (0, 0));
            for (k, &x) in g.iter().enumerate() {
                run = if x == 0 { (if run.1 == 0 { k } else { run.0 }, run.1 + 1) } else { (0, 0) };
                if run.1 > best.1 {
                    best = run;
                }
            }
            let mut parts: Vec<String> = Vec::new();
            let mut k = 0;
            while k < 8 {
                if best.1 >= 2 && k == best.0 {
                    parts.push("zz".into());
                    k += best.1;
                } else {
                    parts.push(format!("{:x}", g[k]));
                    k += 1;
                }
            }
            parts.reverse();
            format!("{}.{}", n.prefix_len(), parts.join("."))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tests::indicator;

    #[test]
    fn rpz_address_triggers_are_written_backwards() {
        assert_eq!(rpz_ip("192.0.2.1/32".parse().unwrap()), "32.1.2.0.192");
        assert_eq!(rpz_ip("198.51.100.0/24".parse().unwrap()), "24.0.100.51.198");
        assert_eq!(rpz_ip("2001:db8::1/128".parse().unwrap()), "128.1.zz.db8.2001");
        assert_eq!(rpz_ip("2001:db8:0:1::/64".parse().unwrap()), "64.zz.1.0.db8.2001");
    }

    #[test]
    fn each_format_carries_its_kinds() {
        let p = Producer { name: "CERT.PT".into() };
        let mut url = indicator(IndicatorKind::Url, "http://bad.example/login.php?a=1");
        url.id = 7;
        let all = [indicator(IndicatorKind::Ip, "192.0.2.1"), indicator(IndicatorKind::Domain, "evil.example"), url];
        let now = Timestamp::from_ymd_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let ips = write(Format::Ip, &all, &p, now);
        assert_eq!(ips.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(), ["192.0.2.1"]);
        assert!(ips.starts_with("# TLP:AMBER indicators from CERT.PT"), "{ips}");
        let suricata = write(Format::Suricata, &all, &p, now);
        assert!(suricata.contains("alert ip $HOME_NET any <> 192.0.2.1 any"), "{suricata}");
        assert!(suricata.contains("dns.query; dotprefix; content:\".evil.example\"; nocase; endswith;"), "{suricata}");
        assert!(
            suricata.contains(
                "http.host; content:\"bad.example\"; nocase; http.uri; content:\"/login.php?a=1\"; startswith; msg:"
            ),
            "{suricata}"
        );
        assert!(suricata.contains("sid:5000007;"), "{suricata}");
        let snort = write(Format::Snort, &all, &p, now);
        assert!(snort.contains("content:\"|04|evil|07|example|00|\""), "{snort}");
        let rpz = write(Format::Rpz, &all, &p, now);
        assert!(rpz.contains("\nevil.example CNAME .\n*.evil.example CNAME .\n"), "{rpz}");
        assert!(rpz.contains("\n32.1.2.0.192.rpz-ip CNAME .\n"), "{rpz}");
        assert!(!rpz.contains("bad.example"), "{rpz}");
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        let p = Producer { name: "CERT.PT".into() };
        let mut i = indicator(IndicatorKind::Url, "http://x.example/");
        i.family = Some("=cmd|' /C calc'!A0".into());
        let csv = write(Format::Csv, &[i], &p, Timestamp::now());
        assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "{csv}");
    }
}
