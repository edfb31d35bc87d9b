#![no_main]
// MISP warninglists: any bytes are a list or an error; a list answers any name.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(list) = farol_enrich::warninglist::Warninglist::from_misp_json(data) {
        let _ = list.matches_name("www.example.pt");
        let _ = list.matches_ip("192.0.2.1".parse().unwrap());
    }
});
