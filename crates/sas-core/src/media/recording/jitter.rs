//! One direction of a recording (sans-IO): a small jitter buffer that places each RTP
//! packet on the recording's sample clock by its RTP timestamp, not by when it arrived.
//!
//! The first packet of a stream (and of each new SSRC) is placed at its arrival; each next
//! one at the first one's place plus its timestamp difference (32-bit wrap handled), so a
//! burst after a network stall lands where it was spoken, reordered packets fall into
//! place, duplicates are written once, and a gap in the timestamps (VAD, a muted phone)
//! stays a gap, which the mixer writes as silence. Timestamps, not marker bits, are
//! trusted: a marker can be duplicated or reordered, a timestamp says where it goes.
//!
//! The buffer holds what the mixer has not written yet: from its committed position up to
//! [`CAPACITY`] samples on. A packet is written only if it lands there; the mixer writes
//! [`JITTER_DEPTH`] behind the wall clock, so audio up to that late is kept.
//!
//! The mapping is a guess about the sender's clock; it is re-made (the stream restarts at
//! its arrival, after what was already placed) when a timestamp says the packet was sent
//! more than [`MAX_AHEAD`] in the future or more than [`MAX_BACKWARDS`] in the past (a phone
//! that restarted its numbering without changing SSRC), and when the stream keeps arriving
//! too late for [`LATE_RESYNC`] (a sender clock slower than ours, after hours).

use std::collections::VecDeque;

/// How far behind the wall clock the mixer writes (1 s): packets this late still land in
/// place (a 300 ms stall and its burst lose nothing).
pub const JITTER_DEPTH: u64 = 8_000;
/// A packet whose timestamp puts it more than this (200 ms) after its arrival is from a
/// new numbering, not from the future.
pub const MAX_AHEAD: u64 = 1_600;
/// A timestamp this far (2 s) before the newest one is a new numbering, not reordering.
pub const MAX_BACKWARDS: i64 = 16_000;
/// In-order packets arriving too late for this long (1 s of arrival time) move the stream
/// half a buffer behind the clock; a burst arrives at one instant, so it never triggers
/// this.
pub const LATE_RESYNC: u64 = 8_000;
/// Samples held per direction at most (2.5 s): depth, look-ahead and margin.
pub const CAPACITY: usize = (JITTER_DEPTH + MAX_AHEAD + 8_000) as usize;
/// What a track reserves at its first packet: the depth and a few packets. Usual traffic
/// never needs more; a burst ahead of the clock grows the buffer, up to [`CAPACITY`].
const RESERVED: usize = JITTER_DEPTH as usize + 1_024;

/// A place where nothing came. G.711 never decodes to it (its extremes are ±32,256 and
/// ±32,124); a linear sample of that value is stored one step up, which nobody can hear.
/// A plain `i16` per place, rather than `Option<i16>`, halves the buffer (2 bytes a
/// sample: about 18 KiB per direction) and lets the mixer copy runs of samples.
const NOTHING: i16 = i16::MIN;

/// The RTP header fields that place a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMeta {
    /// Synchronisation source: a new one is a new stream.
    pub ssrc: u32,
    /// Sampling instant of the first sample (8 kHz).
    pub timestamp: u32,
}

/// What happened to the samples given to a track, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Samples placed.
    pub placed: u64,
    /// Samples that came after their place was written (later than [`JITTER_DEPTH`]).
    pub late: u64,
    /// Samples beyond [`CAPACITY`] (the mixer was not drained in time).
    pub overflow: u64,
    /// Samples whose place was already taken (duplicates).
    pub duplicate: u64,
    /// Times the timestamp mapping was re-made (new SSRC, restart, drift).
    pub resyncs: u64,
}

/// The newest packet of the current stream: where its timestamp was placed.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: u64,
}

/// One direction's jitter buffer; positions are samples since the recording started.
#[derive(Debug, Default)]
pub struct Track {
    /// Samples from the mixer's committed position on; [`NOTHING`] where nothing came.
    buf: VecDeque<i16>,
    anchor: Option<Anchor>,
    /// Just past the latest sample placed.
    end: u64,
    /// Arrival of the first in-order packet of a run that came too late.
    late_since: Option<u64>,
    stats: TrackStats,
}

impl Track {
    /// Places `samples` of a packet with header `rtp` that arrived at position `at`, the
    /// mixer having written everything before `committed`.
    pub fn place(&mut self, committed: u64, at: u64, rtp: RtpMeta, samples: &[i16]) {
        let (position, forward) = self.position(committed, at, rtp);
        if forward {
            self.anchor = Some(Anchor {
                ssrc: rtp.ssrc,
                timestamp: rtp.timestamp,
                position,
            });
        }
        for (i, &sample) in samples.iter().enumerate() {
            let p = position + i as u64;
            let Some(index) = p.checked_sub(committed) else {
                self.stats.late += 1;
                continue;
            };
            let index = index as usize;
            if index >= CAPACITY {
                self.stats.overflow += 1;
                continue;
            }
            if self.buf.len() <= index {
                if self.buf.capacity() == 0 {
                    self.buf.reserve_exact(RESERVED);
                }
                self.buf.resize(index + 1, NOTHING);
            }
            let slot = &mut self.buf[index];
            if *slot == NOTHING {
                *slot = sample.max(NOTHING + 1);
                self.stats.placed += 1;
                self.end = self.end.max(p + 1);
            } else {
                self.stats.duplicate += 1;
            }
        }
    }

    /// Where a packet goes, and whether it moves the stream forward (becomes the anchor).
    fn position(&mut self, committed: u64, at: u64, rtp: RtpMeta) -> (u64, bool) {
        let Some(anchor) = self.anchor.filter(|a| a.ssrc == rtp.ssrc) else {
            return (self.resync(at, true), true);
        };
        let delta = i64::from(rtp.timestamp.wrapping_sub(anchor.timestamp) as i32);
        let position = anchor.position as i64 + delta;
        if delta < -MAX_BACKWARDS || position > (at + MAX_AHEAD) as i64 {
            return (self.resync(at, false), true);
        }
        let position = position.max(0) as u64;
        if delta <= 0 {
            // Reordered or duplicated: its place, if still open; the anchor stays.
            return (position, false);
        }
        if position >= committed {
            self.late_since = None;
            return (position, true);
        }
        // In order but too late: a burst after a long stall, or a slow sender clock.
        match self.late_since {
            Some(since) if at.saturating_sub(since) >= LATE_RESYNC => {
                // Half the buffer of headroom: a slow clock takes long to use it up again.
                let resumed = self.resync(committed + JITTER_DEPTH / 2, false);
                (resumed, true)
            }
            Some(_) => (position, true),
            None => {
                self.late_since = Some(at);
                (position, true)
            }
        }
    }

    /// A new mapping: the stream goes on at `at` (its arrival), after what is already
    /// placed.
    fn resync(&mut self, at: u64, new_ssrc: bool) -> u64 {
        if self.anchor.is_some() || !new_ssrc {
            self.stats.resyncs += 1;
        }
        self.late_since = None;
        at.max(self.end)
    }

    /// Takes the next `frames.len() / 2` samples from the committed position on (silence
    /// where nothing came) into every second slot of `frames` from `channel` (interleaved
    /// stereo); the mixer's committed position moves on by as many.
    pub fn pop_into(&mut self, frames: &mut [i16], channel: usize) {
        let mut slots = frames.iter_mut().skip(channel).step_by(2);
        let held = self.buf.len().min(slots.len());
        for (slot, sample) in slots.by_ref().zip(self.buf.drain(..held)) {
            *slot = if sample == NOTHING { 0 } else { sample };
        }
        slots.for_each(|slot| *slot = 0);
    }

    /// Counts so far.
    pub fn stats(&self) -> TrackStats {
        self.stats
    }

    /// Just past the latest sample placed.
    pub fn end(&self) -> u64 {
        self.end
    }
}
