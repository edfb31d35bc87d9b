//! A report's raw bytes, cut into chunks that are compressed one by one: the archive streams in
//! and out with bounded memory, and any byte range can be read back without the rest.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

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

/// Archived chunks are made durable in groups of this many bytes (or every two seconds).
const COMMIT_BYTES: usize = 32 << 20;

/// Where a backend puts a report's chunks while they arrive.
pub(crate) trait Chunks {
    /// Stores chunk `seq` (compressed).
    fn put(&mut self, seq: i64, data: &[u8]) -> Result<()>;
    /// Makes the chunks put so far durable, with a sign of life of the archiving process.
    fn commit(&mut self) -> Result<()>;
}

/// Cuts `input` into compressed chunks for `sink`; returns the SHA-256 and the size. A second
/// thread hashes every chunk and compresses every other one, the calling thread the rest: the
/// two cores share the work (compressing takes most of it).
pub(crate) fn write_chunks(
    sink: &mut dyn Chunks,
    input: &mut dyn Read,
    progress: &mut dyn FnMut(u64),
) -> Result<([u8; 32], u64)> {
    let (to_helper, chunks) = std::sync::mpsc::sync_channel::<(i64, Arc<Vec<u8>>)>(4);
    // Unbounded, but the helper is never more than the four chunks above ahead.
    let (compressed, from_helper) = std::sync::mpsc::channel::<(i64, io::Result<Vec<u8>>)>();
    std::thread::scope(|s| {
        let helper = s.spawn(move || {
            let mut hasher = Sha256::new();
            for (seq, chunk) in chunks {
                hasher.update(&chunk[..]);
                if helps(seq) && compressed.send((seq, compress(&chunk))).is_err() {
                    break;
                }
            }
            <[u8; 32]>::from(hasher.finalize())
        });
        let size = write_compressed(sink, input, progress, &to_helper, &from_helper);
        drop(to_helper);
        let sha = helper.join().map_err(|_| StoreError::Corrupt("the hashing thread failed".into()))?;
        Ok((sha, size?))
    })
}

/// Whether the helper thread compresses chunk `seq`.
fn helps(seq: i64) -> bool {
    seq % 2 == 1
}

fn write_compressed(
    sink: &mut dyn Chunks,
    input: &mut dyn Read,
    progress: &mut dyn FnMut(u64),
    helper: &SyncSender<(i64, Arc<Vec<u8>>)>,
    compressed: &Receiver<(i64, io::Result<Vec<u8>>)>,
) -> Result<u64> {
    let stopped = || StoreError::Corrupt("the hashing thread stopped".into());
    let (mut size, mut seq, mut pending) = (0u64, 0i64, 0usize);
    // Chunks the helper compresses that are not put yet.
    let mut owed = 0;
    let mut last_commit = Instant::now();
    loop {
        let mut buf = vec![0u8; CHUNK_SIZE];
        let n = read_full(input, &mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        let chunk = Arc::new(buf);
        helper.send((seq, chunk.clone())).map_err(|_| stopped())?;
        if helps(seq) {
            owed += 1;
        } else {
            sink.put(seq, &compress(&chunk)?)?;
        }
        for (seq, data) in compressed.try_iter() {
            sink.put(seq, &data?)?;
            owed -= 1;
        }
        seq += 1;
        size += n as u64;
        pending += n;
        progress(size);
        if pending >= COMMIT_BYTES || last_commit.elapsed() > Duration::from_secs(2) {
            sink.commit()?;
            pending = 0;
            last_commit = Instant::now();
        }
    }
    for _ in 0..owed {
        let (seq, data) = compressed.recv().map_err(|_| stopped())?;
        sink.put(seq, &data?)?;
    }
    sink.commit()?;
    Ok(size)
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
