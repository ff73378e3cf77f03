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
//! The buffer holds what the mixer has not written yet, from its committed position on. A
//! packet counts as late only if it lands before the mixer's horizon ([`JITTER_DEPTH`]
//! behind the wall clock), so audio up to that late is kept, and as overflow beyond
//! [`CAPACITY`] samples after the horizon. The mixer writes a frame before its horizon
//! once both directions hold a sample there ([`Track::filled`]): nothing arriving later
//! could change it (a place is only ever written once), so the buffer holds what it needs,
//! a few packets while both directions flow, up to the whole depth while one is silent.
//!
//! The mapping is a guess about the sender's clock; it is re-made (the stream restarts at
//! its arrival, after what was already placed) when a timestamp says the packet was sent
//! more than [`MAX_AHEAD`] in the future or more than [`MAX_BACKWARDS`] in the past (a phone
//! that restarted its numbering without changing SSRC), and when the stream keeps arriving
//! too late for [`LATE_RESYNC`] (a sender clock slower than ours, after hours).

use crate::media::g711::G711Law;
use std::collections::VecDeque;

/// How far behind the wall clock the mixer writes at the latest (1 s): packets this late
/// still land in place (a 300 ms stall and its burst lose nothing).
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
/// Samples after the horizon a track holds at most (2.5 s): depth, look-ahead and margin.
pub const CAPACITY: usize = (JITTER_DEPTH + MAX_AHEAD + 8_000) as usize;
/// The smallest buffer (128 ms, 2 KiB): what a track holds while both directions flow.
/// It doubles when more is needed (a silent other direction, a stall) and halves back.
pub const MIN_CAPACITY: usize = 1_024;

/// A place where nothing came. G.711 never decodes to it (its extremes are ±32,256 and
/// ±32,124); a linear sample of that value is stored one step up, which nobody can hear.
/// A plain `i16` per place, rather than `Option<i16>`, halves the buffer and lets the
/// mixer copy runs of samples.
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

/// Where the mixer stands, in samples since the recording started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// [`JITTER_DEPTH`] behind the clock: what comes before it is late.
    pub horizon: u64,
    /// Written out so far (at or after the horizon): the buffer's first place.
    pub committed: u64,
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
    /// How many samples at the front of `buf` came (none of them [`NOTHING`]).
    filled: usize,
    anchor: Option<Anchor>,
    /// Just past the latest sample placed.
    end: u64,
    /// Arrival of the first in-order packet of a run that came too late.
    late_since: Option<u64>,
    stats: TrackStats,
}

impl Track {
    /// Places linear `samples` of a packet with header `rtp` that arrived at position `at`.
    pub fn place(&mut self, window: Window, at: u64, rtp: RtpMeta, samples: &[i16]) {
        self.place_by(window, at, rtp, samples.len(), |i| {
            samples[i].max(NOTHING + 1)
        });
    }

    /// Places a G.711 `payload`, decoded as it is stored (no intermediate buffer).
    pub fn place_g711(
        &mut self,
        window: Window,
        at: u64,
        rtp: RtpMeta,
        payload: &[u8],
        law: G711Law,
    ) {
        let table = law.decode_table();
        self.place_by(window, at, rtp, payload.len(), |i| {
            table[usize::from(payload[i])]
        });
    }

    /// Places `len` samples given by `sample` (never [`NOTHING`]).
    fn place_by(
        &mut self,
        window: Window,
        at: u64,
        rtp: RtpMeta,
        len: usize,
        sample: impl Fn(usize) -> i16,
    ) {
        let (position, forward) = self.position(window, at, rtp);
        if forward {
            self.anchor = Some(Anchor {
                ssrc: rtp.ssrc,
                timestamp: rtp.timestamp,
                position,
            });
        }
        // [position, stop) splits into: late (before the horizon), already written
        // (before the committed position: its place was taken), kept, overflow.
        let stop = position + len as u64;
        let horizon = window.horizon.clamp(position, stop);
        let committed = window.committed.clamp(horizon, stop);
        let limit = (window.horizon + CAPACITY as u64).clamp(committed, stop);
        self.stats.late += horizon - position;
        self.stats.duplicate += committed - horizon;
        self.stats.overflow += stop - limit;
        if limit == committed {
            return;
        }
        let first = (committed - window.committed) as usize;
        let count = (limit - committed) as usize;
        let offset = (committed - position) as usize;
        let held = self.buf.len();
        // Into places already in the buffer: only those where nothing came yet.
        let inside = held.saturating_sub(first).min(count);
        let mut placed = 0;
        for i in 0..inside {
            let slot = &mut self.buf[first + i];
            if *slot == NOTHING {
                *slot = sample(offset + i);
                placed += 1;
            }
        }
        self.stats.duplicate += (inside - placed) as u64;
        let mut gap = 0;
        if inside < count {
            // Past the buffer's end (the usual case: in order): a gap, then the samples.
            gap = first.saturating_sub(held);
            self.grow(first + count);
            self.buf.resize(held + gap, NOTHING);
            self.buf
                .extend((offset + inside..offset + count).map(&sample));
            placed += count - inside;
        }
        self.stats.placed += placed as u64;
        if placed > 0 {
            self.end = self.end.max(limit);
        }
        if first == held && held == self.filled && gap == 0 && inside == 0 {
            // In order right after what came: all of it is filled.
            self.filled = self.buf.len();
        } else if first <= self.filled {
            self.rescan();
        }
    }

    /// Makes room for `len` samples: doubling, up to [`CAPACITY`].
    fn grow(&mut self, len: usize) {
        if len > self.buf.capacity() {
            let target = len.next_power_of_two().clamp(MIN_CAPACITY, CAPACITY);
            self.buf.reserve_exact(target.max(len) - self.buf.len());
        }
    }

    /// Extends `filled` over the samples that came after it.
    fn rescan(&mut self) {
        let more = self.buf.range(self.filled..).take_while(|&&s| s != NOTHING);
        self.filled += more.count();
    }

    /// Where a packet goes, and whether it moves the stream forward (becomes the anchor).
    fn position(&mut self, window: Window, at: u64, rtp: RtpMeta) -> (u64, bool) {
        let Some(anchor) = self.anchor.filter(|a| a.ssrc == rtp.ssrc) else {
            return (self.resync(window, at, true), true);
        };
        let delta = i64::from(rtp.timestamp.wrapping_sub(anchor.timestamp) as i32);
        let position = anchor.position as i64 + delta;
        if delta < -MAX_BACKWARDS || position > (at + MAX_AHEAD) as i64 {
            return (self.resync(window, at, false), true);
        }
        let position = position.max(0) as u64;
        if delta <= 0 {
            // Reordered or duplicated: its place, if still open; the anchor stays.
            return (position, false);
        }
        if position >= window.horizon {
            self.late_since = None;
            return (position, true);
        }
        // In order but too late: a burst after a long stall, or a slow sender clock.
        match self.late_since {
            Some(since) if at.saturating_sub(since) >= LATE_RESYNC => {
                // Half the buffer of headroom: a slow clock takes long to use it up again.
                let resumed = window.horizon + JITTER_DEPTH / 2;
                (self.resync(window, resumed, false), true)
            }
            Some(_) => (position, true),
            None => {
                self.late_since = Some(at);
                (position, true)
            }
        }
    }

    /// A new mapping: the stream goes on at `at` (its arrival), after what is already
    /// placed or written.
    fn resync(&mut self, window: Window, at: u64, new_ssrc: bool) -> u64 {
        if self.anchor.is_some() || !new_ssrc {
            self.stats.resyncs += 1;
        }
        self.late_since = None;
        at.max(self.end).max(window.committed)
    }

    /// Takes the next `frames.len() / 2` samples from the committed position on (silence
    /// where nothing came) into every second slot of `frames` from `channel` (interleaved
    /// stereo); the mixer's committed position moves on by as many.
    pub fn pop_into(&mut self, frames: &mut [i16], channel: usize) {
        let wanted = frames.len() / 2;
        let held = self.buf.len().min(wanted);
        let mut slots = frames.chunks_exact_mut(2);
        let (front, back) = self.buf.as_slices();
        for part in [front, back] {
            // The slice first: `zip` must not take a slot it has no sample for.
            for (&sample, frame) in part.iter().zip(slots.by_ref()) {
                frame[channel] = if sample == NOTHING { 0 } else { sample };
            }
        }
        slots.for_each(|frame| frame[channel] = 0);
        self.buf.drain(..held);
        if wanted <= self.filled {
            self.filled -= wanted;
        } else {
            self.filled = 0;
            self.rescan();
        }
        // What a silent stretch of the other direction grew goes back once it is written.
        let capacity = self.buf.capacity();
        if capacity > MIN_CAPACITY && self.buf.len() < capacity / 4 {
            self.buf.shrink_to((capacity / 2).max(MIN_CAPACITY));
        }
    }

    /// How many samples from the committed position on came, without a gap: the mixer
    /// may write that many at once.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Samples the buffer has room for (its memory, 2 bytes each).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
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
