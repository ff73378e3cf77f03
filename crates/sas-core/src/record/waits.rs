//! The waits of one call, queue by queue, read from its timeline: what the per-queue
//! wait histogram counts. An escalated call waits twice (for an ARM, then for a
//! regulator), and each wait belongs to its own queue and ends its own way.
//!
//! The first wait is the call's "décroché" (the SUdF figure, per line); every later one is
//! an escalation, the "second décroché", filed by [`EscalationTarget`]. Reports and
//! metrics both read them from here.

use super::{CallRecord, EventKind};
use crate::time::EpochMillis;

/// How a wait in a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// A seat of the queue answered.
    Answered,
    /// The caller hung up while waiting.
    Abandoned,
    /// The dial plan took the call elsewhere (overflow, forward, another queue).
    Overflowed,
}

impl WaitEnd {
    /// Label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            WaitEnd::Answered => "answered",
            WaitEnd::Abandoned => "abandoned",
            WaitEnd::Overflowed => "overflowed",
        }
    }
}

/// Where an escalation went, read from its queue's name (`amu`, `liberal`/`osnp`, `psy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationTarget {
    /// The SAMU's emergency doctors.
    Amu,
    /// Libéral regulators, OSNP and any other regulation queue: the city's doctors.
    Liberal,
    /// SAS Psy responders.
    Psy,
}

impl EscalationTarget {
    /// Every target, for metrics that show each from the start.
    pub const ALL: [EscalationTarget; 3] = [Self::Amu, Self::Liberal, Self::Psy];

    /// The target of a queue, by its name.
    pub fn of_queue(queue: &str) -> Self {
        let queue = queue.to_ascii_lowercase();
        if queue.contains("psy") {
            Self::Psy
        } else if queue.contains("amu") {
            Self::Amu
        } else {
            Self::Liberal
        }
    }

    /// Label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Amu => "amu",
            Self::Liberal => "liberal",
            Self::Psy => "psy",
        }
    }
}

/// The escalations among a call's waits ([`CallRecord::queue_waits`]): every wait after
/// the first.
pub fn escalations(waits: &[QueueWait]) -> &[QueueWait] {
    waits.get(1..).unwrap_or_default()
}

/// One wait of the call in one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueWait {
    /// Dial plan queue name.
    pub queue: String,
    /// How long, ms. The first wait counts from the call's arrival (greeting and menu
    /// included: that is the caller's wait for a human); later ones from entering the queue.
    pub wait_ms: u64,
    pub end: WaitEnd,
}

impl CallRecord {
    /// The call's waits, in order. A failed call (the router's fault) has none: it says
    /// nothing about the queue.
    pub fn queue_waits(&self) -> Vec<QueueWait> {
        let mut waits = Vec::new();
        if self.outcome == Some(super::Outcome::Failed) {
            return waits;
        }
        let mut open: Option<(String, EpochMillis)> = None;
        let mut entered = false;
        let mut close = |open: &mut Option<(String, EpochMillis)>, at: EpochMillis, end| {
            if let Some((queue, since)) = open.take() {
                waits.push(QueueWait {
                    queue,
                    wait_ms: at.saturating_sub(since),
                    end,
                });
            }
        };
        for e in &self.events {
            match e.kind {
                EventKind::EnterQueue => {
                    // Records written before the event carried its queue: the detail's
                    // first word ("<queue> priority <n>…").
                    let queue = match &e.queue {
                        Some(queue) => Some(queue.as_str()),
                        None => e.detail.as_deref().unwrap_or("").split(' ').next(),
                    };
                    let queue = queue.filter(|q| !q.is_empty()).unwrap_or("none");
                    if open.as_ref().is_some_and(|(q, _)| q == queue) {
                        continue;
                    }
                    close(&mut open, e.at, WaitEnd::Overflowed);
                    let since = if entered { e.at } else { self.arrived_at };
                    entered = true;
                    open = Some((queue.to_string(), since));
                }
                // Refused (queue full): the call did not wait there.
                EventKind::QueueRefused => open = None,
                EventKind::Connect => close(&mut open, e.at, WaitEnd::Answered),
                EventKind::Overflow | EventKind::Forward => {
                    close(&mut open, e.at, WaitEnd::Overflowed)
                }
                EventKind::Abandon | EventKind::End => close(&mut open, e.at, WaitEnd::Abandoned),
                _ => {}
            }
        }
        waits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::CallerNumber;

    fn call(events: &[(u64, &str, Option<&str>)]) -> CallRecord {
        let mut r = CallRecord::new(
            "id".into(),
            "x".into(),
            "samu".into(),
            "15".into(),
            CallerNumber::new("0612345678"),
            0,
        );
        for (at, kind, detail) in events {
            r.event(
                *at,
                EventKind::from(*kind),
                None,
                detail.map(str::to_string),
            );
        }
        r
    }

    fn waits(r: &CallRecord) -> Vec<(String, u64, &'static str)> {
        r.queue_waits()
            .into_iter()
            .map(|w| (w.queue, w.wait_ms, w.end.label()))
            .collect()
    }

    #[test]
    fn an_escalated_call_waits_for_an_arm_then_for_amu() {
        let r = call(&[
            (3_000, "ENTERQUEUE", Some("arm priority 0")),
            (12_000, "OFFER", None),
            (14_000, "CONNECT", None),
            (40_000, "TRANSFER", None),
            (40_000, "ENTERQUEUE", Some("amu priority 0 urgency P1")),
            (43_500, "CONNECT", None),
            (90_000, "END", Some("caller_bye")),
        ]);
        assert_eq!(
            waits(&r),
            [
                ("arm".into(), 14_000, "answered"),
                ("amu".into(), 3_500, "answered")
            ]
        );
    }

    /// The queue is a field of the event: the detail's wording does not matter (records
    /// written before the field still read the detail's first word, as above).
    #[test]
    fn the_queue_entered_is_read_from_the_event() {
        let mut r = call(&[]);
        r.enter_queue(2_000, "sas psy", "priority 1 (queue \"sas psy\")".into());
        r.event(5_000, EventKind::Connect, Some("psy1"), None);
        assert_eq!(waits(&r), [("sas psy".into(), 5_000, "answered")]);
    }

    #[test]
    fn abandons_overflows_refusals_and_requeues() {
        let r = call(&[
            (1_000, "ENTERQUEUE", Some("liberal priority 1")),
            (31_000, "OVERFLOW", None),
            (31_000, "ENTERQUEUE", Some("amu priority 1")),
            (31_000, "ENTERQUEUE", Some("amu priority 1")),
            (41_000, "ABANDON", Some("waited 41000 ms")),
            (41_000, "END", Some("caller_bye")),
        ]);
        assert_eq!(
            waits(&r),
            [
                ("liberal".into(), 31_000, "overflowed"),
                ("amu".into(), 10_000, "abandoned")
            ]
        );
        let refused = call(&[
            (1_000, "ENTERQUEUE", Some("arm priority 0")),
            (1_000, "QUEUE_REFUSED", Some("full")),
            (1_000, "FORWARD", Some("0102030405")),
        ]);
        assert_eq!(waits(&refused), []);
        // A seat lost mid-call: the caller waits again in the same queue.
        let requeued = call(&[
            (1_000, "ENTERQUEUE", Some("arm priority 0")),
            (2_000, "CONNECT", None),
            (10_000, "SEAT_LOST", None),
            (10_000, "ENTERQUEUE", Some("arm priority 0")),
            (15_000, "CONNECT", None),
        ]);
        assert_eq!(
            waits(&requeued),
            [
                ("arm".into(), 2_000, "answered"),
                ("arm".into(), 5_000, "answered")
            ]
        );
    }
}
