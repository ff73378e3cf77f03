//! `[runtime]`: the threads that run the router's async work (SIP, calls, media, HTTP).
//!
//! Every message of a call crosses several tasks (the UDP reader, rsipstack's endpoint and
//! transaction, the dispatcher, the call driver); with one worker thread per core, each
//! hop may wake the other worker, and on a small machine shared with its peers those
//! wake-ups and context switches cost more than the work (loadtest/README.md, issue 18).

use serde::Deserialize;

/// The most worker threads taken: more is a typo, not a machine.
pub const MAX_WORKER_THREADS: usize = 256;

/// `[runtime]`
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Tokio worker threads; 0: one per core (tokio's default, or `TOKIO_WORKER_THREADS`).
    #[serde(default)]
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// The worker threads to ask for (`None`: tokio's default).
    pub fn worker_threads(&self) -> Option<usize> {
        (self.worker_threads > 0).then_some(self.worker_threads)
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
    fn worker_threads_default_to_one_per_core_and_are_bounded() {
        assert_eq!(parse("").unwrap().runtime.worker_threads(), None);
        let one = parse("[runtime]\nworker_threads = 1\n").unwrap();
        assert_eq!(one.runtime.worker_threads(), Some(1));
        let e = parse("[runtime]\nworker_threads = 1000\n").unwrap_err();
        assert!(e.contains("runtime.worker_threads"), "{e}");
        let e = parse("[runtime]\nthreads = 2\n").unwrap_err();
        assert!(e.contains("threads"), "{e}");
    }
}
