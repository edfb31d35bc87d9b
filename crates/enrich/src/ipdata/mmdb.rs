//! MaxMind DB files (GeoLite2, DB-IP Lite, ip-location-db and anything written in the same
//! format): a reader that walks the whole search tree once and keeps, for every network, the
//! AS number, AS name and country it finds; and a small writer, for tests and for publishing a
//! constituency's own database.
//!
//! Layout: a binary search tree over address bits, 16 zero bytes, a data section of typed
//! values, then a marker and the metadata map.

use std::collections::HashMap;

use ipnet::IpNet;

use super::{Info, Loaded, Span};

const MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// Values nest (maps in maps); deeper than this is refused rather than followed.
const MAX_DEPTH: usize = 32;

/// A decoded data-section value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Uint(u128),
    Int(i32),
    Double(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

impl Value {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads data-section values; `base` is where pointers count from.
struct Decoder<'a> {
    bytes: &'a [u8],
    base: usize,
}

impl Decoder<'_> {
    fn take(&self, at: &mut usize, n: usize) -> Result<&[u8], String> {
        let slice = at.checked_add(n).and_then(|end| self.bytes.get(*at..end));
        let slice = slice.ok_or_else(|| format!("a value at byte {at} runs past the end of the file"))?;
        *at += n;
        Ok(slice)
    }

    fn uint(bytes: &[u8]) -> u128 {
        bytes.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b))
    }

    fn decode(&self, at: &mut usize, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("values nest too deeply".into());
        }
        let ctrl = self.take(at, 1)?[0];
        let mut kind = ctrl >> 5;
        if kind == 1 {
            let target = self.pointer(ctrl, at)?;
            let mut p = target;
            return self.decode(&mut p, depth + 1);
        }
        if kind == 0 {
            kind = 7u8.checked_add(self.take(at, 1)?[0]).ok_or("unknown extended type")?;
        }
        let size = match ctrl & 0x1f {
            s @ 0..29 => s as usize,
            29 => 29 + self.take(at, 1)?[0] as usize,
            30 => 285 + Self::uint(self.take(at, 2)?) as usize,
            _ => 65_821 + Self::uint(self.take(at, 3)?) as usize,
        };
        Ok(match kind {
            2 => Value::Str(
                std::str::from_utf8(self.take(at, size)?).map_err(|_| "a string is not UTF-8".to_owned())?.to_owned(),
            ),
            3 if size == 8 => Value::Double(f64::from_bits(Self::uint(self.take(at, 8)?) as u64)),
            4 => Value::Bytes(self.take(at, size)?.to_vec()),
            5 | 6 | 9 | 10 => {
                let max = match kind {
                    5 => 2,
                    6 => 4,
                    9 => 8,
                    _ => 16,
                };
                if size > max {
                    return Err(format!("an unsigned integer of {size} bytes where at most {max} fit"));
                }
                Value::Uint(Self::uint(self.take(at, size)?))
            }
            7 => {
                let mut pairs = Vec::with_capacity(size.min(64));
                for _ in 0..size {
                    let key = match self.decode(at, depth + 1)? {
                        Value::Str(s) => s,
                        _ => return Err("a map key is not a string".into()),
                    };
                    pairs.push((key, self.decode(at, depth + 1)?));
                }
                Value::Map(pairs)
            }
            8 if size <= 4 => Value::Int(Self::uint(self.take(at, size)?) as u32 as i32),
            11 => {
                let mut items = Vec::with_capacity(size.min(64));
                for _ in 0..size {
                    items.push(self.decode(at, depth + 1)?);
                }
                Value::Array(items)
            }
            14 if size <= 1 => Value::Bool(size == 1),
            15 if size == 4 => Value::Double(f64::from(f32::from_bits(Self::uint(self.take(at, 4)?) as u32))),
            _ => return Err(format!("unsupported value (type {kind}, size {size})")),
        })
    }

    fn pointer(&self, ctrl: u8, at: &mut usize) -> Result<usize, String> {
        let ss = (ctrl >> 3) & 0x3;
        let vvv = u128::from(ctrl & 0x7);
        let p = match ss {
            0 => (vvv << 8) | Self::uint(self.take(at, 1)?),
            1 => ((vvv << 16) | Self::uint(self.take(at, 2)?)) + 2048,
            2 => ((vvv << 24) | Self::uint(self.take(at, 3)?)) + 526_336,
            _ => Self::uint(self.take(at, 4)?),
        };
        usize::try_from(p).ok().and_then(|p| p.checked_add(self.base)).ok_or_else(|| "a pointer overflows".to_owned())
    }
}

/// Decodes the value at `at`, pointers counting from the start of `bytes`.
pub fn decode_at(bytes: &[u8], mut at: usize) -> Result<Value, String> {
    Decoder { bytes, base: 0 }.decode(&mut at, 0)
}

/// The metadata fields the reader needs.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub node_count: u32,
    pub record_size: u16,
    pub ip_version: u16,
    pub database_type: String,
    pub build_epoch: u64,
}

fn metadata(bytes: &[u8]) -> Result<(Metadata, usize), String> {
    let start = memchr_last(bytes, MARKER)
        .ok_or("not a MaxMind DB file: the metadata marker (\\xAB\\xCD\\xEFMaxMind.com) is missing")?
        + MARKER.len();
    let decoder = Decoder { bytes, base: start };
    let mut at = start;
    let map = decoder.decode(&mut at, 0).map_err(|e| format!("the metadata cannot be read: {e}"))?;
    let uint = |key: &str| match map.get(key) {
        Some(Value::Uint(n)) => Ok(*n),
        _ => Err(format!("the metadata has no {key}")),
    };
    let meta = Metadata {
        node_count: u32::try_from(uint("node_count")?).map_err(|_| "node_count is too large")?,
        record_size: u16::try_from(uint("record_size")?).map_err(|_| "record_size is too large")?,
        ip_version: u16::try_from(uint("ip_version")?).map_err(|_| "ip_version is not 4 or 6")?,
        database_type: map.get("database_type").and_then(Value::str).unwrap_or("").to_owned(),
        build_epoch: uint("build_epoch").ok().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
    };
    if !matches!(meta.record_size, 24 | 28 | 32) {
        return Err(format!("record size {} is not 24, 28 or 32", meta.record_size));
    }
    if !matches!(meta.ip_version, 4 | 6) {
        return Err(format!("ip_version {} is not 4 or 6", meta.ip_version));
    }
    Ok((meta, start - MARKER.len()))
}

fn memchr_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// The search tree's records.
struct Tree<'a> {
    bytes: &'a [u8],
    record_size: u16,
}

impl Tree<'_> {
    fn records(&self, node: u32) -> (u32, u32) {
        let size = usize::from(self.record_size) / 4;
        let at = node as usize * size;
        let b = &self.bytes[at..at + size];
        let be = |s: &[u8]| s.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x));
        match self.record_size {
            24 => (be(&b[0..3]), be(&b[3..6])),
            28 => ((u32::from(b[3] & 0xF0) << 20) | be(&b[0..3]), (u32::from(b[3] & 0x0F) << 24) | be(&b[4..7])),
            _ => (be(&b[0..4]), be(&b[4..8])),
        }
    }
}

/// What a data record says: AS number and name (GeoLite2-ASN and the same shape elsewhere),
/// country (`country.iso_code`, ip-location-db's `country_code`, then `registered_country`).
fn info(value: &Value) -> Info {
    let asn = match value.get("autonomous_system_number") {
        Some(Value::Uint(n)) => u32::try_from(*n).ok(),
        _ => None,
    };
    let as_name = value.get("autonomous_system_organization").and_then(Value::str).map(str::to_owned);
    let cc = value
        .get("country")
        .and_then(|c| c.get("iso_code"))
        .or_else(|| value.get("country_code"))
        .or_else(|| value.get("registered_country").and_then(|c| c.get("iso_code")))
        .and_then(Value::str)
        .and_then(super::country);
    Info { asn: asn.filter(|&a| a != 0), as_name: as_name.filter(|n| !n.is_empty()), cc }
}

/// Reads every network of the file. A file whose tree or metadata cannot be read is an error;
/// a network whose data cannot be decoded is a reject, and the walk goes on.
pub fn load(bytes: &[u8]) -> Result<Loaded, String> {
    let (meta, tree_end_limit) = metadata(bytes)?;
    let tree_size = (usize::from(meta.record_size) * 2 / 8)
        .checked_mul(meta.node_count as usize)
        .filter(|&s| s.checked_add(16).is_some_and(|e| e <= tree_end_limit))
        .ok_or("the search tree is larger than the file")?;
    let data_start = tree_size + 16;
    let tree = Tree { bytes, record_size: meta.record_size };
    let decoder = Decoder { bytes: &bytes[..tree_end_limit], base: data_start };
    let bits: u32 = if meta.ip_version == 6 { 128 } else { 32 };

    // In an IPv6 tree, IPv4 lives under ::/96; its aliases (::ffff:0:0/96, 2002::/16) point
    // to the same node and are skipped.
    let mut ipv4_node = None;
    if bits == 128 {
        let mut node = 0u32;
        for _ in 0..96 {
            if node >= meta.node_count {
                break;
            }
            node = tree.records(node).0;
        }
        ipv4_node = (node < meta.node_count).then_some(node);
    }

    let mut loaded = Loaded::default();
    let mut cache: HashMap<usize, Option<u32>> = HashMap::new();
    let mut stack: Vec<(u32, u32, u128)> = vec![(0, 0, 0)];
    let mut visits = 0u64;
    while let Some((node, depth, prefix)) = stack.pop() {
        visits += 1;
        if visits > 2 * u64::from(meta.node_count) + 2 {
            return Err("the search tree has cycles or shared branches: not a MaxMind DB tree".into());
        }
        if node >= meta.node_count || depth >= bits {
            return Err(format!("the search tree is deeper than {bits} bits"));
        }
        let (left, right) = tree.records(node);
        for (bit, record) in [(0u128, left), (1u128, right)] {
            let depth = depth + 1;
            let prefix = prefix | (bit << (bits - depth));
            if record < meta.node_count {
                if Some(record) == ipv4_node && !(depth == 96 && prefix == 0) {
                    continue;
                }
                stack.push((record, depth, prefix));
                continue;
            }
            if record == meta.node_count {
                continue;
            }
            let offset = (record - meta.node_count) as usize;
            let Some(offset) = offset.checked_sub(16).map(|o| o + data_start) else {
                loaded.reject(format!("network {} points into the separator", show(bits, prefix, depth)));
                continue;
            };
            let index = match cache.get(&offset) {
                Some(i) => *i,
                None => {
                    let mut at = offset;
                    let index = match decoder.decode(&mut at, 0) {
                        Ok(value) => Some(loaded.info(info(&value))),
                        Err(e) => {
                            loaded.reject(format!("network {}: {e}", show(bits, prefix, depth)));
                            None
                        }
                    };
                    cache.insert(offset, index);
                    index
                }
            };
            let Some(index) = index else { continue };
            let span = if bits == 128 && depth > 96 && prefix >> 32 == 0 {
                // Under ::/96: an IPv4 network.
                let host = if depth == 128 { 0 } else { u32::MAX >> (depth - 96) };
                let first = prefix as u32;
                Span::V4(first, first | host)
            } else if bits == 32 {
                let host = if depth == 32 { 0 } else { u32::MAX >> depth };
                Span::V4(prefix as u32, prefix as u32 | host)
            } else {
                let host = if depth == 128 { 0 } else { u128::MAX >> depth };
                Span::V6(prefix, prefix | host)
            };
            loaded.ranges.push((span, index));
        }
    }
    loaded.description = format!("{} (built {})", meta.database_type, meta.build_epoch);
    Ok(loaded)
}

fn show(bits: u32, prefix: u128, depth: u32) -> String {
    if bits == 32 {
        format!("{}/{depth}", std::net::Ipv4Addr::from(prefix as u32))
    } else {
        format!("{}/{depth}", std::net::Ipv6Addr::from(prefix))
    }
}

/// Writes a MaxMind DB: an IPv6 tree (IPv4 networks under `::/96`) with the given record size.
/// For tests, and for a center that publishes its constituency as a database.
#[derive(Debug)]
pub struct Writer {
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
    /// Where each distinct value was written, so that it is written once.
    written: HashMap<Vec<u8>, usize>,
    record_size: u16,
    database_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rec {
    Empty,
    Node(u32),
    Data(usize),
}

impl Writer {
    pub fn new(database_type: &str, record_size: u16) -> Writer {
        assert!(matches!(record_size, 24 | 28 | 32), "record size must be 24, 28 or 32");
        Writer {
            nodes: vec![[Rec::Empty; 2]],
            data: Vec::new(),
            written: HashMap::new(),
            record_size,
            database_type: database_type.to_owned(),
        }
    }

    /// Adds a network; add less specific networks before the more specific ones inside them.
    pub fn insert(&mut self, net: IpNet, value: &Value) {
        let mut encoded = Vec::new();
        encode(value, &mut encoded);
        let offset = match self.written.get(&encoded) {
            Some(&o) => o,
            None => {
                let o = self.data.len();
                self.data.extend_from_slice(&encoded);
                self.written.insert(encoded, o);
                o
            }
        };
        let (bits, len) = match net {
            IpNet::V4(n) => (u128::from(u32::from(n.network())), u32::from(n.prefix_len()) + 96),
            IpNet::V6(n) => (u128::from(n.network()), u32::from(n.prefix_len())),
        };
        let mut node = 0usize;
        for depth in 0..len {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == len {
                self.nodes[node][bit] = Rec::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Rec::Node(n) => n as usize,
                other => {
                    // A less specific network already here: both halves inherit it.
                    let n = self.nodes.len();
                    let inherited = if let Rec::Data(_) = other { other } else { Rec::Empty };
                    self.nodes.push([inherited; 2]);
                    self.nodes[node][bit] = Rec::Node(n as u32);
                    n
                }
            };
        }
    }

    pub fn finish(self) -> Vec<u8> {
        let count = self.nodes.len() as u32;
        let value = |r: Rec| match r {
            Rec::Empty => count,
            Rec::Node(n) => n,
            Rec::Data(o) => count + 16 + o as u32,
        };
        let mut out = Vec::new();
        for [l, r] in &self.nodes {
            let (l, r) = (value(*l), value(*r));
            match self.record_size {
                24 => {
                    out.extend_from_slice(&l.to_be_bytes()[1..]);
                    out.extend_from_slice(&r.to_be_bytes()[1..]);
                }
                28 => {
                    out.extend_from_slice(&l.to_be_bytes()[1..]);
                    out.push((((l >> 24) & 0x0F) << 4) as u8 | ((r >> 24) & 0x0F) as u8);
                    out.extend_from_slice(&r.to_be_bytes()[1..]);
                }
                _ => {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(MARKER);
        let meta = Value::Map(vec![
            ("node_count".into(), Value::Uint(u128::from(count))),
            ("record_size".into(), Value::Uint(u128::from(self.record_size))),
            ("ip_version".into(), Value::Uint(6)),
            ("database_type".into(), Value::Str(self.database_type)),
            ("binary_format_major_version".into(), Value::Uint(2)),
            ("binary_format_minor_version".into(), Value::Uint(0)),
            ("build_epoch".into(), Value::Uint(0)),
            ("languages".into(), Value::Array(vec![Value::Str("en".into())])),
        ]);
        encode(&meta, &mut out);
        out
    }
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    let (first, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if kind > 7 {
        out.push(first);
        out.push(kind - 7);
    } else {
        out.push((kind << 5) | first);
    }
    out.extend_from_slice(&extra);
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    let minimal = |n: u128| {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        bytes[skip..].to_vec()
    };
    match value {
        Value::Str(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Double(f) => {
            control(3, 8, out);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Bytes(b) => {
            control(4, b.len(), out);
            out.extend_from_slice(b);
        }
        Value::Uint(n) => {
            let bytes = minimal(*n);
            let kind = match bytes.len() {
                0..=2 => 5,
                3..=4 => 6,
                5..=8 => 9,
                _ => 10,
            };
            control(kind, bytes.len(), out);
            out.extend_from_slice(&bytes);
        }
        Value::Int(i) => {
            let bytes = minimal(u128::from(*i as u32));
            control(8, bytes.len(), out);
            out.extend_from_slice(&bytes);
        }
        Value::Map(pairs) => {
            control(7, pairs.len(), out);
            for (k, v) in pairs {
                encode(&Value::Str(k.clone()), out);
                encode(v, out);
            }
        }
        Value::Array(items) => {
            control(11, items.len(), out);
            for v in items {
                encode(v, out);
            }
        }
        Value::Bool(b) => control(14, usize::from(*b), out),
    }
}

/// A GeoLite2-ASN-shaped record.
pub fn asn_value(asn: u32, name: &str) -> Value {
    Value::Map(vec![
        ("autonomous_system_number".into(), Value::Uint(u128::from(asn))),
        ("autonomous_system_organization".into(), Value::Str(name.into())),
    ])
}

/// A GeoLite2-Country-shaped record.
pub fn country_value(cc: &str) -> Value {
    Value::Map(vec![("country".into(), Value::Map(vec![("iso_code".into(), Value::Str(cc.into()))]))])
}

/// Whether the bytes look like a MaxMind DB (the metadata marker near the end).
pub(crate) fn detect(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
    memchr_last(tail, MARKER).is_some()
}
