#![no_main]
mod common;

const CONFIG: &str = r#"
max_record = 4096
time_format = "%Y-%m-%d %H:%M:%S"
[columns]
timestamp = "time.source"
ip = "source.ip"
port = "source.port"
asn = "source.asn"
cc = "source.geolocation.cc"
url = "source.url"
host = "source.fqdn"
"#;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::check("csv", CONFIG, data));
