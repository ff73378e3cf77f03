//! `[runtime]`: the threads that run the router's async work (SIP, calls, media, HTTP).
//!
//! One worker by default. Every message of a call crosses several tasks (the UDP reader,
//! rsipstack's endpoint and transaction, the dispatcher, the call driver); with a worker
//! per core, tokio hands a task to an idle worker whenever one poll wakes two (2.7 wake-ups
//! a call at 200 calls/s), and the second worker pays a wake-up and cold caches for work
//! the first would have done in microseconds. One worker costs 7–15 % less CPU a call and
//! carries 2,000 calls/s with room to spare (docs/performance.md, "One async worker"): the
//! heavy work is on threads of its own (store writer, relay threads, the blocking pool for
//! disk and argon2), so what the worker does is short.

use serde::Deserialize;

/// The most worker threads taken: more is a typo, not a machine.
pub const MAX_WORKER_THREADS: usize = 256;

/// `[runtime]`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Tokio worker threads (1 unless configured); 0: one per core (tokio's default, or
    /// `TOKIO_WORKER_THREADS`).
    #[serde(default = "one")]
    pub worker_threads: usize,
}

fn one() -> usize {
    1
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            worker_threads: one(),
        }
    }
}

impl RuntimeConfig {
    /// The worker threads to ask for (`None`: tokio's default).
    pub fn worker_threads(&self) -> Option<usize> {
        (self.worker_threads > 0).then_some(self.worker_threads)
    }

    /// A runtime builder for this configuration. One worker is tokio's current-thread
    /// scheduler: the thread that starts the router runs every task, with no work-stealing
    /// bookkeeping and no hand-over between threads (10–15 % less of the worker's CPU a call
    /// at 1,000 calls/s than a one-worker multi-thread runtime: docs/performance.md).
    pub fn builder(&self) -> tokio::runtime::Builder {
        match self.worker_threads() {
            Some(1) => tokio::runtime::Builder::new_current_thread(),
            Some(threads) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(threads);
                builder
            }
            None => tokio::runtime::Builder::new_multi_thread(),
        }
    }

    /// The key at fault and why, if any.
    pub fn defect(&self) -> Option<(&'static str, String)> {
        (self.worker_threads > MAX_WORKER_THREADS).then(|| {
            let reason = format!("must be between 0 (one per core) and {MAX_WORKER_THREADS}");
            ("runtime.worker_threads", reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, String> {
        let text = format!("[sip]\n[trunk]\naddresses = [\"127.0.0.1\"]\n{extra}");
        let config = Config::from_toml(&text, Path::new("t.toml")).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn one_worker_thread_unless_configured_and_bounded() {
        assert_eq!(parse("").unwrap().runtime.worker_threads(), Some(1));
        let empty = parse("[runtime]\n").unwrap();
        assert_eq!(empty.runtime.worker_threads(), Some(1));
        let per_core = parse("[runtime]\nworker_threads = 0\n").unwrap();
        assert_eq!(per_core.runtime.worker_threads(), None);
        let two = parse("[runtime]\nworker_threads = 2\n").unwrap();
        assert_eq!(two.runtime.worker_threads(), Some(2));
        let e = parse("[runtime]\nworker_threads = 1000\n").unwrap_err();
        assert!(e.contains("runtime.worker_threads"), "{e}");
        let e = parse("[runtime]\nthreads = 2\n").unwrap_err();
        assert!(e.contains("threads"), "{e}");
    }

    #[test]
    fn one_worker_is_the_current_thread_scheduler() {
        use tokio::runtime::RuntimeFlavor;
        let flavor = |extra: &str| {
            let runtime = parse(extra).unwrap().runtime.builder().build().unwrap();
            runtime.handle().runtime_flavor()
        };
        assert_eq!(flavor(""), RuntimeFlavor::CurrentThread);
        assert_eq!(
            flavor("[runtime]\nworker_threads = 2\n"),
            RuntimeFlavor::MultiThread
        );
        assert_eq!(
            flavor("[runtime]\nworker_threads = 0\n"),
            RuntimeFlavor::MultiThread
        );
    }
}
