//! Transport compression of a report: gzip and zstd are undone before parsing.

use std::io::{self, Read};

/// How a report's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Gzip,
    Zstd,
}

impl Encoding {
    /// Recognizes compression by its magic bytes.
    pub fn sniff(head: &[u8]) -> Encoding {
        match head {
            [0x1f, 0x8b, ..] => Encoding::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Encoding::Zstd,
            _ => Encoding::Plain,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
        }
    }

    /// A reader of the decoded bytes; its errors say what is wrong with the compressed stream.
    pub fn decoder<'a>(self, input: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Encoding::Plain => Box::new(input),
            Encoding::Gzip => Box::new(Explained { inner: flate2::read::MultiGzDecoder::new(input), what: "gzip" }),
            Encoding::Zstd => Box::new(Explained { inner: zstd::stream::read::Decoder::new(input)?, what: "zstd" }),
        })
    }
}

/// Turns a decoder's terse errors into messages that say what happened.
struct Explained<R> {
    inner: R,
    what: &'static str,
}

impl<R: Read> Read for Explained<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let what = self.what;
            let message = if e.kind() == io::ErrorKind::UnexpectedEof {
                format!(
                    "the {what} stream is cut short (an interrupted download?); the records before the cut were kept"
                )
            } else {
                format!("the {what} stream is corrupt ({e}); the records before the damage were kept")
            };
            io::Error::new(e.kind(), message)
        })
    }
}

/// Reads up to `limit` decoded bytes from the start of a report, for format detection. Errors
/// (a head cut inside a compressed block) end the sample early.
pub(crate) fn sample(head: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(reader) = Encoding::sniff(head).decoder(head) {
        let _ = reader.take(limit as u64).read_to_end(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn decodes_gzip_and_zstd() {
        let data = b"line 1\nline 2\n".repeat(1000);
        for encoded in [gzip(&data), zstd::encode_all(&data[..], 1).unwrap(), data.clone()] {
            let mut out = Vec::new();
            Encoding::sniff(&encoded).decoder(&encoded[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn a_truncated_gzip_says_so() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_string().into_bytes()).collect();
        let encoded = gzip(&data);
        let cut = &encoded[..encoded.len() / 2];
        let mut out = Vec::new();
        let err = Encoding::Gzip.decoder(cut).unwrap().read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().starts_with("the gzip stream is cut short"), "{err}");
        assert!(!out.is_empty());
        assert_eq!(&data[..out.len()], &out[..]);
        assert_eq!(sample(cut, 10), data[..10]);
    }
}
