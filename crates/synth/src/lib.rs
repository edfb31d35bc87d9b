//! Synthetic feed data for examples, benchmarks and the demo: deterministic for a seed, shaped
//! like the real formats, with source addresses drawn from real Portuguese networks
//! (`data/ipdata-sample`, CC BY 4.0; see its README for attribution).

use std::io::{self, Write};
use std::net::Ipv4Addr;

use farol_model::Timestamp;

/// `first,last,asn,as_name` ranges of address space in Portugal.
const PT_ASN_RANGES: &str = include_str!("../../../data/ipdata-sample/asn-ipv4-pt.csv");

/// A small, fast, deterministic generator (SplitMix64): the same seed gives the same data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// An IPv4 range with the AS that announces it.
#[derive(Debug, Clone)]
pub struct Network {
    pub first: u32,
    pub last: u32,
    pub asn: u32,
    pub as_name: String,
}

/// The Portuguese ranges of the sample data, with cumulative sizes for weighted picking.
#[derive(Debug, Clone)]
pub struct Networks {
    nets: Vec<Network>,
    cumulative: Vec<u64>,
}

impl Networks {
    pub fn portugal() -> Networks {
        let nets: Vec<Network> = PT_ASN_RANGES.lines().filter_map(parse_range).collect();
        let mut total = 0u64;
        let cumulative = nets
            .iter()
            .map(|n| {
                total += u64::from(n.last - n.first) + 1;
                total
            })
            .collect();
        Networks { nets, cumulative }
    }

    pub fn all(&self) -> &[Network] {
        &self.nets
    }

    /// A network, more likely the larger it is.
    pub fn pick(&self, rng: &mut Rng) -> &Network {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let at = rng.below(total);
        let i = self.cumulative.partition_point(|&c| c <= at);
        &self.nets[i.min(self.nets.len() - 1)]
    }

    /// An address inside a network picked by size.
    pub fn address(&self, rng: &mut Rng) -> (Ipv4Addr, &Network) {
        let net = self.pick(rng);
        let ip = net.first + rng.below(u64::from(net.last - net.first) + 1) as u32;
        (Ipv4Addr::from(ip), net)
    }
}

fn parse_range(line: &str) -> Option<Network> {
    let mut parts = line.splitn(4, ',');
    let first: Ipv4Addr = parts.next()?.parse().ok()?;
    let last: Ipv4Addr = parts.next()?.parse().ok()?;
    let asn = parts.next()?.parse().ok()?;
    let as_name = parts.next()?.trim_matches('"').to_owned();
    Some(Network { first: u32::from(first), last: u32::from(last), asn, as_name })
}

/// Botnet families seen at sinkholes, roughly in order of how common they are.
pub const FAMILIES: &[&str] = &[
    "andromeda",
    "mirai",
    "qsnatch",
    "emotet",
    "necurs",
    "conficker",
    "gamut",
    "ramnit",
    "sality",
    "pushdo",
    "tofsee",
    "avalanche-andromeda",
    "qakbot",
    "socgholish",
];

const CITIES: &[(&str, &str)] = &[
    ("LISBOA", "LISBON"),
    ("LISBOA", "LISBON"),
    ("PORTO", "PORTO"),
    ("PORTO", "MATOSINHOS"),
    ("BRAGA", "BRAGA"),
    ("SETUBAL", "ALMADA"),
    ("COIMBRA", "COIMBRA"),
    ("FARO", "FARO"),
    ("AVEIRO", "AVEIRO"),
    ("MADEIRA", "FUNCHAL"),
];

/// The columns of Shadowserver's `event4_sinkhole` report.
pub const SINKHOLE_HEADER: &str = "timestamp,protocol,src_ip,src_port,src_asn,src_geo,src_region,src_city,src_hostname,\
src_naics,src_sector,device_vendor,device_type,device_model,severity,dst_ip,dst_port,dst_asn,dst_geo,dst_region,dst_city,\
dst_hostname,dst_naics,dst_sector,public_source,infection,family,tag,application,version,event_id,ssl_cipher,ssl_servername";

/// Writes a sinkhole report in the shape of Shadowserver's `event4_sinkhole`: `rows` connections
/// from infected machines in Portugal during the day that starts at `day`, in time order.
pub fn sinkhole_csv(out: &mut impl Write, rows: u64, seed: u64, day: Timestamp) -> io::Result<()> {
    let nets = Networks::portugal();
    let mut rng = Rng::new(seed);
    writeln!(out, "{SINKHOLE_HEADER}")?;
    // Infected machines reconnect: draw from a population smaller than the number of rows.
    let population = (rows / 4).max(1);
    for i in 0..rows {
        let t = day.add_secs((i * 86_400 / rows.max(1)) as i64).unwrap_or(day);
        let (y, mo, d, h, mi, s, _) = t.to_parts();
        let mut host = Rng::new(seed ^ rng.below(population).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (ip, net) = nets.address(&mut host);
        let family = FAMILIES[(host.below(FAMILIES.len() as u64 * FAMILIES.len() as u64) as f64).sqrt() as usize];
        let (region, city) = host.pick(CITIES);
        let hostname = if host.below(3) == 0 {
            format!("{}-{}-{}.{}", ip.octets()[2], ip.octets()[3], net.asn, "dyn.example.pt")
        } else {
            String::new()
        };
        let sinkhole = 20 + host.below(8);
        let port = [80u16, 443, 8080][rng.below(3) as usize];
        writeln!(
            out,
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},tcp,{ip},{},{},PT,{region},{city},{hostname},0,,,,,high,\
             198.51.100.{sinkhole},{port},64496,US,,,sinkhole.example.net,0,,SinkholeExample,{family},{family},,http,,,,",
            1024 + rng.below(64_511),
            net.asn,
        )?;
    }
    Ok(())
}

/// Writes a Microsoft CTIP "Infected" feed (one JSON object per line, as the current variant
/// delivers it): `rows` sinkholed connections from Portugal during the day that starts at `day`.
pub fn ctip_jsonl(out: &mut impl Write, rows: u64, seed: u64, day: Timestamp) -> io::Result<()> {
    let nets = Networks::portugal();
    let mut rng = Rng::new(seed);
    const CODES: &[(&str, &str)] = &[
        ("Tinba", "B67-SS-TINBA"),
        ("Conficker", "B106-CONFICKER"),
        ("Emotet", "B100-EMOTET"),
        ("Zeus", "B54-ZEUS"),
        ("Necurs", "B75-NECURS"),
    ];
    for i in 0..rows {
        let t = day.add_secs((i * 86_400 / rows.max(1)) as i64).unwrap_or(day);
        let ticks = (t.secs() + 11_644_473_600) * 10_000_000;
        let (ip, net) = nets.address(&mut rng);
        let (malware, code) = rng.pick(CODES);
        let (region, city) = rng.pick(CITIES);
        writeln!(
            out,
            r#"{{"DataFeed":"CTIP-Infected","SourcedFrom":"SinkHoleMessage","DateTimeReceivedUtc":{ticks},"DateTimeReceivedUtcTxt":"","Malware":"{malware}","ThreatCode":"{code}","ThreatConfidence":"High","TotalEncounters":{},"TLP":"Amber","SourceIp":"{ip}","SourcePort":{},"DestinationIp":"198.51.100.{}","DestinationPort":80,"TargetIp":"","TargetPort":0,"SourceIpInfo":{{"SourceIpAsnNumber":"{}","SourceIpAsnOrgName":"","SourceIpCountryCode":"PT","SourceIpRegion":"{region}","SourceIpCity":"{city}","SourceIpPostalCode":"","SourceIpLatitude":38.7,"SourceIpLongitude":-9.1,"SourceIpMetroCode":"","SourceIpAreaCode":"","SourceIpConnectionType":""}},"HttpInfo":{{"HttpHost":"","HttpRequest":"","HttpMethod":"","HttpReferrer":"","HttpUserAgent":"","HttpVersion":""}},"CustomInfo":{{"CustomField1":"","CustomField2":"","CustomField3":"","CustomField4":"","CustomField5":""}},"Payload":"AA=="}}"#,
            1 + rng.below(20),
            1024 + rng.below(64_511),
            20 + rng.below(8),
            net.asn,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let day = Timestamp::parse("2024-06-01").unwrap();
        let mut a = Vec::new();
        sinkhole_csv(&mut a, 1000, 7, day).unwrap();
        let mut b = Vec::new();
        sinkhole_csv(&mut b, 1000, 7, day).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let columns = SINKHOLE_HEADER.split(',').count();
        assert_eq!(text.lines().count(), 1001);
        assert!(text.lines().all(|l| l.split(',').count() == columns), "every row has {columns} columns");
        assert!(text.lines().nth(1).unwrap().starts_with("2024-06-01 00:00:00,tcp,"));
    }

    #[test]
    fn networks_load() {
        let nets = Networks::portugal();
        assert_eq!(nets.all().len(), 428);
        assert!(nets.all().iter().any(|n| n.asn == 3243));
        let mut rng = Rng::new(1);
        let (ip, net) = nets.address(&mut rng);
        assert!((net.first..=net.last).contains(&u32::from(ip)));
    }
}
