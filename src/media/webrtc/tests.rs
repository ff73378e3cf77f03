//! A router-side leg against an in-process browser peer on 127.0.0.1: offer, answer, tones
//! both ways through DTLS-SRTP, states, close.

use std::net::Ipv4Addr;

use super::testutil::Browser;
use super::*;
use crate::media::dtmf::testutil::{g711, power_at, tones};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Packets each way the test waits for (a second of audio).
const PACKETS: usize = 50;

fn config() -> WebRtcConfig {
    WebRtcConfig {
        bind_ip: LOCALHOST,
        public_ip: None,
        gather_timeout: Duration::from_secs(5),
    }
}

fn tone(freq: f32) -> Vec<u8> {
    g711(&tones(&[(freq, 8000.0)], 20), G711Law::Ulaw)
}

fn decode(payload: &[u8]) -> Vec<i16> {
    payload.iter().map(|&b| G711Law::Ulaw.decode(b)).collect()
}

/// A plain RTP packet as the relay would send it (its own SSRC, not the track's).
fn rtp_packet(seq: u16, payload: &[u8]) -> Bytes {
    let [s0, s1] = seq.to_be_bytes();
    let mut p = vec![0x80, 0x00, s0, s1, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
    p.extend_from_slice(payload);
    p.into()
}

#[tokio::test]
async fn offer_answer_and_tones_both_ways() {
    let (mut leg, offer) = WebRtcLeg::offer(&config(), G711Law::Alaw).await.unwrap();
    // Complete offer: candidates on the bind address, both laws (the caller's first), DTMF.
    assert!(offer.contains("typ host"), "{offer}");
    assert!(offer.contains(" 127.0.0.1 "), "{offer}");
    assert!(!offer.contains(".local"), "no mDNS names: {offer}");
    assert!(offer.contains("UDP/TLS/RTP/SAVPF 8 0 101"), "{offer}");
    assert!(
        offer.contains("a=rtpmap:101 telephone-event/8000"),
        "{offer}"
    );
    assert!(offer.contains("a=fingerprint:sha-256"), "{offer}");

    let (mut browser, answer) = Browser::answer(&offer).await;
    let codecs = leg.set_answer(&answer).await.expect(&answer);
    assert_eq!((codecs.audio_pt, codecs.law), (0, G711Law::Ulaw));
    let mut state = leg.state();
    tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| *s == WebRtcState::Connected),
    )
    .await
    .expect("connected")
    .unwrap();
    browser.connected().await;

    let WebRtcIo {
        mut from_peer,
        to_peer,
    } = leg.take_io().unwrap();
    assert!(leg.take_io().is_none());
    let (to_browser, to_router) = (tone(500.0), tone(1800.0));
    let (mut at_browser, mut at_router) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seq = 0u16;
    while at_browser < PACKETS || at_router < PACKETS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "at browser {at_browser}, at router {at_router}, {:?}",
            leg.stats()
        );
        seq = seq.wrapping_add(1);
        to_peer.send(rtp_packet(seq, &to_browser)).await.unwrap();
        browser.send(&to_router).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(p) = browser.received.try_recv() {
            assert_eq!(p.header.payload_type, 0);
            let pcm = decode(&p.payload);
            if power_at(&pcm, 500.0) > 1e6 && power_at(&pcm, 1800.0) < 1e4 {
                at_browser += 1;
            }
        }
        while let Ok(raw) = from_peer.try_recv() {
            let view = crate::media::dtmf::rfc4733::parse_rtp(&raw).unwrap();
            assert_eq!(view.payload_offset, 12, "header extensions stripped");
            let pcm = decode(view.payload);
            if power_at(&pcm, 1800.0) > 1e6 && power_at(&pcm, 500.0) < 1e4 {
                at_router += 1;
            }
        }
    }
    let stats = leg.stats();
    assert!(stats.sent >= PACKETS as u64, "{stats:?}");
    assert_eq!(stats.write_errors, 0, "SSRC rewritten to the track's");

    // The browser hangs up: the leg sees it, and its channels end.
    browser.close().await;
    tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| *s != WebRtcState::Connected),
    )
    .await
    .expect("leg sees the peer gone")
    .unwrap();
    leg.close().await;
}

#[tokio::test]
async fn a_phone_offering_again_is_answered_on_the_same_connection() {
    let (mut leg, offer) = WebRtcLeg::offer(&config(), G711Law::Ulaw).await.unwrap();
    let (mut browser, answer) = Browser::answer(&offer).await;
    leg.set_answer(&answer).await.unwrap();
    browser.connected().await;
    let mut from_peer = leg.take_io().unwrap().from_peer;

    // The phone's re-INVITE (hold, resume): a new offer on the live connection.
    let reoffer = browser.reoffer().await;
    let (ours, codecs) = leg.answer_reoffer(&reoffer).await.expect(&reoffer);
    assert_eq!((codecs.audio_pt, codecs.law), (0, G711Law::Ulaw));
    assert!(
        ours.contains("a=candidate:"),
        "still our candidates: {ours}"
    );
    browser.take_answer(&ours).await;
    assert_eq!(*leg.state().borrow(), WebRtcState::Connected);

    // Audio goes on flowing, over the same connection.
    let to_router = tone(1800.0);
    let mut heard = 0;
    for _ in 0..250 {
        browser.send(&to_router).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while from_peer.try_recv().is_ok() {
            heard += 1;
        }
        if heard >= PACKETS {
            break;
        }
    }
    assert!(heard >= PACKETS, "{heard} packets after the new offer");
    assert!(
        leg.answer_reoffer("v=0\r\nnot sdp").await.is_err(),
        "a broken offer is refused, not fatal"
    );
    leg.close().await;
}

#[tokio::test]
async fn a_phones_offer_is_answered_and_the_legs_connect() {
    // The phone's side is another router leg: its offer is a real WebRTC offer.
    let (mut phone, offer) = WebRtcLeg::offer(&config(), G711Law::Ulaw).await.unwrap();
    let (mut leg, answer, codecs) = WebRtcLeg::answer(&config(), &offer).await.unwrap();
    assert_eq!(
        (codecs.audio_pt, codecs.law),
        (0, G711Law::Ulaw),
        "{answer}"
    );
    assert!(answer.contains("a=candidate:") && answer.contains("a=setup:passive"));
    phone.set_answer(&answer).await.unwrap();
    let connected = |leg: &WebRtcLeg| {
        let mut state = leg.state();
        async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                state.wait_for(|s| *s == WebRtcState::Connected),
            )
            .await
            .expect("connected")
            .unwrap();
        }
    };
    connected(&leg).await;
    connected(&phone).await;
    let (to_leg, mut at_leg) = (
        phone.take_io().unwrap().to_peer,
        leg.take_io().unwrap().from_peer,
    );
    let payload = tone(500.0);
    let mut got = 0;
    for seq in 0..250u16 {
        to_leg.send(rtp_packet(seq, &payload)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        while at_leg.try_recv().is_ok() {
            got += 1;
        }
        if got >= PACKETS {
            break;
        }
    }
    assert!(got >= PACKETS, "{got} packets through the answered leg");
    assert!(
        WebRtcLeg::answer(&config(), "v=0\r\nnot an offer")
            .await
            .is_err(),
        "a broken offer is an error, not a panic"
    );
    leg.close().await;
    phone.close().await;
}

#[tokio::test]
async fn writes_before_connection_are_counted_not_fatal() {
    let (mut leg, _offer) = WebRtcLeg::offer(&config(), G711Law::Ulaw).await.unwrap();
    let io = leg.take_io().unwrap();
    for seq in 0..3 {
        io.to_peer
            .send(rtp_packet(seq, &tone(500.0)))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while leg.stats().not_connected < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", leg.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*leg.state().borrow(), WebRtcState::Connecting);
    leg.close().await;
}

#[tokio::test]
async fn answers_without_g711_are_the_seats_fault() {
    let (leg, _offer) = WebRtcLeg::offer(&config(), G711Law::Ulaw).await.unwrap();
    let opus = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
    let err = leg.set_answer(opus).await.unwrap_err();
    assert!(matches!(err, WebRtcError::NoCommonCodec), "{err}");
    let err = leg.set_answer("garbage").await.unwrap_err();
    assert!(matches!(err, WebRtcError::AnswerSdp(_)), "{err}");
    leg.close().await;
}

#[tokio::test]
async fn public_ip_is_advertised_in_candidates() {
    let config = WebRtcConfig {
        public_ip: Some("203.0.113.10".parse().unwrap()),
        ..config()
    };
    let (leg, offer) = WebRtcLeg::offer(&config, G711Law::Ulaw).await.unwrap();
    assert!(offer.contains(" 203.0.113.10 "), "{offer}");
    assert!(!offer.contains(" 127.0.0.1 "), "{offer}");
    leg.close().await;
}
