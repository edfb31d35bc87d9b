#![no_main]
// The stored form of a dataset: damaged bytes decode to nothing, never to a panic or a huge
// allocation; what decodes encodes back the same.
use farol_enrich::ipdata::stored;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(loaded) = stored::decode(data) {
        assert_eq!(stored::decode(&stored::encode(&loaded)).map(|l| l.ranges.len()), Some(loaded.ranges.len()));
    }
});
