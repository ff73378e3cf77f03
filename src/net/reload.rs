//! The dial plans in force, and their hot reload: on a change of the files (polled), on
//! SIGHUP, and on the admin HTTP API. A reload reads the plans and the prompts afresh and
//! validates them as a whole; only a valid set replaces the live one, atomically. Calls in
//! progress keep the set they started with to their end (each holds its own `Arc`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

use crate::media::prompts::PromptSet;
use crate::metrics::Metrics;
use crate::routing::files::{Loaded, load_with_prompts};
use crate::routing::plan::PlanSet;
use crate::time::{EpochMillis, wall_clock_now};

/// How often the directories are looked at for changes.
const POLL: Duration = Duration::from_secs(2);

/// One consistent routing set: the plans and the prompts they name.
#[derive(Clone)]
pub struct Routing {
    pub plans: Arc<PlanSet>,
    pub prompts: Arc<PromptSet>,
    /// Prompts the plans name that play silence instead (no file, or a bad one).
    pub stand_ins: Vec<String>,
    pub loaded_at: EpochMillis,
}

/// What the last reload attempt gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// The version in force after the attempt.
    pub version: String,
    /// True if a new set went live.
    pub changed: bool,
    /// Problems of a refused set (then the previous one stays live).
    pub errors: Vec<String>,
}

/// Reload metrics: `dialplan_reloads_total{result}`, `dialplan_last_reload_ok` (1 or 0),
/// `dialplan_version{version}` (1 for the version in force), `prompts_missing` (prompts the
/// plans in force name but cannot play: silence plays instead; anything above 0 is an
/// alert), `queue_role{queue,role}` (1 for each queue of the plans in force and the seat
/// role that answers it: alert rules join it with `seats{role,state}`). With
/// [`ReloadMetrics::with_call_series`], each line's and queue's call series too, at 0 as
/// soon as its plans go live (at start or by a reload).
#[derive(Clone)]
pub struct ReloadMetrics {
    reloads: IntCounterVec,
    last_ok: IntGauge,
    version: IntGaugeVec,
    prompts_missing: IntGauge,
    queue_role: IntGaugeVec,
    calls: Option<Metrics>,
}

impl ReloadMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<ReloadMetrics> {
        let reloads = IntCounterVec::new(
            Opts::new("dialplan_reloads_total", "Dial plan reloads, by result"),
            &["result"],
        )?;
        let last_ok = IntGauge::with_opts(Opts::new(
            "dialplan_last_reload_ok",
            "1 if the last dial plan reload was accepted, 0 if it was refused",
        ))?;
        let version = IntGaugeVec::new(
            Opts::new(
                "dialplan_version",
                "The dial plan version in force (value 1)",
            ),
            &["version"],
        )?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(last_ok.clone()))?;
        let prompts_missing = IntGauge::with_opts(Opts::new(
            "prompts_missing",
            "Prompts the dial plans in force name but cannot play (no file, or a bad one): \
             callers hear silence in their place",
        ))?;
        let queue_role = IntGaugeVec::new(
            Opts::new(
                "queue_role",
                "Queues of the dial plans in force and the seat role answering each (value 1)",
            ),
            &["queue", "role"],
        )?;
        registry.register(Box::new(version.clone()))?;
        registry.register(Box::new(prompts_missing.clone()))?;
        registry.register(Box::new(queue_role.clone()))?;
        last_ok.set(1);
        // Both results shown from the start, at 0, so a dashboard needs no special case.
        for result in ["ok", "refused"] {
            reloads.with_label_values(&[result]);
        }
        Ok(ReloadMetrics {
            reloads,
            last_ok,
            version,
            prompts_missing,
            queue_role,
            calls: None,
        })
    }

    /// Also starts the call series of every line and queue of the plans in force at 0
    /// (`increase()` counts from a series' first scrape: born at 1, the first call of a
    /// line added by a reload would be lost to the dashboard).
    pub fn with_call_series(mut self, metrics: &Metrics) -> Self {
        self.calls = Some(metrics.clone());
        self
    }

    /// The queues (and lines) of the plans now in force.
    fn set_plans(&self, plans: &PlanSet) {
        self.queue_role.reset();
        for q in plans.queues.values() {
            self.queue_role
                .with_label_values(&[&q.name, &q.role])
                .set(1);
        }
        if let Some(calls) = &self.calls {
            for entry in plans.entries.values() {
                calls.init_line(&entry.line);
            }
            for queue in plans.queues.keys() {
                calls.init_queue(queue);
            }
        }
    }
}

/// The routing set in force.
pub struct LivePlans {
    dir: PathBuf,
    prompts_dir: PathBuf,
    current: RwLock<Routing>,
    /// Serialises reloads (a SIGHUP and an HTTP call at once load once each, in turn).
    reloading: Mutex<()>,
    metrics: ReloadMetrics,
}

impl LivePlans {
    /// Loads the set at start-up.
    pub fn load(
        dir: &Path,
        prompts_dir: &Path,
        metrics: ReloadMetrics,
    ) -> Result<LivePlans, Vec<String>> {
        let routing = load(dir, prompts_dir)?;
        metrics
            .version
            .with_label_values(&[&routing.plans.version])
            .set(1);
        metrics.prompts_missing.set(routing.stand_ins.len() as i64);
        metrics.set_plans(&routing.plans);
        Ok(LivePlans {
            dir: dir.to_path_buf(),
            prompts_dir: prompts_dir.to_path_buf(),
            current: RwLock::new(routing),
            reloading: Mutex::new(()),
            metrics,
        })
    }

    /// The set new calls follow.
    pub fn current(&self) -> Routing {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads and validates the files again; swaps the set in if valid. `why` says what
    /// asked for it (logs).
    pub fn reload(&self, why: &str) -> ReloadReport {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = self.current().plans.version.clone();
        match load(&self.dir, &self.prompts_dir) {
            Ok(routing) => {
                let version = routing.plans.version.clone();
                let changed = version != before;
                if changed {
                    self.metrics.version.reset();
                    self.metrics.version.with_label_values(&[&version]).set(1);
                    self.metrics.set_plans(&routing.plans);
                    tracing::info!(%why, from = %before, to = %version, "dial plans reloaded");
                }
                // Swapped even when the plans did not change: the prompts may have (a
                // missing greeting put in place replaces its silent stand-in).
                self.metrics
                    .prompts_missing
                    .set(routing.stand_ins.len() as i64);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = routing;
                self.metrics.reloads.with_label_values(&["ok"]).inc();
                self.metrics.last_ok.set(1);
                ReloadReport {
                    version,
                    changed,
                    errors: Vec::new(),
                }
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(%why, "dial plans refused, {before} stays live: {e}");
                }
                self.metrics.reloads.with_label_values(&["refused"]).inc();
                self.metrics.last_ok.set(0);
                ReloadReport {
                    version: before,
                    changed: false,
                    errors,
                }
            }
        }
    }

    /// Reloads on SIGHUP and when the files change, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "no SIGHUP reload"))
            .ok();
        let mut seen = fingerprint(&[&self.dir, &self.prompts_dir]);
        let mut tick = tokio::time::interval(POLL);
        loop {
            let why = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async {
                    match hangup.as_mut() {
                        Some(h) => { h.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => "SIGHUP",
                _ = tick.tick() => {
                    let now = fingerprint(&[&self.dir, &self.prompts_dir]);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "files changed"
                }
            };
            let this = Arc::clone(&self);
            // Reading and validating is blocking work.
            tokio::task::spawn_blocking(move || this.reload(why))
                .await
                .ok();
        }
    }
}

fn load(dir: &Path, prompts_dir: &Path) -> Result<Routing, Vec<String>> {
    let Loaded {
        plans,
        prompts,
        bad,
        stand_ins,
    } = load_with_prompts(dir, prompts_dir);
    for e in &bad {
        tracing::error!("prompt rejected: {e}");
    }
    if let Ok(set) = &plans {
        for missing in &set.missing_prompts {
            tracing::error!(
                prompt = %missing.prompt,
                plan = %missing.origin.file.display(),
                "prompt file missing: {missing}"
            );
        }
    }
    let plans =
        plans.map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    for w in &plans.warnings {
        tracing::warn!("dial plan: {w}");
    }
    Ok(Routing {
        plans: Arc::new(plans),
        prompts: Arc::new(prompts),
        stand_ins,
        loaded_at: wall_clock_now(),
    })
}

/// Names, sizes and modification times of the files of `dirs`: changes when a file is
/// written, added, removed or renamed.
fn fingerprint(dirs: &[&Path]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut all = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let meta = entry.metadata().ok();
            all.push((
                entry.path(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            ));
        }
    }
    all.sort();
    all
}
