//! The store writer's figures on `/metrics`: flushes, writes per flush (the group commit's
//! batch), flush latency (recordings synced plus sled's flush), recordings synced and
//! journal lines written (after coalescing), checkpoints (sled flushed, commit log reset)
//! and how long each took.
//! Registered with the app's registry by whoever starts the writer.

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use std::time::Duration;

/// The writer's metrics (live from the start; on `/metrics` once registered).
#[derive(Clone)]
pub struct WriterMetrics {
    flushes: IntCounter,
    confirmed: IntCounter,
    batch: Histogram,
    latency: Histogram,
    recordings: IntCounter,
    journal_lines: IntCounter,
    checkpoints: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("static metric");
        let histogram = |opts: HistogramOpts| Histogram::with_opts(opts).expect("static metric");
        Self {
            flushes: counter(
                "store_writer_flushes_total",
                "Flushes (fsyncs) by the store writer, one per group commit",
            ),
            confirmed: counter(
                "store_writer_confirmed_total",
                "Call records and wrap-up entries confirmed on disk",
            ),
            batch: histogram(
                HistogramOpts::new(
                    "store_writer_batch_writes",
                    "Writes (records, file entries, journal and seat writes) per flush",
                )
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 12).expect("static")),
            ),
            latency: histogram(
                HistogramOpts::new(
                    "store_writer_flush_seconds",
                    "Time a group commit takes: recordings synced, then the store flushed",
                )
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14).expect("static")),
            ),
            recordings: counter(
                "store_writer_recordings_synced_total",
                "Recording files synced with their call records",
            ),
            journal_lines: counter(
                "store_writer_journal_lines_total",
                "Call journal lines written (one per live call and batch; none for a call \
                 whose record is in the same batch)",
            ),
            checkpoints: histogram(
                HistogramOpts::new(
                    "store_writer_checkpoint_seconds",
                    "Checkpoints (sled flushed, the commit log started afresh) and how long \
                     sled's flush took",
                )
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14).expect("static")),
            ),
        }
    }
}

impl WriterMetrics {
    /// Puts the metrics on `registry` (the app's, prefixed `sas_`).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.flushes.clone()))?;
        registry.register(Box::new(self.confirmed.clone()))?;
        registry.register(Box::new(self.batch.clone()))?;
        registry.register(Box::new(self.latency.clone()))?;
        registry.register(Box::new(self.recordings.clone()))?;
        registry.register(Box::new(self.journal_lines.clone()))?;
        registry.register(Box::new(self.checkpoints.clone()))
    }

    /// One checkpoint (sled flushed, the commit log reset), whose flush took `took`.
    pub(super) fn checkpointed(&self, took: Duration) {
        self.checkpoints.observe(took.as_secs_f64());
    }

    /// Checkpoints so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.get_sample_count()
    }

    /// One group commit of `writes` writes that took `took`.
    pub(super) fn flushed(&self, writes: usize, took: Duration) {
        self.flushes.inc();
        self.batch.observe(writes as f64);
        self.latency.observe(took.as_secs_f64());
    }

    /// `n` records and entries confirmed on disk.
    pub(super) fn confirmed(&self, n: usize) {
        self.confirmed.inc_by(n as u64);
    }

    /// Flushes so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.get()
    }

    /// Records and entries confirmed so far.
    pub fn confirmed_writes(&self) -> u64 {
        self.confirmed.get()
    }

    /// Recordings synced so far.
    pub fn recordings_synced(&self) -> u64 {
        self.recordings.get()
    }

    /// Journal lines written so far.
    pub fn journal_lines(&self) -> u64 {
        self.journal_lines.get()
    }

    /// `n` journal lines written.
    pub(super) fn journaled(&self, n: usize) {
        self.journal_lines.inc_by(n as u64);
    }

    /// A recording synced.
    pub(super) fn recording_synced(&self) {
        self.recordings.inc();
    }
}
