//! The store writer: one thread that applies, in the order they were sent, the call
//! driver's writes (journal steps, seat standings, seat history, registrations, final
//! records, wrap-up file entries), so neither the driver nor the SIP handlers ever wait on
//! sled (sled can block for seconds on a busy disk). Its figures: [`metrics`].
//!
//! Writes are gathered in batches: a journal line, a seat event, a record or a wrap-up
//! entry waits at most [`WriterOptions::batch_window`] for others (or until
//! [`WriterOptions::max_batch`] are queued); a seat's standing and a registration are
//! taken at once. The first write of a window arms a `timerfd` and the writer wakes once,
//! at its end, for every write queued meanwhile: a batch costs it one wake-up, and a
//! sender no futex call ([`Wake`]). Each write is applied to sled as it is taken
//! (readers see it), unflushed, and the whole batch goes to the
//! commit log ([`super::wal`]) in one `write(2)` at its end. Journal lines and seat history
//! runs are the exceptions: logged with their batch, they reach sled at the next checkpoint
//! (journal lines have no reader before a restart, which replays the log first; the seat
//! history's reader reads the staged runs beside sled's, [`super::seat_log`]). What waits
//! for confirmation
//! (a final record, a wrap-up entry the console waits for) waits for the group commit:
//! once the oldest has waited [`WriterOptions::group_commit`] (or `max_batch` wait), one
//! `fdatasync` of the log covers all of them, whatever the batches they came in, and only
//! then is each confirmed. sled is flushed only at a checkpoint, every
//! [`WriterOptions::checkpoint`] (1 s; sooner if the log reaches
//! [`WriterOptions::log_bytes`]), which confirms what waited too, after which the log
//! starts afresh; the store replays the log when it is opened.
//!
//! What a crash can take:
//! - `kill -9`: nothing written by a finished batch (the log is in the page cache), so no
//!   record, wrap-up entry, journal line, seat event or registration, confirmed or not;
//!   only the batch still being gathered (≤ `batch_window`), whose records were not
//!   confirmed and whose calls come back `interrupted` from the journal.
//! - Power loss: every write of a batch that was confirmed, and every batch before it, is
//!   on disk. Records and entries not yet confirmed (logged ≤ `group_commit` ago) may be
//!   lost, and so may the journal lines, seat history, standings and registrations written
//!   since the last `fdatasync` (the last group commit or checkpoint, so at most
//!   `checkpoint` ago); a record not confirmed comes back `interrupted` if its journal
//!   line survived.
//!
//! If the log cannot be opened or written, the writer falls back to flushing sled for
//! each batch (as before the log), loudly.
//!
//! Per call, the batch keeps sled's work small: a call's journal lines are coalesced (only
//! its latest version in the batch is written), and a call whose final record is in the
//! same batch gets no journal line at all (its record supersedes it), and a seat's history
//! grows under one key per run of events ([`super::seat_log::SeatRun`]: a call's offer and
//! the seat's changes after it), rewritten whole, not one key an event. Every write is a
//! plain sled insert or remove, never an atomic sled batch or transaction: sled 0.34 seals
//! and writes out its IO buffer around each of those (a wake-up of its IO threads, a
//! `pwrite`, a `sync_file_range`), and the commit log already makes a write whole: a crash
//! between two keys of one entry is completed by the replay ([`super::wal::entry`]).
//!
//! A record's recording joins the same commit: the writer finishes it into the record as it
//! takes the record (the file's last writes: [`FinishRecording`], which hands the file over
//! still open), and before the log's `fdatasync` it syncs every recording file waiting
//! (`fdatasync` on that descriptor: no second open) and, once each, their directories (a new
//! file's entry); a record whose recording
//! could not be synced is stored with a `RECORDING_FAILED` event saying so. Until its
//! record is confirmed a recording may be lost to a power loss (not to a `kill -9`: the
//! file is in the page cache); after, both are on disk.
//!
//! Order: a call's journal lines are sent before its final record (the driver stops
//! journaling a call when it finishes), and the writer applies them in that order; a
//! journal line of a call whose record is already stored is dropped all the same, so a
//! late line never resurrects a finished call.

pub mod metrics;

use super::presence::StoredBinding;
use super::record::{CallRecord, FileEntry};
use super::seat_log::{Runs, SeatEvent};
use super::wal::{self, CommitLog, entry::Entry};
use super::{Store, StoreError};
use crate::acd::PauseReason;
use crate::sip::registrar::Binding;
use crate::time::EpochMillis;
use metrics::WriterMetrics;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use sas_core::id_map::IdMap;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Longest a write (a record, a journal line, a seat event) waits for others to share
    /// its batch: one wake-up and one `write(2)` of the log for all (`[store]
    /// batch_window_ms`). What a `kill -9` can take.
    pub batch_window: Duration,
    /// Longest a logged record or wrap-up entry waits for others to share its
    /// `fdatasync` (`[store] group_commit_ms`). What a power loss can take of writes not
    /// yet confirmed.
    pub group_commit: Duration,
    /// Most writes in a batch, and most confirmations waiting for one sync, whatever the
    /// windows.
    pub max_batch: usize,
    /// Longest the commit log holds writes before sled is flushed and the log starts
    /// afresh (`[store] checkpoint_ms`): what a restart may have to replay.
    pub checkpoint: Duration,
    /// Largest commit log, bytes: a batch that would pass it checkpoints instead.
    pub log_bytes: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            batch_window: Duration::from_millis(2),
            group_commit: Duration::from_millis(10),
            max_batch: 1024,
            checkpoint: Duration::from_secs(1),
            log_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How the senders wake the writer. The first write after the writer took the queue arms a
/// `timerfd` `batch_window` ahead (one `timerfd_settime`, no wake-up); the writer, waiting
/// on it, wakes once at the window's end and takes every write queued meanwhile, so a
/// batch costs it one wake-up, not one for its first write and another for its window's
/// end. A write that must not wait (a seat's standing, a registration) or that fills a
/// batch writes the `eventfd` instead: the writer wakes at once. The writer never blocks
/// on the queue itself, so sending never wakes it through the channel.
struct Wake {
    epoll: Epoll,
    window: TimerFd,
    now: EventFd,
    /// A window armed since the writer last took the queue (cleared before it takes it:
    /// a write queued after that arms another).
    armed: AtomicBool,
    /// Sent and not yet taken by the writer.
    queued: AtomicUsize,
    options: WriterOptions,
}

const WINDOW_TOKEN: u64 = 0;
const NOW_TOKEN: u64 = 1;

impl Wake {
    fn new(options: WriterOptions) -> std::io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let window = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )?;
        let now = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(&window, EpollEvent::new(EpollFlags::EPOLLIN, WINDOW_TOKEN))?;
        epoll.add(&now, EpollEvent::new(EpollFlags::EPOLLIN, NOW_TOKEN))?;
        Ok(Self {
            epoll,
            window,
            now,
            armed: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            options,
        })
    }

    /// Counts a write about to be queued (before it is: the writer takes it off the count
    /// once taken, never below zero); how many are queued with it.
    fn sending(&self) -> usize {
        self.queued.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// After a write is queued, `queued` with it: makes sure the writer takes it within the
    /// window (at once if `urgent` or if it fills a batch).
    fn sent(&self, queued: usize, urgent: bool) {
        let window = self.options.batch_window;
        if urgent || queued >= self.options.max_batch || window.is_zero() {
            self.wake_now();
        } else if !self.armed.swap(true, Ordering::SeqCst) {
            let end = Expiration::OneShot(TimeSpec::from_duration(window));
            if let Err(e) = self.window.set(end, TimerSetTimeFlags::empty()) {
                tracing::warn!(error = %e, "store writer: timerfd not armed, waking it now");
                self.wake_now();
            }
        }
    }

    fn wake_now(&self) {
        // A full counter (never, in practice) means a wake-up is pending anyway.
        self.now.write(1).ok();
    }

    fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits for a window's end, a sender's wake-up, or `timeout` (the writer's own
    /// deadlines; none: for ever); then lets the next write arm a window again. The caller
    /// takes the queue after this, so every write is taken by that or has a wake-up ahead.
    fn wait(&self, timeout: Option<Duration>) {
        let timeout = timeout.map_or(EpollTimeout::NONE, |left| {
            // Whole milliseconds rounded up: never woken before a deadline.
            EpollTimeout::from(left.as_micros().div_ceil(1000).min(60_000) as u16)
        });
        let mut events = [EpollEvent::empty(); 2];
        if let Err(e) = self.epoll.wait(&mut events, timeout)
            && e != nix::errno::Errno::EINTR
        {
            tracing::error!(error = %e, "store writer: epoll_wait failed");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Both read without blocking, whichever fired: what fires later is spurious.
        self.window.wait().ok();
        self.now.read().ok();
        self.armed.store(false, Ordering::SeqCst);
    }
}

/// Finishes a call's recording into its record (its last writes, its header, its hash) and
/// hands over the file (its path, and the file still open) to sync with the record. It runs
/// on the writer's thread: finishing is disk IO (a file created for a call where nothing was
/// heard, a page-cache write that a busy disk can stall), kept off the async workers that
/// carry every other call's SIP.
pub type FinishRecording = Box<dyn FnOnce(&mut CallRecord) -> Option<RecordingFile> + Send>;

/// A finished recording's file, open, not yet synced, and where it is.
pub type RecordingFile = (PathBuf, std::fs::File);

/// The confirmation of a final record: `Ok` once it is on disk.
pub type Confirmation = oneshot::Receiver<Result<(), String>>;

/// Called on the writer's thread with a write's outcome (`Ok` once it is on disk), or at
/// once with the error if the writer is gone. Short work only: it holds up the batch after.
pub type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

fn confirmation() -> (Done, Confirmation) {
    let (tx, rx) = oneshot::channel();
    (Box::new(move |outcome| _ = tx.send(outcome)), rx)
}

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
    Bindings {
        user: String,
        bindings: Vec<Binding>,
    },
    /// A wrap-up entry, answered once flushed.
    File {
        call: String,
        entry: Box<FileEntry>,
        done: Done,
    },
    Record {
        record: Box<CallRecord>,
        /// Its recording, finished into the record and synced before it is flushed.
        recording: Option<FinishRecording>,
        done: Done,
    },
    /// Tests: sled flushed now (what a restart finds without replaying the log).
    #[cfg(test)]
    Checkpoint(Done),
}

/// The sending side, cheap to clone; the thread ends (after a last flush) when every
/// clone is dropped.
#[derive(Clone)]
pub struct StoreWriter {
    senders: Arc<Senders>,
    metrics: WriterMetrics,
}

/// The queue's one sender and the writer's wake-ups, shared by every clone.
struct Senders {
    queue: mpsc::Sender<Write>,
    wake: Arc<Wake>,
}

impl Drop for Senders {
    fn drop(&mut self) {
        // The queue closes with its sender; woken, the writer finds it closed and ends.
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.queue, closed));
        self.wake.wake_now();
    }
}

impl StoreWriter {
    /// Starts the writer thread on `store`.
    pub fn start(store: Store, options: WriterOptions) -> Self {
        let (queue, writes) = mpsc::channel();
        let metrics = WriterMetrics::default();
        let counted = metrics.clone();
        let wake = Arc::new(Wake::new(options).expect("store writer: epoll, timerfd, eventfd"));
        let waking = Arc::clone(&wake);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&store, &writes, &waking, options, &counted))
            .expect("spawn the store writer thread");
        Self {
            senders: Arc::new(Senders { queue, wake }),
            metrics,
        }
    }

    /// What the writer did so far (to register on `/metrics`).
    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
    }

    /// Journals the current version of live calls' records.
    pub fn journal(&self, now: EpochMillis, records: Vec<CallRecord>) {
        self.send(Write::Journal { now, records });
    }

    /// Stores a seat's standing pause.
    pub fn seat_standing(&self, seat: String, paused: Option<PauseReason>) {
        self.send_now(Write::Standing { seat, paused });
    }

    /// Appends to a seat's history.
    pub fn seat_event(&self, event: SeatEvent) {
        self.send(Write::SeatEvent(event));
    }

    /// Replaces `user`'s stored registrations (none: forgotten).
    pub fn bindings(&self, user: String, bindings: Vec<Binding>) {
        self.send_now(Write::Bindings { user, bindings });
    }

    /// Adds a wrap-up entry to the file of a call that is over (see
    /// [`Store::append_file`]); the answer comes once it is on disk.
    pub fn file_entry(&self, call: String, entry: FileEntry) -> Confirmation {
        let (done, confirmed) = confirmation();
        let entry = Box::new(entry);
        self.send(Write::File { call, entry, done });
        confirmed
    }

    /// Stores a final record (it leaves the journal) once its `recording` is finished
    /// into it, and syncs the recording's file; the answer comes once both are on disk.
    pub fn record(&self, record: CallRecord, recording: Option<FinishRecording>) -> Confirmation {
        let (done, confirmed) = confirmation();
        self.record_then(record, recording, done);
        confirmed
    }

    /// [`record`](Self::record), with `done` called on the writer's thread once both are
    /// on disk: no task waits for it (a call's last write costs no wake-up of an async
    /// worker).
    pub fn record_then(&self, record: CallRecord, recording: Option<FinishRecording>, done: Done) {
        let record = Box::new(record);
        self.send(Write::Record {
            record,
            recording,
            done,
        });
    }

    /// Tests: commits what is queued and flushes sled (the commit log then starts afresh).
    #[cfg(test)]
    pub(crate) fn checkpoint(&self) -> Confirmation {
        let (done, confirmed) = confirmation();
        self.send_now(Write::Checkpoint(done));
        confirmed
    }

    /// Queues a write to share the batch window.
    fn send(&self, write: Write) {
        self.queue(write, false);
    }

    /// Queues a write taken at once (a batch of its own unless others are queued).
    fn send_now(&self, write: Write) {
        self.queue(write, true);
    }

    fn queue(&self, write: Write, urgent: bool) {
        let wake = &self.senders.wake;
        let queued = wake.sending();
        match self.senders.queue.send(write) {
            Ok(()) => wake.sent(queued, urgent),
            Err(mpsc::SendError(write)) => {
                wake.taken();
                tracing::error!("store writer gone: write lost");
                if let Write::File { done, .. } | Write::Record { done, .. } = write {
                    done(Err("store writer gone".into()));
                }
            }
        }
    }
}

fn run(
    store: &Store,
    writes: &mpsc::Receiver<Write>,
    wake: &Wake,
    options: WriterOptions,
    metrics: &WriterMetrics,
) {
    let mut durable = Durable::open(store, options);
    let mut batch = Batch::default();
    // A batch filled up with more queued: take them without waiting.
    let mut full = false;
    loop {
        if !full {
            // Idle with confirmations to settle or frames in the log: wake to sync or
            // checkpoint once due; the heap collected.
            let now = Instant::now();
            let due = [durable.checkpoint_due(), durable.sync_due()]
                .into_iter()
                .flatten()
                .map(|due| due.saturating_duration_since(now));
            let collect_in = crate::heap::collect_before_waiting();
            wake.wait(due.chain(collect_in).min());
        }
        let mut closed = false;
        while batch.applied < options.max_batch {
            match writes.try_recv() {
                Ok(write) => {
                    wake.taken();
                    #[cfg(test)]
                    if let Write::Checkpoint(done) = write {
                        if batch.applied > 0 {
                            batch.commit(store, &mut durable, metrics);
                        }
                        done(durable.checkpoint(store, metrics));
                        continue;
                    }
                    batch.apply(store, write);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        full = batch.applied >= options.max_batch;
        if batch.applied > 0 {
            batch.commit(store, &mut durable, metrics);
        }
        durable.settle_if_due(store, metrics);
        if closed {
            break;
        }
    }
    // Every sender gone: a last checkpoint confirms what waited and leaves nothing to
    // replay (a failure is logged).
    durable.checkpoint(store, metrics).ok();
}

/// Confirmations whose writes are logged, not yet synced, and the recordings to sync
/// before them: settled together, once the oldest has waited
/// [`WriterOptions::group_commit`] (group commit).
#[derive(Default)]
struct Unsynced {
    waiting: Vec<(String, Done)>,
    /// Recordings to sync before the log, with their calls' ids.
    recordings: Vec<(RecordingFile, String)>,
    /// Outbox rows added, told to the shipper once durable.
    shipped: u64,
    /// Writes of the batches they came with (the metrics' writes per flush).
    writes: usize,
    /// When the oldest of them was taken.
    since: Option<Instant>,
}

/// How the writer makes a batch durable: its frame in the commit log, at once; an
/// `fdatasync` of the log (the batch's recordings first) when confirmations have waited
/// their window; sled flushed at checkpoints only. Without a log (it could not be
/// opened) every settlement flushes sled, as before the log.
struct Durable {
    log: Option<CommitLog>,
    options: WriterOptions,
    /// When the log got its first frame since the last checkpoint.
    dirty_since: Option<Instant>,
    unsynced: Unsynced,
    /// Live calls' latest journal lines logged since the last checkpoint: in the log, not
    /// yet in sled, which takes them before it is flushed (they are only read at start,
    /// after the log is replayed).
    journal: IdMap<String, (EpochMillis, CallRecord)>,
}

impl Durable {
    fn open(store: &Store, options: WriterOptions) -> Self {
        // A new generation makes any frame left (a writer before this one in this
        // process) stale: sled must hold them first.
        let log = store.flush().map_err(|e| e.to_string()).and_then(|()| {
            CommitLog::open(store.log_path(), options.log_bytes).map_err(|e| e.to_string())
        });
        let log = log
            .inspect_err(|e| {
                tracing::error!(error = %e, "commit log not opened: sled is flushed per batch");
            })
            .ok();
        Self {
            log,
            options,
            dirty_since: None,
            unsynced: Unsynced::default(),
            journal: IdMap::default(),
        }
    }

    /// Journal lines just logged: sled takes them at the next checkpoint. Calls `over`
    /// (their record stored) are out of it.
    fn journal_logged<'a>(
        &mut self,
        lines: IdMap<String, (EpochMillis, CallRecord)>,
        over: impl Iterator<Item = &'a String>,
    ) {
        self.journal.extend(lines);
        for id in over {
            self.journal.remove(id);
        }
    }

    fn checkpoint_due(&self) -> Option<Instant> {
        self.dirty_since
            .map(|since| since + self.options.checkpoint)
    }

    /// When the confirmations waiting are to be synced; at once when they fill a batch.
    fn sync_due(&self) -> Option<Instant> {
        let since = self.unsynced.since?;
        if self.unsynced.waiting.len() >= self.options.max_batch {
            return Some(since);
        }
        Some(since + self.options.group_commit)
    }

    fn settle_if_due(&mut self, store: &Store, metrics: &WriterMetrics) {
        let now = Instant::now();
        if self.checkpoint_due().is_some_and(|due| due <= now) {
            self.checkpoint(store, metrics).ok();
        } else if self.sync_due().is_some_and(|due| due <= now) {
            self.settle(store, metrics, false).ok();
        }
    }

    /// A committed batch's confirmations, settled with the next sync.
    fn defer(&mut self, batch: Unsynced) {
        let unsynced = &mut self.unsynced;
        unsynced.waiting.extend(batch.waiting);
        unsynced.recordings.extend(batch.recordings);
        unsynced.shipped += batch.shipped;
        unsynced.writes += batch.writes;
        unsynced.since = match (unsynced.since, batch.since) {
            (Some(older), Some(newer)) => Some(older.min(newer)),
            (older, newer) => older.or(newer),
        };
    }

    /// Logs a batch's frame (not synced). `false`: not in the log (no log, full, or an
    /// error): only a flush of sled makes the batch durable.
    fn append(&mut self, entries: &[Entry<'_>]) -> bool {
        let Some(log) = self.log.as_mut() else {
            return false;
        };
        let appended = wal::entry::encode(entries)
            .map_err(std::io::Error::other)
            .and_then(|payload| log.append(&payload));
        match appended {
            Ok(true) => {
                self.dirty_since.get_or_insert_with(Instant::now);
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(error = %e, "commit log not written: flushing sled instead");
                false
            }
        }
    }

    /// Flushes sled (confirming what waited), then starts the log afresh: what it held is
    /// in sled, on disk.
    fn checkpoint(&mut self, store: &Store, metrics: &WriterMetrics) -> Result<(), String> {
        self.settle(store, metrics, true)
    }

    /// Makes what waits durable, then confirms it: its recordings synced (a record whose
    /// recording was not rewritten to say so), then one `fdatasync` of the log, or a
    /// flush of sled (`checkpoint`, or no log to sync).
    fn settle(
        &mut self,
        store: &Store,
        metrics: &WriterMetrics,
        checkpoint: bool,
    ) -> Result<(), String> {
        let mut unsynced = std::mem::take(&mut self.unsynced);
        let started = Instant::now();
        let recordings = std::mem::take(&mut unsynced.recordings);
        let rewritten = sync_recordings(recordings, store, metrics, &mut unsynced.shipped);
        // The log's `fdatasync` makes it all durable, unless this is a checkpoint or the
        // rewrites could not be logged or the log not synced: then sled's flush does.
        let synced =
            !checkpoint && (rewritten.is_empty() || self.append(&rewritten)) && self.sync_log();
        let flushed = if synced {
            Ok(())
        } else {
            self.flush_sled(store, metrics)
        };
        if !unsynced.waiting.is_empty() {
            metrics.flushed(unsynced.writes, started.elapsed());
            if flushed.is_ok() {
                metrics.confirmed(unsynced.waiting.len());
            }
            tracing::debug!(records = unsynced.waiting.len(), "records flushed together");
        }
        if flushed.is_ok() {
            store.outbox_state.added(unsynced.shipped);
        }
        for (id, done) in unsynced.waiting {
            if let Err(e) = &flushed {
                tracing::error!(call = %id, error = %e, "call record NOT flushed");
            }
            done(flushed.clone());
        }
        flushed
    }

    /// Waits until the frames logged are on disk (`fdatasync`); `false` if there is no log
    /// or it failed (only sled's flush can make them durable then).
    fn sync_log(&self) -> bool {
        let Some(log) = &self.log else {
            return false;
        };
        log.sync()
            .inspect_err(|e| tracing::error!(error = %e, "commit log not synced: flushing sled"))
            .is_ok()
    }

    fn flush_sled(&mut self, store: &Store, metrics: &WriterMetrics) -> Result<(), String> {
        let started = Instant::now();
        // The log starts afresh after the flush: its journal lines and seat history runs
        // must be in sled first.
        let journal = std::mem::take(&mut self.journal);
        let written = match live_journal(&journal, store) {
            Some(entry) => store.apply(&entry).map(drop),
            None => Ok(()),
        }
        .and_then(|()| store.write_staged_runs());
        if let Err(e) = written {
            tracing::error!(error = %e, "journal or seat history NOT written: the log keeps them");
            self.journal = journal;
            self.dirty_since = self.dirty_since.map(|_| Instant::now());
            return Err(e.to_string());
        }
        if let Err(e) = store.flush() {
            tracing::error!(error = %e, "store NOT flushed: the commit log keeps its frames");
            // Retried an interval later, not in a loop.
            self.dirty_since = self.dirty_since.map(|_| Instant::now());
            return Err(e.to_string());
        }
        metrics.checkpointed(started.elapsed());
        self.dirty_since = None;
        if let Some(log) = self.log.as_mut()
            && let Err(e) = log.reset()
        {
            tracing::error!(error = %e, "commit log not reset: sled is flushed per batch");
            self.log = None;
        }
        Ok(())
    }
}

/// Syncs recordings (their data: `fdatasync`), then each directory once. A record whose
/// recording is not on disk is rewritten to say so: the entries returned, applied to sled,
/// for the log (their outbox rows added to `shipped_total`).
fn sync_recordings(
    recordings: Vec<(RecordingFile, String)>,
    store: &Store,
    metrics: &WriterMetrics,
    shipped_total: &mut u64,
) -> Vec<Entry<'static>> {
    let mut dirs = BTreeSet::new();
    let mut failed = Vec::new();
    for ((file, open), call) in recordings {
        match open.sync_data() {
            Ok(()) => {
                metrics.recording_synced();
                if let Some(dir) = file.parent() {
                    dirs.insert(dir.to_path_buf());
                }
            }
            Err(e) => failed.push((call, e.to_string())),
        }
    }
    for dir in dirs {
        // The new file's entry in its directory.
        let synced = std::fs::File::open(&dir).and_then(|d| d.sync_all());
        if let Err(e) = synced {
            tracing::error!(dir = %dir.display(), error = %e, "recordings directory NOT synced");
        }
    }
    let mut rewritten = Vec::new();
    for (call, why) in failed {
        tracing::error!(%call, error = %why, "recording NOT synced to disk");
        let why = format!("not synced to disk: {why}");
        // Read back: the stored record holds what was merged in since.
        let entry = store.get_call(&call).and_then(|stored| {
            let Some(mut record) = stored else {
                return Ok(None);
            };
            record.recording_failed(&why);
            let entry = store.stored_final(Box::new(record), store.outbox_state.on())?;
            let shipped = store.apply(&entry)?;
            Ok(Some((entry, shipped)))
        });
        match entry {
            Ok(Some((entry, shipped))) => {
                rewritten.push(entry);
                *shipped_total += shipped;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(%call, error = %e, "call record NOT rewritten"),
        }
    }
    rewritten
}

/// The journal lines of calls not stored yet (a late line must not resurrect a call
/// whose record is in, from this batch or an earlier one).
fn live_journal<'a>(
    journal: &'a IdMap<String, (EpochMillis, CallRecord)>,
    store: &Store,
) -> Option<Entry<'a>> {
    let lines: Vec<(EpochMillis, Cow<'a, CallRecord>)> = (journal.values())
        .filter(|(_, r)| !store.calls.contains_key(r.id.as_bytes()).unwrap_or(false))
        .map(|(at, r)| (*at, Cow::Borrowed(r)))
        .collect();
    (!lines.is_empty()).then_some(Entry::Journal { lines })
}

/// Writes gathered since the last commit, and those waiting for confirmation (handed to
/// the group commit at its end).
#[derive(Default)]
struct Batch {
    applied: usize,
    /// When the batch first held something to write or confirm (its window opened).
    opened: Option<Instant>,
    /// What waits for confirmation, its recordings and outbox rows: the group commit's
    /// once the batch is logged.
    pending: Unsynced,
    /// Each live call's latest journal line (logged at commit, unless its record came).
    journal: IdMap<String, (EpochMillis, CallRecord)>,
    /// Each seat's history runs, those changed written at commit (kept from batch to
    /// batch: a run grows over several).
    seat_runs: Runs,
    /// What was applied to sled, in order, for the commit log (journal lines and seat
    /// events join at commit).
    logged: Vec<Entry<'static>>,
}

impl Batch {
    fn apply(&mut self, store: &Store, write: Write) {
        self.applied += 1;
        match write {
            #[cfg(test)]
            Write::Checkpoint(done) => done(Err("taken by the run loop".into())),
            Write::Journal { now, records } => {
                self.opened.get_or_insert_with(Instant::now);
                for record in records {
                    self.journal.insert(record.id.clone(), (now, record));
                }
            }
            Write::Standing { seat, paused } => {
                let entry = Entry::Standing {
                    seat: seat.clone(),
                    paused,
                };
                if let Err(e) = self.write(store, Ok(entry)) {
                    tracing::warn!(%seat, error = %e, "seat standing not stored");
                }
            }
            Write::SeatEvent(event) => {
                self.opened.get_or_insert_with(Instant::now);
                self.seat_runs.add(event);
            }
            Write::Bindings { user, bindings } => {
                let bindings: Vec<StoredBinding> = bindings.iter().map(Into::into).collect();
                let entry = Entry::Bindings {
                    user: user.clone(),
                    bindings,
                };
                if let Err(e) = self.write(store, Ok(entry)) {
                    tracing::warn!(seat = %user, error = %e, "registration not stored");
                }
            }
            Write::File { call, entry, done } => {
                let filed = store.filed(&call, &entry, store.outbox_state.on());
                match self.write(store, filed) {
                    Ok(()) => {
                        self.opened.get_or_insert_with(Instant::now);
                        self.pending.waiting.push((call, done));
                    }
                    Err(e) => {
                        done(Err(e.to_string()));
                    }
                }
            }
            Write::Record {
                mut record,
                recording,
                done,
            } => {
                let recording = recording.and_then(|finish| finish(&mut record));
                let id = record.id.clone();
                let stored = store.stored_final(record, store.outbox_state.on());
                match self.write(store, stored) {
                    Ok(()) => {
                        // Its record supersedes the journal line it would have had.
                        self.journal.remove(&id);
                        self.opened.get_or_insert_with(Instant::now);
                        if let Some(file) = recording {
                            self.pending.recordings.push((file, id.clone()));
                        }
                        self.pending.waiting.push((id, done));
                    }
                    Err(e) => {
                        done(Err(e.to_string()));
                    }
                }
            }
        }
    }

    /// Applies one entry to sled (plain inserts and removes) and keeps it for the log;
    /// its outbox rows are told to the shipper once the batch is durable. An entry sled
    /// failed to take is not logged (its caller says so); keys it wrote before failing are
    /// what a crash could have left too.
    fn write(
        &mut self,
        store: &Store,
        entry: Result<Entry<'static>, StoreError>,
    ) -> Result<(), StoreError> {
        let entry = entry?;
        self.pending.shipped += store.apply(&entry)?;
        self.logged.push(entry);
        Ok(())
    }

    /// The seat history runs changed, logged with the batch and staged: sled takes them at
    /// the next checkpoint (a run grows over several batches: sled would take each version).
    fn log_seat_runs(&mut self, store: &Store) {
        let runs = self.seat_runs.take_unwritten();
        if runs.is_empty() {
            return;
        }
        store.stage_seat_runs(&runs);
        self.logged.push(Entry::Seats { runs });
    }

    /// The batch's frame in the commit log, its confirmations left to the next sync.
    fn commit(&mut self, store: &Store, durable: &mut Durable, metrics: &WriterMetrics) {
        self.log_seat_runs(store);
        let journal = std::mem::take(&mut self.journal);
        let mut logged: Vec<Entry<'_>> = std::mem::take(&mut self.logged);
        // Journal lines go to the log only: sled takes them at the next checkpoint (a
        // call's lines cost it nothing if its record comes before).
        let lines = live_journal(&journal, store);
        if let Some(Entry::Journal { lines }) = &lines {
            metrics.journaled(lines.len());
        }
        logged.extend(lines);
        let in_log = logged.is_empty() || durable.append(&logged);
        drop(logged);
        // What waits for confirmation is of calls that are over (a record, a wrap-up entry).
        let over = self.pending.waiting.iter().map(|(id, _)| id);
        durable.journal_logged(journal, over);
        let mut pending = std::mem::take(&mut self.pending);
        let confirming = !pending.waiting.is_empty();
        let shipped = pending.shipped;
        if confirming {
            pending.writes = self.applied;
            pending.since = self.opened;
            durable.defer(pending);
        }
        let durable_now = if in_log {
            Ok(())
        } else {
            // Only sled can hold it now (kill -9 must not take it): flush at once.
            durable.checkpoint(store, metrics)
        };
        if !confirming && durable_now.is_ok() {
            store.outbox_state.added(shipped);
        }
        *self = Self {
            seat_runs: std::mem::take(&mut self.seat_runs),
            ..Self::default()
        };
    }
}

#[cfg(test)]
mod tests;
