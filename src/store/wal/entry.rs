//! What a commit-log frame holds: the writes of one store-writer batch, as the writer
//! applied them to sled ([`Entry`], a JSON array per frame), and how each is applied
//! ([`Store::apply`]), by the writer and by the replay at open alike.
//!
//! Each entry is physical: the values it writes are in it (a record as stored, with the
//! wrap-up entries merged in; the key of its outbox row; seat history with its keys), never
//! computed from what sled holds. The writer applies an entry as plain per-key inserts and
//! removes, not as one atomic sled batch, so a crash can leave any subset of a frame's keys
//! in sled; replaying the frames in order rewrites every key, which brings sled to the
//! state after the last frame whatever part of it had reached the disk (and twice is the
//! same as once). The one key a replay may bring back is an outbox row the shipper had
//! deleted meanwhile: shipped again, written once (the shared store's upserts).

use super::super::outbox;
use super::super::presence::StoredBinding;
use super::super::record::{CallRecord, FileEntry};
use super::super::seat_log::SeatRun;
use super::super::{Store, StoreError};
use crate::acd::PauseReason;
use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::OnceLock;

/// One write, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "w", rename_all = "snake_case")]
pub enum Entry<'a> {
    /// Live calls' latest journal lines.
    Journal {
        lines: Vec<(EpochMillis, Cow<'a, CallRecord>)>,
    },
    Standing {
        seat: String,
        paused: Option<PauseReason>,
    },
    /// Seat history runs, each with its key's sequence number (`events`: a frame written
    /// before runs, one event each).
    Seats {
        #[serde(alias = "events")]
        runs: Vec<(u64, SeatRun)>,
    },
    Bindings {
        user: String,
        bindings: Vec<StoredBinding>,
    },
    /// A call's record as stored: a final record (with the wrap-up entries that waited
    /// for it), or a later version with one more entry. The call leaves the journal and the
    /// late entries; `outbox`: the key of the record's row in the outbox, if it ships.
    Stored {
        record: StoredRecord,
        outbox: Option<u64>,
    },
    /// Every wrap-up entry waiting for a call's record (not written yet).
    Late {
        call: String,
        entries: Vec<FileEntry>,
    },
}

/// A record to store, and its JSON once made: sled's value, the outbox row and the commit
/// log's frame all carry the same bytes (a record serialised once, not three times). The
/// record cannot be changed once wrapped, so its JSON never goes stale.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    record: Box<CallRecord>,
    json: OnceLock<Box<RawValue>>,
}

impl StoredRecord {
    pub fn new(record: Box<CallRecord>) -> Self {
        Self {
            record,
            json: OnceLock::new(),
        }
    }

    /// The record's JSON, made at the first call.
    fn json(&self) -> Result<&RawValue, serde_json::Error> {
        if let Some(json) = self.json.get() {
            return Ok(json);
        }
        let json = serde_json::value::to_raw_value(&self.record)?;
        Ok(self.json.get_or_init(|| json))
    }
}

impl PartialEq for StoredRecord {
    fn eq(&self, other: &Self) -> bool {
        self.record == other.record
    }
}

impl Serialize for StoredRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::new(Box::deserialize(deserializer)?))
    }
}

/// Encodes a batch's entries as one frame's payload.
pub fn encode(entries: &[Entry<'_>]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(entries)
}

/// A journal line as written: the same JSON as [`super::super::journal::JournalEntry`],
/// without cloning the record.
#[derive(Serialize)]
struct JournalLine<'a> {
    record: &'a CallRecord,
    journaled_at: EpochMillis,
}

impl Store {
    /// Applies the frames of the commit log (see [`super::read`]) to sled, in order; the
    /// outbox rows written. A frame that does not decode (written by another version) is
    /// skipped, loudly.
    pub(in crate::store) fn replay_frames(&self, frames: &[Vec<u8>]) -> Result<u64, StoreError> {
        let mut shipped = 0;
        for frame in frames {
            match serde_json::from_slice::<Vec<Entry<'static>>>(frame) {
                Ok(entries) => {
                    for entry in &entries {
                        shipped += self.apply(entry)?;
                    }
                }
                Err(e) => tracing::error!(error = %e, "commit log frame not understood: skipped"),
            }
        }
        Ok(shipped)
    }

    /// Writes one entry's keys to sled, one plain insert or remove each (not flushed); the
    /// outbox rows written. A record goes in before its call leaves the journal, so a
    /// reader never misses a call that is in neither.
    pub(in crate::store) fn apply(&self, entry: &Entry<'_>) -> Result<u64, StoreError> {
        match entry {
            Entry::Journal { lines } => {
                for (journaled_at, record) in lines {
                    let line = JournalLine {
                        record,
                        journaled_at: *journaled_at,
                    };
                    self.journal
                        .insert(record.id.as_bytes(), serde_json::to_vec(&line)?)?;
                }
            }
            Entry::Standing { seat, paused } => self.put_seat_standing(seat, *paused)?,
            Entry::Seats { runs } => self.put_seat_runs(runs)?,
            Entry::Bindings { user, bindings } => self.put_stored_bindings(user, bindings)?,
            Entry::Stored { record, outbox } => {
                let id = record.record.id.as_bytes();
                let json = record.json()?;
                self.calls.insert(id, json.get().as_bytes())?;
                if let Some(key) = outbox {
                    self.outbox
                        .insert(key.to_be_bytes(), outbox::record_row(json)?)?;
                }
                self.journal.remove(id)?;
                self.late_file.remove(id)?;
                return Ok(u64::from(outbox.is_some()));
            }
            Entry::Late { call, entries } => {
                self.late_file
                    .insert(call.as_bytes(), serde_json::to_vec(entries)?)?;
            }
        }
        Ok(0)
    }

    /// The entry that stores `record` as final, with the wrap-up entries waiting for it,
    /// and with an outbox row if `ship`.
    pub(in crate::store) fn stored_final(
        &self,
        mut record: Box<CallRecord>,
        ship: bool,
    ) -> Result<Entry<'static>, StoreError> {
        if let Some(bytes) = self.late_file.get(record.id.as_bytes())? {
            let entries: Vec<FileEntry> = serde_json::from_slice(&bytes)?;
            entries.into_iter().for_each(|e| record.add_file(e));
        }
        let outbox = self.outbox_key(ship)?;
        let record = StoredRecord::new(record);
        Ok(Entry::Stored { record, outbox })
    }

    /// The entry that adds a wrap-up entry to `call`'s file: its record's next version if
    /// it is stored (with an outbox row if `ship`), else the entries waiting for it.
    pub(in crate::store) fn filed(
        &self,
        call: &str,
        entry: &FileEntry,
        ship: bool,
    ) -> Result<Entry<'static>, StoreError> {
        let key = call.as_bytes();
        if let Some(bytes) = self.calls.get(key)? {
            let mut record: Box<CallRecord> = Box::new(serde_json::from_slice(&bytes)?);
            record.add_file(entry.clone());
            let outbox = self.outbox_key(ship)?;
            let record = StoredRecord::new(record);
            return Ok(Entry::Stored { record, outbox });
        }
        let mut entries: Vec<FileEntry> = match self.late_file.get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)?,
            None => Vec::new(),
        };
        entries.push(entry.clone());
        Ok(Entry::Late {
            call: call.to_string(),
            entries,
        })
    }

    /// A new outbox key (a sled id, increasing across restarts) if `ship`.
    fn outbox_key(&self, ship: bool) -> Result<Option<u64>, StoreError> {
        Ok(if ship {
            Some(self.db.generate_id()?)
        } else {
            None
        })
    }
}
