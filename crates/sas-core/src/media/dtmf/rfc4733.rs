//! RFC 4733 `telephone-event` decoding: RTP packets in, one [`DigitEvent`] per key press out.
//!
//! Owns [`parse_rtp`] (the RTP fixed header, enough for the relay to route packets of the
//! negotiated telephone-event payload type here), [`parse_telephone_events`] (the §2.3
//! payload blocks) and [`TelephoneEventDecoder`], which turns the redundant packet stream
//! of a key press (start packets, growing durations, end packet sent three times) into a
//! single digit, robust to duplication, reordering and loss.

use super::{DigitEvent, DtmfSource, digit_of_event};
use crate::time::EpochMillis;

#[cfg(test)]
mod tests;

/// Clock rate of `telephone-event/8000`, by far the usual one.
pub const DEFAULT_CLOCK_RATE: u32 = 8_000;

/// Without news for this long, an event whose end packets were all lost is reported.
/// Senders refresh every 50 ms or faster (§2.5.1.2), so this is several lost packets.
pub const DEFAULT_END_TIMEOUT_MS: u64 = 250;

const RTP_HEADER_LEN: usize = 12;

/// Largest value of the 16-bit duration field: a longer event continues in a new segment
/// with a new timestamp (§2.5.1.3).
const MAX_SEGMENT: u32 = 0xFFFF;

/// A parsed RTP packet, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub version: u8,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
    /// Where the payload starts in the datagram (to rewrite it in place).
    pub payload_offset: usize,
}

/// Parses an RTP packet (RFC 3550 §5.1), `None` if it is not a well-formed version 2 packet.
pub fn parse_rtp(packet: &[u8]) -> Option<RtpView<'_>> {
    let header = packet.get(..RTP_HEADER_LEN)?;
    let version = header[0] >> 6;
    if version != 2 {
        return None;
    }
    let has_padding = header[0] & 0x20 != 0;
    let has_extension = header[0] & 0x10 != 0;
    let csrc_count = usize::from(header[0] & 0x0F);
    let mut start = RTP_HEADER_LEN + 4 * csrc_count;
    if has_extension {
        // 16-bit profile id, then the extension length in 32-bit words.
        let ext = packet.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = packet.len();
    if has_padding {
        // The last byte counts the padding bytes, itself included.
        let pad = usize::from(*packet.last()?);
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    let payload = packet.get(start..end)?;
    Some(RtpView {
        version,
        marker: header[1] & 0x80 != 0,
        payload_type: header[1] & 0x7F,
        sequence: u16::from_be_bytes([header[2], header[3]]),
        timestamp: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        ssrc: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
        payload,
        payload_offset: start,
    })
}

/// One 4-byte event block of a telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0-15 are the DTMF keys.
    pub event: u8,
    /// E bit: this is (a retransmission of) the final report of the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63); informative only.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

/// The event blocks of a payload, oldest first; `None` if the length is not a non-zero
/// multiple of 4. Several blocks are events packed back to back (§2.5.1.5).
pub fn parse_telephone_events(payload: &[u8]) -> Option<impl Iterator<Item = TelephoneEvent> + '_> {
    if payload.is_empty() || !payload.len().is_multiple_of(4) {
        return None;
    }
    Some(payload.chunks_exact(4).map(|b| TelephoneEvent {
        event: b[0],
        end: b[1] & 0x80 != 0,
        // b[1] & 0x40 is the reserved R bit: ignored on receipt.
        volume: b[1] & 0x3F,
        duration: u16::from_be_bytes([b[2], b[3]]),
    }))
}

/// The event currently being reported by the sender.
#[derive(Debug, Clone, Copy)]
struct Active {
    /// RTP timestamp of the event's first segment: what identifies the key press.
    start_ts: u32,
    /// Timestamp of the current segment (differs from `start_ts` only past 8 s at 8 kHz).
    segment_ts: u32,
    digit: char,
    /// Largest duration reported for the current segment.
    segment_duration: u32,
    started_at: EpochMillis,
    last_seen: EpochMillis,
}

/// Decodes the telephone-event stream of one RTP source into digits.
///
/// Each key press is identified by its RTP timestamp. A digit is emitted on the first
/// packet with the E bit; later packets with that timestamp (end retransmissions,
/// duplicates, late reordered updates) and packets with older timestamps are ignored. If
/// the end packets are lost, the digit is emitted when the next event starts or when
/// [`TelephoneEventDecoder::flush`] finds it silent for the end timeout.
#[derive(Debug, Clone)]
pub struct TelephoneEventDecoder {
    clock_rate: u32,
    end_timeout_ms: u64,
    /// Timestamp of the newest event seen, ended or not.
    newest: Option<u32>,
    active: Option<Active>,
}

impl Default for TelephoneEventDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_CLOCK_RATE)
    }
}

impl TelephoneEventDecoder {
    /// A decoder for `telephone-event/<clock_rate>` (0 is taken as 8000).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: if clock_rate == 0 {
                DEFAULT_CLOCK_RATE
            } else {
                clock_rate
            },
            end_timeout_ms: DEFAULT_END_TIMEOUT_MS,
            newest: None,
            active: None,
        }
    }

    /// Changes how long an unfinished event may stay silent before [`Self::flush`] reports it.
    pub fn with_end_timeout(mut self, ms: u64) -> Self {
        self.end_timeout_ms = ms;
        self
    }

    /// Forgets everything, e.g. when the source's SSRC changes.
    pub fn reset(&mut self) {
        self.newest = None;
        self.active = None;
    }

    /// Feeds one packet of the telephone-event payload type. Malformed payloads and
    /// non-DTMF events are ignored. Usually returns nothing; a digit when an event ends,
    /// and at most two when a packet both reveals a lost end and carries a whole event.
    pub fn push(
        &mut self,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
        now: EpochMillis,
    ) -> Vec<DigitEvent> {
        let mut out = Vec::new();
        let Some(blocks) = parse_telephone_events(payload) else {
            return out;
        };
        if marker
            && self
                .newest
                .is_some_and(|n| self.is_restart(rtp_timestamp, n))
        {
            // A new event far behind the newest one: the sender's timestamps jumped back.
            self.flush_active(&mut out);
            self.newest = None;
        }
        // Packed events are contiguous: each starts where the previous one ended (§2.5.1.5),
        // so the last block, the current event, gets the packet timestamp plus the others'.
        let mut ts = rtp_timestamp;
        for block in blocks {
            self.on_block(ts, block, now, &mut out);
            ts = ts.wrapping_add(u32::from(block.duration));
        }
        out
    }

    /// Reports the current event if nothing was heard of it for the end timeout.
    pub fn flush(&mut self, now: EpochMillis) -> Option<DigitEvent> {
        let deadline = self.poll_timeout()?;
        if now < deadline {
            return None;
        }
        let active = self.active.take()?;
        Some(self.digit(&active))
    }

    /// When [`Self::flush`] should next be called, if an event is in progress.
    pub fn poll_timeout(&self) -> Option<EpochMillis> {
        self.active
            .map(|a| a.last_seen.saturating_add(self.end_timeout_ms))
    }

    fn on_block(
        &mut self,
        ts: u32,
        block: TelephoneEvent,
        now: EpochMillis,
        out: &mut Vec<DigitEvent>,
    ) {
        let Some(digit) = digit_of_event(block.event) else {
            return;
        };
        let duration = u32::from(block.duration);
        if self.active.is_none_or(|a| a.segment_ts != ts) {
            if self.newest.is_some_and(|n| !is_newer(ts, n)) {
                // Ended, duplicated or reordered: that event was already dealt with.
                return;
            }
            self.newest = Some(ts);
            match self.active.as_mut() {
                Some(active) if continues_segment(active, ts, digit, self.clock_rate) => {
                    active.segment_ts = ts;
                    active.segment_duration = 0;
                }
                _ => {
                    // A new key press; the previous one, if still open, lost its end packets.
                    self.flush_active(out);
                    self.active = Some(Active {
                        start_ts: ts,
                        segment_ts: ts,
                        digit,
                        segment_duration: 0,
                        started_at: now.saturating_sub(self.ms(u64::from(duration))),
                        last_seen: now,
                    });
                }
            }
        }
        if let Some(active) = self.active.as_mut() {
            // Max, not last: a reordered update must not shrink the duration.
            active.segment_duration = active.segment_duration.max(duration);
            active.last_seen = now;
        }
        if block.end {
            self.flush_active(out);
        }
    }

    fn flush_active(&mut self, out: &mut Vec<DigitEvent>) {
        if let Some(active) = self.active.take() {
            out.push(self.digit(&active));
        }
    }

    /// Whether a marked packet at `ts` starts over behind `newest` (more than a second back,
    /// far beyond any reordering).
    fn is_restart(&self, ts: u32, newest: u32) -> bool {
        newest.wrapping_sub(ts) > self.clock_rate && !is_newer(ts, newest)
    }

    fn digit(&self, active: &Active) -> DigitEvent {
        let units = u64::from(active.segment_ts.wrapping_sub(active.start_ts))
            + u64::from(active.segment_duration);
        DigitEvent {
            digit: active.digit,
            at: active.started_at,
            duration_ms: u32::try_from(self.ms(units)).unwrap_or(u32::MAX),
            source: DtmfSource::Rfc4733,
        }
    }

    fn ms(&self, units: u64) -> u64 {
        units * 1000 / u64::from(self.clock_rate)
    }
}

/// Whether a new timestamp is the next segment of a long press rather than a new press:
/// same key, starting where a full segment ended (allowing half a second of slack for
/// senders that cut segments early or lost the last update).
fn continues_segment(active: &Active, ts: u32, digit: char, clock_rate: u32) -> bool {
    let delta = ts.wrapping_sub(active.segment_ts);
    digit == active.digit
        && delta <= MAX_SEGMENT
        && delta >= MAX_SEGMENT.saturating_sub(clock_rate / 2)
}

/// RTP timestamp order with wrap-around (RFC 3550 serial arithmetic).
fn is_newer(ts: u32, than: u32) -> bool {
    let diff = ts.wrapping_sub(than);
    diff != 0 && diff < 0x8000_0000
}
