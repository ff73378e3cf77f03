//! Gives the heap's freed memory back to the kernel.
//!
//! glibc's malloc keeps what it once held: each arena (one per thread that allocated, up to
//! 8 per core) keeps its high-water mark, and free chunks inside an arena stay resident. So
//! the router's RSS followed the worst moment it had been through (a few seconds behind, a
//! burst of retransmissions: each call of the backlog holds its transactions, tasks and
//! channels), not the calls in progress, and rose a step with every new worst moment: at 400
//! calls/s, 666 MiB resident with no call left after 72,000 calls, 169 MiB after one
//! `malloc_trim` (loadtest/README.md, "RSS over 200,000 calls").
//!
//! [`run`] compares, every period, the resident size with the heap in use (glibc's
//! `mallinfo2`): what is resident beyond what is in use is memory freed and kept. When that
//! has grown past [`TrimPolicy`]'s margin since the last trim, `malloc_trim(0)` gives it
//! back. Idle or steady, nothing is done; after a burst or a backlog, what it freed goes
//! back. Counted in `sas_heap_trims_total`, `sas_heap_trimmed_bytes_total`,
//! `sas_heap_trim_seconds_total`; `sas_heap_in_use_bytes` is the heap in use.

use prometheus::{Counter, IntCounter, IntGauge, Registry};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the resident size is read.
pub const PERIOD: Duration = Duration::from_secs(5);

/// Trim when the memory resident but not in use (resident minus the heap in use) has grown
/// past what the last trim left by more than an eighth of the heap in use, and by at least
/// [`TrimPolicy::MIN_GROWTH`]: a trim walks every arena (milliseconds for hundreds of MiB)
/// and memory used again after it is faulted in again. A heap that grows because more is in
/// use (more calls in progress) is not a reason to trim.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrimPolicy {
    /// Resident bytes not in use right after the last trim (0 before the first): the
    /// binary, stacks, and what a trim cannot give back (pages partly in use).
    floor: u64,
}

impl TrimPolicy {
    /// Growth below which no trim is worth its cost.
    pub const MIN_GROWTH: u64 = 8 << 20;

    /// Whether `resident` bytes, of which `in_use` are heap in use, call for a trim.
    pub fn due(&self, resident: u64, in_use: u64) -> bool {
        let kept = resident.saturating_sub(in_use);
        let margin = (in_use / 8).max(Self::MIN_GROWTH);
        kept > self.floor.saturating_add(margin)
    }

    /// A trim left `resident` bytes with `in_use` in use: the next is measured from there.
    pub fn trimmed(&mut self, resident: u64, in_use: u64) {
        self.floor = resident.saturating_sub(in_use);
    }
}

/// The trimmer's counters.
#[derive(Clone)]
pub struct HeapMetrics {
    in_use: IntGauge,
    trims: IntCounter,
    trimmed: IntCounter,
    seconds: Counter,
}

impl HeapMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let in_use = IntGauge::new("heap_in_use_bytes", "Heap in use (glibc's mallinfo2)")?;
        let trims = IntCounter::new(
            "heap_trims_total",
            "malloc_trim calls (memory freed and kept resident had grown)",
        )?;
        let trimmed = IntCounter::new(
            "heap_trimmed_bytes_total",
            "Resident bytes given back to the kernel by malloc_trim",
        )?;
        let seconds = Counter::new("heap_trim_seconds_total", "Time spent in malloc_trim")?;
        registry.register(Box::new(in_use.clone()))?;
        registry.register(Box::new(trims.clone()))?;
        registry.register(Box::new(trimmed.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self {
            in_use,
            trims,
            trimmed,
            seconds,
        })
    }
}

/// Every `period`, compares the resident size with the heap in use and trims the heap when
/// [`TrimPolicy`] says so, until `shutdown`.
pub async fn run(metrics: HeapMetrics, period: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut policy = TrimPolicy::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // mallinfo2 and malloc_trim walk every arena under its lock: off the async workers.
        let Ok(Some(reading)) = tokio::task::spawn_blocking(move || check(policy)).await else {
            continue;
        };
        metrics
            .in_use
            .set(i64::try_from(reading.in_use).unwrap_or(i64::MAX));
        let Some((after, took)) = reading.trimmed else {
            continue;
        };
        policy.trimmed(after, reading.in_use);
        metrics.trims.inc();
        metrics
            .trimmed
            .inc_by(reading.resident.saturating_sub(after));
        metrics.seconds.inc_by(took.as_secs_f64());
    }
}

/// One reading of the heap, and the trim it called for.
struct Reading {
    resident: u64,
    in_use: u64,
    /// Resident bytes after the trim, and its time.
    trimmed: Option<(u64, Duration)>,
}

fn check(policy: TrimPolicy) -> Option<Reading> {
    let (resident, in_use) = (resident_bytes()?, heap_in_use()?);
    let trimmed = policy.due(resident, in_use).then(|| {
        let start = Instant::now();
        trim();
        (resident_bytes().unwrap_or(resident), start.elapsed())
    });
    Some(Reading {
        resident,
        in_use,
        trimmed,
    })
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

/// Bytes of heap in use: allocated from arenas and mapped on their own (`mallinfo2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn heap_in_use() -> Option<u64> {
    // SAFETY: mallinfo2 takes no pointer, returns a struct by value and locks each arena
    // itself; callable from any thread.
    let info = unsafe { libc::mallinfo2() };
    Some((info.uordblks + info.hblkhd) as u64)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointer and locks each arena itself; callable from any
    // thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl, macOS) give memory back by themselves or have no such calls.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_in_use() -> Option<u64> {
    None
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn trims_once_memory_kept_but_not_in_use_grew_past_the_margin() {
        let mut policy = TrimPolicy::default();
        assert!(!policy.due(8 * MIB, 0), "a small process is left alone");
        assert!(policy.due(9 * MIB, 0));
        // 40 MiB kept resident after the trim (binary, stacks, partly used pages).
        policy.trimmed(200 * MIB, 160 * MIB);
        // An eighth of 160 MiB in use is 20 MiB.
        assert!(
            !policy.due(260 * MIB, 200 * MIB),
            "more in use is not a reason"
        );
        assert!(!policy.due(220 * MIB, 160 * MIB));
        assert!(policy.due(221 * MIB, 160 * MIB));
        // A burst over, its memory freed but resident: 400 MiB kept, 40 in use.
        assert!(policy.due(440 * MIB, 40 * MIB));
        policy.trimmed(90 * MIB, 40 * MIB);
        assert!(
            !policy.due(98 * MIB, 40 * MIB),
            "measured from the last trim's result"
        );
        assert!(policy.due(99 * MIB, 40 * MIB));
    }

    #[test]
    fn a_small_heap_still_waits_for_the_minimum_growth() {
        let mut policy = TrimPolicy::default();
        policy.trimmed(30 * MIB, 16 * MIB);
        assert!(!policy.due(30 * MIB + TrimPolicy::MIN_GROWTH, 16 * MIB));
        assert!(policy.due(30 * MIB + TrimPolicy::MIN_GROWTH + 1, 16 * MIB));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn heap_in_use_counts_a_large_block() {
        let before = heap_in_use().unwrap();
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let during = heap_in_use().unwrap();
        // Other tests allocate and free meanwhile: half the block is a safe margin.
        assert!(during >= before + (32 << 20), "{before} → {during}");
        drop(block);
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
