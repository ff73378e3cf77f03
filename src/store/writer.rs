//! The store writer: one thread that applies, in the order they were sent, the call
//! driver's writes (journal steps, seat standings, seat history, final records), so the
//! driver never waits on sled (sled can block for seconds on a busy disk).
//!
//! Final records are group-committed: the writer applies every write waiting in its
//! queue, and once a batch holds a record it goes on collecting for at most
//! [`WriterOptions::group_commit`] (or [`WriterOptions::max_batch`] writes), then does one
//! `flush()` (fsync) for the whole batch and only then confirms each record. A record
//! confirmed is on disk; a record not yet confirmed when the process dies (kill -9, power
//! loss) still has its journal line, so the restart closes it as `interrupted`: what a
//! crash can take is the last group-commit window plus the flush in progress, never a
//! confirmed record. Journal and seat writes are not flushed on their own (sled writes
//! them out every `store.flush_every_ms`).
//!
//! Order: a call's journal lines are sent before its final record (the driver stops
//! journaling a call when it finishes), and the writer applies them in that order; a
//! journal line of a call whose record is already stored is dropped all the same, so a
//! late line never resurrects a finished call.

use super::record::CallRecord;
use super::seat_log::SeatEvent;
use super::{Store, StoreError};
use crate::acd::PauseReason;
use crate::time::EpochMillis;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Longest a finished record waits for others to share its flush.
    pub group_commit: Duration,
    /// Most writes applied before a flush, whatever the window.
    pub max_batch: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            group_commit: Duration::from_millis(2),
            max_batch: 1024,
        }
    }
}

/// The confirmation of a final record: `Ok` once it is on disk.
pub type Confirmation = oneshot::Receiver<Result<(), String>>;

/// One write, in the driver's order.
enum Write {
    Journal {
        now: EpochMillis,
        records: Vec<CallRecord>,
    },
    Standing {
        seat: String,
        paused: Option<PauseReason>,
    },
    SeatEvent(SeatEvent),
    Record {
        record: Box<CallRecord>,
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// The sending side, cheap to clone; the thread ends (after a last flush) when every
/// clone is dropped.
#[derive(Clone)]
pub struct StoreWriter {
    queue: mpsc::Sender<Write>,
    stats: Arc<WriterStats>,
}

/// What the writer did so far.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Flushes (fsyncs) for records.
    pub flushes: AtomicU64,
    /// Records confirmed on disk.
    pub records: AtomicU64,
}

impl StoreWriter {
    /// Starts the writer thread on `store`.
    pub fn start(store: Store, options: WriterOptions) -> Self {
        let (queue, writes) = mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let counted = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&store, &writes, options, &counted))
            .expect("spawn the store writer thread");
        Self { queue, stats }
    }

    /// Flushes and records so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Journals the current version of live calls' records.
    pub fn journal(&self, now: EpochMillis, records: Vec<CallRecord>) {
        self.send(Write::Journal { now, records });
    }

    /// Stores a seat's standing pause.
    pub fn seat_standing(&self, seat: String, paused: Option<PauseReason>) {
        self.send(Write::Standing { seat, paused });
    }

    /// Appends to a seat's history.
    pub fn seat_event(&self, event: SeatEvent) {
        self.send(Write::SeatEvent(event));
    }

    /// Stores a final record (it leaves the journal); the answer comes once it is on disk.
    pub fn record(&self, record: CallRecord) -> Confirmation {
        let (done, confirmed) = oneshot::channel();
        let record = Box::new(record);
        self.send(Write::Record { record, done });
        confirmed
    }

    fn send(&self, write: Write) {
        if self.queue.send(write).is_err() {
            tracing::error!("store writer gone: write lost");
        }
    }
}

fn run(store: &Store, writes: &mpsc::Receiver<Write>, options: WriterOptions, stats: &WriterStats) {
    let mut batch = Batch::default();
    while let Ok(first) = writes.recv() {
        batch.apply(store, first);
        loop {
            if batch.applied >= options.max_batch {
                break;
            }
            let next = match batch.first_record {
                // A record waits: collect until its window closes.
                Some(since) => match options.group_commit.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => writes.recv_timeout(left).ok(),
                    _ => None,
                },
                None => writes.try_recv().ok(),
            };
            match next {
                Some(write) => batch.apply(store, write),
                None => break,
            }
        }
        batch.commit(store, stats);
    }
}

/// Writes applied since the last flush, and the records waiting for it.
#[derive(Default)]
struct Batch {
    applied: usize,
    first_record: Option<Instant>,
    /// Outbox rows added, told to the shipper once flushed.
    shipped: u64,
    waiting: Vec<(String, oneshot::Sender<Result<(), String>>)>,
}

impl Batch {
    fn apply(&mut self, store: &Store, write: Write) {
        self.applied += 1;
        match write {
            Write::Journal { now, records } => {
                // A call already stored is over: its late line must not resurrect it.
                let live: Vec<&CallRecord> = records
                    .iter()
                    .filter(|r| !store.calls.contains_key(r.id.as_bytes()).unwrap_or(false))
                    .collect();
                if let Err(e) = store.journal(now, &live) {
                    tracing::warn!(error = %e, calls = live.len(), "call journal not written");
                }
            }
            Write::Standing { seat, paused } => {
                if let Err(e) = store.put_seat_standing(&seat, paused) {
                    tracing::warn!(%seat, error = %e, "seat standing not stored");
                }
            }
            Write::SeatEvent(event) => {
                if let Err(e) = store.put_seat_event(&event) {
                    tracing::warn!(seat = %event.seat, error = %e, "seat history not stored");
                }
            }
            Write::Record { record, done } => match store.put_call_unflushed(&record) {
                Ok(shipped) => {
                    self.shipped += shipped;
                    self.first_record.get_or_insert_with(Instant::now);
                    self.waiting.push((record.id.clone(), done));
                }
                Err(e) => {
                    done.send(Err(e.to_string())).ok();
                }
            },
        }
    }

    /// One flush for the batch, then each record's confirmation.
    fn commit(&mut self, store: &Store, stats: &WriterStats) {
        let waiting = std::mem::take(&mut self.waiting);
        if !waiting.is_empty() {
            let flushed = store.flush().map_err(|e: StoreError| e.to_string());
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            if flushed.is_ok() {
                stats
                    .records
                    .fetch_add(waiting.len() as u64, Ordering::Relaxed);
            }
            tracing::debug!(records = waiting.len(), "records flushed together");
            if flushed.is_ok() {
                store.outbox_state.added(self.shipped);
            }
            for (id, done) in waiting {
                if let Err(e) = &flushed {
                    tracing::error!(call = %id, error = %e, "call record NOT flushed");
                }
                done.send(flushed.clone()).ok();
            }
        }
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests;
