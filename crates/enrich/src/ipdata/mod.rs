//! IP data: who announces an address and in which country it is registered, from the files
//! centers already use. Loaders turn a file's bytes into ranges with their [`Info`], keeping
//! every good line and reporting each bad one; [`Dataset`] makes them searchable; [`IpData`]
//! answers from all loaded datasets at once, the highest priority first.

pub mod mmdb;
mod text;

pub use text::split_csv;

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::range::{Addr, RangeMap, block_within};

/// What a dataset says about a range of addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Info {
    pub asn: Option<u32>,
    pub as_name: Option<String>,
    /// ISO 3166 alpha-2, upper case.
    pub cc: Option<[u8; 2]>,
}

/// A range of addresses, first and last inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    V4(u32, u32),
    V6(u128, u128),
}

/// A line or network of a data file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReject {
    /// The line, for text formats.
    pub line: Option<u64>,
    pub reason: String,
}

/// At most this many rejects are kept with their reasons; the rest are only counted.
const MAX_REJECTS: usize = 1000;

/// A data file as read: its ranges, each pointing into the distinct infos.
#[derive(Debug, Default)]
pub struct Loaded {
    pub ranges: Vec<(Span, u32)>,
    pub infos: Vec<Info>,
    seen: HashMap<Info, u32>,
    pub rejects: Vec<LoadReject>,
    pub rejected: u64,
    /// What the file says about itself (an MMDB's type and build time).
    pub description: String,
}

impl Loaded {
    fn info(&mut self, info: Info) -> u32 {
        if let Some(&i) = self.seen.get(&info) {
            return i;
        }
        let i = self.infos.len() as u32;
        self.infos.push(info.clone());
        self.seen.insert(info, i);
        i
    }

    pub fn push(&mut self, span: Span, info: Info) {
        let i = self.info(info);
        self.ranges.push((span, i));
    }

    fn reject(&mut self, reason: String) {
        self.reject_at(None, reason);
    }

    fn reject_at(&mut self, line: Option<u64>, reason: String) {
        self.rejected += 1;
        if self.rejects.len() < MAX_REJECTS {
            self.rejects.push(LoadReject { line, reason });
        }
    }

    /// Which attributes the data provides: AS numbers, countries.
    pub fn provides(&self) -> (bool, bool) {
        (self.infos.iter().any(|i| i.asn.is_some()), self.infos.iter().any(|i| i.cc.is_some()))
    }
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// MaxMind DB: GeoLite2 Country and ASN, DB-IP Lite, ip-location-db.
    Mmdb,
    /// iptoasn.com's `ip2asn-v4.tsv`, `ip2asn-v6.tsv`, `ip2asn-combined.tsv`, `ip2asn-v4-u32.tsv`.
    Ip2asn,
    /// RIR statistics exchange format (`delegated-ripencc-extended-latest` and the others).
    Delegated,
    /// ip-location-db's CSV: `first,last,asn,as_name` or `first,last,cc`, no header.
    Csv,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Mmdb, Format::Ip2asn, Format::Delegated, Format::Csv];

    pub fn name(self) -> &'static str {
        match self {
            Format::Mmdb => "mmdb",
            Format::Ip2asn => "ip2asn",
            Format::Delegated => "delegated",
            Format::Csv => "csv",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Which data wins when several answer: a MaxMind DB is the most precise; RIR delegations
    /// say where a block was registered, not where it is used.
    pub fn default_priority(self) -> i32 {
        match self {
            Format::Mmdb => 30,
            Format::Ip2asn | Format::Csv => 20,
            Format::Delegated => 10,
        }
    }

    /// Recognizes a file by its content (after decompression).
    pub fn detect(bytes: &[u8]) -> Option<Format> {
        if mmdb::detect(bytes) {
            return Some(Format::Mmdb);
        }
        let line = bytes
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .find(|l| !l.is_empty() && !l.starts_with(b"#"))?;
        let line = std::str::from_utf8(line).ok()?;
        if line.split('|').count() >= 6 {
            Some(Format::Delegated)
        } else if line.split('\t').count() >= 4 {
            Some(Format::Ip2asn)
        } else if line.contains(',') {
            Some(Format::Csv)
        } else {
            None
        }
    }

    pub fn load(self, bytes: &[u8]) -> Result<Loaded, String> {
        match self {
            Format::Mmdb => mmdb::load(bytes),
            Format::Ip2asn => Ok(text::ip2asn(bytes)),
            Format::Delegated => Ok(text::delegated(bytes)),
            Format::Csv => Ok(text::csv(bytes)),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A two-letter country code, upper-cased; `None` for anything else (`ZZ`, `None`, `-`).
pub(crate) fn country(s: &str) -> Option<[u8; 2]> {
    let b = s.trim().as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) && !b.eq_ignore_ascii_case(b"ZZ"))
        .then(|| [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
}

/// A loaded dataset, searchable.
#[derive(Debug)]
pub struct Dataset {
    pub meta: DatasetMeta,
    v4: RangeMap<u32, u32>,
    v6: RangeMap<u128, u32>,
    infos: Vec<Info>,
}

/// Which data, which version: what an enriched event records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetMeta {
    pub id: i64,
    pub name: String,
    pub version: u32,
    pub format: Format,
    pub priority: i32,
}

impl DatasetMeta {
    /// How events name it: `name#version`.
    pub fn label(&self) -> String {
        format!("{}#{}", self.name, self.version)
    }
}

/// One dataset's answer for an address.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub info: &'a Info,
    /// The range's largest CIDR block that holds the address (the prefix itself, when the
    /// data is in prefixes).
    pub network: IpNet,
}

impl Dataset {
    pub fn build(meta: DatasetMeta, loaded: Loaded) -> Dataset {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (span, info) in loaded.ranges {
            match span {
                Span::V4(a, b) => v4.push((a, b, info)),
                Span::V6(a, b) => v6.push((a, b, info)),
            }
        }
        Dataset { meta, v4: RangeMap::build(v4), v6: RangeMap::build(v6), infos: loaded.infos }
    }

    #[inline]
    pub fn get(&self, addr: Addr) -> Option<Hit<'_>> {
        let network = match addr {
            Addr::V4(k) => {
                let found = self.v4.get(k)?;
                let len = found.prefix.unwrap_or_else(|| {
                    let (first, last) = self.v4.range_of(&found);
                    block_within(k, first, last)
                });
                (found.value, IpNet::V4(Ipv4Net::new(k.into(), len).map(|n| n.trunc()).unwrap_or_default()))
            }
            Addr::V6(k) => {
                let found = self.v6.get(k)?;
                let len = found.prefix.unwrap_or_else(|| {
                    let (first, last) = self.v6.range_of(&found);
                    block_within(k, first, last)
                });
                (found.value, IpNet::V6(Ipv6Net::new(k.into(), len).map(|n| n.trunc()).unwrap_or_default()))
            }
        };
        Some(Hit { info: &self.infos[network.0 as usize], network: network.1 })
    }

    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.infos.iter().map(|i| size_of::<Info>() + i.as_name.as_ref().map_or(0, String::len)).sum::<usize>()
    }
}

/// IPv4 addresses per country and per AS, each from the highest-priority dataset that gives
/// countries (or AS numbers): the announced address space, which statistics use in place of a
/// population where none was loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSpace {
    pub countries: HashMap<[u8; 2], u64>,
    pub asns: HashMap<u32, u64>,
}

/// Every active dataset, asked in priority order.
#[derive(Debug, Default)]
pub struct IpData {
    datasets: Vec<Dataset>,
}

/// What the data says about one address, and which dataset said each part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer<'a> {
    pub asn: Option<(u32, &'a DatasetMeta)>,
    pub as_name: Option<(&'a str, &'a DatasetMeta)>,
    pub network: Option<(IpNet, &'a DatasetMeta)>,
    pub cc: Option<([u8; 2], &'a DatasetMeta)>,
}

impl IpData {
    pub fn new(mut datasets: Vec<Dataset>) -> IpData {
        // The highest priority first; among equals, the most recently loaded.
        datasets.sort_by_key(|d| (std::cmp::Reverse(d.meta.priority), std::cmp::Reverse(d.meta.id)));
        IpData { datasets }
    }

    pub fn datasets(&self) -> impl Iterator<Item = &Dataset> {
        self.datasets.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    pub fn address_space(&self) -> AddressSpace {
        let mut space = AddressSpace::default();
        let first = |has: fn(&Info) -> bool| self.datasets.iter().find(|d| d.infos.iter().any(has));
        if let Some(d) = first(|i| i.cc.is_some()) {
            for (info, n) in d.v4.sizes() {
                if let Some(cc) = d.infos[info as usize].cc {
                    *space.countries.entry(cc).or_default() += n as u64;
                }
            }
        }
        if let Some(d) = first(|i| i.asn.is_some()) {
            for (info, n) in d.v4.sizes() {
                if let Some(asn) = d.infos[info as usize].asn {
                    *space.asns.entry(asn).or_default() += n as u64;
                }
            }
        }
        space
    }

    /// Each attribute from the first dataset that has it. The network is the one of the data
    /// that gave the AS number (the announced prefix), else of the data that gave the country.
    pub fn lookup(&self, ip: IpAddr) -> Answer<'_> {
        let addr = Addr::from(ip);
        let mut answer = Answer::default();
        let mut cc_network = None;
        for d in &self.datasets {
            let Some(hit) = d.get(addr) else { continue };
            if answer.asn.is_none()
                && let Some(asn) = hit.info.asn
            {
                answer.asn = Some((asn, &d.meta));
                answer.network = Some((hit.network, &d.meta));
                answer.as_name = hit.info.as_name.as_deref().map(|n| (n, &d.meta));
            }
            if answer.cc.is_none()
                && let Some(cc) = hit.info.cc
            {
                answer.cc = Some((cc, &d.meta));
                cc_network = Some((hit.network, &d.meta));
            }
            if answer.asn.is_some() && answer.cc.is_some() {
                break;
            }
        }
        if answer.network.is_none() {
            answer.network = cc_network;
        }
        answer
    }
}

/// The stored form of a loaded file: compact, versioned, checked when read back.
pub mod stored {
    use super::{Info, Loaded, Span};

    const MAGIC: &[u8] = b"FAROLIP1";

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn encode(loaded: &Loaded) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_varint(&mut out, loaded.infos.len() as u64);
        for info in &loaded.infos {
            let flags =
                u8::from(info.asn.is_some()) | u8::from(info.as_name.is_some()) << 1 | u8::from(info.cc.is_some()) << 2;
            out.push(flags);
            if let Some(asn) = info.asn {
                put_varint(&mut out, u64::from(asn));
            }
            if let Some(name) = &info.as_name {
                put_varint(&mut out, name.len() as u64);
                out.extend_from_slice(name.as_bytes());
            }
            if let Some(cc) = info.cc {
                out.extend_from_slice(&cc);
            }
        }
        let v4: Vec<_> = loaded
            .ranges
            .iter()
            .filter_map(|(s, i)| if let Span::V4(a, b) = s { Some((*a, *b, *i)) } else { None })
            .collect();
        let v6: Vec<_> = loaded
            .ranges
            .iter()
            .filter_map(|(s, i)| if let Span::V6(a, b) = s { Some((*a, *b, *i)) } else { None })
            .collect();
        put_varint(&mut out, v4.len() as u64);
        for (a, b, i) in v4 {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
            put_varint(&mut out, u64::from(i));
        }
        put_varint(&mut out, v6.len() as u64);
        for (a, b, i) in v6 {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
            put_varint(&mut out, u64::from(i));
        }
        out
    }

    struct Input<'a>(&'a [u8]);

    impl<'a> Input<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            (self.0.len() >= n).then(|| {
                let (head, rest) = self.0.split_at(n);
                self.0 = rest;
                head
            })
        }
        fn varint(&mut self) -> Option<u64> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = self.take(1)?[0];
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return Some(v);
                }
            }
            None
        }
        fn count(&mut self, each: usize) -> Option<usize> {
            // A count larger than what is left is corruption, not an allocation to attempt.
            usize::try_from(self.varint()?).ok().filter(|&n| n.saturating_mul(each) <= self.0.len())
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Loaded> {
        let mut input = Input(bytes.strip_prefix(MAGIC)?);
        let mut loaded = Loaded::default();
        for _ in 0..input.count(1)? {
            let flags = input.take(1)?[0];
            let asn = if flags & 1 != 0 { Some(u32::try_from(input.varint()?).ok()?) } else { None };
            let as_name = if flags & 2 != 0 {
                let n = input.count(1)?;
                Some(String::from_utf8(input.take(n)?.to_vec()).ok()?)
            } else {
                None
            };
            let cc = if flags & 4 != 0 { Some(<[u8; 2]>::try_from(input.take(2)?).ok()?) } else { None };
            loaded.infos.push(Info { asn, as_name, cc });
        }
        let infos = loaded.infos.len() as u64;
        for _ in 0..input.count(9)? {
            let a = u32::from_le_bytes(input.take(4)?.try_into().ok()?);
            let b = u32::from_le_bytes(input.take(4)?.try_into().ok()?);
            let i = input.varint().filter(|&i| i < infos)?;
            loaded.ranges.push((Span::V4(a, b), i as u32));
        }
        for _ in 0..input.count(33)? {
            let a = u128::from_le_bytes(input.take(16)?.try_into().ok()?);
            let b = u128::from_le_bytes(input.take(16)?.try_into().ok()?);
            let i = input.varint().filter(|&i| i < infos)?;
            loaded.ranges.push((Span::V6(a, b), i as u32));
        }
        input.0.is_empty().then_some(loaded)
    }
}

#[cfg(test)]
mod tests;
