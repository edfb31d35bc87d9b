#![no_main]
// A MaxMind DB reader over any bytes: an error, or ranges whose infos exist, which a dataset
// built from them answers for.
use farol_enrich::ipdata::{Dataset, DatasetMeta, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = Format::Mmdb.load(data) {
        assert!(loaded.ranges.iter().all(|(_, i)| (*i as usize) < loaded.infos.len()));
        let meta = DatasetMeta { id: 1, name: "f".into(), version: 1, format: Format::Mmdb, priority: 0 };
        let d = Dataset::build(meta, loaded);
        let _ = d.get(farol_enrich::range::Addr::V4(0x0A00_0001));
    }
});
