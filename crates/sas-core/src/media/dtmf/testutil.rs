//! Test signals for the in-band detector (DTMF pairs, single tones, sweeps, noise, G.711),
//! a probe of the power at one frequency, and RTP packets to carry them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::goertzel::{SAMPLE_RATE, coefficient, tone_power};
use crate::media::g711::G711Law;

/// Samples in `ms` milliseconds at 8 kHz.
pub fn samples(ms: u32) -> usize {
    (ms * SAMPLE_RATE / 1000) as usize
}

/// Row and column frequencies of a key.
pub fn freqs(digit: char) -> (f32, f32) {
    let row = match digit {
        '1' | '2' | '3' | 'A' => 697.0,
        '4' | '5' | '6' | 'B' => 770.0,
        '7' | '8' | '9' | 'C' => 852.0,
        _ => 941.0,
    };
    let col = match digit {
        '1' | '4' | '7' | '*' => 1209.0,
        '2' | '5' | '8' | '0' => 1336.0,
        '3' | '6' | '9' | '#' => 1477.0,
        _ => 1633.0,
    };
    (row, col)
}

/// Sum of sines, each `(frequency, amplitude)`, for `ms` milliseconds.
pub fn tones(parts: &[(f32, f32)], ms: u32) -> Vec<f32> {
    (0..samples(ms))
        .map(|n| {
            let t = n as f32 / SAMPLE_RATE as f32;
            parts
                .iter()
                .map(|&(f, a)| a * (2.0 * std::f32::consts::PI * f * t).sin())
                .sum()
        })
        .collect()
}

/// A key's dual tone, both tones at `amplitude`.
pub fn dtmf(digit: char, amplitude: f32, ms: u32) -> Vec<f32> {
    let (row, col) = freqs(digit);
    tones(&[(row, amplitude), (col, amplitude)], ms)
}

pub fn silence(ms: u32) -> Vec<f32> {
    vec![0.0; samples(ms)]
}

/// Linear chirp from `from` to `to` Hz.
pub fn sweep(from: f32, to: f32, amplitude: f32, ms: u32) -> Vec<f32> {
    let duration = ms as f32 / 1000.0;
    (0..samples(ms))
        .map(|n| {
            let t = n as f32 / SAMPLE_RATE as f32;
            let phase = from * t + (to - from) * t * t / (2.0 * duration);
            amplitude * (2.0 * std::f32::consts::PI * phase).sin()
        })
        .collect()
}

/// Adds uniform white noise of the given RMS, reproducibly.
pub fn add_noise(signal: &mut [f32], rms: f32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Uniform on [-w, w] has RMS w/√3.
    let w = rms * 3f32.sqrt();
    for x in signal {
        *x += rng.gen_range(-w..=w);
    }
}

/// Rounds to 16-bit PCM, clipping.
pub fn pcm(signal: &[f32]) -> Vec<i16> {
    signal
        .iter()
        .map(|&x| x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16)
        .collect()
}

pub fn g711(signal: &[f32], law: G711Law) -> Vec<u8> {
    pcm(signal).into_iter().map(|s| law.encode(s)).collect()
}

/// Mean power of `samples` at `freq` (Goertzel; a sine of amplitude A gives A²/2).
pub fn power_at(samples: &[i16], freq: f32) -> f32 {
    tone_power(samples, coefficient(freq))
}

/// An RTP packet (version 2, no CSRC, no extension) carrying `payload`.
pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// 20 ms of A-law silence (payload type 8) in an RTP packet.
pub fn pcma_silence(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    rtp(8, false, seq, ts, ssrc, &[0xD5; 160])
}
