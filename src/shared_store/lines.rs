//! Lines switched to the backup centre, shared by every node through PostgreSQL
//! (`sas_line_switches`, migrations 0002 and 0003), so that a switch made on the primary holds on the
//! standby after a failover, and a restore made on either holds on both.
//!
//! The call driver switches and restores locally first (the Router, sled, the audit), then
//! hands the change to this task ([`LineSync::publish`]), which writes it: the call path
//! never waits on PostgreSQL. Every second the task reads the table and sends it to the
//! driver ([`CallEvent::SharedLines`]), which applies the rows it has not seen: each change
//! takes the next `rev` of a sequence, and the driver keeps, per line, the last `rev` it
//! applied or wrote, and ignores the table for a line whose own change is not written yet.
//! A switch made with `move_waiting` says so in its row: the nodes that apply it move the
//! calls waiting on them too, as the node it was made on did.
//!
//! Polling rather than LISTEN/NOTIFY: a notification sent while a node's connection is
//! down is lost, a poll is not; one tiny query per second per node costs nothing, and the
//! switch takes effect on the other node within about a second, which is the target.
//!
//! PostgreSQL unreachable: each node keeps its own state (sled), the task logs once that
//! switches are local until it is back (and once when it is), keeps the changes not yet
//! written (the latest per line) and writes them when it is back. The driver also keeps
//! them in sled until written, and hands them again after a restart: otherwise the older
//! state of the table, read first, would undo a change made during an outage.

use super::pg::{connect, migrate, within};
use super::{SharedError, SharedStoreConfig};
use crate::net::calls::CallEvent;
use crate::time::EpochMillis;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// How often the table is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

const UPSERT: &str = "INSERT INTO sas_line_switches \
     (line, switched, node, actor, reason, at, move_waiting) \
     VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint / 1000.0), $7) \
     ON CONFLICT (line) DO UPDATE SET switched = EXCLUDED.switched, node = EXCLUDED.node, \
     actor = EXCLUDED.actor, reason = EXCLUDED.reason, at = EXCLUDED.at, rev = EXCLUDED.rev, \
     move_waiting = EXCLUDED.move_waiting \
     RETURNING rev";

const READ: &str = "SELECT line, switched, node, actor, reason, \
     (extract(epoch FROM at) * 1000)::bigint, rev, move_waiting FROM sas_line_switches";

/// One line's state in the shared store: the last change made to it, on any node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedLine {
    /// The line (`samu`, `sas`…).
    pub line: String,
    /// Switched to the backup centre (false: restored).
    pub switched: bool,
    /// The node the change was made on.
    pub node: String,
    /// Who made it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When (wall clock).
    pub at: EpochMillis,
    /// Its number: later changes have higher ones (0 until written).
    pub rev: i64,
    /// A switch that also moved the calls waiting for a seat: the nodes applying it move
    /// theirs (absent from changes kept in sled by an older version: false).
    #[serde(default)]
    pub move_waiting: bool,
}

impl SharedLine {
    /// The same change, written or not (`rev` aside).
    pub fn same_change(&self, other: &SharedLine) -> bool {
        let written = SharedLine {
            rev: self.rev,
            ..other.clone()
        };
        *self == written
    }
}

/// The driver's side: where its changes go, and what it knows of the table.
pub struct LineSync {
    changes: UnboundedSender<SharedLine>,
    /// This node's name, in the rows it writes.
    node: String,
    known: SharedLines,
}

impl LineSync {
    /// Hands a change made on this node to the task (never blocks); returns it, for the
    /// driver to keep until it is written ([`crate::store::Store::put_unshared_line`]).
    /// `switched` is `Some(move_waiting)` for a switch, `None` for a restore.
    pub fn publish(
        &mut self,
        line: &str,
        switched: Option<bool>,
        (by, reason): (&str, &str),
        at: EpochMillis,
    ) -> SharedLine {
        let change = SharedLine {
            line: line.into(),
            switched: switched.is_some(),
            node: self.node.clone(),
            by: by.into(),
            reason: reason.into(),
            at,
            rev: 0,
            move_waiting: switched.unwrap_or(false),
        };
        self.resend(change.clone());
        change
    }

    /// Hands a change again (one kept across a restart, not yet written).
    pub fn resend(&mut self, change: SharedLine) {
        self.known.published(&change.line);
        self.changes.send(change).ok();
    }

    /// The task wrote this node's change `written` (its `rev` set).
    pub fn written(&mut self, written: &SharedLine) {
        self.known.written(&written.line, written.rev);
    }

    /// The rows of a table read to apply here (see [`SharedLines::to_apply`]).
    pub fn to_apply(&mut self, table: Vec<SharedLine>) -> Vec<SharedLine> {
        self.known.to_apply(table)
    }

    /// The driver's side for `node` and the task that writes the changes and polls the
    /// table, telling the driver through `events` until `stop`.
    pub fn start(
        config: SharedStoreConfig,
        node: String,
        events: UnboundedSender<CallEvent>,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (changes, incoming) = unbounded_channel();
        let task = Task {
            config,
            events,
            incoming,
            unwritten: BTreeMap::new(),
            client: None,
            failing: false,
        };
        let sync = Self {
            changes,
            node,
            known: SharedLines::default(),
        };
        (sync, tokio::spawn(task.run(stop)))
    }
}

struct Task {
    config: SharedStoreConfig,
    events: UnboundedSender<CallEvent>,
    incoming: UnboundedReceiver<SharedLine>,
    /// Changes not written yet: the latest per line.
    unwritten: BTreeMap<String, SharedLine>,
    client: Option<Client>,
    /// The last round failed (said once, and once when it is back).
    failing: bool,
}

impl Task {
    async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
                change = self.incoming.recv() => match change {
                    Some(change) => { self.unwritten.insert(change.line.clone(), change); }
                    None => break,
                },
            }
            while let Ok(change) = self.incoming.try_recv() {
                self.unwritten.insert(change.line.clone(), change);
            }
            match self.round().await {
                Ok(()) if self.failing => {
                    self.failing = false;
                    tracing::info!("shared store reachable again: line switches shared");
                }
                Ok(()) => {}
                Err(e) => {
                    self.client = None;
                    if !self.failing {
                        self.failing = true;
                        tracing::error!(
                            error = %e,
                            "shared store unreachable: line switches stay local to this node until it is back"
                        );
                    }
                }
            }
        }
        // A change made just before stopping: one last try, bounded.
        if !self.unwritten.is_empty() {
            let limit = self.config.timeout().min(Duration::from_secs(5));
            tokio::time::timeout(limit, self.round()).await.ok();
        }
    }

    /// Writes what is unwritten, then reads the table and sends it to the driver.
    async fn round(&mut self) -> Result<(), SharedError> {
        let limit = self.config.timeout();
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = connect(&self.config).await?;
            within(limit, migrate(&mut client)).await?;
            self.client = Some(client);
        }
        let Some(client) = &self.client else {
            return Ok(());
        };
        while let Some((line, mut change)) = self.unwritten.pop_first() {
            match within(limit, write(client, &change)).await {
                Ok(rev) => {
                    change.rev = rev;
                    self.events.send(CallEvent::SharedLineWritten(change)).ok();
                }
                Err(e) => {
                    self.unwritten.insert(line, change);
                    return Err(e);
                }
            }
        }
        let rows = within(limit, read(client)).await?;
        self.events.send(CallEvent::SharedLines(rows)).ok();
        Ok(())
    }
}

async fn write(client: &Client, c: &SharedLine) -> Result<i64, SharedError> {
    let at = c.at as i64;
    let row = client
        .query_one(
            UPSERT,
            &[
                &c.line,
                &c.switched,
                &c.node,
                &c.by,
                &c.reason,
                &at,
                &c.move_waiting,
            ],
        )
        .await?;
    Ok(row.get(0))
}

async fn read(client: &Client) -> Result<Vec<SharedLine>, SharedError> {
    let rows = client.query(READ, &[]).await?;
    Ok(rows
        .iter()
        .map(|row| SharedLine {
            line: row.get(0),
            switched: row.get(1),
            node: row.get(2),
            by: row.get(3),
            reason: row.get(4),
            at: row.get::<_, i64>(5).max(0) as u64,
            rev: row.get(6),
            move_waiting: row.get(7),
        })
        .collect())
}

/// What the driver knows of the shared lines: the last `rev` applied or written per line,
/// and the lines whose change made here is not written yet. Decides which rows to apply.
#[derive(Debug, Default)]
pub struct SharedLines {
    seen: BTreeMap<String, i64>,
    unwritten: BTreeSet<String>,
}

impl SharedLines {
    /// A change was made here and handed to the task.
    pub fn published(&mut self, line: &str) {
        self.unwritten.insert(line.into());
    }

    /// The task wrote this node's latest change of `line` as `rev` (it keeps only the
    /// latest per line, so one write answers every change made before it).
    pub fn written(&mut self, line: &str, rev: i64) {
        self.unwritten.remove(line);
        let seen = self.seen.entry(line.into()).or_insert(rev);
        *seen = (*seen).max(rev);
    }

    /// The rows of `table` to apply: newer than what this node applied or wrote, on lines
    /// with no change of ours on the way.
    pub fn to_apply(&mut self, table: Vec<SharedLine>) -> Vec<SharedLine> {
        let mut news = Vec::new();
        for row in table {
            let newer = self.seen.get(&row.line).is_none_or(|seen| row.rev > *seen);
            if newer && !self.unwritten.contains(&row.line) {
                self.seen.insert(row.line.clone(), row.rev);
                news.push(row);
            }
        }
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str, switched: bool, rev: i64) -> SharedLine {
        SharedLine {
            line: line.into(),
            switched,
            node: "a".into(),
            by: "sup1".into(),
            reason: "évacuation".into(),
            at: 1,
            rev,
            move_waiting: false,
        }
    }

    #[test]
    fn rows_are_applied_once_newest_wins_and_our_unwritten_change_is_not_undone() {
        let mut s = SharedLines::default();
        // At start, everything in the table is news.
        let first = s.to_apply(vec![row("samu", true, 3), row("sas", false, 1)]);
        assert_eq!(first.len(), 2);
        // Seen once: not again.
        assert!(s.to_apply(vec![row("samu", true, 3)]).is_empty());
        // We restore samu here; a table read before our write says switched: ignored.
        s.published("samu");
        assert!(s.to_apply(vec![row("samu", true, 3)]).is_empty());
        s.written("samu", 4);
        assert!(
            s.to_apply(vec![row("samu", false, 4)]).is_empty(),
            "our own"
        );
        // Another node switches it again later: applied.
        assert_eq!(
            s.to_apply(vec![row("samu", true, 5)]),
            [row("samu", true, 5)]
        );
        // An older row (a stale read) never undoes a newer one.
        assert!(s.to_apply(vec![row("samu", false, 4)]).is_empty());
    }
}
