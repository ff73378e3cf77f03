//! Overload control (RFC 7339's spirit, Kamailio's ratelimit): whether a new trunk INVITE
//! is admitted or shed, decided from three signals, each reacting within a second:
//!
//! - **calls in progress** at or above `max_calls` (a level: it cannot oscillate, and it is
//!   what RTP ports and seats run out of);
//! - **arrival rate**: a token bucket of `max_call_rate` INVITEs per second with one
//!   second's burst: sheds the excess at once and never more than it;
//! - **input-queue delay** of the call driver, measured by probes sent through its event
//!   queue ([`Governor::tick`], [`Governor::probe_returned`]) and smoothed (EWMA, α = 0.3 per
//!   100 ms sample: ~300 ms to react); shedding starts above `max_delay_ms` and stops below
//!   half of it (hysteresis: admitting again does not at once push the delay back over).
//!   A probe still queued counts as a delay of its age, so a driver stuck in a burst is seen
//!   without waiting for the probe to come back; a probe tick that fires late counts as its
//!   lateness (the whole runtime, or the process, was held up). This is the CPU signal that does not
//!   depend on this machine's figures: when the router is behind, its queue says so.
//!
//! A call that would be shed but whose entry has an `on_overload` step (the backup centre)
//! is admitted to go there instead ([`Verdict::Overflow`]) while calls in progress stay
//! below `overflow_max_calls`, the delay below twice `max_delay_ms`, and overflowed arrivals
//! within their own bucket of `max_call_rate`; past those hard limits it is shed too.
//!
//! Only new trunk INVITEs are judged. A retransmission of an admitted INVITE is admitted
//! again (a transaction already holds it: shedding it would lose an accepted call), so the
//! governor remembers admitted Call-IDs (as 64-bit hashes) for a transaction's lifetime
//! (32 s, Timer B), capped. Those not yet seen by the call driver ("pending") count as calls
//! in progress, so a burst cannot overshoot `max_calls` while the driver catches up.
//!
//! Sans-IO: time comes in as [`Mono`]; the driver feeds probes and the calls it holds.

use crate::id_map::IdMap;
use crate::time::Mono;
use std::collections::VecDeque;

/// How long an admitted INVITE's Call-ID is remembered: Timer B (64 × T1), the longest a
/// UAC retransmits an INVITE.
pub const REMEMBER_MS: u64 = 32_000;
/// At most this many admitted Call-IDs remembered (oldest forgotten first): ~1.5 MiB.
pub const REMEMBER_CAP: usize = 65_536;
/// The driver sends a probe this often.
pub const PROBE_EVERY_MS: u64 = 100;
/// Weight of a new delay sample, per probe.
const ALPHA: f64 = 0.3;

/// The limits, from `[overload]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls in progress at which new trunk calls are shed (0: no limit).
    pub max_calls: u32,
    /// New trunk calls admitted per second, with a one-second burst (0: no limit).
    pub max_call_rate: u32,
    /// Smoothed input-queue delay above which new trunk calls are shed, ms (0: off).
    pub max_delay_ms: u32,
    /// The Retry-After of the 503, seconds.
    pub retry_after_s: u32,
    /// Calls in progress up to which a call that would be shed still overflows to its
    /// entry's `on_overload` step.
    pub overflow_max_calls: u32,
}

/// Why a call was shed (the `reason` label of `sas_overload_shed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShedReason {
    /// Calls in progress at `max_calls`.
    Calls,
    /// Arrivals above `max_call_rate`.
    Rate,
    /// The driver's input queue is behind (`max_delay_ms`).
    Delay,
}

impl ShedReason {
    /// Every reason, for metrics that show each at 0.
    pub const ALL: [ShedReason; 3] = [ShedReason::Calls, ShedReason::Rate, ShedReason::Delay];

    /// Its metric label and log word.
    pub fn label(self) -> &'static str {
        match self {
            ShedReason::Calls => "calls",
            ShedReason::Rate => "rate",
            ShedReason::Delay => "delay",
        }
    }
}

/// What becomes of a new trunk INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to the stack and admission.
    Admit,
    /// Would be shed for `reason`; admitted to go to its entry's `on_overload` step.
    Overflow(ShedReason),
    /// Refuse it (503) with this Retry-After.
    Shed {
        /// Why.
        reason: ShedReason,
        /// Seconds.
        retry_after_s: u32,
    },
}

/// The state `/healthz`, OPTIONS and the `sas_overload_state` gauge report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Admitting.
    Normal,
    /// Shedding new trunk calls, for this reason (the last call shed, within a second).
    Shedding(ShedReason),
}

/// An admitted INVITE, remembered.
#[derive(Debug, Clone, Copy)]
struct Admitted {
    /// Not yet taken by the call driver (nor refused).
    pending: bool,
    /// Sent to its entry's `on_overload` step.
    overflow: bool,
}

/// The overload governor: one per router, shared by every transport's reader.
#[derive(Debug)]
pub struct Governor {
    limits: Limits,
    /// Tokens left, in thousandths (a token per `max_call_rate`-th of a second).
    milli_tokens: u64,
    /// The same for calls overflowed.
    overflow_milli_tokens: u64,
    refilled_at: Mono,
    delay_ms: f64,
    delay_shedding: bool,
    /// When the probe in the driver's queue was sent.
    probe_out: Option<Mono>,
    /// The last probe tick: a tick overdue by more than the delay limit means the runtime
    /// itself is behind (a frozen process, a stalled disk), before any probe can say so.
    ticked_at: Mono,
    /// Calls the driver holds (its last word).
    driver_calls: u32,
    /// Admitted Call-IDs.
    admitted: IdMap<u64, Admitted>,
    order: VecDeque<(Mono, u64)>,
    pending: u32,
    last_shed: Option<(Mono, ShedReason)>,
}

impl Governor {
    /// A governor with full tokens at `now`.
    pub fn new(limits: Limits, now: Mono) -> Self {
        Governor {
            limits,
            milli_tokens: u64::from(limits.max_call_rate) * 1000,
            overflow_milli_tokens: u64::from(limits.max_call_rate) * 1000,
            refilled_at: now,
            delay_ms: 0.0,
            delay_shedding: false,
            probe_out: None,
            ticked_at: now,
            driver_calls: 0,
            admitted: IdMap::default(),
            order: VecDeque::new(),
            pending: 0,
            last_shed: None,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Judges a new trunk INVITE whose Call-ID hashes to `call_id`; `can_overflow`: its
    /// entry has an `on_overload` step.
    pub fn judge(&mut self, now: Mono, call_id: u64, can_overflow: bool) -> Verdict {
        self.forget(now);
        if self.admitted.contains_key(&call_id) {
            // A retransmission: its transaction has it already (overflowed or not).
            return Verdict::Admit;
        }
        self.refill(now);
        let reason = if self.limits.max_calls > 0 && self.in_progress() >= self.limits.max_calls {
            Some(ShedReason::Calls)
        } else if self.delay_shedding || self.ticks_overdue(now) {
            Some(ShedReason::Delay)
        } else if self.limits.max_call_rate > 0 && self.milli_tokens < 1000 {
            Some(ShedReason::Rate)
        } else {
            None
        };
        let Some(reason) = reason else {
            if self.limits.max_call_rate > 0 {
                self.milli_tokens -= 1000;
            }
            self.remember(now, call_id, false);
            return Verdict::Admit;
        };
        self.last_shed = Some((now, reason));
        if can_overflow && self.may_overflow() {
            if self.limits.max_call_rate > 0 {
                self.overflow_milli_tokens -= 1000;
            }
            self.remember(now, call_id, true);
            return Verdict::Overflow(reason);
        }
        Verdict::Shed {
            reason,
            retry_after_s: self.limits.retry_after_s,
        }
    }

    /// Under the hard limits of overflowing.
    fn may_overflow(&self) -> bool {
        let l = &self.limits;
        let calls = l.max_calls == 0 || self.in_progress() < l.overflow_max_calls;
        let delay = l.max_delay_ms == 0 || self.delay_ms < 2.0 * f64::from(l.max_delay_ms);
        let rate = l.max_call_rate == 0 || self.overflow_milli_tokens >= 1000;
        calls && delay && rate
    }

    fn remember(&mut self, now: Mono, call_id: u64, overflow: bool) {
        if self.order.len() >= REMEMBER_CAP
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.drop_entry(oldest);
        }
        let entry = Admitted {
            pending: true,
            overflow,
        };
        self.admitted.insert(call_id, entry);
        self.order.push_back((now, call_id));
        self.pending += 1;
    }

    /// Whether the admitted INVITE `call_id` was sent to its `on_overload` step.
    pub fn overflowed(&self, call_id: u64) -> bool {
        self.admitted.get(&call_id).is_some_and(|a| a.overflow)
    }

    /// An admitted INVITE was taken by the call driver or refused: no longer pending.
    pub fn settled(&mut self, call_id: u64) {
        if let Some(entry) = self.admitted.get_mut(&call_id)
            && entry.pending
        {
            entry.pending = false;
            self.pending -= 1;
        }
    }

    /// The calls the driver holds now (admitted and not finished).
    pub fn driver_calls(&mut self, calls: u32) {
        self.driver_calls = calls;
    }

    /// Calls in progress: the driver's and those admitted on their way to it.
    pub fn in_progress(&self) -> u32 {
        self.driver_calls.saturating_add(self.pending)
    }

    /// Called every [`PROBE_EVERY_MS`], `late_ms` after the tick was due: a probe still in
    /// the queue counts as a delay of its age, a tick later than a period as its lateness.
    /// Returns whether to send a new probe (none is out).
    pub fn tick(&mut self, now: Mono, late_ms: u64) -> bool {
        self.forget(now);
        self.ticked_at = now;
        match self.probe_out {
            Some(sent) => {
                self.sample(now.saturating_sub(sent).max(late_ms));
                false
            }
            None => {
                if late_ms > PROBE_EVERY_MS {
                    self.sample(late_ms);
                }
                self.probe_out = Some(now);
                true
            }
        }
    }

    /// The probe sent at `sent` came out of the driver's queue at `now`.
    pub fn probe_returned(&mut self, now: Mono, sent: Mono) {
        if self.probe_out == Some(sent) {
            self.probe_out = None;
        }
        self.sample(now.saturating_sub(sent));
    }

    /// Whether the probe tick is overdue by more than the delay limit: calls read from the
    /// socket after a freeze are judged before the ticker has run again.
    fn ticks_overdue(&self, now: Mono) -> bool {
        let overdue = now
            .saturating_sub(self.ticked_at)
            .saturating_sub(PROBE_EVERY_MS);
        self.limits.max_delay_ms > 0 && overdue > u64::from(self.limits.max_delay_ms)
    }

    /// The smoothed input-queue delay, ms.
    pub fn delay_ms(&self) -> u32 {
        self.delay_ms.round() as u32
    }

    /// Shedding if a call was shed within the last second.
    pub fn state(&self, now: Mono) -> State {
        match self.last_shed {
            Some((at, reason)) if now.saturating_sub(at) < 1000 => State::Shedding(reason),
            _ if self.delay_shedding => State::Shedding(ShedReason::Delay),
            _ => State::Normal,
        }
    }

    fn sample(&mut self, delay_ms: u64) {
        self.delay_ms += ALPHA * (delay_ms as f64 - self.delay_ms);
        let max = f64::from(self.limits.max_delay_ms);
        if self.limits.max_delay_ms == 0 {
            self.delay_shedding = false;
        } else if self.delay_ms > max {
            self.delay_shedding = true;
        } else if self.delay_ms < max / 2.0 {
            self.delay_shedding = false;
        }
    }

    fn refill(&mut self, now: Mono) {
        let rate = u64::from(self.limits.max_call_rate);
        let elapsed = now.saturating_sub(self.refilled_at);
        // `rate` tokens per second = `rate` milli-tokens per millisecond.
        self.milli_tokens = (self.milli_tokens + elapsed * rate).min(rate * 1000);
        self.overflow_milli_tokens = (self.overflow_milli_tokens + elapsed * rate).min(rate * 1000);
        self.refilled_at = now;
    }

    fn forget(&mut self, now: Mono) {
        while let Some(&(at, id)) = self.order.front() {
            if now.saturating_sub(at) < REMEMBER_MS {
                break;
            }
            self.order.pop_front();
            self.drop_entry(id);
        }
    }

    fn drop_entry(&mut self, id: u64) {
        if self.admitted.remove(&id).is_some_and(|a| a.pending) {
            self.pending -= 1;
        }
    }
}

#[cfg(test)]
mod tests;
