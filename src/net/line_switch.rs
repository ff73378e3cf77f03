//! The call driver's side of switching a line to the backup centre: the Router decides
//! ([`crate::call::router::Router::switch_line`]); here the switch is persisted (before the
//! answer, so a restart keeps it), audited (`line.switch`, `line.restore`: who, when, why)
//! and told to supervisors (`line_switch` event). With `[shared_store]`, the change is
//! also handed to the shared store (never waited for), and the changes other nodes made
//! there are applied here ([`crate::shared_store::lines`]).

use serde_json::{Value, json};

use super::calls::CallDriver;
use crate::call::router::{LineSwitch, LineSwitchError};
use crate::cti::{CtiError, CtiEvent};
use crate::routing::plan::PlanSet;
use crate::shared_store::lines::SharedLine;
use crate::store::audit::AuditEntry;
use crate::time::Now;

/// A reason longer than this is refused (it is written in the audit log).
const REASON_MAX: usize = 500;

impl CallDriver {
    /// Every line of `plans` (the set in force), switched or not.
    pub(super) fn lines(&self, plans: &PlanSet) -> Value {
        let switched = self.router.switched_lines();
        let mut lines: Vec<&str> = plans.entries.values().map(|e| e.line.as_str()).collect();
        lines.sort_unstable();
        lines.dedup();
        // A line switched before a reload that removed it still shows (it can be restored).
        let gone = switched.keys().filter(|l| !lines.contains(&l.as_str()));
        let gone: Vec<String> = gone.cloned().collect();
        let rows: Vec<Value> = lines
            .into_iter()
            .map(str::to_string)
            .chain(gone)
            .map(|line| {
                let backup = plans
                    .entries
                    .values()
                    .filter(|e| e.line == line)
                    .find_map(|e| e.backup.clone());
                let switch = switched.get(&line);
                json!({
                    "line": line,
                    "backup": backup,
                    "switched": switch.is_some(),
                    "by": switch.map(|s| &s.by),
                    "reason": switch.map(|s| &s.reason),
                    "since": switch.map(|s| s.since),
                    "node": switch.and_then(|s| s.node.as_ref()),
                })
            })
            .collect();
        json!({ "lines": rows })
    }

    /// Switches `line` to the backup centre (see [`CtiRequest::SwitchLine`]).
    ///
    /// [`CtiRequest::SwitchLine`]: crate::cti::CtiRequest::SwitchLine
    pub(super) fn switch_line(
        &mut self,
        now: Now,
        plans: &PlanSet,
        (line, reason, by): (String, String, String),
        move_waiting: bool,
    ) -> Result<Value, CtiError> {
        let reason = reason.trim().to_string();
        if reason.is_empty() || reason.len() > REASON_MAX {
            return Err(CtiError::Invalid(format!(
                "a reason is required (at most {REASON_MAX} bytes)"
            )));
        }
        if self.router.switched_lines().contains_key(&line) {
            return Err(CtiError::Conflict(format!(
                "line {line} is already switched"
            )));
        }
        let switch = LineSwitch {
            by: by.clone(),
            reason: reason.clone(),
            since: now.wall,
            node: Some(self.node.clone()),
        };
        // The Router checks the line first (no backup step: refused, nothing written);
        // the audit entry follows at once, flushed, before the answer.
        let moved = self
            .router
            .switch_line(now, plans, &line, switch.clone(), move_waiting)
            .map_err(switch_error)?;
        let detail = format!("{reason} (move_waiting: {move_waiting}, moved: {moved})");
        if let Err(e) = self.audit_line(now, &by, "line.switch", &line, detail) {
            tracing::error!(%line, error = %e, "line switch not audited");
        }
        tracing::warn!(%line, %by, moved, "line switched to the backup centre");
        self.switched_here(now, &line, Some(&switch), &by);
        self.share_line(now, &line, Some(move_waiting), (&by, &reason));
        Ok(json!({ "line": line, "switched": true, "moved": moved, "by": by, "reason": reason }))
    }

    /// Switches `line` back: its new calls are queued again.
    pub(super) fn restore_line(
        &mut self,
        now: Now,
        line: String,
        reason: Option<String>,
        by: String,
    ) -> Result<Value, CtiError> {
        let ended = self.router.restore_line(&line).map_err(switch_error)?;
        let reason = reason.unwrap_or_default();
        let detail = format!(
            "{} (switched by {} since {})",
            reason.trim(),
            ended.by,
            ended.since
        );
        if let Err(e) = self.audit_line(now, &by, "line.restore", &line, detail) {
            tracing::error!(%line, error = %e, "line restore not audited");
        }
        tracing::warn!(%line, %by, "line restored from the backup centre");
        self.switched_here(now, &line, None, &by);
        self.share_line(now, &line, None, (&by, reason.trim()));
        Ok(json!({ "line": line, "switched": false, "by": by }))
    }

    /// Hands a switch (`Some(move_waiting)`) or restore (`None`) made here to the shared
    /// store, kept in sled until it is written there.
    fn share_line(&mut self, now: Now, line: &str, switched: Option<bool>, who_why: (&str, &str)) {
        let Some(sync) = &mut self.shared_lines else {
            return;
        };
        let change = sync.publish(line, switched, who_why, now.wall);
        if let Err(e) = self.store.put_unshared_line(&change) {
            tracing::error!(%line, error = %e, "line change not kept for the shared store");
        }
    }

    /// The shared store has a change made here.
    pub(super) fn shared_line_written(&mut self, written: &SharedLine) {
        if let Some(sync) = &mut self.shared_lines {
            sync.written(written);
        }
        if let Err(e) = self.store.line_shared(written) {
            tracing::warn!(line = %written.line, error = %e, "shared line change not cleared");
        }
    }

    /// Applies the switches and restores other nodes made, as the shared store has them
    /// (only rows this node has not seen, on lines with no change of its own on the way).
    /// A switch made with `move_waiting` moves the calls waiting here too. Audited where
    /// they were made, not again here.
    pub(super) fn apply_shared_lines(&mut self, now: Now, table: Vec<SharedLine>) {
        let Some(sync) = &mut self.shared_lines else {
            return;
        };
        for row in sync.to_apply(table) {
            let here = self.router.switched_lines().contains_key(&row.line);
            let (line, node, by) = (&row.line, &row.node, &row.by);
            if row.switched && !here {
                let switch = LineSwitch {
                    by: row.by.clone(),
                    reason: row.reason.clone(),
                    since: row.at,
                    node: Some(row.node.clone()),
                };
                // Unchecked, as after a restart: an entry without `backup` starts as usual.
                let moved =
                    (self.router).follow_switch(now, line, switch.clone(), row.move_waiting);
                tracing::warn!(%line, %node, %by, moved, "line switched to the backup centre on another node");
                self.switched_here(now, line, Some(&switch), by);
            } else if !row.switched && here {
                self.router.restore_line(line).ok();
                tracing::warn!(%line, %node, %by, "line restored from the backup centre on another node");
                self.switched_here(now, line, None, by);
            }
        }
    }

    /// What a switch (`Some`) or restore of `line` changes on this node beyond the Router:
    /// sled (flushed, for a restart), the gauge, the supervisors' boards.
    fn switched_here(&self, now: Now, line: &str, switch: Option<&LineSwitch>, by: &str) {
        if let Err(e) = self.store.put_line_switch(line, switch) {
            tracing::error!(%line, error = %e, "line switch or restore not persisted: lost on restart");
        }
        let gauge = self.metrics.line_switched.with_label_values(&[line]);
        gauge.set(i64::from(switch.is_some()));
        self.tell_lines(now, line, switch.is_some(), by);
    }

    fn audit_line(
        &self,
        now: Now,
        by: &str,
        action: &str,
        line: &str,
        detail: String,
    ) -> Result<(), CtiError> {
        let entry = AuditEntry {
            at: now.wall,
            actor: by.into(),
            action: action.into(),
            target: line.into(),
            detail: Some(detail),
        };
        self.store
            .audit(&entry)
            .map_err(|e| CtiError::Storage(e.to_string()))
    }

    fn tell_lines(&self, now: Now, line: &str, switched: bool, by: &str) {
        let event = CtiEvent {
            at: now.wall,
            seat: None,
            call: None,
            kind: "line_switch".into(),
            detail: json!({ "line": line, "switched": switched, "by": by }),
        };
        self.cti.events.send(event).ok();
    }
}

fn switch_error(e: LineSwitchError) -> CtiError {
    match e {
        LineSwitchError::UnknownLine(_) => CtiError::UnknownTarget(e.to_string()),
        LineSwitchError::NoBackup { .. } | LineSwitchError::NoTrunkEntry(_) => {
            CtiError::Invalid(e.to_string())
        }
        LineSwitchError::NotSwitched(_) => CtiError::Conflict(e.to_string()),
    }
}
