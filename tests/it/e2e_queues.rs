//! Calls that must never be stranded and seats that must not be lost (issue 13, items 9 to
//! 11), over real SIP with SIPp peers: a ghost trunk caller is ended `caller_lost` without
//! taking seat after seat, while a silent caller that answers the probe is kept; a full
//! queue with nowhere to overflow refuses busy; seats missing offers together are not
//! paused. Timing alone (a full queue overflowing at once, an autopause ending by itself)
//! is tested on virtual time: `call/router/overflow_tests.rs`, the simulations.

use crate::common;

use common::media::short_tone_prompts;
use common::*;
use sas_router::store::record::Outcome;
use std::time::Duration;

/// A caller whose phone vanished after the answer: no RTP, no BYE, no answer to OPTIONS.
/// Its seat's phone echoes (so sends nothing either) and would once have been declared
/// dead, the ghost requeued to the next seat. Now only the caller is suspected, probed,
/// and the call ends `caller_lost`, with one seat taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_caller_is_ended_caller_lost_and_takes_one_seat_only() {
    let mut router = start(Options {
        seat_rtp_timeout_s: 1,
        caller_rtp_timeout_s: 2,
        ..Options::default()
    })
    .await;
    let arm1 = seat(&router, "arm1", 1, 100).await;
    let ghost = trunk_caller(router.sip, "caller_vanishes.xml", "15", 0);
    assert!(finish(ghost, Duration::from_secs(10)).await, "ghost");
    let arm2 = seat(&router, "arm2", 1, 100).await;
    assert!(
        finish(arm1, Duration::from_secs(30)).await,
        "arm1 got the router's BYE"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::CallerLost), "{:#?}", r.events);
    assert_eq!(r.end_reason.as_deref(), Some("caller_lost"));
    assert_eq!(handlers(&r), [("arm1", Some("caller_lost"))], "{r:?}");
    let lost = r.events.iter().find(|e| e.kind == "CALLER_LOST").unwrap();
    assert!(
        lost.detail
            .as_deref()
            .unwrap()
            .contains("OPTIONS probe unanswered"),
        "{lost:?}"
    );
    assert!(!r.events.iter().any(|e| e.kind == "SEAT_LOST"), "{r:?}");
    // `calls show` says why.
    let shown = cli(&["calls", "show", &r.id], &router.config_path);
    assert!(shown.contains("caller_lost"), "{shown}");
    // arm2 never rang: kill its idle phone.
    drop(arm2);
    router.stop().await;
}

/// A silent caller who is still there (on hold audio, saying nothing) answers the probe
/// and is kept until it hangs up itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_caller_answering_the_probe_is_kept() {
    let dir = temp_dir("silent-caller");
    let mut router = start(Options {
        prompts: Some(short_tone_prompts(&dir)),
        caller_rtp_timeout_s: 2,
        ..Options::default()
    })
    .await;
    // Probed after 2 s of silence (and every 2 s while silent); hangs up 1 s after the
    // first probe.
    let caller = trunk_caller(router.sip, "caller_silent.xml", "15", 1000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "probed, answered, then hung up itself"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Abandoned), "{:#?}", r.events);
    assert_eq!(r.end_reason.as_deref(), Some("caller_bye"));
    router.stop().await;
}

/// With nowhere to overflow, the refused caller gets 486 Busy Here (its operator may then
/// forward on busy) and the record says `queue_full`; it never waits on hold audio in no
/// queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_by_a_full_queue_with_nowhere_to_go_is_refused_busy() {
    let dir = temp_dir("queue-full");
    let mut router = start(Options {
        prompts: Some(short_tone_prompts(&dir)),
        arm_max_waiting: Some(1),
        ..Options::default()
    })
    .await;
    let first = trunk_caller(router.sip, "caller.xml", "15", 3000);
    let waiting = eventually(Duration::from_secs(15), || {
        router.metric("sas_active_calls") == 1.0
    })
    .await;
    assert!(waiting, "the first caller waits");
    // Its greeting (300 ms) over, it is in the queue.
    let queued = eventually(Duration::from_secs(15), || {
        router.metric("sas_queue_depth{queue=\"arm\"}") == 1.0
    })
    .await;
    assert!(queued, "the first caller is in the queue");
    // The test plan greets before queueing: the second caller is answered for the
    // greeting, so it gets a BYE rather than a 486 (see the README).
    let second = trunk_caller(router.sip, "caller_stays.xml", "15", 0);
    assert!(finish(second, Duration::from_secs(20)).await, "hung up");
    assert!(finish(first, Duration::from_secs(20)).await, "first");
    let records = wait_records(&router, 2).await;
    let r = records
        .iter()
        .find(|r| r.outcome == Some(Outcome::QueueFull))
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(r.end_reason.as_deref(), Some("queue_full"));
    assert!(r.ended_at.unwrap() - r.arrived_at < 3000, "{r:?}");
    // Counted once the record is flushed (the store writer), a moment after it is readable.
    router
        .wait_metric("sas_calls_total{line=\"samu\",outcome=\"queue_full\"}", 1.0)
        .await;

    // Without a greeting, the caller is refused before any answer: 486.
    let mut router2 = start(Options {
        arm_max_waiting: Some(1),
        ..Options::default()
    })
    .await;
    let first = trunk_caller(router2.sip, "caller_cancel.xml", "15", 3000);
    let waiting = eventually(Duration::from_secs(15), || {
        router2.metric("sas_active_calls") == 1.0
    })
    .await;
    assert!(waiting, "the first caller waits");
    let busy = trunk_caller(router2.sip, "caller_busy.xml", "15", 0);
    assert!(finish(busy, Duration::from_secs(10)).await, "486 Busy Here");
    assert!(finish(first, Duration::from_secs(20)).await, "first");
    router.stop().await;
    router2.stop().await;
}

/// Issue 13's overload in miniature: every seat's offer rings out at once. That is no
/// seat's fault: none is left paused, supervisors get one burst alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_missing_offers_together_are_not_paused() {
    let mut router = start(Options {
        ring_timeout_s: 1,
        autopause: Some((60, 2)),
        ..Options::default()
    })
    .await;
    // Both calls wait first, so that both offers start as the seats come (two SIPp
    // processes starting on a loaded machine could be further apart than the window).
    let callers: Vec<_> = (0..2)
        .map(|_| trunk_caller(router.sip, "caller_cancel.xml", "15", 5000))
        .collect();
    let queued = eventually(Duration::from_secs(10), || {
        router.metric("sas_queue_depth{queue=\"arm\"}") == 2.0
    })
    .await;
    assert!(queued, "{}", router.metrics());
    let arm1 = never_answering_seat(&router, "arm1").await;
    let arm2 = never_answering_seat(&router, "arm2").await;
    let burst = eventually(Duration::from_secs(10), || {
        router.metric("sas_seat_miss_bursts_total") >= 1.0
    })
    .await;
    assert!(burst, "{}", router.metrics());
    for phone in [arm1, arm2] {
        assert!(finish(phone, Duration::from_secs(10)).await, "CANCELled");
    }
    for caller in callers {
        assert!(finish(caller, Duration::from_secs(20)).await, "caller");
    }
    wait_records(&router, 2).await;
    assert_eq!(
        router.metric("sas_seats{role=\"arm\",state=\"paused\"}"),
        0.0,
        "{}",
        router.metrics()
    );
    router.stop().await;
}
