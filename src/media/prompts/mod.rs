//! Announcement prompts: WAV files loaded once at start-up, pre-encoded in both G.711 laws
//! and cut into 20 ms RTP frames.
//!
//! A caller to the 15 must hear "Vous êtes bien au SAMU…" at once, so nothing is decoded or
//! transcoded on the call path: [`load_dir`] reads `dialplans/prompts/*.wav`,
//! keeps µ-law and A-law copies of each, and reports bad files without stopping the router.
//! [`Looping`] plays a prompt endlessly (hold music).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use sas_core::media::prompts::*;

mod wav;

#[cfg(test)]
mod tests;

/// Refuse bigger files: a prompt is a short message, and this bounds start-up memory
/// (16 MiB is over 15 minutes of 16-bit audio).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Sentence appended to format complaints so an admin knows how to fix the file.
const CONVERT_HINT: &str = "prompts must be WAV 8000 Hz mono, 16-bit PCM or G.711 \
     (convert with: sox in.wav -r 8000 -c 1 -b 16 out.wav)";

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
        match load_file(&path) {
            Ok(prompt) => set.insert(prompt),
            Err(e) => errors.push(e),
        }
    }
    (set, errors)
}

fn is_wav(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
}
