//! The drivers' handle on [`Bans`]: one lock, the monotonic clock, and what each change
//! means for the log and the metrics (`sas_auth_failures_total{via}`,
//! `sas_bans_total{kind}`, `sas_unbans_total{kind,how}`, `sas_bans_active{kind}`).
//!
//! The log names a user only when it is a configured seat: a name a scanner tried may be
//! anything, a caller's number included.

use super::{BanEvent, BanKey, BanSettings, BanView, Bans, Door};
use crate::time::Clock;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters and gauges of the bans.
#[derive(Clone)]
struct BanMetrics {
    failures: IntCounterVec,
    bans: IntCounterVec,
    unbans: IntCounterVec,
    active: IntGaugeVec,
}

impl BanMetrics {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let failures = IntCounterVec::new(
            Opts::new(
                "auth_failures_total",
                "Failed authentications (wrong password or unknown user), by where: sip, console",
            ),
            &["via"],
        )?;
        let bans = IntCounterVec::new(
            Opts::new(
                "bans_total",
                "Bans for password guessing, by kind: source, user",
            ),
            &["kind"],
        )?;
        let unbans = IntCounterVec::new(
            Opts::new(
                "unbans_total",
                "Bans ended, by kind and how: expired, lifted",
            ),
            &["kind", "how"],
        )?;
        let active = IntGaugeVec::new(
            Opts::new("bans_active", "Bans in force, by kind: source, user"),
            &["kind"],
        )?;
        for metric in [&failures, &bans, &unbans] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(active.clone()))?;
        for kind in ["source", "user"] {
            active.with_label_values(&[kind]).set(0);
            let _ = bans.with_label_values(&[kind]);
        }
        Ok(Self {
            failures,
            bans,
            unbans,
            active,
        })
    }
}

/// Shared by the SIP dispatcher and the HTTP server.
#[derive(Clone)]
pub struct Guard {
    bans: Arc<Mutex<Bans>>,
    clock: Clock,
    metrics: BanMetrics,
    /// Configured seat names (the only user names ever logged).
    seats: Arc<HashSet<String>>,
}

impl Guard {
    /// The guard for `settings`; `trunk` addresses are never banned.
    pub fn new(
        settings: BanSettings,
        trunk: &[IpAddr],
        seats: impl IntoIterator<Item = String>,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        Ok(Self {
            bans: Arc::new(Mutex::new(Bans::new(settings, trunk))),
            clock: Clock::new(),
            metrics: BanMetrics::register(registry)?,
            seats: Arc::new(seats.into_iter().collect()),
        })
    }

    /// May a request from `source`, naming `user`, go on?
    pub fn check(&self, source: IpAddr, user: Option<&str>) -> Door {
        self.with(|bans, now| bans.check(now, source, user))
    }

    /// Whether a request from `source`, naming `user`, would be held back (nothing
    /// counted: for a look before the door, which then decides).
    pub fn holds(&self, source: IpAddr, user: Option<&str>) -> bool {
        let now = self.clock.mono();
        self.lock().holds(now, source, user)
    }

    /// A failed authentication (`via`: `sip` or `console`).
    pub fn failed(&self, via: &str, source: IpAddr, user: &str) {
        self.metrics.failures.with_label_values(&[via]).inc();
        self.with(|bans, now| bans.failed(now, source, user));
    }

    /// A successful authentication.
    pub fn succeeded(&self, source: IpAddr, user: &str) {
        self.with(|bans, now| bans.succeeded(now, source, user));
    }

    /// The bans in force.
    pub fn list(&self) -> Vec<BanView> {
        self.with(|bans, now| bans.list(now))
    }

    /// Lifts a ban; false if there is none on `key`.
    pub fn lift(&self, key: &BanKey) -> bool {
        self.with(|bans, now| bans.lift(now, key))
    }

    /// Runs `f` under the lock, then reports what changed.
    fn with<T>(&self, f: impl FnOnce(&mut Bans, crate::time::Mono) -> T) -> T {
        let now = self.clock.mono();
        let mut bans = self.lock();
        let result = f(&mut bans, now);
        let mut changed = false;
        while let Some(event) = bans.poll_event() {
            changed = true;
            self.report(&event);
        }
        if changed {
            let (sources, users) = bans.active(now);
            let gauge =
                |kind: &str, n: usize| self.metrics.active.with_label_values(&[kind]).set(n as i64);
            gauge("source", sources);
            gauge("user", users);
        }
        result
    }

    fn report(&self, event: &BanEvent) {
        match event {
            BanEvent::Banned {
                key,
                for_ms,
                strike,
            } => {
                self.metrics.bans.with_label_values(&[key.kind()]).inc();
                let seconds = for_ms / 1000;
                match key {
                    BanKey::Source(ip) => {
                        tracing::warn!(source = %ip, seconds, strike, "source banned: too many failed authentications")
                    }
                    BanKey::User(name) => {
                        let seat = self.loggable(name);
                        tracing::warn!(
                            seat,
                            seconds,
                            strike,
                            "user banned: too many failed authentications"
                        )
                    }
                }
            }
            BanEvent::Unbanned { key, how } => {
                let labels = [key.kind(), how.label()];
                self.metrics.unbans.with_label_values(&labels).inc();
                let how = how.label();
                match key {
                    BanKey::Source(ip) => tracing::info!(source = %ip, how, "source ban ended"),
                    BanKey::User(name) => {
                        let seat = self.loggable(name);
                        tracing::info!(seat, how, "user ban ended")
                    }
                }
            }
        }
    }

    fn loggable<'a>(&self, name: &'a str) -> &'a str {
        if self.seats.contains(name) {
            name
        } else {
            "(not a seat)"
        }
    }

    fn lock(&self) -> MutexGuard<'_, Bans> {
        // Every update is a few field writes: the state stays usable after a panic.
        self.bans.lock().unwrap_or_else(|p| p.into_inner())
    }
}
