#![no_main]
// The stored form: arbitrary bytes decode to an error or to an event that encodes back.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(event) = farol_model::Event::decode(data) {
        let mut again = Vec::new();
        event.encode(&mut again);
        assert_eq!(farol_model::Event::decode(&again).as_ref(), Ok(&event));
    }
});
