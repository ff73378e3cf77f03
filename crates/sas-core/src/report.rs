//! Activity reports over call records (sans-IO: records in, table out): what a plateau
//! sends its ARS and what the SAS 92 slides show (orientation decisions per commune and
//! month).
//!
//! A [`ReportBuilder`] takes the records of a [`Period`] (Europe/Paris dates, both
//! included) one by one, in any order, and keeps only sums: a year of a busy department
//! streams through it without holding the records. Every figure is a count or a sum (or a
//! maximum), so the totals row is the sum of the rows, whatever the grouping.
//!
//! Definitions (the README's "Reports" section says the same for users):
//! - the **wait** is the SUdF one: from the call's arrival (INVITE, greeting and menu
//!   included) to the answer by a seat of the first queue it waited in (the ARM);
//! - a **second-level wait** is every later wait in a queue (an escalation): from the ARM's
//!   transfer to the regulator's answer, filed by target (AMU, libéral, psy) and, for P0
//!   calls, also in the P0 columns;
//! - abandons and misdials are the record's outcome, as the router classified it with the
//!   `[acd] misdial_threshold_s` in force at the time.

mod figures;
pub mod render;
#[cfg(test)]
pub(crate) mod test_calls;
#[cfg(test)]
mod tests;

use crate::record::CallRecord;
use crate::time::EpochMillis;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Europe::Paris;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Longest period a report covers (ten years and their leap days).
const MAX_DAYS: i64 = 3_660;

/// A report request the user got wrong.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReportError {
    /// No first day given.
    #[error("from (YYYY-MM-DD) is required")]
    MissingFrom,
    /// A date is not `YYYY-MM-DD`.
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    /// `to` is before `from`.
    #[error("--to {to} is before --from {from}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    /// The period is longer than [`MAX_DAYS`].
    #[error("a report covers at most {MAX_DAYS} days")]
    TooLong,
    /// Not a grouping this report knows.
    #[error("unknown grouping {0:?} (day, hour, line, queue, seat, commune)")]
    BadGrouping(String),
    /// Not an output format.
    #[error("unknown format {0:?} (table, csv, json)")]
    BadFormat(String),
}

/// Local (Europe/Paris) days, `from` and `to` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The period of two `YYYY-MM-DD` dates.
    pub fn parse(from: &str, to: &str) -> Result<Self, ReportError> {
        let date = |s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| ReportError::BadDate(s.to_string()))
        };
        Self::new(date(from)?, date(to)?)
    }

    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, ReportError> {
        if to < from {
            return Err(ReportError::Reversed { from, to });
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(ReportError::TooLong);
        }
        Ok(Self { from, to })
    }

    /// Its first and past-its-last instants: local midnight of `from`, local midnight
    /// after `to` (a DST day is 23 or 25 hours long).
    pub fn bounds(&self) -> (EpochMillis, EpochMillis) {
        let end = self.to.succ_opt().unwrap_or(self.to);
        (midnight(self.from), midnight(end))
    }
}

/// Paris midnight of a day, as epoch milliseconds (midnight always exists in Paris: the
/// clocks change at 02:00 and 03:00).
fn midnight(day: NaiveDate) -> EpochMillis {
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight");
    Paris
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis().max(0) as EpochMillis)
        .unwrap_or(0)
}

/// What the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Local day of arrival (every day of the period, empty ones too).
    Day,
    /// Local hour of arrival, with its UTC offset (every hour: a DST day has 23 or 25).
    Hour,
    /// Entry line (`samu`, `sas`…).
    Line,
    /// The first queue the call waited in; escalation figures go to their own queue.
    Queue,
    /// The seat that answered first; talk and wrap-up go to each seat that handled it.
    Seat,
    /// Month, postcode and commune of the call file (the SAS 92 table).
    Commune,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Day,
        GroupBy::Hour,
        GroupBy::Line,
        GroupBy::Queue,
        GroupBy::Seat,
        GroupBy::Commune,
    ];

    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
            GroupBy::Line => "line",
            GroupBy::Queue => "queue",
            GroupBy::Seat => "seat",
            GroupBy::Commune => "commune",
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.label() == s)
            .ok_or_else(|| ReportError::BadGrouping(s.to_string()))
    }
}

/// Waits of one escalation target: how many, how many answered, their sum and longest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level2 {
    /// Escalations (waits in the target's queues).
    pub escalated: u64,
    /// Of which a regulator answered.
    pub answered: u64,
    /// Sum of the answered waits, ms.
    pub wait_ms: u64,
    /// Longest answered wait, ms.
    pub max_ms: u64,
}

impl Level2 {
    fn add(&mut self, other: &Level2) {
        self.escalated += other.escalated;
        self.answered += other.answered;
        self.wait_ms += other.wait_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }
}

/// The figures of one row (or of the totals).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// What the row is (a day, an hour, a line…; `-` when the call has none).
    pub key: String,
    /// Calls that arrived.
    pub received: u64,
    /// Answered by a seat of their first queue (the ARM).
    pub answered: u64,
    /// Of which within 30 s of arrival.
    pub answered_30s: u64,
    /// Of which within 60 s of arrival.
    pub answered_60s: u64,
    /// Sum of those answered calls' waits, ms.
    pub answer_wait_ms: u64,
    /// The caller hung up while waiting, after the misdial threshold.
    pub abandoned: u64,
    /// The caller hung up before the misdial threshold.
    pub misdials: u64,
    /// Calls a queue's limit sent elsewhere (dial plan overflow).
    pub overflows: u64,
    /// Calls forwarded through the trunk (backup centre…), the 3114 apart.
    pub forwards: u64,
    /// Calls forwarded to the 3114.
    pub forwards_3114: u64,
    /// Calls that waited in a SAS Psy queue.
    pub psy: u64,
    /// Seat stints on calls (an ARM answer, a regulator's, a transfer's).
    pub handled: u64,
    /// Time seats spent on calls, ms.
    pub talk_ms: u64,
    /// Time from a seat leaving a call to its last write of the call file, ms.
    pub wrap_up_ms: u64,
    pub l2_amu: Level2,
    pub l2_liberal: Level2,
    pub l2_psy: Level2,
    /// Escalations of P0 calls (also counted in their target).
    pub l2_p0: Level2,
    /// Calls whose file carries a decision.
    pub decisions: u64,
    /// Decisions: SAS appointment (soins non programmés within 48 h).
    pub decisions_rdv: u64,
    /// Decisions: handed to the 3114.
    pub decisions_3114: u64,
}

impl Row {
    /// Calls a plateau had to answer: misdials are not demand (the base of the answered
    /// within 30 s / 60 s shares).
    pub fn demand(&self) -> u64 {
        self.received - self.misdials
    }

    fn keyed(key: String) -> Self {
        Row {
            key,
            ..Row::default()
        }
    }

    /// Adds `o`'s figures to these (the key stays).
    pub fn add(&mut self, o: &Row) {
        self.received += o.received;
        self.answered += o.answered;
        self.answered_30s += o.answered_30s;
        self.answered_60s += o.answered_60s;
        self.answer_wait_ms += o.answer_wait_ms;
        self.abandoned += o.abandoned;
        self.misdials += o.misdials;
        self.overflows += o.overflows;
        self.forwards += o.forwards;
        self.forwards_3114 += o.forwards_3114;
        self.psy += o.psy;
        self.handled += o.handled;
        self.talk_ms += o.talk_ms;
        self.wrap_up_ms += o.wrap_up_ms;
        self.l2_amu.add(&o.l2_amu);
        self.l2_liberal.add(&o.l2_liberal);
        self.l2_psy.add(&o.l2_psy);
        self.l2_p0.add(&o.l2_p0);
        self.decisions += o.decisions;
        self.decisions_rdv += o.decisions_rdv;
        self.decisions_3114 += o.decisions_3114;
    }
}

/// A finished report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub period: Period,
    pub by: GroupBy,
    /// In time order for days and hours, by key otherwise.
    pub rows: Vec<Row>,
    /// The sum of the rows.
    pub total: Row,
}

/// Sums the records of a period, grouped.
pub struct ReportBuilder {
    period: Period,
    by: GroupBy,
    bounds: (EpochMillis, EpochMillis),
    /// Rows by (order, key): order is the bucket's start for days and hours, 0 otherwise.
    rows: BTreeMap<(EpochMillis, String), Row>,
}

impl ReportBuilder {
    pub fn new(period: Period, by: GroupBy) -> Self {
        let bounds = period.bounds();
        let mut rows = BTreeMap::new();
        // Empty days and hours are rows too: a report says "0" rather than skip a night.
        if matches!(by, GroupBy::Day | GroupBy::Hour) {
            let step = if by == GroupBy::Day { 0 } else { HOUR };
            let mut at = bounds.0;
            while at < bounds.1 {
                let (order, key) = time_bucket(by, at);
                rows.insert((order, key.clone()), Row::keyed(key));
                let next = if step == 0 {
                    next_day(at)
                } else {
                    order + step
                };
                // The calendar's last day has no next one.
                if next <= at {
                    break;
                }
                at = next;
            }
        }
        Self {
            period,
            by,
            bounds,
            rows,
        }
    }

    /// Where the builder wants records from (arrival, `[start, end)`).
    pub fn bounds(&self) -> (EpochMillis, EpochMillis) {
        self.bounds
    }

    /// Counts one call; a call that arrived outside the period is ignored.
    pub fn add(&mut self, record: &CallRecord) {
        if record.arrived_at < self.bounds.0 || record.arrived_at >= self.bounds.1 {
            return;
        }
        for (key, delta) in figures::contributions(record, self.by) {
            let slot = match key {
                figures::Key::Time(at) => time_bucket(self.by, at),
                figures::Key::Name(name) => (0, name),
            };
            self.rows
                .entry(slot.clone())
                .or_insert_with(|| Row::keyed(slot.1))
                .add(&delta);
        }
    }

    pub fn finish(self) -> Report {
        let rows: Vec<Row> = self.rows.into_values().collect();
        let mut total = Row::keyed("TOTAL".into());
        for row in &rows {
            total.add(row);
        }
        Report {
            period: self.period,
            by: self.by,
            rows,
            total,
        }
    }
}

/// What one call adds, row by row, to a grouping by name (line, queue, seat, commune):
/// live figures (the wallboard's) are the report's sums, kept up to date call by call.
/// A grouping by day or hour gives nothing here.
pub fn named_rows(record: &CallRecord, by: GroupBy) -> Vec<(String, Row)> {
    figures::contributions(record, by)
        .into_iter()
        .filter_map(|(key, row)| match key {
            figures::Key::Name(name) => Some((name, row)),
            figures::Key::Time(_) => None,
        })
        .collect()
}

const HOUR: EpochMillis = 3_600_000;

/// The day or hour an instant falls in: its start (for order) and its local label.
fn time_bucket(by: GroupBy, at: EpochMillis) -> (EpochMillis, String) {
    let local = Paris
        .timestamp_millis_opt(at as i64)
        .single()
        .expect("in range");
    match by {
        GroupBy::Hour => {
            // Paris offsets are whole hours: the UTC hour is the local one.
            let start = at - at % HOUR;
            let local = Paris
                .timestamp_millis_opt(start as i64)
                .single()
                .expect("in range");
            (start, local.format("%Y-%m-%d %H:00%:z").to_string())
        }
        _ => {
            let day = local.date_naive();
            (midnight(day), day.format("%Y-%m-%d").to_string())
        }
    }
}

/// The local midnight after the day of `at`.
fn next_day(at: EpochMillis) -> EpochMillis {
    let local = Paris
        .timestamp_millis_opt(at as i64)
        .single()
        .expect("in range");
    let day = local.date_naive();
    midnight(day.succ_opt().unwrap_or(day))
}
