//! In-band DTMF detection: dual tones inside 8 kHz audio, found with Goertzel filters.
//!
//! Owns [`InBandDetector`], fed with linear PCM ([`InBandDetector::push`]) or G.711
//! payloads ([`InBandDetector::push_g711`]). Audio is cut into 102-sample blocks (12.75 ms,
//! as in spandsp): short enough that a 40 ms tone always fills two whole blocks, while a
//! 20 ms one never does, which is how Q.24's "accept 40 ms, reject 23 ms" is met with a
//! simple two-hits rule. Each block is tested against the 8 DTMF frequencies with the
//! guards that keep speech and music from dialling: level, dominance within each group,
//! twist, share of the total energy and the column tone's second harmonic.

use super::{DigitEvent, DtmfSource};
use crate::media::g711::G711Law;
use crate::time::EpochMillis;

#[cfg(test)]
mod tests;

/// The only sample rate handled: G.711.
pub const SAMPLE_RATE: u32 = 8_000;

/// Samples per analysis block.
const BLOCK: usize = 102;

const ROW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COL_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Minimum mean power of each tone (A²/2 for amplitude A): A = 400 in 16-bit PCM is
/// about -35 dBm0, below the weakest digit a network is allowed to deliver.
const MIN_TONE_POWER: f32 = 400.0 * 400.0 / 2.0;

/// Power ratios. Lines attenuate high frequencies, so the column (high) tone arriving
/// weaker is the normal twist, allowed 8 dB; a louder column tone only 4 dB.
const NORMAL_TWIST: f32 = 6.31; // 8 dB
const REVERSE_TWIST: f32 = 2.51; // 4 dB
/// The winning tone of each group must beat the others of its group by 8 dB.
const RELATIVE_PEAK: f32 = 6.31;
/// Share of the block's energy the two tones must hold. Speech and music spread their
/// energy over harmonics; pure DTMF holds ~100%, still ~95% at 15 dB SNR. Also rejects
/// blocks only partly covered by a tone, which keeps 20 ms bursts from scoring two hits.
const MIN_TONE_SHARE: f32 = 0.85;
/// The column tone's second harmonic must be 15 dB below it (voice is harmonic-rich).
/// Row harmonics are not tested: with 102-sample blocks 2×697, 2×770 and 2×852 Hz sit
/// within one bin of column tones, so a genuine digit would fail.
const COL_HARMONIC_MARGIN: f32 = 31.6;

/// Consecutive hits that make a digit (2 blocks: ≥ 25.5 ms of whole blocks ⇔ tone ≥ 40 ms).
const HITS_TO_START: u32 = 2;
/// Blocks without the digit that end it (3 blocks ≈ 40 ms of silence or another signal);
/// shorter drop-outs are bridged so a long press stays one digit.
const MISSES_TO_END: u32 = 3;

/// Consecutive blocks showing the same digit.
#[derive(Debug, Clone, Copy)]
struct Run {
    digit: char,
    hits: u32,
    start: u64,
}

/// A confirmed digit, reported when it ends.
#[derive(Debug, Clone, Copy)]
struct Tone {
    digit: char,
    start: u64,
    /// Sample index just past the last block that showed it.
    end: u64,
    misses: u32,
}

/// Detects DTMF tones in one direction of one call's audio (8 kHz, mono).
#[derive(Debug, Clone)]
pub struct InBandDetector {
    row_coefs: [f32; 4],
    col_coefs: [f32; 4],
    harmonic_coefs: [f32; 4],
    /// Samples waiting for a full block.
    pending: Vec<i16>,
    /// Index of the next sample to arrive, counted from the first ever pushed.
    next_sample: u64,
    /// Time of sample `anchor.0`, from the latest push: maps sample indexes to time.
    anchor: (u64, EpochMillis),
    run: Option<Run>,
    tone: Option<Tone>,
    /// Reused buffer for decoded G.711.
    scratch: Vec<i16>,
}

impl Default for InBandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InBandDetector {
    pub fn new() -> Self {
        Self {
            row_coefs: ROW_FREQS.map(coefficient),
            col_coefs: COL_FREQS.map(coefficient),
            harmonic_coefs: COL_FREQS.map(|f| coefficient(2.0 * f)),
            pending: Vec::with_capacity(BLOCK),
            next_sample: 0,
            anchor: (0, 0),
            run: None,
            tone: None,
            scratch: Vec::new(),
        }
    }

    /// Feeds 8 kHz linear samples; `now` is the time of the first one. Returns the digits
    /// that ended within them (usually none).
    pub fn push(&mut self, samples: &[i16], now: EpochMillis) -> Vec<DigitEvent> {
        let mut out = Vec::new();
        self.anchor = (self.next_sample, now);
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.next_sample += take as u64;
            if self.pending.len() == BLOCK {
                let hit = self.classify();
                self.pending.clear();
                self.on_block(hit, self.next_sample - BLOCK as u64, &mut out);
            }
        }
        out
    }

    /// Decodes a PCMU or PCMA payload and feeds it to [`Self::push`].
    pub fn push_g711(&mut self, payload: &[u8], law: G711Law, now: EpochMillis) -> Vec<DigitEvent> {
        let mut pcm = std::mem::take(&mut self.scratch);
        pcm.clear();
        law.decode_into(payload, &mut pcm);
        let out = self.push(&pcm, now);
        self.scratch = pcm;
        out
    }

    /// Reports a digit still sounding when the audio stops (end of call, stream change);
    /// the detector then starts afresh.
    pub fn finish(&mut self) -> Option<DigitEvent> {
        let tone = self.tone.take();
        self.run = None;
        self.pending.clear();
        tone.map(|t| self.digit(&t))
    }

    /// Debounce: a digit starts after [`HITS_TO_START`] identical hits and ends after
    /// [`MISSES_TO_END`] blocks without it.
    fn on_block(&mut self, hit: Option<char>, start: u64, out: &mut Vec<DigitEvent>) {
        let end = start + BLOCK as u64;
        self.run = match (self.run, hit) {
            (Some(run), Some(d)) if run.digit == d => Some(Run {
                hits: run.hits + 1,
                ..run
            }),
            (_, Some(digit)) => Some(Run {
                digit,
                hits: 1,
                start,
            }),
            (_, None) => None,
        };
        if let Some(tone) = self.tone.as_mut() {
            if hit == Some(tone.digit) {
                tone.end = end;
                tone.misses = 0;
            } else {
                tone.misses += 1;
                if tone.misses >= MISSES_TO_END {
                    let ended = *tone;
                    self.tone = None;
                    out.push(self.digit(&ended));
                }
            }
        }
        if self.tone.is_none()
            && let Some(run) = self.run.filter(|r| r.hits >= HITS_TO_START)
        {
            self.tone = Some(Tone {
                digit: run.digit,
                start: run.start,
                end,
                misses: 0,
            });
        }
    }

    /// The digit the pending block shows, if it passes every guard.
    fn classify(&self) -> Option<char> {
        let block = &self.pending[..];
        let total = block
            .iter()
            .map(|&x| f32::from(x) * f32::from(x))
            .sum::<f32>()
            / BLOCK as f32;
        // Too quiet to hold two tones: skip the filters (most blocks of a call).
        if total < 2.0 * MIN_TONE_POWER {
            return None;
        }
        let rows = self.row_coefs.map(|c| tone_power(block, c));
        let cols = self.col_coefs.map(|c| tone_power(block, c));
        let (r, row) = strongest(&rows)?;
        let (c, col) = strongest(&cols)?;
        let checks = row >= MIN_TONE_POWER
            && col >= MIN_TONE_POWER
            && row <= col * NORMAL_TWIST
            && col <= row * REVERSE_TWIST
            && dominates(&rows, r)
            && dominates(&cols, c)
            && row + col >= MIN_TONE_SHARE * total;
        if !checks {
            return None;
        }
        // Computed last: only for blocks that already look like DTMF.
        if tone_power(block, self.harmonic_coefs[c]) * COL_HARMONIC_MARGIN > col {
            return None;
        }
        Some(KEYS[r][c])
    }

    fn digit(&self, tone: &Tone) -> DigitEvent {
        DigitEvent {
            digit: tone.digit,
            at: self.time_of(tone.start),
            duration_ms: u32::try_from(samples_to_ms(tone.end - tone.start)).unwrap_or(u32::MAX),
            source: DtmfSource::InBand,
        }
    }

    fn time_of(&self, sample: u64) -> EpochMillis {
        let (anchor_sample, anchor_ms) = self.anchor;
        if sample >= anchor_sample {
            anchor_ms.saturating_add(samples_to_ms(sample - anchor_sample))
        } else {
            anchor_ms.saturating_sub(samples_to_ms(anchor_sample - sample))
        }
    }
}

fn samples_to_ms(samples: u64) -> u64 {
    samples * 1000 / u64::from(SAMPLE_RATE)
}

/// Goertzel recurrence coefficient 2·cos(2πf/fs), for the exact frequency (no bin rounding).
pub(super) fn coefficient(freq: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * freq / SAMPLE_RATE as f32).cos()
}

/// Mean power of the block at one frequency, scaled so that a sine of amplitude A gives
/// A²/2, comparable with the block's mean power.
pub(super) fn tone_power(block: &[i16], coef: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = f32::from(x) + coef * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let magnitude2 = s1 * s1 + s2 * s2 - coef * s1 * s2;
    let n = block.len() as f32;
    2.0 * magnitude2 / (n * n)
}

/// Index and power of the strongest tone of a group.
fn strongest(powers: &[f32; 4]) -> Option<(usize, f32)> {
    powers
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Whether tone `best` beats every other of its group by [`RELATIVE_PEAK`].
fn dominates(powers: &[f32; 4], best: usize) -> bool {
    powers
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || p * RELATIVE_PEAK <= powers[best])
}
