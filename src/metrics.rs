//! Prometheus metrics of the router, registered in one [`Metrics`] value. The gauges of
//! seats and queues are kept by [`seats`] and [`queues`], the wait histograms by [`waits`].
//!
//! Labels are bounded: `line` and `queue` come from the dial plans, `seat` and `role` from
//! the configuration, `target` is `amu`/`liberal`/`psy`, `priority_class` is `p0`/`other`.

pub mod queues;
pub mod seats;
pub mod waits;

use crate::acd::Urgency;
use crate::store::record::{EscalationTarget, Outcome, WaitEnd};
use prometheus::{
    Counter, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Buckets of every wait histogram: 15 s (misdials), 30 s and 60 s (the answer targets)
/// are each one query.
const WAIT_BUCKETS: [f64; 7] = [5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0];

/// The `priority_class` label: P0 (vital) apart from every other urgency.
pub fn priority_class(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::P0 => "p0",
        _ => "other",
    }
}

/// What the call driver keeps so that it updates the metrics one seat, queue or call at a
/// time, never by a walk over every seat after each event.
#[derive(Default)]
pub struct Tracking {
    pub seats: seats::SeatGauges,
    pub queues: queues::QueueGauges,
    pub waits: waits::WaitObserver,
}

/// All metrics; cheap to clone (handles to shared counters).
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Finished calls by line and outcome.
    pub calls: IntCounterVec,
    /// Seconds waited in each queue, by how the wait ended.
    pub queue_wait: HistogramVec,
    /// The first wait of each call (its décroché), by line and how it ended.
    pub line_wait: HistogramVec,
    /// Escalations' waits (the second décroché), by target, P0 or not, and how they ended.
    pub escalation_wait: HistogramVec,
    /// Calls in each queue (waiting, or ringing a seat).
    pub queue_depth: IntGaugeVec,
    /// Calls in a queue now, by line, queue and priority class.
    pub queue_waiting: IntGaugeVec,
    /// The longest wait of the calls in a queue now, by line, queue and priority class.
    pub queue_longest_wait: GaugeVec,
    /// Seats by role and state.
    pub seats: IntGaugeVec,
    /// 1 for the state each seat is in, 0 for the others.
    pub seat_state: IntGaugeVec,
    /// When each seat entered its state (Unix seconds).
    pub seat_state_since: GaugeVec,
    /// Calls whose recording could not start or be completed, by stage.
    pub recording_failures: IntCounterVec,
    /// SIP requests received by method.
    pub sip_requests: IntCounterVec,
    /// SIP responses by method, status code and direction.
    pub sip_responses: IntCounterVec,
    /// Malformed SIP messages received.
    pub sip_malformed: IntCounter,
    /// Calls in progress.
    pub active_calls: IntGauge,
    /// 1 while the router drains after SIGTERM (new calls refused; `/healthz` says 503).
    pub draining: IntGauge,
    /// New trunk calls shed (503) by the overload gate, by reason (calls, rate, delay).
    pub overload_shed: IntCounterVec,
    /// New trunk calls sent to their entry's `on_overload` step instead of a 503, by reason.
    pub overload_overflowed: IntCounterVec,
    /// 1 for the reason new trunk calls are being shed now (`net::overload`), else 0.
    pub overload_shedding: IntGaugeVec,
    /// The call driver's input-queue delay, smoothed, seconds.
    pub overload_delay: Gauge,
    /// Calls in progress as the overload gate counts them (against `max_calls`).
    pub overload_calls: IntGauge,
    /// RTP packets relayed, by direction.
    pub rtp_packets: IntCounterVec,
    /// 1 when the kernel media relay is attached and on (`[media] kernel_relay`).
    pub kernel_relay_active: IntGauge,
    /// RTP packets the kernel relayed (also in `rtp_packets`).
    pub kernel_relayed: IntCounter,
    /// SRTP/SRTCP packets dropped for failing authentication or the replay check, by leg
    /// (caller/seat).
    pub srtp_rejected: IntCounterVec,
    /// RTP packets lost on their way to us, by leg (caller/seat), added at call end.
    pub rtp_packets_lost: IntCounterVec,
    /// Interarrival jitter of what a leg sent us, observed once per leg at call end.
    pub rtp_jitter: HistogramVec,
    /// Received audio left out of recordings (too late for the jitter buffer), ms.
    pub recording_unplaced: Counter,
    /// Seats the ACD paused after a missed offer, by reason.
    pub seat_autopauses: IntCounterVec,
    /// Bursts of seats missing offers together (no autopause for them: overload, network).
    pub seat_miss_bursts: IntCounter,
    /// P0 callers left by their accompanying seat before the target answered.
    pub p0_unaccompanied: IntCounter,
    /// Entries of the router's per-call tables and tasks, by table (`net::live`): each
    /// returns to its idle value when calls end, or memory grows with calls handled.
    pub live_entries: IntGaugeVec,
    /// 1 for a line switched to the backup centre, 0 once restored.
    pub line_switched: IntGaugeVec,
    /// 1 while the trunk answers OPTIONS, 0 once it does not (`[trunk] options_interval_s`).
    pub trunk_up: IntGaugeVec,
    /// Trunk OPTIONS probes, answered or not.
    pub trunk_options: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("sas".into()), None).expect("static prefix");
        let calls = IntCounterVec::new(
            Opts::new("calls_total", "Finished calls by line and outcome"),
            &["line", "outcome"],
        )
        .expect("static metric");
        // 15/30/60/120 s buckets: the 60 s answer target is one query per queue.
        let queue_wait = HistogramVec::new(
            HistogramOpts::new(
                "queue_wait_seconds",
                "Wait in a queue until answered, abandoned or overflowed (the first queue \
                 counts from the call's arrival)",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
            &["queue", "outcome"],
        )
        .expect("static metric");
        let line_wait = HistogramVec::new(
            HistogramOpts::new(
                "line_wait_seconds",
                "First wait of each call (from its arrival, greeting and menu included) until \
                 a seat answered, the caller hung up (misdial under the threshold) or it \
                 overflowed, by line",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
            &["line", "outcome"],
        )
        .expect("static metric");
        let escalation_wait = HistogramVec::new(
            HistogramOpts::new(
                "escalation_wait_seconds",
                "Escalations (second décroché): from the transfer to the regulator's answer, \
                 abandon or overflow, by target (amu, liberal, psy) and priority class",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
            &["target", "priority_class", "outcome"],
        )
        .expect("static metric");
        // Every escalation series from the start: an alert or a panel on a P0 escalation
        // has its series before the first one happens.
        for target in EscalationTarget::ALL {
            for class in ["p0", "other"] {
                for outcome in ["answered", "abandoned", "overflowed"] {
                    escalation_wait.with_label_values(&[target.label(), class, outcome]);
                }
            }
        }
        let queue_waiting = IntGaugeVec::new(
            Opts::new(
                "queue_waiting",
                "Calls in a queue now (waiting, or ringing a seat), by line and priority class",
            ),
            &["line", "queue", "priority_class"],
        )
        .expect("static metric");
        let queue_longest_wait = GaugeVec::new(
            Opts::new(
                "queue_longest_wait_seconds",
                "Longest wait of the calls in a queue now (0: none), by line and priority class",
            ),
            &["line", "queue", "priority_class"],
        )
        .expect("static metric");
        let seat_state = IntGaugeVec::new(
            Opts::new(
                "seat_state",
                "1 for the state a seat is in, 0 for the others",
            ),
            &["seat", "role", "state"],
        )
        .expect("static metric");
        let seat_state_since = GaugeVec::new(
            Opts::new(
                "seat_state_since_timestamp_seconds",
                "When a seat entered its current state (Unix time)",
            ),
            &["seat"],
        )
        .expect("static metric");
        let recording_failures = IntCounterVec::new(
            Opts::new(
                "recording_failures_total",
                "Calls whose recording could not start or be completed, by stage",
            ),
            &["stage"],
        )
        .expect("static metric");
        for stage in ["start", "finish"] {
            recording_failures.with_label_values(&[stage]);
        }
        let queue_depth = IntGaugeVec::new(
            Opts::new("queue_depth", "Calls in a queue, waiting or ringing a seat"),
            &["queue"],
        )
        .expect("static metric");
        let seats = IntGaugeVec::new(
            Opts::new("seats", "Seats by role and state"),
            &["role", "state"],
        )
        .expect("static metric");
        let sip_requests = IntCounterVec::new(
            Opts::new("sip_requests_total", "SIP requests received by method"),
            &["method"],
        )
        .expect("static metric");
        let sip_responses = IntCounterVec::new(
            Opts::new(
                "sip_responses_total",
                "SIP responses by method, status code and direction (sent/received)",
            ),
            &["method", "code", "direction"],
        )
        .expect("static metric");
        let sip_malformed =
            IntCounter::new("sip_malformed_total", "Malformed SIP messages received")
                .expect("static");
        let active_calls = IntGauge::new("active_calls", "Calls in progress").expect("static");
        let draining = IntGauge::new("draining", "1 while draining after SIGTERM").expect("static");
        let overload_shed = IntCounterVec::new(
            Opts::new(
                "overload_shed_total",
                "New trunk calls refused (503) by overload control, by reason",
            ),
            &["reason"],
        )
        .expect("static metric");
        let overload_overflowed = IntCounterVec::new(
            Opts::new(
                "overload_overflowed_total",
                "New trunk calls sent to their entry's on_overload step (backup centre) \
                 instead of a 503, by reason",
            ),
            &["reason"],
        )
        .expect("static metric");
        let overload_shedding = IntGaugeVec::new(
            Opts::new(
                "overload_shedding",
                "1 for the reason new trunk calls are being shed now, else 0",
            ),
            &["reason"],
        )
        .expect("static metric");
        let overload_delay = Gauge::new(
            "overload_queue_delay_seconds",
            "Call driver input-queue delay, smoothed, seconds",
        )
        .expect("static");
        let overload_calls = IntGauge::new(
            "overload_calls_in_progress",
            "Calls in progress as overload control counts them",
        )
        .expect("static");
        let rtp_packets = IntCounterVec::new(
            Opts::new("rtp_packets_relayed_total", "RTP packets relayed"),
            &["direction"],
        )
        .expect("static metric");
        let srtp_rejected = IntCounterVec::new(
            Opts::new(
                "srtp_rejected_total",
                "SRTP/SRTCP packets dropped: failed authentication or replayed, by leg",
            ),
            &["leg"],
        )
        .expect("static metric");
        let kernel_relay_active = IntGauge::new(
            "media_kernel_relay_active",
            "1 when the kernel (eBPF) media relay is attached and on, else 0",
        )
        .expect("static");
        let kernel_relayed = IntCounter::new(
            "media_kernel_relayed_total",
            "RTP packets relayed by the kernel media relay (in rtp_packets_relayed_total too)",
        )
        .expect("static");
        let rtp_packets_lost = IntCounterVec::new(
            Opts::new(
                "rtp_packets_lost_total",
                "RTP packets lost on the way from a leg (caller/seat)",
            ),
            &["leg"],
        )
        .expect("static metric");
        let rtp_jitter = HistogramVec::new(
            HistogramOpts::new(
                "rtp_jitter_seconds",
                "Interarrival jitter of the RTP a leg sent, per call",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]),
            &["leg"],
        )
        .expect("static metric");
        let recording_unplaced = Counter::new(
            "recording_unplaced_seconds_total",
            "Audio received but left out of call recordings (came later than the jitter \
             buffer's depth), seconds",
        )
        .expect("static");
        let seat_autopauses = IntCounterVec::new(
            Opts::new(
                "seat_autopauses_total",
                "Seats paused by the ACD after a missed offer, by reason",
            ),
            &["reason"],
        )
        .expect("static metric");
        let seat_miss_bursts = IntCounter::new(
            "seat_miss_bursts_total",
            "Bursts of seats missing offers within one ring timeout (none paused for it)",
        )
        .expect("static");
        let p0_unaccompanied = IntCounter::new(
            "p0_unaccompanied_total",
            "P0 callers whose accompanying seat left before the target answered",
        )
        .expect("static");
        let live_entries = IntGaugeVec::new(
            Opts::new(
                "live_entries",
                "Entries in the router's per-call tables and live tasks, by table",
            ),
            &["table"],
        )
        .expect("static metric");
        let line_switched = IntGaugeVec::new(
            Opts::new(
                "line_switched",
                "1 for a line whose new calls go to the backup centre, 0 once restored",
            ),
            &["line"],
        )
        .expect("static metric");
        let trunk_up = IntGaugeVec::new(
            Opts::new(
                "trunk_up",
                "1 while the trunk answers the router's OPTIONS, 0 once a probe got no answer",
            ),
            &["target"],
        )
        .expect("static metric");
        let trunk_options = IntCounterVec::new(
            Opts::new(
                "trunk_options_total",
                "OPTIONS probes sent to the trunk, by result (answered, unanswered)",
            ),
            &["target", "result"],
        )
        .expect("static metric");
        for m in [
            Box::new(live_entries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(trunk_up.clone()),
            Box::new(trunk_options.clone()),
            Box::new(line_switched.clone()),
            Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(recording_unplaced.clone()),
            Box::new(seat_autopauses.clone()),
            Box::new(seat_miss_bursts.clone()),
            Box::new(queue_wait.clone()),
            Box::new(line_wait.clone()),
            Box::new(escalation_wait.clone()),
            Box::new(queue_depth.clone()),
            Box::new(queue_waiting.clone()),
            Box::new(queue_longest_wait.clone()),
            Box::new(seats.clone()),
            Box::new(seat_state.clone()),
            Box::new(seat_state_since.clone()),
            Box::new(recording_failures.clone()),
            Box::new(sip_requests.clone()),
            Box::new(sip_responses.clone()),
            Box::new(sip_malformed.clone()),
            Box::new(active_calls.clone()),
            Box::new(draining.clone()),
            Box::new(overload_shed.clone()),
            Box::new(overload_overflowed.clone()),
            Box::new(overload_shedding.clone()),
            Box::new(overload_delay.clone()),
            Box::new(overload_calls.clone()),
            Box::new(rtp_packets.clone()),
            Box::new(srtp_rejected.clone()),
            Box::new(rtp_packets_lost.clone()),
            Box::new(kernel_relay_active.clone()),
            Box::new(kernel_relayed.clone()),
            Box::new(rtp_jitter.clone()),
            Box::new(p0_unaccompanied.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Self {
            registry,
            calls,
            queue_wait,
            line_wait,
            escalation_wait,
            queue_depth,
            queue_waiting,
            queue_longest_wait,
            seats,
            seat_state,
            seat_state_since,
            recording_failures,
            sip_requests,
            sip_responses,
            sip_malformed,
            active_calls,
            draining,
            overload_shed,
            overload_overflowed,
            overload_shedding,
            overload_delay,
            overload_calls,
            rtp_packets,
            srtp_rejected,
            rtp_packets_lost,
            kernel_relay_active,
            kernel_relayed,
            rtp_jitter,
            recording_unplaced,
            seat_autopauses,
            seat_miss_bursts,
            p0_unaccompanied,
            live_entries,
            line_switched,
            trunk_up,
            trunk_options,
        }
    }

    /// Every series of a dial plan's line at 0 from the start (switch gauge, finished calls
    /// by outcome, first waits by outcome): Prometheus's `increase()` only counts what a
    /// series gains after its first scrape, so a series born at 1 would hide the line's
    /// first abandon or answer from the dashboard and the alerts.
    pub fn init_line(&self, line: &str) {
        self.line_switched.with_label_values(&[line]);
        for outcome in Outcome::ALL {
            self.calls.with_label_values(&[line, outcome.label()]);
        }
        for outcome in ["answered", "abandoned", "misdial", "overflowed"] {
            self.line_wait.with_label_values(&[line, outcome]);
        }
    }

    /// A dial plan's queue's waits at 0 from the start (see [`Metrics::init_line`]).
    pub fn init_queue(&self, queue: &str) {
        for end in [WaitEnd::Answered, WaitEnd::Abandoned, WaitEnd::Overflowed] {
            self.queue_wait.with_label_values(&[queue, end.label()]);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
