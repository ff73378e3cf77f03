//! What one call adds to a report, and to which rows: call figures go to the call's row;
//! a seat's talk and wrap-up go to that seat's row when grouping by seat; an escalation's
//! wait goes to its queue's row when grouping by queue.

use super::{GroupBy, Level2, Row};
use crate::acd::Urgency;
use crate::record::{
    CallRecord, Decision, EscalationTarget as Target, EventKind, Outcome, WaitEnd, escalations,
};
use crate::time::EpochMillis;
use chrono::TimeZone;
use chrono_tz::Europe::Paris;

/// The row a figure goes to.
pub(super) enum Key {
    /// The day or hour of this instant.
    Time(EpochMillis),
    Name(String),
}

/// Where a forward went: the 3114, or elsewhere (backup centre).
fn to_3114(number: &str) -> bool {
    number.trim_start_matches('+').ends_with("3114")
}

/// The call file as it stands: each field's last written value.
struct File<'a> {
    commune: Option<&'a str>,
    postcode: Option<&'a str>,
    decision: Option<Decision>,
}

fn file(record: &CallRecord) -> File<'_> {
    let mut f = File {
        commune: None,
        postcode: None,
        decision: None,
    };
    for entry in &record.file {
        let data = &entry.data;
        f.commune = data.commune.as_deref().or(f.commune);
        f.postcode = data.postcode.as_deref().or(f.postcode);
        f.decision = data.decision.or(f.decision);
    }
    f
}

/// The figures `record` adds, each with its row.
pub(super) fn contributions(record: &CallRecord, by: GroupBy) -> Vec<(Key, Row)> {
    let waits = record.queue_waits();
    let file = file(record);
    let name = |s: Option<&str>| Key::Name(s.unwrap_or("-").to_string());
    let call_key = || match by {
        GroupBy::Day | GroupBy::Hour => Key::Time(record.arrived_at),
        GroupBy::Line => Key::Name(record.line.clone()),
        GroupBy::Queue => name(waits.first().map(|w| w.queue.as_str())),
        GroupBy::Seat => name(record.seat.as_deref()),
        GroupBy::Commune => {
            let month = Paris
                .timestamp_millis_opt(record.arrived_at as i64)
                .single()
                .map(|t| t.format("%Y-%m").to_string())
                .unwrap_or_default();
            let place = format!(
                "{} {}",
                file.postcode.unwrap_or("-"),
                file.commune.unwrap_or("-")
            );
            Key::Name(format!("{month} {place}"))
        }
    };

    let mut call = Row {
        received: 1,
        ..Row::default()
    };
    if let Some(first) = waits.first().filter(|w| w.end == WaitEnd::Answered) {
        call.answered = 1;
        call.answered_30s = u64::from(first.wait_ms <= 30_000);
        call.answered_60s = u64::from(first.wait_ms <= 60_000);
        call.answer_wait_ms = first.wait_ms;
    }
    call.abandoned = u64::from(record.outcome == Some(Outcome::Abandoned));
    call.misdials = u64::from(record.outcome == Some(Outcome::Misdial));
    let events = |kind: EventKind| record.events.iter().filter(move |e| e.kind == kind);
    call.overflows = u64::from(events(EventKind::Overflow).next().is_some());
    let forwarded = |to: bool| {
        events(EventKind::Forward).any(|e| to_3114(e.detail.as_deref().unwrap_or("")) == to)
    };
    call.forwards = u64::from(forwarded(false));
    call.forwards_3114 = u64::from(forwarded(true));
    call.psy = u64::from(
        waits
            .iter()
            .any(|w| Target::of_queue(&w.queue) == Target::Psy),
    );
    call.decisions = u64::from(file.decision.is_some());
    call.decisions_rdv = u64::from(file.decision == Some(Decision::RdvSnp48h));
    call.decisions_3114 = u64::from(file.decision == Some(Decision::Ligne3114));

    let mut out = vec![(call_key(), call)];

    let p0 = record.urgency == Some(Urgency::P0);
    for wait in escalations(&waits) {
        let mut l2 = Level2 {
            escalated: 1,
            ..Level2::default()
        };
        if wait.end == WaitEnd::Answered {
            l2.answered = 1;
            l2.wait_ms = wait.wait_ms;
            l2.max_ms = wait.wait_ms;
        }
        let mut row = Row::default();
        match Target::of_queue(&wait.queue) {
            Target::Amu => row.l2_amu = l2,
            Target::Liberal => row.l2_liberal = l2,
            Target::Psy => row.l2_psy = l2,
        }
        if p0 {
            row.l2_p0 = l2;
        }
        let key = match by {
            GroupBy::Queue => Key::Name(wait.queue.clone()),
            _ => call_key(),
        };
        out.push((key, row));
    }

    for (i, stint) in record.handlers.iter().enumerate() {
        let until = stint.until.or(record.ended_at).unwrap_or(stint.from);
        let mut row = Row {
            handled: 1,
            talk_ms: until.saturating_sub(stint.from),
            ..Row::default()
        };
        // Wrap-up once per seat, after its last stint: until its last write of the file.
        let last_stint = !record.handlers[i + 1..]
            .iter()
            .any(|h| h.seat == stint.seat);
        if last_stint {
            let last_write = record
                .file
                .iter()
                .filter(|f| f.seat == stint.seat)
                .map(|f| f.at)
                .max();
            row.wrap_up_ms = last_write.map_or(0, |at| at.saturating_sub(until));
        }
        let key = match by {
            GroupBy::Seat => Key::Name(stint.seat.clone()),
            _ => call_key(),
        };
        out.push((key, row));
    }
    out
}
