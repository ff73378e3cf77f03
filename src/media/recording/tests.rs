//! Mixer and jitter-buffer tests in virtual time (sample positions), writer and recorder
//! tests on temp files.

use super::jitter::{CAPACITY, MAX_AHEAD};
use super::*;
use sha2::{Digest, Sha256};

/// One 20 ms packet.
const PACKET: usize = 160;
const SSRC: u32 = 0xCA11;

/// The recordings' law in these tests, and its silence.
const LAW: G711Law = G711Law::Alaw;
const SILENCE: u8 = LAW.silence_byte();

/// A packet of one A-law byte, so where it landed shows in the output.
fn frame(value: u8) -> Vec<u8> {
    vec![value; PACKET]
}

fn meta(ssrc: u32, timestamp: u32) -> RtpMeta {
    RtpMeta { ssrc, timestamp }
}

/// (caller, plateau) columns of interleaved output.
fn split(out: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let left = out.iter().step_by(2).copied().collect();
    let right = out.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// Runs of equal values: `[(value, length)]`.
fn runs(samples: &[u8]) -> Vec<(u8, usize)> {
    let mut runs: Vec<(u8, usize)> = Vec::new();
    for &s in samples {
        match runs.last_mut() {
            Some((v, n)) if *v == s => *n += 1,
            _ => runs.push((s, 1)),
        }
    }
    runs
}

/// Packet `i` (< 150) of a stream: its own byte, so where it landed shows in the output
/// (neither silence nor the jitter buffer's place holder, 0x2A).
fn value(i: u64) -> u8 {
    0x30 + i as u8
}

/// What the other direction sends as packet `i` (< 100): another byte.
fn other(i: u64) -> u8 {
    0xFF - value(i)
}

/// Drives a mixer like the media session: each packet drains what is final first, and a
/// tick every 20 ms; returns the caller column once finished at `end`.
struct Run {
    mixer: StereoMixer,
    out: Vec<u8>,
}

impl Run {
    fn new() -> Run {
        Run {
            mixer: StereoMixer::new(),
            out: Vec::new(),
        }
    }

    fn tick(&mut self, now: u64) {
        while self.mixer.drain(now, &mut self.out) {}
    }

    fn caller(&mut self, at: u64, rtp: RtpMeta, payload: &[u8]) {
        self.tick(at);
        self.mixer.push_g711(Channel::Caller, at, rtp, payload, LAW);
    }

    fn finish(mut self, end: u64) -> (Vec<u8>, Vec<u8>, StereoMixer) {
        while self.mixer.finish(end, &mut self.out) {}
        let (caller, plateau) = split(&self.out);
        (caller, plateau, self.mixer)
    }
}

/// The stream of `count` packets every 20 ms starting at `start`, as `(ts, value)`.
fn in_order(count: u64, first_ts: u32) -> impl Iterator<Item = (u64, u32, u8)> {
    (0..count).map(move |i| (i, first_ts.wrapping_add(i as u32 * 160), value(i)))
}

/// `count` packets, one after the other, as spoken.
fn expected(count: u64) -> Vec<(u8, usize)> {
    (0..count).map(|i| (value(i), PACKET)).collect()
}

#[test]
fn jitter_and_reordering_leave_no_gap() {
    let mut run = Run::new();
    // Packets due every 160 samples arrive up to 40 ms late, two of them swapped.
    let late = [0, 320, 80, 0, 300, 10, 0, 200];
    let mut packets: Vec<(u64, u32, u8)> = in_order(8, 1000).collect();
    packets.swap(5, 6);
    for (k, (i, ts, v)) in packets.into_iter().enumerate() {
        run.caller(k as u64 * 160 + late[i as usize], meta(SSRC, ts), &frame(v));
    }
    let (caller, plateau, _) = run.finish(8 * 160);
    assert_eq!(runs(&caller), expected(8));
    assert_eq!(runs(&plateau), vec![(SILENCE, 8 * PACKET)]);
}

/// The reported loss: the caller's packets are held 300 ms by the network, then the
/// backlog arrives at once. Every packet is placed by its timestamp: no hole, no overlap.
#[test]
fn a_burst_after_a_300_ms_stall_loses_nothing() {
    let mut run = Run::new();
    for (i, ts, v) in in_order(150, 4_000_000_000) {
        let due = i * 160;
        // Packets 50..65 (300 ms) are stuck, and all arrive with packet 65.
        let at = if (50..65).contains(&i) { 65 * 160 } else { due };
        run.caller(at, meta(SSRC, ts), &frame(v));
    }
    let (caller, _, mixer) = run.finish(150 * 160);
    assert_eq!(runs(&caller), expected(150));
    assert_eq!(mixer.stats(Channel::Caller).late, 0);
    assert_eq!(mixer.position(), 150 * 160);
}

#[test]
fn nothing_at_all_is_silence_for_as_long_as_the_call() {
    let mut run = Run::new();
    for tick in 0..18 {
        run.tick(tick * 4000);
    }
    let (caller, plateau, _) = run.finish(9 * 8000);
    assert_eq!(caller.len(), 9 * 8000, "9 s answered, 9 s recorded");
    assert!(caller.iter().chain(&plateau).all(|&s| s == SILENCE));
}

#[test]
fn duplicates_are_written_once_and_a_timestamp_gap_is_silence() {
    let mut run = Run::new();
    run.caller(0, meta(SSRC, 0), &frame(1));
    run.caller(5, meta(SSRC, 0), &frame(9)); // duplicate, different content: first wins
    // VAD: 500 ms without packets, then a talkspurt (marker) whose timestamp says so.
    run.caller(160 + 4000, meta(SSRC, 160 + 4000), &frame(2));
    run.caller(320 + 4000, meta(SSRC, 320 + 4000), &frame(3));
    let (caller, _, mixer) = run.finish(480 + 4000);
    assert_eq!(
        runs(&caller),
        vec![(1, PACKET), (SILENCE, 4000), (2, PACKET), (3, PACKET)]
    );
    assert_eq!(mixer.stats(Channel::Caller).duplicate, PACKET as u64);
}

#[test]
fn timestamps_wrap_around() {
    let mut run = Run::new();
    for (i, ts, v) in in_order(20, u32::MAX - 5 * 160 + 1) {
        run.caller(i * 160, meta(SSRC, ts), &frame(v));
    }
    let (caller, _, _) = run.finish(20 * 160);
    assert_eq!(runs(&caller), expected(20));
}

/// A new SSRC (the phone restarted its stream) and a restart of the numbering under the
/// same SSRC both go on at their arrival, never on top of what was placed.
#[test]
fn a_new_ssrc_or_a_renumbered_stream_goes_on_at_its_arrival() {
    let mut run = Run::new();
    run.caller(0, meta(SSRC, 500), &frame(1));
    run.caller(160, meta(SSRC, 660), &frame(2));
    // New SSRC 100 ms later, numbering far away.
    run.caller(320 + 800, meta(7, 123_456_789), &frame(3));
    run.caller(480 + 800, meta(7, 123_456_789 + 160), &frame(4));
    // Same SSRC, numbering reset (backwards by far more than reordering explains).
    run.caller(640 + 1600, meta(7, 0), &frame(5));
    // Same SSRC, a timestamp from 10 s in the future.
    run.caller(800 + 1600, meta(7, 80_160), &frame(6));
    let (caller, _, mixer) = run.finish(960 + 1600);
    assert_eq!(
        runs(&caller),
        vec![
            (1, PACKET),
            (2, PACKET),
            (SILENCE, 800),
            (3, PACKET),
            (4, PACKET),
            (SILENCE, 800),
            (5, PACKET),
            (6, PACKET),
        ]
    );
    assert_eq!(mixer.stats(Channel::Caller).resyncs, 3);
}

#[test]
fn a_packet_later_than_the_buffer_is_dropped_and_counted() {
    let mut run = Run::new();
    run.caller(0, meta(SSRC, 0), &frame(1));
    run.caller(160, meta(SSRC, 160), &frame(2));
    // The next packet is stuck 1.5 s, longer than the buffer is deep; others go on.
    for i in 3..100u64 {
        run.caller(i * 160, meta(SSRC, i as u32 * 160), &frame(3));
    }
    run.caller(100 * 160, meta(SSRC, 320), &frame(9));
    let (caller, _, mixer) = run.finish(100 * 160);
    assert_eq!(
        runs(&caller),
        vec![(1, 160), (2, 160), (SILENCE, 160), (3, 97 * 160)]
    );
    assert_eq!(mixer.stats(Channel::Caller).late, PACKET as u64);
}

/// A sender whose clock runs slow falls behind ours; once it is late for longer than
/// `LATE_RESYNC`, the stream is placed at its arrival again rather than lost.
#[test]
fn a_slow_sender_clock_is_caught_up_not_lost() {
    let mut run = Run::new();
    let mut ts = 0u32;
    // Its packets are 20 ms of its time but 20.25 ms of ours (1.25 %, far worse than
    // real phones): it is 1 s behind after 4000 packets.
    let count = 10_000u64;
    for i in 0..count {
        run.caller(i * 162, meta(SSRC, ts), &frame(1));
        ts += 160;
    }
    let (caller, _, mixer) = run.finish(count * 162);
    let stats = mixer.stats(Channel::Caller);
    assert!(stats.resyncs >= 1, "{stats:?}");
    assert!(
        stats.placed >= count * PACKET as u64 * 95 / 100,
        "only {stats:?} of {} samples placed",
        count * PACKET as u64
    );
    assert_eq!(caller.len() as u64, count * 162);
}

#[test]
fn memory_is_bounded_when_never_drained() {
    let mut mixer = StereoMixer::new();
    for i in 0..10_000u64 {
        mixer.push_g711(
            Channel::Plateau,
            i * 160,
            meta(1, i as u32 * 160),
            &frame(1),
            LAW,
        );
    }
    // A packet arriving far in the future does not allocate the silence up to it.
    mixer.push_g711(Channel::Caller, u64::MAX / 2, meta(2, 0), &frame(1), LAW);
    let stats = mixer.stats(Channel::Plateau);
    assert_eq!(stats.placed, CAPACITY as u64);
    assert_eq!(stats.overflow, 10_000 * PACKET as u64 - CAPACITY as u64);
    assert_eq!(mixer.stats(Channel::Caller).overflow, PACKET as u64);
    // Draining after a long silence comes out in bounded chunks.
    let mut chunk = Vec::new();
    assert!(mixer.drain(10 * 3600 * 8000, &mut chunk));
    assert_eq!(chunk.len() as u64, 2 * MAX_CHUNK);
}

#[test]
fn audio_after_the_end_is_left_out_and_channels_do_not_swap() {
    let mut run = Run::new();
    for i in 0..10u64 {
        run.tick(i * 160);
        run.mixer.push_g711(
            Channel::Plateau,
            i * 160,
            meta(1, i as u32 * 160),
            &frame(0x8C),
            LAW,
        );
        run.mixer.push_g711(
            Channel::Caller,
            i * 160,
            meta(2, i as u32 * 160),
            &frame(0x64),
            LAW,
        );
    }
    // Up to MAX_AHEAD may be placed ahead of arrival; the end cuts it.
    run.mixer.push_g711(
        Channel::Caller,
        1600,
        meta(2, 1600 + MAX_AHEAD as u32),
        &frame(7),
        LAW,
    );
    let (caller, plateau, _) = run.finish(10 * 160);
    assert_eq!(caller.len(), 10 * PACKET);
    assert!(caller.iter().all(|&s| s == 0x64));
    assert!(plateau.iter().all(|&s| s == 0x8C));
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

/// The canonical header a recording's file must start with, and its audio behind it.
fn read_recording(path: &Path) -> (WavFormat, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let format = WavFormat::of_header(&bytes).expect("a recording's format");
    let (head, audio) = bytes.split_at(format.header_bytes() as usize);
    assert_eq!(head, header(format, audio.len() as u32), "{path:?}");
    (format, audio.to_vec())
}

#[test]
fn writer_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let rel = "2026/11/23/call.wav";
    let mut writer = RecordingWriter::create(root.path(), rel, LAW).unwrap();
    let audio: Vec<u8> = (0..16_000)
        .map(|i| if i % 2 == 0 { 11 } else { 0x9A })
        .collect();
    writer.write(&audio).unwrap();
    assert!(matches!(
        writer.write(&[1, 2, 3]),
        Err(RecordingError::OddSampleCount(3))
    ));
    let info = writer.finish().unwrap().info;

    let file = root.path().join(rel);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(info.path, rel);
    assert_eq!(info.duration_ms, 1000);
    assert_eq!(info.bytes, bytes.len() as u64);
    // Hashed while written: the audio behind the 58-byte header, which its length implies.
    assert_eq!(info.hashed, HashScope::Audio);
    assert_eq!(info.sha256, hex::encode(Sha256::digest(&bytes[58..])));
    assert_eq!(verify(&bytes[..], &info).unwrap(), info.sha256);
    // A-law (tag 6), two channels, 8 kHz, 8 bits, a `fact` chunk with the frame count.
    assert_eq!(
        &bytes[20..36],
        [6, 0, 2, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 8, 0]
    );
    assert_eq!(&bytes[38..50], b"fact\x04\0\0\0\x40\x1f\0\0");
    assert_eq!(read_recording(&file), (WavFormat::G711(LAW), audio));

    // A second recording at the same place never overwrites the first.
    assert!(matches!(
        RecordingWriter::create(root.path(), rel, LAW),
        Err(RecordingError::Io { .. })
    ));
}

/// Each channel's bytes are the packets' as they came, in the law of the first packet; a
/// packet in the other law is converted.
#[test]
fn recorder_keeps_g711_as_it_came_in_the_right_channel() {
    let root = tempfile::tempdir().unwrap();
    for (law, name) in [(G711Law::Alaw, "a.wav"), (G711Law::Ulaw, "u.wav")] {
        let mut recorder = Recorder::create(root.path(), name).unwrap();
        let loud = law.encode(8000);
        let quiet = law.other().encode(-300);
        for i in 0..50u64 {
            let at = i * 160;
            let rtp = meta(SSRC, i as u32 * 160);
            recorder.push_g711(Channel::Caller, at, rtp, &[loud; PACKET], law);
            let other_law = meta(1, at as u32);
            recorder.push_g711(
                Channel::Plateau,
                at,
                other_law,
                &[quiet; PACKET],
                law.other(),
            );
            recorder.flush(at).unwrap();
        }
        let info = recorder.finish(Some(8000)).unwrap().info;
        assert_eq!(info.duration_ms, 1000);
        let (format, audio) = read_recording(&root.path().join(name));
        assert_eq!(format, WavFormat::G711(law));
        let (caller, plateau) = split(&audio);
        assert_eq!(caller, [loud; 8000]);
        assert_eq!(plateau, [law.encode(law.other().decode(quiet)); 8000]);
    }
}

#[test]
fn the_recording_says_how_much_audio_came_too_late() {
    let root = tempfile::tempdir().unwrap();
    let mut recorder = Recorder::create(root.path(), "late.wav").unwrap();
    for i in 0..100u64 {
        recorder.flush(i * 160).unwrap();
        recorder.push_g711(
            Channel::Caller,
            i * 160,
            meta(SSRC, i as u32 * 160),
            &frame(1),
            LAW,
        );
    }
    // Packet 2 again, 1.5 s late: its place was written long ago.
    recorder.flush(100 * 160).unwrap();
    recorder.push_g711(Channel::Caller, 100 * 160, meta(SSRC, 320), &frame(9), LAW);
    let info = recorder.finish(Some(100 * 160)).unwrap().info;
    assert_eq!(info.duration_ms, 2000);
    assert_eq!(info.unplaced_ms, 20);
}

#[test]
fn verify_checks_header_and_audio_of_new_records_and_whole_files_of_old_ones() {
    let root = tempfile::tempdir().unwrap();
    let mut writer = RecordingWriter::create(root.path(), "v.wav", LAW).unwrap();
    // Past a header checkpoint (10 s), so the header is patched twice.
    let audio: Vec<u8> = (0..2 * 88_000).map(|i| (i % 251) as u8).collect();
    writer.write(&audio).unwrap();
    let info = writer.finish().unwrap().info;
    let bytes = std::fs::read(root.path().join("v.wav")).unwrap();
    assert_eq!(verify(&bytes[..], &info).unwrap(), info.sha256);

    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(
        verify(&flipped[..], &info),
        Err(VerifyError::Hash { .. })
    ));
    // Same audio, header lying about its length.
    let mut lying = bytes.clone();
    lying[40] ^= 4;
    assert!(matches!(
        verify(&lying[..], &info),
        Err(VerifyError::Header)
    ));
    // Truncated by a frame: the header no longer matches.
    assert!(matches!(
        verify(&bytes[..bytes.len() - 4], &info),
        Err(VerifyError::Header)
    ));

    // A record from before (no `hashed`): the SHA-256 of the whole file, as then.
    let old = serde_json::json!({
        "path": "v.wav", "duration_ms": info.duration_ms, "bytes": info.bytes,
        "sha256": hex::encode(Sha256::digest(&bytes)),
    });
    let old: RecordingInfo = serde_json::from_value(old).unwrap();
    assert_eq!(old.hashed, HashScope::File);
    assert!(verify(&bytes[..], &old).is_ok());
    assert!(verify(&flipped[..], &old).is_err());
}

#[test]
fn a_writer_dropped_unfinished_leaves_a_wav_that_plays_to_its_end() {
    let root = tempfile::tempdir().unwrap();
    let mut writer = RecordingWriter::create(root.path(), "dropped.wav", LAW).unwrap();
    writer.write(&[7; 2 * 4000]).unwrap();
    drop(writer);
    let (_, audio) = read_recording(&root.path().join("dropped.wav"));
    assert_eq!(audio.len(), 2 * 4000);
}

/// The file comes with the first audio: until then only the silence is counted, then
/// written in front of it, so the recording still starts at the answer.
#[test]
fn the_file_is_created_with_the_first_audio_behind_the_silence_before_it() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("lazy.wav");
    let mut recorder = Recorder::create(root.path(), "lazy.wav").unwrap();
    // 2 s with nothing heard: 1 s of it final, no file yet.
    for i in 0..100u64 {
        recorder.flush(i * 160).unwrap();
    }
    assert!(!recorder.file_created() && !path.exists());
    let at = 100 * 160;
    // A µ-law call: the silence before its first packet is µ-law's too.
    let ulaw = G711Law::Ulaw;
    recorder.push_g711(Channel::Caller, at, meta(SSRC, 0), &frame(0x70), ulaw);
    recorder.flush(at + 160).unwrap();
    assert!(recorder.file_created() && path.exists());
    let info = recorder.finish(Some(at + 160)).unwrap().info;
    assert_eq!(info.duration_ms, 2020);
    let (format, audio) = read_recording(&path);
    assert_eq!(format, WavFormat::G711(ulaw));
    let (caller, plateau) = split(&audio);
    let silence = ulaw.silence_byte();
    assert_eq!(runs(&caller), [(silence, at as usize), (0x70, PACKET)]);
    assert_eq!(runs(&plateau), [(silence, at as usize + PACKET)]);
}

/// A call where nothing is ever heard still gets its recording of silence: at its end, or
/// once the silence is long enough that a crash should leave a file.
#[test]
fn a_recording_without_audio_gets_its_file_at_the_end_or_after_ten_seconds() {
    let root = tempfile::tempdir().unwrap();
    let short = Recorder::create(root.path(), "short.wav").unwrap();
    assert!(!root.path().join("short.wav").exists());
    let info = short.finish(Some(4_000)).unwrap().info;
    assert_eq!(info.duration_ms, 500);
    let (_, audio) = read_recording(&root.path().join("short.wav"));
    assert_eq!(audio, [SILENCE; 2 * 4_000]);

    let mut long = Recorder::create(root.path(), "long.wav").unwrap();
    // Nothing came on either side: the frames are final up to now, not a depth behind.
    long.flush(10 * 8_000).unwrap();
    assert!(!long.file_created(), "10 s of silence is still deferred");
    long.flush(10 * 8_000 + 160).unwrap();
    assert!(long.file_created());
    // The file is A-law from then on: a µ-law packet after it is converted.
    let rtp = meta(SSRC, 0);
    let (at, ulaw) = (11 * 8_000 + 160, G711Law::Ulaw);
    long.push_g711(Channel::Caller, at, rtp, &frame(0x70), ulaw);
    assert_eq!(
        long.finish(Some(at + 160)).unwrap().info.duration_ms,
        11_040
    );
    let (format, audio) = read_recording(&root.path().join("long.wav"));
    assert_eq!(format, WavFormat::G711(LAW));
    let (caller, _) = split(&audio);
    assert_eq!(
        caller[at as usize..],
        [LAW.encode(ulaw.decode(0x70)); PACKET]
    );
}

/// A path that would leave the recordings root is refused at once, not at the first audio.
#[test]
fn an_unsafe_recording_path_is_refused_at_create() {
    let root = tempfile::tempdir().unwrap();
    assert!(matches!(
        Recorder::create(root.path(), "../escape.wav"),
        Err(RecordingError::UnsafePath(_))
    ));
}

/// The first packet chooses the law; the file of a call where nothing came is A-law.
#[test]
fn the_first_packet_chooses_the_law_and_a_silent_call_is_a_law() {
    let mut mixer = StereoMixer::new();
    mixer.push_g711(
        Channel::Plateau,
        0,
        meta(SSRC, 0),
        &[0x7F; 4],
        G711Law::Ulaw,
    );
    mixer.push_g711(Channel::Caller, 0, meta(SSRC, 0), &[0x7F; 4], G711Law::Alaw);
    assert_eq!(mixer.settle(G711Law::Alaw), G711Law::Ulaw);
    let mut out = Vec::new();
    mixer.finish(6, &mut out);
    let (caller, plateau) = split(&out);
    let converted = G711Law::Ulaw.encode(G711Law::Alaw.decode(0x7F));
    assert_eq!(
        caller,
        [converted, converted, converted, converted, 0xFF, 0xFF]
    );
    assert_eq!(plateau, [0x7F, 0x7F, 0x7F, 0x7F, 0xFF, 0xFF]);

    let root = tempfile::tempdir().unwrap();
    Recorder::create(root.path(), "quiet.wav")
        .unwrap()
        .finish(Some(800))
        .unwrap();
    let (format, audio) = read_recording(&root.path().join("quiet.wav"));
    assert_eq!(
        (format, audio),
        (WavFormat::G711(G711Law::Alaw), vec![0xD5; 1600])
    );
}

/// Both directions of a call, packet `i` of each at `i * 160 + jitter`: caller `value(i)`,
/// plateau `other(i)`.
fn two_way(mixer: &mut StereoMixer, out: &mut Vec<u8>, i: u64, at: u64) {
    while mixer.drain(at, out) {}
    let ts = i as u32 * 160;
    mixer.push_g711(
        Channel::Caller,
        at,
        meta(SSRC, ts),
        &frame(value(i % 100)),
        LAW,
    );
    mixer.push_g711(
        Channel::Plateau,
        at,
        meta(7, ts),
        &frame(other(i % 100)),
        LAW,
    );
}

/// While both directions flow, a frame is written as soon as both came: the buffers stay
/// at their smallest (a few packets, not the second of depth) and the output is the same.
#[test]
fn frames_both_directions_filled_are_written_at_once_in_little_memory() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    let packets = 3_000u64; // a minute
    for i in 0..packets {
        // Up to 35 ms of jitter: every 11th packet comes after the next one.
        let jitter = if i % 11 == 5 { 280 } else { (i % 7) * 10 };
        two_way(&mut mixer, &mut out, i, i * 160 + jitter);
        assert!(
            mixer.position() + 2 * 160 + jitter >= i * 160,
            "packet {i}: written up to {}, not a second behind",
            mixer.position()
        );
    }
    assert_eq!(mixer.buffer_bytes(), 2 * MIN_CAPACITY);
    while mixer.finish(packets * 160, &mut out) {}
    let (caller, plateau) = split(&out);
    let want: Vec<(u8, usize)> = (0..packets).map(|i| (value(i % 100), PACKET)).collect();
    assert_eq!(runs(&caller), merge(want));
    let want_plateau = (0..packets).map(|i| (other(i % 100), PACKET)).collect();
    assert_eq!(runs(&plateau), merge(want_plateau));
    for channel in [Channel::Caller, Channel::Plateau] {
        let s = mixer.stats(channel);
        assert_eq!((s.late, s.overflow, s.duplicate), (0, 0, 0), "{s:?}");
    }
}

/// A direction that never sent holds nothing back (its first packet lands at its arrival),
/// so the other one's frames are written as they come; one that sent and then fell silent
/// is waited for the whole depth, and the track ahead holds that second in about what it
/// needs (a KiB step above 8,000 bytes, not the 16 KiB a doubling gave), then gives it back.
#[test]
fn only_a_direction_that_sent_holds_frames_back_and_a_track_grows_by_steps() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    for i in 0..100u64 {
        while mixer.drain(i * 160, &mut out) {}
        let rtp = meta(SSRC, i as u32 * 160);
        mixer.push_g711(Channel::Caller, i * 160, rtp, &frame(5), LAW);
        assert!(
            mixer.position() + 160 >= i * 160,
            "packet {i}: written as it came"
        );
    }
    assert_eq!(
        mixer.buffer_bytes(),
        MIN_CAPACITY,
        "the silent side holds no buffer"
    );
    // The plateau side starts: at its arrival, after what was written (nothing late).
    for i in 100..300u64 {
        two_way(&mut mixer, &mut out, i, i * 160);
    }
    assert_eq!(mixer.stats(Channel::Plateau).late, 0);
    // Then it falls silent for 2 s: its burst may still come, so the caller waits a depth.
    let mut peak = 0;
    for i in 300..400u64 {
        while mixer.drain(i * 160, &mut out) {}
        let rtp = meta(SSRC, i as u32 * 160);
        mixer.push_g711(Channel::Caller, i * 160, rtp, &frame(5), LAW);
        peak = peak.max(mixer.buffer_bytes());
    }
    assert_eq!(mixer.position(), 399 * 160 - JITTER_DEPTH, "a depth behind");
    let held = JITTER_DEPTH as usize + PACKET;
    let step = held.next_multiple_of(MIN_CAPACITY);
    assert_eq!(
        peak,
        step + MIN_CAPACITY,
        "the caller's second in whole KiB, the plateau's smallest buffer"
    );
    for i in 400..500u64 {
        two_way(&mut mixer, &mut out, i, i * 160);
    }
    assert_eq!(mixer.buffer_bytes(), 2 * MIN_CAPACITY, "given back");
    while mixer.finish(500 * 160, &mut out) {}
    let (caller, _) = split(&out);
    assert_eq!(caller.len(), 500 * 160);
    assert!(
        caller[..100 * 160].iter().all(|&b| b == 5),
        "in place, nothing lost"
    );
}

/// Adjacent runs of one value as one (packets 99 and 100 differ, 0 and 100 wrap).
fn merge(runs: Vec<(u8, usize)>) -> Vec<(u8, usize)> {
    let mut merged: Vec<(u8, usize)> = Vec::new();
    for (v, n) in runs {
        match merged.last_mut() {
            Some((last, m)) if *last == v => *m += n,
            _ => merged.push((v, n)),
        }
    }
    merged
}

/// A lost packet holds the frames after it back for the whole depth (it may still come),
/// and a duplicate of a frame written early is a duplicate, not late audio.
#[test]
fn a_gap_waits_the_whole_depth_and_a_duplicate_of_an_early_frame_is_not_late() {
    let mut mixer = StereoMixer::new();
    let mut out = Vec::new();
    for i in 0..10 {
        two_way(&mut mixer, &mut out, i, i * 160);
    }
    // Caller packet 10 is missing for 700 ms; everything else flows.
    for i in 10..55u64 {
        while mixer.drain(i * 160, &mut out) {}
        if i != 10 {
            mixer.push_g711(
                Channel::Caller,
                i * 160,
                meta(SSRC, i as u32 * 160),
                &frame(5),
                LAW,
            );
        }
        mixer.push_g711(
            Channel::Plateau,
            i * 160,
            meta(7, i as u32 * 160),
            &frame(6),
            LAW,
        );
        assert!(mixer.position() <= 10 * 160, "packet {i}: the gap is held");
    }
    assert!(mixer.buffer_bytes() > 2 * MIN_CAPACITY, "grown by need");
    // It comes 700 ms late: in place; and a duplicate of packet 8, written early but
    // less than the depth ago.
    mixer.push_g711(
        Channel::Caller,
        55 * 160,
        meta(SSRC, 10 * 160),
        &frame(9),
        LAW,
    );
    mixer.push_g711(
        Channel::Caller,
        55 * 160,
        meta(SSRC, 8 * 160),
        &frame(9),
        LAW,
    );
    for i in 55..200u64 {
        two_way(&mut mixer, &mut out, i, i * 160);
    }
    assert_eq!(mixer.buffer_bytes(), 2 * MIN_CAPACITY, "given back");
    while mixer.finish(200 * 160, &mut out) {}
    let (caller, _) = split(&out);
    assert_eq!(caller[10 * 160..11 * 160], [9; 160]);
    assert_eq!(caller[11 * 160..55 * 160], [5; 44 * 160]);
    let s = mixer.stats(Channel::Caller);
    assert_eq!((s.late, s.duplicate), (0, PACKET as u64), "{s:?}");
}

/// A recorded call's buffers, both directions flowing: well under 16 KiB.
#[test]
fn a_recorded_call_holds_under_16_kib_of_buffers() {
    let root = tempfile::tempdir().unwrap();
    let mut recorder = Recorder::create(root.path(), "small.wav").unwrap();
    let payload = [G711Law::Alaw.encode(1000); PACKET];
    for i in 0..1_000u64 {
        let at = i * 160;
        let rtp = meta(SSRC, i as u32 * 160);
        recorder.flush(at).unwrap();
        recorder.push_g711(Channel::Caller, at, rtp, &payload, G711Law::Alaw);
        recorder.flush(at + 80).unwrap();
        recorder.push_g711(Channel::Plateau, at + 80, rtp, &payload, G711Law::Alaw);
    }
    let held = recorder.buffer_bytes();
    assert!(held < 16 * 1024 - 1024, "{held} bytes");
    assert_eq!(
        recorder.finish(Some(1_000 * 160)).unwrap().info.duration_ms,
        20_000
    );
}

/// Writes of every size, across the write buffer's and the header checkpoint's bounds,
/// give the same file and hash as one write.
#[test]
fn the_writer_buffers_and_hashes_writes_of_any_size_alike() {
    let root = tempfile::tempdir().unwrap();
    let audio: Vec<u8> = (0..2 * 90_001).map(|i| (i * 7919 % 251) as u8).collect();
    let mut whole = RecordingWriter::create(root.path(), "whole.wav", LAW).unwrap();
    whole.write(&audio).unwrap();
    let mut pieces = RecordingWriter::create(root.path(), "pieces.wav", LAW).unwrap();
    let mut rest = &audio[..];
    for size in [2usize, 4094, 4096, 4098, 320, 640, 6].iter().cycle() {
        let (now, later) = rest.split_at((*size).min(rest.len()));
        pieces.write(now).unwrap();
        rest = later;
        if rest.is_empty() {
            break;
        }
    }
    assert!(pieces.buffer_bytes() <= writer::BUFFER_BYTES);
    let (a, b) = (whole.finish().unwrap().info, pieces.finish().unwrap().info);
    assert_eq!((a.sha256.clone(), a.bytes), (b.sha256.clone(), b.bytes));
    let bytes = std::fs::read(root.path().join("pieces.wav")).unwrap();
    assert_eq!(bytes, std::fs::read(root.path().join("whole.wav")).unwrap());
    assert_eq!(verify(&bytes[..], &b).unwrap(), b.sha256);
    assert_eq!(read_recording(&root.path().join("pieces.wav")).1, audio);
}

/// The write buffer grows a step at a time up to its size, and is given back once written
/// out: a call's recording holds what it has buffered, not always the whole buffer.
#[test]
fn the_write_buffer_grows_by_steps_and_is_given_back_once_written() {
    let root = tempfile::tempdir().unwrap();
    let mut writer = RecordingWriter::create(root.path(), "steps.wav", LAW).unwrap();
    assert_eq!(writer.buffer_bytes(), writer::BUFFER_STEP);
    writer.write(&[3; 2 * PACKET]).unwrap();
    assert_eq!(writer.buffer_bytes(), writer::BUFFER_STEP);
    writer.write(&[3; writer::BUFFER_STEP]).unwrap();
    assert_eq!(writer.buffer_bytes(), 2 * writer::BUFFER_STEP);
    // Up to a whole buffer (the header is in it): written out and given back.
    let head = WavFormat::G711(LAW).header_bytes() as usize;
    let rest = writer::BUFFER_BYTES - head - 2 * PACKET - writer::BUFFER_STEP;
    writer.write(&vec![3; rest]).unwrap();
    assert_eq!(writer.buffer_bytes(), 0);
    let on_disk = std::fs::metadata(root.path().join("steps.wav"))
        .unwrap()
        .len();
    assert_eq!(on_disk, writer::BUFFER_BYTES as u64);
    writer.write(&[3; 2]).unwrap();
    assert_eq!(writer.buffer_bytes(), writer::BUFFER_STEP);
}

/// A header checkpoint leaves the buffer alone: the file grows by whole write buffers (page
/// aligned, so the file system never zeroes around a write), and the header on disk never
/// claims more than the file on disk holds, so a crash leaves a playable file.
#[test]
fn a_checkpoint_keeps_writes_page_aligned_and_the_header_true_to_the_disk() {
    let root = tempfile::tempdir().unwrap();
    let mut writer = RecordingWriter::create(root.path(), "aligned.wav", LAW).unwrap();
    let path = root.path().join("aligned.wav");
    for second in 1..=25u64 {
        // A second of audio, in packets' worth.
        for _ in 0..50 {
            writer.write(&[3; 2 * PACKET]).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let on_disk = bytes.len();
        assert_eq!(on_disk % writer::BUFFER_BYTES, 0, "after {second} s");
        let said = u32::from_le_bytes(bytes[54..58].try_into().unwrap()) as usize;
        assert!(said <= on_disk - 58, "header after {second} s");
        if second % 10 == 0 {
            assert_eq!(bytes[..58], header(WavFormat::G711(LAW), said as u32)[..]);
            assert_eq!(said, on_disk - 58, "the checkpoint at {second} s");
        }
    }
    writer.finish().unwrap();
}
