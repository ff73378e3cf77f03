//! The stereo mixer (sans-IO): the caller's and the plateau's [`Track`]s on one 8 kHz
//! sample clock counted from the start of the recording (the answer), written out as
//! interleaved frames of G.711 bytes on the wall clock.
//!
//! The recording keeps the law of its first packet (the caller's, normally: both
//! channels carry what the caller's leg sends and receives), so a call's audio is stored
//! as it came, byte for byte, with nothing decoded: half the bytes of 16-bit PCM to copy,
//! hash and write.
//!
//! The caller says when each packet arrived and what "now" is (sample positions). A frame
//! is final once both directions hold a sample there (nothing later could change it), or
//! once it is past and a direction never sent (its first packet lands at its arrival), and
//! at the latest [`JITTER_DEPTH`] behind now, whatever came: a direction with no packet
//! gives silence, so the recording follows the wall clock even on a line where nobody
//! sends RTP, and [`StereoMixer::finish`] ends it exactly at the call's end. No frame is
//! final before now. Memory is bounded: each track holds at most [`CAPACITY`] samples, and
//! while both directions flow only a few packets ([`MIN_CAPACITY`]).

use super::Channel;
#[cfg(doc)]
use super::jitter::{CAPACITY, MIN_CAPACITY};
use super::jitter::{JITTER_DEPTH, RtpMeta, Track, TrackStats, Window};
use crate::media::g711::G711Law;

/// Frames handed out per [`StereoMixer::drain`] or [`StereoMixer::finish`] call at most
/// (5 s), so the caller's output buffer stays bounded too.
pub const MAX_CHUNK: u64 = 40_000;

/// Aligns the caller and plateau channels on one sample clock; see the module doc.
#[derive(Debug)]
pub struct StereoMixer {
    tracks: [Track; 2],
    window: Window,
    /// The law is chosen (by the first packet or [`StereoMixer::settle`]).
    settled: bool,
}

impl Default for StereoMixer {
    fn default() -> Self {
        Self::new()
    }
}

impl StereoMixer {
    /// An empty mixer at position 0, its law not chosen yet.
    pub fn new() -> Self {
        Self {
            tracks: [Track::new(G711Law::Alaw), Track::new(G711Law::Alaw)],
            window: Window::default(),
            settled: false,
        }
    }

    /// Chooses the recording's law, `law` unless it is chosen already; returns it.
    /// Nothing is placed before it is chosen, so the tracks start afresh in it.
    pub fn settle(&mut self, law: G711Law) -> G711Law {
        if !self.settled {
            self.tracks = [Track::new(law), Track::new(law)];
            self.settled = true;
        }
        self.law()
    }

    /// The recording's law (A-law while none is chosen).
    pub fn law(&self) -> G711Law {
        self.tracks[0].law()
    }

    /// Adds a G.711 `payload` in `law` of a packet of `channel` with header `rtp` that
    /// arrived at sample position `at` (the first packet chooses the recording's law).
    pub fn push_g711(
        &mut self,
        channel: Channel,
        at: u64,
        rtp: RtpMeta,
        payload: &[u8],
        law: G711Law,
    ) {
        self.settle(law);
        self.tracks[channel.index()].place_g711(self.window, at, rtp, payload, law);
    }

    /// Appends to `out` the interleaved (caller, plateau) bytes of the frames final at
    /// `now`: those both directions filled (a direction that never sent counts as
    /// filled), up to `now`, and anything up to [`JITTER_DEPTH`] before it.
    /// Returns whether more are final (at most [`MAX_CHUNK`] frames per call: call again).
    pub fn drain(&mut self, now: u64, out: &mut Vec<u8>) -> bool {
        let horizon = now.saturating_sub(JITTER_DEPTH);
        // A direction that never sent holds nothing back: its first packet lands at its
        // arrival, not before now.
        let heard = self
            .tracks
            .iter()
            .filter(|t| t.started())
            .map(Track::filled)
            .min();
        let heard = heard.map_or(now, |n| (self.window.committed + n as u64).min(now));
        self.emit_until(heard.max(horizon), horizon, out)
    }

    /// The call ended at position `end`: appends the frames up to it (what was placed after
    /// it is left out). Returns whether more remain (call again).
    pub fn finish(&mut self, end: u64, out: &mut Vec<u8>) -> bool {
        self.emit_until(end, end, out)
    }

    /// Frames handed out so far: the length of the recording.
    pub fn position(&self) -> u64 {
        self.window.committed
    }

    /// What happened to `channel`'s packets so far.
    pub fn stats(&self, channel: Channel) -> TrackStats {
        self.tracks[channel.index()].stats()
    }

    /// Just past the latest sample placed on either channel.
    pub fn end(&self) -> u64 {
        self.tracks[0].end().max(self.tracks[1].end())
    }

    /// Bytes the two jitter buffers hold (their memory).
    pub fn buffer_bytes(&self) -> usize {
        self.tracks.iter().map(Track::capacity).sum()
    }

    /// Hands out frames up to `target` and moves the horizon on to `horizon` (as far as
    /// what was handed out).
    fn emit_until(&mut self, target: u64, horizon: u64, out: &mut Vec<u8>) -> bool {
        let window = &mut self.window;
        let frames = target.saturating_sub(window.committed).min(MAX_CHUNK) as usize;
        let mut at = out.len();
        out.resize(at + 2 * frames, 0);
        // Each track's samples into a block on the stack, then the two side by side: two
        // copies and a branch-free interleave, rather than a branch per sample written
        // every second byte.
        let (mut left, mut right) = ([0u8; BLOCK], [0u8; BLOCK]);
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(BLOCK);
            let [caller, plateau] = &mut self.tracks;
            caller.pop_into(&mut left[..n]);
            plateau.pop_into(&mut right[..n]);
            let pairs = out[at..at + 2 * n].chunks_exact_mut(2);
            for (pair, (&l, &r)) in pairs.zip(left[..n].iter().zip(&right[..n])) {
                pair[0] = l;
                pair[1] = r;
            }
            at += 2 * n;
            done += n;
        }
        window.committed += frames as u64;
        window.horizon = window.horizon.max(horizon.min(window.committed));
        window.committed < target
    }
}

/// Frames interleaved at a time.
const BLOCK: usize = 512;
