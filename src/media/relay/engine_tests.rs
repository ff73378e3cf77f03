//! Tests of the relay threads' IO (batching, many calls per thread, socket errors), over
//! real UDP sockets on 127.0.0.1 through the [`MediaRelay`] handle.

use super::engine::{BATCH, Shared, Urgency, token, untoken};
use super::tests::{LOCALHOST, assert_silent, peer, pool, recv, rtp, start_bridged};
use super::*;

#[test]
fn epoll_tokens_round_trip() {
    for (slot, generation, leg, rtcp) in [
        (0, 1, Leg::A, false),
        (70_000, 0xff_ffff, Leg::C, true),
        (3, 42, Leg::B, true),
    ] {
        let t = token(slot, generation, leg, rtcp);
        assert_ne!(t, u64::MAX, "not the eventfd's token");
        assert_eq!(untoken(t), (slot, generation, leg, rtcp));
    }
}

/// More datagrams queued on one socket than a `recvmmsg` batch (the thread's buffer pool)
/// holds: all are relayed, in order, over several turns.
#[tokio::test]
async fn a_burst_beyond_the_buffer_pool_is_relayed_whole_and_in_order() {
    let relay = MediaRelay::bind(LOCALHOST, &pool(44000)).await.unwrap();
    let (caller, seat) = (peer().await, peer().await);
    let a_local = relay.local_addr(Leg::A);
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    start_bridged(&relay, None);
    let burst = 3 * BATCH + 5;
    for i in 0..burst {
        caller
            .send_to(&rtp(i as u8, &[i as u8; 160]), a_local)
            .await
            .unwrap();
    }
    for i in 0..burst {
        let (got, _) = recv(&seat).await;
        assert_eq!(got[12], i as u8, "packet {i} in order");
    }
    assert_eq!(relay.stats().a.rx_packets, burst as u64);
}

/// Calls spread over the relay threads, many per thread: each packet reaches its own
/// call's peer, whatever else is ready in the same wake-up.
#[tokio::test]
async fn many_calls_share_the_threads_and_each_packet_reaches_its_own_peer() {
    const CALLS: usize = 40;
    let pool = Arc::new(PortPool::new(44200, 44200 + 6 * CALLS as u16 + 10).unwrap());
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
        let (caller, seat) = (peer().await, peer().await);
        relay.set_remote(Leg::B, seat.local_addr().unwrap());
        start_bridged(&relay, None);
        calls.push((relay, caller, seat));
    }
    // Every caller sends before any seat reads: the threads find many sockets ready.
    for round in 0..3u8 {
        for (i, (relay, caller, _)) in calls.iter().enumerate() {
            let payload = [i as u8, round, 0, 0];
            let to = relay.local_addr(Leg::A);
            caller.send_to(&rtp(round, &payload), to).await.unwrap();
        }
    }
    for (i, (_, _, seat)) in calls.iter().enumerate() {
        for round in 0..3u8 {
            let (got, _) = recv(seat).await;
            assert_eq!(&got[12..14], &[i as u8, round], "call {i} round {round}");
        }
    }
}

/// A send to a closed port makes the kernel report `ECONNREFUSED` on that socket's next
/// receive: the call logs it and goes on, and so do the other calls of the thread.
#[tokio::test]
async fn a_socket_error_on_one_call_leaves_it_and_the_others_relaying() {
    let pool = pool(44600);
    let broken = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let healthy = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let closed = peer().await.local_addr().unwrap(); // dropped: nobody listens there
    let (caller, seat, other_caller, other_seat) =
        (peer().await, peer().await, peer().await, peer().await);
    broken.set_remote(Leg::B, closed);
    healthy.set_remote(Leg::B, other_seat.local_addr().unwrap());
    start_bridged(&broken, None);
    start_bridged(&healthy, None);
    for seq in 0..5 {
        let to = broken.local_addr(Leg::A);
        caller.send_to(&rtp(seq, b"to nobody"), to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let to = healthy.local_addr(Leg::A);
    other_caller.send_to(&rtp(1, b"fine"), to).await.unwrap();
    assert_eq!(&recv(&other_seat).await.0[12..], b"fine");
    // The seat comes (back): the broken call relays again.
    broken.set_remote(Leg::B, seat.local_addr().unwrap());
    let to = broken.local_addr(Leg::A);
    caller.send_to(&rtp(9, b"again"), to).await.unwrap();
    assert_eq!(&recv(&seat).await.0[12..], b"again");
}

/// Dropping the handle ends the call on its thread: its sockets are closed (the ports
/// bind again) and nothing more is relayed.
#[tokio::test]
async fn a_dropped_handle_closes_the_calls_sockets() {
    let pool = pool(44800);
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let (caller, seat) = (peer().await, peer().await);
    let a_local = relay.local_addr(Leg::A);
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    start_bridged(&relay, None);
    caller.send_to(&rtp(1, b"before"), a_local).await.unwrap();
    recv(&seat).await;
    drop(relay);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while std::net::UdpSocket::bind(a_local).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{a_local} still bound"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    caller.send_to(&rtp(2, b"after"), a_local).await.unwrap();
    assert_silent(&seat).await;
}

/// Calls woken while their thread has not yet emptied its inbox cost no more `eventfd`
/// writes (one wake-up for the batch); once the thread has taken the inbox, the next call
/// woken wakes it again.
#[test]
fn calls_woken_before_the_thread_turns_share_one_wake_up() {
    let shared = Shared::new().unwrap();
    for slot in 0..5 {
        shared.post(Urgency::Now, |inbox| inbox.woken.push(slot));
    }
    assert_eq!(shared.drain(), 1, "one eventfd write for five calls");
    assert_eq!(shared.take().woken, vec![0, 1, 2, 3, 4]);
    shared.post(Urgency::Now, |inbox| inbox.woken.push(7));
    assert_eq!(shared.drain(), 1, "an empty inbox: woken again");
    // Posted after the thread read the eventfd but before it took the inbox: taken now,
    // and the pending write only costs a spurious turn, no call is left behind.
    shared.post(Urgency::Now, |inbox| inbox.woken.push(8));
    assert_eq!(shared.take().woken, vec![7, 8]);
    assert_eq!(shared.drain(), 0, "no write for a non-empty inbox");
}

/// New calls and commands wait for the thread's next turn, at most [`SOON`](super::engine::SOON): they arm its
/// timer once, write no `eventfd`; a packet after them wakes it at once.
#[test]
fn commands_arm_the_timer_once_and_packets_still_wake_at_once() {
    let shared = Shared::new().unwrap();
    for slot in 0..3 {
        shared.post(Urgency::Soon, |inbox| inbox.woken.push(slot));
    }
    assert_eq!(shared.drain(), 0, "no eventfd write for commands");
    shared.post(Urgency::Now, |inbox| inbox.woken.push(3));
    assert_eq!(shared.drain(), 1, "a packet wakes the thread at once");
    let inbox = shared.take();
    assert!(inbox.armed, "the timer was armed");
    assert_eq!(inbox.woken, vec![0, 1, 2, 3]);
    // Nothing armed or written since the take: the next command arms the timer again.
    shared.post(Urgency::Soon, |inbox| inbox.woken.push(4));
    assert!(shared.take().armed);
}

/// With no packet to wake it, the thread still takes a new call and its commands on its
/// timer: a call started and finished at once reports within [`SOON`](super::engine::SOON) (plus scheduling).
/// That commands alone do not wake the thread is
/// `commands_arm_the_timer_once_and_packets_still_wake_at_once`'s to say: here the relay
/// threads are the process's, shared with the tests running beside, whose packets may
/// wake them first.
#[tokio::test]
async fn a_call_finished_with_no_packet_reports_on_the_timer() {
    let relay = MediaRelay::bind(LOCALHOST, &pool(44400)).await.unwrap();
    relay.set_remote(Leg::B, peer().await.local_addr().unwrap());
    start_bridged(&relay, None);
    let report = tokio::time::timeout(Duration::from_secs(2), relay.finish()).await;
    let report = report.expect("the thread took the call and its Finish on its timer");
    assert_eq!(report.stats.a.rx_packets, 0);
}
