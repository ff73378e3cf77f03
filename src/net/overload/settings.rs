//! `[overload]`: the limits past which new trunk calls are shed, with safe defaults.

use sas_core::overload::Limits;
use serde::Deserialize;

/// RTP ports one call may take: caller, seat and a second seat (accompanied transfer),
/// an RTP/RTCP pair each.
const PORTS_PER_CALL: u32 = 6;

/// `[overload]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverloadSettings {
    /// Calls in progress at which new trunk calls are shed (0: no limit). Default: what
    /// the RTP port range carries (`media` ports / 6), past which calls would fail anyway.
    pub max_calls: Option<u32>,
    /// New trunk calls admitted per second, with a one-second burst (0: no limit).
    pub max_call_rate: u32,
    /// The call driver's smoothed input-queue delay above which new trunk calls are shed,
    /// ms (0: off); shedding stops below half of it.
    pub max_queue_delay_ms: u32,
    /// The Retry-After of the 503, seconds.
    pub retry_after_s: u32,
    /// Calls in progress up to which a new call of an entry with an `on_overload` step
    /// (dial plans) still goes there rather than get a 503. Default: `max_calls` + 10 %.
    pub overflow_max_calls: Option<u32>,
}

impl Default for OverloadSettings {
    fn default() -> Self {
        Self {
            max_calls: None,
            // Half what this router sustains on 2 shared cores (~200 calls/s, hold 0,
            // recording on: README "Overload"); a department's epidemic peak is ~1 call/s.
            max_call_rate: 100,
            // Normally a few ms; INVITE→200 is this much later for every call when it is
            // reached, well before SIP timers (500 ms) fire.
            max_queue_delay_ms: 250,
            retry_after_s: 10,
            overflow_max_calls: None,
        }
    }
}

impl OverloadSettings {
    /// Values out of range: the key (dotted) and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.max_queue_delay_ms != 0 && self.max_queue_delay_ms < 50 {
            // Probes go every 100 ms: below this the signal is mostly scheduling noise.
            return Err((
                "overload.max_queue_delay_ms",
                "must be 0 (off) or at least 50",
            ));
        }
        if !(1..=3600).contains(&self.retry_after_s) {
            return Err(("overload.retry_after_s", "must be between 1 and 3600"));
        }
        Ok(())
    }

    /// The governor's limits, `max_calls` defaulting from the RTP ports `min..=max`.
    pub fn limits(&self, rtp_port_min: u16, rtp_port_max: u16) -> Limits {
        let ports = u32::from(rtp_port_max.saturating_sub(rtp_port_min)) + 1;
        let max_calls = self.max_calls.unwrap_or(ports / PORTS_PER_CALL);
        let headroom = (max_calls / 10).max(1);
        Limits {
            max_calls,
            max_call_rate: self.max_call_rate,
            max_delay_ms: self.max_queue_delay_ms,
            retry_after_s: self.retry_after_s,
            overflow_max_calls: (self.overflow_max_calls)
                .unwrap_or(max_calls.saturating_add(headroom)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_calls_defaults_to_what_the_rtp_ports_carry() {
        let shipped = OverloadSettings::default().limits(20000, 29999);
        assert_eq!(shipped.max_calls, 1666);
        assert_eq!(shipped.max_call_rate, 100);
        let set = OverloadSettings {
            max_calls: Some(3),
            ..OverloadSettings::default()
        };
        assert_eq!(set.limits(20000, 29999).max_calls, 3);
        assert_eq!(set.limits(20000, 29999).overflow_max_calls, 4);
        assert_eq!(shipped.overflow_max_calls, 1832);
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let mut s = OverloadSettings::default();
        assert_eq!(s.check(), Ok(()));
        s.max_queue_delay_ms = 10;
        assert_eq!(s.check().unwrap_err().0, "overload.max_queue_delay_ms");
        s.max_queue_delay_ms = 0;
        s.retry_after_s = 0;
        assert_eq!(s.check().unwrap_err().0, "overload.retry_after_s");
    }
}
