#![no_main]
mod common;

const CONFIG: &str = r#"
max_record = 4096
[columns]
"a.ip" = "source.ip"
"a.when" = "time.source"
port = "destination.port"
tlp = "tlp"
"#;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::check("json", CONFIG, data));
