//! Waiting calls in service order: the rank from [`super::priority`], then a sequence
//! number so two calls with the same rank keep their arrival order.

use super::priority::Rank;
use crate::id_map::IdMap;
use std::collections::BTreeSet;

type Key = (Rank, u64);

/// The ordered set of waiting calls.
#[derive(Debug, Default)]
pub struct WaitQueue {
    order: BTreeSet<(Key, String)>,
    keys: IdMap<String, Key>,
    next_seq: u64,
}

impl WaitQueue {
    /// Adds a call. A call that was offered and came back passes its original rank, so it
    /// gets its place back.
    pub fn push(&mut self, call: &str, rank: Rank) {
        if self.keys.contains_key(call) {
            return;
        }
        let key = (rank, self.next_seq);
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

    /// The rank of the next call to serve.
    pub fn peek(&self) -> Option<Key> {
        self.order.first().map(|(key, _)| *key)
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
    fn rank_then_arrival() {
        let mut q = WaitQueue::default();
        q.push("sas-early", (1, 1, 100));
        q.push("samu-late", (1, 0, 500));
        q.push("samu-early", (1, 0, 200));
        q.push("sas-same-ms", (1, 1, 100));
        q.push("p0", (0, 900, 900));
        assert_eq!(q.pop().as_deref(), Some("p0"));
        assert_eq!(q.pop().as_deref(), Some("samu-early"));
        assert_eq!(q.pop().as_deref(), Some("samu-late"));
        assert_eq!(q.pop().as_deref(), Some("sas-early"));
        assert_eq!(q.pop().as_deref(), Some("sas-same-ms"));
        assert!(q.pop().is_none());
    }

    #[test]
    fn requeued_call_keeps_its_place() {
        let mut q = WaitQueue::default();
        q.push("a", (1, 1, 100));
        q.push("b", (1, 1, 200));
        assert_eq!(q.pop().as_deref(), Some("a"));
        q.push("a", (1, 1, 100)); // offer failed, back in
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert!(q.remove("b"));
        assert!(!q.remove("b"));
        assert!(q.is_empty());
    }
}
