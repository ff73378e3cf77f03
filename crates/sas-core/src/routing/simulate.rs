//! Dry runs of the dial plans: which way a call to a number goes at a given instant, with
//! the keys the caller would press, step by step with the schedule decisions that led there
//! (`sas-router simulate`). Sans-IO: the same interpreter as live calls, fed instants and
//! keys instead of events.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone};

use super::flow::{Flow, Instruction};
use super::plan::{Action, Entry, PlanSet};
use crate::sip::numbers::normalise;
use crate::time::EpochMillis;

/// Instructions walked before a simulation is declared endless (a menu asked again and
/// again is bounded by its retries; this bounds everything else).
const MAX_INSTRUCTIONS: usize = 100;

/// The path of one simulated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    /// The entry that answered.
    pub entry: String,
    /// One line per decision, in order.
    pub steps: Vec<String>,
    /// Where the call ends up.
    pub outcome: String,
    /// The entry's backup centre step and what sends calls there, one line each (empty:
    /// the entry has no `backup`).
    pub backup: Vec<String>,
}

/// Simulates a call to `number` at `at`, the caller pressing `digits` one per menu.
pub fn simulate(
    plans: Arc<PlanSet>,
    number: &str,
    at: EpochMillis,
    digits: &str,
) -> Result<Simulation, String> {
    let called = normalise(number);
    let calendar = Arc::clone(&plans);
    // A trunk number starts its entry; an internal number (what a seat dials or transfers
    // to) starts at its step.
    let internal = plans
        .internal
        .values()
        .find(|i| i.number == called)
        .cloned();
    let backup = plans
        .entry_for(&called)
        .map(|e| backup_lines(&plans, e))
        .unwrap_or_default();
    let (entry, started) = match (plans.entry_for(&called), internal) {
        (Some(e), _) => {
            let name = e.name.clone();
            let started = Flow::start(plans, &name, at, calendar.as_ref());
            (name, started)
        }
        (None, Some(i)) => {
            let started = Flow::dialled(plans, &i.entry, &i.step, "a seat", at, calendar.as_ref());
            (
                format!("{} (internal number, step {})", i.entry, i.step),
                started,
            )
        }
        (None, None) => {
            return Err(format!(
                "no entry answers {called}: the call would be refused (404)"
            ));
        }
    };
    let (mut flow, mut next) = started.ok_or_else(|| format!("entry {entry} vanished"))?;
    let mut keys = digits.chars();
    for _ in 0..MAX_INSTRUCTIONS {
        let following = match &next {
            Instruction::Play {
                wait_key_s: None, ..
            } => flow.on_prompt_ended(at, calendar.as_ref()),
            Instruction::Play {
                wait_key_s: Some(_),
                ..
            } => match keys.next() {
                Some(key) => flow.on_digit(key, at, calendar.as_ref()),
                None => flow.on_key_timeout(at, calendar.as_ref()),
            },
            Instruction::Queue {
                max_wait_s: Some(_),
                ..
            } => {
                return Ok(Simulation {
                    entry,
                    steps: overflowed(&flow, at, calendar.as_ref()),
                    outcome: describe(&next),
                    backup,
                });
            }
            _ => {
                return Ok(Simulation {
                    entry,
                    steps: flow.trace().to_vec(),
                    outcome: describe(&next),
                    backup,
                });
            }
        };
        match following {
            Some(instruction) => next = instruction,
            None => break,
        }
    }
    Err(format!(
        "the call to {called} does not settle: {}",
        flow.trace().join("; ")
    ))
}

/// The backup centre step of `entry` (what it does), when the line's switch sends calls
/// there, and its automatic triggers (`backup_when`).
fn backup_lines(plans: &PlanSet, entry: &Entry) -> Vec<String> {
    let Some(step) = &entry.backup else {
        return Vec::new();
    };
    let does = match entry.steps.get(step).map(|s| &s.action) {
        Some(Action::Forward { to, .. }) => {
            let number = plans.external.get(to).map_or("?", String::as_str);
            format!("forward to {to} ({number}) through the trunk")
        }
        Some(other) => format!("goes on to {}", other.targets().join(", ")),
        None => "missing step".into(),
    };
    let mut lines = vec![
        format!("backup step {step}: {does}"),
        format!(
            "while line {} is switched (sas-router lines switch {}): every new call, at once",
            entry.line, entry.line
        ),
    ];
    let when = &entry.backup_when;
    let mut auto = Vec::new();
    if when.no_seat {
        auto.push("no seat of the queue's role is logged in and unpaused (no_seat)".to_string());
    }
    if when.queue_full {
        auto.push("the queue is full (queue_full)".into());
    }
    if let Some(n) = when.max_waiting {
        auto.push(format!("{n} calls already wait in the queue (threshold)"));
    }
    if let Some(s) = when.max_wait_s {
        auto.push(format!(
            "the longest wait in the queue reaches {s} s (threshold)"
        ));
    }
    lines.push(match auto.is_empty() {
        true => "automatically: never (no backup_when)".into(),
        false => format!(
            "automatically, as a call reaches a queue, when {}",
            auto.join(", or ")
        ),
    });
    lines
}

fn describe(last: &Instruction) -> String {
    match last {
        Instruction::Queue { queue, .. } => format!("waits in queue {queue}"),
        Instruction::Forward { number } => format!("forwarded to {number}"),
        Instruction::HangUp { .. } => "hung up".into(),
        Instruction::Play { prompt, .. } => format!("hears {prompt}"),
    }
}

/// A queue with an overflow: the trace shows the wait, then what happens if no seat
/// answers in time (followed to its end).
fn overflowed(flow: &Flow, at: EpochMillis, calendar: &PlanSet) -> Vec<String> {
    let mut steps = flow.trace().to_vec();
    let mut after = flow.clone();
    let mut next = after.on_queue_timeout(at, calendar);
    for _ in 0..MAX_INSTRUCTIONS {
        next = match next {
            Some(Instruction::Play {
                wait_key_s: None, ..
            }) => after.on_prompt_ended(at, calendar),
            Some(Instruction::Play { .. }) => after.on_key_timeout(at, calendar),
            Some(Instruction::Queue {
                max_wait_s: Some(_),
                ..
            }) => after.on_queue_timeout(at, calendar),
            _ => break,
        };
    }
    let more = &after.trace()[steps.len()..];
    steps.extend(more.iter().map(|l| format!("(if no seat answers) {l}")));
    steps
}

/// An instant given as local time in Europe/Paris (`2026-12-25T03:00`, seconds optional)
/// or with an offset (`2026-12-25T03:00+01:00`, `…Z`). At the autumn change the earlier of
/// the two 02:xx is taken; a spring-forward 02:xx does not exist and is refused.
pub fn parse_instant(text: &str) -> Result<EpochMillis, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return u64::try_from(t.timestamp_millis()).map_err(|_| "before 1970".to_string());
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!("\"{text}\" is not a date and time like 2026-12-25T03:00 (Paris time)")
        })?;
    let local = chrono_tz::Europe::Paris
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| format!("{text} does not exist in Paris (the clocks skip that hour)"))?;
    u64::try_from(local.timestamp_millis()).map_err(|_| "before 1970".to_string())
}
