//! Call records built as the router writes them, at given seconds after arrival: the
//! known calls of the report's and the wallboard's tests.

use crate::acd::Urgency;
use crate::pii::CallerNumber;
use crate::record::{CallRecord, Decision, EventKind, FileEntry, Handler, Outcome, Qualification};
use chrono::TimeZone;
use chrono_tz::Europe::Paris;

pub(crate) const S: u64 = 1_000;

/// Epoch ms of a Paris local time.
pub(crate) fn paris(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> u64 {
    Paris
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .earliest()
        .unwrap()
        .timestamp_millis() as u64
}

/// A call arriving at `t0` on `line`; events and the rest are set by the steps.
pub(crate) struct Call(pub(crate) CallRecord);

impl Call {
    pub(crate) fn new(id: &str, line: &str, t0: u64) -> Self {
        Call(CallRecord::new(
            id.into(),
            format!("sip-{id}"),
            line.into(),
            "15".into(),
            CallerNumber::new("0612345678"),
            t0,
        ))
    }
    pub(crate) fn at(&self, s: u64) -> u64 {
        self.0.arrived_at + s * S
    }
    pub(crate) fn queue(mut self, s: u64, queue: &str) -> Self {
        let at = self.at(s);
        self.0.enter_queue(at, queue, format!("{queue} priority 1"));
        self.0.queued_at.get_or_insert(at);
        self
    }
    pub(crate) fn event(mut self, s: u64, kind: EventKind, detail: Option<&str>) -> Self {
        let at = self.at(s);
        self.0.event(at, kind, None, detail.map(str::to_string));
        self
    }
    /// `seat` answers at `from` and leaves at `until` (seconds after arrival).
    pub(crate) fn answer(mut self, seat: &str, from: u64, until: u64) -> Self {
        let (from, until) = (self.at(from), self.at(until));
        self.0.event(from, EventKind::Connect, Some(seat), None);
        self.0.answered_at.get_or_insert(from);
        self.0.seat.get_or_insert_with(|| seat.to_string());
        self.0.handlers.push(Handler {
            seat: seat.into(),
            role: "arm".into(),
            from,
            until: Some(until),
            left: None,
        });
        self
    }
    pub(crate) fn file(
        mut self,
        s: u64,
        seat: &str,
        place: Option<(&str, &str)>,
        d: Decision,
    ) -> Self {
        let at = self.at(s);
        self.0.add_file(FileEntry {
            at,
            seat: seat.into(),
            data: Qualification {
                postcode: place.map(|p| p.0.to_string()),
                commune: place.map(|p| p.1.to_string()),
                decision: Some(d),
                ..Qualification::default()
            },
        });
        self
    }
    pub(crate) fn end(mut self, s: u64, outcome: Outcome) -> Self {
        let at = self.at(s);
        self.0
            .event(at, EventKind::End, None, Some("caller_bye".into()));
        self.0.ended_at = Some(at);
        self.0.outcome = Some(outcome);
        self
    }
    pub(crate) fn urgency(mut self, u: Urgency) -> Self {
        self.0.urgency = Some(u);
        self
    }
}
