//! In-process fuzzing: mutated messages through the guard, the SIP parser and the stream
//! framer must never panic, and valid seeds must pass the guard.

use super::*;
use crate::net::sip_tcp::{Frame, next_frame};
use crate::sip::guard::{Verdict, judge};

fn addrs() -> (SocketAddr, SocketAddr) {
    (
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1:40000".parse().unwrap(),
    )
}

#[test]
fn same_seed_same_cases() {
    let (target, local) = addrs();
    let mut a = Fuzzer::new(7, target, local, "UDP");
    let mut b = Fuzzer::new(7, target, local, "UDP");
    for i in 0..200 {
        assert_eq!(a.case(i).bytes, b.case(i).bytes);
    }
    let mut c = Fuzzer::new(8, target, local, "UDP");
    assert!((0..20).any(|i| c.case(i).bytes != a.case(i).bytes));
}

#[test]
fn every_seed_is_valid_and_carries_its_marker() {
    let (target, local) = addrs();
    for transport in ["UDP", "TCP"] {
        for seed in corpus::SEEDS {
            let context = corpus::Context {
                target,
                local,
                transport,
                marker: marker(42),
            };
            let text = corpus::build(seed, &context);
            let bytes = corpus::Message::parse(&text).into_bytes();
            assert_eq!(bytes, text.as_bytes(), "{seed}: rebuilt as it was");
            assert_eq!(judge(&bytes), Verdict::Pass, "{seed}: {text}");
            assert_eq!(marked_case(&text), Some(42));
        }
    }
}

/// The property: whatever the bytes, the guard, the parser, the framer and the SDP reader
/// answer without panicking (5,000 cases by default; `SAS_FUZZ_UNIT_COUNT` for more).
#[test]
fn mutated_messages_never_panic_the_guard_parser_or_framer() {
    let (target, local) = addrs();
    let count = std::env::var("SAS_FUZZ_UNIT_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let mut fuzzer = Fuzzer::new(1, target, local, "UDP");
    let (mut passed, mut answered) = (0, 0);
    for i in 0..count {
        let case = fuzzer.case(i);
        let outcome = std::panic::catch_unwind(|| {
            let verdict = judge(&case.bytes);
            let _ = rsipstack::sip::SipMessage::try_from(&case.bytes[..]);
            let mut stream = case.bytes.clone();
            stream.extend_from_slice(&case.bytes);
            for _ in 0..4 {
                if matches!(next_frame(&mut stream), Frame::Incomplete) {
                    break;
                }
            }
            if let Some(body) = case.bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                use crate::media::sdp::{RELAYED_CODECS, SessionDescription};
                if let Ok(mut sdp) = SessionDescription::parse_bytes(&case.bytes[body + 4..]) {
                    let _ = sdp.restrict_codecs(RELAYED_CODECS);
                    let _ = (sdp.leg_codecs(), sdp.audio_endpoint(), sdp.receives_audio());
                    let _ = sdp.rewrite_for_anchor([127, 0, 0, 1].into(), 4000);
                }
            }
            verdict
        });
        match outcome {
            Ok(Verdict::Pass) => passed += 1,
            Ok(Verdict::Reply(r)) => {
                answered += 1;
                let status = String::from_utf8_lossy(&r[8..11]).to_string();
                assert!(
                    status.starts_with('4') || status == "501" || status == "505",
                    "{}: guard answered {status}",
                    case.describe()
                );
            }
            Ok(Verdict::Drop) => {}
            Err(_) => panic!(
                "{} panicked:\n{}",
                case.describe(),
                String::from_utf8_lossy(&case.bytes)
            ),
        }
    }
    // The run exercises both sides of the guard.
    assert!(
        passed > count / 20 && answered > count / 10,
        "{passed} passed, {answered} answered"
    );
}

#[test]
fn markers_are_found_in_responses() {
    assert_eq!(marked_case("Call-ID: fzc1234x@127.0.0.1"), Some(1234));
    assert_eq!(marked_case("branch=z9hG4bKfzc7x;rport"), Some(7));
    assert_eq!(marked_case("fzc12 nothing"), None);
    assert_eq!(marked_case("no marker"), None);
}

#[test]
fn a_ringing_invite_is_cancelled() {
    let ringing = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:4;branch=z9hG4bKfzc3x;rport=4\r\nFrom: <sip:a@b>;tag=fzc3x\r\nTo: <sip:15@c>;tag=r9\r\nCall-ID: fzc3x@b\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n";
    let cancel = String::from_utf8(cancel(ringing.as_bytes(), "sip:15@c").unwrap()).unwrap();
    assert!(
        cancel.starts_with("CANCEL sip:15@c SIP/2.0\r\n"),
        "{cancel}"
    );
    assert!(cancel.contains("branch=z9hG4bKfzc3x;") && cancel.contains("CSeq: 5 CANCEL"));
    assert!(cancel.contains("To: <sip:15@c>\r\n"), "{cancel}");
    assert_eq!(judge(cancel.as_bytes()), Verdict::Pass);
    let not_invite = ringing.replace("5 INVITE", "5 OPTIONS");
    assert_eq!(super::cancel(not_invite.as_bytes(), "sip:x"), None);
}

#[test]
fn an_answered_invite_is_hung_up() {
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:4;branch=z9hG4bKfzc3x;rport=4\r\nFrom: <sip:a@b>;tag=fzc3x\r\nTo: <sip:15@c>;tag=r9\r\nCall-ID: fzc3x@b\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
    let [ack, bye] = hang_up(ok.as_bytes(), "sip:15@c").unwrap();
    let (ack, bye) = (
        String::from_utf8(ack).unwrap(),
        String::from_utf8(bye).unwrap(),
    );
    assert!(
        ack.starts_with("ACK sip:15@c SIP/2.0") && ack.contains("CSeq: 7 ACK"),
        "{ack}"
    );
    assert!(
        bye.contains("CSeq: 8 BYE") && bye.contains("To: <sip:15@c>;tag=r9"),
        "{bye}"
    );
    assert_eq!(judge(bye.as_bytes()), Verdict::Pass);
    assert!(hang_up(ok.replace("7 INVITE", "7 BYE").as_bytes(), "sip:x").is_none());
    assert_eq!(
        request_uri(b"INVITE sip:15@c SIP/2.0\r\n"),
        Some("sip:15@c")
    );
}
