//! Cost of the seat and queue gauges per router event, as the centre grows (issue 18: no
//! per-event work proportional to the number of seats).
//!
//! - `former_rebuild`: what the call driver did after every event until the gauges were
//!   made incremental: count every seat in every state, set every `seats{role,state}`,
//!   and count the calls of every queue. Kept here only as the baseline.
//! - `one_seat_change`: what it does now when a seat changes state
//!   ([`SeatGauges::show`]): the gauges of that seat and its role, whatever the size.
//! - `queue_sample`: the queue gauges, now sampled once a second instead of after every
//!   event ([`QueueGauges::sample`]).
//!
//! Measured on the 2-core dev VM, shared, with `cargo bench --bench metrics_gauges
//! --profile dev -- --warm-up-time 1 --measurement-time 3` (unoptimised: read the ratios),
//! per event: 100 seats 692 µs before, 3.8 µs after; 1,000 seats 7.8 ms before, 3.3 µs
//! after. The queue sample, once a second: 77 µs for 20 calls in queues, 244 µs for 100.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sas_router::acd::{Acd, AcdSettings, Seat, SeatState, Urgency};
use sas_router::call::QueuedCall;
use sas_router::metrics::Metrics;
use sas_router::metrics::queues::QueueGauges;
use sas_router::metrics::seats::SeatGauges;
use sas_router::time::Mono;
use std::collections::HashMap;
use std::hint::black_box;

/// Seats in the centre, and calls in queues (a tenth of the seats' number, at least 20).
const SIZES: [usize; 2] = [100, 1_000];

fn centre(seats: usize) -> Acd {
    let mut acd = Acd::new(AcdSettings {
        ring_timeout_ms: 15_000,
        wrap_up_ms: 0,
        autopause: true,
        autopause_resume_ms: 60_000,
        autopause_burst: 3,
        aging_step_ms: 60_000,
    });
    for i in 0..seats {
        let role = ["arm", "regulateur_amu", "regulateur_liberal"][i % 3];
        let id = format!("seat{i:05}");
        acd.add_seat(&id, role, Mono::ZERO);
        acd.seat_online(Mono::ZERO, &id);
    }
    acd
}

fn queued(calls: usize) -> Vec<QueuedCall<'static>> {
    (0..calls)
        .map(|i| QueuedCall {
            line: ["samu", "sas"][i % 2],
            queue: ["arm", "amu", "liberal"][i % 3],
            urgency: if i % 10 == 0 {
                Urgency::P0
            } else {
                Urgency::P2
            },
            since: i as u64,
        })
        .collect()
}

/// The driver's former per-event gauge work (the baseline).
fn former_rebuild(metrics: &Metrics, acd: &Acd, calls: &[QueuedCall<'_>]) {
    let mut depths: HashMap<&str, i64> = HashMap::new();
    for call in calls {
        *depths.entry(call.queue).or_insert(0) += 1;
    }
    for (queue, n) in depths {
        metrics.queue_depth.with_label_values(&[queue]).set(n);
    }
    let mut counts: HashMap<(&str, &str), i64> = HashMap::new();
    for seat in acd.seats() {
        for label in SeatState::LABELS {
            counts.entry((seat.role.as_str(), label)).or_insert(0);
        }
        *counts
            .entry((seat.role.as_str(), seat.state.label()))
            .or_insert(0) += 1;
    }
    for ((role, state), n) in counts {
        metrics.seats.with_label_values(&[role, state]).set(n);
    }
}

fn gauges(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_gauges");
    for seats in SIZES {
        let acd = centre(seats);
        let calls = queued((seats / 10).max(20));
        let metrics = Metrics::new();
        group.bench_function(BenchmarkId::new("former_rebuild", seats), |b| {
            b.iter(|| former_rebuild(&metrics, black_box(&acd), &calls))
        });

        let mut shown = SeatGauges::default();
        shown.show_all(&metrics, acd.seats(), 0);
        // One seat going back and forth between two states.
        let available: Seat = acd.seat("seat00000").unwrap().clone();
        let mut busy = available.clone();
        busy.state = SeatState::Busy { call: "c1".into() };
        let mut flip = false;
        group.bench_function(BenchmarkId::new("one_seat_change", seats), |b| {
            b.iter(|| {
                flip = !flip;
                let seat = if flip { &busy } else { &available };
                shown.show(&metrics, black_box(seat), 1_000);
            })
        });

        let mut queues = QueueGauges::default();
        group.bench_function(BenchmarkId::new("queue_sample", calls.len()), |b| {
            b.iter(|| queues.sample(&metrics, calls.iter().copied(), 100_000))
        });
    }
    group.finish();
}

criterion_group!(benches, gauges);
criterion_main!(benches);
