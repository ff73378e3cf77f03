//! What the media logic knows of a call's recording: the two channels, the sans-IO
//! [`StereoMixer`] that lines the two directions up ([`jitter`]: a small jitter buffer per
//! direction), the finished file's description ([`RecordingInfo`], kept in the call
//! record) and the failures. Writing the WAV file is the app's `media::recording`.

pub mod jitter;
mod mixer;

pub use jitter::{JITTER_DEPTH, MIN_CAPACITY, RtpMeta, TrackStats};
pub use mixer::{MAX_CHUNK, StereoMixer};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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
    /// The WAV channel: 0 for the caller, 1 for the plateau.
    pub fn index(self) -> usize {
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
    /// SHA-256, lower-case hex, of what [`RecordingInfo::hashed`] says.
    pub sha256: String,
    /// What `sha256` covers: the whole file (records written before hashes were computed
    /// while writing, and salvaged files) or the audio after the canonical 44-byte header.
    /// Left out when it is the whole file: such records read and write back as before.
    #[serde(default, skip_serializing_if = "HashScope::is_file")]
    pub hashed: HashScope,
    /// Audio that reached the router but is not in the file (it came more than the jitter
    /// buffer's depth late), ms, both channels together. 0 in records written before.
    #[serde(default)]
    pub unplaced_ms: u64,
}

/// What a recording's SHA-256 covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashScope {
    /// Every byte of the file (`sha256sum file.wav`).
    #[default]
    File,
    /// The audio: every byte after the canonical header (58 bytes for the G.711 recordings,
    /// `tail -c +59 file.wav | sha256sum`; 44 for the 16-bit PCM ones made before), the
    /// header being the one its length implies. Computed while writing: the header is only
    /// final once the call ends.
    Audio,
}

impl HashScope {
    /// The whole file: records written before the scope existed.
    pub fn is_file(&self) -> bool {
        *self == HashScope::File
    }
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
        /// Why (the WAV encoder's error, boxed: the encoder is the app's).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Interleaved audio must hold whole (caller, plateau) frames.
    #[error("{0} interleaved bytes is not a whole number of stereo frames")]
    OddSampleCount(usize),
    /// The file is not a WAV whose header can be repaired.
    #[error("recording {0} is not a WAV file that can be repaired")]
    NotWav(PathBuf),
    /// The WAV format cannot hold more (about 74 hours of G.711).
    #[error("recording {0} reached the WAV size limit")]
    TooLong(PathBuf),
}
