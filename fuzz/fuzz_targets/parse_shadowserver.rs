#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::check_named("shadowserver", "max_record = 4096", Some("2024-06-01-event4_sinkhole_http-x.csv"), data));
