//! Announcement prompts as the media logic plays them: pre-encoded in both G.711 laws and
//! cut into 20 ms RTP frames, so nothing is decoded or transcoded on the call path.
//! [`Looping`] plays a prompt endlessly (hold music). Reading the WAV files of
//! `dialplans/prompts/` is the app's (`sas_router::media::prompts::load_dir`).

use std::collections::HashMap;
use std::sync::Arc;

use audio_codec_algorithms::{convert_alaw_to_ulaw, convert_ulaw_to_alaw};

pub use crate::media::g711::G711Law;

/// G.711 samples per second; one byte per sample.
pub const SAMPLE_RATE: u32 = 8000;
/// Bytes (= samples) in one 20 ms RTP frame, the ptime every G.711 endpoint accepts.
pub const FRAME_BYTES: usize = 160;
/// Duration of one frame.
pub const FRAME_MS: u32 = 20;
/// Length of the silence played in place of a prompt that has no playable file.
pub const STAND_IN_MS: u32 = 1_000;
/// One 20 ms frame of silence in `law`.
pub const fn silence_frame(law: G711Law) -> [u8; FRAME_BYTES] {
    [law.silence_byte(); FRAME_BYTES]
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

/// All prompts of a directory, by name (file stem).
#[derive(Debug, Clone, Default)]
pub struct PromptSet {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl PromptSet {
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
