//! Today's and the last hour's figures per line and per queue, from finished call records
//! (at start, today's records from the store; then each call as it ends) plus the calls in
//! progress that a seat answered. The sums are the activity report's ([`named_rows`]):
//! the board and `sas-router report --by line` say the same numbers.
//!
//! "Today" is since local midnight, Europe/Paris, on the wall clock given; the last hour
//! is the calls that arrived in the 60 minutes before now, to the second: finished calls of
//! the last hour are summed per second of arrival (at most 3,600 sums, whatever the call
//! rate: one entry per call grew with the calls handled, ~3 KiB each, 10 GB an hour at
//! 1,000 calls/s), and those sums summed again when a board is drawn. A second's sums are
//! [`Slot`]s, rows allocated to size: as [`Sums`] (a `BTreeMap` node has room for 11 rows
//! of ~310 bytes) they took ~7 KiB a second, 24 MiB for the hour.

use crate::record::CallRecord;
use crate::report::{GroupBy, Period, Row, named_rows};
use crate::time::EpochMillis;
use chrono::TimeZone;
use chrono_tz::Europe::Paris;
use std::collections::BTreeMap;

/// The last hour, ms.
pub const HOUR_MS: EpochMillis = 3_600_000;

/// The last hour's resolution, ms: a finished call leaves it within a second of its hour.
const SLOT_MS: EpochMillis = 1_000;

/// What one call adds, per line and per queue.
#[derive(Debug, Clone)]
struct Rows {
    arrived_at: EpochMillis,
    lines: Vec<(String, Row)>,
    queues: Vec<(String, Row)>,
}

impl Rows {
    fn of(record: &CallRecord) -> Self {
        Self {
            arrived_at: record.arrived_at,
            lines: named_rows(record, GroupBy::Line),
            queues: named_rows(record, GroupBy::Queue),
        }
    }
}

/// Sums by line and by queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    pub lines: BTreeMap<String, Row>,
    pub queues: BTreeMap<String, Row>,
}

impl Sums {
    /// Adds rows by line and by queue (one call's, or one second's).
    fn add(&mut self, lines: &[(String, Row)], queues: &[(String, Row)]) {
        add_into(&mut self.lines, lines.iter().map(|(k, r)| (k, r)));
        add_into(&mut self.queues, queues.iter().map(|(k, r)| (k, r)));
    }
}

/// Today's and the last hour's sums, as of a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub today: Sums,
    pub last_hour: Sums,
}

/// The finished calls' side, kept between boards.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Today: `[local midnight, next local midnight)`.
    day: (EpochMillis, EpochMillis),
    today: Sums,
    /// Finished calls that arrived within the last hour, as of the last call or board,
    /// summed by the start of their second of arrival.
    recent: BTreeMap<EpochMillis, Slot>,
}

/// One second's sums by line and by queue, each sorted by key.
#[derive(Debug, Clone, Default)]
struct Slot {
    lines: Vec<(String, Row)>,
    queues: Vec<(String, Row)>,
}

impl Slot {
    fn add(&mut self, rows: &Rows) {
        add_sorted(&mut self.lines, &rows.lines);
        add_sorted(&mut self.queues, &rows.queues);
    }

    /// Heap bytes held (the rows and their keys).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        [&self.lines, &self.queues]
            .into_iter()
            .map(|rows| {
                rows.capacity() * std::mem::size_of::<(String, Row)>()
                    + rows.iter().map(|(k, _)| k.capacity()).sum::<usize>()
            })
            .sum()
    }
}

/// Adds `add` into `rows`, sorted by key; a new key grows `rows` by exactly one.
fn add_sorted(rows: &mut Vec<(String, Row)>, add: &[(String, Row)]) {
    for (key, row) in add {
        match rows.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(i) => rows[i].1.add(row),
            Err(i) => {
                rows.reserve_exact(1);
                rows.insert(i, (key.clone(), row.clone()));
            }
        }
    }
}

/// Today's bounds, for the Paris day of `now`.
fn day_of(now: EpochMillis) -> (EpochMillis, EpochMillis) {
    let date = Paris
        .timestamp_millis_opt(now as i64)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default();
    Period::new(date, date)
        .map(|p| p.bounds())
        .unwrap_or((now, now))
}

impl Tally {
    pub fn new(now: EpochMillis) -> Self {
        Self {
            day: day_of(now),
            today: Sums::default(),
            recent: BTreeMap::new(),
        }
    }

    /// Where the records to count at start begin (arrival): today's midnight or an hour
    /// ago, whichever is earlier (just after midnight, the last hour began yesterday).
    pub fn start_from(&self, now: EpochMillis) -> EpochMillis {
        self.day.0.min(now.saturating_sub(HOUR_MS))
    }

    /// A new day at local midnight; calls older than an hour leave the last hour.
    fn roll(&mut self, now: EpochMillis) {
        if now >= self.day.1 || now < self.day.0 {
            self.day = day_of(now);
            self.today = Sums::default();
        }
        // The slots that started an hour ago or more (or start after now: a clock stepped
        // back) leave, from either end.
        while let Some(slot) = self.recent.first_entry() {
            if in_last_hour(*slot.key(), now) {
                break;
            }
            slot.remove();
        }
        while let Some(slot) = self.recent.last_entry() {
            if in_last_hour(*slot.key(), now) {
                break;
            }
            slot.remove();
        }
    }

    /// Seconds of the last hour with finished calls kept (at most 3,600).
    pub fn recent_slots(&self) -> usize {
        self.recent.len()
    }

    /// Heap bytes the last hour's sums hold (their map's own nodes apart).
    #[cfg(test)]
    pub(crate) fn recent_bytes(&self) -> usize {
        self.recent.values().map(Slot::heap_bytes).sum()
    }

    /// A finished call (counted once: it has left the calls in progress).
    pub fn finished(&mut self, now: EpochMillis, record: &CallRecord) {
        self.roll(now);
        let rows = Rows::of(record);
        if self.today_has(rows.arrived_at) {
            self.today.add(&rows.lines, &rows.queues);
        }
        let slot = rows.arrived_at - rows.arrived_at % SLOT_MS;
        if in_last_hour(slot, now) {
            self.recent.entry(slot).or_default().add(&rows);
        }
    }

    fn today_has(&self, at: EpochMillis) -> bool {
        (self.day.0..self.day.1).contains(&at)
    }

    /// The figures now: the finished calls and, of the calls in progress, those a seat
    /// answered (one still waiting for its first answer is counted when answered or
    /// ended, so a call waiting 10 s does not read as a call missed).
    pub fn figures<'a>(
        &mut self,
        now: EpochMillis,
        live: impl Iterator<Item = &'a CallRecord>,
    ) -> Figures {
        self.roll(now);
        let mut figures = Figures {
            today: self.today.clone(),
            last_hour: Sums::default(),
        };
        for slot in self.recent.values() {
            figures.last_hour.add(&slot.lines, &slot.queues);
        }
        for record in live.filter(|r| r.answered_at.is_some()) {
            let rows = Rows::of(record);
            if self.today_has(rows.arrived_at) {
                figures.today.add(&rows.lines, &rows.queues);
            }
            if in_last_hour(rows.arrived_at, now) {
                figures.last_hour.add(&rows.lines, &rows.queues);
            }
        }
        figures
    }
}

fn add_into<'a>(
    map: &mut BTreeMap<String, Row>,
    rows: impl IntoIterator<Item = (&'a String, &'a Row)>,
) {
    for (key, row) in rows {
        map.entry(key.clone()).or_default().add(row);
    }
}

fn in_last_hour(arrived_at: EpochMillis, now: EpochMillis) -> bool {
    arrived_at <= now && now - arrived_at < HOUR_MS
}
