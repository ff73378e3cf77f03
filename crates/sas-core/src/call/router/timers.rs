//! The Router's named timers: one table, one deadline per (call, timer) at most, on the
//! monotonic clock. The next deadline is the first entry, not a scan over the calls.

use crate::id_map::IdMap;
use crate::time::Mono;
use std::collections::BTreeSet;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerName {
    /// A menu's wait for a key, after its prompt.
    KeyWait,
    /// A queue's `max_wait_s`: then its overflow.
    QueueMaxWait,
    /// A seat's earliest registration expires (keyed by the seat, not a call).
    RegistrationExpiry,
    /// A supervisor's phone rings for a monitor: then the monitor is given up.
    MonitorRing,
}

/// Pending timers of all calls.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    order: BTreeSet<(Mono, String, TimerName)>,
    armed: IdMap<(String, TimerName), Mono>,
}

impl Timers {
    /// Arms `name` for `call` at `at`, replacing the one armed before.
    pub(crate) fn arm(&mut self, call: &str, name: TimerName, at: Mono) {
        self.cancel(call, name);
        self.order.insert((at, call.to_string(), name));
        self.armed.insert((call.to_string(), name), at);
    }

    pub(crate) fn cancel(&mut self, call: &str, name: TimerName) {
        if let Some(at) = self.armed.remove(&(call.to_string(), name)) {
            self.order.remove(&(at, call.to_string(), name));
        }
    }

    /// Cancels every timer of the call (it moved on, or it is over).
    pub(crate) fn cancel_all(&mut self, call: &str) {
        for name in [TimerName::KeyWait, TimerName::QueueMaxWait] {
            self.cancel(call, name);
        }
    }

    pub(crate) fn next(&self) -> Option<Mono> {
        self.order.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Mono) -> Option<(String, TimerName)> {
        if self.next()? > now {
            return None;
        }
        let (_, call, name) = self.order.pop_first()?;
        self.armed.remove(&(call.clone(), name));
        Some((call, name))
    }

    /// Timers armed, of calls and seats.
    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }

    /// Every call with a timer armed.
    pub(crate) fn calls(&self) -> impl Iterator<Item = &str> {
        (self.armed.keys())
            .filter(|(_, name)| *name != TimerName::RegistrationExpiry)
            .map(|(c, _)| c.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_deadline_per_call_and_name_earliest_first() {
        let mut t = Timers::default();
        let ms = Mono::from_millis;
        t.arm("a", TimerName::QueueMaxWait, ms(50));
        t.arm("b", TimerName::KeyWait, ms(20));
        t.arm("a", TimerName::QueueMaxWait, ms(30));
        assert_eq!(t.next(), Some(ms(20)));
        assert_eq!(t.pop_due(ms(19)), None);
        assert_eq!(t.pop_due(ms(25)), Some(("b".into(), TimerName::KeyWait)));
        assert_eq!(t.pop_due(ms(25)), None);
        t.cancel_all("a");
        assert_eq!((t.next(), t.calls().count()), (None, 0));
    }
}
