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

    /// Seconds of the last hour holding finished calls' sums (at most 3,600).
    pub(super) fn last_hour_slots(&self) -> usize {
        self.tally.recent_slots()
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

#[cfg(test)]
mod tests {
    use super::*;
    use sas_core::call::router::Router;
    use sas_core::call::tests_support::{T0, actions, arrive, board_with, online};
    use sas_core::call::{CallInput, CallOutput};
    use sas_core::pii::CallerNumber;
    use sas_core::record::{EventKind, Outcome};
    use sas_core::time::Now;
    use std::time::Instant;

    /// A finished 15 call answered after `wait_s`.
    fn answered(n: usize, at: EpochMillis, wait_s: u64) -> CallRecord {
        let mut r = CallRecord::new(
            format!("c{n}"),
            format!("sip-{n}"),
            "samu".into(),
            "15".into(),
            CallerNumber::new("0612345678"),
            at,
        );
        r.enter_queue(at + 1_000, "arm", "arm priority 0".into());
        let answer = at + wait_s * 1_000;
        r.event(answer, EventKind::Connect, Some("arm1"), None);
        r.answered_at = Some(answer);
        r.event(answer + 120_000, EventKind::End, None, None);
        r.outcome = Some(Outcome::Answered);
        r
    }

    /// The cost of a board at an epidemic peak: 2,400 calls in the last hour (×10 a busy
    /// department's peak), 200 in progress (50 answered), 60 seats. Drawn every second
    /// while watched.
    #[test]
    fn a_board_at_an_epidemic_peak_costs_a_few_milliseconds() {
        let names: Vec<String> = (0..60).map(|i| format!("arm{i}")).collect();
        let seats: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "arm")).collect();
        let mut b = board_with(&seats);
        for n in &names[..50] {
            online(&mut b, T0, n);
        }
        for i in 0..200 {
            arrive(&mut b, T0 + i as u64, &format!("live{i}"), "samu", 0);
        }
        // 50 of them answered (counted live), 150 waiting.
        for out in actions(&mut b) {
            if let CallOutput::RingSeat { call, seat } = out {
                let answered = CallInput::SeatAnswered { call, seat };
                b.handle(Now::at(T0 + 10_000), answered);
            }
        }
        let now = Now::at(T0 + 3_000_000);
        let router = Router::new(b, now);
        let mut tally = Tally::new(now.wall);
        for i in 0..2_400 {
            tally.finished(
                now.wall,
                &answered(i, T0 + i as u64 * 1_000, (i % 90) as u64),
            );
        }
        let layout = Layout {
            lines: vec!["samu".into(), "sas".into()],
            queues: vec!["arm".into(), "amu".into()],
            thresholds: Thresholds::default(),
        };
        let started = Instant::now();
        let rounds = 20;
        let mut bytes = 0;
        for _ in 0..rounds {
            let board = draw(&router, &mut tally, &layout, now);
            bytes = serde_json::to_string(&board).unwrap().len();
            assert_eq!(board.lines[0].waiting, 150);
            assert_eq!(board.lines[0].today.answered, 2_450);
        }
        let each = started.elapsed() / rounds;
        eprintln!("board: {each:?} to draw and serialise, {bytes} bytes");
        assert!(each.as_millis() < 500, "{each:?}");
    }
}
