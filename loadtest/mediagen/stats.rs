//! What one endpoint saw of the stream sent to it: packets, sequence gaps, late and
//! duplicate packets, RFC 3550 interarrival jitter. Pure bookkeeping over (sequence,
//! timestamp, arrival) so it is tested without sockets.
//!
//! The relay rewrites sequence numbers and timestamps (one stable outbound stream per leg
//! whatever it relays), so the first packet of the measured stream sets the base and only
//! differences count.

/// G.711's RTP clock: samples per second.
const CLOCK_HZ: i64 = 8000;

/// Receive statistics of one endpoint.
#[derive(Debug, Default, Clone)]
pub struct RxStats {
    /// Packets received, duplicates included.
    pub received: u64,
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number had.
    pub late: u64,
    /// Times the sequence jumped forward by more than one.
    pub gaps: u64,
    /// Highest extended sequence number, and the first one (None before any packet).
    highest: Option<i64>,
    first: i64,
    /// Bit i set: highest - i was received (i < 64).
    recent: u64,
    /// Previous transit time in RTP units, and the jitter estimate in RTP units.
    transit: Option<i64>,
    jitter: f64,
    /// Largest jitter estimate seen (RTP units).
    jitter_max: f64,
}

impl RxStats {
    /// Records one packet with sequence `seq`, RTP timestamp `ts`, received at `arrival_ns`
    /// (any monotonic origin).
    pub fn on_packet(&mut self, seq: u16, ts: u32, arrival_ns: u64) {
        self.received += 1;
        match self.highest {
            None => {
                self.first = i64::from(seq);
                self.highest = Some(self.first);
                self.recent = 1;
            }
            Some(high) => {
                // The extended number closest to the highest (16-bit wrap).
                let delta = i64::from(seq.wrapping_sub(high as u16) as i16);
                let ext = high + delta;
                if delta > 0 {
                    if delta > 1 {
                        self.gaps += 1;
                    }
                    self.recent = if delta >= 64 {
                        1
                    } else {
                        (self.recent << delta) | 1
                    };
                    self.highest = Some(ext);
                } else {
                    let back = -delta;
                    if back < 64 && self.recent & (1 << back) != 0 {
                        self.duplicates += 1;
                        return;
                    }
                    if back < 64 {
                        self.recent |= 1 << back;
                    }
                    self.late += 1;
                }
            }
        }
        let arrival = (arrival_ns as i128 * i128::from(CLOCK_HZ) / 1_000_000_000) as i64;
        let transit = arrival - i64::from(ts);
        if let Some(prev) = self.transit {
            // Timestamps wrap at 2^32: the difference as i32 is the true one.
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            self.jitter += (f64::from(d) - self.jitter) / 16.0;
            self.jitter_max = self.jitter_max.max(self.jitter);
        }
        self.transit = Some(transit);
    }

    /// Distinct packets received.
    pub fn unique(&self) -> u64 {
        self.received - self.duplicates
    }

    /// Packets between the first and the highest that never arrived.

    #[cfg(test)]
    pub fn missing(&self) -> u64 {
        self.highest
            .map_or(0, |h| (h - self.first + 1).max(0) as u64)
            .saturating_sub(self.unique())
    }

    /// Last jitter estimate and largest one, in milliseconds.
    pub fn jitter_ms(&self) -> (f64, f64) {
        let ms = |units: f64| units * 1000.0 / CLOCK_HZ as f64;
        (ms(self.jitter), ms(self.jitter_max))
    }
}

/// How late the sender's sub-ticks started: every sample kept (500 a second, a few minutes
/// at most), percentiles exact.
#[derive(Debug, Default)]
pub struct Lateness {
    samples_us: Vec<u32>,
}

impl Lateness {
    pub fn record(&mut self, late: std::time::Duration) {
        self.samples_us
            .push(u32::try_from(late.as_micros()).unwrap_or(u32::MAX));
    }

    /// The `p`th percentile (nearest rank; zero without samples).
    pub fn percentile(&self, p: f64) -> std::time::Duration {
        let mut s = self.samples_us.clone();
        s.sort_unstable();
        if s.is_empty() {
            return std::time::Duration::ZERO;
        }
        let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
        let us = s[rank.clamp(1, s.len()) - 1];
        std::time::Duration::from_micros(u64::from(us))
    }

    pub fn samples(&self) -> usize {
        self.samples_us.len()
    }

    /// Samples at least `late`.
    pub fn at_least(&self, late: std::time::Duration) -> usize {
        let us = late.as_micros();
        self.samples_us
            .iter()
            .filter(|&&s| u128::from(s) >= us)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn feed(seqs: &[u16]) -> RxStats {
        let mut s = RxStats::default();
        for &seq in seqs {
            // Perfectly paced: no jitter.
            let n = u64::from(seq.wrapping_sub(seqs[0]));
            s.on_packet(seq, 160 * n as u32, 20 * MS * n);
        }
        s
    }

    #[test]
    fn in_order_stream_has_no_gap_and_no_jitter() {
        let s = feed(&[10, 11, 12, 13]);
        assert_eq!(
            (s.received, s.gaps, s.late, s.duplicates, s.missing()),
            (4, 0, 0, 0, 0)
        );
        assert_eq!(s.jitter_ms().1, 0.0);
    }

    #[test]
    fn gaps_late_and_duplicates_are_told_apart() {
        let s = feed(&[1, 2, 5, 3, 5, 6]);
        assert_eq!(s.gaps, 1, "2 -> 5");
        assert_eq!(s.late, 1, "3 after 5");
        assert_eq!(s.duplicates, 1, "5 twice");
        assert_eq!(s.missing(), 1, "4 never came");
    }

    #[test]
    fn sequence_wrap_is_not_a_gap() {
        let s = feed(&[65534, 65535, 0, 1]);
        assert_eq!((s.gaps, s.missing(), s.unique()), (0, 0, 4));
    }

    #[test]
    fn jitter_follows_rfc_3550() {
        let mut s = RxStats::default();
        s.on_packet(0, 0, 0);
        // 4 ms late: D = 32 units, J = 32 / 16 = 2 units = 0.25 ms.
        s.on_packet(1, 160, 24 * MS);
        assert!((s.jitter_ms().0 - 0.25).abs() < 1e-9);
    }

    #[test]
    fn lateness_percentiles_are_nearest_rank() {
        let mut l = Lateness::default();
        assert_eq!(l.percentile(99.0), std::time::Duration::ZERO);
        for us in (1..=100).rev() {
            l.record(std::time::Duration::from_micros(us));
        }
        let us = |p| l.percentile(p).as_micros();
        assert_eq!((us(50.0), us(99.0), us(100.0)), (50, 99, 100));
        assert_eq!(l.at_least(std::time::Duration::from_micros(91)), 10);
    }
}
