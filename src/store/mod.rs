//! Durable storage in sled: call records, keyed by their time-sortable id, and the `audit`
//! log, each seat's history (`seat_log`); `recordings` owns the recording files (layout, retention purge, audited reads).
//!
//! Records are written when a call ends and flushed before the write returns, so a crash
//! never loses a finished call. The CLI opens the same database read-side while the router
//! runs (sled allows one process: the CLI then reads through the router's HTTP API instead).

pub mod audit;
pub mod record;
pub mod recordings;
pub mod seat_log;

use record::CallRecord;
use std::path::Path;
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
}

/// The call store.
#[derive(Clone)]
pub struct Store {
    calls: sled::Tree,
    audit_log: sled::Tree,
    seat_log: sled::Tree,
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir.join("sled")).open()?;
        let calls = db.open_tree("calls")?;
        let audit_log = db.open_tree("audit")?;
        let seat_log = db.open_tree("seats")?;
        Ok(Self {
            calls,
            audit_log,
            seat_log,
            db,
        })
    }

    /// Writes a record and waits until it is on disk.
    pub fn put_call(&self, record: &CallRecord) -> Result<(), StoreError> {
        self.calls
            .insert(record.id.as_bytes(), serde_json::to_vec(record)?)?;
        self.db.flush()?;
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
        let store = Store::open(&dir).unwrap();
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
}
