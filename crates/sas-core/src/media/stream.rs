//! RTP continuity towards one leg: whatever feeds the leg (a prompt, hold audio, a seat,
//! a régulateur), the stream it receives keeps one SSRC with continuous sequence numbers
//! and timestamps, and the marker bit flags each switch (RFC 3550 §5.1, RFC 3551 §4.1).
//!
//! Phones drop audio, or play it late, when the SSRC changes or the sequence jumps; a
//! B2BUA that switches sources must hide the switch. [`OutboundStream`] rewrites relayed
//! packets in place and builds packets for audio the router plays itself. Sans-IO: the
//! caller passes the sample clock position (`now_samples`, 8 kHz) with every packet.
//!
//! Across a switch the timestamp advances by whole packets (the time elapsed since the
//! last packet, rounded to the nearest packet, at least one): the first packet of the new
//! source starts where the previous one ended or later, never inside it (an overlap the
//! phone's jitter buffer would cut or play twice).

/// Who is feeding the leg right now; a change is a switch.
pub type SourceId = u64;

/// Length of the fixed RTP header.
const HEADER: usize = 12;

/// Samples per packet until the stream shows its own: 20 ms at 8 kHz.
const DEFAULT_PACKET_SAMPLES: u32 = 160;

/// Longest packet spacing taken as a packet's length (240 ms); a longer step is a gap.
const MAX_PACKET_SAMPLES: u32 = 1_920;

/// The state of the stream sent to one leg.
#[derive(Debug, Clone)]
pub struct OutboundStream {
    ssrc: u32,
    next_seq: u16,
    /// Last timestamp sent, and the local sample clock when it was sent.
    last: Option<(u32, u64)>,
    /// Samples one packet covers (the spacing of the last packets sent).
    packet_samples: u32,
    /// Current source, and the offsets mapping its numbering onto ours.
    source: Option<Source>,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    id: SourceId,
    ts_offset: u32,
    seq_offset: u16,
    ssrc_in: u32,
}

impl OutboundStream {
    /// A stream with our SSRC and a random-looking starting sequence number.
    pub fn new(ssrc: u32, first_seq: u16) -> Self {
        Self {
            ssrc,
            next_seq: first_seq,
            last: None,
            packet_samples: DEFAULT_PACKET_SAMPLES,
            source: None,
        }
    }

    /// Rewrites a relayed RTP packet in place: our SSRC, sequence and timestamp continuing
    /// from what the leg last received, marker set on the first packet after a switch (and
    /// when the source's own SSRC changes). Returns false (leave it) for a non-RTP packet.
    pub fn relay(&mut self, packet: &mut [u8], source: SourceId, now_samples: u64) -> bool {
        if packet.len() < HEADER || packet[0] >> 6 != 2 {
            return false;
        }
        let seq_in = u16::from_be_bytes([packet[2], packet[3]]);
        let ts_in = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let ssrc_in = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let switched = !matches!(self.source, Some(s) if s.id == source && s.ssrc_in == ssrc_in);
        if switched {
            let ts_out = self.continuing_timestamp(now_samples);
            self.source = Some(Source {
                id: source,
                ts_offset: ts_out.wrapping_sub(ts_in),
                seq_offset: self.next_seq.wrapping_sub(seq_in),
                ssrc_in,
            });
        }
        let s = self.source.expect("set above");
        let seq_out = seq_in.wrapping_add(s.seq_offset);
        let ts_out = ts_in.wrapping_add(s.ts_offset);
        // Only move forward: a late packet of the source keeps its (earlier) number.
        if seq_out.wrapping_sub(self.next_seq) < 0x8000 {
            // The next packet in sequence shows how long a packet is (DTMF events, which
            // keep one timestamp, and gaps do not).
            if !switched && seq_out == self.next_seq {
                self.learn_packet_samples(ts_out);
            }
            self.next_seq = seq_out.wrapping_add(1);
            self.last = Some((ts_out, now_samples));
        }
        if switched {
            packet[1] |= 0x80;
        }
        packet[2..4].copy_from_slice(&seq_out.to_be_bytes());
        packet[4..8].copy_from_slice(&ts_out.to_be_bytes());
        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        true
    }

    /// Our SSRC towards the leg.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// How packets of `source` are renumbered while it stays current (its SSRC): the SSRC
    /// they must carry, and the sequence and timestamp offsets. `None` until a packet of
    /// `source` has been relayed (or once another source took over).
    pub fn mapping(&self, source: SourceId) -> Option<(u32, u16, u32)> {
        let s = self.source.filter(|s| s.id == source)?;
        Some((s.ssrc_in, s.seq_offset, s.ts_offset))
    }

    /// Packets of the current source were renumbered and sent by someone else (the kernel
    /// path), the furthest with `last_seq` and `last_ts`, at `now_samples`: the stream
    /// continues after them. Never moves the stream back.
    pub fn sent_elsewhere(&mut self, last_seq: u16, last_ts: u32, now_samples: u64) {
        let next = last_seq.wrapping_add(1);
        if next.wrapping_sub(self.next_seq) < 0x8000 {
            self.next_seq = next;
            self.last = Some((last_ts, now_samples));
        }
    }

    /// Builds a packet for audio the router plays (a G.711 prompt frame: one byte per
    /// sample, so the payload length advances the timestamp of the next frame).
    pub fn play(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        source: SourceId,
        now_samples: u64,
    ) -> Vec<u8> {
        let switched = !matches!(self.source, Some(s) if s.id == source);
        let ts = match (switched, self.last) {
            (false, Some((ts, _))) => ts.wrapping_add(payload.len() as u32),
            _ => self.continuing_timestamp(now_samples),
        };
        if switched {
            self.source = Some(Source {
                id: source,
                ts_offset: 0,
                seq_offset: 0,
                ssrc_in: self.ssrc,
            });
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        if let Ok(samples @ 1..) = u32::try_from(payload.len()) {
            self.packet_samples = samples.min(MAX_PACKET_SAMPLES);
        }
        self.last = Some((ts, now_samples));
        let mut packet = Vec::with_capacity(HEADER + payload.len());
        packet.push(0x80);
        packet.push((payload_type & 0x7f) | if switched { 0x80 } else { 0 });
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ts.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    /// The timestamp the next packet must carry so that the leg sees time pass as it did:
    /// the last timestamp plus the time elapsed since it was sent, in whole packets (at
    /// least one, so the new packet never overlaps the last).
    fn continuing_timestamp(&self, now_samples: u64) -> u32 {
        match self.last {
            Some((ts, at)) => {
                let packet = u64::from(self.packet_samples);
                let elapsed = now_samples.saturating_sub(at);
                let packets = ((elapsed + packet / 2) / packet).max(1);
                ts.wrapping_add((packets * packet) as u32)
            }
            None => now_samples as u32,
        }
    }

    /// `ts` follows the last packet in sequence: their spacing is one packet's length.
    fn learn_packet_samples(&mut self, ts: u32) {
        if let Some((last, _)) = self.last {
            let step = ts.wrapping_sub(last);
            if (1..=MAX_PACKET_SAMPLES).contains(&step) {
                self.packet_samples = step;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::testutil::pcma_silence;

    fn fields(p: &[u8]) -> (bool, u16, u32, u32) {
        (
            p[1] & 0x80 != 0,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    #[test]
    fn prompt_then_seat_then_hold_is_one_continuous_stream() {
        let mut out = OutboundStream::new(0xabcd, 1000);
        let mut clock = 0u64;
        let mut sent = Vec::new();
        // Greeting: 5 frames played by the router.
        for _ in 0..5 {
            sent.push(out.play(8, &[0xd5; 160], 1, clock));
            clock += 160;
        }
        // The seat answers: its own SSRC, sequence and timestamps, far from ours.
        for i in 0..5u16 {
            let mut p = pcma_silence(40_000 + i, 9_000_000 + 160 * i as u32, 0x5eed);
            assert!(out.relay(&mut p, 2, clock));
            sent.push(p);
            clock += 160;
        }
        // Back on hold after a 1 s gap (the transfer): time passed must show.
        clock += 8000;
        sent.push(out.play(8, &[0xd5; 160], 3, clock));
        let f: Vec<_> = sent.iter().map(|p| fields(p)).collect();
        for (i, w) in f.windows(2).enumerate() {
            assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence continuous at {i}");
            assert_eq!(w[1].3, 0xabcd, "one SSRC");
        }
        assert!(f[0].0 && f[5].0 && f[10].0, "marker on each switch");
        assert!(!f[1].0 && !f[6].0, "no marker inside a source");
        assert_eq!(f[5].2, f[4].2 + 160, "seat audio follows the greeting");
        assert_eq!(f[6].2, f[5].2 + 160, "the seat's own spacing is kept");
        assert_eq!(
            f[10].2,
            f[9].2 + 160 + 8000,
            "the gap shows in the timestamps"
        );
    }

    #[test]
    fn a_new_ssrc_from_the_same_source_is_a_switch_and_late_packets_keep_their_place() {
        let mut out = OutboundStream::new(7, 0);
        let mut a = pcma_silence(10, 100, 1);
        out.relay(&mut a, 9, 0);
        let mut b = pcma_silence(12, 420, 1);
        out.relay(&mut b, 9, 320);
        let mut late = pcma_silence(11, 260, 1);
        out.relay(&mut late, 9, 330);
        assert_eq!(fields(&late).1, 1, "a late packet keeps its number");
        let mut c = pcma_silence(5000, 77, 2); // the phone restarted its stream
        out.relay(&mut c, 9, 480);
        let (marker, seq, ts, _) = fields(&c);
        assert!(marker);
        assert_eq!(seq, 3);
        assert_eq!(ts, fields(&b).2 + 160);
    }

    /// Switches happen at any moment between two frame ticks (the seat's first packet
    /// arrives 4 ms after a hold frame, a greeting is started 28 ms after a seat packet):
    /// the stream still advances by whole packets, never into the previous one.
    #[test]
    fn a_switch_advances_by_whole_packets() {
        let mut out = OutboundStream::new(1, 0);
        let mut clock = 0u64;
        let mut last_ts = None;
        let mut steps = Vec::new();
        let mut step = |p: &[u8], last: &mut Option<u32>| {
            let ts = fields(p).2;
            if let Some(l) = *last {
                steps.push(ts.wrapping_sub(l));
            }
            *last = Some(ts);
        };
        for round in 0..40u64 {
            // Hold frames on the 20 ms tick.
            for _ in 0..3 {
                step(&out.play(8, &[0xd5; 160], 10 + round, clock), &mut last_ts);
                clock += 160;
            }
            // A seat whose packets arrive off the tick by 4..36 ms (32..288 samples).
            clock += 32 + 7 * round % 257;
            for i in 0..3u16 {
                let mut p = pcma_silence(100 * round as u16 + i, 50_000 + 160 * u32::from(i), 9);
                assert!(out.relay(&mut p, 1000 + round, clock));
                step(&p, &mut last_ts);
                clock += 160;
            }
            clock += 8 * round % 150;
        }
        assert!(steps.iter().all(|s| *s >= 160 && s % 160 == 0), "{steps:?}");
    }

    #[test]
    fn a_30_ms_stream_keeps_its_own_packet_length_across_switches() {
        let mut out = OutboundStream::new(1, 0);
        let mut a = pcma_silence(1, 0, 5);
        out.relay(&mut a, 1, 0);
        let mut b = pcma_silence(2, 240, 5);
        out.relay(&mut b, 1, 240);
        let mut c = pcma_silence(77, 9_999, 6);
        out.relay(&mut c, 2, 240 + 250);
        assert_eq!(fields(&c).2, fields(&b).2 + 240, "one 30 ms packet on");
    }

    #[test]
    fn wraparound_and_garbage() {
        let mut out = OutboundStream::new(1, u16::MAX);
        let p1 = out.play(0, &[0xff; 160], 1, u64::from(u32::MAX) - 100);
        let p2 = out.play(0, &[0xff; 160], 1, u64::from(u32::MAX) + 60);
        assert_eq!(fields(&p1).1, u16::MAX);
        assert_eq!(fields(&p2).1, 0);
        assert_eq!(fields(&p2).2, fields(&p1).2.wrapping_add(160));
        assert!(!out.relay(&mut [0x00; 20], 2, 0), "not RTP v2");
        assert!(!out.relay(&mut [0x80; 5], 2, 0), "too short");
    }
}
