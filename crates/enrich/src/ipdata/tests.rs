#![allow(clippy::unwrap_used)]

use super::*;
use crate::range::Addr;

fn meta(id: i64, name: &str, format: Format) -> DatasetMeta {
    DatasetMeta { id, name: name.into(), version: 1, format, priority: format.default_priority() }
}

fn dataset(id: i64, format: Format, bytes: &[u8]) -> Dataset {
    let loaded = format.load(bytes).unwrap();
    assert_eq!(loaded.rejects, vec![], "{format}");
    Dataset::build(meta(id, format.name(), format), loaded)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mmdb(record_size: u16) -> Vec<u8> {
    let mut w = mmdb::Writer::new("Test-ASN", record_size);
    w.insert("192.0.2.0/24".parse().unwrap(), &mmdb::asn_value(64500, "Example Telecom"));
    w.insert("192.0.2.128/25".parse().unwrap(), &mmdb::asn_value(64501, "Example Hosting"));
    w.insert("198.51.100.0/24".parse().unwrap(), &mmdb::asn_value(64500, "Example Telecom"));
    w.insert("2001:db8::/32".parse().unwrap(), &mmdb::asn_value(64502, "Example v6"));
    w.insert("203.0.113.0/24".parse().unwrap(), &mmdb::country_value("pt"));
    w.finish()
}

#[test]
fn mmdb_files_of_every_record_size_are_read() {
    for size in [24, 28, 32] {
        let bytes = mmdb(size);
        assert_eq!(Format::detect(&bytes), Some(Format::Mmdb));
        let d = dataset(1, Format::Mmdb, &bytes);
        let hit = d.get(Addr::from(ip("192.0.2.10"))).unwrap();
        assert_eq!((hit.info.asn, hit.info.as_name.as_deref()), (Some(64500), Some("Example Telecom")));
        assert_eq!(hit.network.to_string(), "192.0.2.0/25", "record size {size}");
        let hit = d.get(Addr::from(ip("192.0.2.200"))).unwrap();
        assert_eq!((hit.info.asn, hit.network.to_string()), (Some(64501), "192.0.2.128/25".into()));
        assert_eq!(d.get(Addr::from(ip("2001:db8::1"))).unwrap().info.asn, Some(64502));
        assert_eq!(d.get(Addr::from(ip("203.0.113.9"))).unwrap().info.cc, Some(*b"PT"));
        // IPv4-mapped IPv6 is IPv4.
        assert_eq!(d.get(Addr::from(ip("::ffff:192.0.2.10"))).unwrap().info.asn, Some(64500));
        assert!(d.get(Addr::from(ip("10.0.0.1"))).is_none());
        // Each distinct record is kept once.
        assert_eq!(d.infos.len(), 4);
    }
}

#[test]
fn damaged_mmdb_files_are_errors_not_panics() {
    let bytes = mmdb(28);
    assert!(Format::Mmdb.load(b"hello").unwrap_err().contains("marker"));
    for cut in [10, 100, bytes.len() - 20] {
        let mut damaged = bytes[..cut].to_vec();
        damaged.extend_from_slice(&bytes[bytes.len() - 200..]);
        let _ = Format::Mmdb.load(&damaged);
    }
    // A data record that cannot be decoded is a reject; the rest loads.
    let mut w = mmdb::Writer::new("Test", 24);
    w.insert("192.0.2.0/24".parse().unwrap(), &mmdb::asn_value(64500, "x"));
    let mut bytes = w.finish();
    let tree_and_separator = 3 * 2 * (32 + 96) / 8 * 8; // upper bound, then search the data
    let data = bytes.iter().skip(16).position(|&b| b == 0xE2).map(|p| p + 16).unwrap();
    assert!(data < tree_and_separator + 16 + 64);
    bytes[data] = 0xFF; // an unknown extended type
    let loaded = Format::Mmdb.load(&bytes).unwrap();
    assert_eq!(loaded.ranges.len(), 0);
    assert_eq!(loaded.rejects.len(), 1, "{:?}", loaded.rejects);
}

#[test]
fn mmdb_pointers_of_every_size() {
    // "ab" at 0, then pointers to it in the four encodings.
    let mut bytes = vec![0x42, b'a', b'b'];
    let decode = |bytes: &[u8], at: usize| {
        let d = mmdb_decoder(bytes);
        d(at)
    };
    bytes.extend_from_slice(&[0x20, 0x00]); // ss=0: 0
    assert_eq!(decode(&bytes, 3), Some(mmdb::Value::Str("ab".into())));
    // ss=1 adds 2048: a pointer to 2048 - 2048 = 0 is written as 0x28 0x00 0x00 minus nothing;
    // the value 0 cannot be expressed, so check the arithmetic with a string placed at 2048.
    let mut far = vec![0u8; 2048];
    far.extend_from_slice(&[0x41, b'z']);
    let at = far.len();
    far.extend_from_slice(&[0x28, 0x00, 0x00]);
    assert_eq!(decode(&far, at), Some(mmdb::Value::Str("z".into())));
    let at = far.len();
    far.extend_from_slice(&[0x38, 0x00, 0x00, 0x08, 0x00]); // ss=3: 2048
    assert_eq!(decode(&far, at), Some(mmdb::Value::Str("z".into())));
}

fn mmdb_decoder(bytes: &[u8]) -> impl Fn(usize) -> Option<mmdb::Value> + '_ {
    move |at| mmdb::decode_at(bytes, at).ok()
}

#[test]
fn ip2asn_tsv() {
    let tsv = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\
               1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n\
               192.0.2.0\t192.0.2.255\tAS64500\tpt\tEXAMPLE\n\
               2001:db8::\t2001:db8::ffff\t64501\tPT\tEXAMPLE-V6\n\
               bad line\n\
               3.0.0.0\t2.0.0.0\t1\tUS\tBACKWARDS\n";
    assert_eq!(Format::detect(tsv.as_bytes()), Some(Format::Ip2asn));
    let loaded = Format::Ip2asn.load(tsv.as_bytes()).unwrap();
    assert_eq!(loaded.ranges.len(), 3);
    assert_eq!(
        loaded.rejects.iter().map(|r| (r.line, r.reason.as_str())).collect::<Vec<_>>(),
        [
            (Some(5), "expected 5 tab-separated columns, found 1"),
            (Some(6), "the range ends (2.0.0.0) before it starts (3.0.0.0)")
        ]
    );
    let d = Dataset::build(meta(1, "ip2asn", Format::Ip2asn), loaded);
    let hit = d.get(Addr::from(ip("192.0.2.77"))).unwrap();
    assert_eq!(
        (hit.info.asn, hit.info.cc, hit.network.to_string()),
        (Some(64500), Some(*b"PT"), "192.0.2.0/24".into())
    );
    assert!(d.get(Addr::from(ip("1.0.2.1"))).is_none(), "unrouted space has no AS");
    // The u32 variant.
    let loaded = Format::Ip2asn.load(b"3221225984\t3221226239\t64500\tPT\tEXAMPLE\n").unwrap();
    assert_eq!(loaded.ranges, vec![(Span::V4(0xC000_0200, 0xC000_02FF), 0)]);
}

#[test]
fn rir_delegated_statistics() {
    let text = "# comment\n\
        2|ripencc|1704841199|131000|19830705|20240109|+0100\n\
        ripencc|*|ipv4|*|81234|summary\n\
        ripencc|PT|ipv4|193.136.0.0|65536|19930101|allocated|abc\n\
        ripencc|PT|ipv4|192.0.2.0|768|20100101|assigned|def\n\
        ripencc|PT|ipv6|2001:db8::|32|20100101|allocated|abc\n\
        ripencc|PT|asn|3243|1|19930901|allocated|abc\n\
        ripencc||ipv4|10.0.0.0|256||available|\n\
        ripencc|ZZ|ipv4|11.0.0.0|256||reserved|\n\
        ripencc|PT|ipv4|255.255.255.0|512|20100101|assigned|x\n\
        ripencc|PT|ipv4\n";
    assert_eq!(Format::detect(text.as_bytes()), Some(Format::Delegated));
    let loaded = Format::Delegated.load(text.as_bytes()).unwrap();
    assert_eq!(loaded.ranges.len(), 3);
    assert_eq!(loaded.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [Some(10), Some(11)]);
    let d = Dataset::build(meta(1, "ripe", Format::Delegated), loaded);
    assert_eq!(d.get(Addr::from(ip("193.136.200.1"))).unwrap().info.cc, Some(*b"PT"));
    // 768 addresses from 192.0.2.0 are a /23 and a /24 (not aligned as one block).
    assert_eq!(d.get(Addr::from(ip("192.0.3.1"))).unwrap().network.to_string(), "192.0.2.0/23");
    assert_eq!(d.get(Addr::from(ip("192.0.4.1"))).unwrap().network.to_string(), "192.0.4.0/24");
    assert_eq!(d.get(Addr::from(ip("2001:db8:1::1"))).unwrap().network.to_string(), "2001:db8::/32");
}

#[test]
fn ip_location_db_csv() {
    let text = "2.80.0.0,2.83.255.255,3243,MEO - SERVICOS DE COMUNICACOES E MULTIMEDIA S.A.\n\
        31.25.8.0,31.25.9.255,16509,\"Amazon.com, Inc.\"\n\
        1.178.224.0,1.178.255.255,ES\n\
        3221225984,3221226239,64500,numeric\n\
        1.2.3.4,1.2.3.5,Portugal\n\
        1.2.3.4,1.2.3.5,1,\"open\n";
    assert_eq!(Format::detect(text.as_bytes()), Some(Format::Csv));
    let loaded = Format::Csv.load(text.as_bytes()).unwrap();
    assert_eq!(loaded.ranges.len(), 4);
    assert_eq!(loaded.rejects.len(), 2);
    let d = Dataset::build(meta(1, "csv", Format::Csv), loaded);
    assert_eq!(d.get(Addr::from(ip("31.25.9.1"))).unwrap().info.as_name.as_deref(), Some("Amazon.com, Inc."));
    assert_eq!(d.get(Addr::from(ip("192.0.2.1"))).unwrap().info.as_name.as_deref(), Some("numeric"));
}

#[test]
fn the_shipped_sample_loads_without_a_reject() {
    for (file, ranges) in [("asn-ipv4-pt.csv", 428), ("country-ipv4.csv", 13_653)] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ipdata-sample").join(file);
        let bytes = std::fs::read(path).unwrap();
        let loaded = Format::Csv.load(&bytes).unwrap();
        assert_eq!((loaded.ranges.len(), loaded.rejected), (ranges, 0), "{file}");
    }
}

#[test]
fn the_stored_form_round_trips_and_refuses_damage() {
    let mut loaded = Format::Mmdb.load(&mmdb(24)).unwrap();
    loaded.push(Span::V6(1, 2), Info { cc: Some(*b"PT"), ..Info::default() });
    let bytes = stored::encode(&loaded);
    let back = stored::decode(&bytes).unwrap();
    let sorted = |l: &Loaded| {
        let mut r = l.ranges.clone();
        r.sort_by_key(|(s, i)| (format!("{s:?}"), *i));
        r
    };
    assert_eq!((sorted(&back), back.infos.clone()), (sorted(&loaded), loaded.infos.clone()));
    for cut in 0..bytes.len() {
        assert!(stored::decode(&bytes[..cut]).is_none(), "cut at {cut}");
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(stored::decode(&extra).is_none());
}

#[test]
fn the_highest_priority_answers_first_attribute_by_attribute() {
    let asn = dataset(1, Format::Ip2asn, b"192.0.2.0\t192.0.2.255\t64500\tES\tEXAMPLE\n");
    let country = dataset(2, Format::Mmdb, &{
        let mut w = mmdb::Writer::new("Test-Country", 24);
        w.insert("192.0.2.0/24".parse().unwrap(), &mmdb::country_value("PT"));
        w.finish()
    });
    let data = IpData::new(vec![asn, country]);
    let a = data.lookup(ip("192.0.2.1"));
    assert_eq!(a.asn.map(|(n, d)| (n, d.id)), Some((64500, 1)));
    // The MMDB (priority 30) wins the country over ip2asn's registration country.
    assert_eq!(a.cc.map(|(c, d)| (c, d.id)), Some((*b"PT", 2)));
    assert_eq!(a.network.map(|(n, d)| (n.to_string(), d.id)), Some(("192.0.2.0/24".into(), 1)));
    assert_eq!(data.lookup(ip("10.0.0.1")), Answer::default());
}
