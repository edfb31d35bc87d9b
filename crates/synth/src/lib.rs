//! Synthetic feed data for examples, benchmarks and the demo: deterministic for a seed, shaped
//! like the real formats, with source addresses drawn from real Portuguese networks
//! (`data/ipdata-sample`, CC BY 4.0; see its README for attribution).

use std::io::{self, Write};
use std::net::Ipv4Addr;

use farol_model::Timestamp;

pub mod country;

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
        let mut host = Rng::new(seed ^ rng.below(population).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (ip, net) = nets.address(&mut host);
        let family = FAMILIES[(host.below(FAMILIES.len() as u64 * FAMILIES.len() as u64) as f64).sqrt() as usize];
        let s = country::Sighting { ip, cc: "PT", asn: Some(net.asn), family, second: 0, encounters: 1 };
        sinkhole_line(out, t, &s, &mut host, &mut rng)?;
    }
    Ok(())
}

/// One connection of a sinkhole report (`event4_sinkhole`); `host` draws what belongs to the
/// machine (its city, its name), `rng` what changes with each connection.
pub fn sinkhole_line(
    out: &mut impl Write,
    t: Timestamp,
    s: &country::Sighting,
    host: &mut Rng,
    rng: &mut Rng,
) -> io::Result<()> {
    let (y, mo, d, h, mi, sec, _) = t.to_parts();
    let (region, city) = host.pick(CITIES);
    let asn = s.asn.unwrap_or_default();
    let hostname = if host.below(3) == 0 {
        format!("{}-{}-{asn}.dyn.example.pt", s.ip.octets()[2], s.ip.octets()[3])
    } else {
        String::new()
    };
    let sinkhole = 20 + host.below(8);
    let port = [80u16, 443, 8080][rng.below(3) as usize];
    let family = s.family;
    writeln!(
        out,
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02},tcp,{},{},{asn},{},{region},{city},{hostname},0,,,,,high,\
         198.51.100.{sinkhole},{port},64496,US,,,sinkhole.example.net,0,,SinkholeExample,{family},{family},,http,,,,",
        s.ip,
        1024 + rng.below(64_511),
        s.cc,
    )
}

/// Writes a Microsoft CTIP "Infected" feed (one JSON object per line, as the current variant
/// delivers it): `rows` sinkholed connections from Portugal during the day that starts at `day`.
pub fn ctip_jsonl(out: &mut impl Write, rows: u64, seed: u64, day: Timestamp) -> io::Result<()> {
    let nets = Networks::portugal();
    let mut rng = Rng::new(seed);
    const FAMILIES: &[&str] = &["tinba", "conficker", "emotet", "zeus", "necurs"];
    for i in 0..rows {
        let t = day.add_secs((i * 86_400 / rows.max(1)) as i64).unwrap_or(day);
        let (ip, net) = nets.address(&mut rng);
        let family = rng.pick(FAMILIES);
        let s = country::Sighting {
            ip,
            cc: "PT",
            asn: Some(net.asn),
            family,
            second: 0,
            encounters: 1 + rng.below(20) as u32,
        };
        ctip_line(out, t, &s, &mut rng)?;
    }
    Ok(())
}

/// One line of a CTIP "Infected" feed: `Malware` is the family (`Conficker`), `ThreatCode`
/// Microsoft's code for it (`B106-CONFICKER`).
pub fn ctip_line(out: &mut impl Write, t: Timestamp, s: &country::Sighting, rng: &mut Rng) -> io::Result<()> {
    let ticks = (t.secs() + 11_644_473_600) * 10_000_000;
    let mut malware: Vec<char> = s.family.chars().collect();
    if let Some(first) = malware.first_mut() {
        *first = first.to_ascii_uppercase();
    }
    let malware: String = malware.into_iter().collect();
    let code = format!("B{}-{}", 40 + s.family.len() * 7, s.family.to_ascii_uppercase());
    let (region, city) = if s.cc == "PT" { *rng.pick(CITIES) } else { ("", "") };
    let asn = s.asn.map_or(String::new(), |a| a.to_string());
    writeln!(
        out,
        r#"{{"DataFeed":"CTIP-Infected","SourcedFrom":"SinkHoleMessage","DateTimeReceivedUtc":{ticks},"DateTimeReceivedUtcTxt":"","Malware":"{malware}","ThreatCode":"{code}","ThreatConfidence":"High","TotalEncounters":{},"TLP":"Amber","SourceIp":"{}","SourcePort":{},"DestinationIp":"198.51.100.{}","DestinationPort":80,"TargetIp":"","TargetPort":0,"SourceIpInfo":{{"SourceIpAsnNumber":"{asn}","SourceIpAsnOrgName":"","SourceIpCountryCode":"{}","SourceIpRegion":"{region}","SourceIpCity":"{city}","SourceIpPostalCode":"","SourceIpLatitude":38.7,"SourceIpLongitude":-9.1,"SourceIpMetroCode":"","SourceIpAreaCode":"","SourceIpConnectionType":""}},"HttpInfo":{{"HttpHost":"","HttpRequest":"","HttpMethod":"","HttpReferrer":"","HttpUserAgent":"","HttpVersion":""}},"CustomInfo":{{"CustomField1":"","CustomField2":"","CustomField3":"","CustomField4":"","CustomField5":""}},"Payload":"AA=="}}"#,
        s.encounters,
        s.ip,
        1024 + rng.below(64_511),
        20 + rng.below(8),
        s.cc,
    )
}

/// An abuse.ch URLhaus CSV dump (`csv_recent`) of `rows` malware URLs added on the day that
/// starts at `day`, hosted in Portugal.
pub fn urlhaus_csv(day: Timestamp, rows: u64, rng: &mut Rng) -> Vec<u8> {
    let nets = Networks::portugal();
    let mut out = String::from(
        "# abuse.ch URLhaus Database Dump (CSV - recent URLs only)\n#\n# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n",
    );
    for _ in 0..rows {
        let t = day.add_secs(rng.below(86_400) as i64).unwrap_or(day);
        let (y, mo, d, h, mi, s, _) = t.to_parts();
        let when = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
        let id = 3_000_000 + rng.below(1_000_000);
        let (ip, _) = nets.address(rng);
        let (url, tags) = match rng.below(3) {
            0 => (format!("http://{ip}:{}/Mozi.m", 1024 + rng.below(60_000)), "elf,Mozi"),
            1 => (format!("http://{ip}/bins/x86"), "elf,mirai"),
            _ => (
                format!("https://loja-{}.example.pt/wp-content/uploads/fatura{}.zip", rng.below(500), rng.below(99)),
                "zip,emotet",
            ),
        };
        out.push_str(&format!(
            "\"{id}\",\"{when}\",\"{url}\",\"online\",\"{when}\",\"malware_download\",\"{tags}\",\"https://urlhaus.abuse.ch/url/{id}/\",\"abuse_ch\"\n"
        ));
    }
    out.into_bytes()
}

/// An abuse.ch Feodo Tracker IP blocklist (CSV) of `rows` botnet C2 servers in Portugal, as
/// published on the day that starts at `day`.
pub fn feodo_csv(day: Timestamp, rows: u64, rng: &mut Rng) -> Vec<u8> {
    let nets = Networks::portugal();
    let mut out = String::from(
        "# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)\n#\n# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n",
    );
    let (y, mo, d, ..) = day.to_parts();
    for _ in 0..rows {
        let (ip, _) = nets.address(rng);
        let malware = *rng.pick(&["QakBot", "Emotet", "Dridex", "Pikabot"]);
        let port = *rng.pick(&[443u16, 8080, 2222, 995]);
        let h = rng.below(24);
        out.push_str(&format!(
            "\"{y:04}-{mo:02}-{d:02} {h:02}:00:00\",\"{ip}\",\"{port}\",\"online\",\"{y:04}-{mo:02}-{d:02}\",\"{malware}\"\n"
        ));
    }
    out.into_bytes()
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
