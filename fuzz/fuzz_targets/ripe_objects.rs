#![no_main]
// RPSL objects from the RIPE database: any bytes are objects, problems or nothing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut import = farol_enrich::ripe::Import::new(Some("PT"));
    farol_enrich::ripe::objects(data, |o| import.add(o)).expect("reading from memory cannot fail");
    let _ = import.finish();
});
