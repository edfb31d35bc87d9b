//! Shared by the parser targets: run a parser over the input cut into chunks whose size the
//! input's first byte chooses, and check that the chunking changes nothing.

use farol_feeds::{Output, ParseConfig, Parser};

#[allow(dead_code)] // the Shadowserver target names its file and uses check_named only
pub fn check(format: &str, config: &str, data: &[u8]) {
    check_named(format, config, None, data);
}

pub fn check_named(format: &str, config: &str, name: Option<&str>, data: &[u8]) {
    let Some((&first, input)) = data.split_first() else { return };
    let config: ParseConfig = toml::from_str(config).expect("the target's configuration is valid");
    let build = farol_feeds::format(format).expect("known format").build;
    let whole = farol_feeds::parse_all(&mut *build(&config, name).expect("builds"), input);
    let mut parser: Box<dyn Parser> = build(&config, name).expect("builds");
    let mut chunked = Output::default();
    for chunk in input.chunks(usize::from(first).max(1)) {
        parser.push(chunk, &mut chunked);
    }
    parser.finish(&mut chunked);
    assert_eq!(whole.events, chunked.events, "chunking changed the events");
    assert_eq!(whole.rejects, chunked.rejects, "chunking changed the rejects");
    assert_eq!(whole.fatal, chunked.fatal, "chunking changed the report-level error");
    for p in &whole.events {
        let end = p.position.offset + p.position.len;
        assert!(end <= input.len() as u64, "an event's position lies outside the input");
    }
}
