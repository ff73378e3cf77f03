//! Escalation end to end, with SIPp phones: an ARM transfers a 15 call to AMU by REFER and
//! the doctor hears the caller; AMU → libéral → AMU by REFER; a seat that vanishes while
//! ringing. The accompanied (P0) transfer through the CTI API is in `e2e_cti.rs`.

use crate::common;

use common::media::*;
use common::*;
use sas_router::acd::Urgency;
use sas_router::media::g711::G711Law;
use sas_router::store::record::{CallRecord, OfferResult, Outcome};
use std::time::Duration;

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
    let keys = [("target", target), ("priority", priority)];
    seat_sipp(router.sip, "seat_refers.xml", &keys, 1, talk_ms, true)
}

/// What a REFER escalation left: the record, and what caller and doctor heard.
struct Escalated {
    record: CallRecord,
    caller_heard: Vec<RtpPacket>,
    doctor_heard: Vec<RtpPacket>,
    /// `/metrics` after the call.
    metrics: String,
}

/// A 15 call: arm1 talks 1 s with the caller, then REFERs it to 2001 (AMU) with
/// `priority`; amu1 rings 1 s and answers. Caller and doctor are sinks of ours that talk
/// (500 Hz, 1800 Hz) and record what they hear.
async fn escalate_by_refer(priority: &str) -> Escalated {
    let dir = temp_dir("e2e-refer");
    let prompts = short_tone_prompts(&dir);
    let mut router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    let (arm, arm_port) = referring_seat(&router, "2001", priority, 1000);
    register(router.sip, "arm1", arm_port).await;
    let empty = empty_pcap(&dir);
    let doctor_sink = RtpSink::bind();
    let (doctor, doctor_port) = media_seat(router.sip, &empty, Some(doctor_sink.port()), 1, 1000);
    register(router.sip, "amu1", doctor_port).await;

    let (caller, caller_sink, talking) =
        talking_caller(router.sip, "15", &empty, CALLER_HZ, 6500).await;
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
    let record = wait_records(&router, 1).await.remove(0);
    let metrics = router.metrics();
    router.stop().await;
    Escalated {
        record,
        metrics,
        caller_heard: caller_sink.stop(),
        doctor_heard: doctor_sink.stop(),
    }
}

/// The doctor heard the caller, and the caller the doctor at the end of the call.
fn caller_and_doctor_talked(e: &Escalated) {
    assert!(
        tone_share(&audio_of(&e.doctor_heard), CALLER_HZ) > 0.4,
        "doctor hears the caller: {} packets",
        e.doctor_heard.len()
    );
    let end = e.caller_heard.last().unwrap().arrival.as_secs_f32();
    assert!(tone_share(&heard(&e.caller_heard, end - 2.0, end - 0.5), DOCTOR_HZ) > 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_refers_a_15_call_to_amu_and_caller_and_doctor_hear_each_other() {
    let e = escalate_by_refer("P1").await;
    let r = &e.record;
    assert_eq!(r.outcome, Some(Outcome::Answered));
    // The seat that answered the caller; the doctor is the last handler.
    assert_eq!(r.seat.as_deref(), Some("arm1"));
    assert_eq!(r.urgency, Some(Urgency::P1));
    assert_eq!(
        handlers(r),
        [("arm1", Some("transfer")), ("amu1", Some("caller_bye"))]
    );
    let transfer = r.events.iter().find(|e| e.kind == "TRANSFER").unwrap();
    assert_eq!(transfer.seat.as_deref(), Some("arm1"));
    // Each wait counts in its own queue: the ARM's in `arm`, the doctor's in `amu`.
    for queue in ["arm", "amu"] {
        let sample =
            format!("sas_queue_wait_seconds_count{{outcome=\"answered\",queue=\"{queue}\"}} 1");
        assert!(
            e.metrics.lines().any(|l| l == sample),
            "{sample}\n{}",
            e.metrics
        );
    }
    assert!(r.route.iter().any(|l| l.contains("transferred by arm1")));
    caller_and_doctor_talked(&e);
    // Between the ARM and the doctor, the caller waited on hold audio.
    let end = e.caller_heard.last().unwrap().arrival.as_secs_f32();
    assert!(
        tone_share(&heard(&e.caller_heard, 0.5, end - 2.5), HOLD_HZ) > 0.1,
        "hold audio between the ARM and the doctor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p0_referred_from_a_sip_phone_is_accompanied_until_the_doctor_answers() {
    let e = escalate_by_refer("P0").await;
    let r = &e.record;
    assert_eq!(r.urgency, Some(Urgency::P0));
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"ACCOMPANIED"), "{kinds:?}");
    assert!(!kinds.contains(&"TRANSFER"), "{kinds:?}");
    // The ARM stayed until the doctor answered, then left the three-way call itself.
    assert_eq!(
        handlers(r),
        [("arm1", Some("left")), ("amu1", Some("caller_bye"))]
    );
    let connect = r
        .events
        .iter()
        .position(|e| e.kind == "CONNECT" && e.seat.as_deref() == Some("amu1"));
    let left = r.events.iter().position(|e| e.kind == "LEFT");
    assert!(connect < left, "{kinds:?}");
    caller_and_doctor_talked(&e);
    // Never on hold: someone was with the caller all along.
    assert!(tone_share(&audio_of(&e.caller_heard), HOLD_HZ) < 0.02);
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
    let idle = eventually(Duration::from_secs(15), || {
        router.metric("sas_seats{role=\"regulateur_amu\",state=\"available\"}") == 1.0
    })
    .await;
    assert!(idle, "amu1 is available");
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
    let (lost, good) = silent_arm1_then_answering_arm2(&router).await;

    let caller = trunk_caller(router.sip, "caller.xml", "15", 1500);
    // arm1 rings, then its phone disappears (power cut): no answer, no CANCEL response.
    let rang = eventually(Duration::from_secs(15), || {
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
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"paused\"}", 1.0)
        .await;
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"ringing\"}", 0.0)
        .await;
    router.stop().await;
}

/// SAS Psy as the shipped plans have it: the psy queue overflows to 3114 after a while.
const PSY_PLAN: &str = r#"
[queues.arm]
role = "arm"

[queues.psy]
role = "psy"

[external]
prevention_suicide = "3114"

[internal.psy]
number = "2004"
entry = "escalade"
step = "psy"

[entries.sas]
numbers = ["116117"]
line = "sas"
start = "file"

[entries.sas.steps.file]
queue = "arm"
priority = 1

[entries.escalade]
numbers = []
line = "escalade"
start = "psy"

[entries.escalade.steps.psy]
queue = "psy"
priority = 1
max_wait_s = 1
overflow = "vers_3114"

[entries.escalade.steps.vers_3114]
forward = "prevention_suicide"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sas_psy_transfer_with_no_responder_free_reaches_3114_through_the_trunk() {
    // The national 3114 line, reached through the trunk's outbound address.
    let (line_3114, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let mut router = start(Options {
        plans: Some(PSY_PLAN.into()),
        outbound: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..Options::default()
    })
    .await;
    let (arm, arm_port) = referring_seat(&router, "2004", "P2", 800);
    register(router.sip, "arm1", arm_port).await;
    let caller = trunk_caller(router.sip, "caller.xml", "116117", 5000);
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(arm, Duration::from_secs(10)).await, "ARM");
    assert!(
        finish(line_3114, Duration::from_secs(10)).await,
        "3114 answered and got BYE"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Forwarded), "{:#?}", r.events);
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    let order = [
        "CONNECT",
        "TRANSFER",
        "ENTERQUEUE",
        "OVERFLOW",
        "FORWARD",
        "CONNECT",
    ];
    let mut at = 0;
    for kind in order {
        at += kinds[at..]
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("{kind} after {at} in {kinds:?}"))
            + 1;
    }
    assert_eq!(
        handlers(&r),
        [("arm1", Some("transfer")), ("external", Some("caller_bye"))]
    );
    assert!(
        r.route.iter().any(|l| l.contains("(3114)")),
        "{:?}",
        r.route
    );
    router.stop().await;
}
