//! Tests: In-band detection on synthesized tones, with noise and false-positive guards.
use super::*;
use crate::media::dtmf::testutil::{add_noise, dtmf, g711, pcm, samples, silence, sweep, tones};

const T0: EpochMillis = 1_700_000_000_000;
/// Per-tone amplitude of a typical phone digit (about -11 dBm0).
const LOUD: f32 = 6000.0;

/// Feeds `signal` in 20 ms packets, as RTP would bring it, then ends the stream.
fn detect(signal: &[f32]) -> Vec<DigitEvent> {
    detect_in_chunks(signal, samples(20))
}

fn detect_in_chunks(signal: &[f32], chunk: usize) -> Vec<DigitEvent> {
    let mut detector = InBandDetector::new();
    let mut out = Vec::new();
    for (i, part) in pcm(signal).chunks(chunk).enumerate() {
        let now = T0 + samples_to_ms((i * chunk) as u64);
        out.extend(detector.push(part, now));
    }
    out.extend(detector.finish());
    out
}

fn digits(events: &[DigitEvent]) -> String {
    events.iter().map(|e| e.digit).collect()
}

/// Keys separated by gaps, with silence around: `tone_ms` on, `gap_ms` off.
fn sequence(keys: &str, amplitude: f32, tone_ms: u32, gap_ms: u32) -> Vec<f32> {
    let mut signal = silence(gap_ms);
    for key in keys.chars() {
        signal.extend(dtmf(key, amplitude, tone_ms));
        signal.extend(silence(gap_ms));
    }
    signal
}

#[test]
fn every_key_is_detected_once() {
    for key in "0123456789*#ABCD".chars() {
        let events = detect(&sequence(&key.to_string(), LOUD, 60, 100));
        assert_eq!(digits(&events), key.to_string(), "key {key}");
        let event = events[0];
        assert_eq!(event.source, DtmfSource::InBand);
        // Block granularity is 12.75 ms: start and duration within one block or so.
        assert!(
            event.at.abs_diff(T0 + 100) <= 15,
            "{key}: at {}",
            event.at - T0
        );
        assert!(
            event.duration_ms.abs_diff(60) <= 15,
            "{key}: {} ms",
            event.duration_ms
        );
    }
}

#[test]
fn sequence_15_hash_in_order_exactly_once() {
    let events = detect(&sequence("15#", LOUD, 60, 60));
    assert_eq!(digits(&events), "15#");
    assert!(events.windows(2).all(|w| w[0].at < w[1].at));
}

#[test]
fn chunking_does_not_matter() {
    let signal = sequence("15#", LOUD, 60, 60);
    for chunk in [1, 37, 102, 160, 1000] {
        assert_eq!(
            digits(&detect_in_chunks(&signal, chunk)),
            "15#",
            "chunk {chunk}"
        );
    }
}

#[test]
fn long_press_is_one_digit_and_short_dropout_is_bridged() {
    let mut signal = silence(50);
    signal.extend(dtmf('5', LOUD, 1000));
    signal.extend(silence(10));
    signal.extend(dtmf('5', LOUD, 300));
    signal.extend(silence(100));
    let events = detect(&signal);
    assert_eq!(digits(&events), "5");
    assert!(
        events[0].duration_ms.abs_diff(1310) <= 15,
        "{}",
        events[0].duration_ms
    );
}

#[test]
fn same_key_twice_with_a_pause_is_two_digits() {
    assert_eq!(digits(&detect(&sequence("55", LOUD, 60, 60))), "55");
    assert_eq!(digits(&detect(&sequence("11", LOUD, 40, 40))), "11");
}

#[test]
fn detected_in_white_noise_at_15_and_20_db_snr() {
    for snr_db in [15.0f32, 20.0] {
        // Signal power of two tones is 2 × A²/2 = A².
        let noise_rms = LOUD / 10f32.powf(snr_db / 20.0);
        for seed in 0..5 {
            let mut signal = sequence("15#", LOUD, 60, 60);
            add_noise(&mut signal, noise_rms, seed);
            assert_eq!(digits(&detect(&signal)), "15#", "{snr_db} dB, seed {seed}");
        }
    }
}

#[test]
fn too_short_tone_is_rejected_whatever_its_alignment() {
    for offset in (0..BLOCK as u32).step_by(7) {
        let mut signal = vec![0.0; offset as usize];
        signal.extend(sequence("8", LOUD, 20, 60));
        assert!(detect(&signal).is_empty(), "offset {offset}");
    }
}

#[test]
fn forty_ms_tone_is_accepted_whatever_its_alignment() {
    for offset in (0..BLOCK as u32).step_by(7) {
        let mut signal = vec![0.0; offset as usize];
        signal.extend(sequence("8", LOUD, 40, 60));
        assert_eq!(digits(&detect(&signal)), "8", "offset {offset}");
    }
}

#[test]
fn single_tone_gives_nothing() {
    let mut signal = silence(50);
    signal.extend(tones(&[(1000.0, 10_000.0)], 1000));
    assert!(detect(&signal).is_empty());
    // Even a lone DTMF frequency.
    assert!(detect(&tones(&[(697.0, 10_000.0)], 500)).is_empty());
}

#[test]
fn sweep_gives_nothing() {
    assert!(detect(&sweep(300.0, 3400.0, 10_000.0, 2000)).is_empty());
    assert!(detect(&sweep(3400.0, 300.0, 10_000.0, 500)).is_empty());
}

#[test]
fn pure_noise_gives_nothing() {
    for seed in 0..5 {
        let mut signal = silence(2000);
        add_noise(&mut signal, 4000.0, seed);
        assert!(detect(&signal).is_empty(), "seed {seed}");
    }
}

#[test]
fn voiced_speech_like_harmonics_give_nothing() {
    // f0 = 174.25 Hz: harmonics 4 and 7 land on 697 and ~1220 Hz, a '1' look-alike.
    let f0 = 697.0 / 4.0;
    let parts: Vec<(f32, f32)> = (1..=20)
        .map(|h| (f0 * h as f32, 8000.0 / h as f32))
        .filter(|&(f, _)| f < 3900.0)
        .collect();
    assert!(detect(&tones(&parts, 1000)).is_empty());
}

#[test]
fn twist_limits() {
    let (row, col) = (852.0, 1477.0); // '9'
    let at = |row_db: f32, col_db: f32| {
        let mut signal = silence(50);
        let gain = |db: f32| LOUD * 10f32.powf(db / 20.0);
        signal.extend(tones(&[(row, gain(row_db)), (col, gain(col_db))], 80));
        signal.extend(silence(80));
        digits(&detect(&signal))
    };
    assert_eq!(at(0.0, -6.0), "9", "normal twist 6 dB");
    assert_eq!(at(0.0, -10.0), "", "normal twist 10 dB");
    assert_eq!(at(-3.0, 0.0), "9", "reverse twist 3 dB");
    assert_eq!(at(-6.0, 0.0), "", "reverse twist 6 dB");
}

#[test]
fn level_threshold() {
    // About -30 dBm0 per tone: still a digit.
    assert_eq!(digits(&detect(&sequence("0", 700.0, 60, 60))), "0");
    assert!(detect(&sequence("0", 150.0, 60, 60)).is_empty());
}

#[test]
fn g711_mu_law_and_a_law() {
    let mut signal = sequence("15#", LOUD, 60, 60);
    add_noise(&mut signal, 300.0, 7);
    for law in [G711Law::Ulaw, G711Law::Alaw] {
        let mut detector = InBandDetector::new();
        let mut events = Vec::new();
        for (i, packet) in g711(&signal, law).chunks(160).enumerate() {
            events.extend(detector.push_g711(packet, law, T0 + 20 * i as u64));
        }
        events.extend(detector.finish());
        assert_eq!(digits(&events), "15#", "{law:?}");
    }
    // Quiet digits survive companding too.
    let quiet = sequence("D", 800.0, 60, 60);
    let mut detector = InBandDetector::new();
    let mut events = detector.push_g711(&g711(&quiet, G711Law::Ulaw), G711Law::Ulaw, T0);
    events.extend(detector.finish());
    assert_eq!(digits(&events), "D");
}

#[test]
fn finish_reports_a_digit_cut_off_by_the_end_of_audio() {
    let mut detector = InBandDetector::new();
    let mut signal = silence(20);
    signal.extend(dtmf('#', LOUD, 100));
    assert!(detector.push(&pcm(&signal), T0).is_empty());
    let event = detector.finish().expect("digit in progress");
    assert_eq!(event.digit, '#');
    assert!(detector.finish().is_none());
}
