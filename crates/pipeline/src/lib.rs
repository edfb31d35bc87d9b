//! The pipeline: a report is archived, then streamed through its parser, the expert chain and
//! the store's batch writer.
//!
//! ```text
//! archive ─► [read, parse, defaults, validate, hash, experts, encode] ─bounded channel─► [writer]
//! ```
//!
//! Two threads, one per core of a small machine: the producer does everything up to an encoded
//! row, the writer only writes. The channel holds a few batches, so memory stays flat whatever
//! the size of the report, and a slow writer slows the producer instead of queueing.

mod aggregate;
mod decode;
mod feed;
mod lease;

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use farol_feeds::{Output, Parser, Probe};
use farol_model::expert::{Expert, Verdict};
use farol_model::org::Distribution;
use farol_model::{Counts, Event, Record, Reject, Report, ReportStatus, Timestamp};
use farol_store::{Archived, NewReport, Outcome, Row, Store, StoreError};

pub use aggregate::Aggregation;
pub use decode::Encoding;
pub use feed::{Defaults, Experts, Feed};
pub use lease::{LEASE, Lease};

/// Bytes handed to a parser at a time.
const READ_CHUNK: usize = 256 * 1024;
/// Events per batch between stages.
const BATCH: usize = 2048;
/// Batches waiting between two stages.
const QUEUE: usize = 16;
/// How much of a report is looked at to detect its format.
const PROBE: usize = 64 * 1024;

/// Why a report could not be ingested.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the input failed: {0}")]
    Input(std::io::Error),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Detect(#[from] farol_feeds::DetectError),
    #[error("zip member {member}: {error}")]
    Member { member: String, error: Box<Error> },
    #[error("report {report} is being processed by {holder}")]
    Held { report: farol_model::ReportId, holder: String },
    #[error("report {0} was taken over by another process after this one stalled longer than its lease")]
    LeaseLost(farol_model::ReportId),
}

/// Receives progress from the pipeline's threads.
pub trait Progress: Sync {
    /// A new phase starts (`archiving`, `processing`), with its total size in bytes if known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// Bytes of the phase done so far, and records read so far.
    fn update(&self, bytes: u64, records: u64);
}

/// Progress that goes nowhere.
#[derive(Debug)]
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn update(&self, _: u64, _: u64) {}
}

/// A report to ingest: its bytes and what it is called.
pub struct Input<'a> {
    pub reader: Box<dyn Read + 'a>,
    /// The file name or URL path, for format detection and display.
    pub name: Option<String>,
    /// Size in bytes, if known, for progress.
    pub size: Option<u64>,
    /// Only archive: `farol worker` processes will process it.
    pub queue: bool,
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).field("size", &self.size).finish_non_exhaustive()
    }
}

/// What ingesting did.
#[derive(Debug, Clone)]
pub enum Ingested {
    /// The report was new (or an interrupted one was finished) and has been processed.
    Processed(Summary),
    /// The same bytes were already ingested for this feed; nothing was done.
    AlreadyIngested(Report),
    /// Archived; a worker processes it (the input asked for that, or a worker took it first).
    Queued(Report),
}

/// What processing one report did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub report: Report,
    pub elapsed: Duration,
}

impl Summary {
    /// Valid events handled per second (new ones and duplicates).
    pub fn events_per_sec(&self) -> f64 {
        let c = &self.report.counts;
        (c.events + c.duplicates) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Ingests an input that may be a zip archive: each member becomes its own report. Other inputs
/// are one report ([`ingest`]). When a damaged archive stops the reading, the members read
/// before are kept and the error is returned with them.
pub fn ingest_all(
    store: &dyn Store,
    feed: &Feed,
    input: Input<'_>,
    experts: &[Box<dyn Expert>],
    progress: &dyn Progress,
) -> Result<(Vec<Ingested>, Option<Error>), Error> {
    let mut reader = BufReader::with_capacity(READ_CHUNK, input.reader);
    if !reader.fill_buf().map_err(Error::Input)?.starts_with(b"PK\x03\x04") {
        let input = Input { reader: Box::new(reader), ..input };
        return ingest(store, feed, input, experts, progress).map(|i| (vec![i], None));
    }
    let mut done = Vec::new();
    loop {
        let member = match zip::read::read_zipfile_from_stream(&mut reader) {
            Ok(Some(member)) => member,
            Ok(None) => return Ok((done, None)),
            Err(e) => {
                let at = done.len() + 1;
                let error =
                    Error::Input(std::io::Error::other(format!("the zip archive is damaged at member {at}: {e}")));
                return Ok((done, Some(error)));
            }
        };
        if member.is_dir() {
            continue;
        }
        let name = member.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("member-{}", done.len() + 1));
        let size = member.size();
        let input = Input { reader: Box::new(member), name: Some(name.clone()), size: Some(size), queue: input.queue };
        match ingest(store, feed, input, experts, progress) {
            Ok(i) => done.push(i),
            Err(e) => return Ok((done, Some(Error::Member { member: name, error: Box::new(e) }))),
        }
    }
}

/// Archives a report and processes it. The same bytes for the same feed a second time are
/// recognized and not processed again, unless an earlier run was interrupted: then it finishes.
pub fn ingest(
    store: &dyn Store,
    feed: &Feed,
    input: Input<'_>,
    experts: &[Box<dyn Expert>],
    progress: &dyn Progress,
) -> Result<Ingested, Error> {
    let mut reader = BufReader::with_capacity(READ_CHUNK, input.reader);
    let head = reader.fill_buf().map_err(Error::Input)?;
    let format = match &feed.format {
        Some(f) => farol_feeds::format(f).map_err(|e| Error::Config(e.0))?.name,
        None => {
            let sample = decode::sample(head, PROBE);
            farol_feeds::detect(&Probe { name: input.name.as_deref(), head: &sample })?.name
        }
    };
    // A parser that cannot be built is a configuration error: say so before storing anything.
    let _ = build_parser(feed, format, input.name.as_deref())?;
    let new = NewReport {
        feed: feed.name.clone(),
        format: format.to_owned(),
        name: input.name.clone(),
        received_at: Timestamp::now(),
    };
    progress.phase("archiving", input.size);
    let started = Instant::now();
    let archived = store.archive(&new, &mut reader, &mut |bytes| progress.update(bytes, 0))?;
    tracing::info!(feed = %feed.name, elapsed_ms = started.elapsed().as_millis() as u64, "report archived");
    let report = match archived {
        Archived::New(report) => report,
        Archived::Existing(report) if matches!(report.status, ReportStatus::Stored | ReportStatus::Processing) => {
            tracing::info!(report = %report.id, "finishing a report whose processing was interrupted");
            report
        }
        Archived::Existing(report) => return Ok(Ingested::AlreadyIngested(report)),
    };
    if input.queue {
        return Ok(Ingested::Queued(report));
    }
    match Lease::take(store, report.id, LEASE) {
        Ok(lease) => process(&lease, feed, experts, progress).map(Ingested::Processed),
        Err(Error::Held { .. }) => Ok(Ingested::Queued(report)),
        Err(e) => Err(e),
    }
}

fn build_parser(feed: &Feed, format: &str, name: Option<&str>) -> Result<Box<dyn Parser>, Error> {
    let format = farol_feeds::format(format).map_err(|e| Error::Config(e.0))?;
    (format.build)(&feed.parse, name).map_err(|e| Error::Config(format!("feed {}: {}", feed.name, e.0)))
}

/// A batch from the experts to the writer.
struct Prepared {
    /// With the first batch: what every event of the report shares, which rows are encoded
    /// against.
    common: Option<Event>,
    rows: Vec<Row>,
    rejects: Vec<Reject>,
    dropped: u64,
    fatal: Option<String>,
}

/// Processes an archived report from its raw bytes. Safe to repeat: earlier events and rejects
/// of the report are replaced, and events already stored by other reports stay single.
pub fn process(
    lease: &Lease<'_>,
    feed: &Feed,
    experts: &[Box<dyn Expert>],
    progress: &dyn Progress,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let (store, report) = (lease.store(), lease.report());
    let parser = build_parser(feed, feed.format.as_deref().unwrap_or(&report.format), report.name.as_deref())?;
    store.begin_processing(report.id)?;
    let raw = store.raw(report.id)?;
    let stage = Stage::new(feed, report.received_at, experts);
    progress.phase("processing", Some(report.size));

    let records = AtomicU64::new(0);
    let (tx, rx) = sync_channel::<Prepared>(QUEUE);
    let (read_error, written) = std::thread::scope(|s| {
        let producer = std::thread::Builder::new()
            .name("farol-parse".into())
            .spawn_scoped(s, || read_and_parse(raw, parser, &stage, tx, &records, progress));
        let Ok(producer) = producer else {
            return (None, Err(Error::Input(std::io::Error::other("cannot start the parser thread"))));
        };
        let written = write(lease, feed.distribution, rx);
        // If writing failed, the producer stops when its channel closes.
        (producer.join().unwrap_or_else(|_| Some("the parser stopped unexpectedly".to_owned())), written)
    });
    let (mut counts, fatal) = written?;
    lease.keep()?;
    counts.records = records.load(Ordering::Relaxed);
    let error = if report.size == 0 { Some("the report is empty (0 bytes)".to_owned()) } else { fatal.or(read_error) };
    let holder = Some(lease.holder().to_owned());
    let report = store.finish_processing(report.id, &Outcome { counts, error, holder })?;
    let elapsed = started.elapsed();
    tracing::info!(
        report = %report.id, feed = %report.feed, events = report.counts.events, duplicates = report.counts.duplicates,
        rejects = report.counts.rejects, elapsed_ms = elapsed.as_millis() as u64, "report processed"
    );
    Ok(Summary { report, elapsed })
}

/// Counts the bytes read from the archive, for progress.
struct Counting<'a, R> {
    inner: R,
    read: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The producer: decodes the archived bytes, parses them and prepares rows. Returns a
/// report-level error (a truncated gzip, an unreadable archive), if any; the parser's own go
/// with the batches.
fn read_and_parse(
    raw: Box<dyn Read + Send>,
    mut parser: Box<dyn Parser>,
    stage: &Stage<'_>,
    tx: SyncSender<Prepared>,
    records: &AtomicU64,
    progress: &dyn Progress,
) -> Option<String> {
    let bytes_read = AtomicU64::new(0);
    let mut raw = BufReader::with_capacity(READ_CHUNK, Counting { inner: raw, read: &bytes_read });
    let encoding = match raw.fill_buf() {
        Ok(head) => Encoding::sniff(head),
        Err(e) => return Some(format!("reading the archived report failed: {e}")),
    };
    let mut input = match encoding.decoder(raw) {
        Ok(d) => d,
        Err(e) => return Some(format!("the {} stream cannot be read: {e}", encoding.name())),
    };
    let mut out = Output::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut error = None;
    let mut common = None;
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => parser.push(&buf[..n], &mut out),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if out.events.len() + out.rejects.len() >= BATCH || out.fatal.is_some() {
            records.fetch_add((out.events.len() + out.rejects.len()) as u64, Ordering::Relaxed);
            progress.update(bytes_read.load(Ordering::Relaxed), records.load(Ordering::Relaxed));
            let fatal = out.fatal.is_some();
            if tx.send(stage.prepare(&mut out, &mut common)).is_err() || fatal {
                return error;
            }
        }
    }
    parser.finish(&mut out);
    records.fetch_add((out.events.len() + out.rejects.len()) as u64, Ordering::Relaxed);
    progress.update(bytes_read.load(Ordering::Relaxed), records.load(Ordering::Relaxed));
    let _ = tx.send(stage.prepare(&mut out, &mut common));
    error
}

/// What turns parsed events into rows: the feed's defaults, validation, the hash, the experts.
struct Stage<'a> {
    feed: &'a Feed,
    received_at: Timestamp,
    experts: &'a [Box<dyn Expert>],
    /// What every event of the report gets unless it says otherwise.
    defaults: Event,
}

impl<'a> Stage<'a> {
    fn new(feed: &'a Feed, received_at: Timestamp, experts: &'a [Box<dyn Expert>]) -> Stage<'a> {
        let mut defaults = Event::default();
        Stage::fill(feed, received_at, &mut defaults);
        Stage { feed, received_at, experts, defaults }
    }

    /// The feed's defaults, its name and the time the report was received, where absent.
    fn fill(feed: &Feed, received_at: Timestamp, event: &mut Event) {
        feed.defaults.apply(event);
        if event.feed_name.is_none() {
            event.feed_name = Some(feed.name.as_str().into());
        }
        event.time_observation.get_or_insert(received_at);
    }

    /// Turns what the parser produced into rows, leaving `batch` empty with its buffers kept
    /// (fresh buffers for every batch cost more in page faults than the parsing itself).
    /// `common`, decided by the first batch, is what rows are stored as differences from: the
    /// defaults, and the values most of the batch's events share (the sinkhole's address, where
    /// enrichment came from; see [`Event::with_shared`]).
    fn prepare(&self, batch: &mut Output, common: &mut Option<Event>) -> Prepared {
        let mut prepared = Prepared {
            common: None,
            rows: Vec::with_capacity(batch.events.len()),
            rejects: std::mem::take(&mut batch.rejects),
            dropped: 0,
            fatal: batch.fatal.take(),
        };
        // Once the common fields are known, each kept event becomes its row at once, while it is
        // still in the cache; the first batch, and aggregation, need the batch's events first.
        let direct = common.as_ref().filter(|_| self.feed.aggregate.is_none());
        let mut kept = Vec::with_capacity(if direct.is_some() { 0 } else { batch.events.len() });
        for parsed in batch.events.drain(..) {
            let raw = &batch.raw[parsed.raw.clone()];
            let mut event = parsed.event;
            Stage::fill(self.feed, self.received_at, &mut event);
            if let Err(e) = event.validate() {
                prepared.rejects.push(Reject::new(parsed.position, e.to_string(), raw));
                continue;
            }
            let hash = event.hash();
            let mut record = Record { event, position: parsed.position, hash, routing: Default::default() };
            match run_experts(self.experts, &mut record) {
                Verdict::Keep => match direct {
                    Some(common) => prepared.rows.push(Row::new(&record, common)),
                    None => kept.push(record),
                },
                Verdict::Drop => prepared.dropped += 1,
                Verdict::Reject(reason) => prepared.rejects.push(Reject::new(parsed.position, reason, raw)),
            }
        }
        batch.raw.clear();
        if common.is_none() {
            let events: Vec<&Event> = kept.iter().map(|r| &r.event).collect();
            let first = self.defaults.with_shared(&events);
            prepared.common = Some(first.clone());
            *common = Some(first);
        }
        let common = common.as_ref().unwrap_or(&self.defaults);
        match &self.feed.aggregate {
            None => prepared.rows.extend(kept.iter().map(|r| Row::new(r, common))),
            Some(aggregation) => aggregation.rows(&self.feed.name, kept, common, &mut prepared.rows),
        }
        prepared
    }
}

fn run_experts(experts: &[Box<dyn Expert>], record: &mut Record) -> Verdict {
    for expert in experts {
        match expert.process(record) {
            Verdict::Keep => {}
            other => return other,
        }
    }
    Verdict::Keep
}

/// The writer (the calling thread): opens the store's writer with the first batch's common
/// fields, writes batches; returns the counts and the parser's report-level error, if it had
/// one.
fn write(
    lease: &Lease<'_>,
    distribution: Distribution,
    rx: Receiver<Prepared>,
) -> Result<(Counts, Option<String>), Error> {
    let (store, report) = (lease.store(), lease.report());
    let mut counts = Counts::default();
    let mut fatal = None;
    let mut written = farol_store::Written::default();
    let mut writer: Option<Box<dyn farol_store::EventWriter>> = None;
    for batch in rx {
        lease.keep()?;
        counts.dropped += batch.dropped;
        counts.rejects += batch.rejects.len() as u64;
        fatal = fatal.or(batch.fatal);
        let w = match (&mut writer, &batch.common) {
            (Some(w), _) => w,
            (None, common) => writer.insert(store.event_writer(
                report.id,
                common.as_ref().unwrap_or(&Event::default()),
                distribution,
            )?),
        };
        let w = w.write(batch.rows, batch.rejects)?;
        written.inserted += w.inserted;
        written.duplicates += w.duplicates;
    }
    if let Some(w) = &mut writer {
        let w = w.flush()?;
        written.inserted += w.inserted;
        written.duplicates += w.duplicates;
    }
    counts.events = written.inserted;
    counts.duplicates = written.duplicates;
    Ok((counts, fatal))
}
