#![no_main]
use std::io::Read;
// Transport decoding (gzip, zstd) of arbitrary bytes ends in data or an error, never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let encoding = farol_pipeline::Encoding::sniff(data);
    if let Ok(mut reader) = encoding.decoder(data) {
        let mut out = Vec::new();
        let _ = reader.by_ref().take(1 << 24).read_to_end(&mut out);
    }
});
