//! The stereo mixer (sans-IO): the caller's and the plateau's [`Track`]s on one 8 kHz
//! sample clock counted from the start of the recording (the answer), written out as
//! interleaved frames on the wall clock.
//!
//! The caller says when each packet arrived and what "now" is (sample positions). Frames
//! become final [`JITTER_DEPTH`] behind now, whatever came: a direction with no packet
//! gives silence, so the recording follows the wall clock even on a line where nobody
//! sends RTP, and [`StereoMixer::finish`] ends it exactly at the call's end. Memory is
//! bounded: each track holds at most [`CAPACITY`] samples.

use super::Channel;
#[cfg(doc)]
use super::jitter::CAPACITY;
use super::jitter::{JITTER_DEPTH, RtpMeta, Track, TrackStats};

/// Frames handed out per [`StereoMixer::drain`] or [`StereoMixer::finish`] call at most
/// (5 s), so the caller's output buffer stays bounded too.
pub const MAX_CHUNK: u64 = 40_000;

/// Aligns the caller and plateau channels on one sample clock; see the module doc.
#[derive(Debug, Default)]
pub struct StereoMixer {
    tracks: [Track; 2],
    /// Frames handed out so far: the position of the first sample still buffered.
    committed: u64,
}

impl StereoMixer {
    /// An empty mixer at position 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a packet of `channel` with header `rtp` that arrived at sample position `at`.
    pub fn push(&mut self, channel: Channel, at: u64, rtp: RtpMeta, samples: &[i16]) {
        self.tracks[channel.index()].place(self.committed, at, rtp, samples);
    }

    /// Appends to `out` the interleaved (caller, plateau) frames final at `now`: up to
    /// [`JITTER_DEPTH`] before it. Returns whether more are final (at most [`MAX_CHUNK`]
    /// frames per call: call again).
    pub fn drain(&mut self, now: u64, out: &mut Vec<i16>) -> bool {
        self.emit_until(now.saturating_sub(JITTER_DEPTH), out)
    }

    /// The call ended at position `end`: appends the frames up to it (what was placed after
    /// it is left out). Returns whether more remain (call again).
    pub fn finish(&mut self, end: u64, out: &mut Vec<i16>) -> bool {
        self.emit_until(end, out)
    }

    /// Frames handed out so far: the length of the recording.
    pub fn position(&self) -> u64 {
        self.committed
    }

    /// What happened to `channel`'s packets so far.
    pub fn stats(&self, channel: Channel) -> TrackStats {
        self.tracks[channel.index()].stats()
    }

    /// Just past the latest sample placed on either channel.
    pub fn end(&self) -> u64 {
        self.tracks[0].end().max(self.tracks[1].end())
    }

    fn emit_until(&mut self, target: u64, out: &mut Vec<i16>) -> bool {
        let frames = target.saturating_sub(self.committed).min(MAX_CHUNK);
        let start = out.len();
        out.resize(start + frames as usize * 2, 0);
        for (channel, track) in self.tracks.iter_mut().enumerate() {
            track.pop_into(&mut out[start..], channel);
        }
        self.committed += frames;
        self.committed < target
    }
}
