//! Callers gone without a word, through real SIP: nothing may keep a call live, or a seat
//! busy, once its caller is gone. A trunk caller whose CANCEL never arrives (sent once by a
//! load generator, or dropped by a socket buffer overflowing under load) used to wait in
//! its queue for ever (the last queue again after a forward that cannot be made), holding
//! its RTP ports, and took each seat it was offered to for the 32 s of an unacknowledged
//! 200. Now an unanswered caller is probed in its early dialog like a silent answered one,
//! and ended (`caller_lost`, recorded) when nothing answers.

use crate::common;

use common::sip::{exchange, seat_invite, status};
use common::*;
use sas_router::store::record::Outcome;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

const SDP: &str = "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

/// A router whose 15 waits in the ARM queue unanswered (no audio), overflows after 1 s to
/// a forward with no `[trunk] outbound` (so it waits again), and probes callers silent
/// for 2 s.
async fn router() -> Router {
    start(Options {
        caller_rtp_timeout_s: 2,
        plans: Some(backup_centre_plan(1)),
        ..Options::default()
    })
    .await
}

/// Calls the driver holds.
fn live_calls(router: &Router) -> f64 {
    router.metric("sas_live_entries{table=\"driver_calls\"}")
}

/// The first record, once there is one (up to `within`).
async fn first_record(
    router: &Router,
    within: Duration,
) -> Option<sas_router::store::record::CallRecord> {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if let Some(r) = records(router).await.into_iter().next() {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

fn kinds(r: &sas_router::store::record::CallRecord) -> Vec<&str> {
    r.events.iter().map(|e| e.kind.as_str()).collect()
}

/// A SIPp caller that hears the 15 ring and vanishes without CANCEL: its forward fails
/// (no outbound), it waits again, is probed after 2 s of nothing, and, the probe
/// unanswered, is ended and recorded `caller_lost`; the router holds no call after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_while_waiting_unanswered_is_ended_and_recorded() {
    let router = router().await;
    let ghost = trunk_caller(router.sip, "caller_vanishes_ringing.xml", "15", 0);
    assert!(
        finish(ghost, Duration::from_secs(10)).await,
        "SIPp hears it ring"
    );
    // 2 s of silence, then the probe's 8 s, and some room for a loaded machine.
    let record = first_record(&router, Duration::from_secs(25))
        .await
        .expect("the call ends and is recorded");
    assert_eq!(record.outcome, Some(Outcome::CallerLost), "{record:?}");
    let kinds = kinds(&record);
    assert!(kinds.contains(&"FORWARD_FAILED"), "{kinds:?}");
    assert!(kinds.contains(&"CALLER_LOST"), "{kinds:?}");
    let idle = eventually(Duration::from_secs(5), || live_calls(&router) == 0.0).await;
    assert!(idle, "no call left: {}", live_calls(&router));
}

/// A caller still ringing answers the probe (an OPTIONS in its early dialog, our tag in
/// From, its own in To): it is kept, probed again later, and its CANCEL ends it as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_caller_that_answers_the_probe_is_kept() {
    let router = router().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let invite = seat_invite(
        (router.sip, local),
        ("0612345678", ""),
        "15",
        None,
        ("stuck-probe@test", SDP),
    );
    socket.send_to(invite.as_bytes(), router.sip).await.unwrap();
    let mut answered = 0;
    let mut to_tag = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answered < 2 && std::time::Instant::now() < deadline {
        let (message, from) = recv(&socket).await.expect("the router rings, then probes");
        if message.starts_with("SIP/2.0 180") {
            to_tag = tag(&message, "To:");
        }
        if message.starts_with("SIP/2.0 ") {
            assert!(status(&message) < 200, "not ended: {message}");
            continue;
        }
        assert!(message.starts_with("OPTIONS "), "{message}");
        assert_eq!(tag(&message, "From:"), to_tag, "our tag: {message}");
        assert_eq!(tag(&message, "To:").as_deref(), Some("sstuck-probe@test"));
        assert!(header(&message, "Call-ID:") == Some("stuck-probe@test"));
        socket.send_to(ok(&message).as_bytes(), from).await.unwrap();
        answered += 1;
    }
    assert_eq!(answered, 2, "probed every 2 s, kept each time");
    assert_eq!(live_calls(&router), 1.0);
    // Its CANCEL ends it: 200 to the CANCEL, 487 to the INVITE, recorded.
    let cancel = cancel(&invite);
    let answer = exchange(
        &socket,
        router.sip,
        cancel.as_bytes(),
        Duration::from_secs(5),
    )
    .await
    .expect("CANCEL answered");
    assert!(answer.starts_with("SIP/2.0 200") || answer.starts_with("SIP/2.0 487"));
    let record = first_record(&router, Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(record.outcome, Some(Outcome::CallerLost), "{record:?}");
}

/// A ghost offered to a seat: the seat answers, our 200 to the caller is never
/// acknowledged; the probe finds the dialog unconfirmed and ends the call, the seat gets
/// its BYE and is available again well before the 32 s of the 2xx's retransmissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_answered_by_a_seat_frees_the_seat() {
    let router = router().await;
    let seat = seat(&router, "arm1", 1, 200).await;
    let available = "sas_seats{role=\"arm\",state=\"available\"}";
    assert!(eventually(Duration::from_secs(10), || router.metric(available) == 1.0).await);
    let ghost = trunk_caller(router.sip, "caller_vanishes_ringing.xml", "15", 0);
    assert!(finish(ghost, Duration::from_secs(10)).await);
    let record = first_record(&router, Duration::from_secs(20))
        .await
        .expect("the call ends and is recorded");
    assert_eq!(record.outcome, Some(Outcome::CallerLost), "{record:?}");
    assert!(eventually(Duration::from_secs(5), || router.metric(available) == 1.0).await);
    let idle = eventually(Duration::from_secs(5), || live_calls(&router) == 0.0).await;
    assert!(idle, "no call left: {}", live_calls(&router));
    assert!(
        finish(seat, Duration::from_secs(10)).await,
        "the seat got its BYE"
    );
}

/// The next request or response on `socket` (up to 10 s), and where it came from.
async fn recv(socket: &UdpSocket) -> Option<(String, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

fn tag(message: &str, name: &str) -> Option<String> {
    let value = header(message, name)?;
    let tag = value.split(";tag=").nth(1)?;
    Some(tag.split(';').next()?.trim().to_string())
}

/// 200 OK to `request`, its Via, From, To, Call-ID and CSeq copied.
fn ok(request: &str) -> String {
    let copied: String = request
        .lines()
        .filter(|l| {
            ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| l.starts_with(h))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    format!("SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n")
}

/// The CANCEL of `invite` (its branch, CSeq number and headers, no body).
fn cancel(invite: &str) -> String {
    let head = invite.split("\r\n\r\n").next().unwrap();
    let lines: String = head
        .lines()
        .filter(|l| !l.starts_with("Content-") && !l.starts_with("Contact:"))
        .map(|l| match l {
            l if l.starts_with("INVITE ") => l.replacen("INVITE", "CANCEL", 1),
            l if l.starts_with("CSeq:") => "CSeq: 1 CANCEL".to_string(),
            l => l.to_string(),
        })
        .map(|l| l + "\r\n")
        .collect();
    lines + "Content-Length: 0\r\n\r\n"
}
