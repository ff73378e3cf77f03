//! The stereo mixer (sans-IO): places each channel's frames on one 8 kHz sample clock counted
//! from the start of the recording, and hands out interleaved frames once they are final.
//!
//! Positions are sample counts since the start; the caller says when a frame arrived and
//! what "now" is. Arrival jitter within [`JITTER_TOLERANCE`] is absorbed by writing at the
//! channel's cursor (no click, no gap); a longer silence on the wire becomes silence in the
//! file; a burst more than [`MAX_AHEAD`] in front of its arrival time is cut. A channel with
//! no packets holds the other back at most [`MAX_HOLD`]. Each channel buffers at most
//! [`MAX_BUFFERED`] samples, whatever the input.

use super::Channel;
use std::collections::VecDeque;

/// A frame arriving this close (or closer) after its channel's cursor is written at the
/// cursor: 60 ms, three 20 ms packets of network jitter.
pub const JITTER_TOLERANCE: u64 = 480;
/// A channel's cursor may run this far in front of arrival time (200 ms); audio bursting
/// further ahead is dropped.
pub const MAX_AHEAD: u64 = 1_600;
/// How long a channel without packets may hold the other back (300 ms); longer than
/// [`JITTER_TOLERANCE`] so a late packet still lands at its cursor rather than in silence.
pub const MAX_HOLD: u64 = 2_400;
/// Samples buffered per channel at most (5 s): the bound on memory if `drain` is not called.
pub const MAX_BUFFERED: usize = 40_000;

/// One channel's samples not yet drained; its cursor is `drained + pending.len()`.
#[derive(Debug, Default)]
struct Track {
    pending: VecDeque<i16>,
    dropped: u64,
}

/// Aligns the caller and plateau channels on one sample clock; see the module doc.
#[derive(Debug, Default)]
pub struct StereoMixer {
    tracks: [Track; 2],
    /// Frames handed out so far (the position of the first pending sample).
    drained: u64,
}

impl StereoMixer {
    /// An empty mixer at position 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a frame of `channel` that arrived at sample position `at`.
    pub fn push(&mut self, channel: Channel, at: u64, samples: &[i16]) {
        let drained = self.drained;
        let track = &mut self.tracks[channel.index()];
        let mut cursor = drained + track.pending.len() as u64;
        if at > cursor.saturating_add(JITTER_TOLERANCE) {
            // Nothing came for longer than jitter explains: the party was silent.
            let fill = (at - cursor).min(room(track) as u64);
            track.pending.extend(std::iter::repeat_n(0, fill as usize));
            cursor += fill;
        }
        let ahead_limit = at.saturating_add(MAX_AHEAD).saturating_sub(cursor);
        let take = samples
            .len()
            .min(usize::try_from(ahead_limit).unwrap_or(usize::MAX))
            .min(room(track));
        track.pending.extend(&samples[..take]);
        track.dropped += (samples.len() - take) as u64;
    }

    /// Appends to `out` the interleaved (caller, plateau) frames that are final at `now`: up
    /// to the slower channel's cursor, but never more than [`MAX_HOLD`] behind `now` (the
    /// silent channel is filled with silence). Appends at most [`MAX_BUFFERED`] frames per
    /// call and returns whether more are final (call again), so memory stays bounded even
    /// after a long time without draining.
    pub fn drain(&mut self, now: u64, out: &mut Vec<i16>) -> bool {
        let slowest = self
            .cursor(Channel::Caller)
            .min(self.cursor(Channel::Plateau));
        let end = slowest.max(now.saturating_sub(MAX_HOLD));
        let frames = (end - self.drained).min(MAX_BUFFERED as u64);
        self.emit(frames, out);
        self.drained < end
    }

    /// Appends every remaining frame, padding the shorter channel with silence.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        let end = self
            .cursor(Channel::Caller)
            .max(self.cursor(Channel::Plateau));
        self.emit(end - self.drained, out);
    }

    /// Frames handed out so far: the length of the recording.
    pub fn position(&self) -> u64 {
        self.drained
    }

    /// Samples of `channel` dropped so far (bursts, or a mixer not drained in time).
    pub fn dropped(&self, channel: Channel) -> u64 {
        self.tracks[channel.index()].dropped
    }

    fn cursor(&self, channel: Channel) -> u64 {
        self.drained + self.tracks[channel.index()].pending.len() as u64
    }

    /// Hands out `frames` frames; a channel with fewer pending samples gives silence, which
    /// moves its cursor along with the output.
    fn emit(&mut self, frames: u64, out: &mut Vec<i16>) {
        out.reserve(frames as usize * 2);
        let [caller, plateau] = &mut self.tracks;
        for _ in 0..frames {
            out.push(caller.pending.pop_front().unwrap_or(0));
            out.push(plateau.pending.pop_front().unwrap_or(0));
        }
        self.drained += frames;
    }
}

fn room(track: &Track) -> usize {
    MAX_BUFFERED - track.pending.len()
}
