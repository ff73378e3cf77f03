//! The media test tooling (tests/it/common/media.rs) checked on its own, without the router:
//! the streams it builds, the pcaps it writes, SIPp replaying them byte for byte between
//! `caller_media.xml` / `caller_inband.xml` and `seat_media.xml` into `RtpSink`s, and the
//! analysis helpers (tone energy, RFC 4733 and in-band digits, two-channel WAV).
//!
//! `write_loadtest_pcaps` (ignored) is how `loadtest/media.sh` makes its pcaps.

use crate::common;

use common::media::*;
use common::*;
use sas_router::media::g711::G711Law;
use sas_router::media::recording::RecordingWriter;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// What a sink would record if `packets` arrived as sent (arrival = send offset).
fn as_received(packets: &[(u64, Vec<u8>)]) -> Vec<RtpPacket> {
    let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
    packets
        .iter()
        .map(|(at, raw)| {
            let v = sas_router::media::dtmf::rfc4733::parse_rtp(raw).unwrap();
            RtpPacket {
                arrival: Duration::from_micros(*at),
                from,
                marker: v.marker,
                pt: v.payload_type,
                seq: v.sequence,
                ts: v.timestamp,
                ssrc: v.ssrc,
                payload: v.payload.to_vec(),
                raw: raw.clone(),
            }
        })
        .collect()
}

#[test]
fn a_caller_stream_is_one_continuous_rtp_stream_with_rfc4733_digits() {
    let stream = caller_stream(1000.0, "12", G711Law::Alaw);
    let got = as_received(stream.packets());
    // 1 s of tone, per digit 4 event updates + 2 end repeats + 80 ms of tone, 1 s of tone.
    assert_eq!(got.len(), 50 + 2 * (6 + 4) + 50);
    assert_eq!(stream.duration_ms(), got.len() as u64 * 20);
    for (i, (p, (at, _))) in got.iter().zip(stream.packets()).enumerate() {
        assert_eq!(p.ssrc, CALLER_SSRC);
        assert_eq!(p.seq, 1000 + i as u16, "consecutive sequence numbers");
        assert_eq!(*at, i as u64 * 20_000, "one packet per 20 ms");
        if p.pt == 8 {
            assert_eq!(p.payload.len(), 160);
            assert_eq!(
                p.ts,
                160_000 + 160 * i as u32,
                "audio timestamps follow the clock"
            );
            assert_eq!(p.marker, i == 0, "marker on the first audio packet only");
        } else {
            assert_eq!(p.pt, TELEPHONE_EVENT_PT);
        }
    }
    let events = event_packets(&got, TELEPHONE_EVENT_PT);
    assert_eq!(events.len(), 12);
    for (digit, key) in events.chunks(6).zip(['1', '2']) {
        let ts = digit[0].1;
        let durations: Vec<u16> = digit.iter().map(|e| e.5).collect();
        let ends: Vec<bool> = digit.iter().map(|e| e.4).collect();
        assert!(digit.iter().all(|e| e.1 == ts && e.3 == event_code(key)));
        assert!(
            digit[0].2 && digit[1..].iter().all(|e| !e.2),
            "marker on the start"
        );
        assert_eq!(durations, [160, 320, 480, 640, 640, 640]);
        assert_eq!(ends, [false, false, false, true, true, true]);
        // The event's timestamp is the clock at the key press.
        let index = got.iter().position(|p| p.seq == digit[0].0).unwrap();
        assert_eq!(ts, 160_000 + 160 * index as u32);
    }
    assert_eq!(rfc4733_digits(&got, TELEPHONE_EVENT_PT), "12");
    let audio = audio_of(&got);
    assert!(
        tone_share(&audio, 1000.0) > 0.95,
        "{}",
        tone_share(&audio, 1000.0)
    );
    assert!(tone_share(&audio, 1200.0) < 0.01);
    assert!(inband_digits(&audio).is_empty());
}

#[test]
fn tones_have_the_requested_frequency_and_level() {
    for law in [G711Law::Alaw, G711Law::Ulaw] {
        let pcm = decode(&tone_g711(440.0, 1000, law), law);
        assert_eq!(pcm.len(), 8000);
        assert!(
            tone_share(&pcm, 440.0) > 0.98,
            "{}",
            tone_share(&pcm, 440.0)
        );
        assert!(tone_share(&pcm, 640.0) < 0.01);
        // -10 dBm0: mean power A²/2 with A = 22700 × 10^(-10/20) ≈ 7178.
        let expected = amplitude(TONE_DBM0).powi(2) / 2.0;
        let ratio = mean_power(&pcm) / expected;
        assert!((0.95..1.05).contains(&ratio), "level off by {ratio}");
        let goertzel = goertzel_power(&pcm, 440.0) / expected;
        assert!(
            (0.95..1.05).contains(&goertzel),
            "Goertzel power off by {goertzel}"
        );
    }
    // What tone_share promises: 100 Hz or more away is below 1 %.
    let pcm = decode(&tone_g711(1000.0, 2000, G711Law::Alaw), G711Law::Alaw);
    for offset in (100..=900).step_by(7) {
        for f in [1000 - offset, 1000 + offset] {
            let share = tone_share(&pcm, f as f32);
            assert!(share < 0.01, "{f} Hz: {share}");
        }
    }
    assert_eq!(dtmf_freqs('5'), (770.0, 1336.0));
    assert_eq!(dtmf_freqs('#'), (941.0, 1477.0));
    assert_eq!(event_code('*'), 10);
    assert_eq!(event_code('D'), 15);
}

#[test]
fn inband_dtmf_is_what_the_routers_detector_hears() {
    for law in [G711Law::Alaw, G711Law::Ulaw] {
        let audio = audio_of(&as_received(
            inband_stream("0123456789*#ABCD", law).packets(),
        ));
        assert_eq!(inband_digits(&audio), "0123456789*#ABCD");
        // Each key: both its tones, at the same level, nothing of the other keys.
        let pcm = decode(&inband_dtmf_g711("5", law), law);
        let key = &pcm[..640];
        assert!(tone_share(key, 770.0) > 0.4 && tone_share(key, 1336.0) > 0.4);
        assert!(tone_share(key, 697.0) < 0.01 && tone_share(key, 1209.0) < 0.01);
    }
}

#[test]
fn pcaps_read_back_as_written() {
    let dir = temp_dir("pcap");
    let stream = caller_stream(1000.0, "9", G711Law::Ulaw);
    let path = dir.join("x.pcap");
    write_pcap(&path, stream.packets()).unwrap();
    let back = read_pcap(&path).unwrap();
    assert_eq!(back.len(), stream.packets().len());
    for ((at, port, rtp), (at0, rtp0)) in back.iter().zip(stream.packets()) {
        assert_eq!((at, port, rtp), (at0, &PCAP_DST.1, rtp0));
    }
    assert!(read_pcap(&empty_pcap(&dir)).unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn packet_loss_removes_about_the_requested_share() {
    let stream = seat_stream(440.0, 60_000, G711Law::Alaw);
    let all = stream.packets();
    assert_eq!(all.len(), 3000);
    let kept = drop_packets(all, 5.0, 7);
    let lost = 100.0 * (all.len() - kept.len()) as f64 / all.len() as f64;
    assert!((4.0..6.0).contains(&lost), "{lost} % lost");
    assert_eq!(kept, drop_packets(all, 5.0, 7), "reproducible");
    assert_eq!(drop_packets(all, 0.0, 7).len(), 3000);
    // A lossy tone is still that tone.
    let audio = audio_of(&as_received(&kept));
    assert!(tone_share(&audio, 440.0) > 0.95);
}

#[test]
fn two_channel_wavs_read_back_per_channel() {
    let dir = temp_dir("wav");
    let path = dir.join("call.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let (left, right) = (
        tone_pcm(1000.0, 500, TONE_DBM0),
        tone_pcm(440.0, 500, TONE_DBM0),
    );
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for (l, r) in left.iter().zip(&right) {
        w.write_sample(*l).unwrap();
        w.write_sample(*r).unwrap();
    }
    w.finalize().unwrap();
    let (rate, channels) = read_wav_channels(&path).unwrap();
    assert_eq!((rate, channels.len()), (8000, 2));
    assert_eq!(channels[0], left);
    assert_eq!(channels[1], right);
    assert!(tone_share(&channels[0], 1000.0) > 0.98 && tone_share(&channels[0], 440.0) < 0.01);
    assert!(tone_share(&channels[1], 440.0) > 0.98 && tone_share(&channels[1], 1000.0) < 0.01);

    // A recording as the router writes it: G.711 (µ-law here), decoded per channel.
    let law = G711Law::Ulaw;
    let mut writer = RecordingWriter::create(&dir, "g711.wav", law).unwrap();
    let interleaved: Vec<u8> = left
        .iter()
        .zip(&right)
        .flat_map(|(&l, &r)| [law.encode(l), law.encode(r)])
        .collect();
    writer.write(&interleaved).unwrap();
    writer.finish().unwrap();
    let (rate, channels) = read_wav_channels(&dir.join("g711.wav")).unwrap();
    assert_eq!(
        (rate, channels[0].len(), channels[1].len()),
        (8000, left.len(), right.len())
    );
    assert!(tone_share(&channels[0], 1000.0) > 0.95 && tone_share(&channels[0], 440.0) < 0.01);
    assert!(tone_share(&channels[1], 440.0) > 0.95 && tone_share(&channels[1], 1000.0) < 0.01);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_sink_records_what_another_plays_from_its_own_port() {
    let (a, b) = (RtpSink::bind(), RtpSink::bind());
    let stream = seat_stream(440.0, 400, G711Law::Alaw);
    let sent = a.play(b.addr(), stream.packets().to_vec());
    assert!(b.wait_for(20, Duration::from_secs(15)).await);
    assert_eq!(sent.join().unwrap(), 20);
    let got = b.stop();
    assert!(
        got.iter().all(|p| p.from == a.addr()),
        "symmetric: sent from the sink's port"
    );
    let raw: Vec<&Vec<u8>> = got.iter().map(|p| &p.raw).collect();
    let sent: Vec<&Vec<u8>> = stream.packets().iter().map(|(_, r)| r).collect();
    assert_eq!(raw, sent);
    let span = got.last().unwrap().arrival - got[0].arrival;
    assert!(span >= Duration::from_millis(370), "paced: {span:?}");
    assert_eq!(a.non_rtp(), 0);
}

/// Packets of `got` equal to `expected` byte for byte, in order, paced like the pcap.
fn assert_replayed(got: &[RtpPacket], expected: &[(u64, Vec<u8>)], what: &str) {
    let raw: Vec<&Vec<u8>> = got.iter().map(|p| &p.raw).collect();
    let want: Vec<&Vec<u8>> = expected.iter().map(|(_, r)| r).collect();
    assert_eq!(raw.len(), want.len(), "{what}: packet count");
    assert!(raw == want, "{what}: SIPp changed the RTP packets");
    let span = (got.last().unwrap().arrival - got[0].arrival).as_secs_f64();
    let planned = expected.last().unwrap().0 as f64 / 1e6;
    assert!(
        (span - planned).abs() < 0.1 * planned,
        "{what}: played over {span:.3} s, pcap spans {planned:.3} s"
    );
    let sources: std::collections::BTreeSet<SocketAddr> = got.iter().map(|p| p.from).collect();
    assert_eq!(sources.len(), 1, "{what}: one source port");
}

/// The `i=audio sent from port N` of the SDP in `log` (a SIPp -trace_msg file).
fn announced_source_ports(log: &str) -> Vec<u16> {
    log.lines()
        .filter_map(|l| l.strip_prefix("i=audio sent from port "))
        .map(|p| p.trim().parse().unwrap())
        .collect()
}

fn message_log(dir: &Path, prefix: &str) -> String {
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .find(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with(prefix) && name.ends_with("_messages.log")
        })
        .unwrap_or_else(|| panic!("no {prefix} message log in {}", dir.display()));
    std::fs::read_to_string(entry.path()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_plays_our_pcaps_byte_for_byte_between_caller_media_and_seat_media() {
    let dir = temp_dir("sipp-media");
    let caller_stream = caller_stream(1000.0, "123#", G711Law::Alaw);
    let caller_pcap = caller_pcap(&dir, 1000.0, "123#", G711Law::Alaw);
    let seat_stream = seat_stream(440.0, 2500, G711Law::Ulaw);
    let seat_pcap = seat_pcap(&dir, 440.0, 2500, G711Law::Ulaw);
    // Each SDP points at a sink: the caller's hears the seat, the seat's hears the caller.
    let (at_caller, at_seat) = (RtpSink::bind(), RtpSink::bind());

    let seat_port = free_udp_port();
    let seat_media = ports::media_port().to_string();
    let (pcap, rtp_port) = (seat_pcap.to_str().unwrap(), at_seat.port().to_string());
    let seat = sipp_keyed(
        "127.0.0.1:9".parse().unwrap(),
        "seat_media.xml",
        &[("pcap", pcap), ("rtp_port", &rtp_port)],
        &[
            "-p",
            &seat_port.to_string(),
            "-mp",
            &seat_media,
            "-m",
            "1",
            "-d",
            "100",
            "-timeout",
            "30s",
            "-trace_msg",
        ],
    )
    .current_dir(&dir)
    .spawn()
    .unwrap();
    udp_bound(seat_port).await;

    // caller_stream lasts 2.8 s: the INFO comes after it, the BYE 300 ms later.
    let call = MediaCall {
        rtp_port: Some(at_caller.port()),
        info_at_ms: 3_000,
        tail_ms: 300,
        ..MediaCall::new("15", &caller_pcap)
    };
    let seat_sip: SocketAddr = format!("127.0.0.1:{seat_port}").parse().unwrap();
    let caller = media_caller(seat_sip, &call);
    assert!(
        finish(caller, Duration::from_secs(20)).await,
        "caller_media.xml"
    );
    assert!(
        finish(seat, Duration::from_secs(10)).await,
        "seat_media.xml"
    );

    let heard_by_seat = at_seat.stop();
    let heard_by_caller = at_caller.stop();
    assert_replayed(&heard_by_seat, caller_stream.packets(), "caller → seat");
    assert_replayed(&heard_by_caller, seat_stream.packets(), "seat → caller");

    // What the assertions of the e2e tests will rest on.
    let audio = audio_of(&heard_by_seat);
    assert!(tone_share(&audio, 1000.0) > 0.95 && tone_share(&audio, 440.0) < 0.01);
    assert_eq!(rfc4733_digits(&heard_by_seat, TELEPHONE_EVENT_PT), "123#");
    let audio = audio_of(&heard_by_caller);
    assert!(tone_share(&audio, 440.0) > 0.95 && tone_share(&audio, 1000.0) < 0.01);
    assert_eq!(audio.len(), 2500 * 8);

    // The seat's trace: the INFO as sent, and the playback source ports SIPp announced
    // (i= lines: caller's in the INVITE, seat's in its 200) are the ones packets came from.
    let log = message_log(&dir, "seat_media_");
    let info = "Content-Type: application/dtmf-relay\r\n\
                Content-Length:    24\r\n\r\nSignal=9\r\nDuration=160\r\n";
    assert!(log.contains(info), "INFO body: {log}");
    let ports = announced_source_ports(&log);
    assert_eq!(ports.len(), 2, "{log}");
    assert_eq!(heard_by_seat[0].from.port(), ports[0]);
    assert_eq!(heard_by_caller[0].from.port(), ports[1]);
    assert_eq!(ports[1].to_string(), seat_media);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_plays_in_band_digits_from_caller_inband_that_the_detector_hears() {
    let dir = temp_dir("sipp-inband");
    let digits = "0123456789*#";
    let stream = inband_stream(digits, G711Law::Alaw);
    let pcap = inband_pcap(&dir, digits, G711Law::Alaw);
    let empty = empty_pcap(&dir);
    let at_seat = RtpSink::bind();
    let (seat, seat_port) = media_seat(
        "127.0.0.1:9".parse().unwrap(),
        &empty,
        Some(at_seat.port()),
        1,
        0,
    );
    udp_bound(seat_port).await;
    let call = MediaCall {
        scenario: "caller_inband.xml",
        info_at_ms: stream.duration_ms() + 200,
        tail_ms: 100,
        ..MediaCall::new("116117", &pcap)
    };
    let seat_sip: SocketAddr = format!("127.0.0.1:{seat_port}").parse().unwrap();
    assert!(finish(media_caller(seat_sip, &call), Duration::from_secs(20)).await);
    assert!(finish(seat, Duration::from_secs(10)).await);
    let heard = at_seat.stop();
    assert_replayed(&heard, stream.packets(), "in-band caller → seat");
    assert!(heard.iter().all(|p| p.pt == 8));
    assert_eq!(inband_digits(&audio_of(&heard)), digits);
    let _ = std::fs::remove_dir_all(dir);
}

/// Writes the load test's media: `MEDIA_PCAP_DIR` (required), `MEDIA_PCAP_SECONDS`
/// (default 60), `MEDIA_LOSS_PERCENT` (default 0). Files: caller.pcap (1000 Hz, PCMA),
/// seat.pcap (440 Hz, PCMA), loss removing packets at random (seeds fixed); and for SIPp's
/// `rtp_stream` (raw payload bytes, looped), caller.alaw and seat.alaw: 1 s of each tone
/// (a whole number of periods, so the loop is seamless).
#[test]
#[ignore = "a generator for loadtest/media.sh"]
fn write_loadtest_pcaps() {
    let dir = std::path::PathBuf::from(std::env::var("MEDIA_PCAP_DIR").expect("MEDIA_PCAP_DIR"));
    let env = |k: &str, d: f64| std::env::var(k).ok().map_or(d, |v| v.parse().unwrap());
    let seconds = env("MEDIA_PCAP_SECONDS", 60.0);
    let loss = env("MEDIA_LOSS_PERCENT", 0.0);
    let ms = (seconds * 1000.0) as u32;
    let mut caller = RtpStream::new(G711Law::Alaw).with_ssrc(CALLER_SSRC);
    caller.tone(1000.0, ms);
    let seat = seat_stream(440.0, ms, G711Law::Alaw);
    for (name, stream, seed) in [("caller.pcap", &caller, 1), ("seat.pcap", &seat, 2)] {
        let packets = drop_packets(stream.packets(), loss, seed);
        write_pcap(&dir.join(name), &packets).unwrap();
        println!(
            "{name}: {} packets ({} before loss)",
            packets.len(),
            stream.packets().len()
        );
    }
    for (name, hz) in [("caller.alaw", 1000.0), ("seat.alaw", 440.0)] {
        std::fs::write(dir.join(name), tone_g711(hz, 1000, G711Law::Alaw)).unwrap();
    }
}
