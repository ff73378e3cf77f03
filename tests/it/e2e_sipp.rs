//! End to end over loopback with real SIPp peers: a trunk caller, seats that register
//! with digest auth and answer (echoing RTP), and the router in between.

use crate::common;

use common::*;
use sas_router::store::record::{CallRecord, OfferResult, Outcome};
use std::time::Duration;

fn caller(router: &Router, number: &str, talk_ms: u64) -> tokio::process::Child {
    trunk_caller(router.sip, "caller.xml", number, talk_ms)
}

fn assert_rtp_both_ways(r: &CallRecord) {
    let rtp = r.rtp.expect("bridged call has RTP counters");
    assert!(rtp.caller.rx_packets > 20, "caller → router: {rtp:?}");
    assert!(rtp.seat.tx_packets > 20, "router → seat: {rtp:?}");
    assert!(rtp.seat.rx_packets > 20, "seat → router (echo): {rtp:?}");
    assert!(rtp.caller.tx_packets > 20, "router → caller: {rtp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samu_and_sas_calls_reach_a_registered_seat_with_rtp_both_ways() {
    let mut router = start(Options::default()).await;
    let seat = seat(&router, "arm1", 2, 300).await;
    assert!(
        eventually(Duration::from_secs(15), || router
            .metric("sas_seats{role=\"arm\",state=\"available\"}")
            == 1.0)
        .await,
        "arm1 available after REGISTER: {}",
        router.metrics()
    );

    assert!(
        finish(caller(&router, "15", 2500), Duration::from_secs(30)).await,
        "15 caller scenario"
    );
    assert!(
        finish(caller(&router, "116117", 2500), Duration::from_secs(30)).await,
        "116117 caller scenario"
    );
    assert!(finish(seat, Duration::from_secs(10)).await, "seat scenario");

    let list = wait_records(&router, 2).await;
    let samu = list.iter().find(|r| r.line == "samu").expect("samu record");
    let sas = list.iter().find(|r| r.line == "sas").expect("sas record");
    for r in [samu, sas] {
        assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
        assert_eq!(r.seat.as_deref(), Some("arm1"));
        assert_eq!(r.caller.reveal(), "0612345678");
        assert_eq!(r.end_reason.as_deref(), Some("caller_bye"));
        assert!(r.talk_ms.unwrap() >= 2000, "{r:?}");
        assert_eq!(r.offers.len(), 1);
        assert_eq!(r.offers[0].result, OfferResult::Answered);
        assert_rtp_both_ways(r);
    }
    // Counted once the record is flushed (the store writer), a moment after it is readable.
    router
        .wait_metric("sas_calls_total{line=\"samu\",outcome=\"answered\"}", 1.0)
        .await;
    router
        .wait_metric("sas_calls_total{line=\"sas\",outcome=\"answered\"}", 1.0)
        .await;
    assert!(router.metric("sas_rtp_packets_relayed_total{direction=\"caller_to_seat\"}") > 40.0);
    assert!(router.metric("sas_rtp_packets_relayed_total{direction=\"seat_to_caller\"}") > 40.0);
    assert_eq!(
        router.metric("sas_queue_wait_seconds_count{outcome=\"answered\",queue=\"arm\"}"),
        2.0
    );
    assert!(router.metric("sas_sip_requests_total{method=\"INVITE\"}") >= 2.0);
    assert!(
        router
            .metric("sas_sip_responses_total{code=\"401\",direction=\"sent\",method=\"REGISTER\"}")
            >= 1.0
    );
    router.wait_metric("sas_active_calls", 0.0).await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_queued_is_abandoned_or_misdial() {
    let mut router = start(Options::default()).await; // misdial threshold 1 s, no seat online
    for (wait_ms, expected) in [(300u64, Outcome::Misdial), (1500, Outcome::Abandoned)] {
        let child = trunk_caller(router.sip, "caller_cancel.xml", "15", wait_ms);
        assert!(
            finish(child, Duration::from_secs(20)).await,
            "CANCEL scenario got 200 then 487"
        );
        let list = wait_records(&router, if expected == Outcome::Misdial { 1 } else { 2 }).await;
        let r = &list[0];
        assert_eq!(r.outcome, Some(expected), "{r:?}");
        assert_eq!(r.end_reason.as_deref(), Some("caller_cancel"));
        assert!(r.answered_at.is_none());
    }
    // Counted once the record is flushed (the store writer), a moment after it is readable.
    router
        .wait_metric("sas_calls_total{line=\"samu\",outcome=\"abandoned\"}", 1.0)
        .await;
    router
        .wait_metric("sas_calls_total{line=\"samu\",outcome=\"misdial\"}", 1.0)
        .await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_no_answer_goes_to_the_next_seat_and_pauses_the_first() {
    let mut router = start(Options {
        ring_timeout_s: 2,
        ..Options::default()
    })
    .await;
    // arm1 is offered first and never answers.
    let (lazy, good) = silent_arm1_then_answering_arm2(&router).await;

    assert!(finish(caller(&router, "15", 1500), Duration::from_secs(30)).await);
    assert!(
        finish(lazy, Duration::from_secs(10)).await,
        "arm1 was CANCELled"
    );
    assert!(finish(good, Duration::from_secs(10)).await);
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
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
    assert!(r.events.iter().any(|e| e.kind == "RINGNOANSWER"));
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"paused\"}", 1.0)
        .await;
    assert_eq!(
        router.metric("sas_seat_autopauses_total{reason=\"ring_no_answer\"}"),
        1.0
    );
    // Supervisors see the autopause in the seat's history (its resume after
    // `autopause_resume_s` is timing: the simulations and the ACD's tests cover it).
    let history = "/api/supervisor/seats/arm1/history";
    let (status, body) = http_get(router.http, history, Some(&router.token())).await;
    assert_eq!(status, 200, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let autopause = (history.as_array().unwrap().iter())
        .find(|e| e["kind"] == "AUTOPAUSE")
        .unwrap_or_else(|| panic!("{history:#}"));
    assert_eq!(autopause["detail"], "ring_no_answer");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_restart_and_the_cli_reads_them() {
    let mut router = start(Options::default()).await;
    let seat = seat(&router, "arm2", 1, 100).await;
    assert!(finish(caller(&router, "116117", 1000), Duration::from_secs(30)).await);
    assert!(finish(seat, Duration::from_secs(10)).await);
    let id = wait_records(&router, 1).await.remove(0).id;

    // While the router runs, the CLI goes through the admin API.
    let shown = cli(&["calls", "show", &id, "--json"], &router.config_path);
    let shown: CallRecord = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown.id, id);

    router.stop().await;
    // Stopped: the CLI opens sled itself.
    let text = cli(&["calls", "list"], &router.config_path);
    assert!(text.contains(&id), "{text}");
    assert!(
        text.contains("06******78"),
        "caller masked in the listing: {text}"
    );
    assert!(!text.contains("0612345678"));

    // And a new router on the same data still has it.
    let mut again = start(Options {
        data: Some(router.data.clone()),
        ..Options::default()
    })
    .await;
    let list = records(&again).await;
    assert!(
        list.iter()
            .any(|r| r.id == id && r.outcome == Some(Outcome::Answered))
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_hanging_up_ends_the_callers_leg_too() {
    let mut router = start(Options::default()).await;
    let (seat, port) = seat_sipp(router.sip, "seat_hangs_up.xml", &[], 1, 200, false);
    register(router.sip, "arm1", port).await;
    let caller = trunk_caller(router.sip, "caller_stays.xml", "15", 0);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "the caller got BYE from the router"
    );
    assert!(
        finish(seat, Duration::from_secs(10)).await,
        "the seat's BYE was answered"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.end_reason.as_deref(), Some("seat_bye"));
    assert!(r.talk_ms.unwrap() >= 1000, "{r:?}");
    let (status, body) = http_get(router.http, "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _) = http_get(router.http, "/api/calls", None).await;
    assert_eq!(status, 401, "the admin API needs the token");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_re_invite_is_answered_and_the_call_goes_on() {
    let mut router = start(Options::default()).await;
    let seat = seat(&router, "arm1", 1, 100).await;
    let caller = trunk_caller(router.sip, "caller_reinvite.xml", "15", 1500);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "both re-INVITEs got the 200 the caller checks (recvonly answer, then an offer)"
    );
    assert!(finish(seat, Duration::from_secs(10)).await);
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.end_reason.as_deref(), Some("caller_bye"));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_all_rings_every_free_seat_and_cancels_the_others_when_one_answers() {
    let mut router = start(Options {
        arm_strategy: Some("ring_all"),
        ring_timeout_s: 10,
        ..Options::default()
    })
    .await;
    // arm1 rings forever (it must get a CANCEL); arm2 answers after 300 ms.
    let slow = never_answering_seat(&router, "arm1").await;
    let quick = seat(&router, "arm2", 1, 300).await;

    assert!(finish(caller(&router, "15", 1500), Duration::from_secs(30)).await);
    assert!(
        finish(slow, Duration::from_secs(10)).await,
        "arm1 CANCELled"
    );
    assert!(
        finish(quick, Duration::from_secs(10)).await,
        "arm2 answered"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.seat.as_deref(), Some("arm2"));
    let mut results: Vec<(&str, OfferResult)> = r
        .offers
        .iter()
        .map(|o| (o.seat.as_str(), o.result))
        .collect();
    results.sort_by_key(|(seat, _)| *seat);
    assert_eq!(
        results,
        [
            ("arm1", OfferResult::Withdrawn),
            ("arm2", OfferResult::Answered)
        ]
    );
    assert_rtp_both_ways(&r);
    // Nobody paused: losing a ring-all race is no missed call.
    assert_eq!(
        router.metric("sas_seats{role=\"arm\",state=\"paused\"}"),
        0.0
    );
    router.stop().await;
}
