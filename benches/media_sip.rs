//! Per-message and per-frame costs on the call path: parsing and serialising a trunk INVITE
//! with its SDP (rsipstack's parser, as the SIP guard and the endpoint use it), the
//! guard's whole judgement of it, its transaction key, G.711 encode/decode of one 20 ms frame (160 samples), and
//! recording 20 ms of a call: the WAV writer alone (160 stereo frames, hashed as written)
//! and the whole recorder (two G.711 packets decoded, lined up by the jitter buffers,
//! written); the recorder per relayed packet as the media session drives it (one tap,
//! directions in turn), and per call (a 1 s call from creation to its finished file).
//! Recordings go to a temporary directory, one file per minute of audio, removed as they
//! finish.
//!
//! The relay's per-packet path, receive → session → record → send: `relay_packet` runs the
//! call's [`MediaSession`] (bridged caller and seat, PCMA, recording on) on one packet per
//! iteration, alternating directions, without sockets; `relay_packet_loopback` adds the
//! sockets on 127.0.0.1 (the peer's send, the relay's `recv_from` and `send_to`, the other
//! peer's receive: four syscalls, two of them the relay's).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsipstack::sip::SipMessage;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use sas_router::media::g711::G711Law;
use sas_router::media::leg::Leg;
use sas_router::media::recording::{CallRecorder, Channel, Recorder, RecordingWriter, RtpMeta};
use sas_router::media::sdp::LegCodecs;
use sas_router::media::session::{Delivery, MediaSession, RecordSink, Tap};
use sas_router::sip::guard::Verdict;
use std::hint::black_box;
use std::net::UdpSocket;
use std::path::Path;

const INVITE: &str = "INVITE sip:15@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---3b8e2f1c9a7d4e21;rport\r\n\
Max-Forwards: 69\r\n\
Contact: <sip:+33612345678@198.51.100.7:5060;transport=udp>\r\n\
To: <sip:15@192.0.2.10>\r\n\
From: \"+33612345678\" <sip:+33612345678@198.51.100.7>;tag=8f3a2c71\r\n\
Call-ID: 5c0e1f6a9b2d4c8e8a7f3d2b1c0e9f8a@198.51.100.7\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n\
Supported: timer, replaces\r\n\
P-Asserted-Identity: <sip:+33612345678@trunk.example.fr>\r\n\
User-Agent: SBC-Trunk/4.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 239\r\n\
\r\n\
v=0\r\n\
o=SBC 1733214600 1733214601 IN IP4 198.51.100.7\r\n\
s=call\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn sip(c: &mut Criterion) {
    let bytes = INVITE.as_bytes();
    let parsed = SipMessage::try_from(bytes).expect("the bench INVITE parses");
    let mut group = c.benchmark_group("sip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_invite_with_sdp", |b| {
        b.iter(|| SipMessage::try_from(black_box(bytes)).is_ok())
    });
    group.bench_function("serialise_invite_with_sdp", |b| {
        b.iter(|| black_box(&parsed).to_string())
    });
    // What every request costs before rsipstack sees it (its own parse included).
    group.bench_function("guard_judge_invite", |b| {
        b.iter(|| sas_router::sip::guard::judge(black_box(bytes)) == Verdict::Pass)
    });
    // Built for every message the stack takes in, and every request it sends.
    let SipMessage::Request(request) = &parsed else {
        unreachable!("the bench INVITE is a request")
    };
    group.bench_function("transaction_key_of_invite", |b| {
        b.iter(|| TransactionKey::from_request(black_box(request), TransactionRole::Server).is_ok())
    });
    group.finish();
}

fn g711(c: &mut Criterion) {
    let samples: Vec<i16> = (0..160)
        .map(|i| ((i * 397) % 20_000 - 10_000) as i16)
        .collect();
    let encoded: Vec<u8> = samples.iter().map(|&s| G711Law::Alaw.encode(s)).collect();
    let mut out = [0u8; 160];
    let mut pcm = [0i16; 160];
    let mut group = c.benchmark_group("g711_20ms");
    group.throughput(Throughput::Elements(1));
    for law in [G711Law::Alaw, G711Law::Ulaw] {
        group.bench_function(format!("encode_{law:?}"), |b| {
            b.iter(|| {
                for (o, &s) in out.iter_mut().zip(black_box(&samples)) {
                    *o = law.encode(s);
                }
            })
        });
        group.bench_function(format!("decode_{law:?}"), |b| {
            b.iter(|| {
                for (o, &s) in pcm.iter_mut().zip(black_box(&encoded)) {
                    *o = law.decode(s);
                }
            })
        });
    }
    group.finish();
}

/// 20 ms frames per file: one minute of audio.
const FRAMES_PER_FILE: u64 = 3_000;

fn recording(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut group = c.benchmark_group("recording_20ms");
    group.throughput(Throughput::Elements(1));

    let interleaved: Vec<u8> = (0..320).map(|i| (i * 31) as u8).collect();
    let mut files = 0u64;
    let mut frames = 0u64;
    let mut writer = new_writer(dir.path(), &mut files);
    group.bench_function("wav_writer", |b| {
        b.iter(|| {
            writer.write(black_box(&interleaved)).expect("write");
            frames += 1;
            if frames.is_multiple_of(FRAMES_PER_FILE) {
                let done = std::mem::replace(&mut writer, new_writer(dir.path(), &mut files));
                finish(dir.path(), done.finish().expect("finish").info.path);
            }
        })
    });

    let payload: Vec<u8> = (0..160).map(|i| G711Law::Alaw.encode(i * 50)).collect();
    let mut recorder = new_recorder(dir.path(), &mut files);
    let mut packet = 0u64;
    group.bench_function("recorder_two_g711_packets", |b| {
        b.iter(|| {
            let at = packet * 160;
            let ts = (packet * 160) as u32;
            for (channel, ssrc) in [(Channel::Caller, 1), (Channel::Plateau, 2)] {
                let rtp = RtpMeta {
                    ssrc,
                    timestamp: ts,
                };
                recorder.push_g711(channel, at, rtp, black_box(&payload), G711Law::Alaw);
            }
            recorder.flush(at).expect("flush");
            packet += 1;
            if packet == FRAMES_PER_FILE {
                packet = 0;
                let done = std::mem::replace(&mut recorder, new_recorder(dir.path(), &mut files));
                finish(dir.path(), done.finish(None).expect("finish").info.path);
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("recording");
    group.throughput(Throughput::Elements(1));
    let mut sink = Box::new(CallRecorder::new(new_recorder(dir.path(), &mut files)));
    let mut n = 0u64;
    group.bench_function("per_packet", |b| {
        b.iter(|| {
            tap(sink.as_mut(), n, black_box(&payload));
            n += 1;
            if n == 2 * FRAMES_PER_FILE {
                n = 0;
                let fresh = Box::new(CallRecorder::new(new_recorder(dir.path(), &mut files)));
                let done = std::mem::replace(&mut sink, fresh);
                finish(dir.path(), done.finish().expect("finish").info.path);
            }
        })
    });
    group.sample_size(20);
    group.bench_function("per_1s_call", |b| {
        b.iter(|| {
            let mut call = Box::new(CallRecorder::new(new_recorder(dir.path(), &mut files)));
            for n in 0..100u64 {
                tap(call.as_mut(), n, black_box(&payload));
            }
            call.end(8_000);
            finish(dir.path(), call.finish().expect("finish").info.path);
        })
    });
    group.finish();
}

/// Tap `n` of a recorded call: caller and plateau in turn, each every 20 ms.
fn tap(sink: &mut dyn RecordSink, n: u64, payload: &[u8]) {
    let tap = Tap {
        at: n * 80,
        rtp: RtpMeta {
            ssrc: 1,
            timestamp: (n / 2 * 160) as u32,
        },
        payload,
        law: G711Law::Alaw,
    };
    if n.is_multiple_of(2) {
        sink.caller_audio(tap);
    } else {
        sink.plateau_audio(tap);
    }
}

/// Packets per recorded session: one minute of a call, both directions.
const PACKETS_PER_CALL: u64 = 6_000;

/// A bridged call (caller on A, seat on B, PCMA) recording into `dir`.
fn bridged_call(dir: &Path, calls: &mut u64) -> MediaSession {
    const PCMA: LegCodecs = LegCodecs {
        audio_pt: 8,
        law: G711Law::Alaw,
        dtmf_pt: None,
        other_pt: None,
    };
    let mut session = MediaSession::new(0, [1, 2, 3], [0, 0, 0]);
    session.set_codecs(Leg::A, PCMA);
    session.set_codecs(Leg::B, PCMA);
    session.bridge(Leg::B);
    let recorder = new_recorder(dir, calls);
    session.start_recording(Box::new(CallRecorder::new(recorder)), 0);
    session
}

/// Packet `n` of a call: caller and seat in turn, 20 ms apart on each side.
fn call_packet(n: u64, buf: &mut [u8; 172]) -> (Leg, u64) {
    let (leg, ssrc) = if n.is_multiple_of(2) {
        (Leg::A, 0xCA11u32)
    } else {
        (Leg::B, 0x5EA7)
    };
    let seq = (n / 2) as u16;
    let ts = (n / 2 * 160) as u32;
    buf[..12].copy_from_slice(&[0x80, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..].fill(G711Law::Alaw.encode((n as i16).wrapping_mul(37)));
    (leg, n * 10)
}

fn relay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut calls = 0u64;
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(1));

    let mut session = bridged_call(dir.path(), &mut calls);
    let mut n = 0u64;
    let mut pkt = [0u8; 172];
    let rotate = |session: &mut MediaSession, calls: &mut u64| {
        session.finish(PACKETS_PER_CALL * 10);
        let done = session.take_recorder().expect("recording").finish();
        finish(dir.path(), done.expect("finish").info.path);
        *session = bridged_call(dir.path(), calls);
    };
    group.bench_function("packet_session_recorded", |b| {
        b.iter(|| {
            let (leg, now) = call_packet(n, &mut pkt);
            let heard = session.on_rtp(leg, black_box(&mut pkt), now);
            let to = if leg == Leg::A { Leg::B } else { Leg::A };
            assert_eq!(heard, Delivery::Relay(to));
            n += 1;
            if n == PACKETS_PER_CALL {
                n = 0;
                rotate(&mut session, &mut calls);
            }
        })
    });

    // Caller and seat peers, and the relay's two sockets, on loopback.
    let bind = || UdpSocket::bind("127.0.0.1:0").expect("loopback socket");
    let (caller, seat, relay_a, relay_b) = (bind(), bind(), bind(), bind());
    let to_a = relay_a.local_addr().expect("address");
    let seat_addr = seat.local_addr().expect("address");
    let mut rx = [0u8; 2048];
    let mut peer_rx = [0u8; 2048];
    group.bench_function("packet_loopback_sockets", |b| {
        b.iter(|| {
            let (_, now) = call_packet(n & !1, &mut pkt);
            caller.send_to(&pkt, to_a).expect("peer send");
            let (len, _from) = relay_a.recv_from(&mut rx).expect("relay recv");
            let heard = session.on_rtp(Leg::A, &mut rx[..len], now);
            assert_eq!(heard, Delivery::Relay(Leg::B));
            relay_b.send_to(&rx[..len], seat_addr).expect("relay send");
            seat.recv(&mut peer_rx).expect("peer recv");
            n += 2;
            if n >= PACKETS_PER_CALL {
                n = 0;
                rotate(&mut session, &mut calls);
            }
        })
    });
    group.finish();
}

fn new_writer(dir: &Path, files: &mut u64) -> RecordingWriter {
    *files += 1;
    RecordingWriter::create(dir, &format!("w{files}.wav"), G711Law::Alaw).expect("create")
}

fn new_recorder(dir: &Path, files: &mut u64) -> Recorder {
    *files += 1;
    Recorder::create(dir, &format!("r{files}.wav")).expect("create")
}

fn finish(dir: &Path, relative: String) {
    std::fs::remove_file(dir.join(relative)).ok();
}

criterion_group!(benches, sip, g711, recording, relay);
criterion_main!(benches);
