//! Waiting calls in service order: line priority first, then arrival, then a sequence
//! number so two calls arriving in the same millisecond keep their order.

use crate::time::EpochMillis;
use std::collections::{BTreeSet, HashMap};

/// Position key: smaller is served first.
type Key = (u8, EpochMillis, u64);

/// The ordered set of waiting calls.
#[derive(Debug, Default)]
pub struct WaitQueue {
    order: BTreeSet<(Key, String)>,
    keys: HashMap<String, Key>,
    next_seq: u64,
}

impl WaitQueue {
    /// Adds a call, or puts it back at its original place if it was offered and came back.
    pub fn push(&mut self, call: &str, priority: u8, arrived: EpochMillis) {
        if self.keys.contains_key(call) {
            return;
        }
        let key = (priority, arrived, self.next_seq);
        self.next_seq += 1;
        self.order.insert((key, call.to_string()));
        self.keys.insert(call.to_string(), key);
    }

    /// Removes a call (answered elsewhere, abandoned). Returns whether it was waiting.
    pub fn remove(&mut self, call: &str) -> bool {
        match self.keys.remove(call) {
            Some(key) => self.order.remove(&(key, call.to_string())),
            None => false,
        }
    }

    /// Takes the next call to serve.
    pub fn pop(&mut self) -> Option<String> {
        let (_, call) = self.order.pop_first()?;
        self.keys.remove(&call);
        Some(call)
    }

    /// Waiting calls.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// No call waiting.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether a call waits here.
    pub fn contains(&self, call: &str) -> bool {
        self.keys.contains_key(call)
    }
}

#[cfg(test)]
mod tests {
    use super::WaitQueue;

    #[test]
    fn priority_then_arrival() {
        let mut q = WaitQueue::default();
        q.push("sas-early", 1, 100);
        q.push("samu-late", 0, 500);
        q.push("samu-early", 0, 200);
        q.push("sas-same-ms", 1, 100);
        assert_eq!(q.pop().as_deref(), Some("samu-early"));
        assert_eq!(q.pop().as_deref(), Some("samu-late"));
        assert_eq!(q.pop().as_deref(), Some("sas-early"));
        assert_eq!(q.pop().as_deref(), Some("sas-same-ms"));
        assert!(q.pop().is_none());
    }

    #[test]
    fn requeued_call_keeps_its_place_by_arrival() {
        let mut q = WaitQueue::default();
        q.push("a", 1, 100);
        q.push("b", 1, 200);
        assert_eq!(q.pop().as_deref(), Some("a"));
        q.push("a", 1, 100); // offer failed, back in
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert!(q.remove("b"));
        assert!(!q.remove("b"));
        assert!(q.is_empty());
    }
}
