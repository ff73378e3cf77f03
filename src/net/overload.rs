//! The overload gate: new trunk INVITEs are judged by the core's [`Governor`] as they are
//! read (from [`crate::net::front`], every transport), and shed ones get a stateless
//! `503 Service Unavailable` with `Retry-After` there: no rsipstack transaction, task, RTP
//! port, call record nor call-driver event is spent on them, which is the point under a
//! flood. The ACK of that 503 is absorbed the same way (its To tag says it is ours).
//!
//! Only new INVITEs from trunk addresses are judged: re-INVITEs, BYEs, ACKs, CANCELs,
//! REGISTERs and seats' own calls (to internal numbers, whatever their address) go on as
//! before, and calls already admitted are never
//! shed (the governor remembers their Call-IDs against retransmissions).
//!
//! A shed call is counted (`sas_overload_shed_total{reason}`) and logged once per
//! `[limits] error_log_interval_s` with a count; it gets no call record: writing one per
//! shed INVITE would put a sled write and a driver event per INVITE back into the flood
//! the gate keeps out, and the trunk has a final answer to overflow or retry on.
//!
//! The load signal is fed by [`Overload::run_probes`], which sends a probe through the call
//! driver's event queue every 100 ms; the driver returns it ([`Overload::probe_returned`])
//! and reports the calls it holds ([`Overload::driver_calls`]).

use crate::metrics::Metrics;
use crate::net::calls::CallEvent;
use crate::net::limits::LogThrottle;
use crate::net::reload::LivePlans;
use crate::sip::numbers::normalise;
use crate::sip::origin::Peers;
use crate::time::{Clock, Mono};
use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec};
use rsipstack::sip::headers::untyped::RetryAfter;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, Method, SipMessage, StatusCode};
use sas_core::overload::{Governor, PROBE_EVERY_MS, Verdict};
pub use sas_core::overload::{Limits, ShedReason, State};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

mod settings;
pub use settings::OverloadSettings;

/// The To tag of our stateless 503s: their ACKs carry it back.
const SHED_TAG: &str = "sas-shed-";

/// Shared by the front desk, the dispatcher, the call driver and `/healthz`.
#[derive(Clone)]
pub struct Overload(Arc<Inner>);

struct Inner {
    governor: Mutex<Governor>,
    /// When the governor was made: the probe ticks are scheduled from here, not from the
    /// ticker's first poll, so a freeze before that poll is a late tick too.
    created: std::time::Instant,
    clock: Clock,
    /// The trunk's addresses, and the proxies' whose INVITEs carry the trunk marker.
    peers: Peers,
    /// Internal numbers are seats' calls, never shed.
    plans: Arc<LivePlans>,
    shed: IntCounterVec,
    overflowed: IntCounterVec,
    shedding: IntGaugeVec,
    delay: Gauge,
    calls: IntGauge,
    log: Mutex<LogThrottle>,
}

impl Overload {
    /// A gate for INVITEs from the trunk (straight or through a proxy of `peers`) under
    /// `limits` (`plans` say which numbers are internal), reporting into `metrics`.
    pub fn new(
        limits: Limits,
        clock: Clock,
        (peers, plans): (Peers, Arc<LivePlans>),
        metrics: &Metrics,
        log_every: Duration,
    ) -> Self {
        for reason in ShedReason::ALL {
            metrics.overload_shed.with_label_values(&[reason.label()]);
            metrics
                .overload_overflowed
                .with_label_values(&[reason.label()]);
            metrics
                .overload_shedding
                .with_label_values(&[reason.label()]);
        }
        Self(Arc::new(Inner {
            governor: Mutex::new(Governor::new(limits, clock.mono())),
            created: std::time::Instant::now(),
            clock,
            peers,
            plans,
            shed: metrics.overload_shed.clone(),
            overflowed: metrics.overload_overflowed.clone(),
            shedding: metrics.overload_shedding.clone(),
            delay: metrics.overload_delay.clone(),
            calls: metrics.overload_calls.clone(),
            log: Mutex::new(LogThrottle::new(log_every)),
        }))
    }

    /// The answer to send at once for `message` (judged well-formed) from `source`: a 503
    /// for a shed trunk INVITE, nothing at all (empty) for the ACK of one; `None` to hand
    /// it on.
    pub fn answer(&self, message: &SipMessage, source: SocketAddr) -> Option<Vec<u8>> {
        let SipMessage::Request(req) = message else {
            return None;
        };
        let invite = req.method == Method::Invite;
        if !(invite || req.method == Method::Ack) || !self.0.peers.trusted(source.ip()) {
            return None;
        }
        // Through a proxy, only what it marked as the trunk's (the rest are seats' calls).
        let marked = crate::net::requests::marked(req);
        if invite && !self.0.peers.origin(source.ip(), marked).is_trunk() {
            return None;
        }
        let to_tag = req.to_header().ok()?.tag().ok().flatten();
        if !invite {
            // The ACK of our 503 (RFC 3261 §17.2.1): nobody else expects it.
            return to_tag
                .filter(|t| t.value().starts_with(SHED_TAG))
                .map(|_| Vec::new());
        }
        if to_tag.is_some() {
            return None; // a re-INVITE: its call was admitted
        }
        let called = normalise(&req.uri.to_string());
        let routing = self.0.plans.current();
        if routing.plans.internal.values().any(|i| i.number == called) {
            return None; // a seat's call
        }
        let entry = routing.plans.entry_for(&called);
        let can_overflow = entry.is_some_and(|e| e.on_overload.is_some());
        let call_id = hash_call_id(req.call_id_header().ok()?.value());
        let now = self.0.clock.mono();
        let verdict = self.governor()?.judge(now, call_id, can_overflow);
        let (reason, retry_after_s) = match verdict {
            Verdict::Admit => return None,
            Verdict::Overflow(reason) => {
                self.0.overflowed.with_label_values(&[reason.label()]).inc();
                return None;
            }
            Verdict::Shed {
                reason,
                retry_after_s,
            } => (reason, retry_after_s),
        };
        self.0.shed.with_label_values(&[reason.label()]).inc();
        self.log_shed(reason);
        let tag = format!("{SHED_TAG}{call_id:016x}");
        let retry = Header::RetryAfter(RetryAfter::new(retry_after_s.to_string()));
        let response = crate::sip::registrar::stateless_response(
            req,
            StatusCode::ServiceUnavailable,
            vec![retry],
            &tag,
        );
        Some(response.to_string().into_bytes())
    }

    /// The INVITE with SIP Call-ID `call_id` was taken by the call driver or refused at
    /// admission: it stops counting as pending (the driver counts its own calls).
    pub fn settled(&self, call_id: &str) {
        if let Some(mut g) = self.governor() {
            g.settled(hash_call_id(call_id));
        }
    }

    /// Whether the admitted INVITE with SIP Call-ID `call_id` goes to its entry's
    /// `on_overload` step (overload control would have shed it).
    pub fn overflowed(&self, call_id: &str) -> bool {
        self.governor()
            .is_some_and(|g| g.overflowed(hash_call_id(call_id)))
    }

    /// The calls the driver holds now.
    pub fn driver_calls(&self, calls: usize) {
        if let Some(mut g) = self.governor() {
            g.driver_calls(u32::try_from(calls).unwrap_or(u32::MAX));
        }
    }

    /// A probe sent at `sent` came out of the driver's queue.
    pub fn probe_returned(&self, sent: Mono) {
        let now = self.0.clock.mono();
        if let Some(mut g) = self.governor() {
            g.probe_returned(now, sent);
        }
    }

    /// Shedding or not, and why (`/healthz`, OPTIONS from the trunk).
    pub fn state(&self) -> State {
        let now = self.0.clock.mono();
        self.governor().map_or(State::Normal, |g| g.state(now))
    }

    /// The Retry-After of the 503s, seconds.
    pub fn retry_after_s(&self) -> u32 {
        self.governor().map_or(0, |g| g.limits().retry_after_s)
    }

    /// Sends a probe through the driver's queue every 100 ms, feeds the governor a queued
    /// probe's age and the tick's own lateness, and publishes the gauges, until `shutdown`.
    pub async fn run_probes(self, events: UnboundedSender<CallEvent>, shutdown: CancellationToken) {
        let mut tick =
            tokio::time::interval_at(self.0.created.into(), Duration::from_millis(PROBE_EVERY_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = tokio::select! {
                _ = shutdown.cancelled() => return,
                due = tick.tick() => due,
            };
            let late_ms = u64::try_from(due.elapsed().as_millis()).unwrap_or(u64::MAX);
            let now = self.0.clock.mono();
            let Some(mut g) = self.governor() else { return };
            if g.tick(now, late_ms) && events.send(CallEvent::Probe(now)).is_err() {
                return;
            }
            let (state, delay, calls) = (g.state(now), g.delay_ms(), g.in_progress());
            drop(g);
            for reason in ShedReason::ALL {
                let on = state == State::Shedding(reason);
                (self.0.shedding.with_label_values(&[reason.label()])).set(i64::from(on));
            }
            self.0.delay.set(f64::from(delay) / 1000.0);
            self.0.calls.set(i64::from(calls));
        }
    }

    fn log_shed(&self, reason: ShedReason) {
        let now = std::time::Instant::now();
        let Some(unlogged) = self.0.log.lock().ok().and_then(|mut t| t.hit(now)) else {
            return;
        };
        let (calls, delay_ms) = self
            .governor()
            .map_or((0, 0), |g| (g.in_progress(), g.delay_ms()));
        let reason = reason.label();
        tracing::warn!(
            reason,
            unlogged,
            calls,
            delay_ms,
            "overload: new trunk calls shed (503)"
        );
    }

    fn governor(&self) -> Option<std::sync::MutexGuard<'_, Governor>> {
        self.0.governor.lock().ok()
    }
}

/// A Call-ID as the governor remembers it.
fn hash_call_id(call_id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    call_id.trim().hash(&mut h);
    h.finish()
}

/// Releases an INVITE's pending place in the governor when its admission ends without the
/// call reaching the driver (dropped on every refusal path; disarmed once handed over).
pub struct Pending<'a> {
    overload: &'a Overload,
    call_id: Option<String>,
}

impl<'a> Pending<'a> {
    /// The pending place of `call_id`.
    pub fn new(overload: &'a Overload, call_id: &str) -> Self {
        Self {
            overload,
            call_id: Some(call_id.to_owned()),
        }
    }

    /// The call went to the driver, which settles it as it takes it.
    pub fn handed_over(mut self) {
        self.call_id = None;
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(id) = &self.call_id {
            self.overload.settled(id);
        }
    }
}
