//! Lines switched to the backup centre, and the automatic overflow there.
//!
//! A supervisor switches a line (`samu`, `sas`, `psy`: an entry's `line`) in one action:
//! while it is switched, every new trunk call of the line starts at its entry's `backup`
//! step (a forward to the backup centre through the trunk), and the calls already waiting
//! may be moved there too. Restoring is one action. Independently, an entry's
//! `backup_when` sends a call to `backup` at once when it reaches one of the entry's queues
//! and that queue is full, has none of its eligible seats (its role) logged in and unpaused,
//! or is past its threshold.
//! A call goes to the backup step at most once: if that forward fails, it waits in its
//! line's queue like any failed forward, and is never bounced back.
//!
//! The switch state lives here (sans-IO); the driver persists and audits it and puts it
//! back at start ([`Router::restore_switch`]).

use super::Router;
use crate::acd::QueueKey;
use crate::routing::plan::PlanSet;
use crate::time::{EpochMillis, Now, SECOND};
use std::collections::BTreeMap;

/// A line switched to the backup centre.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineSwitch {
    /// Who switched it (supervisor or `admin`).
    pub by: String,
    /// Why.
    pub reason: String,
    /// Since when (wall clock).
    pub since: EpochMillis,
    /// The node it was made on (`[node] name`; absent from switches stored by an older
    /// version).
    #[serde(default)]
    pub node: Option<String>,
}

/// Why a line cannot be switched or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineSwitchError {
    /// No entry of the dial plans has this line.
    #[error("no dial plan entry has the line \"{0}\"")]
    UnknownLine(String),
    /// An entry of the line has no `backup` step to send its calls to.
    #[error("entry \"{entry}\" of line \"{line}\" has no `backup` step: it cannot be switched")]
    NoBackup {
        /// The line.
        line: String,
        /// The entry without a backup step.
        entry: String,
    },
    /// The line's entries take no trunk call (no `numbers`): switching it would change
    /// nothing.
    #[error("line \"{0}\" takes no trunk call (its entries have no numbers): nothing to switch")]
    NoTrunkEntry(String),
    /// Restore of a line that is not switched.
    #[error("line \"{0}\" is not switched")]
    NotSwitched(String),
}

/// The switched lines.
pub(super) type Switched = BTreeMap<String, LineSwitch>;

impl Router {
    /// Switches `line` to the backup centre: checked against `plans` (the set in force;
    /// every trunk entry of the line needs a `backup` step). With `move_waiting`, the calls
    /// of the line waiting for a seat go to the backup step now. Returns how many moved.
    pub fn switch_line(
        &mut self,
        now: Now,
        plans: &PlanSet,
        line: &str,
        switch: LineSwitch,
        move_waiting: bool,
    ) -> Result<usize, LineSwitchError> {
        let entries: Vec<_> = plans.entries.values().filter(|e| e.line == line).collect();
        if entries.is_empty() {
            return Err(LineSwitchError::UnknownLine(line.into()));
        }
        // Entries reached only by internal numbers (no `numbers`) take no trunk call.
        if entries.iter().all(|e| e.numbers.is_empty()) {
            return Err(LineSwitchError::NoTrunkEntry(line.into()));
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.backup.is_none() && !e.numbers.is_empty())
        {
            return Err(LineSwitchError::NoBackup {
                line: line.into(),
                entry: e.name.clone(),
            });
        }
        self.switched.insert(line.into(), switch);
        self.last = now;
        let moved = if move_waiting {
            self.move_waiting_of(now, line)
        } else {
            0
        };
        self.settle(now);
        Ok(moved)
    }

    /// Applies a switch made on another node (shared store): unchecked, as after a restart
    /// ([`Router::restore_switch`]); with `move_waiting`, the calls of the line waiting here
    /// go to the backup step now, as they did on that node. Returns how many moved.
    pub fn follow_switch(
        &mut self,
        now: Now,
        line: &str,
        switch: LineSwitch,
        move_waiting: bool,
    ) -> usize {
        self.switched.insert(line.into(), switch);
        self.last = now;
        if !move_waiting {
            return 0;
        }
        let moved = self.move_waiting_of(now, line);
        self.settle(now);
        moved
    }

    /// Sends the calls of `line` waiting for a seat to their backup step: how many went.
    fn move_waiting_of(&mut self, now: Now, line: &str) -> usize {
        let waiting: Vec<String> = self
            .routes
            .iter()
            .filter(|(call, r)| {
                r.dialled.is_none()
                    && !r.backed_up
                    && r.line().as_deref() == Some(line)
                    && self.board.waiting_since(call).is_some()
                    // A seat accompanying it (P0 transfer) stays with its caller.
                    && self.board.seats_on(call).is_empty()
            })
            .map(|(call, _)| call.clone())
            .collect();
        let mut moved = 0;
        for call in waiting {
            moved += usize::from(self.send_to_backup(now, &call, "line switched"));
        }
        moved
    }

    /// Switches `line` back: its new calls are queued again. The switch it ended.
    pub fn restore_line(&mut self, line: &str) -> Result<LineSwitch, LineSwitchError> {
        self.switched
            .remove(line)
            .ok_or_else(|| LineSwitchError::NotSwitched(line.into()))
    }

    /// Puts back a switch persisted before a restart, unchecked (the plans may have changed
    /// since: an entry without `backup` then starts as usual).
    pub fn restore_switch(&mut self, line: &str, switch: LineSwitch) {
        self.switched.insert(line.into(), switch);
    }

    /// The lines switched now.
    pub fn switched_lines(&self) -> &BTreeMap<String, LineSwitch> {
        &self.switched
    }

    /// Whether new calls of `line` go to the backup centre.
    pub(super) fn is_switched(&self, line: &str) -> bool {
        self.switched.contains_key(line)
    }

    /// The call leaves its queue (if any) for its entry's backup step. False when the
    /// entry has none.
    pub(super) fn send_to_backup(&mut self, now: Now, call: &str, why: &str) -> bool {
        let next = self.routes.get_mut(call).and_then(|r| {
            r.backed_up = true;
            r.with_flow(|f, p| f.send_to_backup(why, now.wall, p))
                .flatten()
        });
        self.overflow_to(now, call, next)
    }

    /// Why a trunk call reaching `queue` (seats of `role`) must go to the backup step at
    /// once rather than wait: its line is switched, or one of its entry's `backup_when`
    /// (bar `queue_full`, known only once queued). `None`: it waits.
    pub(super) fn backup_due(
        &self,
        now: Now,
        call: &str,
        queue: &str,
        role: &str,
    ) -> Option<String> {
        let r = self.routes.get(call)?;
        if r.dialled.is_some() || r.backed_up {
            return None;
        }
        let entry = r.entry()?;
        entry.backup.as_ref()?;
        if self.is_switched(&entry.line) {
            return Some("line switched".into());
        }
        let when = &entry.backup_when;
        // The queue's eligible seats: none that will take a call without someone acting
        // (all offline, logged out or paused) is an empty queue.
        if when.no_seat && !self.board.acd().staffed(&QueueKey::role(role)) {
            return Some(format!("no {role} seat logged in and unpaused"));
        }
        // The two triggers below walk the live calls: only when the entry has them (the
        // shipped plans do not), every call queued would otherwise pay for it.
        if let Some(max) = when.max_waiting {
            let depth = self.board.queue_depths().get(queue).copied().unwrap_or(0);
            if depth >= max {
                return Some(format!("{depth} calls waiting in {queue}"));
            }
        }
        let max_wait = u64::from(when.max_wait_s?) * SECOND;
        let waited = self
            .board
            .records()
            .filter(|rec| rec.queue.as_deref() == Some(queue) && rec.id.as_str() != call)
            .filter_map(|rec| self.board.waiting_since(&rec.id))
            .min()
            .map(|since| now.wall.saturating_sub(since))?;
        (waited >= max_wait).then(|| format!("longest wait in {queue} {} s", waited / SECOND))
    }

    /// A full queue sends the call to the backup step when its entry says so.
    pub(super) fn backup_when_full(&self, call: &str) -> bool {
        self.routes.get(call).is_some_and(|r| {
            r.dialled.is_none()
                && !r.backed_up
                && r.entry()
                    .is_some_and(|e| e.backup.is_some() && e.backup_when.queue_full)
        })
    }
}
