//! Announcement prompts: WAV files loaded once at start-up, pre-encoded in both G.711 laws
//! and cut into 20 ms RTP frames.
//!
//! A caller to the 15 must hear "Vous êtes bien au SAMU…" at once, so nothing is decoded or
//! transcoded on the call path: [`PromptSet::load_dir`] reads `dialplans/prompts/*.wav`,
//! keeps µ-law and A-law copies of each, and reports bad files without stopping the router.
//! [`Looping`] plays a prompt endlessly (hold music).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use audio_codec_algorithms::{convert_alaw_to_ulaw, convert_ulaw_to_alaw};
use thiserror::Error;

pub use crate::media::g711::G711Law;

mod wav;

#[cfg(test)]
mod tests;

/// G.711 samples per second; one byte per sample.
pub const SAMPLE_RATE: u32 = 8000;
/// Bytes (= samples) in one 20 ms RTP frame, the ptime every G.711 endpoint accepts.
pub const FRAME_BYTES: usize = 160;
/// Duration of one frame.
pub const FRAME_MS: u32 = 20;
/// Length of the silence played in place of a prompt that has no playable file.
pub const STAND_IN_MS: u32 = 1_000;
/// Refuse bigger files: a prompt is a short message, and this bounds start-up memory
/// (16 MiB is over 15 minutes of 16-bit audio).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Sentence appended to format complaints so an admin knows how to fix the file.
const CONVERT_HINT: &str = "prompts must be WAV 8000 Hz mono, 16-bit PCM or G.711 \
     (convert with: sox in.wav -r 8000 -c 1 -b 16 out.wav)";

/// One 20 ms frame of silence in `law`.
pub const fn silence_frame(law: G711Law) -> [u8; FRAME_BYTES] {
    [law.silence_byte(); FRAME_BYTES]
}

/// Why a prompt file was rejected. Each message is a sentence for the administrator.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Reason {
    #[error("cannot be read ({0})")]
    Io(#[source] std::io::Error),
    #[error(
        "file is {bytes} bytes, larger than the {MAX_FILE_BYTES}-byte limit; prompts are short messages"
    )]
    TooLarge { bytes: u64 },
    #[error("file name is not valid UTF-8; rename it (the name without .wav is the prompt name)")]
    BadName,
    #[error("file is empty; expected a WAV recording ({CONVERT_HINT})")]
    Empty,
    #[error("not a WAV file (no RIFF/WAVE header); {CONVERT_HINT}")]
    NotWav,
    #[error("WAV file has no 'fmt ' chunk before its audio (file damaged?); {CONVERT_HINT}")]
    MissingFmt,
    #[error("WAV 'fmt ' chunk is malformed (file damaged?); {CONVERT_HINT}")]
    BadFmt,
    #[error("WAV file has no 'data' chunk (no audio); {CONVERT_HINT}")]
    MissingData,
    #[error(
        "WAV file is truncated: chunk '{}' declares {declared} bytes but only {available} remain \
         (incomplete copy or upload?)",
        String::from_utf8_lossy(chunk)
    )]
    Truncated {
        chunk: [u8; 4],
        declared: u32,
        available: usize,
    },
    #[error("audio encoding is {} (WAV format tag {tag}); {CONVERT_HINT}", encoding_name(*tag))]
    Encoding { tag: u16 },
    #[error("sample rate is {hz} Hz; {CONVERT_HINT}")]
    SampleRate { hz: u32 },
    #[error("audio has {channels} channels; {CONVERT_HINT}")]
    Channels { channels: u16 },
    #[error("samples are {bits}-bit; {CONVERT_HINT}")]
    BitsPerSample { bits: u16 },
    #[error("16-bit audio data has an odd length ({bytes} bytes; file damaged?)")]
    OddPcmLength { bytes: usize },
    #[error("WAV file contains no audio samples")]
    NoAudio,
}

fn encoding_name(tag: u16) -> &'static str {
    match tag {
        2 => "MS ADPCM",
        3 => "32-bit float",
        0x11 => "IMA ADPCM",
        0x31 => "GSM 6.10",
        0x55 => "MP3",
        _ => "not supported",
    }
}

/// A rejected prompt file (or prompt directory) and the reason.
#[derive(Debug, Error)]
#[error("{}: {reason}", path.display())]
pub struct PromptError {
    pub path: PathBuf,
    #[source]
    pub reason: Reason,
}

/// One announcement, pre-encoded once in both laws.
///
/// `pcmu` and `pcma` always hold a whole number of frames: the audio is padded with the
/// law's silence byte at load time so [`Prompt::frames`] can lend slices without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub name: String,
    pub pcmu: Vec<u8>,
    pub pcma: Vec<u8>,
    /// Length of the real audio (before padding), rounded up to the millisecond.
    pub duration_ms: u32,
}

/// Pads `bytes` with `fill` up to a multiple of [`FRAME_BYTES`].
fn pad_to_frames(mut bytes: Vec<u8>, fill: u8) -> Vec<u8> {
    let len = bytes.len().div_ceil(FRAME_BYTES) * FRAME_BYTES;
    bytes.resize(len, fill);
    bytes
}

fn duration_ms(samples: usize) -> u32 {
    // ceil(samples / 8): keeps frame count == ceil(duration_ms / 20).
    let per_ms = (SAMPLE_RATE / 1000) as usize;
    u32::try_from(samples.div_ceil(per_ms)).unwrap_or(u32::MAX)
}

impl Prompt {
    /// Builds a prompt from 8 kHz linear samples.
    pub fn from_pcm16(name: impl Into<String>, samples: &[i16]) -> Prompt {
        let pcmu = samples.iter().map(|&s| G711Law::Ulaw.encode(s)).collect();
        let pcma = samples.iter().map(|&s| G711Law::Alaw.encode(s)).collect();
        Prompt::from_laws(name.into(), pcmu, pcma)
    }

    /// [`STAND_IN_MS`] of silence named `name`: what plays in place of a prompt whose file
    /// is missing or bad, so the caller is still answered and the plan goes on.
    pub fn stand_in(name: impl Into<String>) -> Prompt {
        let samples = (SAMPLE_RATE / 1000 * STAND_IN_MS) as usize;
        Prompt::from_pcm16(name, &vec![0; samples])
    }

    /// Builds a prompt from 8 kHz µ-law bytes.
    pub fn from_ulaw(name: impl Into<String>, ulaw: Vec<u8>) -> Prompt {
        // Direct law-to-law tables (G.711 appendix) avoid a lossy round trip via linear.
        let pcma = ulaw.iter().map(|&b| convert_ulaw_to_alaw(b)).collect();
        Prompt::from_laws(name.into(), ulaw, pcma)
    }

    /// Builds a prompt from 8 kHz A-law bytes.
    pub fn from_alaw(name: impl Into<String>, alaw: Vec<u8>) -> Prompt {
        let pcmu = alaw.iter().map(|&b| convert_alaw_to_ulaw(b)).collect();
        Prompt::from_laws(name.into(), pcmu, alaw)
    }

    fn from_laws(name: String, pcmu: Vec<u8>, pcma: Vec<u8>) -> Prompt {
        let duration_ms = duration_ms(pcmu.len());
        Prompt {
            name,
            pcmu: pad_to_frames(pcmu, G711Law::Ulaw.silence_byte()),
            pcma: pad_to_frames(pcma, G711Law::Alaw.silence_byte()),
            duration_ms,
        }
    }

    /// Reads and encodes one WAV file; the prompt is named after the file stem.
    pub fn load_file(path: &Path) -> Result<Prompt, PromptError> {
        let fail = |reason| PromptError {
            path: path.to_path_buf(),
            reason,
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| fail(Reason::BadName))?
            .to_owned();
        let bytes = read_bounded(path).map_err(fail)?;
        Ok(match wav::parse(&bytes).map_err(fail)? {
            wav::Audio::Pcm16(samples) => Prompt::from_pcm16(name, &samples),
            wav::Audio::Ulaw(bytes) => Prompt::from_ulaw(name, bytes),
            wav::Audio::Alaw(bytes) => Prompt::from_alaw(name, bytes),
        })
    }

    /// The encoded audio in `law`, padded to whole frames.
    pub fn encoded(&self, law: G711Law) -> &[u8] {
        match law {
            G711Law::Ulaw => &self.pcmu,
            G711Law::Alaw => &self.pcma,
        }
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.encoded(G711Law::Ulaw).len().div_ceil(FRAME_BYTES)
    }

    /// The prompt as consecutive 20 ms frames of [`FRAME_BYTES`] bytes.
    pub fn frames(&self, law: G711Law) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        // Loaded prompts are padded; chunks() still ends cleanly on a hand-built one.
        self.encoded(law).chunks(FRAME_BYTES)
    }
}

/// Reads a file, refusing ones over [`MAX_FILE_BYTES`] without reading them whole.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Reason> {
    let file = fs::File::open(path).map_err(Reason::Io)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "at the limit" from "over it".
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Reason::Io)?;
    let len = bytes.len() as u64;
    if len > MAX_FILE_BYTES {
        let bytes = fs::metadata(path).map_or(len, |m| m.len());
        return Err(Reason::TooLarge { bytes });
    }
    Ok(bytes)
}

/// All prompts of a directory, by name (file stem).
#[derive(Debug, Clone, Default)]
pub struct PromptSet {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl PromptSet {
    /// Loads every `*.wav` (any case) in `dir`. Bad files are reported and skipped so the
    /// router still starts with the others; an unreadable directory gives an empty set.
    pub fn load_dir(dir: &Path) -> (PromptSet, Vec<PromptError>) {
        let mut set = PromptSet::default();
        let mut errors = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                let path = dir.to_path_buf();
                errors.push(PromptError {
                    path,
                    reason: Reason::Io(e),
                });
                return (set, errors);
            }
        };
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push(entry.path()),
                Err(e) => errors.push(PromptError {
                    path: dir.to_path_buf(),
                    reason: Reason::Io(e),
                }),
            }
        }
        // Sorted so errors (and logs) come in the same order on every start.
        paths.sort();
        for path in paths.into_iter().filter(|p| is_wav(p)) {
            match Prompt::load_file(&path) {
                Ok(prompt) => set.insert(prompt),
                Err(e) => errors.push(e),
            }
        }
        (set, errors)
    }

    /// Adds (or replaces) a prompt under its name.
    pub fn insert(&mut self, prompt: Prompt) {
        self.prompts.insert(prompt.name.clone(), Arc::new(prompt));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Prompt>> {
        self.prompts.get(name)
    }

    /// Prompt names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.prompts.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

fn is_wav(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
}

/// Endless frames of one prompt (hold music); yields silence if the prompt is empty so a
/// caller on hold never gets a stalled stream.
#[derive(Debug, Clone)]
pub struct Looping {
    prompt: Arc<Prompt>,
    law: G711Law,
    next: usize,
}

impl Looping {
    pub fn new(prompt: Arc<Prompt>, law: G711Law) -> Looping {
        Looping {
            prompt,
            law,
            next: 0,
        }
    }

    /// Index of the next frame within the prompt (0 right after a wrap).
    pub fn position(&self) -> usize {
        self.next
    }
}

impl Iterator for Looping {
    type Item = [u8; FRAME_BYTES];

    fn next(&mut self) -> Option<Self::Item> {
        let mut frame = silence_frame(self.law);
        let count = self.prompt.frame_count();
        if count == 0 {
            return Some(frame);
        }
        let bytes = self.prompt.encoded(self.law);
        let start = self.next * FRAME_BYTES;
        if let Some(src) = bytes.get(start..bytes.len().min(start + FRAME_BYTES)) {
            frame[..src.len()].copy_from_slice(src);
        }
        self.next = (self.next + 1) % count;
        Some(frame)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}
