//! Seat gauges kept in step with each seat's own state change: `seats{role,state}` (seats
//! by role and state), `seat_state{seat,role,state}` (1 for the state a seat is in, 0 for
//! the others) and `seat_state_since_timestamp_seconds{seat}` (when it entered it).
//!
//! A change touches the gauges of the one seat concerned ([`SeatGauges::show`], O(1));
//! only the start ([`SeatGauges::show_all`]) walks every seat. Cardinality: the seats of
//! the configuration × 6 states, and roles × 6 states.

use super::Metrics;
use crate::acd::{Seat, SeatState};
use crate::time::EpochMillis;
use prometheus::{Gauge, IntGauge};
use std::collections::HashMap;

/// The state each seat's gauges show.
#[derive(Default)]
pub struct SeatGauges {
    shown: HashMap<String, Shown>,
}

/// A seat's state as shown, and its series, looked up once: a change sets gauges, it
/// does not hash labels (five lookups a change, three changes a call, were ~1 % of the
/// workers' time at 200 calls/s).
struct Shown {
    state: &'static str,
    /// The role its series are labelled with (a reload may change a seat's).
    role_name: String,
    /// `seat_state{seat,role,state}` and `seats{role,state}`, in [`SeatState::LABELS`]' order.
    own: Vec<IntGauge>,
    role: Vec<IntGauge>,
    since: Gauge,
}

impl Shown {
    fn new(metrics: &Metrics, seat: &Seat) -> Self {
        let (id, role) = (seat.id.as_str(), seat.role.as_str());
        Self {
            state: "",
            role_name: role.to_string(),
            own: SeatState::LABELS
                .iter()
                .map(|state| metrics.seat_state.with_label_values(&[id, role, state]))
                .collect(),
            role: SeatState::LABELS
                .iter()
                .map(|state| metrics.seats.with_label_values(&[role, state]))
                .collect(),
            since: metrics.seat_state_since.with_label_values(&[id]),
        }
    }
}

/// Where `state` is in [`SeatState::LABELS`].
fn position(state: &str) -> Option<usize> {
    SeatState::LABELS.iter().position(|label| *label == state)
}

impl SeatGauges {
    /// Shows every seat as it is (at start): each of its states, and each role's, gets a
    /// series, at 0 unless it is the seat's.
    pub fn show_all<'a>(
        &mut self,
        metrics: &Metrics,
        seats: impl IntoIterator<Item = &'a Seat>,
        now: EpochMillis,
    ) {
        for seat in seats {
            self.show(metrics, seat, now);
        }
    }

    /// Moves `seat`'s gauges to the state it is in now, if the gauges show another.
    pub fn show(&mut self, metrics: &Metrics, seat: &Seat, now: EpochMillis) {
        let state = seat.state.label();
        let shown = match self.shown.get_mut(seat.id.as_str()) {
            Some(shown) if shown.state == state && shown.role_name == seat.role => return,
            Some(shown) => shown,
            None => self
                .shown
                .entry(seat.id.to_string())
                .or_insert_with(|| Shown::new(metrics, seat)),
        };
        if let Some(old) = position(shown.state) {
            shown.role[old].dec();
            shown.own[old].set(0);
        }
        if shown.role_name != seat.role {
            *shown = Shown::new(metrics, seat);
        }
        if let Some(new) = position(state) {
            shown.role[new].inc();
            shown.own[new].set(1);
        }
        shown.since.set(now as f64 / 1000.0);
        shown.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{Acd, AcdSettings};
    use crate::time::Mono;

    fn acd(seats: usize) -> Acd {
        let mut acd = Acd::new(AcdSettings {
            ring_timeout_ms: 15_000,
            wrap_up_ms: 0,
            autopause: true,
            autopause_resume_ms: 60_000,
            autopause_burst: 3,
            aging_step_ms: 60_000,
        });
        for i in 0..seats {
            let role = if i % 2 == 0 { "arm" } else { "regulateur_amu" };
            acd.add_seat(&format!("s{i}"), role, Mono::ZERO);
        }
        acd
    }

    fn value(metrics: &Metrics, sample: &str) -> f64 {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn a_change_moves_one_seat_and_its_role_count() {
        let metrics = Metrics::new();
        let mut acd = acd(4);
        let mut gauges = SeatGauges::default();
        gauges.show_all(&metrics, acd.seats(), 1_000);
        assert_eq!(
            value(&metrics, "sas_seats{role=\"arm\",state=\"offline\"}"),
            2.0
        );
        assert_eq!(
            value(&metrics, "sas_seats{role=\"arm\",state=\"paused\"}"),
            0.0
        );

        acd.seat_online(Mono::ZERO, "s0");
        let seat = acd.seat("s0").unwrap();
        gauges.show(&metrics, seat, 5_000);
        // Shown twice (an output seen again): counted once.
        gauges.show(&metrics, seat, 6_000);
        assert_eq!(
            value(&metrics, "sas_seats{role=\"arm\",state=\"offline\"}"),
            1.0
        );
        assert_eq!(
            value(&metrics, "sas_seats{role=\"arm\",state=\"available\"}"),
            1.0
        );
        let s0 = "sas_seat_state{role=\"arm\",seat=\"s0\",state=";
        assert_eq!(value(&metrics, &format!("{s0}\"available\"}}")), 1.0);
        assert_eq!(value(&metrics, &format!("{s0}\"offline\"}}")), 0.0);
        assert_eq!(
            value(
                &metrics,
                "sas_seat_state_since_timestamp_seconds{seat=\"s0\"}"
            ),
            5.0
        );
        assert_eq!(
            value(
                &metrics,
                "sas_seats{role=\"regulateur_amu\",state=\"offline\"}"
            ),
            2.0
        );
    }

    #[test]
    fn a_seat_given_another_role_moves_between_the_role_counts() {
        let metrics = Metrics::new();
        let acd = acd(2);
        let mut gauges = SeatGauges::default();
        gauges.show_all(&metrics, acd.seats(), 1_000);
        let mut seat = acd.seat("s0").unwrap().clone();
        seat.role = "regulateur_amu".into();
        gauges.show(&metrics, &seat, 2_000);
        let offline = |role: &str| {
            value(
                &metrics,
                &format!("sas_seats{{role=\"{role}\",state=\"offline\"}}"),
            )
        };
        assert_eq!(offline("arm"), 0.0);
        assert_eq!(offline("regulateur_amu"), 2.0);
        let s0 = "sas_seat_state{role=\"regulateur_amu\",seat=\"s0\",state=\"offline\"}";
        assert_eq!(value(&metrics, s0), 1.0);
    }
}
