//! The durability cost: calls stored per second with and without the call journal. One
//! call is what the router writes for it: with the journal, its record after each of
//! `STEPS` switchboard steps (arrival, queue, offer, ringing, answer, bridge, hang-up…,
//! unflushed) then the final record (flushed, leaving the journal in the same
//! transaction); without, the final record alone. Both on the default `StoreOptions`
//! (64 MiB cache, 200 ms flush), in a fresh database under the system temp directory.
//!
//! Results: loadtest/README.md ("Durability cost").

use criterion::{Criterion, criterion_group, criterion_main};
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::record::{CallRecord, EventKind, Outcome};
use std::time::Duration;

/// Journal writes per call: the timeline events of an answered call.
const STEPS: u64 = 8;

fn record(n: u64) -> CallRecord {
    let id = format!("20261203T000000.000Z-{n:08}");
    let caller = CallerNumber::new("0612345678");
    CallRecord::new(id, "sip".into(), "samu".into(), "15".into(), caller, n)
}

fn store(name: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sas-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&dir).expect("store"), dir)
}

fn one_call(store: &Store, n: u64, journal: bool) {
    let mut r = record(n);
    if journal {
        for step in 0..STEPS {
            r.event(n + step, EventKind::Offer, Some("arm1"), None);
            store.journal(n + step, &[&r]).expect("journal");
        }
    }
    r.outcome = Some(Outcome::Answered);
    store.put_call(&r).expect("record");
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_call");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    for journal in [false, true] {
        let name = if journal {
            "with_journal"
        } else {
            "record_only"
        };
        let (store, dir) = store(name);
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                one_call(&store, n, journal)
            })
        });
        drop(store);
        std::fs::remove_dir_all(&dir).ok();
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
