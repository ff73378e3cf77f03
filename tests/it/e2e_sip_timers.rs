//! RFC 3261's transaction timers as the wire sees them (rsipstack's timer task drives
//! them): a seat's phone that stays silent gets the router's INVITE again on Timer A's
//! schedule.

use crate::common::{Options, eventually, free_udp_port, register, start, trunk_caller};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// When each copy of the first INVITE reached `socket`, over `window` (OPTIONS and other
/// requests ignored; copies are those with the first one's Via branch).
async fn invite_copies(socket: &UdpSocket, window: Duration) -> Vec<Duration> {
    let mut buf = vec![0u8; 65536];
    let mut branch: Option<String> = None;
    let (mut start, mut copies) = (None, Vec::new());
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("INVITE ") {
            continue;
        }
        let via_branch = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("via:"))
            .and_then(|l| l.split("branch=").nth(1))
            .map(|b| {
                b.split([';', ','])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            });
        if branch.is_none() {
            branch = via_branch.clone();
        }
        if via_branch == branch {
            let at = *start.get_or_insert_with(Instant::now);
            copies.push(at.elapsed());
        }
    }
    copies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_seat_gets_the_invite_again_on_timer_a_schedule() {
    let router = start(Options {
        ring_timeout_s: 10,
        ..Options::default()
    })
    .await;
    // arm1's phone: a bare socket that never answers, not even 100 Trying.
    let port = free_udp_port();
    let phone = UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
    register(router.sip, "arm1", port).await;
    let available = eventually(Duration::from_secs(15), || {
        router.metric("sas_seats{role=\"arm\",state=\"available\"}") == 1.0
    })
    .await;
    assert!(available, "arm1 is available");

    let _caller = trunk_caller(router.sip, "caller.xml", "15", 1500);
    let copies = invite_copies(&phone, Duration::from_secs(6)).await;
    // Timer A: T1 (500 ms), then doubling: copies at 0, 0.5, 1.5, 3.5 s (RFC 3261 §17.1.1.2).
    assert!(copies.len() >= 4, "INVITE copies at {copies:?}");
    let gaps: Vec<f64> = copies
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    for (i, (gap, expected)) in gaps.iter().zip([0.5, 1.0, 2.0]).enumerate() {
        assert!(
            (expected - 0.1..expected + 0.35).contains(gap),
            "retransmission {} came {gap:.3} s after the one before, not {expected} s: {gaps:?}",
            i + 1
        );
    }
}
