//! Mixer tests in virtual time (sample positions), writer and recorder tests on temp files.

use super::*;
use sha2::{Digest, Sha256};

/// One 20 ms packet.
const PACKET: usize = 160;

fn frame(value: i16) -> Vec<i16> {
    vec![value; PACKET]
}

/// (caller, plateau) columns of interleaved output.
fn split(out: &[i16]) -> (Vec<i16>, Vec<i16>) {
    let left = out.iter().step_by(2).copied().collect();
    let right = out.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Runs of equal values: `[(value, length)]`.
fn runs(samples: &[i16]) -> Vec<(i16, usize)> {
    let mut runs: Vec<(i16, usize)> = Vec::new();
    for &s in samples {
        match runs.last_mut() {
            Some((v, n)) if *v == s => *n += 1,
            _ => runs.push((s, 1)),
        }
    }
    runs
}

#[test]
fn jitter_within_tolerance_leaves_no_gap() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    // Packets due every 160 samples arrive up to 40 ms late, some early, never in order of
    // their lateness: each must follow the previous one directly.
    let jitter = [0, 320, 80, 0, 300, 10, 0, 200];
    for (i, late) in jitter.iter().enumerate() {
        let at = i as u64 * 160 + late;
        mixer.push(Channel::Caller, at, &frame(1000 + i as i16));
        mixer.push(Channel::Plateau, i as u64 * 160, &frame(-1));
        assert!(!mixer.drain(at, &mut out));
    }
    mixer.finish(&mut out);
    let (caller, plateau) = split(&out);
    let expected: Vec<(i16, usize)> = (0..8).map(|i| (1000 + i as i16, PACKET)).collect();
    assert_eq!(runs(&caller), expected);
    assert_eq!(runs(&plateau), vec![(-1, 8 * PACKET)]);
    assert_eq!(mixer.position(), 8 * PACKET as u64);
}

#[test]
fn a_gap_on_the_wire_becomes_silence() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    mixer.push(Channel::Caller, 0, &frame(7));
    // Nothing for 500 ms (caller muted or VAD), then packets again.
    mixer.push(Channel::Caller, 160 + 4000, &frame(9));
    mixer.finish(&mut out);
    let (caller, _) = split(&out);
    assert_eq!(runs(&caller), vec![(7, PACKET), (0, 4000), (9, PACKET)]);
}

#[test]
fn a_silent_channel_holds_the_other_back_at_most_the_bound() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    // Two seconds of caller audio; the plateau never sends.
    for i in 0..100u64 {
        let at = i * 160;
        mixer.push(Channel::Caller, at, &frame(5));
        mixer.drain(at + 160, &mut out);
        let written = (out.len() / 2) as u64;
        assert!(
            written + MAX_HOLD >= at + 160,
            "at {at}: only {written} frames final"
        );
    }
    let (caller, plateau) = split(&out);
    assert!(caller.iter().all(|&s| s == 5));
    assert!(plateau.iter().all(|&s| s == 0));

    // When the plateau starts, its audio lands at its arrival time, not at the old cursor.
    let now = 100 * 160;
    mixer.push(Channel::Plateau, now, &frame(8));
    mixer.push(Channel::Caller, now, &frame(5));
    mixer.finish(&mut out);
    let (_, plateau) = split(&out);
    assert_eq!(runs(&plateau), vec![(0, now as usize), (8, PACKET)]);
}

#[test]
fn two_silent_channels_still_advance_with_time() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    assert!(!mixer.drain(8000 + MAX_HOLD, &mut out));
    assert_eq!(out.len(), 2 * 8000);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn a_burst_is_cut_at_the_bound() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    // 50 packets (1 s of audio) all arriving at once.
    for _ in 0..50 {
        mixer.push(Channel::Caller, 0, &frame(3));
    }
    assert_eq!(
        mixer.dropped(Channel::Caller),
        50 * PACKET as u64 - MAX_AHEAD
    );
    mixer.finish(&mut out);
    assert_eq!(out.len() as u64, 2 * MAX_AHEAD);
}

#[test]
fn memory_is_bounded_when_never_drained() {
    let mut mixer = StereoMixer::new();
    for i in 0..10_000u64 {
        mixer.push(Channel::Plateau, i * 160, &frame(1));
    }
    // A position far in the future does not allocate the silence up to it.
    mixer.push(Channel::Caller, u64::MAX, &frame(1));
    let mut out = Vec::new();
    mixer.finish(&mut out);
    assert_eq!(out.len(), 2 * MAX_BUFFERED);
    assert!(mixer.dropped(Channel::Plateau) > 0);
    assert_eq!(mixer.dropped(Channel::Caller), PACKET as u64);

    // Draining after a long silence comes out in bounded chunks.
    let mut chunk = Vec::new();
    assert!(mixer.drain(10 * 3600 * 8000, &mut chunk));
    assert_eq!(chunk.len(), 2 * MAX_BUFFERED);
}

#[test]
fn channels_do_not_swap() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    for i in 0..10u64 {
        mixer.push(Channel::Plateau, i * 160, &frame(-200));
        mixer.push(Channel::Caller, i * 160, &frame(100));
        mixer.drain(i * 160, &mut out);
    }
    mixer.finish(&mut out);
    assert_eq!(out.len(), 2 * 10 * PACKET);
    for pair in out.chunks(2) {
        assert_eq!(pair, [100, -200]);
    }
}

#[test]
fn position_counts_eight_samples_per_millisecond() {
    assert_eq!(position(1_000, 1_020), 160);
    assert_eq!(position(1_000, 999), 0);
}

#[test]
fn unsafe_relative_paths_are_refused() {
    let root = Path::new("/data/recordings");
    for bad in ["", "../x.wav", "2026/../../x.wav", "/etc/passwd", "./x.wav"] {
        assert!(
            matches!(resolve(root, bad), Err(RecordingError::UnsafePath(_))),
            "{bad}"
        );
    }
    assert_eq!(
        resolve(root, "2026/11/23/a.wav").unwrap(),
        root.join("2026/11/23/a.wav")
    );
}

#[test]
fn writer_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let rel = "2026/11/23/call.wav";
    let mut writer = RecordingWriter::create(root.path(), rel).unwrap();
    let samples: Vec<i16> = (0..16_000)
        .map(|i| if i % 2 == 0 { 11 } else { -22 })
        .collect();
    writer.write(&samples).unwrap();
    assert!(matches!(
        writer.write(&[1, 2, 3]),
        Err(RecordingError::OddSampleCount(3))
    ));
    let info = writer.finish().unwrap();

    let file = root.path().join(rel);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(info.path, rel);
    assert_eq!(info.duration_ms, 1000);
    assert_eq!(info.bytes, bytes.len() as u64);
    assert_eq!(info.sha256, hex::encode(Sha256::digest(&bytes)));

    let mut reader = hound::WavReader::open(&file).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    assert_eq!(reader.duration(), 8000);
    let read: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(read, samples);

    // A second recording at the same place never overwrites the first.
    assert!(matches!(
        RecordingWriter::create(root.path(), rel),
        Err(RecordingError::Io { .. })
    ));
}

#[test]
fn recorder_decodes_g711_into_the_right_channel() {
    let root = tempfile::tempdir().unwrap();
    let mut recorder = Recorder::create(root.path(), "r.wav").unwrap();
    let loud = G711Law::Alaw.encode(8000);
    for i in 0..50u64 {
        let at = i * 160;
        recorder.push_g711(Channel::Caller, at, &[loud; PACKET], G711Law::Alaw);
        recorder.push(Channel::Plateau, at, &frame(-300));
        recorder.flush(at).unwrap();
    }
    let info = recorder.finish().unwrap();
    assert_eq!(info.duration_ms, 1000);
    let mut reader = hound::WavReader::open(root.path().join("r.wav")).unwrap();
    let read: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let (caller, plateau) = split(&read);
    assert_eq!(caller.len(), 8000);
    assert!(caller.iter().all(|&s| s == G711Law::Alaw.decode(loud)));
    assert!(plateau.iter().all(|&s| s == -300));
}
