//! Dial plan forwards through the trunk: a call that waits too long overflows to an
//! allowed external number, dialled on the trunk's outbound address (a SIPp UAS stands in
//! for the backup centre); a forward that fails (no outbound trunk) never loses the call.
//! Timing alone (a failed overflow waiting again with no deadline) is tested on virtual
//! time: `call/router/overflow_tests.rs` and the simulation.

use crate::common;

use common::*;
use sas_router::store::record::Outcome;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_15_overflows_to_the_backup_centre_through_the_trunk() {
    // The backup centre: a SIPp UAS that answers and echoes the audio.
    let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let mut router = start(Options {
        plans: Some(backup_centre_plan(1)),
        outbound: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..Options::default()
    })
    .await;
    // No seat online: after 1 s the call overflows and is forwarded.
    let caller = trunk_caller(router.sip, "caller.xml", "15", 3000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered and got BYE"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Forwarded), "{:#?}", r.events);
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["ENTERQUEUE", "OVERFLOW", "FORWARD", "CONNECT", "END"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let rtp = r.rtp.expect("bridged to the centre");
    assert!(
        rtp.seat.rx_packets > 20 && rtp.caller.tx_packets > 20,
        "{rtp:?}"
    );
    assert!(
        r.route
            .iter()
            .any(|l| l.contains("forward to centre_secours (0387000000)"))
    );
    router.stop().await;
}

/// A line that forwards at once (never queued), with no outbound trunk: the forward
/// fails and the call waits in the line's queue (reached otherwise by an internal number);
/// it used to end failed/forward_failed with a seat online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_forward_never_queued_is_answered_from_the_lines_queue() {
    let plans = r#"
[queues.arm]
role = "arm"
[external]
centre_secours = "0387000000"
[internal.file]
number = "2009"
entry = "samu"
step = "file"
[entries.samu]
numbers = ["15"]
line = "samu"
start = "secours"
[entries.samu.steps.secours]
forward = "centre_secours"
[entries.samu.steps.file]
queue = "arm"
priority = 0
"#;
    let mut router = start(Options {
        plans: Some(plans.into()),
        ..Options::default()
    })
    .await;
    let seat = seat(&router, "arm1", 1, 100).await;
    let caller = trunk_caller(router.sip, "caller.xml", "15", 1000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "the call was not lost"
    );
    assert!(finish(seat, Duration::from_secs(10)).await);
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered), "{:#?}", r.events);
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    let at = |k: &str| kinds.iter().position(|x| *x == k).expect(k);
    assert!(at("FORWARD_FAILED") < at("CONNECT"), "{kinds:?}");
    assert!(
        r.route.iter().any(|l| l.contains("the line's queue file")),
        "{:?}",
        r.route
    );
    router.stop().await;
}
