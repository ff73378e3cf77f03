//! The store writer's cost per call, as the router sends it: a journal line after each of
//! `STEPS` switchboard steps, `SEAT_EVENTS` seat-history lines, then the final record,
//! confirmed once group-committed (flushed). A burst of `iters` calls is sent as fast as
//! the driver would, then every confirmation awaited: time per call is the writer's
//! throughput cost (sled, encoding, flushes), not the group-commit window's latency. The
//! calls are short (all their writes in one burst), so their journal lines coalesce and
//! are superseded by their records, as for a short call in the router.
//! Default `WriterOptions` (2 ms window), default `StoreOptions` (16 MiB cache), a fresh
//! database under the system temp directory.
//!
//! Results: README ("Performance", the store).

use criterion::{Criterion, criterion_group, criterion_main};
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::record::{CallRecord, EventKind, Outcome};
use sas_router::store::seat_log::SeatEvent;
use sas_router::store::writer::{StoreWriter, WriterOptions};
use std::time::{Duration, Instant};

/// Journal steps per call: the timeline events of an answered call.
const STEPS: u64 = 8;
/// Seat-history lines per call (ringing, busy, wrap-up, available…).
const SEAT_EVENTS: u64 = 5;

fn record(n: u64) -> CallRecord {
    let id = format!("20261203T000000.000Z-{n:08}");
    let caller = CallerNumber::new("0612345678");
    CallRecord::new(id, "sip".into(), "samu".into(), "15".into(), caller, n)
}

fn seat_event(n: u64, kind: &str) -> SeatEvent {
    SeatEvent {
        at: n,
        seat: format!("arm{}", n % 100),
        kind: kind.into(),
        from: None,
        to: None,
        call: Some(format!("20261203T000000.000Z-{n:08}")),
        detail: None,
    }
}

/// Sends one call's writes; its final record's confirmation.
fn one_call(writer: &StoreWriter, n: u64) -> sas_router::store::writer::Confirmation {
    let mut r = record(n);
    for step in 0..STEPS {
        r.event(n + step, EventKind::Offer, Some("arm1"), None);
        writer.journal(n + step, vec![r.clone()]);
    }
    for _ in 0..SEAT_EVENTS {
        writer.seat_event(seat_event(n, "STATE"));
    }
    r.outcome = Some(Outcome::Answered);
    writer.record(r, None)
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("sas-bench-writer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).expect("store");
    let writer = StoreWriter::start(store, WriterOptions::default());
    let mut n = 0;
    let mut group = c.benchmark_group("store_writer");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("call", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            let pending: Vec<_> = (0..iters)
                .map(|_| {
                    n += 1;
                    one_call(&writer, n)
                })
                .collect();
            for done in pending {
                done.blocking_recv().expect("answered").expect("stored");
            }
            started.elapsed()
        })
    });
    group.finish();
    drop(writer);
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
