//! Tests for `a=crypto` parsing (RFC 4568 §9 shapes) and SRTP offer/answer by policy.

use super::*;

/// 30 bytes 0x00..0x1d: key 00..0f, salt 10..1d.
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

fn ours() -> MasterKey {
    MasterKey::new([0xAB; KEY_MATERIAL_LEN])
}

fn offer(proto: &str, crypto: &[&str]) -> SessionDescription {
    let mut text = format!(
        "v=0\r\no=phone 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
         m=audio 4000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    );
    for c in crypto {
        text.push_str(&format!("a=crypto:{c}\r\n"));
    }
    text.parse().unwrap()
}

#[test]
fn a_crypto_line_gives_its_tag_suite_key_and_salt() {
    let c = CryptoAttr::parse(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|2^31")).unwrap();
    assert_eq!((c.tag, c.suite), (7, SrtpSuite::AesCm128HmacSha1_32));
    assert_eq!(c.key.key(), (0u8..16).collect::<Vec<_>>());
    assert_eq!(c.key.salt(), (16u8..30).collect::<Vec<_>>());
    let hinted = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1048576 WSH=64");
    assert_eq!(
        CryptoAttr::parse(&hinted).unwrap().suite,
        SrtpSuite::AesCm128HmacSha1_80
    );
    assert_eq!(
        format!("{:?}", c.key),
        "MasterKey(..)",
        "keys never in logs"
    );
}

#[test]
fn lines_the_relay_cannot_use_are_refused_by_reason() {
    let cases = [
        ("1 AES_CM_128_HMAC_SHA1_80", CryptoAttrError::Syntax),
        (
            &format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}"),
            CryptoAttrError::Syntax,
        ),
        (
            &format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}"),
            CryptoAttrError::Syntax,
        ),
        (
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_B64}"),
            CryptoAttrError::UnknownSuite,
        ),
        (
            &format!("1 F8_128_HMAC_SHA1_80 inline:{KEY_B64}"),
            CryptoAttrError::UnknownSuite,
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:***notbase64***",
            CryptoAttrError::BadBase64,
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODw==",
            CryptoAttrError::KeyLength,
        ),
        (
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4"),
            CryptoAttrError::Mki,
        ),
        (
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1:4"),
            CryptoAttrError::Mki,
        ),
        (
            &format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4;inline:{KEY_B64}|2^20|2:4"
            ),
            CryptoAttrError::Mki,
        ),
        (
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^x"),
            CryptoAttrError::BadLifetime,
        ),
        (
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTP"),
            CryptoAttrError::SessionParam,
        ),
        (
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} KDR=1"),
            CryptoAttrError::SessionParam,
        ),
        (
            &format!("1 AES_CM_128_HMAC_SHA1_80 uri:{KEY_B64}"),
            CryptoAttrError::KeyMethod,
        ),
    ];
    for (line, reason) in cases {
        assert_eq!(CryptoAttr::parse(line), Err(reason), "{line}");
    }
}

#[test]
fn the_first_usable_line_is_chosen_and_the_others_skipped() {
    let sdp = offer(
        "RTP/SAVP",
        &[
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_B64}"),
            "2 AES_CM_128_HMAC_SHA1_80 inline:bad",
            &format!("3 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}"),
            &format!("4 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}"),
        ],
    );
    let keys = sdp
        .srtp_for_offer(SrtpPolicy::Optional, ours)
        .unwrap()
        .unwrap();
    assert_eq!((keys.tag, keys.suite), (3, SrtpSuite::AesCm128HmacSha1_32));
    assert_eq!(keys.local, ours());
    let answer = sdp.answer(
        sdp.leg_codecs().unwrap(),
        "192.0.2.1".parse().unwrap(),
        30000,
        (1, 1),
    );
    let mut answer = answer.unwrap();
    assert!(
        !answer.to_string().contains("a=crypto"),
        "the peer's keys are never echoed"
    );
    answer.set_answer_crypto(Some(&keys));
    let text = answer.to_string();
    assert!(text.contains("m=audio 30000 RTP/SAVP 0 101"), "{text}");
    let ours_b64 = "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur";
    assert!(
        text.contains(&format!(
            "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{ours_b64}\r\n"
        )),
        "{text}"
    );
    assert_eq!(text.matches("a=crypto").count(), 1, "{text}");
}

#[test]
fn each_policy_takes_or_refuses_each_kind_of_offer() {
    use SrtpPolicy::{Off, Optional, Required};
    let good = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}");
    let bad = "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA";
    let savp = offer("RTP/SAVP", &[&good]);
    let best_effort = offer("RTP/AVP", &[&good]);
    let plain = offer("RTP/AVP", &[]);
    let savp_unusable = offer("RTP/SAVP", &[bad]);
    let srtp = |sdp: &SessionDescription, p| sdp.srtp_for_offer(p, ours).map(|k| k.is_some());
    assert_eq!(srtp(&savp, Off), Err(SrtpRefusal::Off));
    assert_eq!(srtp(&savp, Optional), Ok(true));
    assert_eq!(srtp(&savp, Required), Ok(true));
    assert_eq!(
        srtp(&best_effort, Off),
        Ok(false),
        "crypto ignored: plain answer"
    );
    assert_eq!(srtp(&best_effort, Optional), Ok(true));
    assert_eq!(srtp(&best_effort, Required), Ok(true));
    assert_eq!(srtp(&plain, Off), Ok(false));
    assert_eq!(srtp(&plain, Optional), Ok(false));
    assert_eq!(srtp(&plain, Required), Err(SrtpRefusal::Required));
    assert_eq!(
        srtp(&savp_unusable, Optional),
        Err(SrtpRefusal::NoUsableCrypto)
    );
    assert_eq!(srtp(&savp_unusable, Required), Err(SrtpRefusal::Required));
    assert!(savp.audio_is_savp() && !best_effort.audio_is_savp());
}

#[test]
fn our_srtp_offer_is_savp_and_its_answer_gives_the_peers_key() {
    let ip = "192.0.2.1".parse().unwrap();
    let mut ours_offer =
        SessionDescription::router_offer(ip, 30000, crate::media::g711::G711Law::Alaw, (4, 1));
    ours_offer.offer_srtp(ours());
    let text = ours_offer.to_string();
    assert!(text.contains("m=audio 30000 RTP/SAVP 8 0 101"), "{text}");
    let back: SessionDescription = text.parse().unwrap();
    let offered = back.audio_crypto();
    assert_eq!(offered.len(), 1);
    assert_eq!((offered[0].tag, offered[0].key), (1, ours()));

    let phone = offer(
        "RTP/SAVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}")],
    );
    let keys = phone.srtp_in_answer(ours()).unwrap();
    assert_eq!((keys.local, keys.remote.key()[0]), (ours(), 0));
    let wrong_tag = offer(
        "RTP/SAVP",
        &[&format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}")],
    );
    assert_eq!(wrong_tag.srtp_in_answer(ours()), Err(SrtpRefusal::Required));
    assert_eq!(
        offer("RTP/AVP", &[]).srtp_in_answer(ours()),
        Err(SrtpRefusal::Required)
    );
}
