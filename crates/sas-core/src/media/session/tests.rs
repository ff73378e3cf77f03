//! Media session tests on virtual time: what each leg receives, conversion, digits, taps.

use std::sync::{Arc, Mutex};

use super::*;
use crate::media::dtmf::DtmfSource;
use crate::media::dtmf::testutil::{dtmf, g711, power_at, rtp, silence, tones};
use crate::media::prompts::{FRAME_BYTES, Prompt};
use crate::media::recording::RtpMeta;

pub(super) const T0: EpochMillis = 1_800_000_000_000;
pub(super) const PCMA: LegCodecs = LegCodecs {
    audio_pt: 8,
    law: G711Law::Alaw,
    dtmf_pt: Some(101),
    other_pt: None,
};
const PCMU: LegCodecs = LegCodecs {
    audio_pt: 0,
    law: G711Law::Ulaw,
    dtmf_pt: Some(96),
    other_pt: Some(8),
};

/// (marker, pt, seq, ts, ssrc)
fn header(p: &[u8]) -> (bool, u8, u16, u32, u32) {
    let v = parse_rtp(p).unwrap();
    (v.marker, v.payload_type, v.sequence, v.timestamp, v.ssrc)
}

#[derive(Default)]
struct Taps {
    caller: Vec<(u64, Vec<u8>, G711Law)>,
    plateau: Vec<(u64, Vec<u8>, G711Law)>,
    /// RTP header of each plateau tap: what places it in the recording.
    plateau_rtp: Vec<RtpMeta>,
    ticks: Vec<u64>,
    end: Option<u64>,
    lost: u64,
}

#[derive(Clone, Default)]
struct MemorySink(Arc<Mutex<Taps>>);

impl RecordSink for MemorySink {
    fn caller_audio(&mut self, tap: Tap<'_>) {
        let mut taps = self.0.lock().unwrap();
        taps.caller.push((tap.at, tap.payload.to_vec(), tap.law));
    }
    fn plateau_audio(&mut self, tap: Tap<'_>) {
        let mut taps = self.0.lock().unwrap();
        taps.plateau.push((tap.at, tap.payload.to_vec(), tap.law));
        taps.plateau_rtp.push(tap.rtp);
    }
    fn tick(&mut self, at: u64) {
        self.0.lock().unwrap().ticks.push(at);
    }
    fn end(&mut self, at: u64) {
        self.0.lock().unwrap().end = Some(at);
    }
    fn lost(&mut self, samples: u64) {
        self.0.lock().unwrap().lost += samples;
    }
    fn finish(self: Box<Self>) -> Result<FinishedRecording, RecordingError> {
        Ok(RecordingInfo {
            path: "memory".into(),
            duration_ms: 0,
            bytes: 0,
            sha256: String::new(),
            hashed: Default::default(),
            unplaced_ms: 0,
        }
        .into())
    }
}

fn greeting() -> Announcement {
    Announcement {
        greeting: Some(Arc::new(Prompt::from_alaw(
            "accueil",
            vec![0x55; 3 * FRAME_BYTES],
        ))),
        hold: Some(Arc::new(Prompt::from_alaw(
            "musique",
            vec![0x66; 2 * FRAME_BYTES],
        ))),
        ..Announcement::default()
    }
}

#[test]
fn caller_hears_greeting_hold_then_seat_as_one_stream() {
    let mut s = MediaSession::new(T0, [0xA, 0xB, 0xC], [100, 200, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.play(greeting(), T0);
    let mut out = Vec::new();
    for t in (0..100).step_by(20) {
        s.on_timeout(T0 + t, &mut out);
    }
    out.retain(|o| !o.rtcp);
    assert_eq!(out.len(), 5, "one frame per 20 ms");
    assert!(out.iter().all(|o| o.leg == Leg::A));
    assert_eq!(out[0].packet[12], 0x55, "greeting first");
    assert_eq!(out[3].packet[12], 0x66, "then hold audio");
    // A seat answers in PCMU: its audio reaches the caller converted, same SSRC, next seq.
    s.set_codecs(Leg::B, PCMU);
    s.bridge(Leg::B);
    assert!(
        s.poll_timeout().is_some_and(|t| t > T0 + 500),
        "player stopped (only RTCP reports are timed now)"
    );
    let mut seat = rtp(0, false, 9000, 123_456, 0x5EA7, &[0xFF; 160]);
    assert_eq!(
        s.on_rtp(Leg::B, &mut seat, T0 + 100),
        Delivery::Relay(Leg::A)
    );
    let heads: Vec<_> = out
        .iter()
        .map(|o| header(&o.packet))
        .chain([header(&seat)])
        .collect();
    for w in heads.windows(2) {
        assert_eq!(w[1].2, w[0].2.wrapping_add(1), "sequence continuous");
        assert_eq!(w[1].4, 0xA, "one SSRC towards the caller");
        assert_eq!(w[1].1, 8, "PCMA towards the caller");
    }
    assert!(
        heads[0].0 && heads[3].0 && heads[5].0,
        "marker on each switch"
    );
    assert!(!heads[1].0 && !heads[4].0);
    assert_eq!(heads[5].3, heads[4].3 + 160, "timestamps continue");
    assert_eq!(
        seat[12],
        convert_ulaw_to_alaw(0xFF),
        "µ-law converted to A-law"
    );
}

#[test]
fn caller_audio_reaches_the_seat_only_once_bridged() {
    let mut s = MediaSession::new(T0, [1, 2, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMU);
    let mut early = rtp(8, true, 1, 160, 77, &[0xD5; 160]);
    assert_eq!(
        s.on_rtp(Leg::A, &mut early, T0),
        Delivery::Dropped,
        "queued: seat hears nothing"
    );
    s.bridge(Leg::B);
    let mut p = rtp(8, false, 2, 320, 77, &[0xD5; 160]);
    assert_eq!(s.on_rtp(Leg::A, &mut p, T0 + 20), Delivery::Relay(Leg::B));
    let (_, pt, _, _, ssrc) = header(&p);
    assert_eq!((pt, ssrc), (0, 2));
    assert_eq!(p[12], convert_alaw_to_ulaw(0xD5));
    // The seat listed both laws: its PCMA packets are taken too (and sent on as PCMU).
    let mut a_law = rtp(8, false, 5, 800, 55, &[0xD5; 160]);
    assert_eq!(
        s.on_rtp(Leg::B, &mut a_law, T0 + 30),
        Delivery::Relay(Leg::A)
    );
    let mut cn = rtp(13, false, 3, 480, 77, &[0; 1]);
    assert_eq!(
        s.on_rtp(Leg::A, &mut cn, T0 + 40),
        Delivery::Dropped,
        "unnegotiated type dropped"
    );
}

/// RFC 4733 packets of one key press at `ts`: start, updates, three ends.
fn key(digit_code: u8, seq: &mut u16, ts: u32) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for (i, duration) in [160u16, 320, 480, 640, 640, 640].iter().enumerate() {
        let end = i >= 3;
        let payload = [
            digit_code,
            if end { 0x80 | 10 } else { 10 },
            (duration >> 8) as u8,
            *duration as u8,
        ];
        packets.push(rtp(101, i == 0, *seq, ts, 77, &payload));
        *seq += 1;
    }
    packets
}

#[test]
fn rfc4733_digits_are_detected_once_and_relayed_with_the_seats_type() {
    let mut s = MediaSession::new(T0, [1, 2, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMU);
    s.bridge(Leg::B);
    let mut seq = 10;
    let mut t = T0;
    let mut relayed = Vec::new();
    for (code, ts) in [(1u8, 8000u32), (5, 16000), (11, 24000)] {
        for mut p in key(code, &mut seq, ts) {
            if s.on_rtp(Leg::A, &mut p, t) == Delivery::Relay(Leg::B) {
                relayed.push(header(&p).1);
            }
            t += 20;
        }
    }
    let digits: Vec<DigitEvent> = std::iter::from_fn(|| s.poll_digit()).collect();
    let keys: String = digits.iter().map(|d| d.digit).collect();
    assert_eq!(keys, "15#");
    assert!(digits.iter().all(|d| d.source == DtmfSource::Rfc4733));
    assert!(digits[0].at < digits[1].at && digits[1].at < digits[2].at);
    assert_eq!(relayed.len(), 18, "every event packet relayed");
    assert!(
        relayed.iter().all(|&pt| pt == 96),
        "with the seat's telephone-event type"
    );
}

#[test]
fn in_band_digits_when_the_trunk_has_no_telephone_event() {
    let mut s = MediaSession::new(T0, [1, 2, 0xC], [0, 0, 0]);
    s.set_codecs(
        Leg::A,
        LegCodecs {
            dtmf_pt: None,
            ..PCMA
        },
    );
    let mut audio = Vec::new();
    for d in ['3', '1', '1', '4'] {
        audio.extend(dtmf(d, 6000.0, 80));
        audio.extend(silence(80));
    }
    let encoded = g711(&audio, G711Law::Alaw);
    for (i, frame) in encoded.chunks(160).enumerate() {
        let mut p = rtp(8, false, i as u16, i as u32 * 160, 9, frame);
        s.on_rtp(Leg::A, &mut p, T0 + 20 * i as u64);
    }
    s.finish(T0 + 20 * encoded.len() as u64 / 160);
    let keys: String = std::iter::from_fn(|| s.poll_digit())
        .map(|d| d.digit)
        .collect();
    assert_eq!(keys, "3114");
}

#[test]
fn taps_record_what_the_caller_says_and_hears_on_one_clock() {
    let sink = MemorySink::default();
    let mut s = MediaSession::new(T0, [1, 2, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.play(greeting(), T0);
    s.start_recording(Box::new(sink.clone()), T0);
    let mut out = Vec::new();
    s.on_timeout(T0, &mut out);
    let mut p = rtp(8, false, 1, 0, 9, &[0x2A; 160]);
    s.on_rtp(Leg::A, &mut p, T0 + 10);
    s.set_codecs(Leg::B, PCMU);
    s.bridge(Leg::B);
    let mut seat = rtp(0, false, 1, 0, 5, &[0x11; 160]);
    s.on_rtp(Leg::B, &mut seat, T0 + 30);
    let taps = sink.0.lock().unwrap();
    assert_eq!(taps.caller, vec![(80, vec![0x2A; 160], G711Law::Alaw)]);
    assert_eq!(taps.plateau.len(), 2);
    assert_eq!(taps.plateau[0].0, 0);
    assert_eq!(
        taps.plateau[0].1,
        vec![0x55; 160],
        "the greeting is recorded"
    );
    assert_eq!(taps.plateau[1].0, 240);
    assert_eq!(
        taps.plateau[1].1,
        vec![convert_ulaw_to_alaw(0x11); 160],
        "the seat as the caller heard it"
    );
    let [greeting, seat] = [taps.plateau_rtp[0], taps.plateau_rtp[1]];
    assert_eq!(
        seat.ssrc, greeting.ssrc,
        "placed as our stream to the caller"
    );
    assert_eq!(
        seat.timestamp.wrapping_sub(greeting.timestamp),
        320,
        "the seat, 30 ms after the greeting's frame, follows it by whole packets"
    );
    drop(taps);
    assert!(s.take_recorder().is_some());
}

/// A line where nobody sends anything still tells the recording that time passes, and
/// where the call ended.
#[test]
fn a_silent_recording_hears_the_time_and_the_end() {
    let sink = MemorySink::default();
    let mut s = MediaSession::new(T0, [1, 2, 3], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMA);
    s.bridge(Leg::B);
    s.start_recording(Box::new(sink.clone()), T0 + 1000);
    let mut out = Vec::new();
    while let Some(t) = s.poll_timeout().filter(|t| *t <= T0 + 10_000) {
        s.on_timeout(t, &mut out);
    }
    s.finish(T0 + 10_000);
    let taps = sink.0.lock().unwrap();
    assert!(taps.caller.is_empty() && taps.plateau.is_empty());
    assert_eq!(taps.ticks.len(), 18, "{:?}", taps.ticks);
    assert!(taps.ticks.windows(2).all(|w| w[1] - w[0] == 4000));
    assert_eq!(taps.end, Some(9_000 * 8), "9 s after the recording began");
}

#[test]
fn a_late_task_skips_ahead_instead_of_bursting() {
    let mut s = MediaSession::new(T0, [1, 2, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.play(Announcement::default(), T0);
    let mut out = Vec::new();
    s.on_timeout(T0 + 1000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(s.poll_timeout(), Some(T0 + 1020));
}

#[test]
fn rtcp_reports_go_to_each_leg_with_loss_seen_on_the_way_in() {
    use crate::media::rtcp::{RtcpPacket, parse_compound};
    let mut s = MediaSession::new(T0, [0xA, 0xB, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMU);
    s.bridge(Leg::B);
    // 100 packets from the caller, every 10th lost on the way.
    for i in 0..100u16 {
        if i % 10 == 5 {
            continue;
        }
        let mut p = rtp(8, false, i, u32::from(i) * 160, 0xCA11, &[0xD5; 160]);
        s.on_rtp(Leg::A, &mut p, T0 + 20 * u64::from(i));
    }
    let mut out = Vec::new();
    s.on_timeout(T0 + 20_000, &mut out);
    let reports: Vec<&Outgoing> = out.iter().filter(|o| o.rtcp).collect();
    assert_eq!(reports.len(), 2, "one report per leg");
    let to_caller = reports.iter().find(|o| o.leg == Leg::A).unwrap();
    let packets = parse_compound(&to_caller.packet).unwrap();
    let block = match &packets[0] {
        RtcpPacket::ReceiverReport { ssrc, blocks }
        | RtcpPacket::SenderReport { ssrc, blocks, .. } => {
            assert_eq!(*ssrc, 0xA, "our SSRC towards the caller");
            blocks[0]
        }
        other => panic!("compound starts with SR/RR: {other:?}"),
    };
    assert_eq!(block.ssrc, 0xCA11, "about the caller's stream");
    assert_eq!(block.cumulative_lost, 10);
    let q = s.quality(Leg::A);
    assert_eq!((q.packets_received, q.packets_lost), (90, 10));
    let seat = reports.iter().find(|o| o.leg == Leg::B).unwrap();
    assert!(
        matches!(
            parse_compound(&seat.packet).unwrap()[0],
            RtcpPacket::SenderReport { ssrc: 0xB, .. }
        ),
        "we sent the seat audio: a sender report"
    );
}

#[test]
fn a_phone_that_puts_us_on_hold_is_sent_nothing_until_it_resumes() {
    let mut s = MediaSession::new(T0, [1, 2, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMA);
    s.bridge(Leg::B);
    s.set_receiving(Leg::A, false);
    let mut p = rtp(8, false, 1, 0, 5, &[0xD5; 160]);
    assert_eq!(
        s.on_rtp(Leg::B, &mut p, T0),
        Delivery::Dropped,
        "caller on hold hears nothing"
    );
    let mut up = rtp(8, false, 1, 0, 9, &[0xD5; 160]);
    assert_eq!(
        s.on_rtp(Leg::A, &mut up, T0),
        Delivery::Relay(Leg::B),
        "but still talks"
    );
    s.set_receiving(Leg::A, true);
    let mut p = rtp(8, false, 2, 160, 5, &[0xD5; 160]);
    assert_eq!(s.on_rtp(Leg::B, &mut p, T0 + 20), Delivery::Relay(Leg::A));
    // Announcements too: the player's clock runs on, nothing is sent while held.
    s.set_receiving(Leg::A, false);
    s.play(Announcement::default(), T0 + 40);
    let mut out = Vec::new();
    s.on_timeout(T0 + 100, &mut out);
    assert!(out.iter().all(|o| o.rtcp), "no RTP to a held phone");
    assert_eq!(s.poll_timeout().map(|t| t <= T0 + 120), Some(true));
}

/// A peer's RTP stream: consecutive sequence numbers and timestamps.
struct Phone {
    pt: u8,
    ssrc: u32,
    seq: u16,
}

impl Phone {
    fn new(codecs: LegCodecs, ssrc: u32) -> Phone {
        Phone {
            pt: codecs.audio_pt,
            ssrc,
            seq: 1,
        }
    }

    fn packet(&mut self, payload: &[u8]) -> Vec<u8> {
        self.seq += 1;
        let ts = u32::from(self.seq) * 160;
        rtp(self.pt, false, self.seq, ts, self.ssrc, payload)
    }
}

/// The RTP each leg received, in order: relayed packets and the session's own frames.
#[derive(Default)]
struct Ears([Vec<Vec<u8>>; 3]);

impl Ears {
    fn send(&mut self, s: &mut MediaSession, from: Leg, mut packet: Vec<u8>, now: u64) -> Delivery {
        let delivery = s.on_rtp(from, &mut packet, now);
        if let Delivery::Relay(to) = delivery {
            self.0[to.idx()].push(packet);
        }
        delivery
    }

    fn tick(&mut self, s: &mut MediaSession, now: EpochMillis) {
        let mut out = Vec::new();
        s.on_timeout(now, &mut out);
        for o in out.into_iter().filter(|o| !o.rtcp) {
            self.0[o.leg.idx()].push(o.packet);
        }
    }
}

/// A steady tone in 20 ms frames of `law`.
fn tone_frames(freq: f32, law: G711Law, ms: u32) -> Vec<Vec<u8>> {
    g711(&tones(&[(freq, 8000.0)], ms), law)
        .chunks(FRAME_BYTES)
        .map(<[u8]>::to_vec)
        .collect()
}

fn decode(packet: &[u8], law: G711Law) -> Vec<i16> {
    packet[RTP_HEADER_LEN..]
        .iter()
        .map(|&b| law.decode(b))
        .collect()
}

/// Power of the 8000-amplitude test tones: a frame "contains" a tone above half of it.
const TONE_POWER: f32 = 8000.0 * 8000.0 / 2.0;

/// What each leg says in the conference tests (whole cycles in a 20 ms frame).
const SAYS: [f32; 3] = [500.0, 1000.0, 1800.0];

fn assert_hears(frame: &[i16], leg: Leg, speakers: &[Leg]) {
    for other in Leg::ALL {
        let power = power_at(frame, SAYS[other.idx()]);
        if speakers.contains(&other) {
            assert!(power > TONE_POWER / 2.0, "{leg:?} hears {other:?}: {power}");
        } else {
            assert!(
                power < TONE_POWER / 1000.0,
                "{leg:?} hears no {other:?}: {power}"
            );
        }
    }
}

#[test]
fn in_conference_each_leg_hears_the_two_others_on_its_one_stream() {
    const SSRC: [u32; 3] = [0xA, 0xB, 0xC];
    let codecs = [PCMA, PCMU, PCMU];
    let sink = MemorySink::default();
    let mut s = MediaSession::new(T0, SSRC, [100, 200, 300]);
    for leg in Leg::ALL {
        s.set_codecs(leg, codecs[leg.idx()]);
    }
    let mut phones = Leg::ALL.map(|leg| Phone::new(codecs[leg.idx()], 0x100 + leg as u32));
    let mut ears = Ears::default();
    s.play(greeting(), T0);
    for t in [0, 20, 40] {
        ears.tick(&mut s, T0 + t);
    }
    s.bridge(Leg::B);
    for t in [60, 80] {
        for leg in [Leg::A, Leg::B] {
            let silence = [codecs[leg.idx()].law.silence_byte(); FRAME_BYTES];
            let packet = phones[leg.idx()].packet(&silence);
            ears.send(&mut s, leg, packet, T0 + t);
        }
    }
    assert_eq!(ears.0.each_ref().map(Vec::len), [5, 2, 0]);

    s.start_recording(Box::new(sink.clone()), T0 + 100);
    s.conference(T0 + 100);
    let speech = Leg::ALL.map(|leg| tone_frames(SAYS[leg.idx()], codecs[leg.idx()].law, 1000));
    let before = ears.0.each_ref().map(Vec::len);
    for (i, t) in (100..1100).step_by(20).enumerate() {
        for leg in Leg::ALL {
            let packet = phones[leg.idx()].packet(&speech[leg.idx()][i]);
            assert_eq!(ears.send(&mut s, leg, packet, T0 + t), Delivery::Mixed);
        }
        ears.tick(&mut s, T0 + t);
        for leg in Leg::ALL {
            assert_eq!(
                ears.0[leg.idx()].len(),
                before[leg.idx()] + i + 1,
                "{leg:?} at {t} ms"
            );
        }
    }
    for leg in Leg::ALL {
        let mixed = &ears.0[leg.idx()][before[leg.idx()]..];
        let others: Vec<Leg> = Leg::ALL.into_iter().filter(|&l| l != leg).collect();
        for frame in mixed {
            assert_eq!(header(frame).1, codecs[leg.idx()].audio_pt);
            assert_hears(&decode(frame, codecs[leg.idx()].law), leg, &others);
        }
        assert!(header(&mixed[0]).0, "marker where the mix starts");
        assert!(mixed[1..].iter().all(|p| !header(p).0));
    }
    let taps = sink.0.lock().unwrap();
    let to_caller = &ears.0[0][before[0]..];
    assert_eq!(
        taps.plateau.len(),
        to_caller.len(),
        "the mix the caller hears is recorded"
    );
    assert_eq!(taps.plateau[7].1, to_caller[7][RTP_HEADER_LEN..]);
    assert_eq!(taps.caller.len(), 50);
    drop(taps);

    // The ARM drops: the caller stays with the doctor on C.
    s.bridge(Leg::C);
    let silence = [0xD5; FRAME_BYTES];
    let (a, c) = (
        phones[0].packet(&silence),
        phones[2].packet(&[0xFF; FRAME_BYTES]),
    );
    assert_eq!(
        ears.send(&mut s, Leg::A, a, T0 + 1100),
        Delivery::Relay(Leg::C)
    );
    assert_eq!(
        ears.send(&mut s, Leg::C, c, T0 + 1100),
        Delivery::Relay(Leg::A)
    );
    let b = phones[1].packet(&[0xFF; FRAME_BYTES]);
    assert_eq!(ears.send(&mut s, Leg::B, b, T0 + 1100), Delivery::Dropped);
    ears.tick(&mut s, T0 + 1120);
    assert_eq!(ears.0.each_ref().map(Vec::len), [56, 52, 51]);
    for leg in Leg::ALL {
        let heads: Vec<_> = ears.0[leg.idx()].iter().map(|p| header(p)).collect();
        for w in heads.windows(2) {
            assert_eq!(w[1].2, w[0].2.wrapping_add(1), "{leg:?}: no sequence gap");
            assert_eq!(w[1].4, SSRC[leg.idx()], "{leg:?}: one SSRC");
        }
    }
    assert!(
        header(&ears.0[0][55]).0 && header(&ears.0[2][50]).0,
        "marker: bridged to C"
    );
}

#[test]
fn bridged_to_c_the_caller_and_c_hear_each_other_and_b_is_left_out() {
    let mut s = MediaSession::new(T0, [0xA, 0xB, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMU);
    s.set_codecs(Leg::C, PCMU);
    s.bridge(Leg::C);
    s.bridge(Leg::A); // ignored
    let mut ears = Ears::default();
    let up = rtp(8, false, 1, 0, 77, &[0xD5; 160]);
    assert_eq!(ears.send(&mut s, Leg::A, up, T0), Delivery::Relay(Leg::C));
    let (_, pt, _, _, ssrc) = header(&ears.0[2][0]);
    assert_eq!((pt, ssrc), (0, 0xC));
    assert_eq!(ears.0[2][0][12], convert_alaw_to_ulaw(0xD5));
    let down = rtp(0, false, 1, 0, 55, &[0xFF; 160]);
    assert_eq!(
        ears.send(&mut s, Leg::C, down, T0 + 5),
        Delivery::Relay(Leg::A)
    );
    assert_eq!(header(&ears.0[0][0]).4, 0xA);
    let left_out = rtp(0, false, 1, 0, 66, &[0xFF; 160]);
    assert_eq!(
        ears.send(&mut s, Leg::B, left_out, T0 + 10),
        Delivery::Dropped
    );
    let mut seq = 2;
    for packet in key(1, &mut seq, 800) {
        assert_eq!(
            ears.send(&mut s, Leg::A, packet, T0 + 20),
            Delivery::Relay(Leg::C)
        );
    }
    assert_eq!(
        header(&ears.0[2][1]).1,
        96,
        "digits with C's telephone-event type"
    );
    assert_eq!(s.poll_digit().map(|d| d.digit), Some('1'));
    for t in (0..200).step_by(20) {
        ears.tick(&mut s, T0 + t);
    }
    assert!(ears.0[1].is_empty(), "B hears nothing");
    assert_eq!(ears.0.each_ref().map(Vec::len), [1, 0, 7]);
}

#[test]
fn in_conference_a_held_leg_and_an_empty_leg_hear_nothing() {
    let mut s = MediaSession::new(T0, [0xA, 0xB, 0xC], [0, 0, 0]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMA);
    s.set_receiving(Leg::B, false);
    s.conference(T0);
    let mut ears = Ears::default();
    let speech = [Leg::A, Leg::B].map(|leg| tone_frames(SAYS[leg.idx()], G711Law::Alaw, 200));
    let mut phones = [Phone::new(PCMA, 1), Phone::new(PCMA, 2)];
    for (i, t) in (0..200).step_by(20).enumerate() {
        for leg in [Leg::A, Leg::B] {
            let packet = phones[leg.idx()].packet(&speech[leg.idx()][i]);
            assert_eq!(ears.send(&mut s, leg, packet, T0 + t), Delivery::Mixed);
        }
        ears.tick(&mut s, T0 + t);
    }
    assert_eq!(
        ears.0.each_ref().map(Vec::len),
        [10, 0, 0],
        "only the caller hears"
    );
    for frame in &ears.0[0] {
        assert_hears(&decode(frame, G711Law::Alaw), Leg::A, &[Leg::B]);
    }
    let nobody_there = rtp(8, false, 1, 0, 3, &[0xD5; 160]);
    assert_eq!(
        ears.send(&mut s, Leg::C, nobody_there, T0 + 200),
        Delivery::Dropped
    );
    s.set_receiving(Leg::B, true);
    ears.tick(&mut s, T0 + 200);
    assert_eq!(
        ears.0.each_ref().map(Vec::len),
        [11, 1, 0],
        "B hears once it resumes"
    );
}

/// A supervisor on C while the caller (PCMA) talks with the seat on B (PCMU): each mode
/// mixes whom it says, the caller never hears a listening or whispering supervisor, and
/// the recording keeps what the caller hears.
#[test]
fn a_supervisor_listens_whispers_then_barges_and_leaves() {
    let codecs = [PCMA, PCMU, PCMU];
    let mut s = MediaSession::new(T0, [0xA, 0xB, 0xC], [0, 0, 0]);
    for leg in Leg::ALL {
        s.set_codecs(leg, codecs[leg.idx()]);
    }
    let sink = MemorySink::default();
    s.start_recording(Box::new(sink.clone()), T0);
    s.bridge(Leg::B);
    let mut phones = Leg::ALL.map(|leg| Phone::new(codecs[leg.idx()], 0x100 + leg as u32));
    let speech = Leg::ALL.map(|leg| tone_frames(SAYS[leg.idx()], codecs[leg.idx()].law, 3000));
    let mut ears = Ears::default();
    let mut t = 0;
    // 20 ms frames from every leg for `ms`; what each leg received in that time.
    let mut talk = |s: &mut MediaSession, ears: &mut Ears, ms: u64, mixed: bool| {
        let before = ears.0.each_ref().map(Vec::len);
        for _ in 0..ms / 20 {
            for leg in Leg::ALL {
                let frame = &speech[leg.idx()][(t / 20) as usize];
                let packet = phones[leg.idx()].packet(frame);
                let got = ears.send(s, leg, packet, T0 + t);
                if leg != Leg::C {
                    assert_eq!(got == Delivery::Mixed, mixed, "{leg:?} at {t}");
                }
            }
            ears.tick(s, T0 + t);
            t += 20;
        }
        Leg::ALL.map(|leg| ears.0[leg.idx()][before[leg.idx()]..].to_vec())
    };
    let monitor = |mode| {
        Some(Monitor {
            supervisor: Leg::C,
            mode,
        })
    };
    let hears = |got: &[Vec<Vec<u8>>; 3], leg: Leg, speakers: &[Leg]| {
        // The first frames of a mix may be short of a leg's audio (jitter room).
        assert!(
            got[leg.idx()].len() >= 20,
            "{leg:?}: {}",
            got[leg.idx()].len()
        );
        for frame in &got[leg.idx()][3..] {
            assert_hears(&decode(frame, codecs[leg.idx()].law), leg, speakers);
        }
    };
    s.monitor(monitor(MonitorMode::Listen));
    let got = talk(&mut s, &mut ears, 500, true);
    hears(&got, Leg::A, &[Leg::B]);
    hears(&got, Leg::B, &[Leg::A]);
    hears(&got, Leg::C, &[Leg::A, Leg::B]);
    s.monitor(monitor(MonitorMode::Whisper));
    let got = talk(&mut s, &mut ears, 500, true);
    hears(&got, Leg::A, &[Leg::B]);
    hears(&got, Leg::B, &[Leg::A, Leg::C]);
    hears(&got, Leg::C, &[Leg::A, Leg::B]);
    s.monitor(monitor(MonitorMode::Barge));
    let got = talk(&mut s, &mut ears, 500, true);
    hears(&got, Leg::A, &[Leg::B, Leg::C]);
    hears(&got, Leg::B, &[Leg::A, Leg::C]);
    hears(&got, Leg::C, &[Leg::A, Leg::B]);
    // On hold (prompts), then back: the supervisor is mixed in again.
    s.play(Announcement::default(), T0 + 1500);
    s.bridge(Leg::B);
    let got = talk(&mut s, &mut ears, 500, true);
    hears(&got, Leg::A, &[Leg::B, Leg::C]);
    // The supervisor leaves: packet relay again, nothing for C.
    s.monitor(None);
    let got = talk(&mut s, &mut ears, 200, false);
    assert!(got[Leg::C.idx()].is_empty());
    assert_eq!(got[Leg::A.idx()].len(), 10);
    let taps = sink.0.lock().unwrap();
    assert_eq!(
        taps.plateau.len(),
        ears.0[Leg::A.idx()].len(),
        "what the caller hears is recorded"
    );
}

#[test]
fn a_fast_path_hands_back_what_it_relayed_for_the_recording_and_the_statistics() {
    let sink = MemorySink::default();
    let mut s = MediaSession::new(T0, [1, 2, 3], [100, 200, 300]);
    s.set_codecs(Leg::A, PCMA);
    s.set_codecs(Leg::B, PCMA);
    s.bridge(Leg::B);
    s.start_recording(Box::new(sink.clone()), T0);
    let mut p = rtp(8, false, 5000, 80_000, 0xAAAA, &[0x11; 160]);
    assert_eq!(s.on_rtp(Leg::A, &mut p, T0), Delivery::Relay(Leg::B));
    let mut p = rtp(8, false, 9000, 1_000_000, 0xBBBB, &[0x22; 160]);
    assert_eq!(s.on_rtp(Leg::B, &mut p, T0), Delivery::Relay(Leg::A));
    assert_eq!(s.fast_paths(false), None, "recorded: only with the tap");
    let [up, down] = s.fast_paths(true).expect("tapped, it qualifies");
    // What the kernel sent, renumbered with the offsets it was given.
    let sent = |path: &FastPath, seq: u16, ts: u32, byte: u8| {
        rtp(
            8,
            false,
            seq.wrapping_add(path.seq_offset),
            ts.wrapping_add(path.ts_offset),
            path.ssrc_out,
            &[byte; 160],
        )
    };
    s.fast_path_tapped(&up, &sent(&up, 5001, 80_160, 0x33), T0 + 20);
    let to_caller = sent(&down, 9001, 1_000_160, 0x44);
    s.fast_path_tapped(&down, &to_caller, T0 + 20);
    s.fast_path_lost(2);
    let taps = sink.0.lock().unwrap();
    assert_eq!(
        taps.caller.last(),
        Some(&(160, vec![0x33; 160], G711Law::Alaw)),
        "the caller's audio, placed when the kernel relayed it"
    );
    assert_eq!(taps.plateau.last().map(|t| &t.1), Some(&vec![0x44; 160]));
    let (_, _, _, ts, ssrc) = header(&to_caller);
    assert_eq!(
        taps.plateau_rtp.last(),
        Some(&RtpMeta {
            ssrc,
            timestamp: ts
        }),
        "what the caller heard, with our header"
    );
    assert_eq!(taps.lost, 2 * 160, "two packets of 20 ms");
    drop(taps);
    assert_eq!(s.quality(Leg::A).packets_received, 2);
    assert_eq!(s.quality(Leg::B).packets_received, 2);
}
