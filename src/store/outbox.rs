//! The outbox: what the shared store ([`crate::shared_store`]) has not acknowledged yet.
//!
//! With the outbox on ([`Store::with_outbox`]), every finished record, every later version
//! of it (a wrap-up entry appended, [`Store::append_file`]) and every audit entry is
//! written to sled's `outbox` tree with the data itself: a record and its row in the same
//! commit-log entry ([`super::wal::entry`]), an audit entry and its row in one sled
//! transaction, so a crash can lose neither without the other. Keys are sled ids (8 bytes, big-endian), increasing
//! across restarts, so the outbox is read oldest first and a key doubles as the row's
//! revision in PostgreSQL (a later version of a record never loses to an earlier one).
//! The shipper deletes what PostgreSQL acknowledged; what a crash lets it send twice is
//! written once there (idempotent upserts).

use super::audit::AuditEntry;
use super::record::CallRecord;
use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// One row waiting for the shared store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxItem {
    /// A call's record, in its latest version at the time of writing.
    Call {
        /// The record (boxed: an audit entry is a tenth of its size).
        record: Box<CallRecord>,
    },
    /// An audit entry; `id` is its sled id, unique in this node's database.
    Audit {
        /// Its id.
        id: u64,
        /// The entry.
        entry: AuditEntry,
    },
}

/// An outbox row: its key (also the revision of what it carries) and the item.
pub type OutboxRow = (u64, OutboxItem);

/// The sled side of the outbox: whether it is on, how many rows wait, and who to wake.
#[derive(Clone, Default)]
pub(super) struct OutboxState {
    on: bool,
    pending: Arc<AtomicU64>,
    added: Arc<Notify>,
}

impl OutboxState {
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// After a transaction that added `n` rows committed.
    pub(super) fn added(&self, n: u64) {
        if n > 0 {
            self.pending.fetch_add(n, Ordering::Relaxed);
            self.added.notify_one();
        }
    }
}

/// Inserts `item` under `key` in a transaction's outbox tree.
pub(super) fn put(
    outbox: &sled::transaction::TransactionalTree,
    key: u64,
    item: &OutboxItem,
) -> Result<(), sled::transaction::ConflictableTransactionError<StoreError>> {
    let bytes = serde_json::to_vec(item).map_err(super::abort)?;
    outbox.insert(&key.to_be_bytes()[..], bytes)?;
    Ok(())
}

/// A record's outbox row, from the record's JSON: the JSON of [`OutboxItem::Call`],
/// without parsing or cloning the record.
pub(super) fn record_row(record: &RawValue) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Row<'a> {
        Call { record: &'a RawValue },
    }
    serde_json::to_vec(&Row::Call { record })
}

impl Store {
    /// Turns the outbox on: records and audit entries written from now on are also queued
    /// for the shared store. Rows already queued are shipped whether it is on or not.
    pub fn with_outbox(mut self, on: bool) -> Self {
        self.outbox_state.on = on;
        self
    }

    /// Rows waiting for the shared store.
    pub fn outbox_pending(&self) -> u64 {
        self.outbox_state.pending.load(Ordering::Relaxed)
    }

    /// Resolves when a row was added since the last call (at once if one was meanwhile).
    pub async fn outbox_added(&self) {
        self.outbox_state.added.notified().await
    }

    /// The oldest `limit` rows, oldest first. A row that does not decode (written by a
    /// newer version) is an error: it stays, and so does everything after it.
    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox
            .iter()
            .take(limit)
            .map(|item| {
                let (key, bytes) = item?;
                let key = key
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::OutboxKey(key.len()))?;
                Ok((u64::from_be_bytes(key), serde_json::from_slice(&bytes)?))
            })
            .collect()
    }

    /// Deletes the rows the shared store acknowledged, one plain remove each (an atomic
    /// sled batch makes sled write out its buffer). Not flushed: a row a crash brings back
    /// is shipped again, and written once.
    pub fn outbox_ack(&self, keys: &[u64]) -> Result<(), StoreError> {
        for key in keys {
            self.outbox.remove(key.to_be_bytes())?;
        }
        let n = keys.len() as u64;
        let pending = &self.outbox_state.pending;
        // Only the shipper deletes, so the count never goes below what is left.
        let _ = pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
            Some(p.saturating_sub(n))
        });
        Ok(())
    }

    /// Counts the rows at open (a walk of the tree, once).
    pub(super) fn count_outbox(outbox: &sled::Tree) -> OutboxState {
        OutboxState {
            on: false,
            pending: Arc::new(AtomicU64::new(outbox.len() as u64)),
            added: Arc::new(Notify::new()),
        }
    }
}

#[cfg(test)]
mod tests;
