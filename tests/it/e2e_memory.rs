//! Memory does not grow with the calls handled: every per-call table of the router (the
//! driver's legs, the Router's routes, SDP and timers, rsipstack's dialogs) counts its
//! entries in `sas_live_entries`, which must come back to idle once the calls end (a table
//! left holding finished calls is how the router leaked ~40 kB per call before; the load
//! figures are in loadtest/README.md).

use crate::common;

use common::process::{Process, setup};
use common::*;
use std::time::Duration;

fn live(router: &Router, table: &str) -> f64 {
    router.metric(&format!("sas_live_entries{{table=\"{table}\"}}"))
}

/// Tables keyed by call or SIP leg: empty when no call is live.
const PER_CALL: [&str; 7] = [
    "driver_calls",
    "driver_legs",
    "metric_waits",
    "router_calls",
    "router_routes",
    "router_sdp",
    "sip_dialogs",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_tables_empty_again_after_calls_end() {
    let mut router = start(Options::default()).await;
    let calls = 3;
    let seat = seat(&router, "arm1", calls, 200).await;
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"available\"}", 1.0)
        .await;

    // While a call is up, the tables hold it: the gauges count what they claim to.
    let first = trunk_caller(router.sip, "caller.xml", "15", 3000);
    let counted = eventually(Duration::from_secs(15), || {
        live(&router, "driver_calls") == 1.0
            && live(&router, "driver_legs") == 2.0
            && live(&router, "router_routes") == 1.0
            && live(&router, "sip_dialogs") == 2.0
    })
    .await;
    assert!(counted, "one call, two legs:\n{}", router.metrics());
    assert!(finish(first, Duration::from_secs(30)).await, "first call");
    for _ in 1..calls {
        let caller = trunk_caller(router.sip, "caller.xml", "15", 300);
        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    }
    assert!(finish(seat, Duration::from_secs(10)).await, "seat scenario");
    assert_eq!(wait_records(&router, calls).await.len(), calls);

    let idle = eventually(Duration::from_secs(15), || {
        PER_CALL.iter().all(|t| live(&router, t) == 0.0)
    })
    .await;
    assert!(idle, "per-call tables not empty:\n{}", router.metrics());
    // Per seat, not per call: the seat's registration expiry and its last call (wrap-up).
    assert!(
        live(&router, "router_timers") <= 1.0,
        "{}",
        router.metrics()
    );
    assert!(
        live(&router, "router_last_calls") <= 1.0,
        "{}",
        router.metrics()
    );
    // The gauges are there, not read as 0 for want of a sample.
    let text = router.metrics();
    for table in PER_CALL.iter().chain(&["tokio_tasks", "sip_transactions"]) {
        assert!(
            text.contains(&format!("sas_live_entries{{table=\"{table}\"}}")),
            "{table} missing:\n{text}"
        );
    }
    router.stop().await;
}

/// The wallboard's last hour keeps one sum per second of arrival, not one entry per call
/// (it grew by ~3 KiB per call handled, 10 GB an hour at 1,000 calls/s): 8 calls
/// arriving within a fraction of a second (as many as the tests' RTP range lets wait) take
/// a second or two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboards_last_hour_holds_a_sum_per_second_not_a_row_per_call() {
    const CALLS: usize = 8;
    let mut router = start(Options::default()).await;
    let (port, media) = (free_udp_port().to_string(), ports::media_port().to_string());
    let calls = CALLS.to_string();
    // No seat: the calls wait in the queue and hang up.
    let args = [
        "-s", "15", "-p", &port, "-mp", &media, "-m", &calls, "-r", &calls, "-rp", "300", "-l",
        &calls, "-d", "500", "-timeout", "60s",
    ];
    let callers = sipp(router.sip, "caller_cancel.xml", &args)
        .spawn()
        .unwrap();
    assert_eq!(wait_records(&router, CALLS).await.len(), CALLS);
    let _ = finish(callers, Duration::from_secs(30)).await;
    // The tables' sizes are sampled once a second.
    let sampled = || live(&router, "wallboard_last_hour") > 0.0;
    assert!(eventually(Duration::from_secs(5), sampled).await);
    let slots = live(&router, "wallboard_last_hour");
    assert!(
        (1.0..=2.0).contains(&slots),
        "{CALLS} calls in < 1 s: {slots} slots\n{}",
        router.metrics()
    );
    router.stop().await;
}

/// The real binary runs on mimalloc, which gives freed pages back by itself: it publishes
/// the memory its allocator holds, and no heap trimmer runs (glibc's `malloc_trim` held each
/// arena's lock for 40–75 ms under load, stalling the workers that allocated meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_publishes_its_allocators_memory_and_runs_no_trimmer() {
    let (_data, config) = setup("heap", &Options::default());
    let mut router = Process::start(&config).drain_log();
    let mut committed = 0.0;
    for _ in 0..200 {
        committed = router.metric("sas_heap_committed_bytes").await;
        if committed > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(committed > 1e6, "committed {committed}");
    // The trimmer's first trim came at start-up, its next every 5 s: none in 6 s now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(router.metric("sas_heap_trims_total").await, 0.0);
    router.crash();
}

/// A CANCEL right behind its INVITE (a caller hanging up at once, a burst of them): the
/// call's admission reaches the driver before its dialog's end, whichever way the driver's
/// two queues (calls, dialog states) are polled, so every call gets its record and no
/// table keeps it (a dialog's end seen first left the call queued for good, with no
/// record). The race is the scheduler's: several bursts give it several chances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_cancelled_at_once_end_with_a_record_and_leave_no_live_entries() {
    let mut router = start(Options::default()).await; // no seat online: the calls queue
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let burst = 6; // within the tests' RTP range (each waiting call holds its ports)
    let bursts = 5;
    for n in 0..burst * bursts {
        invite_then_cancel(&socket, router.sip, n).await;
        if (n + 1) % burst == 0 {
            wait_records(&router, n + 1).await;
        }
    }
    let list = wait_records(&router, burst * bursts).await;
    assert_eq!(list.len(), burst * bursts);
    for r in &list {
        assert_eq!(r.end_reason.as_deref(), Some("caller_cancel"), "{r:?}");
        assert!(r.answered_at.is_none(), "{r:?}");
    }
    let idle = eventually(Duration::from_secs(15), || {
        PER_CALL.iter().all(|t| live(&router, t) == 0.0)
    })
    .await;
    assert!(idle, "per-call tables not empty:\n{}", router.metrics());
    router.stop().await;
}

/// The same with the lines answering at once (a greeting first, as the shipped plans do):
/// the answer to a call whose caller has just cancelled fails, and that call is the
/// caller's cancel, not a failure (on the shipped plans every such call was stored
/// `failed`, `answer_failed: channel closed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_cancelled_before_the_greeting_is_answered_are_the_callers_cancels() {
    let dir = temp_dir("e2e-cancel-greeting");
    let prompts = common::media::short_tone_prompts(&dir);
    let mut router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let calls = 6;
    for n in 0..calls {
        invite_then_cancel(&socket, router.sip, n).await;
    }
    // Each INVITE's final answer: 487 (the CANCEL came first) or 200 (the answer did),
    // which the caller then acknowledges and hangs up.
    let (mut cancelled, mut finals) = (0, 0);
    let mut buf = vec![0u8; 65535];
    while finals < calls {
        let got = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await;
        let len = got.expect("every INVITE answered").unwrap();
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        if !text.contains(" INVITE\r\n") || text.starts_with("SIP/2.0 1") {
            continue;
        }
        finals += 1;
        if text.starts_with("SIP/2.0 487") {
            cancelled += 1;
        } else if text.starts_with("SIP/2.0 200") {
            for method in ["ACK", "BYE"] {
                let request = in_dialog(&text, method, socket.local_addr().unwrap());
                socket
                    .send_to(request.as_bytes(), router.sip)
                    .await
                    .unwrap();
            }
        }
    }
    let list = wait_records(&router, calls).await;
    for r in &list {
        let reason = r.end_reason.as_deref().unwrap_or_default();
        assert!(!reason.starts_with("answer_failed"), "{r:?}");
    }
    let by_cancel = list
        .iter()
        .filter(|r| r.end_reason.as_deref() == Some("caller_cancel"))
        .count();
    assert_eq!(by_cancel, cancelled, "{list:#?}");
    assert!(
        cancelled > 0,
        "no CANCEL came before the answer: nothing tested"
    );
    router.stop().await;
}

/// A trunk INVITE for the 15 from `socket`, Call-ID `cancel-at-once-{n}`, and its CANCEL
/// right behind it.
async fn invite_then_cancel(
    socket: &tokio::net::UdpSocket,
    router: std::net::SocketAddr,
    n: usize,
) {
    let local = socket.local_addr().unwrap();
    let head = |method: &str| {
        format!(
            "{method} sip:15@{router} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKcancel{n}\r\nFrom: <sip:0612345678@{local}>;tag=c{n}\r\nTo: <sip:15@{router}>\r\nCall-ID: cancel-at-once-{n}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        )
    };
    let sdp = "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let invite = format!(
        "{}Contact: <sip:0612345678@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("INVITE"),
        sdp.len()
    );
    let cancel = format!("{}Content-Length: 0\r\n\r\n", head("CANCEL"));
    socket.send_to(invite.as_bytes(), router).await.unwrap();
    socket.send_to(cancel.as_bytes(), router).await.unwrap();
}

/// The caller's ACK or BYE (CSeq 2) in the dialog a 200 to its INVITE set up.
fn in_dialog(ok: &str, method: &str, local: std::net::SocketAddr) -> String {
    let header = |name: &str| {
        ok.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .unwrap_or_default()
            .to_string()
    };
    let cseq = if method == "ACK" { 1 } else { 2 };
    let target = header("contact");
    let uri = target
        .split('<')
        .nth(1)
        .and_then(|t| t.split('>').next())
        .unwrap_or_default();
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}\r\n{}\r\n{}\r\n{}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        header("from"),
        header("to"),
        header("call-id"),
    )
}

/// Every rsipstack transaction's event channel allocates a block of 32 events up front, and
/// the dialog made from an INVITE transaction keeps its sender for the call's life: the
/// vendored rsipstack boxes the events' payloads (vendor/rsipstack/PATCHES.md, patch 5) so
/// that block is ~1 KiB, not ~11 KiB (a 345-byte event).
#[test]
fn an_rsipstack_transaction_event_is_at_most_32_bytes() {
    let size = std::mem::size_of::<rsipstack::transaction::transaction::TransactionEvent>();
    assert!(size <= 32, "TransactionEvent is {size} bytes");
}

/// A transaction waiting for its next message is a small future (vendored rsipstack,
/// PATCHES.md, patch 12): every future that awaits it carries it for as long as it waits,
/// among them the task draining each call's seat-leg INVITE transaction for 32 s
/// (RFC 6026). It was ~3 KB with the send futures of the events' handling inlined.
#[tokio::test]
async fn an_rsipstack_transaction_waiting_is_a_small_future() {
    use rsipstack::transaction::key::{TransactionKey, TransactionRole};
    use rsipstack::transaction::transaction::Transaction;
    let endpoint = rsipstack::EndpointBuilder::new().build();
    let request = rsipstack::sip::Request::try_from(
        "OPTIONS sip:arm1@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-small\r\n\
         From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:arm1@127.0.0.1>\r\n\
         Call-ID: small-future\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    )
    .expect("a valid OPTIONS");
    let key = TransactionKey::from_request(&request, TransactionRole::Client).expect("a key");
    let mut tx = Transaction::new_client(key, request, endpoint.inner.clone(), None);
    let waiting = tx.receive();
    let size = std::mem::size_of_val(&waiting);
    assert!(size <= 512, "Transaction::receive's future is {size} bytes");
}
