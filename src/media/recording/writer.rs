//! The recording file: a two-channel 8 kHz G.711 WAV in the call's law (format tag 6 for
//! A-law, 7 for µ-law; the canonical 58-byte header: RIFF, an 18-byte `fmt `, `fact`,
//! `data`), then the interleaved bytes as they came, written as frames become final.
//! Recordings made before were 16-bit PCM with the 44-byte header ([`WavFormat::Pcm16`]):
//! [`verify`] and salvage still read them. The SHA-256 of the audio is computed as it is
//! written ([`HashScope::Audio`]): finishing never reads the file back.
//!
//! Frames go straight into the writer's own buffer; the buffer is hashed and written out
//! in one piece when full ([`BUFFER_BYTES`]): one `write` and one hash update per quarter
//! second of call, nothing per packet but a copy. Every write but the last starts on a
//! page boundary (the first carries the header), so the file system never zeroes around
//! one.
//!
//! Finishing does not fsync either: it hands the file over open, and the store writer syncs
//! every recording that finished in one group commit together, before it flushes their call
//! records (`store::writer`), so a record on disk always vouches for a recording on disk. A
//! short call's file (its header never written yet) is written whole in one `write`.

use super::{FinishedRecording, HashScope, RecordingError, RecordingInfo, resolve};
use crate::media::g711::G711Law;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The recording sample rate: G.711's.
pub const SAMPLE_RATE: u32 = 8_000;
/// Rewrite the WAV header every 10 s of audio, so a crash leaves a readable file up to there.
const CHECKPOINT_FRAMES: u64 = 10 * SAMPLE_RATE as u64;
/// The write buffer at its fullest (a quarter second of audio, a page): recordings are many
/// and long, so this is per call memory, against a write syscall per 256 ms of call.
pub const BUFFER_BYTES: usize = 4 * 1024;
/// The write buffer grows by this much at a time, and is given back once written out: a
/// call holds ~2.5 KiB on average, not 4, for the same writes (a few reallocations of at
/// most 3 KiB each quarter second).
pub const BUFFER_STEP: usize = BUFFER_BYTES / 4;
/// Both channels.
const CHANNELS: u16 = 2;

/// What a recording's samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// G.711 bytes in this law, as the call carried them: what the router writes.
    G711(G711Law),
    /// 16-bit little-endian PCM: recordings written before.
    Pcm16,
}

impl WavFormat {
    /// The format the canonical `header` of a recording says (the tag at byte 20), if it
    /// is one of ours.
    pub fn of_header(head: &[u8]) -> Option<Self> {
        match u16::from_le_bytes(head.get(20..22)?.try_into().ok()?) {
            1 => Some(WavFormat::Pcm16),
            6 => Some(WavFormat::G711(G711Law::Alaw)),
            7 => Some(WavFormat::G711(G711Law::Ulaw)),
            _ => None,
        }
    }

    /// Bytes of the canonical header: 44 for PCM, 58 for G.711 (`fmt ` with its `cbSize`,
    /// and the `fact` chunk a non-PCM WAV carries).
    pub fn header_bytes(self) -> u64 {
        match self {
            WavFormat::G711(_) => 58,
            WavFormat::Pcm16 => 44,
        }
    }

    /// Bytes of one stereo frame.
    pub fn frame_bytes(self) -> u64 {
        u64::from(CHANNELS) * u64::from(self.bits()) / 8
    }

    fn bits(self) -> u16 {
        match self {
            WavFormat::G711(_) => 8,
            WavFormat::Pcm16 => 16,
        }
    }

    fn tag(self) -> u16 {
        match self {
            WavFormat::G711(G711Law::Alaw) => 6,
            WavFormat::G711(G711Law::Ulaw) => 7,
            WavFormat::Pcm16 => 1,
        }
    }
}

/// The canonical header of a recording in `format` holding `data_bytes` bytes of audio.
pub fn header(format: WavFormat, data_bytes: u32) -> Vec<u8> {
    let g711 = matches!(format, WavFormat::G711(_));
    let align = CHANNELS * format.bits() / 8;
    let mut h = Vec::with_capacity(format.header_bytes() as usize);
    let size = (format.header_bytes() - 8) as u32;
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data_bytes.saturating_add(size).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&(if g711 { 18u32 } else { 16 }).to_le_bytes());
    h.extend_from_slice(&format.tag().to_le_bytes());
    h.extend_from_slice(&CHANNELS.to_le_bytes());
    h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    h.extend_from_slice(&(SAMPLE_RATE * u32::from(align)).to_le_bytes());
    h.extend_from_slice(&align.to_le_bytes());
    h.extend_from_slice(&format.bits().to_le_bytes());
    if g711 {
        h.extend_from_slice(&0u16.to_le_bytes()); // cbSize: no extension
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(data_bytes / u32::from(align)).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Writes one recording under a root directory.
pub struct RecordingWriter {
    /// `None` once finished (the file handed over): nothing left to patch at drop.
    out: Option<File>,
    file: PathBuf,
    relative: String,
    law: G711Law,
    frames: u64,
    checkpointed: u64,
    audio: Sha256,
    /// What is not written yet: audio, behind the header at first.
    pending: Vec<u8>,
    /// Bytes at the front of `pending` that are not audio (the header, until the first
    /// write: not hashed).
    unhashed: usize,
}

impl RecordingWriter {
    /// Creates `root/relative` (and its parent directories), a recording in `law`. Refuses
    /// a path that would leave `root`, and never overwrites an existing file.
    pub fn create(root: &Path, relative: &str, law: G711Law) -> Result<Self, RecordingError> {
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
        let mut pending = Vec::with_capacity(BUFFER_STEP);
        pending.extend_from_slice(&header(WavFormat::G711(law), 0));
        Ok(Self {
            out: Some(out),
            file,
            relative: relative.to_string(),
            law,
            frames: 0,
            checkpointed: 0,
            audio: Sha256::new(),
            unhashed: pending.len(),
            pending,
        })
    }

    fn format(&self) -> WavFormat {
        WavFormat::G711(self.law)
    }

    /// Appends interleaved (caller, plateau) bytes; an odd trailing byte is refused.
    pub fn write(&mut self, interleaved: &[u8]) -> Result<(), RecordingError> {
        if !interleaved.len().is_multiple_of(2) {
            return Err(RecordingError::OddSampleCount(interleaved.len()));
        }
        let frames = (interleaved.len() / 2) as u64;
        // The RIFF sizes are `u32`: stop well before they wrap (~74 h).
        if (self.frames + frames) * self.format().frame_bytes() > u64::from(u32::MAX - 1024) {
            return Err(RecordingError::TooLong(self.file.clone()));
        }
        let mut rest = interleaved;
        while !rest.is_empty() {
            let room = BUFFER_BYTES - self.pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            let needed = self.pending.len() + now.len();
            if needed > self.pending.capacity() {
                let grown = needed.next_multiple_of(BUFFER_STEP).min(BUFFER_BYTES);
                self.pending.reserve_exact(grown - self.pending.len());
            }
            self.pending.extend_from_slice(now);
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
        let silence = [self.law.silence_byte(); 2 * CHUNK as usize];
        let mut left = frames;
        while left > 0 {
            let n = left.min(CHUNK);
            self.write(&silence[..2 * n as usize])?;
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
        let written = self.out().and_then(|mut out| out.write_all(&self.pending));
        self.pending = Vec::new();
        written.map_err(|e| self.io(e))
    }

    fn out(&self) -> std::io::Result<&File> {
        self.out
            .as_ref()
            .ok_or_else(|| std::io::Error::other("recording already finished"))
    }

    /// Writes the header the file's length on disk implies (with `pwrite`: the append
    /// position stays where it is). What is still buffered stays there: flushing it here
    /// would leave every later write straddling pages, which the file system then zeroes
    /// around (5 % of the relay threads' time with 1,000 calls recorded).
    fn checkpoint(&mut self) -> Result<(), RecordingError> {
        self.checkpointed = self.frames;
        if self.unhashed > 0 {
            // Nothing written yet: no header on disk to bring up to date.
            return Ok(());
        }
        let buffered = self.pending.len() as u64 / self.format().frame_bytes();
        self.write_header(self.frames - buffered)
    }

    /// Writes out what is buffered with the header of all the frames: in the same write
    /// when the header was never written (a short call: one write for the whole file).
    fn patch_header(&mut self) -> Result<(), RecordingError> {
        if self.unhashed > 0 {
            let data = self.data_bytes(self.frames);
            let head = header(self.format(), data);
            self.pending[..head.len()].copy_from_slice(&head);
            return self.write_pending();
        }
        self.write_pending()?;
        self.write_header(self.frames)
    }

    fn data_bytes(&self, frames: u64) -> u32 {
        (frames * self.format().frame_bytes()) as u32
    }

    fn write_header(&mut self, frames: u64) -> Result<(), RecordingError> {
        let head = header(self.format(), self.data_bytes(frames));
        self.out()
            .and_then(|out| out.write_all_at(&head, 0))
            .map_err(|e| self.io(e))
    }

    /// Finalises the header and describes the file (its audio's SHA-256 included), handing
    /// the file over open: it is in the page cache, not yet synced (see the module doc).
    pub fn finish(mut self) -> Result<FinishedRecording, RecordingError> {
        self.patch_header()?;
        let file = self.out.take().map(std::os::fd::OwnedFd::from);
        let (frames, format) = (self.frames, self.format());
        let info = RecordingInfo {
            path: std::mem::take(&mut self.relative),
            duration_ms: frames * 1000 / SAMPLE_RATE as u64,
            bytes: format.header_bytes() + frames * format.frame_bytes(),
            sha256: hex::encode(std::mem::take(&mut self.audio).finalize()),
            hashed: HashScope::Audio,
            unplaced_ms: 0,
        };
        Ok(FinishedRecording { info, file })
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
        if self.out.is_some()
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
    /// The header is not of a format the router writes (G.711, or 16-bit PCM before).
    #[error("the WAV header is not of a recording's format")]
    Format,
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
/// the audio behind the canonical header of its format, as `info.hashed` says); returns
/// the hash.
pub fn verify(mut from: impl Read, info: &RecordingInfo) -> Result<String, VerifyError> {
    let (found, _) = match info.hashed {
        HashScope::File => digest(from)?,
        HashScope::Audio => {
            let mut head = vec![0u8; WavFormat::Pcm16.header_bytes() as usize];
            from.read_exact(&mut head)?;
            let format = WavFormat::of_header(&head).ok_or(VerifyError::Format)?;
            head.resize(format.header_bytes() as usize, 0);
            from.read_exact(&mut head[WavFormat::Pcm16.header_bytes() as usize..])?;
            let (found, data) = digest(from)?;
            if u32::try_from(data).map(|data| header(format, data)) != Ok(head) {
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
