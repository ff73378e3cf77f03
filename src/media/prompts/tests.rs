//! Tests of prompt loading, encoding and framing: the shipped prompts, G.711 accuracy, and
//! every kind of bad file an administrator might drop in the prompt directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};
use hound::{SampleFormat, WavSpec, WavWriter};

use super::*;

/// A scratch directory removed on drop (no tempfile crate in this project).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "sas-router-prompts-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sine(samples: usize, hz: f64, amplitude: f64) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

fn write_wav(path: &Path, channels: u16, rate: u32, bits: u16, frames: usize) {
    let spec = WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: SampleFormat::Int,
    };
    let mut w = WavWriter::create(path, spec).expect("create wav");
    let samples = sine(frames * usize::from(channels), 440.0, 8000.0);
    for s in samples {
        match bits {
            8 => w.write_sample((s >> 8) as i8).expect("write"),
            _ => w.write_sample(s).expect("write"),
        }
    }
    w.finalize().expect("finalize");
}

/// A G.711 WAV as telephony tools write it: 18-byte `fmt ` (tag, cbSize 0), a `fact` chunk,
/// then `data`.
fn g711_wav(tag: u16, data: &[u8]) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&1u16.to_le_bytes()); // channels
    fmt.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    fmt.extend_from_slice(&8000u32.to_le_bytes()); // byte rate
    fmt.extend_from_slice(&1u16.to_le_bytes()); // block align
    fmt.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    fmt.extend_from_slice(&0u16.to_le_bytes()); // cbSize
    let len = |n: usize| u32::try_from(n).expect("small").to_le_bytes();
    let mut body = b"WAVE".to_vec();
    for (id, chunk) in [
        (b"fmt ", fmt),
        (b"fact", len(data.len()).to_vec()),
        (b"data", data.to_vec()),
    ] {
        body.extend_from_slice(id);
        body.extend_from_slice(&len(chunk.len()));
        body.extend_from_slice(&chunk);
        if !chunk.len().is_multiple_of(2) {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&len(body.len()));
    out.extend_from_slice(&body);
    out
}

fn load_err(path: &Path) -> PromptError {
    load_file(path).expect_err("file should be rejected")
}

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans/prompts")
}

const SHIPPED: [&str; 8] = [
    "accueil-116117",
    "accueil-15",
    "attente",
    "fermeture",
    "menu-116117",
    "menu-psy",
    "musique-attente",
    "transfert-3114",
];

#[test]
fn shipped_prompts_all_load_with_plausible_durations() {
    let (set, errors) = load_dir(&shipped_dir());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(set.names(), SHIPPED);
    let accueil = set.get("accueil-15").expect("accueil-15");
    assert!(
        (3_000..=15_000).contains(&accueil.duration_ms),
        "accueil-15 lasts {} ms",
        accueil.duration_ms
    );
    for name in SHIPPED {
        let p = set.get(name).expect("loaded");
        assert!((2_000..=30_000).contains(&p.duration_ms), "{name}");
    }
    // Exactly 20 s, so looping adds no padding silence.
    let music = set.get("musique-attente").expect("music");
    assert_eq!(music.duration_ms, 20_000);
    assert_eq!(music.frame_count(), 1_000);
}

#[test]
fn frame_count_is_ceil_of_duration_over_20ms() {
    let (set, _) = load_dir(&shipped_dir());
    for name in SHIPPED {
        let p = set.get(name).expect("loaded");
        let expected = p.duration_ms.div_ceil(FRAME_MS) as usize;
        for law in [G711Law::Ulaw, G711Law::Alaw] {
            assert_eq!(p.frames(law).count(), expected, "{name}");
            assert!(p.frames(law).all(|f| f.len() == FRAME_BYTES));
        }
    }
    for samples in [1, 159, 160, 161, 8_000, 8_001] {
        let p = Prompt::from_pcm16("x", &vec![1000; samples]);
        let expected = p.duration_ms.div_ceil(FRAME_MS) as usize;
        assert_eq!(p.frames(G711Law::Alaw).count(), expected, "{samples}");
        assert_eq!(expected, samples.div_ceil(FRAME_BYTES), "{samples}");
    }
}

#[test]
fn last_frame_is_padded_with_the_law_silence() {
    let p = Prompt::from_pcm16("x", &vec![1000; 161]);
    for law in [G711Law::Ulaw, G711Law::Alaw] {
        let last = p.frames(law).last().expect("two frames");
        assert_eq!(last.len(), FRAME_BYTES);
        assert_ne!(last[0], law.silence_byte());
        assert!(last[1..].iter().all(|&b| b == law.silence_byte()));
    }
    assert_eq!(silence_frame(G711Law::Ulaw), [0xFF; 160]);
    assert_eq!(silence_frame(G711Law::Alaw), [0xD5; 160]);
    // The silence bytes are what the codec gives for zero.
    assert_eq!(encode_ulaw(0), 0xFF);
    assert_eq!(encode_alaw(0), 0xD5);
}

#[test]
fn g711_encoding_of_a_sine_decodes_back_close() {
    let samples = sine(8_000, 1_000.0, 20_000.0);
    let p = Prompt::from_pcm16("sine", &samples);
    assert_eq!(p.duration_ms, 1_000);
    for (law, decode) in [
        (G711Law::Ulaw, decode_ulaw as fn(u8) -> i16),
        (G711Law::Alaw, decode_alaw),
    ] {
        let bytes = p.encoded(law);
        assert_eq!(bytes.len(), 8_000);
        for (&x, &b) in samples.iter().zip(bytes) {
            // G.711 is logarithmic: error within ~1/32 of the value (half a step),
            // plus one step of the finest segment.
            let err = (i32::from(decode(b)) - i32::from(x)).abs();
            assert!(err <= i32::from(x).abs() / 16 + 16, "{law:?}: {x} -> {err}");
        }
    }
}

#[test]
fn looping_repeats_the_prompt_endlessly() {
    let p = Arc::new(Prompt::from_pcm16("hold", &sine(3 * 160, 440.0, 5_000.0)));
    let frames: Vec<&[u8]> = p.frames(G711Law::Alaw).collect();
    let mut looping = Looping::new(p.clone(), G711Law::Alaw);
    for i in 0..7 {
        assert_eq!(looping.position(), i % 3);
        assert_eq!(&looping.next().expect("endless")[..], frames[i % 3]);
    }
    let empty = Arc::new(Prompt::from_ulaw("empty", Vec::new()));
    let mut silent = Looping::new(empty, G711Law::Ulaw);
    assert_eq!(silent.next(), Some(silence_frame(G711Law::Ulaw)));
}

#[test]
fn ulaw_wav_is_accepted_and_transcoded() {
    let dir = TempDir::new("ulaw");
    let pcm = sine(321, 440.0, 10_000.0);
    let ulaw: Vec<u8> = pcm.iter().map(|&s| encode_ulaw(s)).collect();
    let path = dir.path("ulaw.wav");
    fs::write(&path, g711_wav(7, &ulaw)).expect("write");
    let p = load_file(&path).expect("µ-law WAV loads");
    assert_eq!(p.name, "ulaw");
    assert_eq!(p.duration_ms, 41); // 321 samples = 40.125 ms, rounded up
    assert_eq!(&p.pcmu[..321], &ulaw[..]);
    assert_eq!(p.frame_count(), 3);
    for (&a, &x) in p.pcma.iter().zip(&pcm) {
        let err = (i32::from(decode_alaw(a)) - i32::from(x)).abs();
        assert!(err <= i32::from(x).abs() / 8 + 32, "{x}");
    }
}

#[test]
fn alaw_wav_is_accepted() {
    let dir = TempDir::new("alaw");
    let alaw: Vec<u8> = sine(800, 440.0, 10_000.0)
        .iter()
        .map(|&s| encode_alaw(s))
        .collect();
    let path = dir.path("alaw.wav");
    fs::write(&path, g711_wav(6, &alaw)).expect("write");
    let p = load_file(&path).expect("A-law WAV loads");
    assert_eq!(p.pcma, alaw);
    assert_eq!(p.duration_ms, 100);
}

/// Asserts the error names the file and says `needle`.
fn assert_reason(err: &PromptError, path: &Path, needle: &str) {
    let msg = err.to_string();
    assert_eq!(err.path, path);
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

#[test]
fn bad_formats_are_rejected_with_the_fix() {
    let dir = TempDir::new("formats");
    let stereo = dir.path("stereo.wav");
    write_wav(&stereo, 2, 8_000, 16, 800);
    let err = load_err(&stereo);
    assert!(matches!(err.reason, Reason::Channels { channels: 2 }));
    assert_reason(&err, &stereo, "2 channels");

    let wide = dir.path("accueil-15.wav");
    write_wav(&wide, 1, 16_000, 16, 800);
    let err = load_err(&wide);
    assert!(matches!(err.reason, Reason::SampleRate { hz: 16_000 }));
    assert_reason(&err, &wide, "sample rate is 16000 Hz");
    assert_reason(&err, &wide, "sox in.wav -r 8000 -c 1 -b 16 out.wav");

    let eight = dir.path("eight.wav");
    write_wav(&eight, 1, 8_000, 8, 800);
    let err = load_err(&eight);
    assert!(matches!(err.reason, Reason::BitsPerSample { bits: 8 }));
    assert_reason(&err, &eight, "8-bit");

    let float = dir.path("float.wav");
    let spec = WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 32,
        sample_format: SampleFormat::Float,
    };
    let mut w = WavWriter::create(&float, spec).expect("create");
    w.write_sample(0.5f32).expect("write");
    w.finalize().expect("finalize");
    let err = load_err(&float);
    assert!(matches!(err.reason, Reason::Encoding { tag: 3 }));
    assert_reason(&err, &float, "32-bit float");
}

#[test]
fn damaged_files_are_rejected() {
    let dir = TempDir::new("damaged");
    let truncated = dir.path("truncated.wav");
    write_wav(&truncated, 1, 8_000, 16, 800);
    let bytes = fs::read(&truncated).expect("read");
    fs::write(&truncated, &bytes[..bytes.len() - 500]).expect("write");
    let err = load_err(&truncated);
    assert!(
        matches!(err.reason, Reason::Truncated { chunk, declared: 1600, available: 1100 } if &chunk == b"data"),
        "{err}"
    );
    assert_reason(&err, &truncated, "truncated");

    let random = dir.path("random.wav");
    // Fixed LCG: no clock, same bytes every run.
    let mut x: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    fs::write(&random, noise).expect("write");
    let err = load_err(&random);
    assert!(matches!(err.reason, Reason::NotWav));
    assert_reason(&err, &random, "not a WAV file");

    let empty = dir.path("empty.wav");
    fs::write(&empty, b"").expect("write");
    let err = load_err(&empty);
    assert!(matches!(err.reason, Reason::Empty));
    assert_reason(&err, &empty, "file is empty");

    let header_only = dir.path("header.wav");
    fs::write(&header_only, b"RIFF\x04\0\0\0WAVE").expect("write");
    assert!(matches!(load_err(&header_only).reason, Reason::MissingFmt));

    let no_audio = dir.path("no-audio.wav");
    fs::write(&no_audio, g711_wav(7, &[])).expect("write");
    assert!(matches!(load_err(&no_audio).reason, Reason::NoAudio));

    let missing = dir.path("missing.wav");
    assert!(matches!(load_err(&missing).reason, Reason::Io(_)));
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let dir = TempDir::new("mixed");
    write_wav(&dir.path("good.wav"), 1, 8_000, 16, 8_000);
    write_wav(&dir.path("LOUD.WAV"), 1, 8_000, 16, 80);
    write_wav(&dir.path("bad.wav"), 2, 8_000, 16, 800);
    fs::write(dir.path("notes.txt"), "not a prompt").expect("write");
    let (set, errors) = load_dir(&dir.0);
    assert_eq!(set.names(), ["LOUD", "good"]);
    assert_eq!(set.get("good").expect("good").duration_ms, 1_000);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, dir.path("bad.wav"));
}

#[test]
fn missing_directory_gives_an_empty_set_and_an_error() {
    let dir = TempDir::new("gone");
    let gone = dir.path("nope");
    let (set, errors) = load_dir(&gone);
    assert!(set.is_empty());
    assert_eq!(errors.len(), 1);
    assert_reason(&errors[0], &gone, "cannot be read");
}

#[test]
fn a_stand_in_is_a_second_of_silence_in_both_laws() {
    let p = Prompt::stand_in("accueil");
    assert_eq!(p.name, "accueil");
    assert_eq!(p.frame_count(), (STAND_IN_MS / FRAME_MS) as usize);
    for law in [G711Law::Ulaw, G711Law::Alaw] {
        assert!(p.frames(law).all(|f| f == silence_frame(law).as_slice()));
    }
}
