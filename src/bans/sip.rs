//! What the SIP door does with a ban or a scanner: the answer to send, if any.
//!
//! Scanners (SIPVicious' `friendly-scanner`, `sipvicious`, `sipcli`, and the like) are
//! dropped without an answer whatever they ask: a scanner that hears nothing finds nothing,
//! and learns nothing that tells seats from unknown names.

use super::Door;
use rsipstack::sip::headers::untyped::RetryAfter;
use rsipstack::sip::{Header, Request, StatusCode};

/// User-Agent fragments of SIP scanners and war-dialers (lower case).
const SCANNERS: [&str; 8] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sundayddr",
    "iwar",
    "vaxsipuseragent",
    "pplsip",
];

/// Whether `req` comes from a known scanner (by its User-Agent).
pub fn is_scanner(req: &Request) -> bool {
    req.headers.iter().any(|h| match h {
        Header::UserAgent(ua) => {
            let ua = ua.value().to_ascii_lowercase();
            SCANNERS.iter().any(|s| ua.contains(s))
        }
        _ => false,
    })
}

/// What to answer for `door`: `None` to go on, `Some(None)` to stay silent, else the
/// status and headers to refuse with (`429` with `Retry-After`, RFC 6585).
pub fn refusal(door: Door) -> Option<Option<(StatusCode, Vec<Header>)>> {
    match door {
        Door::Open => None,
        Door::Silence { .. } => Some(None),
        Door::Refuse { retry_after_s } => {
            let retry = Header::RetryAfter(RetryAfter::new(retry_after_s.to_string()));
            Some(Some((
                StatusCode::Other(429, "Too Many Requests".into()),
                vec![retry],
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ua: &str) -> Request {
        let text = format!(
            "OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n\
             From: <sip:100@192.0.2.1>;tag=1\r\nTo: <sip:100@192.0.2.1>\r\nCall-ID: c\r\n\
             CSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).unwrap()
    }

    #[test]
    fn scanners_are_known_by_their_user_agent() {
        assert!(is_scanner(&request("friendly-scanner")));
        assert!(is_scanner(&request("SIPVicious 0.3.8")));
        assert!(is_scanner(&request("sipcli/v1.8")));
        assert!(!is_scanner(&request("baresip v1.0.0 (x86_64/linux)")));
        assert!(!is_scanner(&request("JsSIP 3.13.8")));
    }

    #[test]
    fn a_ban_is_answered_once_with_retry_after_then_silence() {
        assert!(refusal(Door::Open).is_none());
        assert_eq!(refusal(Door::Silence { retry_after_s: 9 }), Some(None));
        let (status, headers) = refusal(Door::Refuse { retry_after_s: 42 })
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), 429);
        assert_eq!(headers[0].to_string(), "Retry-After: 42");
    }
}
