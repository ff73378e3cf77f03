//! RTCP termination for one leg (RFC 3550 §6, Appendix A), sans-IO.
//!
//! The router rewrites SSRC, sequence and timestamps towards each leg, so the peer's RTCP
//! cannot be relayed: each leg gets reports about the stream *we* send it, and tells us
//! what it receives. [`ReceiverStats`] measures the stream received from a leg (A.1
//! sequence validation, A.3 loss, A.8 jitter); [`build_compound`] and [`parse_compound`]
//! are the wire format (§6.4 SR/RR, §6.5 SDES CNAME, §6.6 BYE); [`is_rtcp`] splits an
//! rtcp-mux port (RFC 5761 §4); [`RtcpSession`] ties them into the per-leg state machine
//! whose [`LegQuality`] goes into the call record. Time is passed in, never read.
//!
//! The audio clock is 8 kHz (G.711 and telephone-event), so jitter in samples / 8 is ms.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[cfg(test)]
mod tests;

/// RTP clock ticks per millisecond (8 kHz).
const SAMPLES_PER_MS: u64 = 8;

/// A.1: packets in sequence needed before a new source is believed.
const MIN_SEQUENTIAL: u8 = 2;
/// A.1: largest forward jump still taken as loss rather than a restarted sequence.
const MAX_DROPOUT: u32 = 3000;
/// A.1: largest backward step still taken as a late packet.
const MAX_MISORDER: u32 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// §6.2 recommends 5 s as the minimum interval; at one stream per leg the bandwidth
/// rule never asks for more.
const REPORT_INTERVAL_MS: f64 = 5_000.0;

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;
const SDES_CNAME: u8 = 1;
/// RC and SC are 5-bit fields.
const MAX_COUNT: usize = 31;
const REPORT_BLOCK_LEN: usize = 24;

/// Largest and smallest cumulative loss the 24-bit signed field holds.
const LOST_MAX: i64 = 0x7F_FFFF;
const LOST_MIN: i64 = -0x80_0000;

/// Why a datagram is not acceptable RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("empty datagram")]
    Empty,
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("packet type {0} is outside the RTCP range 192-223")]
    NotRtcp(u8),
    #[error("packet length runs past the end of the datagram")]
    Truncated,
    #[error("padding bit set on a packet that is not the last of the compound")]
    PaddingNotLast,
    #[error("padding count is zero or larger than the packet")]
    BadPadding,
    #[error("packet type {packet_type}: body does not match its counts")]
    Malformed { packet_type: u8 },
}

/// Sender information of an SR (§6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wallclock when the report was sent, NTP 32.32 fixed point.
    pub ntp: u64,
    /// The RTP timestamp of that same instant.
    pub rtp_ts: u32,
    /// RTP packets sent since the stream started (wraps).
    pub packets: u32,
    /// RTP payload octets sent, headers and padding excluded (wraps).
    pub octets: u32,
}

/// One reception report block (§6.4.1): what a receiver sees of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Lost / expected since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Lost since the start; 24-bit signed on the wire (duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number: cycles in the high 16 bits.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the source's last SR, 0 if none.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn write(&self, out: &mut Vec<u8>) {
        let lost = i64::from(self.cumulative_lost).clamp(LOST_MIN, LOST_MAX) as u32 & 0xFF_FFFF;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        for word in [self.highest_seq, self.jitter, self.lsr, self.dlsr] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    fn read(b: &[u8]) -> Option<Self> {
        let second = word(b, 4)?;
        Some(Self {
            ssrc: word(b, 0)?,
            fraction_lost: (second >> 24) as u8,
            // Sign-extend the low 24 bits.
            cumulative_lost: ((second << 8) as i32) >> 8,
            highest_seq: word(b, 8)?,
            jitter: word(b, 12)?,
            lsr: word(b, 16)?,
            dlsr: word(b, 20)?,
        })
    }
}

/// What [`ReceiverStats::summary`] reports for the call record.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReceivedSummary {
    /// Distinct packets received (duplicates once), over every source the leg used.
    pub packets_received: u64,
    /// Packets never received, over every source; never negative.
    pub packets_lost: u64,
    /// Interarrival jitter of the current source, ms.
    pub jitter_ms: f64,
    /// Extended highest sequence number of the current source, once it is validated.
    pub highest_seq: Option<u32>,
}

/// Statistics of the RTP stream received from one leg (RFC 3550 A.1, A.3, A.8).
///
/// One source at a time: a new SSRC (the trunk switched media servers, the phone
/// restarted) starts fresh statistics, but the totals of the summary carry over.
#[derive(Debug, Clone, Default)]
pub struct ReceiverStats {
    source: Option<Source>,
    /// Received and lost of the sources before the current one.
    retired_received: u64,
    retired_lost: u64,
}

impl ReceiverStats {
    /// Records one RTP packet; `arrival` is a local monotonic clock in 8 kHz samples.
    pub fn on_rtp(&mut self, ssrc: u32, seq: u16, rtp_ts: u32, arrival: u64) {
        if self.source.as_ref().is_some_and(|s| s.ssrc != ssrc)
            && let Some(old) = self.source.take()
        {
            self.retired_received += old.received_total;
            self.retired_lost += old.lost_total();
        }
        let source = self.source.get_or_insert_with(|| Source::new(ssrc, seq));
        if source.update_seq(seq) {
            source.update_jitter(rtp_ts, arrival);
        }
    }

    /// The SSRC of the current source, validated or not.
    pub fn ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// The report block about the current source, `None` until it is validated; starts a
    /// new interval for the fraction lost (A.3).
    pub fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock> {
        let s = self.source.as_mut().filter(|s| s.probation == 0)?;
        let expected = s.expected();
        let expected_interval = expected.wrapping_sub(s.expected_prior);
        let received_interval = s.received.wrapping_sub(s.received_prior);
        s.expected_prior = expected;
        s.received_prior = s.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // lost_interval <= expected_interval, so this is at most 256: clamp the edge.
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        Some(ReportBlock {
            ssrc: s.ssrc,
            fraction_lost,
            cumulative_lost: s.lost().clamp(LOST_MIN, LOST_MAX) as i32,
            highest_seq: s.extended_max(),
            jitter: s.jitter(),
            lsr,
            dlsr,
        })
    }

    /// Totals for the call record.
    pub fn summary(&self) -> ReceivedSummary {
        let current = self.source.as_ref();
        ReceivedSummary {
            packets_received: self.retired_received + current.map_or(0, |s| s.received_total),
            packets_lost: self.retired_lost + current.map_or(0, Source::lost_total),
            jitter_ms: current.map_or(0.0, |s| f64::from(s.jitter()) / 8.0),
            highest_seq: current
                .filter(|s| s.probation == 0)
                .map(Source::extended_max),
        }
    }
}

/// Per-source state of RFC 3550 A.1 (names kept), plus duplicate detection.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    /// Sequence wraps, shifted left 16 bits.
    cycles: u32,
    /// Extended number of the first packet of the current sequence.
    base_seq: u32,
    /// After a big jump, the number that would confirm the source restarted.
    bad_seq: Option<u16>,
    probation: u8,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Bit n: `max_seq - n` arrived. A.1 counts a duplicate as one more received packet,
    /// which hides a loss; remembering the last 128 numbers (more than MAX_MISORDER)
    /// lets late packets count and duplicates not.
    seen: u128,
    /// Packets counted since the source appeared, across sequence restarts.
    received_total: u64,
    /// Loss of sequences that ended in a restart.
    lost_before_restart: u64,
    /// A.8: arrival minus RTP timestamp of the previous packet, `None` after a restart.
    transit: Option<u32>,
    /// A.8: jitter × 16, so the 1/16 gain keeps its precision in integers; 64 bits so
    /// that garbage timestamps (|D| up to 2^31) cannot overflow it.
    jitter_q4: u64,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Self {
        Self {
            ssrc,
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            seen: 0,
            received_total: 0,
            lost_before_restart: 0,
            transit: None,
            jitter_q4: 0,
        }
    }

    /// A.1 `update_seq`: true if the packet counts (not a duplicate, not rejected).
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        if self.probation > 0 {
            self.max_seq = seq;
            if udelta != 1 {
                self.probation = MIN_SEQUENTIAL - 1;
                return false;
            }
            self.probation -= 1;
            if self.probation > 0 {
                return false;
            }
            self.init_seq(seq, MIN_SEQUENTIAL.into());
            return true;
        }
        if udelta == 0 {
            return false;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            self.seen = self.seen.checked_shl(udelta).unwrap_or(0) | 1;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            // A very large jump: believe it only if the next packet follows it.
            if self.bad_seq != Some(seq) {
                self.bad_seq = Some(seq.wrapping_add(1));
                return false;
            }
            self.lost_before_restart += self.lost().max(0) as u64;
            self.init_seq(seq, 2);
            self.transit = None;
            return true;
        } else {
            let bit = 1u128 << (RTP_SEQ_MOD - udelta);
            if self.seen & bit != 0 {
                return false;
            }
            self.seen |= bit;
        }
        self.received = self.received.wrapping_add(1);
        self.received_total += 1;
        true
    }

    /// A.1 `init_seq`, except that the `confirmed` in-sequence packets that validated the
    /// sequence count as received (A.1 drops all but the last).
    fn init_seq(&mut self, seq: u16, confirmed: u16) {
        self.cycles = 0;
        self.max_seq = seq;
        self.base_seq = u32::from(seq).wrapping_sub(u32::from(confirmed) - 1);
        self.bad_seq = None;
        self.received = confirmed.into();
        self.received_total += u64::from(confirmed);
        self.expected_prior = 0;
        self.received_prior = 0;
        self.seen = (1u128 << confirmed) - 1;
    }

    /// A.8 with the integer form: J += |D| - J/16, J kept × 16.
    fn update_jitter(&mut self, rtp_ts: u32, arrival: u64) {
        let transit = (arrival as u32).wrapping_sub(rtp_ts);
        if let Some(previous) = self.transit {
            let d = transit.wrapping_sub(previous) as i32;
            self.jitter_q4 =
                self.jitter_q4 + u64::from(d.unsigned_abs()) - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Jitter in RTP timestamp units.
    fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(self.max_seq.into())
    }

    fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// A.3 cumulative loss of the current sequence; negative if packets from before its
    /// first one arrived late.
    fn lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    fn lost_total(&self) -> u64 {
        let current = if self.probation == 0 {
            self.lost().max(0) as u64
        } else {
            0
        };
        self.lost_before_restart + current
    }
}

/// NTP 32.32 time of a Unix time in ms. Past 2036 the seconds wrap into the next NTP
/// era, as they do on the wire.
pub fn ntp_from_unix_ms(ms: u64) -> u64 {
    let secs = (ms / 1_000).wrapping_add(NTP_UNIX_OFFSET);
    let frac = ((ms % 1_000) << 32) / 1_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP time (16.16 s): the LSR field and RTT arithmetic.
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// RFC 5761 §4: on an rtcp-mux port, RTCP is what has 192-223 in the second byte
/// (RTP payload types 64-95 with or without marker are never negotiated for that reason).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram, [first, second, ..] if first >> 6 == 2 && (192..=223).contains(second))
}

/// A compound packet (§6.1): an SR if `sender` is given, else an RR, carrying `blocks`,
/// then an SDES with our CNAME (truncated to the 255 bytes an item holds).
pub fn build_compound(
    our_ssrc: u32,
    sender: Option<SenderInfo>,
    blocks: &[ReportBlock],
    cname: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + REPORT_BLOCK_LEN * blocks.len());
    let mut groups = blocks.chunks(MAX_COUNT);
    let first = groups.next().unwrap_or_default();
    let start = out.len();
    header(&mut out, first.len(), sender.map_or(PT_RR, |_| PT_SR));
    out.extend_from_slice(&our_ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        for word in [s.rtp_ts, s.packets, s.octets] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }
    first.iter().for_each(|b| b.write(&mut out));
    set_length(&mut out, start);
    // §6.4.2: more than 31 sources continue in further RRs.
    for group in groups {
        let start = out.len();
        header(&mut out, group.len(), PT_RR);
        out.extend_from_slice(&our_ssrc.to_be_bytes());
        group.iter().for_each(|b| b.write(&mut out));
        set_length(&mut out, start);
    }
    let start = out.len();
    header(&mut out, 1, PT_SDES);
    out.extend_from_slice(&our_ssrc.to_be_bytes());
    let cname = truncate_utf8(cname, u8::MAX.into());
    out.push(SDES_CNAME);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname.as_bytes());
    // The item list ends with a null octet, then nulls up to a 32-bit boundary.
    out.push(0);
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    set_length(&mut out, start);
    out
}

fn header(out: &mut Vec<u8>, count: usize, packet_type: u8) {
    out.extend_from_slice(&[0x80 | count as u8, packet_type, 0, 0]);
}

/// Fills the length field of the packet starting at `start`: 32-bit words minus one.
fn set_length(out: &mut [u8], start: usize) {
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum RtcpPacket {
    SenderReport {
        ssrc: u32,
        sender: SenderInfo,
        blocks: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: Vec<ReportBlock>,
    },
    /// Each chunk's SSRC/CSRC and its CNAME, if it has one (other items are skipped).
    SourceDescription {
        chunks: Vec<(u32, Option<String>)>,
    },
    Goodbye {
        ssrcs: Vec<u32>,
        reason: Option<String>,
    },
    /// APP, feedback, XR or a type we do not know: checked for length, then skipped.
    Other {
        packet_type: u8,
    },
}

/// Parses a compound RTCP datagram (A.2 checks: version 2, lengths adding up to the
/// datagram, padding only on the last packet). Not requiring an SR/RR first keeps
/// reduced-size RTCP (RFC 5506) from WebRTC peers readable.
pub fn parse_compound(datagram: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if datagram.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some(&[first, packet_type, len_hi, len_lo]) = rest.get(..4) else {
            return Err(RtcpError::Truncated);
        };
        if first >> 6 != 2 {
            return Err(RtcpError::BadVersion(first >> 6));
        }
        if !(192..=223).contains(&packet_type) {
            return Err(RtcpError::NotRtcp(packet_type));
        }
        let len = (usize::from(u16::from_be_bytes([len_hi, len_lo])) + 1) * 4;
        let packet = rest.get(..len).ok_or(RtcpError::Truncated)?;
        rest = &rest[len..];
        let mut end = len;
        if first & 0x20 != 0 {
            if !rest.is_empty() {
                return Err(RtcpError::PaddingNotLast);
            }
            // The last octet counts the padding, itself included.
            let pad = usize::from(packet[len - 1]);
            if pad == 0 || pad > len - 4 {
                return Err(RtcpError::BadPadding);
            }
            end -= pad;
        }
        let count = usize::from(first & 0x1F);
        packets.push(
            parse_packet(packet_type, count, &packet[4..end])
                .ok_or(RtcpError::Malformed { packet_type })?,
        );
    }
    Ok(packets)
}

/// One packet's body (after the 4-byte header, before padding); `None` if it does not
/// hold what its count announces.
fn parse_packet(packet_type: u8, count: usize, body: &[u8]) -> Option<RtcpPacket> {
    Some(match packet_type {
        PT_SR => RtcpPacket::SenderReport {
            ssrc: word(body, 0)?,
            sender: SenderInfo {
                ntp: (u64::from(word(body, 4)?) << 32) | u64::from(word(body, 8)?),
                rtp_ts: word(body, 12)?,
                packets: word(body, 16)?,
                octets: word(body, 20)?,
            },
            blocks: report_blocks(body.get(24..)?, count)?,
        },
        PT_RR => RtcpPacket::ReceiverReport {
            ssrc: word(body, 0)?,
            blocks: report_blocks(body.get(4..)?, count)?,
        },
        PT_SDES => RtcpPacket::SourceDescription {
            chunks: sdes_chunks(body, count)?,
        },
        PT_BYE => {
            let ssrcs = (0..count)
                .map(|i| word(body, 4 * i))
                .collect::<Option<Vec<_>>>()?;
            let reason = match body.get(4 * count..)? {
                [] => None,
                [len, text @ ..] => {
                    let text = text.get(..usize::from(*len))?;
                    (!text.is_empty()).then(|| String::from_utf8_lossy(text).into_owned())
                }
            };
            RtcpPacket::Goodbye { ssrcs, reason }
        }
        packet_type => RtcpPacket::Other { packet_type },
    })
}

/// `count` report blocks at the start of `b`; what follows is a profile extension (§6.4.1)
/// and is ignored.
fn report_blocks(b: &[u8], count: usize) -> Option<Vec<ReportBlock>> {
    b.get(..REPORT_BLOCK_LEN * count)?
        .chunks_exact(REPORT_BLOCK_LEN)
        .map(ReportBlock::read)
        .collect()
}

fn sdes_chunks(body: &[u8], count: usize) -> Option<Vec<(u32, Option<String>)>> {
    let mut chunks = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let ssrc = word(body, at)?;
        at += 4;
        let mut cname = None;
        // The end of the body also ends the last list: some stacks omit the null item.
        while let Some(&item) = body.get(at) {
            if item == 0 {
                // Skip the null and the padding up to the next 32-bit boundary.
                at = (at + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(at + 1)?);
            let text = body.get(at + 2..at + 2 + len)?;
            if item == SDES_CNAME {
                cname = Some(String::from_utf8_lossy(text).into_owned());
            }
            at += 2 + len;
        }
        chunks.push((ssrc, cname));
    }
    Some(chunks)
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Reception quality of one leg, for the call record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    /// RTP packets we received from the leg.
    pub packets_received: u64,
    /// RTP packets from the leg that never reached us.
    pub packets_lost: u64,
    /// Interarrival jitter of what we receive, ms.
    pub jitter_ms: f64,
    /// Fraction (0..1) of our packets the peer lost, from its last report.
    pub remote_fraction_lost: Option<f64>,
    /// Jitter the peer measures on our stream, ms, from its last report.
    pub remote_jitter_ms: Option<f64>,
    /// Round-trip time from the peer's last report echoing one of our SRs.
    pub rtt_ms: Option<f64>,
    /// Compound RTCP packets we sent to the leg.
    pub reports_sent: u32,
    /// Valid compound RTCP packets the leg sent us.
    pub reports_received: u32,
}

/// The peer's last SR, echoed as LSR/DLSR in our next report block about it.
#[derive(Debug, Clone, Copy)]
struct PeerSr {
    ssrc: u32,
    lsr: u32,
    arrival_ms: u64,
}

/// RTCP of one leg: statistics of what the leg sends us, counts of what we send it,
/// reports in both directions, and when to send the next one.
///
/// Driven like the rest of the core: feed [`on_rtp_received`](Self::on_rtp_received),
/// [`on_rtp_sent`](Self::on_rtp_sent) and [`on_rtcp`](Self::on_rtcp); when the time of
/// [`poll_timeout`](Self::poll_timeout) is reached, send what [`report`](Self::report)
/// returns. Times in ms are Unix time (they become the SR's NTP timestamp).
#[derive(Debug, Clone)]
pub struct RtcpSession {
    our_ssrc: u32,
    cname: String,
    receiver: ReceiverStats,
    packets_sent: u32,
    octets_sent: u32,
    /// RTP timestamp and time of the last packet sent: the SR's timestamp is extrapolated
    /// from it (§6.4.1 wants the RTP time of the SR's instant, not of a packet).
    last_sent: Option<(u32, u64)>,
    sent_since_report: bool,
    sent_in_previous_interval: bool,
    peer_sr: Option<PeerSr>,
    remote_fraction_lost: Option<f64>,
    remote_jitter_ms: Option<f64>,
    rtt_ms: Option<f64>,
    reports_sent: u32,
    reports_received: u32,
    next_report_at: Option<u64>,
    /// Interval randomisation (§6.3.1). Seeded from our SSRC, itself random (§8.1), so
    /// legs do not report in lockstep and tests are deterministic.
    rng: StdRng,
}

impl RtcpSession {
    /// A session sending as `our_ssrc`, with `cname` in every report (§6.5.1).
    pub fn new(our_ssrc: u32, cname: String) -> Self {
        Self {
            our_ssrc,
            cname,
            receiver: ReceiverStats::default(),
            packets_sent: 0,
            octets_sent: 0,
            last_sent: None,
            sent_since_report: false,
            sent_in_previous_interval: false,
            peer_sr: None,
            remote_fraction_lost: None,
            remote_jitter_ms: None,
            rtt_ms: None,
            reports_sent: 0,
            reports_received: 0,
            next_report_at: None,
            rng: StdRng::seed_from_u64(our_ssrc.into()),
        }
    }

    /// An RTP packet from the leg, received at `at_ms`; `arrival_samples` is the same
    /// instant on a local monotonic 8 kHz clock. The first one arms the report timer (a
    /// leg that only talks to us still gets receiver reports).
    pub fn on_rtp_received(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        arrival_samples: u64,
        at_ms: u64,
    ) {
        self.receiver.on_rtp(ssrc, seq, ts, arrival_samples);
        self.arm(at_ms);
    }

    /// An RTP packet we sent to the leg (`payload_len` excludes the RTP header). The
    /// first one arms the report timer.
    pub fn on_rtp_sent(&mut self, rtp_ts: u32, payload_len: usize, at_ms: u64) {
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
        self.last_sent = Some((rtp_ts, at_ms));
        self.sent_since_report = true;
        self.arm(at_ms);
    }

    /// A datagram from the leg's RTCP port (or a muxed one [`is_rtcp`] picked). Records
    /// what the peer says about our stream and its SR for our next report.
    pub fn on_rtcp(&mut self, datagram: &[u8], now_ms: u64) -> Result<(), RtcpError> {
        let packets = parse_compound(datagram)?;
        self.reports_received = self.reports_received.wrapping_add(1);
        let arrival = ntp_middle32(ntp_from_unix_ms(now_ms));
        for packet in packets {
            let (ssrc, blocks, sender) = match packet {
                RtcpPacket::SenderReport {
                    ssrc,
                    sender,
                    blocks,
                } => (ssrc, blocks, Some(sender)),
                RtcpPacket::ReceiverReport { ssrc, blocks } => (ssrc, blocks, None),
                _ => continue,
            };
            if let Some(sender) = sender {
                self.peer_sr = Some(PeerSr {
                    ssrc,
                    lsr: ntp_middle32(sender.ntp),
                    arrival_ms: now_ms,
                });
            }
            for block in blocks.iter().filter(|b| b.ssrc == self.our_ssrc) {
                self.remote_fraction_lost = Some(f64::from(block.fraction_lost) / 256.0);
                self.remote_jitter_ms = Some(f64::from(block.jitter) / 8.0);
                // §6.4.1: RTT = A - LSR - DLSR, all in 1/65536 s of our own clock. A
                // negative result is a peer that got LSR or DLSR wrong.
                let rtt = arrival.wrapping_sub(block.lsr).wrapping_sub(block.dlsr) as i32;
                if block.lsr != 0 && rtt >= 0 {
                    self.rtt_ms = Some(f64::from(rtt) * 1_000.0 / 65_536.0);
                }
            }
        }
        self.arm(now_ms);
        Ok(())
    }

    /// When the next report is due (Unix ms); `None` until RTP or RTCP went either way.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_report_at
    }

    /// The compound packet to send now (SR if we sent RTP in the last two intervals, as
    /// §6.4 says, else RR; a report block once the leg's stream is validated; our CNAME),
    /// and the next report scheduled.
    pub fn report(&mut self, now_ms: u64) -> Vec<u8> {
        let (lsr, dlsr) = match self.peer_sr {
            Some(sr) if Some(sr.ssrc) == self.receiver.ssrc() => {
                let delay_ms = now_ms.saturating_sub(sr.arrival_ms);
                let dlsr = delay_ms.saturating_mul(65_536) / 1_000;
                (sr.lsr, u32::try_from(dlsr).unwrap_or(u32::MAX))
            }
            _ => (0, 0),
        };
        let block = self.receiver.report_block(lsr, dlsr);
        let we_sent = self.sent_since_report || self.sent_in_previous_interval;
        self.sent_in_previous_interval = self.sent_since_report;
        self.sent_since_report = false;
        let sender = self.last_sent.filter(|_| we_sent).map(|(ts, at)| {
            let elapsed = now_ms.saturating_sub(at).saturating_mul(SAMPLES_PER_MS);
            SenderInfo {
                ntp: ntp_from_unix_ms(now_ms),
                rtp_ts: ts.wrapping_add(elapsed as u32),
                packets: self.packets_sent,
                octets: self.octets_sent,
            }
        });
        self.reports_sent = self.reports_sent.wrapping_add(1);
        self.next_report_at = Some(now_ms.saturating_add(self.interval_ms(REPORT_INTERVAL_MS)));
        build_compound(self.our_ssrc, sender, block.as_slice(), &self.cname)
    }

    /// What the call record keeps of this leg.
    pub fn quality(&self) -> LegQuality {
        let received = self.receiver.summary();
        LegQuality {
            packets_received: received.packets_received,
            packets_lost: received.packets_lost,
            jitter_ms: received.jitter_ms,
            remote_fraction_lost: self.remote_fraction_lost,
            remote_jitter_ms: self.remote_jitter_ms,
            rtt_ms: self.rtt_ms,
            reports_sent: self.reports_sent,
            reports_received: self.reports_received,
        }
    }

    /// The first report goes out after half an interval (§6.2), to learn of the peer early.
    fn arm(&mut self, now_ms: u64) {
        if self.next_report_at.is_none() {
            self.next_report_at =
                Some(now_ms.saturating_add(self.interval_ms(REPORT_INTERVAL_MS / 2.0)));
        }
    }

    /// `base` × a uniform factor in [0.5, 1.5) (§6.3.1).
    fn interval_ms(&mut self, base: f64) -> u64 {
        (base * self.rng.gen_range(0.5..1.5)) as u64
    }
}
