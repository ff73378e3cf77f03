//! What a commit-log frame holds: the writes of one store-writer batch, as the writer
//! applied them to sled ([`Entry`], a JSON array per frame), and their replay at open
//! ([`Store::replay_log`]). Replay is idempotent, since a frame may already be in sled (sled
//! wrote it out on its own before the crash, or a replay was cut short): a record already
//! stored is not stored again, a wrap-up entry already in the file is not appended again
//! (so no outbox row twice), seat history keeps its keys, the rest overwrites.

use super::super::presence::StoredBinding;
use super::super::record::{CallRecord, FileEntry};
use super::super::seat_log::SeatEvent;
use super::super::{Store, StoreError};
use crate::acd::PauseReason;
use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
    /// Seat history, each event with its key's sequence number.
    Seats { events: Vec<(u64, SeatEvent)> },
    Bindings {
        user: String,
        bindings: Vec<StoredBinding>,
    },
    File {
        call: String,
        entry: Box<FileEntry>,
        /// It entered the outbox.
        ship: bool,
    },
    Record {
        record: Box<CallRecord>,
        ship: bool,
        /// Its recording could not be synced: why (the stored record says so).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording_failed: Option<String>,
    },
}

/// Encodes a batch's entries as one frame's payload.
pub fn encode(entries: &[Entry<'_>]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(entries)
}

impl Store {
    /// Applies the frames of the commit log (see [`super::read`]) to sled, idempotently;
    /// the outbox rows added. A frame that does not decode (written by another version)
    /// is skipped, loudly.
    pub(in crate::store) fn replay_frames(&self, frames: &[Vec<u8>]) -> Result<u64, StoreError> {
        let mut shipped = 0;
        for frame in frames {
            match serde_json::from_slice::<Vec<Entry<'static>>>(frame) {
                Ok(entries) => {
                    for entry in entries {
                        shipped += self.replay(entry)?;
                    }
                }
                Err(e) => tracing::error!(error = %e, "commit log frame not understood: skipped"),
            }
        }
        Ok(shipped)
    }

    fn replay(&self, entry: Entry<'static>) -> Result<u64, StoreError> {
        match entry {
            Entry::Journal { lines } => {
                let live = lines
                    .iter()
                    .filter(|(_, r)| !self.calls.contains_key(r.id.as_bytes()).unwrap_or(false))
                    .map(|(at, r)| (*at, r.as_ref()));
                self.journal_lines(live)?;
            }
            Entry::Standing { seat, paused } => self.put_seat_standing(&seat, paused)?,
            Entry::Seats { events } => self.put_seat_events_keyed(&events)?,
            Entry::Bindings { user, bindings } => self.put_stored_bindings(&user, &bindings)?,
            Entry::File { call, entry, ship } => {
                if !self.has_file_entry(&call, &entry)? {
                    return self.append_file_unflushed(&call, &entry, ship);
                }
            }
            Entry::Record {
                mut record,
                ship,
                recording_failed,
            } => {
                if !self.calls.contains_key(record.id.as_bytes())? {
                    if let Some(why) = recording_failed {
                        record.recording_failed(&why);
                    }
                    return self.put_call_unflushed(&record, ship);
                }
            }
        }
        Ok(0)
    }

    /// `entry` is in `call`'s file already (its record's, or waiting for its record).
    fn has_file_entry(&self, call: &str, entry: &FileEntry) -> Result<bool, StoreError> {
        let key = call.as_bytes();
        if let Some(bytes) = self.calls.get(key)? {
            let record: CallRecord = serde_json::from_slice(&bytes)?;
            return Ok(record.file.contains(entry));
        }
        if let Some(bytes) = self.late_file.get(key)? {
            let entries: Vec<FileEntry> = serde_json::from_slice(&bytes)?;
            return Ok(entries.contains(entry));
        }
        Ok(false)
    }
}
