//! The call driver's side of the wallboard: counts each call as it ends, and every second,
//! while a wall display or a supervisor's panel watches, draws the board
//! ([`sas_core::wallboard::draw`]) and hands it to the watching WebSockets as one JSON
//! text (drawn once, whoever the watchers; nobody watching: nothing drawn).
//!
//! At start, today's records (and the last hour's, across midnight) are read from the
//! store, so a restart loses none of the day's figures.

use super::calls::CallDriver;
use super::reload::LivePlans;
use crate::store::{Store, StoreError};
use crate::time::EpochMillis;
use sas_core::record::CallRecord;
use sas_core::wallboard::{Layout, Tally, Thresholds, draw};
use std::sync::Arc;
use tokio::sync::watch;

/// Where boards go: the latest one only (a slow display skips boards, never queues them).
#[derive(Debug, Clone)]
pub struct WallboardFeed(Arc<watch::Sender<Arc<str>>>);

impl Default for WallboardFeed {
    fn default() -> Self {
        Self(Arc::new(watch::channel(Arc::from("")).0))
    }
}

impl WallboardFeed {
    /// A new watcher: it hears the next board (within a second), then each one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<str>> {
        self.0.subscribe()
    }

    fn watched(&self) -> bool {
        self.0.receiver_count() > 0
    }

    fn publish(&self, text: String) {
        self.0.send_replace(Arc::from(text));
    }
}

/// The finished calls' figures and what the board is drawn with.
pub struct Wallboard {
    tally: Tally,
    plans: Arc<LivePlans>,
    thresholds: Thresholds,
    /// The layout and the dial plan version it was made from.
    layout: Option<(String, Layout)>,
    feed: WallboardFeed,
}

impl Wallboard {
    /// Counts today's (and the last hour's) stored calls as of `now`.
    pub fn start(
        store: &Store,
        plans: Arc<LivePlans>,
        thresholds: Thresholds,
        feed: WallboardFeed,
        now: EpochMillis,
    ) -> Result<Self, StoreError> {
        let mut tally = Tally::new(now);
        let from = tally.start_from(now);
        // Arrivals up to a minute ahead: a wall clock stepped back keeps its calls.
        store.each_arrived(from, now + 60_000, |record| tally.finished(now, &record))?;
        Ok(Self {
            tally,
            plans,
            thresholds,
            layout: None,
            feed,
        })
    }

    /// A call ended (its record leaves the calls in progress now).
    pub(super) fn finished(&mut self, now: EpochMillis, record: &CallRecord) {
        self.tally.finished(now, record);
    }

    /// The rows of the dial plans in force.
    fn layout(&mut self) -> &Layout {
        let plans = self.plans.current().plans;
        if self
            .layout
            .as_ref()
            .is_none_or(|(v, _)| *v != plans.version)
        {
            let layout = Layout::from_plans(&plans, self.thresholds.clone());
            self.layout = Some((plans.version.clone(), layout));
        }
        &self.layout.as_ref().expect("just set").1
    }
}

impl CallDriver {
    /// Draws the board for its watchers, if any.
    pub(super) fn draw_wallboard(&mut self) {
        if !self.wallboard.feed.watched() {
            return;
        }
        let now = self.clock.now();
        let wallboard = &mut self.wallboard;
        wallboard.layout();
        let layout = &wallboard.layout.as_ref().expect("laid out").1;
        let board = draw(&self.router, &mut wallboard.tally, layout, now);
        let message = serde_json::json!({ "kind": "wallboard", "board": board });
        wallboard.feed.publish(message.to_string());
    }
}
