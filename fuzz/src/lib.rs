//! The fuzz checks: one function per target, taking the fuzzer's bytes and panicking on a
//! bug. A bug is a panic anywhere in the router's code, or an answer the input should never
//! get (a `5xx` but the guard's deliberate `501`/`505`, a SIP answer that does not parse).
//!
//! `fuzz_targets/*.rs` hand these to libFuzzer (nightly, `cargo fuzz run <target>`);
//! `tests/it/fuzz_corpus.rs` replays every file of `fuzz/corpus/<target>/` through the same
//! functions on stable, so the corpus guards against regressions in every test run.

use rsipstack::sip::{Method, SipMessage, Transport};
use rsipstack::transport::SipConnection;
use sas_core::media::dtmf::rfc4733::{TelephoneEventDecoder, parse_rtp};
use sas_core::media::g711::G711Law;
use sas_core::media::leg::Leg;
use sas_core::media::rtcp::{RtcpSession, is_rtcp, parse_compound};
use sas_core::media::sdp::{
    KEY_MATERIAL_LEN, LegCodecs, MasterKey, SessionDescription, SrtpKeys, SrtpPolicy, SrtpSuite,
};
use sas_core::media::session::MediaSession;
use sas_core::routing::plan::load_texts;
use sas_core::routing::simulate::simulate;
use sas_router::bans::BanSettings;
use sas_router::bans::shared::Guard;
use sas_router::media::srtp::SrtpLeg;
use sas_router::net::front::FrontDesk;
use sas_router::net::sip_tcp::{Frame, next_frame};
use sas_router::sip::digest::{DigestAlgorithm, NonceStore, SeatCredential, ha1};
use sas_router::sip::guard::{Verdict, bad_request, judge};
use sas_router::sip::registrar::{Registrar, RegistrarConfig};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// A target's check.
pub type Check = fn(&[u8]);

/// The targets, by name (the corpus directories and `cargo fuzz` targets).
pub const TARGETS: [(&str, Check); 5] = [
    ("sip_guard", sip_guard),
    ("sdp", sdp),
    ("rtp", rtp),
    ("dialplan", dialplan),
    ("digest", digest),
];

const REALM: &str = "sas.example";
const SEAT: &str = "arm1";
const NOW: u64 = 1_800_000_000_000;
const SOURCE: &str = "192.0.2.7:5060";

fn source() -> SocketAddr {
    SOURCE.parse().expect("a socket address")
}

fn credential(name: &str) -> Option<SeatCredential> {
    (name == SEAT).then(|| SeatCredential {
        username: SEAT.into(),
        ha1_md5: Some(ha1(DigestAlgorithm::Md5, SEAT, REALM, "secret")),
        ha1_sha256: Some(ha1(DigestAlgorithm::Sha256, SEAT, REALM, "secret")),
        algorithms: None,
        transports: None,
    })
}

fn nonces() -> NonceStore {
    NonceStore::new([7; 32], 300_000, 16)
}

/// A raw SIP message, as a datagram (UDP, a WebSocket message) and as a TCP stream: the
/// stream is framed ([`next_frame`]), every message goes through the guard ([`judge`]),
/// and what the guard passes through rsipstack's parser, the front desk (unauthenticated
/// REGISTERs) and the registrar (REGISTER, or a seat's request authentication). The guard
/// answers `400`, `501` or `505`, or nothing; nothing after it answers `5xx`.
pub fn sip_guard(data: &[u8]) {
    judged(data, Transport::Udp);
    let mut stream = data.to_vec();
    loop {
        match next_frame(&mut stream) {
            Frame::Incomplete => break,
            Frame::Ping => {}
            Frame::Message(message) => judged(&message, Transport::Tcp),
            Frame::Unframeable { head, defect } => {
                guard_answer(bad_request(&head, defect));
                break;
            }
        }
    }
}

fn judged(message: &[u8], transport: Transport) {
    match judge(message) {
        Verdict::Pass => after_guard(message, transport),
        verdict => guard_answer(verdict),
    }
}

/// The guard's own answer: a parseable `400`, `501` or `505`.
fn guard_answer(verdict: Verdict) {
    let Verdict::Reply(bytes) = verdict else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    let code = text.get(8..11).unwrap_or_default();
    assert!(
        ["400", "501", "505"].contains(&code),
        "the guard answered {text:?}"
    );
    assert!(
        matches!(
            SipMessage::try_from(&bytes[..]),
            Ok(SipMessage::Response(_))
        ),
        "the guard's answer does not parse: {text:?}"
    );
}

/// What the router does with a message the guard let through.
fn after_guard(message: &[u8], transport: Transport) {
    if message.iter().all(u8::is_ascii_whitespace) {
        return; // a keep-alive
    }
    let parsed = SipMessage::try_from(message);
    let Ok(parsed) = parsed else {
        panic!("the guard passed what rsipstack cannot parse: {parsed:?}");
    };
    let desk = front_desk();
    if let Some(answer) = desk.answer(&parsed, source(), transport) {
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("SIP/2.0 401 "), "front desk: {text:?}");
    }
    let Ok(SipMessage::Request(req)) =
        SipConnection::update_msg_received(parsed, source(), transport)
    else {
        return;
    };
    let mut registrar = Registrar::new(registrar_config());
    let mut nonces = nonces();
    let response = if req.method == Method::Register {
        let outcome =
            registrar.handle_register(NOW, &req, source(), transport, &mut nonces, credential);
        outcome.response
    } else {
        let at = (source().ip(), transport);
        match registrar.authenticate_request(NOW, &req, at, &mut nonces, credential) {
            Ok(_) => return,
            Err(response) => response,
        }
    };
    let code = response.status_code.code();
    assert!(code < 500, "the registrar answered {code}: {response}");
}

fn registrar_config() -> RegistrarConfig {
    RegistrarConfig {
        realm: REALM.into(),
        ..RegistrarConfig::default()
    }
}

fn front_desk() -> FrontDesk {
    let registry = prometheus::Registry::new();
    let bans = Guard::new(BanSettings::default(), &[], [SEAT.to_owned()], &registry)
        .expect("fresh registry");
    let requests = prometheus::IntCounterVec::new(prometheus::Opts::new("r", "r"), &["method"])
        .expect("valid metric");
    let credentials = HashMap::from([(SEAT.to_owned(), credential(SEAT).expect("the seat"))]);
    FrontDesk::new(
        Registrar::new(registrar_config()),
        nonces(),
        credentials,
        bans,
        requests,
        None,
    )
}

/// An SDP body (an offer or answer from the trunk, a seat or a browser): parsed, then
/// everything the router does with one: codecs chosen, the answer built, rewritten for the
/// media anchor, printed and parsed again (what the router prints, it must read back).
pub fn sdp(data: &[u8]) {
    let Ok(mut offer) = SessionDescription::parse_bytes(data) else {
        return;
    };
    let _ = (offer.connection_address(), offer.audio_endpoint());
    let _ = (offer.audio_rtpmaps(), offer.audio_payload_types());
    let _ = (
        offer.leg_codecs(),
        offer.webrtc_leg_codecs(),
        offer.is_webrtc(),
    );
    let _ = (offer.receives_audio(), offer.sends_audio());
    srtp_offer_answer(&offer);
    if offer.is_webrtc() {
        let _ = offer.webrtc_as_rtp();
    }
    let anchor: IpAddr = "203.0.113.1".parse().expect("an address");
    if offer.rewrite_for_anchor(anchor, 40_000).is_ok() {
        offer.set_origin("sas-router", 1, 2);
        let printed = offer.to_string();
        let again = SessionDescription::parse_bytes(printed.as_bytes());
        assert!(
            again.is_ok(),
            "printed SDP does not parse: {again:?}\n{printed}"
        );
    }
    if offer.restrict_codecs(&["PCMA", "PCMU"]).is_ok() {
        let printed = offer.to_string();
        let again = SessionDescription::parse_bytes(printed.as_bytes());
        assert!(
            again.is_ok(),
            "restricted SDP does not parse: {again:?}\n{printed}"
        );
    }
}

/// SDES (`a=crypto`): the choice under each policy, our answer carrying our key (which must
/// read back as the one line of the answer), and the offer read as an answer to ours.
fn srtp_offer_answer(offer: &SessionDescription) {
    let ours = MasterKey::new([0x5a; KEY_MATERIAL_LEN]);
    let _ = (offer.audio_is_savp(), offer.audio_crypto());
    let _ = offer.srtp_in_answer(ours);
    for policy in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
        let Ok(Some(keys)) = offer.srtp_for_offer(policy, || ours) else {
            continue;
        };
        let mut answer = offer.clone();
        answer.set_answer_crypto(Some(&keys));
        let printed = answer.to_string();
        let again = SessionDescription::parse_bytes(printed.as_bytes())
            .unwrap_or_else(|e| panic!("SRTP answer does not parse: {e}\n{printed}"));
        let lines = again.audio_crypto();
        assert!(
            lines.len() == 1 && lines[0].key == ours && lines[0].tag == keys.tag,
            "our answer's a=crypto: {lines:?}\n{printed}"
        );
    }
}

/// A datagram on a media port: the relay's demultiplexing (RTCP or RTP), RTCP compound
/// parsing and the receiver-report state, RFC 4733 telephone-events, and the media session
/// relaying and transcoding it between two legs.
pub fn rtp(data: &[u8]) {
    let _ = is_rtcp(data);
    let _ = parse_compound(data);
    let mut rtcp = RtcpSession::new(0x1234_5678, "fuzz@sas".into());
    let _ = rtcp.on_rtcp(data, 1_000);
    let _ = rtcp.report(2_000);
    let _ = rtcp.quality();
    if let Some(view) = parse_rtp(data) {
        let mut events = TelephoneEventDecoder::default();
        let _ = events.push(view.timestamp, view.marker, view.payload, 1_000);
        let _ = events.push(view.timestamp, view.marker, view.payload, 1_020);
    }
    let mut session = MediaSession::new(0, [1, 2, 3], [10, 20, 30]);
    let codecs = |law| LegCodecs {
        audio_pt: 8,
        law,
        dtmf_pt: Some(101),
        other_pt: Some(0),
    };
    session.set_codecs(Leg::A, codecs(G711Law::Alaw));
    session.set_codecs(Leg::B, codecs(G711Law::Ulaw));
    session.bridge(Leg::B);
    let mut packet = data.to_vec();
    let _ = session.on_rtp(Leg::A, &mut packet, 20);
    let _ = session.poll_digit();
    session.on_rtcp(Leg::A, data, 40);
    let _ = session.quality(Leg::A);
    srtp_unprotect(data);
}

/// What an SRTP leg does with a datagram before anything is authenticated: unprotect it
/// as SRTP and as SRTCP (both suites), and protect it as ours.
fn srtp_unprotect(data: &[u8]) {
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let keys = SrtpKeys {
            tag: 1,
            suite,
            local: MasterKey::new([1; KEY_MATERIAL_LEN]),
            remote: MasterKey::new([2; KEY_MATERIAL_LEN]),
        };
        let Ok(mut leg) = SrtpLeg::new(&keys) else {
            panic!("SRTP context for {suite:?}");
        };
        let _ = leg.unprotect_rtp(data);
        let _ = leg.unprotect_rtcp(data);
        let _ = leg.protect_rtp(data);
        let _ = leg.protect_rtcp(data);
    }
}

/// Prompt and schedule names the fuzzed dial plans may refer to.
const PROMPTS: &[&str] = &["accueil", "attente", "fermeture"];
const SCHEDULES: &[&str] = &["ouverture", "nuit"];

/// A dial-plan file (TOML, as `dialplans/*.toml`): loaded and validated, or refused with
/// errors that name the file; never a panic. A valid set is then followed by the same
/// interpreter as live calls (`sas-router simulate`): a call to each entry's numbers, by
/// day and by night, the caller pressing keys at the menus.
pub fn dialplan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = vec![(PathBuf::from("dialplans/fuzz.toml"), text.to_owned())];
    let plans = match load_texts(files, PROMPTS, SCHEDULES) {
        Ok(plans) => Arc::new(plans),
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without an error");
            for e in errors {
                let _ = e.to_string();
            }
            return;
        }
    };
    let numbers: Vec<String> = plans
        .entries
        .values()
        .flat_map(|e| e.numbers.iter().cloned())
        .chain(plans.internal.values().map(|i| i.number.clone()))
        .take(8)
        .collect();
    // A Monday at 10:00 and a Saturday at 03:00 (UTC).
    for at in [1_799_661_600_000, 1_800_068_400_000] {
        for number in &numbers {
            let _ = simulate(Arc::clone(&plans), number, at, "1293*#");
        }
    }
}

/// An `Authorization` header value (REGISTER, a seat's INVITE): parsed and verified
/// against the seat `arm1`, as is and with its `nonce` replaced by one this router issued
/// (so that the fuzzer reaches the response and nonce-count checks).
pub fn digest(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let mut nonces = nonces();
    let ip = source().ip();
    let verify = |nonces: &mut NonceStore, header: &str| {
        let _ = nonces.verify(NOW, ip, REALM, &Method::Register, header, credential);
    };
    verify(&mut nonces, header);
    let issued = nonces.issue(NOW - 1_000, ip);
    let with_ours = replace_nonce(header, &issued);
    verify(&mut nonces, &with_ours);
    verify(&mut nonces, &with_ours);
}

/// `header` with the value of its first `nonce=` parameter replaced by `nonce`.
fn replace_nonce(header: &str, nonce: &str) -> String {
    let Some(at) = header.find("nonce=") else {
        return header.to_owned();
    };
    let value = at + "nonce=".len();
    let rest = &header[value..];
    let end = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.find('"').map_or(rest.len(), |e| e + 2)
    } else {
        rest.find([',', ' ']).unwrap_or(rest.len())
    };
    format!("{}\"{nonce}\"{}", &header[..value], &rest[end..])
}
