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
//! once both directions hold a sample there ([`Track::filled`]), or once it is past and
//! the other direction never sent ([`Track::started`]): nothing arriving later could
//! change it (a place is only ever written once), so the buffer holds what it needs, a
//! few packets while both directions flow, up to the whole depth while one that sent
//! before is silent.
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
/// The smallest buffer (128 ms, 1 KiB): what a track holds while both directions flow.
/// It grows by this much when more is needed (a silent other direction, a stall) and
/// gives it back once written.
pub const MIN_CAPACITY: usize = 1_024;

/// A place where nothing came: the law's most negative code (-32,256 in A-law, -32,124
/// in µ-law). A packet's byte of that value is kept one step nearer zero ([`stand_in`]):
/// only a full-scale clip is touched, by 3 %, which nobody can hear. A byte per place,
/// rather than `Option<u8>`, halves the buffer and lets the mixer copy runs of samples.
const fn nothing(law: G711Law) -> u8 {
    match law {
        G711Law::Alaw => 0x2A,
        G711Law::Ulaw => 0x00,
    }
}

/// What a packet's byte equal to [`nothing`] is kept as (-31,232 / -31,100).
const fn stand_in(law: G711Law) -> u8 {
    match law {
        G711Law::Alaw => 0x2B,
        G711Law::Ulaw => 0x01,
    }
}

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
/// Samples are G.711 bytes in the recording's law: a packet in that law is copied as it
/// came, one in the other law is converted.
#[derive(Debug)]
pub struct Track {
    /// The recording's law.
    law: G711Law,
    /// Samples from the mixer's committed position on; [`nothing`] where nothing came.
    buf: VecDeque<u8>,
    /// How many samples at the front of `buf` came (none of them [`nothing`]).
    filled: usize,
    anchor: Option<Anchor>,
    /// Just past the latest sample placed.
    end: u64,
    /// Arrival of the first in-order packet of a run that came too late.
    late_since: Option<u64>,
    stats: TrackStats,
}

impl Track {
    /// An empty track of a recording in `law`.
    pub fn new(law: G711Law) -> Self {
        Self {
            law,
            buf: VecDeque::new(),
            filled: 0,
            anchor: None,
            end: 0,
            late_since: None,
            stats: TrackStats::default(),
        }
    }

    /// The recording's law.
    pub fn law(&self) -> G711Law {
        self.law
    }

    /// Places a G.711 `payload` in `law` of a packet with header `rtp` that arrived at
    /// position `at`: copied as it came if `law` is the recording's, converted if not.
    pub fn place_g711(
        &mut self,
        window: Window,
        at: u64,
        rtp: RtpMeta,
        payload: &[u8],
        law: G711Law,
    ) {
        // A 20 ms packet's bytes fit on the stack; longer packets (60 ms and more) are rare.
        let mut stack = [0u8; 512];
        let mut heap = Vec::new();
        let bytes = match stack.get_mut(..payload.len()) {
            Some(bytes) => bytes,
            None => {
                heap.resize(payload.len(), 0);
                &mut heap[..]
            }
        };
        let to = self.law;
        if law == to {
            bytes.copy_from_slice(payload);
        } else {
            let table = law.decode_table();
            for (b, &p) in bytes.iter_mut().zip(payload) {
                *b = to.encode(table[usize::from(p)]);
            }
        }
        let (nothing, stand_in) = (nothing(to), stand_in(to));
        for b in bytes.iter_mut() {
            if *b == nothing {
                *b = stand_in;
            }
        }
        self.place(window, at, rtp, bytes);
    }

    /// Places `samples` (in the recording's law, never [`nothing`]).
    fn place(&mut self, window: Window, at: u64, rtp: RtpMeta, samples: &[u8]) {
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
        let stop = position + samples.len() as u64;
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
        let nothing = nothing(self.law);
        for i in 0..inside {
            let slot = &mut self.buf[first + i];
            if *slot == nothing {
                *slot = samples[offset + i];
                placed += 1;
            }
        }
        self.stats.duplicate += (inside - placed) as u64;
        let mut gap = 0;
        if inside < count {
            // Past the buffer's end (the usual case: in order): a gap, then the samples.
            gap = first.saturating_sub(held);
            self.grow(first + count);
            self.buf.resize(held + gap, nothing);
            self.buf
                .extend(samples[offset + inside..offset + count].iter());
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

    /// Makes room for `len` samples, in steps of [`MIN_CAPACITY`] up to [`CAPACITY`]: a track
    /// holds about what it needs (a second of one direction while the other is silent is
    /// 8 KiB, where doubling made it 16).
    fn grow(&mut self, len: usize) {
        if len > self.buf.capacity() {
            let target = len.next_multiple_of(MIN_CAPACITY).min(CAPACITY).max(len);
            self.buf.reserve_exact(target - self.buf.len());
        }
    }

    /// Extends `filled` over the samples that came after it.
    fn rescan(&mut self) {
        let nothing = nothing(self.law);
        let more = self.buf.range(self.filled..).take_while(|&&s| s != nothing);
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

    /// Takes the next `out.len()` samples from the committed position on into `out`
    /// (silence where nothing came); the mixer's committed position moves on by as many.
    pub fn pop_into(&mut self, out: &mut [u8]) {
        let wanted = out.len();
        let held = self.buf.len().min(wanted);
        let (front, back) = self.buf.as_slices();
        let split = front.len().min(held);
        out[..split].copy_from_slice(&front[..split]);
        out[split..held].copy_from_slice(&back[..held - split]);
        let (nothing, silence) = (nothing(self.law), self.law.silence_byte());
        out[held..].fill(silence);
        for b in &mut out[..held] {
            if *b == nothing {
                *b = silence;
            }
        }
        self.buf.drain(..held);
        if wanted <= self.filled {
            self.filled -= wanted;
        } else {
            self.filled = 0;
            self.rescan();
        }
        // What a silent stretch of the other direction grew goes back once it is written,
        // down to a step above what is held: a track that hovers at a step's edge is not
        // reallocated with every packet.
        let len = self.buf.len();
        if self.buf.capacity() >= len + 2 * MIN_CAPACITY {
            self.buf
                .shrink_to(len.next_multiple_of(MIN_CAPACITY).max(MIN_CAPACITY));
        }
    }

    /// Whether a packet came: until one does, nothing can land before the arrival of the
    /// first (see [`Track::place_g711`]), so the track holds no frame back.
    pub fn started(&self) -> bool {
        self.anchor.is_some()
    }

    /// How many samples from the committed position on came, without a gap: the mixer
    /// may write that many at once.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Samples the buffer has room for (its memory, a byte each).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The place holder is each law's most negative code and its stand-in the next one:
    /// what a packet loses by it is one step of a full-scale clip.
    #[test]
    fn nothing_is_the_loudest_negative_code_and_its_stand_in_the_next() {
        for law in [G711Law::Alaw, G711Law::Ulaw] {
            let table = law.decode_table();
            let loudest = table.iter().copied().min().unwrap();
            assert_eq!(law.decode(nothing(law)), loudest, "{law:?}");
            let next = table
                .iter()
                .copied()
                .filter(|&s| s > loudest)
                .min()
                .unwrap();
            assert_eq!(law.decode(stand_in(law)), next, "{law:?}");
        }
    }

    /// A byte equal to the place holder is kept (as its stand-in), not taken for a hole.
    #[test]
    fn a_byte_equal_to_the_place_holder_counts_as_audio() {
        let mut track = Track::new(G711Law::Alaw);
        let rtp = RtpMeta {
            ssrc: 1,
            timestamp: 0,
        };
        track.place_g711(Window::default(), 0, rtp, &[0x2A; 160], G711Law::Alaw);
        assert_eq!(track.filled(), 160);
        let mut out = [0; 200];
        track.pop_into(&mut out);
        assert!(out[..160].iter().all(|&b| b == 0x2B));
        assert!(out[160..].iter().all(|&b| b == 0xD5), "silence after it");
    }
}
