//! Relay tests over real UDP sockets on 127.0.0.1.

use super::*;
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::net::UdpSocket;

use prometheus::Opts;
use tokio::time::timeout;

pub(super) const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(2);

/// Each test gets its own range so parallel tests do not contend.
pub(super) fn pool(base: u16) -> Arc<PortPool> {
    Arc::new(PortPool::new(base, base + 99).unwrap())
}

pub(super) async fn peer() -> UdpSocket {
    UdpSocket::bind((LOCALHOST, 0)).await.unwrap()
}

pub(super) fn rtp(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, seq, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
    p.extend_from_slice(payload);
    p
}

/// The relay rewrites the RTP header (one SSRC and sequence per leg, see `stream`);
/// version, payload type and payload pass through byte for byte.
fn assert_media(got: &[u8], sent: &[u8]) {
    assert_eq!(got.len(), sent.len());
    assert_eq!(got[0], sent[0], "version byte");
    assert_eq!(got[1] & 0x7f, sent[1] & 0x7f, "payload type");
    assert_eq!(got[12..], sent[12..], "payload");
}

pub(super) async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("packet within timeout")
        .unwrap();
    (buf[..n].to_vec(), from)
}

/// Polls until `cond` holds on the relay's stats (the relay runs on other tasks).
async fn wait_stats(relay: &MediaRelay, cond: impl Fn(&RelayStats) -> bool) -> RelayStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = relay.stats();
        if cond(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "stats: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const PCMU: LegCodecs = LegCodecs {
    audio_pt: 0,
    law: crate::media::g711::G711Law::Ulaw,
    dtmf_pt: None,
    other_pt: None,
};

/// Starts a relay whose legs both speak PCMU, bridged.
pub(super) fn start_bridged(relay: &MediaRelay, metrics: Option<IntCounterVec>) {
    relay.set_codecs(Leg::A, PCMU);
    relay.set_codecs(Leg::B, PCMU);
    relay.bridge(Leg::B);
    let metrics = RelayMetrics {
        relayed: metrics,
        ..RelayMetrics::default()
    };
    relay.start(metrics, Box::new(|_| {}));
}

/// Nothing arrives within a short grace period.
pub(super) async fn assert_silent(sock: &UdpSocket) {
    let mut buf = [0u8; 64];
    let r = timeout(Duration::from_millis(50), sock.recv_from(&mut buf)).await;
    assert!(r.is_err(), "unexpected packet");
}

#[tokio::test]
async fn relays_both_ways_payload_identical() {
    let relay = MediaRelay::bind(LOCALHOST, &pool(41000)).await.unwrap();
    let (a_local, b_local) = (relay.local_addr(Leg::A), relay.local_addr(Leg::B));
    assert_eq!(a_local.port() % 2, 0);
    assert_eq!(b_local.port() % 2, 0);
    assert_ne!(a_local, b_local);

    let (caller, seat) = (peer().await, peer().await);
    relay.set_remote(Leg::A, caller.local_addr().unwrap());
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    let metrics = IntCounterVec::new(Opts::new("rtp_packets", "test"), &["direction"]).unwrap();
    start_bridged(&relay, Some(metrics.clone()));
    relay.start(RelayMetrics::default(), Box::new(|_| {})); // idempotent

    let up = rtp(1, &[0xd5; 160]);
    caller.send_to(&up, a_local).await.unwrap();
    let (got, from) = recv(&seat).await;
    assert_media(&got, &up);
    assert_eq!(from, b_local, "seat sees the relay's B socket");

    let down = rtp(7, b"seat voice");
    seat.send_to(&down, b_local).await.unwrap();
    let (got, from) = recv(&caller).await;
    assert_media(&got, &down);
    assert_eq!(from, a_local);

    let s = wait_stats(&relay, |s| s.a.tx_packets == 1).await;
    let n = |p: &[u8]| p.len() as u64;
    assert_eq!(
        s.a,
        LegStats {
            rx_packets: 1,
            rx_bytes: n(&up),
            tx_packets: 1,
            tx_bytes: n(&down),
            dropped: 0,
            rx_rtcp: 0,
            srtp_rejected: 0,
        }
    );
    assert_eq!(
        s.b,
        LegStats {
            rx_packets: 1,
            rx_bytes: n(&down),
            tx_packets: 1,
            tx_bytes: n(&up),
            dropped: 0,
            rx_rtcp: 0,
            srtp_rejected: 0,
        }
    );
    assert_eq!(metrics.with_label_values(&["caller_to_seat"]).get(), 1);
    assert_eq!(metrics.with_label_values(&["seat_to_caller"]).get(), 1);
}

#[tokio::test]
async fn latches_to_nat_source_and_relatches_on_new_sdp() {
    let relay = MediaRelay::bind(LOCALHOST, &pool(41200)).await.unwrap();
    let (a_local, b_local) = (relay.local_addr(Leg::A), relay.local_addr(Leg::B));
    let caller = peer().await;
    let (seat_sdp, seat_nat, intruder) = (peer().await, peer().await, peer().await);
    relay.set_remote(Leg::A, caller.local_addr().unwrap());
    relay.set_remote(Leg::B, seat_sdp.local_addr().unwrap());
    start_bridged(&relay, None);

    // The seat's packets come from another port than its SDP says (NAT).
    seat_nat.send_to(&rtp(1, b"x"), b_local).await.unwrap();
    let (first, _) = recv(&caller).await;
    assert_eq!(relay.remote(Leg::B), Some(seat_nat.local_addr().unwrap()));
    caller.send_to(&rtp(2, b"to seat"), a_local).await.unwrap();
    let (got, _) = recv(&seat_nat).await;
    assert_media(&got, &rtp(2, b"to seat"));
    assert_silent(&seat_sdp).await;

    // Once latched, another source cannot inject audio.
    intruder.send_to(&rtp(3, b"evil"), b_local).await.unwrap();
    wait_stats(&relay, |s| s.b.dropped == 1).await;
    assert_silent(&caller).await;

    // A new SDP (new seat) re-arms latching.
    relay.set_remote(Leg::B, seat_sdp.local_addr().unwrap());
    relay.set_codecs(Leg::B, PCMU);
    seat_sdp
        .send_to(&rtp(4, b"new seat"), b_local)
        .await
        .unwrap();
    let (second, _) = recv(&caller).await;
    assert_media(&second, &rtp(4, b"new seat"));
    // The caller hears one stream: same SSRC, next sequence number, marker on the switch.
    assert_eq!(second[8..12], first[8..12], "one SSRC towards the caller");
    let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
    assert_eq!(seq(&second), seq(&first).wrapping_add(1));
    assert!(second[1] & 0x80 != 0, "marker bit on the switch");
    caller.send_to(&rtp(5, b"hello"), a_local).await.unwrap();
    assert_media(&recv(&seat_sdp).await.0, &rtp(5, b"hello"));
}

#[tokio::test]
async fn drops_while_seat_unknown_then_relays() {
    let relay = MediaRelay::bind(LOCALHOST, &pool(41400)).await.unwrap();
    let a_local = relay.local_addr(Leg::A);
    let (caller, seat) = (peer().await, peer().await);
    relay.set_remote(Leg::A, caller.local_addr().unwrap());
    relay.set_codecs(Leg::A, PCMU);
    relay.start(RelayMetrics::default(), Box::new(|_| {}));

    // Call still queued: no seat yet.
    caller.send_to(&rtp(1, b"queued"), a_local).await.unwrap();
    let s = wait_stats(&relay, |s| s.a.dropped == 1).await;
    assert_eq!((s.a.rx_packets, s.b.tx_packets), (1, 0));

    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    relay.set_codecs(Leg::B, PCMU);
    relay.bridge(Leg::B);
    caller.send_to(&rtp(2, b"answered"), a_local).await.unwrap();
    assert_media(&recv(&seat).await.0, &rtp(2, b"answered"));
}

#[tokio::test]
async fn garbage_is_dropped_not_fatal() {
    let relay = MediaRelay::bind(LOCALHOST, &pool(41600)).await.unwrap();
    let a_local = relay.local_addr(Leg::A);
    let (caller, seat) = (peer().await, peer().await);
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    start_bridged(&relay, None);

    let garbage: [&[u8]; 4] = [b"", b"short", &[0x40; 20], b"INVITE sip:x SIP/2.0"];
    for g in garbage {
        caller.send_to(g, a_local).await.unwrap();
    }
    let s = wait_stats(&relay, |s| s.a.dropped == 4).await;
    assert_eq!((s.a.rx_packets, s.b.tx_packets), (4, 0));
    // Garbage did not latch the caller leg; real RTP still flows.
    assert_eq!(relay.remote(Leg::A), None);
    caller.send_to(&rtp(1, b"ok"), a_local).await.unwrap();
    assert_media(&recv(&seat).await.0, &rtp(1, b"ok"));
    assert_eq!(relay.remote(Leg::A), Some(caller.local_addr().unwrap()));
}

#[tokio::test]
async fn finish_reports_and_ends_relaying_and_gives_the_ports_back() {
    let pool = pool(41800);
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let ports = [relay.local_addr(Leg::A), relay.local_addr(Leg::B)];
    assert_eq!(pool.in_use(), 3, "one port per leg");
    let (caller, seat) = (peer().await, peer().await);
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    start_bridged(&relay, None);
    caller.send_to(&rtp(1, b"early"), ports[0]).await.unwrap();
    recv(&seat).await;
    let report = relay.finish().await;
    assert_eq!(report.stats.a.rx_packets, 1, "the counters of the call");
    assert_eq!(pool.in_use(), 0);
    caller.send_to(&rtp(2, b"late"), ports[0]).await.unwrap();
    assert_silent(&seat).await;
}

/// `finish_then` hands the report to a callback on the relay thread, the ports given back
/// before it runs, with no task waiting; a relay never started reports at once, here.
#[tokio::test]
async fn finish_then_reports_on_the_relay_thread_with_the_ports_back() {
    let pool = pool(45000);
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    start_bridged(&relay, None);
    let (tx, rx) = std::sync::mpsc::channel();
    let ports = Arc::clone(&pool);
    relay.finish_then(Box::new(move |report| {
        let thread = std::thread::current().name().map(String::from);
        tx.send((report.stats.a.rx_packets, ports.in_use(), thread))
            .ok();
    }));
    let (rx_packets, in_use, thread) = rx.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!((rx_packets, in_use), (0, 0), "ports back before the report");
    assert!(thread.unwrap_or_default().starts_with("rtp-relay"));

    let never_started = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    never_started.finish_then(Box::new(move |report| {
        tx.send(report.recorder.is_none()).ok();
    }));
    assert_eq!(rx.try_recv(), Ok(true), "reported at once");
    assert_eq!(pool.in_use(), 0);
}

/// A finished call's leg sockets are parked and serve a later call's leg: what reached
/// them after the first call ended (a late packet) is emptied first, never relayed into
/// the second call, which relays its own media both ways.
#[tokio::test]
async fn a_later_call_reuses_a_parked_pair_without_its_late_packets() {
    let pool = Arc::new(
        PortPool::new(45200, 45219)
            .unwrap()
            .with_quarantine(Duration::ZERO),
    );
    let first = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let a_port = first.local_addr(Leg::A);
    let (caller, seat) = (peer().await, peer().await);
    first.set_remote(Leg::B, seat.local_addr().unwrap());
    start_bridged(&first, None);
    caller.send_to(&rtp(1, b"first"), a_port).await.unwrap();
    assert_media(&recv(&seat).await.0, &rtp(1, b"first"));
    first.finish().await;
    assert_eq!(pool.parked(), 2, "the caller's and the seat's pairs");
    caller.send_to(&rtp(2, b"late"), a_port).await.unwrap();
    // The late packet is in the parked socket's queue before the next call takes it.
    tokio::time::sleep(Duration::from_millis(20)).await;

    let second = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    assert_eq!(second.local_addr(Leg::A), a_port, "the parked pair, reused");
    let seat2 = peer().await;
    second.set_remote(Leg::B, seat2.local_addr().unwrap());
    start_bridged(&second, None);
    let b_port = second.local_addr(Leg::B);
    assert_silent(&seat2).await;
    let caller2 = peer().await;
    caller2.send_to(&rtp(3, b"second"), a_port).await.unwrap();
    assert_media(&recv(&seat2).await.0, &rtp(3, b"second"));
    seat2.send_to(&rtp(4, b"back"), b_port).await.unwrap();
    assert_media(&recv(&caller2).await.0, &rtp(4, b"back"));
    assert_silent(&seat).await;
}

#[tokio::test]
async fn pool_exhaustion_is_an_error() {
    let pool = Arc::new(PortPool::new(42000, 42005).unwrap());
    let first = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let err = MediaRelay::bind(LOCALHOST, &pool).await.unwrap_err();
    assert!(matches!(err, MediaError::PortsExhausted), "{err}");
    // The failed attempt did not leak its lease.
    assert_eq!(pool.in_use(), 3);
    drop(first);
    assert_eq!(pool.in_use(), 0);
}

#[tokio::test]
async fn skips_ports_taken_outside_the_pool() {
    let pool = Arc::new(PortPool::new(42100, 42199).unwrap());
    // Occupy the first port the pool would hand out.
    let squatter = std::net::UdpSocket::bind((LOCALHOST, 42100));
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    if squatter.is_ok() {
        assert_ne!(relay.local_addr(Leg::A).port(), 42100);
    }
    assert_eq!(pool.in_use(), 3);
}

/// The wedge of a nearly full pool: its one free port is held by another process. Each
/// attempt must try a different port, and the failure must say so (not "cannot bind" on
/// the same port again and again); once the port is free, the leg binds.
#[tokio::test]
async fn a_port_held_outside_is_skipped_not_retried() {
    let pool = Arc::new(PortPool::new(42300, 42307).unwrap());
    // Ports 42300 (RTP) and 42305 (RTCP of 42304) are held by someone else: two of the
    // four pairs are unusable, so one of a call's three legs cannot be bound.
    let held = [42300, 42305].map(|p| std::net::UdpSocket::bind((LOCALHOST, p)));
    if held.iter().any(Result::is_err) {
        return; // another program holds them already; nothing to prove here
    }
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let opened = Leg::ALL.map(|leg| relay.open(leg));
    let (failed, bound): (Vec<_>, Vec<_>) = opened.iter().partition(|r| r.is_err());
    match &failed[..] {
        [Err(MediaError::PortsUnusable { ports })] => {
            let mut ports = ports.clone();
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(
                ports,
                [42300, 42304],
                "each held port tried once: {failed:?}"
            );
        }
        other => panic!("expected one leg with PortsUnusable, got {other:?}"),
    }
    let mut bound: Vec<u16> = bound.iter().map(|r| r.as_ref().unwrap().port()).collect();
    bound.sort_unstable();
    assert_eq!(bound, [42302, 42306], "the two free pairs");
    assert_eq!(pool.in_use(), 3, "no lease leaked");
    drop(held);
    let leg = Leg::ALL[opened.iter().position(Result::is_err).unwrap()];
    assert!(relay.open(leg).is_ok(), "the port is free again");
    drop(relay);
    assert_eq!(pool.in_use(), 0);
    // One held port among free ones is skipped, whatever the pool's cursor.
    let _held = std::net::UdpSocket::bind((LOCALHOST, 42302)).unwrap();
    for _ in 0..4 {
        let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
        let ports: Vec<u16> = Leg::ALL.map(|l| relay.local_addr(l).port()).to_vec();
        assert!(!ports.contains(&42302), "{ports:?}");
    }
}

/// A call binds the caller's sockets at once and a seat leg's only once it is offered to a
/// seat (or given a peer): the third leg of a call without transfer never opens any.
#[tokio::test]
async fn seat_legs_are_bound_only_when_negotiated() {
    let pool = pool(43400);
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    assert_eq!(pool.in_use(), 3, "the call's ports are reserved at once");
    assert!(relay.is_open(Leg::A));
    assert!(!relay.is_open(Leg::B) && !relay.is_open(Leg::C));
    // Nobody listens on the seat legs' ports yet: we can take them ourselves.
    let free = |port: u16| std::net::UdpSocket::bind((LOCALHOST, port)).is_ok();
    let [b, c] = [43402, 43404];
    assert!(free(b) && free(b + 1) && free(c) && free(c + 1));
    // Offered to a seat: bound, and relaying.
    let b_local = relay.local_addr(Leg::B);
    assert_eq!(b_local.port(), b);
    assert!(relay.is_open(Leg::B) && !free(b) && !free(b + 1));
    let (caller, seat) = (peer().await, peer().await);
    relay.set_remote(Leg::A, caller.local_addr().unwrap());
    start_bridged(&relay, None);
    seat.send_to(&rtp(1, b"hello"), b_local).await.unwrap();
    let (got, from) = recv(&caller).await;
    assert_media(&got, &rtp(1, b"hello"));
    assert_eq!(from, relay.local_addr(Leg::A));
    assert!(!relay.is_open(Leg::C) && free(c));
    drop(relay);
    assert_eq!(pool.in_use(), 0);
}

#[tokio::test]
async fn conference_sends_each_peer_the_mix_of_the_two_others() {
    use crate::media::dtmf::testutil::{g711, power_at, tones};
    use crate::media::g711::G711Law;

    let relay = MediaRelay::bind(LOCALHOST, &pool(42200)).await.unwrap();
    let peers = [peer().await, peer().await, peer().await];
    for leg in Leg::ALL {
        relay.set_remote(leg, peers[leg.idx()].local_addr().unwrap());
        relay.set_codecs(leg, PCMU);
    }
    relay.conference();
    relay.start(RelayMetrics::default(), Box::new(|_| {}));
    // Each peer says its own tone (whole cycles per 20 ms frame).
    let says = [500.0, 1000.0, 1800.0];
    let speech = says.map(|f| g711(&tones(&[(f, 8000.0)], 20), G711Law::Ulaw));
    let mut heard_both = [false; 3];
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + WAIT;
    while heard_both.contains(&false) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heard: {heard_both:?}"
        );
        for leg in Leg::ALL {
            let packet = rtp(1, &speech[leg.idx()]);
            let to = relay.local_addr(leg);
            peers[leg.idx()].send_to(&packet, to).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for leg in Leg::ALL {
            while let Ok((n, from)) = peers[leg.idx()].try_recv_from(&mut buf) {
                assert_eq!(from, relay.local_addr(leg), "from the leg's own socket");
                let frame: Vec<i16> = buf[RTP_HEADER_LEN..n]
                    .iter()
                    .map(|&b| G711Law::Ulaw.decode(b))
                    .collect();
                let mut others = Leg::ALL.into_iter().filter(|&l| l != leg);
                heard_both[leg.idx()] |=
                    others.all(|other| power_at(&frame, says[other.idx()]) > 1e6);
            }
        }
    }
    let s = relay.stats();
    for (leg, stats) in [s.a, s.b, s.c].into_iter().enumerate() {
        assert!(
            stats.rx_packets > 0 && stats.tx_packets > 0,
            "leg {leg}: {stats:?}"
        );
        assert_eq!(stats.dropped, 0, "leg {leg}: mixed packets are not dropped");
    }
}

/// A supervisor on C: known PCMU frames in (constant samples, one level per leg), the
/// mixed samples out on each leg's socket, for listen then whisper.
#[tokio::test]
async fn a_monitored_call_sends_each_peer_the_mix_its_mode_allows() {
    use crate::cti::MonitorMode;
    use crate::media::g711::G711Law;
    use crate::media::session::Monitor;

    let law = G711Law::Ulaw;
    let relay = MediaRelay::bind(LOCALHOST, &pool(43000)).await.unwrap();
    let peers = [peer().await, peer().await, peer().await];
    for leg in Leg::ALL {
        relay.set_remote(leg, peers[leg.idx()].local_addr().unwrap());
        relay.set_codecs(leg, PCMU);
    }
    relay.bridge(Leg::B);
    relay.start(RelayMetrics::default(), Box::new(|_| {}));
    // Caller, ARM, supervisor: each a constant level, as it decodes.
    let levels = [1_000i16, 2_000, 4_000].map(|x| law.decode(law.encode(x)));
    let frames = levels.map(|x| [law.encode(x); 160]);
    let mix = |legs: &[usize]| law.decode(law.encode(legs.iter().map(|&l| levels[l]).sum()));
    for (mode, expect) in [
        // Listen: A hears B, B hears A, C hears both; nobody hears C.
        (MonitorMode::Listen, [mix(&[1]), mix(&[0]), mix(&[0, 1])]),
        // Whisper: B hears C too; A still does not.
        (
            MonitorMode::Whisper,
            [mix(&[1]), mix(&[0, 2]), mix(&[0, 1])],
        ),
    ] {
        relay.monitor(Some(Monitor {
            supervisor: Leg::C,
            mode,
        }));
        let mut got = [false; 3];
        let mut buf = [0u8; 2048];
        let deadline = tokio::time::Instant::now() + WAIT;
        while got.contains(&false) {
            assert!(tokio::time::Instant::now() < deadline, "{mode:?}: {got:?}");
            for leg in Leg::ALL {
                let to = relay.local_addr(leg);
                peers[leg.idx()]
                    .send_to(&rtp(1, &frames[leg.idx()]), to)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            for leg in Leg::ALL {
                while let Ok((n, _)) = peers[leg.idx()].try_recv_from(&mut buf) {
                    let samples: Vec<i16> = buf[RTP_HEADER_LEN..n]
                        .iter()
                        .map(|&b| law.decode(b))
                        .collect();
                    // Samples of the whole mix, or of a part while buffers fill: never
                    // more than the mode lets the leg hear.
                    for &s in &samples {
                        assert!(s.abs() <= expect[leg.idx()].abs(), "{mode:?} {leg:?}: {s}");
                    }
                    got[leg.idx()] |= samples.iter().all(|&s| s == expect[leg.idx()]);
                }
            }
        }
    }
    relay.monitor(None);
}

/// A call's command channel keeps a block of 32 commands allocated for the call's life:
/// at 24 bytes a command that block is under 1 KiB (it was 2.3 KiB with the SRTP keys and
/// the announcement inline).
#[test]
fn a_command_is_at_most_24_bytes() {
    assert!(
        std::mem::size_of::<Command>() <= 24,
        "{} bytes",
        std::mem::size_of::<Command>()
    );
}
