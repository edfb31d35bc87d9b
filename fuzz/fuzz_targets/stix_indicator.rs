#![no_main]
// What partners send over TAXII: any JSON object read as a STIX indicator is an indicator or
// an error, and an indicator read back from what farol writes of it is the same.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(object) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(read) = farol_share::stix::read_indicator(&object) else { return };
    assert_eq!(read.kind.normalize(&read.value).as_deref(), Ok(read.value.as_str()));
});
