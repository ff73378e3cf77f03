//! Call recording: one two-channel WAV per call, from answer to end. Channel 0 is the
//! caller, channel 1 the plateau side (whatever the caller hears: prompts or the seat).
//!
//! [`StereoMixer`] (sans-IO) aligns the two channels on one 8 kHz clock from arrival times;
//! [`RecordingWriter`] writes the WAV and describes it ([`RecordingInfo`]: path, duration,
//! size, SHA-256) for the call record; [`Recorder`] is both, fed once per RTP packet by the
//! call's media session. Where files go and who reads them is `store::recordings`.

mod mixer;
mod writer;

pub use mixer::{JITTER_TOLERANCE, MAX_AHEAD, MAX_BUFFERED, MAX_HOLD, StereoMixer};
pub use writer::{RecordingWriter, SAMPLE_RATE};

use crate::media::g711::G711Law;
use crate::media::session::RecordSink;
use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// Which side of the call a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The caller (trunk leg): left, channel 0.
    Caller,
    /// What the caller hears (prompts, then the seat): right, channel 1.
    Plateau,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Caller => 0,
            Channel::Plateau => 1,
        }
    }
}

/// A finished recording, as kept in the call record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// Relative to the recordings root, e.g. `2026/11/23/20261123T071502.123Z-0001.wav`.
    pub path: String,
    /// Length of the audio, ms.
    pub duration_ms: u64,
    /// Size of the file, bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file, lower-case hex.
    pub sha256: String,
}

/// Recording failures.
#[derive(Debug, Error)]
pub enum RecordingError {
    /// The relative path is absolute or climbs out of the recordings root.
    #[error("recording path {0:?} would leave the recordings directory")]
    UnsafePath(String),
    /// The file or its directory could not be created, written or read back.
    #[error("recording {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The WAV encoder failed (an IO error underneath, usually).
    #[error("recording {path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// Why.
        source: hound::Error,
    },
    /// Interleaved audio must hold whole (caller, plateau) frames.
    #[error("{0} interleaved samples is not a whole number of stereo frames")]
    OddSampleCount(usize),
    /// The WAV format cannot hold more (about 37 hours).
    #[error("recording {0} reached the WAV size limit")]
    TooLong(PathBuf),
}

/// `root/relative`, provided `relative` only names plain components below `root`.
pub fn resolve(root: &Path, relative: &str) -> Result<PathBuf, RecordingError> {
    let rel = Path::new(relative);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if relative.is_empty() || !plain {
        return Err(RecordingError::UnsafePath(relative.to_string()));
    }
    Ok(root.join(rel))
}

/// Sample position of `now` in a recording that started at `start` (8 samples per ms).
pub fn position(start: EpochMillis, now: EpochMillis) -> u64 {
    now.saturating_sub(start)
        .saturating_mul(SAMPLE_RATE as u64 / 1000)
}

/// One call's recording: mixer and file together. Call [`Recorder::flush`] often (after each
/// push, with the packet's `at`, is right): the mixer keeps at most [`MAX_BUFFERED`] samples
/// per channel and drops what comes beyond.
pub struct Recorder {
    mixer: StereoMixer,
    writer: RecordingWriter,
    /// Reused buffers: decoded G.711 and drained frames.
    decoded: Vec<i16>,
    frames: Vec<i16>,
}

impl Recorder {
    /// Starts a recording at `root/relative` (see [`RecordingWriter::create`]).
    pub fn create(root: &Path, relative: &str) -> Result<Self, RecordingError> {
        Ok(Self {
            mixer: StereoMixer::new(),
            writer: RecordingWriter::create(root, relative)?,
            decoded: Vec::new(),
            frames: Vec::new(),
        })
    }

    /// Adds linear samples of `channel` that arrived at sample position `at`.
    pub fn push(&mut self, channel: Channel, at: u64, samples: &[i16]) {
        self.mixer.push(channel, at, samples);
    }

    /// Adds a G.711 RTP payload of `channel` that arrived at sample position `at`.
    pub fn push_g711(&mut self, channel: Channel, at: u64, payload: &[u8], law: G711Law) {
        self.decoded.clear();
        self.decoded.extend(payload.iter().map(|&b| law.decode(b)));
        self.mixer.push(channel, at, &self.decoded);
    }

    /// Writes the frames final at sample position `now`.
    pub fn flush(&mut self, now: u64) -> Result<(), RecordingError> {
        loop {
            self.frames.clear();
            let more = self.mixer.drain(now, &mut self.frames);
            self.writer.write(&self.frames)?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Writes everything still buffered and closes the file (synced, hashed).
    pub fn finish(mut self) -> Result<RecordingInfo, RecordingError> {
        self.frames.clear();
        self.mixer.finish(&mut self.frames);
        self.writer.write(&self.frames)?;
        self.writer.finish()
    }

    /// Samples of `channel` the mixer had to drop (bursts, or `flush` not called in time).
    pub fn dropped(&self, channel: Channel) -> u64 {
        self.mixer.dropped(channel)
    }
}

/// A [`Recorder`] fed by a call's media session. The first write error stops the
/// recording (logged once, the call goes on); [`RecordSink::finish`] reports it.
pub struct CallRecorder {
    recorder: Recorder,
    failed: Option<RecordingError>,
}

impl CallRecorder {
    pub fn new(recorder: Recorder) -> Self {
        Self {
            recorder,
            failed: None,
        }
    }

    fn tap(&mut self, channel: Channel, at: u64, payload: &[u8], law: G711Law) {
        if self.failed.is_some() {
            return;
        }
        self.recorder.push_g711(channel, at, payload, law);
        if let Err(e) = self.recorder.flush(at) {
            tracing::error!(error = %e, "recording stopped");
            self.failed = Some(e);
        }
    }
}

impl RecordSink for CallRecorder {
    fn caller_audio(&mut self, at: u64, payload: &[u8], law: G711Law) {
        self.tap(Channel::Caller, at, payload, law);
    }

    fn plateau_audio(&mut self, at: u64, payload: &[u8], law: G711Law) {
        self.tap(Channel::Plateau, at, payload, law);
    }

    fn finish(self: Box<Self>) -> Result<RecordingInfo, RecordingError> {
        match self.failed {
            Some(e) => Err(e),
            None => self.recorder.finish(),
        }
    }
}

#[cfg(test)]
mod tests;
