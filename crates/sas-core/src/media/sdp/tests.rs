//! Tests for SDP parsing, rewriting and codec restriction.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// SIPp's built-in uac_pcap offer, with bare `\n` line endings.
const SIPP: &str = "v=0\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\n\
s=-\n\
c=IN IP4 127.0.0.1\n\
t=0 0\n\
m=audio 6000 RTP/AVP 0\n\
a=rtpmap:0 PCMU/8000\n";

/// A softphone offer: many codecs, media-level c=, rtcp and ICE attributes, a video stream.
const SOFTPHONE: &str = "v=0\r\n\
o=- 3921514 3921515 IN IP4 192.168.1.20\r\n\
s=Softphone\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=ice-ufrag:abcd\r\n\
m=audio 40000 RTP/AVP 111 9 0 8 101 110\r\n\
c=IN IP4 192.168.1.21\r\n\
a=rtcp:40001 IN IP4 192.168.1.21\r\n\
a=candidate:1 1 UDP 2130706431 192.168.1.21 40000 typ host\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=ptime:20\r\n\
a=rtcp-mux\r\n\
a=sendrecv\r\n\
m=video 40002 RTP/AVP 96\r\n\
a=rtpmap:96 VP8/90000\r\n";

fn parse(s: &str) -> SessionDescription {
    s.parse().expect("valid SDP")
}

fn malformed(s: &str) -> MalformedReason {
    match s.parse::<SessionDescription>() {
        Err(SdpError::Malformed { reason, .. }) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn sipp_offer_accessors() {
    let sdp = parse(SIPP);
    assert_eq!(
        sdp.connection_address(),
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    assert_eq!(sdp.audio_port(), Some(6000));
    assert_eq!(sdp.audio_payload_types(), vec![0]);
    assert_eq!(
        sdp.audio_endpoint(),
        Some("127.0.0.1:6000".parse().unwrap())
    );
    let maps = sdp.audio_rtpmaps();
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0].encoding, "PCMU");
    assert_eq!(maps[0].clock_rate, 8000);
}

#[test]
fn emits_crlf_and_round_trips() {
    let sdp = parse(SIPP);
    let text = sdp.to_string();
    assert_eq!(text, SIPP.replace('\n', "\r\n"));
    assert_eq!(parse(&text), sdp);
    assert_eq!(parse(SOFTPHONE).to_string(), SOFTPHONE);
}

#[test]
fn media_level_connection_wins() {
    let sdp = parse(SOFTPHONE);
    assert_eq!(
        sdp.audio_endpoint(),
        Some("192.168.1.21:40000".parse().unwrap())
    );
}

#[test]
fn restrict_softphone_offer_to_relayed_codecs() {
    let mut sdp = parse(SOFTPHONE);
    sdp.restrict_codecs(RELAYED_CODECS).unwrap();
    assert_eq!(sdp.audio_payload_types(), vec![0, 8, 101]);
    let text = sdp.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"));
    assert!(text.contains("a=fmtp:101 0-16\r\n"));
    for gone in [
        "opus",
        "G722",
        "fmtp:111",
        "rtcp-fb:111",
        "telephone-event/48000",
    ] {
        assert!(!text.contains(gone), "{gone} should be dropped");
    }
    // Non-codec attributes and the video section are untouched.
    assert!(text.contains("a=ptime:20\r\na=rtcp-mux\r\na=sendrecv\r\n"));
    assert!(text.contains("m=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"));
}

#[test]
fn static_payload_types_without_rtpmap() {
    let mut sdp = parse(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5000 RTP/AVP 18 8 0\n",
    );
    assert_eq!(sdp.encoding_of(18).as_deref(), Some("G729"));
    sdp.restrict_codecs(&["pcma", "PCMU"]).unwrap();
    assert_eq!(sdp.audio_payload_types(), vec![8, 0]);
}

#[test]
fn no_common_codec_leaves_sdp_untouched() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 5000 RTP/AVP 111 101\na=rtpmap:111 opus/48000/2\n\
                a=rtpmap:101 telephone-event/8000\n";
    let mut sdp = parse(text);
    let before = sdp.clone();
    assert_eq!(
        sdp.restrict_codecs(RELAYED_CODECS),
        Err(SdpError::NoCommonCodec)
    );
    assert_eq!(sdp, before);
}

#[test]
fn rewrite_sipp_for_anchor() {
    let mut sdp = parse(SIPP);
    let ip: IpAddr = "203.0.113.5".parse().unwrap();
    sdp.rewrite_for_anchor(ip, 30000).unwrap();
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=user1 53655765 2353687637 IN IP4 203.0.113.5\r\ns=-\r\n\
         c=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n"
    );
    assert_eq!(sdp.audio_endpoint(), Some(SocketAddr::new(ip, 30000)));
    // Round trip through text gives the same description.
    assert_eq!(parse(&sdp.to_string()), sdp);
}

#[test]
fn rewrite_softphone_drops_transport_attrs_and_other_media() {
    let mut sdp = parse(SOFTPHONE);
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    sdp.rewrite_for_anchor(ip, 20002).unwrap();
    let text = sdp.to_string();
    assert!(text.contains("o=- 3921514 3921515 IN IP4 10.1.2.3\r\n"));
    assert!(text.contains("s=Softphone\r\nc=IN IP4 10.1.2.3\r\n"));
    assert!(text.contains("m=audio 20002 RTP/AVP 111 9 0 8 101 110\r\nc=IN IP4 10.1.2.3\r\n"));
    assert!(!text.contains("a=rtcp:"));
    assert!(!text.contains("candidate"));
    assert!(!text.contains("ice-ufrag"));
    assert!(text.contains("a=rtcp-mux\r\na=sendrecv\r\n"));
    assert!(text.contains("m=video 0 RTP/AVP 96\r\n"));
    assert!(!text.contains("192.168."));
    assert_eq!(sdp.audio_endpoint(), Some(SocketAddr::new(ip, 20002)));
}

#[test]
fn rewrite_ipv6_and_missing_connection() {
    let mut sdp =
        parse("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\na=recvonly\n");
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    sdp.rewrite_for_anchor(ip, 4000).unwrap();
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\
         c=IN IP6 ::1\r\na=recvonly\r\n"
    );
    assert_eq!(sdp.audio_endpoint(), Some("[::1]:4000".parse().unwrap()));
}

#[test]
fn no_audio() {
    let mut sdp = parse("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=video 5000 RTP/AVP 96\n");
    assert_eq!(sdp.audio_endpoint(), None);
    assert_eq!(
        sdp.rewrite_for_anchor(IpAddr::V4(Ipv4Addr::LOCALHOST), 1),
        Err(SdpError::NoAudio)
    );
    assert_eq!(sdp.restrict_codecs(RELAYED_CODECS), Err(SdpError::NoAudio));
}

#[test]
fn hold_and_rejected_have_no_endpoint() {
    let hold = parse(&SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"));
    assert_eq!(hold.audio_endpoint(), None);
    let rejected = parse(&SIPP.replace("m=audio 6000", "m=audio 0"));
    assert_eq!(rejected.audio_endpoint(), None);
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    assert_eq!("".parse::<SessionDescription>(), Err(SdpError::Empty));
    assert_eq!("\r\n\n".parse::<SessionDescription>(), Err(SdpError::Empty));
    assert_eq!(
        malformed("o=- 1 1 IN IP4 1.2.3.4\nv=0\n"),
        MalformedReason::BadVersion
    );
    assert_eq!(malformed("v=1\n"), MalformedReason::BadVersion);
    assert_eq!(malformed("v=0\nv=0\n"), MalformedReason::BadVersion);
    assert_eq!(malformed("v=0\ngarbage\n"), MalformedReason::NotTypeValue);
    assert_eq!(malformed("v=0\nX=1\n"), MalformedReason::NotTypeValue);
    assert_eq!(malformed("v=0\nm\n"), MalformedReason::NotTypeValue);
    assert_eq!(malformed("v=0\no=- 1 1 IN\n"), MalformedReason::BadOrigin);
    assert_eq!(malformed("v=0\nc=IN IP4\n"), MalformedReason::BadConnection);
    assert_eq!(
        malformed("v=0\nc=IN IP4 not-an-ip\n"),
        MalformedReason::BadConnection
    );
    assert_eq!(malformed("v=0\nm=audio\n"), MalformedReason::BadMedia);
    assert_eq!(
        malformed("v=0\nm=audio 70000 RTP/AVP 0\n"),
        MalformedReason::BadPort
    );
    assert_eq!(
        malformed("v=0\nm=audio 99999999999999999999 RTP/AVP 0\n"),
        MalformedReason::BadPort
    );
    assert_eq!(
        malformed("v=0\nm=audio -1 RTP/AVP 0\n"),
        MalformedReason::BadPort
    );
    assert_eq!(
        malformed("v=0\nm=audio 5000 RTP/AVP 0 300\n"),
        MalformedReason::BadPayloadType
    );
    assert_eq!(
        malformed("v=0\nm=audio 5000 RTP/AVP abc\n"),
        MalformedReason::BadPayloadType
    );
    match "v=0\ns=-\nc=IN".parse::<SessionDescription>() {
        Err(SdpError::Malformed { line, reason }) => {
            assert_eq!((line, reason), (3, MalformedReason::BadConnection));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        SessionDescription::parse_bytes(b"v=0\r\ns=\xff\xfe\r\n"),
        Err(SdpError::NotUtf8)
    );
    assert!(matches!(
        SessionDescription::parse_bytes(&vec![b'a'; MAX_SDP_LEN + 1]),
        Err(SdpError::TooLarge(_))
    ));
    // Multi-byte characters where the '=' should be.
    assert_eq!(malformed("v=0\né=x\n"), MalformedReason::NotTypeValue);
}

#[test]
fn garbage_attributes_are_tolerated() {
    // Bad rtpmaps are kept verbatim but ignored when resolving codecs.
    let mut sdp = parse(
        "v=0\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5000 RTP/AVP 0 96\n\
         a=rtpmap:96\na=rtpmap:x PCMU/8000\na=rtpmap:96 PCMA/\na=fmtp:\na=\n",
    );
    assert_eq!(sdp.audio_rtpmaps(), vec![]);
    sdp.restrict_codecs(RELAYED_CODECS).unwrap();
    assert_eq!(sdp.audio_payload_types(), vec![0]);
    // Non-RTP media (e.g. T.38 image) may have non-numeric formats.
    let t38 = parse("v=0\ns=-\nt=0 0\nm=image 5000 udptl t38\n");
    assert_eq!(t38.audio_port(), None);
}

#[test]
fn set_origin_replaces_identity_keeps_address() {
    let mut sdp = parse(SOFTPHONE);
    sdp.rewrite_for_anchor("10.1.2.3".parse().unwrap(), 20000)
        .unwrap();
    sdp.set_origin("sas-router", 42, 7);
    assert!(
        sdp.to_string()
            .starts_with("v=0\r\no=sas-router 42 7 IN IP4 10.1.2.3\r\n")
    );
    let mut bare = parse("v=0\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\n");
    bare.set_origin(" ", 1, 2);
    assert!(
        bare.to_string()
            .starts_with("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\n")
    );
}
