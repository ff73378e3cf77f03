//! An SRTP caller leg bridged to a plain seat leg, over real UDP sockets: audio both ways,
//! RTCP, and forged or replayed packets dropped and counted without latching.

use super::*;
use crate::media::srtp::{KEY_MATERIAL_LEN, MasterKey, SrtpSuite};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::net::UdpSocket;

use prometheus::Opts;
use tokio::time::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(2);

const PCMU: LegCodecs = LegCodecs {
    audio_pt: 0,
    law: crate::media::g711::G711Law::Ulaw,
    dtmf_pt: None,
    other_pt: None,
};

fn rtp(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, seq, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
    p.extend_from_slice(payload);
    p
}

/// The relay's keys for leg A, and the caller's (the same, seen from the other end).
fn keys() -> (SrtpKeys, SrtpKeys) {
    let (relay, caller) = (
        MasterKey::new([0x11; KEY_MATERIAL_LEN]),
        MasterKey::new([0x22; KEY_MATERIAL_LEN]),
    );
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let at = |local, remote| SrtpKeys {
        tag: 1,
        suite,
        local,
        remote,
    };
    (at(relay, caller), at(caller, relay))
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("packet within timeout")
        .unwrap();
    buf[..n].to_vec()
}

async fn silent(sock: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    timeout(Duration::from_millis(100), sock.recv_from(&mut buf))
        .await
        .is_err()
}

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

#[tokio::test]
async fn an_srtp_caller_is_heard_in_plain_and_forgeries_are_dropped_and_counted() {
    let pool = Arc::new(PortPool::new(42800, 42899).unwrap());
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let (a_local, b_local) = (relay.local_addr(Leg::A), relay.local_addr(Leg::B));
    let caller = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let (seat, intruder) = (
        UdpSocket::bind((LOCALHOST, 0)).await.unwrap(),
        UdpSocket::bind((LOCALHOST, 0)).await.unwrap(),
    );
    let (ours, theirs) = keys();
    let mut phone = crate::media::srtp::SrtpLeg::new(&theirs).unwrap();
    relay.set_remote(Leg::A, caller.local_addr().unwrap());
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    relay.set_codecs(Leg::A, PCMU);
    relay.set_codecs(Leg::B, PCMU);
    relay.set_srtp(Leg::A, Some(ours));
    relay.bridge(Leg::B);
    let rejected = IntCounterVec::new(Opts::new("srtp_rejected", "test"), &["leg"]).unwrap();
    let metrics = RelayMetrics {
        relayed: None,
        srtp_rejected: Some(rejected.clone()),
        ..RelayMetrics::default()
    };
    relay.start(metrics, Box::new(|_| {}));

    // A plain RTCP report before the caller's first authenticated packet (sent before it
    // had our keys, read after them): dropped, not counted as a forgery.
    let rr = [0x80, 201, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
    caller.send_to(&rr, a_local).await.unwrap();
    let s = wait_stats(&relay, |s| s.a.dropped == 1).await;
    assert_eq!((s.a.srtp_rejected, s.a.rx_rtcp), (0, 0));

    // A forgery, from elsewhere: dropped, counted, and it latches nothing.
    let genuine = phone.protect_rtp(&rtp(1, &[0xd5; 160])).unwrap();
    let mut forged = genuine.to_vec();
    forged[40] ^= 0xff;
    intruder.send_to(&forged, a_local).await.unwrap();
    wait_stats(&relay, |s| s.a.srtp_rejected == 1).await;
    assert!(silent(&seat).await, "a forged packet reached the seat");

    // The caller's SRTP reaches the seat in plain RTP.
    caller.send_to(&genuine, a_local).await.unwrap();
    let heard = recv(&seat).await;
    assert_eq!(heard[12..], [0xd5; 160], "plain payload on the seat leg");
    assert_eq!(relay.remote(Leg::A), Some(caller.local_addr().unwrap()));

    // A replay of it is dropped too.
    caller.send_to(&genuine, a_local).await.unwrap();
    wait_stats(&relay, |s| s.a.srtp_rejected == 2).await;
    assert!(silent(&seat).await, "a replayed packet reached the seat");

    // The seat's plain RTP reaches the caller protected.
    seat.send_to(&rtp(9, b"seat voice"), b_local).await.unwrap();
    let wire = recv(&caller).await;
    assert_eq!(wire.len(), 12 + 10 + 10, "SRTP: payload plus an 80-bit tag");
    assert_ne!(&wire[12..22], b"seat voice", "encrypted on the wire");
    assert_eq!(&phone.unprotect_rtp(&wire).unwrap()[12..], b"seat voice");

    // A plain report read after the caller's first SRTP packet but before its first SRTCP
    // one (RTP and RTCP come on two sockets, read in another order than sent) is still an
    // early one: dropped, not counted.
    caller.send_to(&rr, a_local).await.unwrap();
    let s = wait_stats(&relay, |s| s.a.dropped == 2).await;
    assert_eq!((s.a.srtp_rejected, s.a.rx_rtcp), (2, 0));

    // SRTCP from the caller is a sign of life; plain RTCP on an SRTP leg whose SRTCP flows
    // is a forgery.
    let srtcp = phone.protect_rtcp(&rr).unwrap();
    let plain = |p: &[u8]| crate::media::rtcp::parse_compound(p).is_ok();
    assert!(
        plain(&rr) && !plain(&srtcp),
        "SRTCP never reads as a whole plain report"
    );
    caller.send_to(&srtcp, a_local).await.unwrap();
    wait_stats(&relay, |s| s.a.rx_rtcp == 1).await;
    caller.send_to(&rr, a_local).await.unwrap();
    let s = wait_stats(&relay, |s| s.a.srtp_rejected == 3).await;
    assert_eq!(
        (s.a.srtp_rejected, s.b.srtp_rejected, s.a.rx_rtcp),
        (3, 0, 1)
    );
    assert_eq!(
        s.a.rx_packets, 1,
        "only the genuine packet is a sign of life"
    );
    assert_eq!(rejected.with_label_values(&["caller"]).get(), 3);
}
