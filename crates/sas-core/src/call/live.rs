//! The switchboard's live calls, with the ids of those touched since the driver last
//! asked ([`LiveCalls::take_changed`]): the call journal writes what changed without
//! walking every live call after every event. Any mutable access counts as a change (a
//! superset: the journal still compares what it last wrote). The calls waiting for a seat
//! are counted the same way ([`LiveCalls::waiting`]): the supervisors' count is asked
//! after every event, and a walk over every call then made a backlog quadratic.

use super::Call;
use crate::id_map::{IdMap, IdSet};

/// Live calls by id, and the ids touched since [`LiveCalls::take_changed`].
#[derive(Debug, Default)]
pub(super) struct LiveCalls {
    /// Boxed: a call is ~1 KiB, and the table's spare buckets (up to half of them after
    /// it grows) would each hold that much inline.
    calls: IdMap<String, Box<Call>>,
    changed: IdSet<String>,
    /// The calls waiting for a seat when `changed` was last taken.
    waiting: IdSet<String>,
}

impl LiveCalls {
    pub(super) fn get(&self, id: &str) -> Option<&Call> {
        self.calls.get(id).map(Box::as_ref)
    }

    /// The call, counted as changed.
    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Call> {
        let call = self.calls.get_mut(id)?;
        if !self.changed.contains(id) {
            self.changed.insert(id.to_owned());
        }
        Some(call.as_mut())
    }

    pub(super) fn contains_key(&self, id: &str) -> bool {
        self.calls.contains_key(id)
    }

    pub(super) fn insert(&mut self, id: String, call: Call) {
        self.changed.insert(id.clone());
        self.calls.insert(id, Box::new(call));
    }

    /// Ends the call (counted as changed: its journal entry goes).
    pub(super) fn remove(&mut self, id: &str) -> Option<Call> {
        let call = self.calls.remove(id)?;
        if !self.changed.contains(id) {
            self.changed.insert(id.to_owned());
        }
        Some(*call)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &Call)> {
        self.calls.iter().map(|(id, call)| (id, call.as_ref()))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Call> {
        self.calls.values().map(Box::as_ref)
    }

    pub(super) fn len(&self) -> usize {
        self.calls.len()
    }

    /// The ids of the calls touched (started, changed, ended) since the last call.
    pub(super) fn take_changed(&mut self) -> IdSet<String> {
        for id in &self.changed {
            if self.is_waiting(id) {
                if !self.waiting.contains(id) {
                    self.waiting.insert(id.clone());
                }
            } else {
                self.waiting.remove(id);
            }
        }
        std::mem::take(&mut self.changed)
    }

    /// How many calls wait for a seat ([`Call::waiting_since`]): those that waited when the
    /// changed ids were last taken, corrected by the calls changed since.
    pub(super) fn waiting(&self) -> usize {
        let mut waiting = self.waiting.len();
        for id in &self.changed {
            match (self.waiting.contains(id), self.is_waiting(id)) {
                (true, false) => waiting -= 1,
                (false, true) => waiting += 1,
                _ => {}
            }
        }
        debug_assert_eq!(
            waiting,
            self.values()
                .filter(|c| c.waiting_since().is_some())
                .count()
        );
        waiting
    }

    fn is_waiting(&self, id: &str) -> bool {
        self.get(id).is_some_and(|c| c.waiting_since().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::*;
    use super::super::{CallInput, Now};

    /// What a step touched, and only that: the call journal looks at nothing else.
    #[test]
    fn the_switchboard_names_the_calls_and_seats_each_step_touched() {
        let mut b = board(&["arm1", "arm2"]);
        online(&mut b, T0, "arm1");
        let first = b.take_changed();
        assert!(first.calls.is_empty());
        assert_eq!(
            first.seats.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["arm1"]
        );
        arrive(&mut b, T0 + 10, "c1", "samu", 0);
        assert_eq!(actions(&mut b), vec![ring("c1", "arm1")]);
        let offered = b.take_changed();
        assert_eq!(offered.calls.into_iter().collect::<Vec<_>>(), ["c1"]);
        assert_eq!(
            offered.seats.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["arm1"]
        );
        let nothing = b.take_changed();
        assert!(nothing.calls.is_empty() && nothing.seats.is_empty());
        // A second call waits (arm2 offline): only it is touched, not c1 nor the seats.
        arrive(&mut b, T0 + 20, "c2", "samu", 0);
        let waiting = b.take_changed();
        assert_eq!(waiting.calls.into_iter().collect::<Vec<_>>(), ["c2"]);
        assert!(waiting.seats.is_empty());
        // The caller hangs up: the call ends (touched), its seat goes back.
        b.handle(
            Now::at(T0 + 30),
            CallInput::CallerGone { call: "c1".into() },
        );
        let ended = b.take_changed();
        assert!(ended.calls.contains("c1"), "{ended:?}");
        assert!(b.record("c1").is_none());
        assert!(
            ended.seats.iter().any(|s| s.as_str() == "arm1"),
            "{ended:?}"
        );
    }
}
