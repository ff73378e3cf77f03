//! The live wallboard (sans-IO: the Router's state and the finished calls' tally in, a
//! board out), drawn every second by the call driver for the wall display and the
//! supervisor's console panel.
//!
//! Per line (15, 116 117, SAS Psy…) and per queue: calls waiting and since when the
//! longest has waited (the board ticks it), answered within 30 s / 60 s today and over the
//! last hour, abandons and misdials apart, overflows and forwards to the backup centre
//! (`tally`, the activity report's sums); a line switched to the backup centre is red. Per
//! seat: its state and since when, its pause reason, its call's line and priority.
//! Escalations in progress are listed as what they are: a call waiting for a regulator
//! (AMU, libéral, psy) and the ARM who stays with the caller. `limits` says when a cell
//! turns amber and red. The board holds no caller number.

mod limits;
mod tally;
#[cfg(test)]
mod tests;

pub use limits::{Level, Limits, LimitsError, Thresholds};
pub use tally::{Figures, HOUR_MS, Sums, Tally};

use crate::acd::{PauseReason, SeatState, Urgency};
use crate::call::Party;
use crate::call::router::Router;
use crate::report::Row;
use crate::routing::plan::PlanSet;
use crate::time::{EpochMillis, Now};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the board shows rows for, and its thresholds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Lines the trunk reaches, in order.
    pub lines: Vec<String>,
    /// Queues of the dial plans, in order.
    pub queues: Vec<String>,
    pub thresholds: Thresholds,
}

impl Layout {
    /// The lines of the entries the trunk reaches (internal-only entries, such as the
    /// escalation one, are no line of the plateau) and every queue.
    pub fn from_plans(plans: &PlanSet, thresholds: Thresholds) -> Self {
        let mut lines: Vec<String> = plans
            .entries
            .values()
            .filter(|e| !e.numbers.is_empty())
            .map(|e| e.line.clone())
            .collect();
        lines.sort();
        lines.dedup();
        Self {
            lines,
            queues: plans.queues.keys().cloned().collect(),
            thresholds,
        }
    }
}

/// Figures of a line or queue over a period (today, last hour).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub received: u64,
    pub answered: u64,
    pub answered_30s: u64,
    pub answered_60s: u64,
    /// Shares of the calls to answer (misdials apart), one decimal; `None` without any.
    pub pct_30s: Option<f64>,
    pub pct_60s: Option<f64>,
    pub abandoned: u64,
    pub misdials: u64,
    pub overflows: u64,
    /// Forwards through the trunk (backup centre), the 3114 apart.
    pub forwards: u64,
    pub forwards_3114: u64,
    /// Escalations to the queue (second level) and how many a regulator answered.
    pub escalated: u64,
    pub escalated_answered: u64,
    /// Longest answered escalation wait, ms.
    pub escalation_max_ms: u64,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

impl From<&Row> for Counts {
    fn from(r: &Row) -> Self {
        let l2 = [&r.l2_amu, &r.l2_liberal, &r.l2_psy];
        Self {
            received: r.received,
            answered: r.answered,
            answered_30s: r.answered_30s,
            answered_60s: r.answered_60s,
            pct_30s: share(r.answered_30s, r.demand()),
            pct_60s: share(r.answered_60s, r.demand()),
            abandoned: r.abandoned,
            misdials: r.misdials,
            overflows: r.overflows,
            forwards: r.forwards,
            forwards_3114: r.forwards_3114,
            escalated: l2.iter().map(|l| l.escalated).sum(),
            escalated_answered: l2.iter().map(|l| l.answered).sum(),
            escalation_max_ms: l2.iter().map(|l| l.max_ms).max().unwrap_or(0),
        }
    }
}

/// One line or queue of the board.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cells {
    /// The line or queue name.
    pub name: String,
    /// Calls waiting (for a line: for their first answer; for a queue: in it).
    pub waiting: usize,
    /// Of which P0.
    pub p0_waiting: usize,
    /// Since when the longest has waited (wall clock; the board ticks from it).
    pub oldest_since: Option<EpochMillis>,
    /// Its wait now, ms.
    pub longest_wait_ms: u64,
    pub today: Counts,
    pub last_hour: Counts,
    pub limits: Limits,
    /// The longest wait's level (the board re-judges it as the wait ticks).
    pub wait_level: Level,
    /// The last hour's share within 60 s against its target.
    pub share_level: Level,
    /// The worst of the above; red when the line is switched to the backup centre.
    pub level: Level,
    /// For a line switched to the backup centre: by whom, why, since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched: Option<crate::call::router::LineSwitch>,
}

/// A seat's call, as the board shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeatCall {
    pub line: String,
    pub queue: Option<String>,
    pub urgency: Option<Urgency>,
    /// The seat stays with a caller waiting for this queue's regulator (an accompanied
    /// escalation nobody answered yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accompanying_to: Option<String>,
}

/// One seat of the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeatCells {
    pub seat: String,
    pub role: String,
    /// `available`, `ringing`, `busy`, `wrap_up`, `paused`, `offline`.
    pub state: &'static str,
    /// Since when, wall clock (the board ticks the time in state).
    pub since: EpochMillis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<PauseReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<SeatCall>,
}

/// A call an ARM escalated, waiting for its regulator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub call: String,
    pub line: String,
    /// The regulators' queue it waits in (`amu`, `liberal`, `psy`…).
    pub queue: String,
    pub urgency: Option<Urgency>,
    pub waiting_since: EpochMillis,
    /// Seats staying with the caller until the regulator answers (accompanied transfer).
    pub accompanied_by: Vec<String>,
}

impl Escalation {
    /// `call` as an escalation in progress: answered once (by an ARM), waiting again for a
    /// regulator. `None` for a call waiting for its first answer or not waiting. The
    /// wallboard and the console's supervisor board both show escalations from this.
    pub fn of(router: &Router, call: &str) -> Option<Self> {
        let sb = router.board();
        let r = sb.record(call)?;
        let since = sb.waiting_since(call)?;
        r.answered_at?;
        Some(Self {
            call: r.id.clone(),
            line: r.line.clone(),
            queue: r.queue.clone().unwrap_or_default(),
            urgency: sb.urgency(call),
            waiting_since: since,
            accompanied_by: seats_of(sb.seats_on(call)),
        })
    }
}

/// The whole board at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Board {
    /// The router's wall clock (the board ticks waits from it, not from its own clock).
    pub now: EpochMillis,
    pub lines: Vec<Cells>,
    pub queues: Vec<Cells>,
    pub seats: Vec<SeatCells>,
    pub escalations: Vec<Escalation>,
    /// P0 calls waiting, any line (the board beeps).
    pub p0_waiting: usize,
}

/// A call waiting for a seat, as the rows count it.
struct Waiting<'a> {
    line: &'a str,
    queue: Option<&'a str>,
    /// Waiting for its first answer (not an escalation).
    first: bool,
    p0: bool,
    /// Since when, for a line: the caller's wait, from arrival.
    arrived_at: EpochMillis,
    /// Since when, for a queue: the wait in it.
    queued_since: EpochMillis,
}

/// Draws the board: the Router's live state, `tally`'s finished calls, `layout`'s rows
/// (a line or queue outside the layout that has calls gets a row too).
pub fn draw(router: &Router, tally: &mut Tally, layout: &Layout, now: Now) -> Board {
    let sb = router.board();
    let figures = tally.figures(now.wall, sb.records());
    let mut waiting = Vec::new();
    let mut escalations = Vec::new();
    for r in sb.records() {
        let Some(since) = sb.waiting_since(&r.id) else {
            continue;
        };
        let urgency = sb.urgency(&r.id);
        let first = r.answered_at.is_none();
        waiting.push(Waiting {
            line: &r.line,
            queue: r.queue.as_deref(),
            first,
            p0: urgency == Some(Urgency::P0),
            arrived_at: r.arrived_at,
            queued_since: since,
        });
        if let Some(e) = Escalation::of(router, &r.id) {
            escalations.push(e);
        }
    }
    escalations.sort_by_key(|e| (e.urgency.unwrap_or_default(), e.waiting_since));

    let switched = router.switched_lines();
    let line_names = names(
        &layout.lines,
        (waiting.iter().map(|w| w.line))
            .chain(figures.today.lines.keys().map(String::as_str))
            .chain(switched.keys().map(String::as_str)),
    );
    let queue_names = names(
        &layout.queues,
        (waiting.iter().filter_map(|w| w.queue))
            .chain(figures.today.queues.keys().map(String::as_str)),
    );
    let lines = line_names
        .into_iter()
        .map(|line| {
            let calls = waiting.iter().filter(|w| w.line == line);
            let mut cells = cells(
                &line,
                calls.clone().filter(|w| w.first).map(|w| w.arrived_at),
                calls.filter(|w| w.p0).count(),
                (&figures.today.lines, &figures.last_hour.lines),
                layout.thresholds.line(&line),
                now.wall,
            );
            if let Some(s) = switched.get(&line) {
                cells.switched = Some(s.clone());
                cells.level = Level::Red;
            }
            cells
        })
        .collect();
    let queues = queue_names
        .into_iter()
        .map(|queue| {
            let calls = waiting.iter().filter(|w| w.queue == Some(queue.as_str()));
            cells(
                &queue,
                calls.clone().map(|w| w.queued_since),
                calls.filter(|w| w.p0).count(),
                (&figures.today.queues, &figures.last_hour.queues),
                layout.thresholds.queue(&queue),
                now.wall,
            )
        })
        .collect();
    Board {
        now: now.wall,
        lines,
        queues,
        seats: seats(router, now),
        escalations,
        p0_waiting: waiting.iter().filter(|w| w.p0).count(),
    }
}

/// The layout's rows, then a row for any other name with something to show.
fn names<'a>(fixed: &[String], others: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names = fixed.to_vec();
    for name in others {
        // `-`: a call with no line or queue (a report's word), no row of its own.
        if !name.is_empty() && name != "-" && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Sums by line or by queue name.
type ByName = BTreeMap<String, Row>;

/// A row's cells: its waiting calls' start times, its P0 count, its sums.
fn cells(
    name: &str,
    since: impl Iterator<Item = EpochMillis>,
    p0_waiting: usize,
    (today, last_hour): (&ByName, &ByName),
    limits: Limits,
    now: EpochMillis,
) -> Cells {
    let since: Vec<EpochMillis> = since.collect();
    let oldest_since = since.iter().min().copied();
    let longest_wait_ms = oldest_since.map_or(0, |s| now.saturating_sub(s));
    let counts = |sums: &ByName| sums.get(name).map(Counts::from).unwrap_or_default();
    let last_hour = counts(last_hour);
    let wait_level = limits.wait_level(longest_wait_ms);
    let share_level = limits.share_level(last_hour.pct_60s);
    Cells {
        name: name.to_string(),
        waiting: since.len(),
        p0_waiting,
        oldest_since,
        longest_wait_ms,
        today: counts(today),
        last_hour,
        limits,
        wait_level,
        share_level,
        level: wait_level.max(share_level),
        switched: None,
    }
}

fn seats_of(parties: Vec<Party>) -> Vec<String> {
    parties
        .into_iter()
        .filter_map(|p| match p {
            Party::Seat(s) => Some(s.to_string()),
            Party::External => None,
        })
        .collect()
}

fn seats(router: &Router, now: Now) -> Vec<SeatCells> {
    let sb = router.board();
    sb.acd()
        .seats()
        .map(|s| {
            let call = match &s.state {
                SeatState::Ringing { call, .. } | SeatState::Busy { call } => sb.record(call),
                _ => None,
            };
            let call = call.map(|r| {
                let escalating = sb.waiting_since(&r.id).is_some() && r.answered_at.is_some();
                SeatCall {
                    line: r.line.clone(),
                    queue: r.queue.clone(),
                    urgency: sb.urgency(&r.id),
                    accompanying_to: escalating
                        .then(|| r.queue.clone())
                        .flatten()
                        .filter(|_| matches!(s.state, SeatState::Busy { .. })),
                }
            });
            SeatCells {
                seat: s.id.to_string(),
                role: s.role.clone(),
                state: s.state.label(),
                since: now.wall_at(s.state_since),
                pause_reason: match s.state {
                    SeatState::Paused { reason, .. } => Some(reason),
                    _ => None,
                },
                call,
            }
        })
        .collect()
}
