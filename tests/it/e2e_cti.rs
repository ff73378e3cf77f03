//! The CTI API on a real router with SIPp phones: a P0 accompanied transfer from the ARM's
//! console with three-way audio checked, the call file handed to the doctor, events on the
//! doctor's console; pause and resume keeping a seat out of distribution; the call file
//! written in wrap-up.

use crate::common;

use common::media::*;
use common::*;
use futures_util::StreamExt;
use sas_router::acd::Urgency;
use sas_router::media::g711::G711Law;
use sas_router::store::record::Outcome;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const CALLER_HZ: f32 = 500.0;
const ARM_HZ: f32 = 1000.0;
const DOCTOR_HZ: f32 = 1800.0;

/// Polls the seat's CTI status until `check` holds.
pub(crate) async fn status_until(
    router: &Router,
    token: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        let (status, answer) = cti(router, token, "GET", "/api/cti/status", Value::Null).await;
        assert_eq!(status, 200, "{answer}");
        if check(&answer) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("CTI status never matched");
}

/// A phone answering after `ring_ms` whose media is a sink of ours: it records what the
/// router sends and talks back (`hz`) from the first packet on.
async fn seat_with_voice(
    router: &Router,
    dir: &std::path::Path,
    user: &str,
    ring_ms: u64,
) -> (tokio::process::Child, RtpSink) {
    let sink = RtpSink::bind();
    let (phone, port) = media_seat(router.sip, &empty_pcap(dir), Some(sink.port()), 1, ring_ms);
    register(router.sip, user, port).await;
    (phone, sink)
}

fn tone_stream(hz: f32, ms: u32, law: G711Law) -> Vec<(u64, Vec<u8>)> {
    let mut s = RtpStream::new(law);
    s.tone(hz, ms);
    s.into_packets()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p0_accompanied_transfer_puts_caller_arm_and_doctor_together_until_the_arm_leaves() {
    let dir = temp_dir("e2e-cti");
    let prompts = short_tone_prompts(&dir);
    let mut router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    let (arm, arm_sink) = seat_with_voice(&router, &dir, "arm1", 200).await;
    let (doctor, doctor_sink) = seat_with_voice(&router, &dir, "amu1", 1000).await;
    let arm_token = cti_login(&router, "arm1").await;
    let doctor_token = cti_login(&router, "amu1").await;
    let ws = format!("ws://{}/api/cti/events?token={doctor_token}", router.http);
    let (mut doctor_console, _) = tokio_tungstenite::connect_async(ws).await.unwrap();

    let caller_sink = RtpSink::bind();
    let t0 = Instant::now();
    let caller = media_caller(
        router.sip,
        &MediaCall {
            rtp_port: Some(caller_sink.port()),
            info_at_ms: 9000,
            tail_ms: 500,
            ..MediaCall::new("15", &empty_pcap(&dir))
        },
    );
    // Everyone talks from the moment they hear someone: the caller from the greeting on,
    // the ARM once it answered.
    let caller_talks = caller_sink
        .play_to_sender(
            tone_stream(CALLER_HZ, 9000, G711Law::Alaw),
            Duration::from_secs(5),
        )
        .await;
    let arm_talks = arm_sink
        .play_to_sender(
            tone_stream(ARM_HZ, 6000, G711Law::Alaw),
            Duration::from_secs(5),
        )
        .await;
    status_until(&router, &arm_token, |s| s["state"]["state"] == "busy").await;

    // The ARM qualifies the call (P0: vital distress) and hands it to AMU, staying on.
    let file = json!({
        "priority": "P0",
        "reason": "douleur thoracique",
        "postcode": "69003",
        "decision": "smur",
    });
    let (status, answer) = cti(&router, &arm_token, "POST", "/api/cti/file", file).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = cti(
        &router,
        &arm_token,
        "POST",
        "/api/cti/transfer",
        json!({ "target": "amu" }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mode"], "accompanied", "P0 is always accompanied");

    // The doctor's phone rings, then answers: three-way.
    let doctor_talks = doctor_sink
        .play_to_sender(
            tone_stream(DOCTOR_HZ, 5000, G711Law::Ulaw),
            Duration::from_secs(10),
        )
        .await;
    let conference_from = t0.elapsed().as_secs_f32() + 0.3;
    // The doctor's console shows the call with the ARM's file, and the ARM as handler.
    let seen = status_until(&router, &doctor_token, |s| s["state"]["state"] == "busy").await;
    let call = &seen["call"];
    assert_eq!(call["urgency"], "P0");
    assert_eq!(call["file"][0]["seat"], "arm1");
    assert_eq!(call["file"][0]["reason"], "douleur thoracique");
    assert_eq!(call["handlers"][0]["seat"], "arm1");
    assert_eq!(call["line"], "samu");
    // The scenario: 2.5 s of three-way talk, the window the recordings are checked in.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let conference_to = t0.elapsed().as_secs_f32() - 0.1;

    // The ARM leaves from its console; caller and doctor go on.
    let (status, answer) = cti(&router, &arm_token, "POST", "/api/cti/hangup", Value::Null).await;
    assert_eq!(status, 200, "{answer}");
    let after = t0.elapsed().as_secs_f32() + 0.3;
    assert!(
        finish(arm, Duration::from_secs(10)).await,
        "ARM phone got BYE"
    );
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(doctor, Duration::from_secs(10)).await, "doctor");
    for talk in [arm_talks, caller_talks, doctor_talks] {
        talk.join().unwrap();
    }
    let (caller_heard, arm_heard, doctor_heard) =
        (caller_sink.stop(), arm_sink.stop(), doctor_sink.stop());

    // Three-way: each hears the two others.
    let window = |p: &[RtpPacket]| heard(p, conference_from, conference_to);
    for (who, got, others) in [
        ("caller", window(&caller_heard), [ARM_HZ, DOCTOR_HZ]),
        ("ARM", window(&arm_heard), [CALLER_HZ, DOCTOR_HZ]),
        ("doctor", window(&doctor_heard), [CALLER_HZ, ARM_HZ]),
    ] {
        for hz in others {
            let share = tone_share(&got, hz);
            assert!(share > 0.15, "{who} hears {hz} Hz: {share:.2}");
        }
    }
    // Then the caller hears the doctor alone.
    let end = caller_heard.last().unwrap().arrival.as_secs_f32();
    let alone = heard(&caller_heard, after, end.min(after + 2.0));
    assert!(tone_share(&alone, DOCTOR_HZ) > 0.6);
    assert!(tone_share(&alone, ARM_HZ) < 0.05);

    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.urgency, Some(Urgency::P0));
    assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
    let handlers = handlers(&r);
    assert_eq!(
        handlers,
        [("arm1", Some("left")), ("amu1", Some("caller_bye"))]
    );
    assert_eq!(r.file.len(), 1);
    assert_eq!(r.file[0].seat, "arm1");
    let quality = r.quality.expect("quality");
    assert!(
        quality.second_seat.is_some(),
        "the doctor's leg carried audio"
    );

    // The doctor's console heard the offer and the three-way call.
    let mut kinds = Vec::new();
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(300), doctor_console.next()).await
    {
        let event: Value = serde_json::from_str(&text).unwrap();
        kinds.push(event["kind"].as_str().unwrap().to_string());
    }
    for kind in ["hello", "offer", "accompanied", "call_end"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // The ARM's history keeps the transfer and its states.
    let (_, history) = cti(&router, &arm_token, "GET", "/api/cti/history", Value::Null).await;
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "LOGIN",
        "OFFER",
        "CONNECT",
        "QUALIFY",
        "TRANSFER",
        "ACCOMPANIED",
        "LEFT",
        "STATE",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_seat_is_skipped_until_it_resumes() {
    let mut router = start(Options::default()).await;
    let first = seat(&router, "arm1", 1, 100).await;
    let token = cti_login(&router, "arm1").await;
    let (status, answer) = cti(
        &router,
        &token,
        "POST",
        "/api/cti/pause",
        json!({ "reason": "break" }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"]["state"], "paused");
    assert_eq!(answer["state"]["detail"]["reason"], "break");
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"paused\"}", 1.0)
        .await;
    // A call comes while arm1 is on a break: it waits.
    let caller = trunk_caller(router.sip, "caller.xml", "15", 1000);
    let waits = eventually(Duration::from_secs(15), || {
        router.metric("sas_queue_depth{queue=\"arm\"}") == 1.0
    })
    .await;
    assert!(waits, "the call waits");
    // Back from the break: the call is offered at once and answered.
    let (status, _) = cti(&router, &token, "POST", "/api/cti/resume", Value::Null).await;
    assert_eq!(status, 200);
    assert!(finish(caller, Duration::from_secs(30)).await);
    assert!(finish(first, Duration::from_secs(10)).await);
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.seat.as_deref(), Some("arm1"));
    // Pausing on a call is refused with a reason.
    let (status, answer) = cti(&router, &token, "POST", "/api/cti/hangup", Value::Null).await;
    assert_eq!(status, 409, "no call: {answer}");
    let (_, history) = cti(&router, &token, "GET", "/api/cti/history", Value::Null).await;
    let pause = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "PAUSE")
        .expect("PAUSE in history");
    assert_eq!(pause["detail"], "break");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_frees_a_seat_whose_phone_died_mid_call() {
    let mut router = start(Options::default()).await;
    let phone = seat(&router, "arm1", 1, 100).await;
    let caller = trunk_caller(router.sip, "caller_stays.xml", "15", 0);
    let busy = eventually(Duration::from_secs(10), || {
        router.metric("sas_seats{role=\"arm\",state=\"busy\"}") == 1.0
    })
    .await;
    assert!(busy, "arm1 took the call");
    // The phone dies: no BYE will ever come. Its seat stays busy…
    drop(phone);
    // Nothing must happen: a wrongly freed seat gets 300 ms to show before the check.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(router.metric("sas_seats{role=\"arm\",state=\"busy\"}"), 1.0);
    // …until a supervisor resets it: the caller is hung up, the call recorded, the seat free.
    let arm = cti_login(&router, "arm1").await;
    let (status, _) = cti(
        &router,
        &arm,
        "POST",
        "/api/supervisor/seats/arm1/reset",
        Value::Null,
    )
    .await;
    assert_eq!(status, 403, "an ARM may not reset seats");
    let sup = cti_login(&router, "sup1").await;
    let (status, answer) = cti(
        &router,
        &sup,
        "POST",
        "/api/supervisor/seats/arm1/reset",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"]["state"], "available");
    assert!(
        finish(caller, Duration::from_secs(10)).await,
        "the caller got a BYE"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.end_reason.as_deref(), Some("seat_reset"));
    let (_, history) = cti(
        &router,
        &sup,
        "GET",
        "/api/supervisor/seats/arm1/history",
        Value::Null,
    )
    .await;
    let reset = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "RESET")
        .expect("RESET in arm1's history");
    assert_eq!(reset["detail"], "sup1");
    router.stop().await;
}

/// Wrap-up over the CTI API alone: the file of the seat's last call stays writable after
/// the caller hung up (it used to answer 409), into that call's stored record, until the
/// seat is offered its next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_call_s_file_stays_writable_in_wrap_up_until_the_next_offer() {
    let mut router = start(Options::default()).await;
    let phone = seat(&router, "arm1", 2, 100).await;
    let arm = cti_login(&router, "arm1").await;
    let idle = cti_login(&router, "arm2").await;
    let write = |note: &str| json!({ "note": note });

    let caller = trunk_caller(router.sip, "caller.xml", "15", 1000);
    assert!(
        finish(caller, Duration::from_secs(15)).await,
        "first caller"
    );
    let first = status_until(&router, &arm, |s| !s["wrap_up"].is_null()).await;
    let first_id = first["wrap_up"]["id"].as_str().unwrap().to_string();
    assert_eq!(first["state"]["state"], "available", "{first}");
    let (status, answer) = cti(&router, &arm, "POST", "/api/cti/file", write("a")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["wrap_up"]["file"][0]["note"], "a", "{answer}");
    // A seat without a last call has nothing to write.
    let (status, _) = cti(&router, &idle, "POST", "/api/cti/file", write("x")).await;
    assert_eq!(status, 409);

    // The next call is offered: the wrap-up of the first one is over.
    let caller = trunk_caller(router.sip, "caller.xml", "15", 1000);
    assert!(
        finish(caller, Duration::from_secs(15)).await,
        "second caller"
    );
    let second = status_until(&router, &arm, |s| {
        s["wrap_up"]["id"].as_str().is_some_and(|id| id != first_id)
    })
    .await;
    let (status, _) = cti(&router, &arm, "POST", "/api/cti/file", write("b")).await;
    assert_eq!(status, 200);
    assert!(finish(phone, Duration::from_secs(15)).await, "ARM phone");

    let records = wait_records(&router, 2).await;
    let notes = |id: &str| -> Vec<String> {
        let r = records.iter().find(|r| r.id == id).unwrap();
        r.file.iter().filter_map(|e| e.data.note.clone()).collect()
    };
    assert_eq!(notes(&first_id), ["a"]);
    assert_eq!(notes(second["wrap_up"]["id"].as_str().unwrap()), ["b"]);
    router.stop().await;
}
