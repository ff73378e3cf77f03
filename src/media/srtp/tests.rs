//! SRTP contexts against a published test vector, round trips, tampering and replays.

use super::*;

/// libsrtp's `srtp_driver` reference packet for AES_CM_128_HMAC_SHA1_80 (key and salt,
/// plain RTP, SRTP): an independent implementation's output.
const VECTOR_KEY: &str = "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6";
const VECTOR_PLAIN: &str = "800f1234decafbadcafebabeabababababababababababababababab";
const VECTOR_SRTP: &str =
    "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb";

fn key(byte: u8) -> MasterKey {
    MasterKey::new([byte; KEY_MATERIAL_LEN])
}

fn keys(suite: SrtpSuite, local: MasterKey, remote: MasterKey) -> SrtpKeys {
    SrtpKeys {
        tag: 1,
        suite,
        local,
        remote,
    }
}

/// Two ends of one SRTP leg: what one sends with, the other receives with.
fn pair(suite: SrtpSuite) -> (SrtpLeg, SrtpLeg) {
    let (a, b) = (key(1), key(2));
    let ours = SrtpLeg::new(&keys(suite, a, b)).unwrap();
    let theirs = SrtpLeg::new(&keys(suite, b, a)).unwrap();
    (ours, theirs)
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, 0, 0, 0, 0x03, 0x20, 0x12, 0x34, 0x56, 0x78];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

/// An RTCP receiver report with no report block.
const RTCP_RR: [u8; 8] = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];

#[test]
fn the_libsrtp_reference_packet_is_reproduced_and_read_back() {
    let material: [u8; KEY_MATERIAL_LEN] = hex::decode(VECTOR_KEY).unwrap().try_into().unwrap();
    let k = MasterKey::new(material);
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let mut sender = SrtpLeg::new(&keys(suite, k, key(0))).unwrap();
    let plain = hex::decode(VECTOR_PLAIN).unwrap();
    let protected = sender.protect_rtp(&plain).unwrap();
    assert_eq!(hex::encode(&protected), VECTOR_SRTP);
    let mut receiver = SrtpLeg::new(&keys(suite, key(0), k)).unwrap();
    assert_eq!(&receiver.unprotect_rtp(&protected).unwrap()[..], &plain[..]);
}

#[test]
fn rtp_and_rtcp_round_trip_with_both_suites() {
    for (suite, tag_len) in [
        (SrtpSuite::AesCm128HmacSha1_80, 10),
        (SrtpSuite::AesCm128HmacSha1_32, 4),
    ] {
        let (mut ours, mut theirs) = pair(suite);
        for seq in [65_534, 65_535, 0, 1] {
            let sent = ours.protect_rtp(&rtp(seq)).unwrap();
            assert_eq!(sent.len(), rtp(seq).len() + tag_len, "{suite:?}");
            assert_ne!(&sent[12..172], &rtp(seq)[12..], "the payload is encrypted");
            assert_eq!(&theirs.unprotect_rtp(&sent).unwrap()[..], &rtp(seq)[..]);
        }
        let report = theirs.protect_rtcp(&RTCP_RR).unwrap();
        assert_eq!(&ours.unprotect_rtcp(&report).unwrap()[..], &RTCP_RR[..]);
    }
}

#[test]
fn tampered_replayed_and_foreign_packets_are_rejected() {
    let (mut ours, mut theirs) = pair(SrtpSuite::AesCm128HmacSha1_80);
    let sent = ours.protect_rtp(&rtp(7)).unwrap();
    let mut tampered = sent.to_vec();
    tampered[20] ^= 0x01;
    assert_eq!(theirs.unprotect_rtp(&tampered), Err(SrtpError::Rejected));
    assert!(
        theirs.unprotect_rtp(&sent).is_ok(),
        "the genuine one still passes"
    );
    assert_eq!(
        theirs.unprotect_rtp(&sent),
        Err(SrtpError::Rejected),
        "a replay"
    );
    assert_eq!(
        theirs.unprotect_rtp(&rtp(8)),
        Err(SrtpError::Rejected),
        "plain RTP"
    );
    let (mut stranger, _) = pair(SrtpSuite::AesCm128HmacSha1_32);
    let foreign = stranger.protect_rtp(&rtp(9)).unwrap();
    assert_eq!(theirs.unprotect_rtp(&foreign), Err(SrtpError::Rejected));
    for short in [&[][..], &[0x80][..], &sent[..14]] {
        assert_eq!(theirs.unprotect_rtp(short), Err(SrtpError::Rejected));
        assert_eq!(theirs.unprotect_rtcp(short), Err(SrtpError::Rejected));
    }
    let mut rtcp = ours.protect_rtcp(&RTCP_RR).unwrap().to_vec();
    rtcp[9] ^= 0x80;
    assert_eq!(theirs.unprotect_rtcp(&rtcp), Err(SrtpError::Rejected));
}

#[test]
fn fresh_keys_differ() {
    assert_ne!(fresh_key(), fresh_key());
}

#[test]
fn policies_come_from_trunk_and_seats_and_default_to_optional() {
    let config = |extra: &str| {
        let text = format!(
            "[sip]\n[trunk]\naddresses = [\"127.0.0.1\"]\n{extra}\n\
             [[seats]]\nusername = \"arm1\"\nha1_md5 = \"{md5}\"\nsrtp = \"required\"\n\
             [[seats]]\nusername = \"arm2\"\nha1_md5 = \"{md5}\"\n",
            md5 = "0".repeat(32)
        );
        Config::from_toml(&text, std::path::Path::new("test.toml"))
    };
    let policies = SrtpPolicies::from_config(&config("").unwrap());
    assert_eq!(policies.trunk(), SrtpPolicy::Optional);
    assert_eq!(policies.seat("arm1"), SrtpPolicy::Required);
    assert_eq!(policies.seat("arm2"), SrtpPolicy::Optional);
    assert_eq!(policies.seat("nobody"), SrtpPolicy::Optional);
    let off = SrtpPolicies::from_config(&config("srtp = \"off\"").unwrap());
    assert_eq!(off.trunk(), SrtpPolicy::Off);
    let bad = config("srtp = \"mandatory\"").unwrap_err().to_string();
    assert!(bad.contains("srtp") && bad.contains("required"), "{bad}");
}

#[test]
fn a_rekey_keeps_our_packet_index_and_takes_the_peers_new_key() {
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let (ours, theirs, theirs_next) = (key(1), key(2), key(3));
    let mut relay = SrtpLeg::new(&keys(suite, ours, theirs)).unwrap();
    let mut phone = SrtpLeg::new(&keys(suite, theirs, ours)).unwrap();
    // Our stream crosses a sequence wrap (rollover counter 1) before the re-INVITE.
    for seq in [65_534, 65_535, 0] {
        let sent = relay.protect_rtp(&rtp(seq)).unwrap();
        phone.unprotect_rtp(&sent).unwrap();
    }
    relay.rekey(&keys(suite, ours, theirs_next)).unwrap();
    let sent = relay.protect_rtp(&rtp(1)).unwrap();
    assert!(
        phone.unprotect_rtp(&sent).is_ok(),
        "our index went on (a restarted context would sign with rollover 0)"
    );
    let mut rekeyed_phone = SrtpLeg::new(&keys(suite, theirs_next, ours)).unwrap();
    let from_phone = rekeyed_phone.protect_rtp(&rtp(100)).unwrap();
    assert!(
        relay.unprotect_rtp(&from_phone).is_ok(),
        "the peer's new key"
    );
    let old_key = SrtpLeg::new(&keys(suite, theirs, ours))
        .unwrap()
        .protect_rtp(&rtp(101))
        .unwrap();
    assert_eq!(relay.unprotect_rtp(&old_key), Err(SrtpError::Rejected));
}

#[test]
fn headers_that_do_not_fit_are_refused_before_the_cipher_and_extensions_pass() {
    // The fuzzer's packet: CSRCs and a one-byte-header extension rtc-srtp sliced past.
    let crash = [
        146u8, 0, 0, 2, 9, 0, 1, 64, 222, 173, 190, 239, 0, 0, 16, 0, 0, 0, 16, 48, 190, 222, 0, 1,
        16, 255, 0, 157, 0, 0, 0, 0, 0, 14, 0, 0, 56, 255, 0, 56, 255, 255, 255,
    ];
    assert!(!super::rtp_header_fits(&crash, 0));
    assert!(!super::rtp_header_fits(&[0x80; 11], 0));
    assert!(
        !super::rtp_header_fits(&[0x82; 16], 0),
        "a CSRC past the end"
    );
    let plain = [0x80u8; 12 + 160];
    assert!(super::rtp_header_fits(&plain, super::MAX_TAG_LEN));
    // RFC 8285 one-byte header: one element (id 1, 1 byte: audio level) padded to a word.
    let mut with_level = vec![0x90u8, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    with_level.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0]);
    with_level.extend_from_slice(&[0xffu8; 160]);
    assert!(super::rtp_header_fits(&with_level, super::MAX_TAG_LEN));
}

#[test]
fn a_packet_with_a_header_extension_round_trips() {
    let (mut caller, mut relay) = pair(SrtpSuite::AesCm128HmacSha1_80);
    let mut packet = vec![0x90u8, 0, 0, 7, 0, 0, 0, 160, 0, 0, 0, 1];
    packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0]);
    packet.extend_from_slice(&[0x55u8; 160]);
    let protected = caller.protect_rtp(&packet).unwrap();
    assert_eq!(&relay.unprotect_rtp(&protected).unwrap()[..], &packet[..]);
}

#[test]
fn arbitrary_header_extensions_never_panic_the_cipher() {
    let (mut caller, mut relay) = pair(SrtpSuite::AesCm128HmacSha1_80);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        // CSRCs, then an RFC 8285 one- or two-byte-header extension with random elements.
        let csrcs = (next() % 4) as u8;
        let mut packet = vec![0x90 | csrcs, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        packet.extend((0..4 * usize::from(csrcs)).map(|_| next() as u8));
        let profile = if next() % 2 == 0 {
            [0xbe, 0xde]
        } else {
            [0x10, 0x00]
        };
        let words = (next() % 4) as u8;
        packet.extend_from_slice(&[profile[0], profile[1], 0, words]);
        packet.extend((0..4 * usize::from(words) + (next() % 24) as usize).map(|_| next() as u8));
        let _ = relay.unprotect_rtp(&packet);
        let _ = caller.protect_rtp(&packet);
    }
}
