//! The line-based formats: iptoasn's TSV, RIR delegated statistics, ip-location-db's CSV.

use std::net::IpAddr;

use super::{Info, Loaded, Span, country};

/// Each line with its number, without its terminator; a line that is not UTF-8 is rejected.
fn lines<'a>(bytes: &'a [u8], loaded: &mut Loaded, mut each: impl FnMut(&mut Loaded, u64, &'a str)) {
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = n as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(line) => each(loaded, number, line),
            Err(e) => loaded.reject_at(Some(number), format!("not UTF-8 at byte {}", e.valid_up_to())),
        }
    }
}

/// An address as these files write it: dotted, IPv6, or a decimal integer.
fn address(s: &str) -> Option<Addr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(match ip {
            IpAddr::V4(v4) => Addr::V4(u32::from(v4)),
            IpAddr::V6(v6) => Addr::V6(u128::from(v6)),
        });
    }
    s.parse::<u128>().ok().map(Addr::Int)
}

#[derive(Clone, Copy)]
enum Addr {
    V4(u32),
    V6(u128),
    /// A bare integer: IPv4 when both ends fit in 32 bits (the `-num` files).
    Int(u128),
}

fn span(first: &str, last: &str) -> Result<Span, String> {
    let bad = |s: &str| format!("{s:?} is not an IP address");
    let (a, b) = (address(first).ok_or_else(|| bad(first))?, address(last).ok_or_else(|| bad(last))?);
    let span = match (a, b) {
        (Addr::V4(a), Addr::V4(b)) => Span::V4(a, b),
        (Addr::V6(a), Addr::V6(b)) => Span::V6(a, b),
        (Addr::Int(a), Addr::Int(b)) => match (u32::try_from(a), u32::try_from(b)) {
            (Ok(a), Ok(b)) => Span::V4(a, b),
            _ => Span::V6(a, b),
        },
        _ => return Err(format!("{first} and {last} are not of the same address family")),
    };
    match span {
        Span::V4(a, b) if a > b => Err(format!("the range ends ({last}) before it starts ({first})")),
        Span::V6(a, b) if a > b => Err(format!("the range ends ({last}) before it starts ({first})")),
        s => Ok(s),
    }
}

fn asn(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let t = t.strip_prefix("AS").or_else(|| t.strip_prefix("as")).unwrap_or(t);
    t.parse().map_err(|_| format!("{s:?} is not an AS number"))
}

/// `range_start  range_end  AS_number  country_code  AS_description`; AS 0 marks unrouted
/// space and is skipped.
pub(super) fn ip2asn(bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    lines(bytes, &mut loaded, |loaded, n, line| {
        let cols: Vec<&str> = line.split('\t').collect();
        let result = (|| {
            let [first, last, number, cc, rest @ ..] = cols.as_slice() else {
                return Err(format!("expected 5 tab-separated columns, found {}", cols.len()));
            };
            let span = span(first, last)?;
            let number = asn(number)?;
            if number == 0 {
                return Ok(None);
            }
            let name = rest.first().map(|s| s.trim()).filter(|s| !s.is_empty() && *s != "Not routed");
            Ok(Some((span, Info { asn: Some(number), as_name: name.map(str::to_owned), cc: country(cc) })))
        })();
        match result {
            Ok(Some((span, info))) => loaded.push(span, info),
            Ok(None) => {}
            Err(reason) => loaded.reject_at(Some(n), reason),
        }
    });
    loaded
}

/// `registry|cc|type|start|value|date|status[|opaque-id...]`: the country of each allocated or
/// assigned block. IPv4 `value` is a number of addresses, IPv6 `value` a prefix length.
pub(super) fn delegated(bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut header_seen = false;
    lines(bytes, &mut loaded, |loaded, n, line| {
        if line.starts_with('#') {
            return;
        }
        let cols: Vec<&str> = line.split('|').collect();
        if !header_seen && cols.first().is_some_and(|c| c.chars().all(|ch| ch.is_ascii_digit() || ch == '.')) {
            header_seen = true;
            return;
        }
        if cols.get(5).is_some_and(|c| c.trim() == "summary") {
            return;
        }
        let result = (|| {
            let [_registry, cc, kind, start, value, _date, status, ..] = cols.as_slice() else {
                return Err(format!("expected at least 7 |-separated fields, found {}", cols.len()));
            };
            if !matches!(status.trim(), "allocated" | "assigned") || !matches!(*kind, "ipv4" | "ipv6") {
                return Ok(None);
            }
            let Some(cc) = country(cc) else { return Ok(None) };
            let value: u128 = value.trim().parse().map_err(|_| format!("{value:?} is not a count or prefix length"))?;
            let span = match (*kind, start.trim().parse::<IpAddr>()) {
                (_, Err(_)) => return Err(format!("{start:?} is not an IP address")),
                ("ipv4", Ok(IpAddr::V4(a))) => {
                    let a = u32::from(a);
                    let last = value
                        .checked_sub(1)
                        .and_then(|v| u32::try_from(v).ok())
                        .and_then(|v| a.checked_add(v))
                        .ok_or_else(|| format!("{value} addresses from {start} do not fit in IPv4"))?;
                    Span::V4(a, last)
                }
                ("ipv6", Ok(IpAddr::V6(a))) if value <= 128 => {
                    let host = if value == 0 { u128::MAX } else { u128::MAX >> value };
                    let first = u128::from(a) & !host;
                    Span::V6(first, first | host)
                }
                _ => return Err(format!("{start} {value} is not a valid {kind} block")),
            };
            Ok(Some((span, Info { cc: Some(cc), ..Info::default() })))
        })();
        match result {
            Ok(Some((span, info))) => loaded.push(span, info),
            Ok(None) => {}
            Err(reason) => loaded.reject_at(Some(n), reason),
        }
    });
    loaded
}

/// ip-location-db's CSV: `first,last,asn,as_name` or `first,last,cc`, no header.
pub(super) fn csv(bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    lines(bytes, &mut loaded, |loaded, n, line| {
        let result = (|| {
            let cols = split_csv(line)?;
            let info = match cols.as_slice() {
                [_, _, cc] => Info {
                    cc: Some(country(cc).ok_or_else(|| format!("{cc:?} is not a country code"))?),
                    ..Info::default()
                },
                [_, _, number, name, ..] => {
                    let name = name.trim();
                    Info {
                        asn: Some(asn(number)?).filter(|&a| a != 0),
                        as_name: (!name.is_empty()).then(|| name.to_owned()),
                        cc: None,
                    }
                }
                _ => {
                    return Err(format!(
                        "expected first,last,asn,as_name or first,last,cc; found {} columns",
                        cols.len()
                    ));
                }
            };
            Ok((span(&cols[0], &cols[1])?, info))
        })();
        match result {
            Ok((_, Info { asn: None, cc: None, .. })) => {}
            Ok((span, info)) => loaded.push(span, info),
            Err(reason) => loaded.reject_at(Some(n), reason),
        }
    });
    loaded
}

/// One CSV line: commas, double quotes around a field that holds one, `""` for a quote.
pub fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut cols = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if field.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => cols.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    cols.push(field);
    Ok(cols)
}
