//! The call journal: each live call's record, rewritten in sled whenever the switchboard
//! changes it (a timeline event, an offer, a handler), and removed by the write that stores
//! its final record ([`Store::put_call`], after the record). What is left in the journal at start
//! is a call the router never finished (crash, `kill -9`, power loss): [`Store::recover`]
//! closes each as [`Outcome::Interrupted`], with its timeline up to the last journal write,
//! a `ROUTER_STOPPED` event and its recording, repaired, linked.
//!
//! Journal writes go through the [`StoreWriter`] thread, which logs each call's latest
//! line once per batch (`store.batch_window_ms`) to the commit log, and writes the lines of
//! calls still live to sled at the next checkpoint, before sled is flushed and the log
//! starts afresh (the journal is only read at start, after the log's replay: a call whose
//! record comes before the checkpoint costs sled nothing). Lines are not synced on their
//! own: `kill -9` loses none of a finished batch, a power loss those since the last sync of
//! the log (see [`super::writer`]). Finished records are confirmed once synced (group
//! commit). The same
//! step also persists each seat's standing pause (see [`Journal::step`]).

use super::record::{CallRecord, EndReason, EventKind, OfferResult, Outcome};
use super::writer::StoreWriter;
use super::{Store, StoreError};
use crate::acd::PauseReason;
use crate::call::{Changed, Switchboard};
use crate::media::recording::RecordingInfo;
use crate::time::EpochMillis;
use sas_core::id_map::IdMap;
use serde::{Deserialize, Serialize};

/// Why an interrupted call ended, in its record ([`EndReason::RouterStopped`]).
pub const END_REASON: EndReason = EndReason::RouterStopped;
/// The timeline event that closes an interrupted call.
pub const STOPPED_EVENT: EventKind = EventKind::RouterStopped;

/// One journaled call: its record as it was, and when it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The live record.
    pub record: CallRecord,
    /// When this version was written (the router was alive then).
    pub journaled_at: EpochMillis,
}

/// What changes a record in a way worth journaling, cheap to compare at every step.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    events: usize,
    offers: usize,
    offers_open: usize,
    handlers: usize,
    handlers_open: usize,
    dtmf: usize,
    file: usize,
    answered: bool,
}

impl Fingerprint {
    fn of(r: &CallRecord) -> Self {
        Self {
            events: r.events.len(),
            offers: r.offers.len(),
            offers_open: r.offers.iter().filter(|o| o.ended_at.is_none()).count(),
            handlers: r.handlers.len(),
            handlers_open: r.handlers.iter().filter(|h| h.until.is_none()).count(),
            dtmf: r.dtmf.len(),
            file: r.file.len(),
            answered: r.answered_at.is_some(),
        }
    }
}

/// What the journal last wrote, per live call and per seat, so each step writes only what
/// changed.
#[derive(Debug, Default)]
pub struct Journal {
    calls: IdMap<String, Fingerprint>,
    seats: IdMap<String, Option<PauseReason>>,
}

impl Journal {
    /// A journal that knows the seat standings already stored (restored at start).
    pub fn with_seats(seats: impl IntoIterator<Item = (String, PauseReason)>) -> Self {
        Self {
            calls: IdMap::default(),
            seats: seats.into_iter().map(|(s, r)| (s, Some(r))).collect(),
        }
    }

    /// After each switchboard step: sends the [`StoreWriter`] the records of the live
    /// calls that changed and the seats whose standing pause changed. Only what the step
    /// touched is looked at (`changed`, from [`sas_core::call::router::Router::take_changed`]),
    /// so a step costs what it changed, not the centre's size. The driver does not wait:
    /// the writer applies them in order, off its loop.
    pub fn step(
        &mut self,
        now: EpochMillis,
        changed: Changed,
        switchboard: &Switchboard,
        writer: &StoreWriter,
    ) {
        let touched = changed
            .calls
            .iter()
            .map(|id| (id.as_str(), switchboard.record(id)));
        let records = self.changed_calls(touched);
        if !records.is_empty() {
            writer.journal(now, records.into_iter().cloned().collect());
        }
        let acd = switchboard.acd();
        let standings = changed.seats.iter().map(|s| (s.as_str(), acd.standing(s)));
        for (seat, standing) in self.changed_seats(standings) {
            writer.seat_standing(seat, standing);
        }
    }

    /// Of the calls touched (with their record, `None` once ended), those whose record
    /// changed since last journaled; ended calls are forgotten (their final record
    /// replaces their journal line).
    fn changed_calls<'a>(
        &mut self,
        touched: impl Iterator<Item = (&'a str, Option<&'a CallRecord>)>,
    ) -> Vec<&'a CallRecord> {
        let mut changed = Vec::new();
        for (id, record) in touched {
            let Some(record) = record else {
                self.calls.remove(id);
                continue;
            };
            let print = Fingerprint::of(record);
            if self.calls.get(id) != Some(&print) {
                self.calls.insert(id.to_string(), print);
                changed.push(record);
            }
        }
        changed
    }

    /// Seats whose standing pause differs from the one last stored.
    fn changed_seats<'a>(
        &mut self,
        standings: impl Iterator<Item = (&'a str, Option<PauseReason>)>,
    ) -> Vec<(String, Option<PauseReason>)> {
        let mut changed = Vec::new();
        for (seat, standing) in standings {
            let known = self.seats.get(seat).copied().flatten();
            if known != standing {
                self.seats.insert(seat.to_string(), standing);
                changed.push((seat.to_string(), standing));
            }
        }
        changed
    }
}

/// Closes the record of a call the router stopped in the middle of: outcome
/// `interrupted`, ended at `stopped_at`, open offers withdrawn and open handlers left, a
/// `ROUTER_STOPPED` event, and its `recording` (salvaged) if one was found.
pub fn close_interrupted(
    entry: JournalEntry,
    stopped_at: EpochMillis,
    recording: Option<RecordingInfo>,
) -> CallRecord {
    let mut r = entry.record;
    // The last sign of life, never before the last thing the record saw.
    let last_event = r.events.iter().map(|e| e.at).max().unwrap_or(r.arrived_at);
    let at = stopped_at.max(last_event);
    for offer in r.offers.iter_mut().filter(|o| o.ended_at.is_none()) {
        offer.ended_at = Some(at);
        if offer.result == OfferResult::Ringing {
            offer.result = OfferResult::Withdrawn;
        }
    }
    for h in r.handlers.iter_mut().filter(|h| h.until.is_none()) {
        h.until = Some(at);
        h.left = Some(END_REASON.to_string());
    }
    match r.answered_at {
        Some(answered) => r.talk_ms = Some(at.saturating_sub(answered)),
        None => r.wait_ms = Some(at.saturating_sub(r.arrived_at)),
    }
    r.ended_at = Some(at);
    r.outcome = Some(Outcome::Interrupted);
    r.end_reason = Some(END_REASON);
    r.recording = recording;
    let detail = "the router stopped during the call; recovered from its journal at restart";
    r.event(at, STOPPED_EVENT, None, Some(detail.into()));
    r
}

impl Store {
    /// Journals the current version of `records` (not flushed: see the module
    /// documentation).
    pub fn journal(&self, now: EpochMillis, records: &[&CallRecord]) -> Result<(), StoreError> {
        let lines = (records.iter())
            .map(|r| (now, std::borrow::Cow::Borrowed(*r)))
            .collect();
        self.apply(&super::wal::entry::Entry::Journal { lines })?;
        Ok(())
    }

    /// Calls journaled and not finished.
    pub fn journaled(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal
            .iter()
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect()
    }

    /// The ids of the calls in the journal (tests).
    #[cfg(test)]
    pub(crate) fn journaled_ids(&self) -> Vec<String> {
        let entries = self.journaled().unwrap();
        entries.into_iter().map(|e| e.record.id).collect()
    }

    /// At start, before any call: closes every call left in the journal as interrupted
    /// and stores its record (see [`close_interrupted`]); its recording, if found under
    /// `recordings` (the recordings root), is repaired and linked. Returns the records.
    pub fn recover(
        &self,
        recordings: Option<&std::path::Path>,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let mut recovered = Vec::new();
        for entry in self.journaled()? {
            let id = entry.record.id.clone();
            if self.get_call(&id)?.is_some() {
                // Finished: only its journal line outlived it.
                self.journal.remove(id.as_bytes())?;
                continue;
            }
            let found = recordings.and_then(|root| find_recording(root, &entry.record));
            let mut stopped_at = entry.journaled_at;
            let recording = match found {
                Some((relative, modified)) => {
                    stopped_at = stopped_at.max(modified);
                    let root = recordings.expect("found under it");
                    match crate::media::recording::salvage(root, &relative) {
                        Ok(info) => Some(info),
                        Err(e) => {
                            tracing::error!(call = %id, error = %e, "recording NOT salvaged");
                            None
                        }
                    }
                }
                None => None,
            };
            let record = close_interrupted(entry, stopped_at, recording);
            self.put_call(&record)?;
            tracing::warn!(call = %id, "call interrupted by the last stop: record recovered");
            recovered.push(record);
        }
        Ok(recovered)
    }
}

/// The recording of a journaled call, if its file exists: its path relative to `root`,
/// and when it was last written. Its directory is the UTC date of the answer, so every
/// date the timeline touches is tried.
fn find_recording(root: &std::path::Path, record: &CallRecord) -> Option<(String, EpochMillis)> {
    let mut tried = Vec::new();
    for at in std::iter::once(record.arrived_at).chain(record.events.iter().map(|e| e.at)) {
        let relative = super::recordings::Recordings::relative_path(&record.id, at);
        if tried.contains(&relative) {
            continue;
        }
        let meta = std::fs::metadata(root.join(&relative)).ok();
        if let Some(meta) = meta.filter(|m| m.is_file()) {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as EpochMillis);
            return Some((relative, modified));
        }
        tried.push(relative);
    }
    None
}

#[cfg(test)]
pub(crate) mod tests;
