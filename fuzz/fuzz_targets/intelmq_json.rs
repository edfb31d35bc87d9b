#![no_main]
// IntelMQ's JSON: whatever is accepted writes out and reads back as the same event.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(mut event) = farol_model::Event::from_intelmq_json(data) {
        let _ = event.validate();
        let line = event.to_intelmq_json();
        let again = farol_model::Event::from_intelmq_json(line.as_bytes()).expect("our own output reads back");
        assert_eq!(again.to_intelmq_json(), line);
        let _ = event.hash();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = farol_model::Timestamp::parse(text);
        let _ = text.parse::<farol_model::Tlp>();
    }
});
