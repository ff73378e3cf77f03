//! Escalation end to end, with SIPp phones: an ARM transfers a 15 call to AMU by REFER and
//! the doctor hears the caller; AMU → libéral → AMU by REFER; a seat that vanishes while
//! ringing. The accompanied (P0) transfer through the CTI API is in `e2e_cti.rs`.

mod common;

use common::media::*;
use common::*;
use sas_router::media::g711::G711Law;
use sas_router::store::record::{CallRecord, OfferResult, Outcome};
use std::time::Duration;

const HOLD_HZ: f32 = 660.0;
const CALLER_HZ: f32 = 500.0;
const DOCTOR_HZ: f32 = 1800.0;

/// A seat phone that answers at once, talks `talk_ms` (echoing RTP), then REFERs the call
/// to `target` with `priority`; returns it and its SIP port.
fn referring_seat(
    router: &Router,
    target: &str,
    priority: &str,
    talk_ms: u64,
) -> (tokio::process::Child, u16) {
    let port = free_udp_port();
    let media = free_udp_port();
    let child = sipp_keyed(
        router.sip,
        "seat_refers.xml",
        &[("target", target), ("priority", priority)],
        &[
            "-p",
            &port.to_string(),
            "-mp",
            &media.to_string(),
            "-rtp_echo",
            "-m",
            "1",
            "-d",
            &talk_ms.to_string(),
            "-timeout",
            "60s",
        ],
    )
    .spawn()
    .unwrap();
    (child, port)
}

fn handlers(r: &CallRecord) -> Vec<(&str, Option<&str>)> {
    r.handlers
        .iter()
        .map(|h| (h.seat.as_str(), h.left.as_deref()))
        .collect()
}

/// Audio of the packets that arrived between `from` and `to` seconds.
fn heard(packets: &[RtpPacket], from: f32, to: f32) -> Vec<i16> {
    let window: Vec<RtpPacket> = packets
        .iter()
        .filter(|p| (from..to).contains(&p.arrival.as_secs_f32()))
        .cloned()
        .collect();
    audio_of(&window)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_refers_a_15_call_to_amu_and_caller_and_doctor_hear_each_other() {
    let dir = temp_dir("e2e-refer");
    let prompts = dir.join("prompts");
    write_tone_prompts(
        &prompts,
        &[
            ("greeting", 440.0, 300),
            ("hold", HOLD_HZ, 3000),
            ("reassurance", 880.0, 100),
        ],
    );
    let mut router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    // The ARM talks 1.5 s, then transfers to 2001 (AMU) as P1.
    let (arm, arm_port) = referring_seat(&router, "2001", "P1", 1500);
    register(router.sip, "arm1", arm_port).await;
    // The doctor rings 1 s and answers; its media is a sink of ours that hears what the
    // router sends and talks back (1800 Hz) once it hears the caller.
    let empty = empty_pcap(&dir);
    let doctor_sink = RtpSink::bind();
    let (doctor, doctor_port) = media_seat(router.sip, &empty, Some(doctor_sink.port()), 1, 1000);
    register(router.sip, "amu1", doctor_port).await;

    let caller_sink = RtpSink::bind();
    let caller = media_caller(
        router.sip,
        &MediaCall {
            rtp_port: Some(caller_sink.port()),
            info_at_ms: 6500,
            tail_ms: 500,
            ..MediaCall::new("15", &empty)
        },
    );
    let mut voice = RtpStream::new(G711Law::Alaw);
    voice.tone(CALLER_HZ, 6500);
    let talking = caller_sink
        .play_to_sender(voice.into_packets(), Duration::from_secs(5))
        .await;
    let mut doctor_voice = RtpStream::new(G711Law::Ulaw);
    doctor_voice.tone(DOCTOR_HZ, 3000);
    let doctor_talking = doctor_sink
        .play_to_sender(doctor_voice.into_packets(), Duration::from_secs(10))
        .await;
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(
        finish(arm, Duration::from_secs(10)).await,
        "ARM: 202, NOTIFY 200, then BYE"
    );
    assert!(finish(doctor, Duration::from_secs(10)).await, "doctor");
    talking.join().unwrap();
    doctor_talking.join().unwrap();
    let caller_heard = caller_sink.stop();
    let doctor_heard = doctor_sink.stop();

    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.seat.as_deref(), Some("amu1"));
    assert_eq!(
        handlers(&r),
        [("arm1", Some("transfer")), ("amu1", Some("caller_bye"))]
    );
    let transfer = r.events.iter().find(|e| e.kind == "TRANSFER").unwrap();
    assert_eq!(transfer.seat.as_deref(), Some("arm1"));
    assert!(
        transfer.detail.as_deref().unwrap().contains("P1"),
        "{transfer:?}"
    );
    assert!(r.route.iter().any(|l| l.contains("transferred by arm1")));

    // The doctor hears the caller; the caller heard hold audio while waiting, then the doctor.
    let doctor_audio = audio_of(&doctor_heard);
    assert!(
        tone_share(&doctor_audio, CALLER_HZ) > 0.5,
        "doctor hears the caller: {} packets",
        doctor_heard.len()
    );
    let end = caller_heard.last().unwrap().arrival.as_secs_f32();
    assert!(tone_share(&heard(&caller_heard, end - 2.5, end - 0.5), DOCTOR_HZ) > 0.5);
    let between = heard(&caller_heard, 0.5, end - 3.0);
    assert!(
        tone_share(&between, HOLD_HZ) > 0.1,
        "hold audio between the ARM and the doctor"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amu_to_liberal_to_amu_by_refer_keeps_the_caller_on_the_line() {
    let mut router = start(Options {
        wrap_up_s: 0,
        ..Options::default()
    })
    .await;
    let mut phones = Vec::new();
    for (seat, target) in [("arm1", "2001"), ("amu1", "2002"), ("lib1", "amu")] {
        let (phone, port) = referring_seat(&router, target, "P2", 800);
        register(router.sip, seat, port).await;
        phones.push((seat, phone));
    }
    // amu1 is the longest idle AMU seat, so it takes the first hop; amu2 the return.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last = seat(&router, "amu2", 1, 100).await;
    phones.push(("amu2", last));

    let caller = trunk_caller(router.sip, "caller.xml", "15", 6000);
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    for (seat, phone) in phones {
        assert!(finish(phone, Duration::from_secs(10)).await, "{seat}");
    }
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(
        handlers(&r),
        [
            ("arm1", Some("transfer")),
            ("amu1", Some("transfer")),
            ("lib1", Some("transfer")),
            ("amu2", Some("caller_bye")),
        ]
    );
    assert_eq!(r.events.iter().filter(|e| e.kind == "TRANSFER").count(), 3);
    // Every seat is free again (wrap-up 0): nobody left busy by a transfer.
    for role in ["arm", "regulateur_amu", "regulateur_liberal"] {
        assert_eq!(
            router.metric(&format!("sas_seats{{role=\"{role}\",state=\"busy\"}}")),
            0.0,
            "{role}"
        );
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_that_vanishes_while_ringing_is_paused_and_the_next_seat_answers() {
    let mut router = start(Options {
        ring_timeout_s: 2,
        ..Options::default()
    })
    .await;
    let lost_port = free_udp_port();
    let lost = sipp(
        router.sip,
        "seat_no_answer.xml",
        &["-p", &lost_port.to_string(), "-m", "1", "-timeout", "30s"],
    )
    .spawn()
    .unwrap();
    register(router.sip, "arm1", lost_port).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let good = seat(&router, "arm2", 1, 100).await;

    let caller = trunk_caller(router.sip, "caller.xml", "15", 1500);
    // arm1 rings, then its phone disappears (power cut): no answer, no CANCEL response.
    let rang = eventually(Duration::from_secs(5), || {
        router.metric("sas_seats{role=\"arm\",state=\"ringing\"}") == 1.0
    })
    .await;
    assert!(rang, "arm1 rang");
    drop(lost);
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(good, Duration::from_secs(10)).await, "arm2");
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.seat.as_deref(), Some("arm2"));
    let results: Vec<(&str, OfferResult)> = r
        .offers
        .iter()
        .map(|o| (o.seat.as_str(), o.result))
        .collect();
    assert_eq!(
        results,
        [
            ("arm1", OfferResult::NoAnswer),
            ("arm2", OfferResult::Answered)
        ]
    );
    // arm1 is out of distribution (ring-no-answer), not stuck ringing.
    assert_eq!(
        router.metric("sas_seats{role=\"arm\",state=\"paused\"}"),
        1.0
    );
    assert_eq!(
        router.metric("sas_seats{role=\"arm\",state=\"ringing\"}"),
        0.0
    );
    router.stop().await;
}
