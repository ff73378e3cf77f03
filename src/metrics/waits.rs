//! Waits counted as they end, read from the call's record ([`CallRecord::queue_waits`],
//! the definition reports use too): each in `queue_wait_seconds{queue,outcome}`; the
//! first, the call's "décroché", in `line_wait_seconds{line,outcome}` (a misdial counted
//! apart); every later one, an escalation (the "second décroché"), in
//! `escalation_wait_seconds{target,priority_class,outcome}`.
//!
//! A wait a seat answers is counted when it answers ([`WaitObserver::answered`]), not when
//! the call ends minutes later; the rest when the call ends ([`WaitObserver::finished`]).
//! The waits of a record only ever grow at the end, so counting from the last one seen
//! counts each once.

use super::{Metrics, priority_class};
use crate::acd::Urgency;
use crate::store::record::{CallRecord, EscalationTarget, Outcome, WaitEnd};
use std::collections::HashMap;

/// How many waits of each live call are counted already.
#[derive(Default)]
pub struct WaitObserver {
    counted: HashMap<String, usize>,
}

impl WaitObserver {
    /// A seat answered the live call of `record` (whose urgency is `urgency`).
    pub fn answered(&mut self, metrics: &Metrics, record: &CallRecord, urgency: Urgency) {
        let counted = self.counted.get(&record.id).copied().unwrap_or(0);
        let now = count(metrics, record, urgency, counted);
        if now > counted {
            self.counted.insert(record.id.clone(), now);
        }
    }

    /// The call is over: counts what is left of its waits and forgets it.
    pub fn finished(&mut self, metrics: &Metrics, record: &CallRecord) {
        let counted = self.counted.remove(&record.id).unwrap_or(0);
        let urgency = record.urgency.unwrap_or(Urgency::Nr);
        count(metrics, record, urgency, counted);
    }

    /// Live calls with waits counted (an entry of [`Metrics::live_entries`]).
    pub fn len(&self) -> usize {
        self.counted.len()
    }

    /// None.
    pub fn is_empty(&self) -> bool {
        self.counted.is_empty()
    }
}

/// Counts the waits of `record` after the first `counted`; returns how many it has.
fn count(metrics: &Metrics, record: &CallRecord, urgency: Urgency, counted: usize) -> usize {
    let waits = record.queue_waits();
    for (i, wait) in waits.iter().enumerate().skip(counted) {
        let seconds = wait.wait_ms as f64 / 1000.0;
        let end = wait.end.label();
        metrics
            .queue_wait
            .with_label_values(&[&wait.queue, end])
            .observe(seconds);
        if i == 0 {
            let misdial =
                wait.end == WaitEnd::Abandoned && record.outcome == Some(Outcome::Misdial);
            let outcome = if misdial { "misdial" } else { end };
            metrics
                .line_wait
                .with_label_values(&[&record.line, outcome])
                .observe(seconds);
        } else {
            let target = EscalationTarget::of_queue(&wait.queue).label();
            metrics
                .escalation_wait
                .with_label_values(&[target, priority_class(urgency), end])
                .observe(seconds);
        }
    }
    waits.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::CallerNumber;
    use crate::store::record::EventKind;

    fn escalated_p0() -> CallRecord {
        let mut r = CallRecord::new(
            "c1".into(),
            "x".into(),
            "samu".into(),
            "15".into(),
            CallerNumber::new("0612345678"),
            0,
        );
        r.enter_queue(1_000, "arm", "arm priority 0".into());
        r.event(12_000, EventKind::Connect, Some("arm1"), None);
        r.event(40_000, EventKind::Transfer, Some("arm1"), None);
        r.enter_queue(40_000, "amu", "amu priority 0 urgency P0".into());
        r
    }

    fn sample(metrics: &Metrics, sample: &str) -> bool {
        metrics.render().lines().any(|l| l == sample)
    }

    #[test]
    fn a_lines_and_a_queues_series_are_at_zero_before_their_first_call() {
        // increase() counts from a series' first scrape: born at 1, the first call is lost.
        let metrics = Metrics::new();
        metrics.init_line("samu");
        metrics.init_queue("arm");
        for zero in [
            "sas_line_wait_seconds_count{line=\"samu\",outcome=\"abandoned\"} 0",
            "sas_line_wait_seconds_count{line=\"samu\",outcome=\"misdial\"} 0",
            "sas_line_wait_seconds_bucket{line=\"samu\",outcome=\"answered\",le=\"30\"} 0",
            "sas_calls_total{line=\"samu\",outcome=\"answered\"} 0",
            "sas_calls_total{line=\"samu\",outcome=\"closed\"} 0",
            "sas_line_switched{line=\"samu\"} 0",
            "sas_queue_wait_seconds_count{outcome=\"overflowed\",queue=\"arm\"} 0",
        ] {
            assert!(sample(&metrics, zero), "{zero}\n{}", metrics.render());
        }
    }

    #[test]
    fn each_wait_counts_once_when_answered_and_the_rest_at_the_end() {
        let metrics = Metrics::new();
        let mut observer = WaitObserver::default();
        let mut r = escalated_p0();
        // The ARM answered: the décroché counts, per line.
        observer.answered(&metrics, &r, Urgency::P0);
        r.event(46_500, EventKind::Connect, Some("amu1"), None);
        // The doctor answered: the escalation counts now, with its target and P0.
        observer.answered(&metrics, &r, Urgency::P0);
        observer.answered(&metrics, &r, Urgency::P0);
        let p0_amu = "sas_escalation_wait_seconds_bucket{outcome=\"answered\",\
                      priority_class=\"p0\",target=\"amu\",le=\"10\"} 1";
        assert!(sample(&metrics, p0_amu), "{}", metrics.render());
        assert!(sample(
            &metrics,
            "sas_line_wait_seconds_count{line=\"samu\",outcome=\"answered\"} 1"
        ));
        assert_eq!(observer.len(), 1);
        // The end adds nothing already counted, and forgets the call.
        r.event(90_000, EventKind::End, None, Some("caller_bye".into()));
        r.outcome = Some(Outcome::Answered);
        r.urgency = Some(Urgency::P0);
        observer.finished(&metrics, &r);
        assert!(observer.is_empty());
        assert!(sample(
            &metrics,
            "sas_queue_wait_seconds_count{outcome=\"answered\",queue=\"amu\"} 1"
        ));
        assert!(sample(
            &metrics,
            "sas_escalation_wait_seconds_count{outcome=\"answered\",priority_class=\"p0\",target=\"amu\"} 1"
        ));
    }

    #[test]
    fn an_abandoned_escalation_and_a_misdial_count_when_the_call_ends() {
        let metrics = Metrics::new();
        let mut observer = WaitObserver::default();
        let mut r = escalated_p0();
        observer.answered(&metrics, &r, Urgency::P1);
        r.event(100_000, EventKind::Abandon, None, None);
        r.outcome = Some(Outcome::Answered);
        r.urgency = Some(Urgency::P1);
        observer.finished(&metrics, &r);
        assert!(sample(
            &metrics,
            "sas_escalation_wait_seconds_count{outcome=\"abandoned\",priority_class=\"other\",target=\"amu\"} 1"
        ));

        let mut misdial = CallRecord::new(
            "c2".into(),
            "x".into(),
            "sas".into(),
            "116117".into(),
            CallerNumber::new("0612345678"),
            0,
        );
        misdial.enter_queue(500, "arm", "arm priority 1".into());
        misdial.event(3_000, EventKind::Abandon, None, None);
        misdial.outcome = Some(Outcome::Misdial);
        observer.finished(&metrics, &misdial);
        assert!(sample(
            &metrics,
            "sas_line_wait_seconds_count{line=\"sas\",outcome=\"misdial\"} 1"
        ));
        assert!(observer.is_empty());
    }
}
