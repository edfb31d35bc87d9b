//! A report's raw bytes, cut into chunks that are compressed one by one: the archive streams in
//! and out with bounded memory, and any byte range can be read back without the rest.

use std::io::{self, Read};

/// Uncompressed size of one archive chunk.
pub const CHUNK_SIZE: usize = 1 << 20;

/// zstd level 1: three to four times smaller for CSV and JSON feeds, at several hundred MB/s.
const LEVEL: i32 = 1;

pub(crate) fn compress(chunk: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::compress(chunk, LEVEL)
}

pub(crate) fn decompress(data: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::decompress(data, CHUNK_SIZE)
}

/// Fills `buf` from `input` as far as it goes; returns how much was read (less only at the end).
pub(crate) fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads a report back chunk by chunk; `next` yields each chunk's compressed bytes in order.
pub(crate) struct ChunkReader<F> {
    next: F,
    current: Vec<u8>,
    pos: usize,
}

impl<F> ChunkReader<F> {
    pub(crate) fn new(next: F) -> ChunkReader<F> {
        ChunkReader { next, current: Vec::new(), pos: 0 }
    }
}

impl<F: FnMut() -> io::Result<Option<Vec<u8>>>> Read for ChunkReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match (self.next)()? {
                Some(data) => {
                    self.current = decompress(&data)?;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
