//! Durable storage in sled: call records, keyed by their time-sortable id, and the `audit`
//! log, each seat's history (`seat_log`); `recordings` owns the recording files (layout, retention purge, audited reads).
//!
//! Records are written when a call ends and flushed before the write returns, so a crash
//! never loses a finished call; while it lasts, each call is kept in the `journal`
//! ([`journal`]), so a crash leaves a record of the calls in flight too. Registrations and
//! seat pauses survive a restart ([`presence`]). A seat's wrap-up completes the file of a call already over
//! ([`Store::append_file`]), whether its record is written yet or not. The CLI opens the same database read-side while the router
//! runs (sled allows one process: the CLI then reads through the router's HTTP API instead).
//! The call driver writes through the [`writer`] thread (ordered, group-committed in the
//! commit log [`wal`], sled flushed only at checkpoints), never on its own loop; opening
//! the store replays what the log holds.
//! With a shared store configured, records and audit entries also go to the [`outbox`],
//! with the data they carry, for the shipper to send to PostgreSQL.

/// The call record is the core's (`sas_core::record`); its path here is kept.
pub use sas_core::record;

pub mod audit;
pub mod journal;
pub mod line_switch;
pub mod outbox;
pub mod presence;
pub mod recordings;
pub mod reports;
pub mod seat_log;
pub mod secrets;
pub mod wal;
pub mod writer;

use record::{CallRecord, FileEntry};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Storage failures.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled failed (IO, corruption, or the database is locked by another process).
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// A record could not be (de)serialised.
    #[error("record encoding error: {0}")]
    Encoding(#[from] serde_json::Error),
    /// An outbox key is not a sled id (8 bytes): the tree was written by something else.
    #[error("outbox key of {0} bytes, not 8")]
    OutboxKey(usize),
    /// The commit log ([`wal`]) could not be read or reset.
    #[error("commit log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The call store.
#[derive(Clone)]
pub struct Store {
    calls: sled::Tree,
    /// Wrap-up file entries of calls whose record is not written yet, by call id.
    late_file: sled::Tree,
    audit_log: sled::Tree,
    seat_log: sled::Tree,
    /// Seat history runs in the commit log, not yet in sled ([`seat_log`]).
    staged_runs: seat_log::StagedRuns,
    /// Live calls' records, by call id ([`journal`]).
    journal: sled::Tree,
    /// Seat registrations, by user name ([`presence`]).
    registrations: sled::Tree,
    /// Seats' standing pauses, by user name ([`presence`]).
    seat_standing: sled::Tree,
    /// Lines switched to the backup centre, by line ([`line_switch`]).
    line_switch: sled::Tree,
    /// Line switches and restores not yet in the shared store, by line ([`line_switch`]).
    line_unshared: sled::Tree,
    /// Rows for the shared store ([`outbox`]).
    outbox: sled::Tree,
    outbox_state: outbox::OutboxState,
    /// The [`wal`] file, written by the [`writer`] alone.
    log_path: Arc<PathBuf>,
    db: sled::Db,
}

/// How sled runs: its page cache bound and how often it writes buffered changes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Page cache size, bytes (sled's own default is 1 GiB).
    pub cache_capacity: u64,
    /// Buffered writes (journal, seat history) reach the disk at least this often, ms.
    pub flush_every_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 16 * 1024 * 1024,
            flush_every_ms: 200,
        }
    }
}

impl Store {
    /// Opens (or creates) the database under `dir`, with the default [`StoreOptions`]
    /// (the CLI, tests).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// [`Store::open`], waiting up to `within` while the lock is still held: a `Store`
    /// dropped in this process lets go of sled's file lock only once sled's IO threads
    /// have finished (tests that reopen, a CLI run right after a write).
    pub fn open_retrying(dir: &Path, within: std::time::Duration) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            match Self::open(dir) {
                Err(StoreError::Sled(sled::Error::Io(error)))
                    if std::time::Instant::now() < deadline
                        && error.to_string().contains("could not acquire lock") =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    /// Opens (or creates) the database under `dir`, and replays its commit log ([`wal`]):
    /// what the writer had logged and sled had not yet written out (`kill -9`, power loss).
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(Some(options.flush_every_ms))
            .open()?;
        let outbox = db.open_tree("outbox")?;
        let mut store = Self {
            outbox_state: Self::count_outbox(&outbox),
            outbox,
            calls: db.open_tree("calls")?,
            late_file: db.open_tree("late_file")?,
            audit_log: db.open_tree("audit")?,
            seat_log: db.open_tree("seats")?,
            staged_runs: seat_log::StagedRuns::default(),
            journal: db.open_tree("journal")?,
            registrations: db.open_tree("registrations")?,
            seat_standing: db.open_tree("seat_standing")?,
            line_switch: db.open_tree("line_switch")?,
            line_unshared: db.open_tree("line_unshared")?,
            log_path: Arc::new(dir.join(wal::FILE_NAME)),
            db,
        };
        store.replay_log()?;
        Ok(store)
    }

    /// Applies the commit log's frames, flushes sled, then starts a new generation so they
    /// are never replayed twice (no log file: nothing to do).
    fn replay_log(&mut self) -> Result<(), StoreError> {
        let path = self.log_path.as_path();
        let log_error = |source| StoreError::Log {
            path: path.to_path_buf(),
            source,
        };
        let replay = wal::read(path).map_err(log_error)?;
        if replay.frames.is_empty() && !replay.torn {
            return Ok(());
        }
        self.replay_frames(&replay.frames)?;
        self.db.flush()?;
        let log = wal::CommitLog::open(path, 0).map_err(log_error)?;
        log.sync().map_err(log_error)?;
        if replay.torn {
            tracing::warn!(
                frames = replay.frames.len(),
                "commit log replayed up to a torn frame"
            );
        } else {
            tracing::info!(frames = replay.frames.len(), "commit log replayed");
        }
        // The rows replayed into the outbox count as waiting.
        self.outbox_state = Self::count_outbox(&self.outbox);
        Ok(())
    }

    /// The commit log's path (the [`writer`] opens it).
    fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Writes a record and waits until it is on disk; the call leaves the journal, and
    /// enters the outbox if it is on. Wrap-up entries written meanwhile
    /// ([`Store::append_file`]) join its file. (The router writes through the [`writer`].)
    pub fn put_call(&self, record: &CallRecord) -> Result<(), StoreError> {
        let entry = self.stored_final(Box::new(record.clone()), self.outbox_state.on())?;
        self.apply_flushed(&entry)
    }

    /// Waits until every write so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Adds a seat's wrap-up entry to the file of a call that is over, and waits until it
    /// is on disk. A record still being written (its recording closing) gets it then.
    /// The record's new version enters the outbox if it is on (an entry waiting for its
    /// record ships with it).
    pub fn append_file(&self, id: &str, entry: &FileEntry) -> Result<(), StoreError> {
        let entry = self.filed(id, entry, self.outbox_state.on())?;
        self.apply_flushed(&entry)
    }

    /// Applies an entry and flushes sled, then tells the shipper of its outbox row.
    fn apply_flushed(&self, entry: &wal::entry::Entry<'_>) -> Result<(), StoreError> {
        let shipped = self.apply(entry)?;
        self.flush()?;
        self.outbox_state.added(shipped);
        Ok(())
    }

    /// One record by id.
    pub fn get_call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        match self.calls.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The most recent records, newest first.
    pub fn recent_calls(&self, limit: usize) -> Result<Vec<CallRecord>, StoreError> {
        newest(self.calls.iter(), limit)
    }

    /// Number of stored records.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }
}

/// A transaction's abort on an encoding error (the audit log's, [`audit`]).
fn abort(e: serde_json::Error) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(StoreError::Encoding(e))
}

fn unwrap_tx(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// The last `limit` values of a range (a tree, a prefix) whose keys sort by time, newest
/// first.
fn newest<T: serde::de::DeserializeOwned>(
    range: sled::Iter,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    range
        .rev()
        .take(limit)
        .map(|item| {
            let (_, bytes) = item?;
            Ok(serde_json::from_slice(&bytes)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::CallerNumber;
    use crate::time::EpochMillis;
    use record::Outcome;

    fn record(id: &str) -> CallRecord {
        let caller = CallerNumber::new("0612345678");
        let mut r = CallRecord::new(id.into(), "x".into(), "samu".into(), "15".into(), caller, 1);
        r.outcome = Some(Outcome::Abandoned);
        r
    }

    #[test]
    fn records_survive_reopening_and_list_newest_first() {
        let dir = std::env::temp_dir().join(format!("sas-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = Store::open(&dir).unwrap();
            store
                .put_call(&record("20261123T070000.000Z-0001"))
                .unwrap();
            store
                .put_call(&record("20261123T080000.000Z-0002"))
                .unwrap();
        }
        let store = Store::open_retrying(&dir, std::time::Duration::from_secs(2)).unwrap();
        let list = store.recent_calls(10).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, "20261123T080000.000Z-0002");
        let one = store
            .get_call("20261123T070000.000Z-0001")
            .unwrap()
            .unwrap();
        assert_eq!(one.caller.reveal(), "0612345678");
        assert!(store.get_call("nope").unwrap().is_none());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn wrap_up(at: EpochMillis, note: &str) -> FileEntry {
        FileEntry {
            at,
            seat: "arm1".into(),
            data: record::Qualification {
                note: Some(note.into()),
                ..Default::default()
            },
        }
    }

    /// Wrap-up entries join the file whether the record is written before or after them.
    #[test]
    fn wrap_up_entries_join_the_file_before_and_after_the_record_is_written() {
        let dir = std::env::temp_dir().join(format!("sas-store-late-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let id = "20261123T070000.000Z-0001";
        store.append_file(id, &wrap_up(10, "early")).unwrap();
        store.put_call(&record(id)).unwrap();
        store.append_file(id, &wrap_up(20, "late")).unwrap();
        let r = store.get_call(id).unwrap().unwrap();
        let notes: Vec<_> = r.file.iter().map(|e| e.data.note.as_deref()).collect();
        assert_eq!(notes, [Some("early"), Some("late")]);
        assert_eq!(r.events.iter().filter(|e| e.kind == "QUALIFY").count(), 2);
        assert_eq!(store.late_file.len(), 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
