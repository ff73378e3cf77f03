//! The calls in a queue now, one by one, for gauges that a driver samples (calls waiting
//! and the longest wait, per line and queue): a read of the switchboard, no state of its
//! own. [`Switchboard::queue_depths`] counts the same calls.

use super::Switchboard;
use crate::acd::Urgency;
use crate::time::EpochMillis;

/// A call in a queue: waiting, or ringing a seat (a P0 caller with its ARM too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedCall<'a> {
    /// The line it came in on (its entry's `line`).
    pub line: &'a str,
    /// The dial plan queue.
    pub queue: &'a str,
    /// The call's urgency (from a transfer or the call file; `NR` until set).
    pub urgency: Urgency,
    /// When it entered this queue (wall clock; an escalation counts from the transfer).
    pub since: EpochMillis,
}

impl Switchboard {
    /// Every call in a queue now, in no order.
    pub fn queued(&self) -> impl Iterator<Item = QueuedCall<'_>> {
        self.calls.iter().filter_map(|(id, c)| {
            let queue = c.record.queue.as_deref()?;
            if !(c.phase.seeks_seat() && self.acd.holds(id)) {
                return None;
            }
            Some(QueuedCall {
                line: &c.record.line,
                queue,
                urgency: c.urgency,
                since: c.queued_since.unwrap_or(c.record.arrived_at),
            })
        })
    }
}
