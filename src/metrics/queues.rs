//! Queue gauges sampled from the switchboard, once a second rather than after every event:
//! `queue_depth{queue}`, `queue_waiting{line,queue,priority_class}` and
//! `queue_longest_wait_seconds{line,queue,priority_class}` (the longest wait ticks while
//! the call waits, so it needs a clock, not an event). A sample reads the calls in queues,
//! not the seats.
//!
//! Cardinality: lines and queues of the dial plans × `p0`/`other`; a series once seen
//! stays, at 0 when its queue is empty.

use super::{Metrics, priority_class};
use crate::call::QueuedCall;
use crate::time::EpochMillis;
use std::collections::{HashMap, HashSet};

/// Line, queue, priority class.
type Key = (String, String, &'static str);

/// The series shown so far, set back to 0 when their calls are gone.
#[derive(Default)]
pub struct QueueGauges {
    seen: HashSet<Key>,
    queues: HashSet<String>,
}

impl QueueGauges {
    /// Shows the calls in queues now.
    pub fn sample<'a>(
        &mut self,
        metrics: &Metrics,
        calls: impl IntoIterator<Item = QueuedCall<'a>>,
        now: EpochMillis,
    ) {
        let mut groups: HashMap<(&str, &str, &'static str), (i64, EpochMillis)> = HashMap::new();
        let mut depths: HashMap<&str, i64> = HashMap::new();
        for call in calls {
            let key = (call.line, call.queue, priority_class(call.urgency));
            let group = groups.entry(key).or_insert((0, call.since));
            group.0 += 1;
            group.1 = group.1.min(call.since);
            *depths.entry(call.queue).or_insert(0) += 1;
        }
        for (line, queue, class) in &self.seen {
            if !groups.contains_key(&(line.as_str(), queue.as_str(), *class)) {
                let labels = [line.as_str(), queue.as_str(), class];
                metrics.queue_waiting.with_label_values(&labels).set(0);
                metrics
                    .queue_longest_wait
                    .with_label_values(&labels)
                    .set(0.0);
            }
        }
        for queue in &self.queues {
            if !depths.contains_key(queue.as_str()) {
                metrics.queue_depth.with_label_values(&[queue]).set(0);
            }
        }
        for ((line, queue, class), (n, oldest)) in groups {
            let labels = [line, queue, class];
            metrics.queue_waiting.with_label_values(&labels).set(n);
            let longest = now.saturating_sub(oldest) as f64 / 1000.0;
            metrics
                .queue_longest_wait
                .with_label_values(&labels)
                .set(longest);
            self.seen
                .insert((line.to_string(), queue.to_string(), class));
        }
        for (queue, n) in depths {
            metrics.queue_depth.with_label_values(&[queue]).set(n);
            self.queues.insert(queue.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::Urgency;

    fn call<'a>(line: &'a str, queue: &'a str, urgency: Urgency, since: u64) -> QueuedCall<'a> {
        QueuedCall {
            line,
            queue,
            urgency,
            since,
        }
    }

    #[test]
    fn waiting_calls_and_the_longest_wait_per_line_queue_and_p0() {
        let metrics = Metrics::new();
        let mut gauges = QueueGauges::default();
        gauges.sample(
            &metrics,
            [
                call("samu", "arm", Urgency::Nr, 10_000),
                call("sas", "arm", Urgency::Nr, 4_000),
                call("samu", "arm", Urgency::Nr, 1_000),
                call("samu", "amu", Urgency::P0, 20_000),
            ],
            41_500,
        );
        let text = metrics.render();
        for sample in [
            "sas_queue_depth{queue=\"arm\"} 3",
            "sas_queue_depth{queue=\"amu\"} 1",
            "sas_queue_waiting{line=\"samu\",priority_class=\"other\",queue=\"arm\"} 2",
            "sas_queue_longest_wait_seconds{line=\"samu\",priority_class=\"other\",queue=\"arm\"} 40.5",
            "sas_queue_longest_wait_seconds{line=\"sas\",priority_class=\"other\",queue=\"arm\"} 37.5",
            "sas_queue_longest_wait_seconds{line=\"samu\",priority_class=\"p0\",queue=\"amu\"} 21.5",
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample}\n{text}");
        }
        // The queues empty: every series seen stays, at 0.
        gauges.sample(&metrics, [], 50_000);
        let text = metrics.render();
        for sample in [
            "sas_queue_depth{queue=\"arm\"} 0",
            "sas_queue_waiting{line=\"samu\",priority_class=\"p0\",queue=\"amu\"} 0",
            "sas_queue_longest_wait_seconds{line=\"samu\",priority_class=\"p0\",queue=\"amu\"} 0",
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample}\n{text}");
        }
    }
}
