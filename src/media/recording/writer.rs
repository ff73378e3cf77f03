//! The recording file: a two-channel 8 kHz 16-bit PCM WAV (the canonical 44-byte header, then
//! little-endian samples), written as frames become final. The SHA-256 of the audio is
//! computed as it is written ([`HashScope::Audio`]): finishing never reads the file back.
//!
//! Samples go straight into the writer's own buffer as little-endian bytes; the buffer is
//! hashed and written out in one piece when full ([`BUFFER_BYTES`]): one `write` and one
//! hash update per quarter second of call, nothing per packet but the conversion.
//!
//! Finishing does not fsync either: the store writer syncs every recording that finished
//! in one group commit together, before it flushes their call records
//! (`store::writer`), so a record on disk always vouches for a recording on disk.

use super::{HashScope, RecordingError, RecordingInfo, resolve};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The recording sample rate: G.711's.
pub const SAMPLE_RATE: u32 = 8_000;
/// Bytes of the WAV header (RIFF, `fmt ` of plain PCM, `data`).
pub const HEADER_BYTES: u64 = 44;
/// Bytes of one stereo frame (two 16-bit samples).
const FRAME_BYTES: u64 = 4;
/// Rewrite the WAV header every 10 s of audio, so a crash leaves a readable file up to there.
const CHECKPOINT_FRAMES: u64 = 10 * SAMPLE_RATE as u64;
/// The write buffer (a quarter second of audio): recordings are many and long, so this is
/// per call memory, against a write syscall per 250 ms of call.
pub const BUFFER_BYTES: usize = 8 * 1024;
/// The RIFF sizes are `u32`: stop well before they wrap, ~37 h.
const MAX_FRAMES: u64 = (u32::MAX as u64 - 1024) / FRAME_BYTES;

/// The header of a recording holding `data_bytes` bytes of audio.
pub fn header(data_bytes: u32) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    let channels = 2u16;
    let bits = 16u16;
    let align = channels * bits / 8;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(SAMPLE_RATE * u32::from(align)).to_le_bytes());
    h[32..34].copy_from_slice(&align.to_le_bytes());
    h[34..36].copy_from_slice(&bits.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Writes one recording under a root directory.
pub struct RecordingWriter {
    out: File,
    file: PathBuf,
    relative: String,
    frames: u64,
    checkpointed: u64,
    audio: Sha256,
    /// What is not written yet: little-endian audio, behind the header at first.
    pending: Vec<u8>,
    /// Bytes at the front of `pending` that are not audio (the header: not hashed).
    unhashed: usize,
    /// Finished: nothing left to patch at drop.
    finished: bool,
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
        let open = || OpenOptions::new().write(true).create_new(true).open(&file);
        // The day's directory exists but for the day's first call: no mkdir per call.
        let out = match (open(), file.parent()) {
            (Err(e), Some(dir)) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                open()
            }
            (opened, _) => opened,
        }
        .map_err(io)?;
        let mut pending = Vec::with_capacity(BUFFER_BYTES);
        pending.extend_from_slice(&header(0));
        Ok(Self {
            out,
            file,
            relative: relative.to_string(),
            frames: 0,
            checkpointed: 0,
            audio: Sha256::new(),
            pending,
            unhashed: HEADER_BYTES as usize,
            finished: false,
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
        let mut rest = interleaved;
        while !rest.is_empty() {
            let room = (BUFFER_BYTES - self.pending.len()) / 2;
            let (now, later) = rest.split_at(room.min(rest.len()));
            let start = self.pending.len();
            self.pending.resize(start + 2 * now.len(), 0);
            for (bytes, sample) in self.pending[start..].chunks_exact_mut(2).zip(now) {
                bytes.copy_from_slice(&sample.to_le_bytes());
            }
            if self.pending.len() == BUFFER_BYTES {
                self.write_pending()?;
            }
            rest = later;
        }
        self.frames += frames;
        if self.frames - self.checkpointed >= CHECKPOINT_FRAMES {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Appends `frames` stereo frames of silence (what came before a recording's first
    /// audio, its file being created then).
    pub fn write_silence(&mut self, frames: u64) -> Result<(), RecordingError> {
        const CHUNK: u64 = 1_024;
        let zeros = [0i16; 2 * CHUNK as usize];
        let mut left = frames;
        while left > 0 {
            let n = left.min(CHUNK);
            self.write(&zeros[..2 * n as usize])?;
            left -= n;
        }
        Ok(())
    }

    /// Bytes of the write buffer (its memory).
    pub fn buffer_bytes(&self) -> usize {
        self.pending.capacity()
    }

    /// Hashes and writes out what is buffered.
    fn write_pending(&mut self) -> Result<(), RecordingError> {
        self.audio.update(&self.pending[self.unhashed..]);
        self.unhashed = 0;
        let written = self.out.write_all(&self.pending);
        self.pending.clear();
        written.map_err(|e| self.io(e))
    }

    /// Writes the header the file's length on disk implies (with `pwrite`: the append
    /// position stays where it is). What is still buffered stays there: flushing it here
    /// would leave every later write straddling pages, which the file system then zeroes
    /// around (5 % of the relay threads' time with 1,000 calls recorded).
    fn checkpoint(&mut self) -> Result<(), RecordingError> {
        let buffered = (self.pending.len() - self.unhashed) as u64 / FRAME_BYTES;
        self.checkpointed = self.frames;
        self.write_header(self.frames - buffered)
    }

    /// Writes out what is buffered, then the header of all the frames.
    fn patch_header(&mut self) -> Result<(), RecordingError> {
        self.write_pending()?;
        self.write_header(self.frames)
    }

    fn write_header(&mut self, frames: u64) -> Result<(), RecordingError> {
        let data = (frames * FRAME_BYTES) as u32;
        self.out
            .write_all_at(&header(data), 0)
            .map_err(|e| self.io(e))
    }

    /// Finalises the header and describes the file (its audio's SHA-256 included). The
    /// file is in the page cache, not yet synced: see the module doc.
    pub fn finish(mut self) -> Result<RecordingInfo, RecordingError> {
        self.patch_header()?;
        self.finished = true;
        let frames = self.frames;
        Ok(RecordingInfo {
            path: std::mem::take(&mut self.relative),
            duration_ms: frames * 1000 / SAMPLE_RATE as u64,
            bytes: HEADER_BYTES + frames * FRAME_BYTES,
            sha256: hex::encode(std::mem::take(&mut self.audio).finalize()),
            hashed: HashScope::Audio,
            unplaced_ms: 0,
        })
    }

    fn io(&self, source: std::io::Error) -> RecordingError {
        RecordingError::Io {
            path: self.file.clone(),
            source,
        }
    }
}

/// A recording dropped unfinished (its call's task gone) still gets the header its length
/// implies, so it plays to its end.
impl Drop for RecordingWriter {
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = self.patch_header()
        {
            tracing::warn!(error = %e, "unfinished recording's header not written");
        }
    }
}

/// Syncs a file and its directory entry to disk (what makes a finished recording survive a
/// power loss).
pub fn sync_file_and_dir(file: &Path) -> std::io::Result<()> {
    File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Syncs a complete WAV file (and its directory entry) to disk and describes it: `frames`
/// stereo frames, its size and the SHA-256 of the whole file (read back: only salvage, after
/// a crash, comes here).
pub(super) fn seal(
    file: &Path,
    relative: String,
    frames: u64,
) -> Result<RecordingInfo, RecordingError> {
    let io = |source| RecordingError::Io {
        path: file.to_path_buf(),
        source,
    };
    sync_file_and_dir(file).map_err(io)?;
    let (sha256, bytes) = digest(File::open(file).map_err(io)?).map_err(io)?;
    Ok(RecordingInfo {
        path: relative,
        duration_ms: frames * 1000 / SAMPLE_RATE as u64,
        bytes,
        sha256,
        hashed: HashScope::File,
        unplaced_ms: 0,
    })
}

/// SHA-256 (hex) and length of everything `from` yields.
fn digest(mut from: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Why a recording does not match its record.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read the recording: {0}")]
    Io(#[from] std::io::Error),
    /// The header is not the one the file's length implies.
    #[error("the WAV header does not match the file's length")]
    Header,
    /// The hash differs.
    #[error("sha256 {found} differs from the call record's {expected}")]
    Hash {
        /// What the file hashes to.
        found: String,
        /// What the record says.
        expected: String,
    },
}

/// Checks the recording read from `from` against its record's hash (of the whole file or of
/// the audio behind the canonical header, as `info.hashed` says); returns the hash.
pub fn verify(mut from: impl Read, info: &RecordingInfo) -> Result<String, VerifyError> {
    let (found, _) = match info.hashed {
        HashScope::File => digest(from)?,
        HashScope::Audio => {
            let mut head = [0u8; HEADER_BYTES as usize];
            from.read_exact(&mut head)?;
            let (found, data) = digest(from)?;
            if u32::try_from(data).map(header) != Ok(head) {
                return Err(VerifyError::Header);
            }
            (found, data)
        }
    };
    if found != info.sha256 {
        return Err(VerifyError::Hash {
            found,
            expected: info.sha256.clone(),
        });
    }
    Ok(found)
}
