//! The process's allocator, mimalloc, and the figures it publishes.
//!
//! glibc's malloc keeps what it once held: each arena keeps its high-water mark, and free
//! chunks inside an arena stay resident, so the router's RSS followed the worst moment it
//! had been through (a burst, a backlog), not the calls in progress (loadtest/README.md,
//! "RSS over 200,000 calls"). A periodic `malloc_trim` gave it back, but a trim walks every
//! arena's free chunks holding that arena's lock (40–75 ms under load): every thread that
//! allocated meanwhile, the async workers included, waited, and the calls being set up then
//! took that much longer (INVITE → 200 p99 spikes at 200 calls/s).
//!
//! mimalloc gives freed pages back by itself, a page at a time, a while after they emptied
//! (its purge delay), without a process-wide lock; a thread frees another's blocks through
//! a lock-free list. But only the thread that owns a page frees it once empty, and only now
//! and then while it allocates: so each long-lived thread of ours, before it waits, has its
//! emptied pages freed ([`collect_before_waiting`]; tokio's workers when they park), and
//! [`run`], every [`PERIOD`], has the freed pages purged and publishes the memory mimalloc
//! holds committed (`sas_heap_committed_bytes`). Transparent huge pages are off for its
//! memory (the `no_thp` build feature): a 2 MiB page kept resident by one live block would
//! defeat the page-at-a-time purge.

use prometheus::{IntGauge, Registry};
use std::cell::Cell;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Every allocation of the router, its tests and its benches goes through mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often the allocator's figures are read.
pub const PERIOD: Duration = Duration::from_secs(5);

/// The allocator's gauge.
#[derive(Clone)]
pub struct HeapMetrics {
    committed: IntGauge,
}

impl HeapMetrics {
    /// Creates the gauge and registers it in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let committed = IntGauge::new(
            "heap_committed_bytes",
            "Memory the allocator (mimalloc) holds committed: blocks in use, and freed pages \
             not yet given back",
        )?;
        registry.register(Box::new(committed.clone()))?;
        Ok(Self { committed })
    }
}

/// Every `period`, has the allocator give back what it purges ([`collect`]) and publishes
/// the memory it holds committed, until `shutdown`.
pub async fn run(metrics: HeapMetrics, period: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // madvise calls for what is purged: off the async workers.
        let Ok(committed) = tokio::task::spawn_blocking(|| {
            collect();
            committed_bytes()
        })
        .await
        else {
            continue;
        };
        metrics
            .committed
            .set(i64::try_from(committed).unwrap_or(i64::MAX));
    }
}

/// How often a thread hands back the pages it emptied ([`collect_before_waiting`]):
/// mimalloc's purge delay, so an emptied page leaves within about two.
pub const THREAD_PERIOD: Duration = Duration::from_secs(1);

/// For a thread about to wait (a tokio worker parking, a relay or writer thread before its
/// poll): frees the pages of this thread's heap that are empty, at most once per
/// [`THREAD_PERIOD`]. Without it each tokio worker kept ~160 MiB of emptied pages once the
/// calls were over (docs/performance.md, "Idle RSS"). Returns how long the thread may wait
/// before calling again to finish the job; None when it has just collected.
pub fn collect_before_waiting() -> Option<Duration> {
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    LAST.with(|last| {
        let since = last.get().map(|at| now.saturating_duration_since(at));
        match since {
            Some(since) if since < THREAD_PERIOD => Some(THREAD_PERIOD - since),
            _ => {
                last.set(Some(now));
                collect();
                None
            }
        }
    })
}

/// Frees the calling thread's empty pages and gives back to the kernel the pages emptied
/// longer than the purge delay ago in every arena (`mi_collect(false)`: no process-wide
/// lock).
#[allow(unsafe_code)]
pub fn collect() {
    // SAFETY: mi_collect takes no pointer; callable from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

/// Bytes the allocator holds committed (mimalloc's `mi_process_info`; on Linux, its
/// readable and writable memory).
#[allow(unsafe_code)]
pub fn committed_bytes() -> u64 {
    // mi_process_info's out-parameters in order: elapsed, user and system ms, RSS, peak
    // RSS, commit, peak commit, page faults.
    const COMMIT: usize = 5;
    let mut fields = [0usize; 8];
    let p = fields.each_mut().map(std::ptr::from_mut);
    // SAFETY: mi_process_info writes one usize through each pointer, all valid (one per
    // element of `fields`, alive until the call returns) and distinct; callable from any
    // thread.
    unsafe { libmimalloc_sys::mi_process_info(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]) };
    fields[COMMIT] as u64
}

/// The process's resident bytes (`VmRSS` of /proc/self/status), None where there is none.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    /// The tests that measure the heap, one at a time: 200 MiB another frees may still be
    /// committed, free, when this one allocates, so its block would commit nothing new.
    fn alone() -> MutexGuard<'static, ()> {
        static HEAP: Mutex<()> = Mutex::new(());
        HEAP.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[test]
    fn committed_memory_counts_a_large_block() {
        let _alone = alone();
        let before = committed_bytes();
        // Larger than any block another test frees (a freed one may be cached, committed,
        // and given to this allocation), and zeroed: the kernel backs it lazily, no page
        // is touched.
        let block = std::hint::black_box(vec![0u8; 1 << 30]);
        let during = committed_bytes();
        // Other tests allocate and free meanwhile: half the block is a safe margin.
        assert!(during >= before + (512 << 20), "{before} → {during}");
        drop(block);
    }

    /// Collects every 100 ms until ~200 MiB freed since `during` (resident bytes then) have
    /// left the resident set; other tests allocate meanwhile: half is a safe margin.
    fn collect_until_given_back(during: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            collect();
            let after = resident_bytes().unwrap();
            if after + (100 << 20) < during {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still resident after 10 s: {during} → {after}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Small blocks freed while one allocated after them lives on: glibc kept them resident
    /// (an arena shrinks only from its top) until a `malloc_trim`, which held the arena's
    /// lock; mimalloc gives the emptied pages back once its purge delay has passed, at the
    /// next [`collect`] (or allocation of fresh pages), without stopping other threads.
    #[test]
    fn small_blocks_freed_behind_a_live_one_leave_the_resident_set() {
        let _alone = alone();
        let blocks: Vec<Box<[u8; 1024]>> =
            (0..200_000u32).map(|i| Box::new([i as u8; 1024])).collect();
        let pin = std::hint::black_box(Box::new([1u8; 1024]));
        let during = resident_bytes().unwrap();
        drop(blocks);
        collect_until_given_back(during);
        drop(pin);
    }

    /// Blocks one thread allocated and another freed: their pages, empty, stayed resident
    /// while their owner waited (a tokio worker parked after a burst), whatever the other
    /// threads collected, until the owner collects before waiting.
    #[test]
    fn a_thread_gives_back_the_pages_others_emptied_before_it_waits() {
        let _alone = alone();
        let (blocks_to_main, blocks) = std::sync::mpsc::channel();
        let (freed, wait_freed) = std::sync::mpsc::channel::<()>();
        let (done, wait_done) = std::sync::mpsc::channel::<()>();
        let owner = std::thread::spawn(move || {
            let mut mine: Vec<Box<[u8; 1024]>> =
                (0..200_000u32).map(|i| Box::new([i as u8; 1024])).collect();
            // Half freed here: the pages, half used, are this thread's to fill again.
            let theirs: Vec<_> = mine.drain(..).step_by(2).collect();
            blocks_to_main.send(theirs).unwrap();
            wait_freed.recv().unwrap();
            while let Some(left) = collect_before_waiting() {
                std::thread::sleep(left);
            }
            assert!(
                collect_before_waiting().is_some_and(|left| left <= THREAD_PERIOD),
                "at most once a period"
            );
            wait_done.recv().unwrap();
        });
        let theirs = blocks.recv().unwrap();
        let during = resident_bytes().unwrap();
        drop(theirs);
        freed.send(()).unwrap();
        // This thread's collect purges what the owner freed once the delay has passed.
        collect_until_given_back(during);
        done.send(()).unwrap();
        owner.join().unwrap();
    }

    #[test]
    fn reads_the_resident_size_from_proc_status() {
        let status = "Name:\tsas-router\nVmPeak:\t  900 kB\nVmRSS:\t  169636 kB\nThreads:\t19\n";
        assert_eq!(parse_vm_rss(status), Some(169_636 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
        assert!(
            resident_bytes().is_some_and(|b| b > 0),
            "this process has a VmRSS"
        );
    }
}
