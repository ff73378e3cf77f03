//! RTP continuity towards one leg: whatever feeds the leg (a prompt, hold audio, a seat,
//! a régulateur), the stream it receives keeps one SSRC with continuous sequence numbers
//! and timestamps, and the marker bit flags each switch (RFC 3550 §5.1, RFC 3551 §4.1).
//!
//! Phones drop audio, or play it late, when the SSRC changes or the sequence jumps; a
//! B2BUA that switches sources must hide the switch. [`OutboundStream`] rewrites relayed
//! packets in place and builds packets for audio the router plays itself. Sans-IO: the
//! caller passes the sample clock position (`now_samples`, 8 kHz) with every packet.

/// Who is feeding the leg right now; a change is a switch.
pub type SourceId = u64;

/// Length of the fixed RTP header.
const HEADER: usize = 12;

/// The state of the stream sent to one leg.
#[derive(Debug, Clone)]
pub struct OutboundStream {
    ssrc: u32,
    next_seq: u16,
    /// Last timestamp sent, and the local sample clock when it was sent.
    last: Option<(u32, u64)>,
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
    /// the last timestamp plus the samples elapsed since it was sent (at least one frame).
    fn continuing_timestamp(&self, now_samples: u64) -> u32 {
        match self.last {
            Some((ts, at)) => {
                let elapsed = now_samples.saturating_sub(at).max(1);
                ts.wrapping_add(elapsed as u32)
            }
            None => now_samples as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

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
            let mut p = rtp(40_000 + i, 9_000_000 + 160 * i as u32, 0x5eed);
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
        let mut a = rtp(10, 100, 1);
        out.relay(&mut a, 9, 0);
        let mut b = rtp(12, 420, 1);
        out.relay(&mut b, 9, 320);
        let mut late = rtp(11, 260, 1);
        out.relay(&mut late, 9, 330);
        assert_eq!(fields(&late).1, 1, "a late packet keeps its number");
        let mut c = rtp(5000, 77, 2); // the phone restarted its stream
        out.relay(&mut c, 9, 480);
        let (marker, seq, ts, _) = fields(&c);
        assert!(marker);
        assert_eq!(seq, 3);
        assert_eq!(ts, fields(&b).2 + 160);
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
