//! The store alone under many calls: CALLS calls written as the router writes them, through
//! the store writer (the record journaled at each of 8 steps, then stored and taken out of
//! the journal; group commits, the commit log, checkpoints), with
//! the router's RSS (VmRSS) printed every tenth, to tell the store's memory from the rest
//! of the router's (loadtest/durability.sh measures the whole router).
//!
//!   cargo run --release --example store_rss -- [CALLS=20000] [CACHE_MB=64] [JOURNAL=1]

use sas_router::pii::CallerNumber;
use sas_router::store::record::{CallRecord, EventKind, Outcome};
use sas_router::store::writer::{StoreWriter, WriterOptions};
use sas_router::store::{Store, StoreOptions};
use std::time::Instant;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = args.first().copied().unwrap_or(20_000);
    let cache_mb = args.get(1).copied().unwrap_or(64);
    let journal = args.get(2).copied().unwrap_or(1) == 1;
    let dir = std::env::temp_dir().join(format!("sas-store-rss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = StoreOptions {
        cache_capacity: cache_mb * 1024 * 1024,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&dir, options).expect("store");
    let writer = StoreWriter::start(store.clone(), WriterOptions::default());
    // Confirmations awaited a window at a time, as the router's calls end in parallel.
    let mut pending = Vec::new();
    println!("calls 0: RSS {:.0} MiB", rss_mib());
    let start = Instant::now();
    for n in 1..=calls {
        let id = format!("20261203T000000.000Z-{n:08}");
        let caller = CallerNumber::new("0612345678");
        let mut r = CallRecord::new(id, "sip".into(), "samu".into(), "15".into(), caller, n);
        for step in 0..8 {
            r.event(
                n + step,
                EventKind::Offer,
                Some("arm1"),
                Some("detail".into()),
            );
            if journal {
                writer.journal(n + step, vec![r.clone()]);
            }
        }
        r.outcome = Some(Outcome::Answered);
        pending.push(writer.record(r, None));
        if pending.len() == 200 {
            for done in pending.drain(..) {
                done.blocking_recv().expect("writer").expect("record");
            }
        }
        if n % (calls / 10).max(1) == 0 {
            println!("calls {n}: RSS {:.0} MiB", rss_mib());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{calls} calls in {secs:.1} s ({:.0} records/s), journal {journal}, cache {cache_mb} MiB",
        calls as f64 / secs
    );
    for done in pending {
        done.blocking_recv().expect("writer").expect("record");
    }
    drop(writer);
    drop(store);
    std::fs::remove_dir_all(&dir).ok();
}
