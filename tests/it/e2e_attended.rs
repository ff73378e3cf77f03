//! Seats' phones calling through the router, with SIPp phones: a seat dials the internal
//! number 2001 (digest-authenticated) and an AMU regulator answers; an ARM hands its
//! caller to the doctor it consulted that way, by REFER with Replaces (RFC 3891).

use crate::common;

use common::media::*;
use common::*;
use sas_router::media::g711::G711Law;
use sas_router::store::record::Outcome;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_dials_2001_and_an_amu_regulator_answers() {
    let mut router = start(Options::default()).await;
    let (doctor, doctor_port) = seat_sipp(router.sip, "seat_hangs_up.xml", &[], 1, 200, true);
    register(router.sip, "amu1", doctor_port).await;
    // arm1 is not registered: dialling needs its password, not a registration.
    let phone = seat_phone(router.sip, "arm1", "2001", &[]);
    assert!(finish(doctor, Duration::from_secs(20)).await, "doctor");
    assert!(finish(phone, Duration::from_secs(20)).await, "ARM phone");
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.line, "escalade");
    assert_eq!(r.seat.as_deref(), Some("amu1"));
    assert_eq!(r.caller.reveal(), "arm1");
    assert_eq!(r.tags.get("from_seat").map(String::as_str), Some("arm1"));
    let rtp = r.rtp.expect("RTP counters");
    assert!(rtp.caller.rx_packets > 20, "{rtp:?}");
    assert!(rtp.seat.rx_packets > 20, "the doctor echoed: {rtp:?}");
    assert!(rtp.seat.tx_packets > 20, "{rtp:?}");
    router.stop().await;
}

const CALLER_HZ: f32 = 500.0;
const DOCTOR_HZ: f32 = 1800.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_hands_its_caller_to_the_doctor_it_consulted_by_refer_with_replaces() {
    let dir = temp_dir("e2e-attended");
    let mut router = start(Options::default()).await;
    // arm1's phone, on the caller's call: talks 3 s, then REFERs with Replaces.
    let consult = [("consult_id", "consult-1"), ("consult_tag", "dial1")];
    let (arm, arm_port) = seat_sipp(router.sip, "seat_attended.xml", &consult, 1, 3000, false);
    register(router.sip, "arm1", arm_port).await;
    let empty = empty_pcap(&dir);
    let doctor_sink = RtpSink::bind();
    let sink_port = doctor_sink.port().to_string();
    let keys = [("pcap", empty.to_str().unwrap()), ("rtp_port", &sink_port)];
    let (doctor, doctor_port) = seat_sipp(router.sip, "seat_reinvited.xml", &keys, 1, 200, false);
    register(router.sip, "amu1", doctor_port).await;

    let (caller, caller_sink, talking) =
        talking_caller(router.sip, "15", &empty, CALLER_HZ, 8000).await;
    // arm1 answered: its phone dials 2001 (the consultation call, Call-ID consult-1).
    let answered = eventually(Duration::from_secs(15), || {
        router.metric("sas_seats{role=\"arm\",state=\"busy\"}") == 1.0
    })
    .await;
    assert!(answered, "arm1 took the call");
    let consultation = seat_phone(router.sip, "arm1", "2001", &["-cid_str", "consult-%u"]);

    // The consultation ends (replaced) once the doctor moved onto the caller's call; the
    // doctor then talks to where the caller's audio comes from: the packets after the
    // consultation's record (written once its relay stopped).
    let consult = wait_records(&router, 1).await.remove(0);
    let before = doctor_sink.len();
    assert!(
        doctor_sink
            .wait_for(before + 3, Duration::from_secs(15))
            .await,
        "the caller's audio reaches the doctor"
    );
    let from_caller_call = doctor_sink.packets().last().unwrap().from;
    let mut doctor_voice = RtpStream::new(G711Law::Ulaw);
    doctor_voice.tone(DOCTOR_HZ, 6000);
    let doctor_talking = doctor_sink.play(from_caller_call, doctor_voice.into_packets());

    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(
        finish(arm, Duration::from_secs(10)).await,
        "ARM phone: 202, NOTIFY 200, BYE"
    );
    assert!(
        finish(consultation, Duration::from_secs(10)).await,
        "consultation call ended by the router"
    );
    assert!(
        finish(doctor, Duration::from_secs(10)).await,
        "doctor: re-INVITE, then the caller's BYE"
    );
    talking.join().unwrap();
    doctor_talking.join().unwrap();

    assert_eq!(consult.outcome, Some(Outcome::Answered));
    assert_eq!(consult.end_reason.as_deref(), Some("replaced"));
    assert_eq!(consult.sip_call_id, "consult-1");
    let records = wait_records(&router, 2).await;
    router.stop().await;
    let r = records.iter().find(|r| r.line == "samu").unwrap();
    assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
    let handlers = handlers(r);
    assert_eq!(
        handlers,
        [("arm1", Some("transfer")), ("amu1", Some("caller_bye"))]
    );
    let transfer = r.events.iter().find(|e| e.kind == "TRANSFER").unwrap();
    assert!(transfer.detail.as_deref().unwrap().contains("attended"));

    let doctor_heard: Vec<RtpPacket> = doctor_sink
        .stop()
        .into_iter()
        .filter(|p| p.from == from_caller_call)
        .collect();
    assert!(
        tone_share(&audio_of(&doctor_heard), CALLER_HZ) > 0.4,
        "the doctor hears the caller: {} packets",
        doctor_heard.len()
    );
    // At the end of the call, the caller hears the doctor.
    let caller_heard = caller_sink.stop();
    let end = caller_heard.last().unwrap().arrival.as_secs_f32();
    let last: Vec<RtpPacket> = caller_heard
        .into_iter()
        .filter(|p| (end - 2.0..end - 0.5).contains(&p.arrival.as_secs_f32()))
        .collect();
    assert!(
        tone_share(&audio_of(&last), DOCTOR_HZ) > 0.5,
        "the caller hears the doctor: {} packets",
        last.len()
    );
}
