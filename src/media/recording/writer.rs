//! The recording file: a two-channel 8 kHz 16-bit PCM WAV (hound), written as frames become
//! final, finished with an fsync and a SHA-256 of the whole file.

use super::{RecordingError, RecordingInfo, resolve};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

/// The recording sample rate: G.711's.
pub const SAMPLE_RATE: u32 = 8_000;
/// Rewrite the WAV header every 10 s of audio, so a crash leaves a readable file up to there.
const CHECKPOINT_FRAMES: u64 = 10 * SAMPLE_RATE as u64;
/// hound counts data bytes in a `u32` (the RIFF limit): stop well before it wraps, ~37 h.
const MAX_FRAMES: u64 = (u32::MAX as u64 - 1024) / 4;

/// Writes one recording under a root directory.
pub struct RecordingWriter {
    wav: hound::WavWriter<BufWriter<File>>,
    file: PathBuf,
    relative: String,
    frames: u64,
    checkpointed: u64,
}

impl RecordingWriter {
    /// Creates `root/relative` (and its parent directories). Refuses a path that would leave
    /// `root`, and never overwrites an existing file.
    pub fn create(root: &Path, relative: &str) -> Result<Self, RecordingError> {
        let file = resolve(root, relative)?;
        let io = |source| RecordingError::Io {
            path: file.clone(),
            source,
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let handle = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .map_err(io)?;
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::new(BufWriter::new(handle), spec).map_err(|source| {
            RecordingError::Wav {
                path: file.clone(),
                source: source.into(),
            }
        })?;
        Ok(Self {
            wav,
            file,
            relative: relative.to_string(),
            frames: 0,
            checkpointed: 0,
        })
    }

    /// Appends interleaved (caller, plateau) samples; an odd trailing sample is refused.
    pub fn write(&mut self, interleaved: &[i16]) -> Result<(), RecordingError> {
        if !interleaved.len().is_multiple_of(2) {
            return Err(RecordingError::OddSampleCount(interleaved.len()));
        }
        let frames = (interleaved.len() / 2) as u64;
        if self.frames + frames > MAX_FRAMES {
            return Err(RecordingError::TooLong(self.file.clone()));
        }
        for &sample in interleaved {
            self.wav
                .write_sample(sample)
                .map_err(|e| self.wav_error(e))?;
        }
        self.frames += frames;
        if self.frames - self.checkpointed >= CHECKPOINT_FRAMES {
            self.wav.flush().map_err(|e| self.wav_error(e))?;
            self.checkpointed = self.frames;
        }
        Ok(())
    }

    /// Finalises the header, syncs the file to disk, and describes it.
    pub fn finish(self) -> Result<RecordingInfo, RecordingError> {
        let Self {
            wav,
            file,
            relative,
            frames,
            ..
        } = self;
        wav.finalize().map_err(|source| RecordingError::Wav {
            path: file.clone(),
            source: source.into(),
        })?;
        seal(&file, relative, frames)
    }

    fn wav_error(&self, source: hound::Error) -> RecordingError {
        RecordingError::Wav {
            path: self.file.clone(),
            source: source.into(),
        }
    }
}

/// Syncs a complete WAV file (and its directory entry) to disk and describes it: `frames`
/// stereo frames, its size and SHA-256.
pub(super) fn seal(
    file: &Path,
    relative: String,
    frames: u64,
) -> Result<RecordingInfo, RecordingError> {
    let io = |source| RecordingError::Io {
        path: file.to_path_buf(),
        source,
    };
    let mut handle = File::open(file).map_err(io)?;
    handle.sync_all().map_err(io)?;
    // The new directory entry must survive a crash too.
    if let Some(dir) = file.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = handle.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(RecordingInfo {
        path: relative,
        duration_ms: frames * 1000 / SAMPLE_RATE as u64,
        bytes,
        sha256: hex::encode(hasher.finalize()),
        unplaced_ms: 0,
    })
}
