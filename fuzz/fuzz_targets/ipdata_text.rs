#![no_main]
// The line formats (ip2asn, RIR delegated, ip-location-db CSV; the first byte chooses): every
// line is a range or a reject, never a panic.
use farol_enrich::ipdata::Format;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else { return };
    let format = [Format::Ip2asn, Format::Delegated, Format::Csv][usize::from(first) % 3];
    let loaded = format.load(input).expect("line formats never fail as a whole");
    let lines = input.split(|&b| b == b'\n').count() as u64;
    assert!(loaded.ranges.len() as u64 + loaded.rejected <= lines);
    let _ = Format::detect(input);
});
