//! The malformed-input guard: one judgement for every SIP message the router receives,
//! whatever the transport.
//!
//! rsipstack drops a message it cannot parse without a word, and its lenient parsers let
//! through requests RFC 3261 says to refuse. The router must answer `400 Bad Request` (with
//! the defect in the reason phrase) where a response is possible, `501` with `Allow` for a
//! method it does not know and `505` for another SIP version, so every message's raw bytes go
//! through [`judge`] before the stack sees them: on UDP in [`GuardedUdpSocket`], on TCP and
//! WebSocket (plain or TLS) in `net::sip_stream`. Bad requests are answered and never reach
//! the stack; good ones pass through untouched.

mod checks;
mod udp;

use checks::request_defect;
use prometheus::IntCounterVec;
use rsipstack::sip::SipMessage;
pub use udp::GuardedUdpSocket;

/// Methods the router handles; sent in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, REFER, UPDATE";

/// Headers a request must carry for a transaction to exist (RFC 3261 §8.1.1).
const MANDATORY: [(&str, Option<&str>); 5] = [
    ("via", Some("v")),
    ("from", Some("f")),
    ("to", Some("t")),
    ("call-id", Some("i")),
    ("cseq", None),
];

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the stack.
    Pass,
    /// Drop it silently (a broken response, or no way to answer).
    Drop,
    /// Answer with this response and drop it.
    Reply(Vec<u8>),
}

/// Judges one message (a datagram, a WebSocket message or a framed TCP message).
pub fn judge(packet: &[u8]) -> Verdict {
    judge_keeping(packet).0
}

/// [`judge`], with the message it parsed when it passes (none for a keep-alive): the
/// readers hand it on, so a datagram is parsed once, not at each step.
pub fn judge_keeping(packet: &[u8]) -> (Verdict, Option<SipMessage>) {
    // Keep-alives (CRLF) are the stack's business.
    if packet.iter().all(|b| b.is_ascii_whitespace()) {
        return (Verdict::Pass, None);
    }
    let text = String::from_utf8_lossy(packet);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let first_line = head.lines().next().unwrap_or_default();
    let mut words = first_line.split_whitespace();
    let is_request = !words.next().unwrap_or_default().starts_with("SIP/")
        && words.last().is_some_and(|v| v.starts_with("SIP/"));
    if is_request && !first_line.trim_end().ends_with(" SIP/2.0") {
        return (reply(head, 505, "Version Not Supported"), None);
    }
    let verdict = match SipMessage::try_from(packet) {
        Ok(SipMessage::Request(req)) => match request_defect(&req, head, packet) {
            None => return (Verdict::Pass, Some(SipMessage::Request(req))),
            Some(defect) => reply(head, 400, &format!("Bad Request ({defect})")),
        },
        Ok(response @ SipMessage::Response(_)) => return (Verdict::Pass, Some(response)),
        Err(_) if !is_request => Verdict::Drop,
        Err(_) => {
            let method = first_line.split(' ').next().unwrap_or_default();
            let is_token = !method.is_empty() && method.chars().all(checks::is_token_char);
            if is_token && method.parse::<rsipstack::sip::Method>().is_err() {
                reply(head, 501, "Not Implemented")
            } else {
                let defect = checks::head_defect(head);
                let defect = defect.as_deref().unwrap_or("unparseable request");
                reply(head, 400, &format!("Bad Request ({defect})"))
            }
        }
    };
    (verdict, None)
}

/// A `400` naming `defect` for the request whose header section is `head` (a message a
/// stream transport cannot frame); `Drop` for a response or when there is nowhere to answer.
pub fn bad_request(head: &[u8], defect: &str) -> Verdict {
    let text = String::from_utf8_lossy(head);
    if text.starts_with("SIP/") {
        return Verdict::Drop;
    }
    reply(&text, 400, &format!("Bad Request ({defect})"))
}

/// Builds a response echoing the request's Via, From, To, Call-ID and CSeq lines verbatim
/// (RFC 3261 §8.2.6). Without a Via there is nowhere to answer: drop.
fn reply(head: &str, code: u16, reason: &str) -> Verdict {
    // An ACK is never answered (RFC 3261 §17.2.1).
    if head.starts_with("ACK ") {
        return Verdict::Drop;
    }
    let mut echoed = Vec::new();
    for line in head.lines().skip(1) {
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if MANDATORY
            .iter()
            .any(|(full, compact)| name == *full || compact.is_some_and(|c| name == c))
        {
            echoed.push(line.trim_end());
        }
    }
    if !echoed.iter().any(|l| {
        l.to_ascii_lowercase().starts_with("via") || l.to_ascii_lowercase().starts_with("v:")
    }) {
        return Verdict::Drop;
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for line in echoed {
        out.push_str(line);
        out.push_str("\r\n");
    }
    if code == 501 {
        out.push_str(&format!("Allow: {ALLOW}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Verdict::Reply(out.into_bytes())
}

/// Counts a response leaving the router (labels method, code, `sent`), read from its bytes:
/// rsipstack's inspector hook does not see responses sent by transactions.
pub fn count_sent(responses: &IntCounterVec, message: &[u8]) {
    if let Some((code, method)) = response_summary(message) {
        responses.with_label_values(&[method, code, "sent"]).inc();
    }
}

/// Status code and CSeq method of a response, read without a full parse.
fn response_summary(message: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(message.get(..message.len().min(2048))?).ok()?;
    let code = text.strip_prefix("SIP/2.0 ")?.get(..3)?;
    let method = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("cseq")
            .then(|| value.split_whitespace().nth(1))
            .flatten()
    })?;
    Some((code, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIA: &str = "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n";

    fn request(first: &str, extra: &str) -> String {
        format!(
            "{first}\r\n{VIA}From: <sip:a@x>;tag=1\r\nTo: <sip:15@y>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    fn status(v: Verdict) -> Option<String> {
        match v {
            Verdict::Reply(r) => Some(
                String::from_utf8(r)
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap()
                    .to_string(),
            ),
            _ => None,
        }
    }

    #[test]
    fn good_requests_pass() {
        let contact = "Contact: <sip:a@127.0.0.1:5070>\r\n";
        assert_eq!(
            judge(request("INVITE sip:15@y SIP/2.0", contact).as_bytes()),
            Verdict::Pass
        );
        assert_eq!(judge(b"\r\n\r\n"), Verdict::Pass);
    }

    #[test]
    fn unknown_method_gets_501_with_allow() {
        let v = judge(request("FROB sip:15@y SIP/2.0", "").as_bytes());
        let Verdict::Reply(r) = v else {
            panic!("no reply")
        };
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("SIP/2.0 501"));
        assert!(r.contains("Allow: INVITE"));
        assert!(r.contains("Call-ID: c1"));
    }

    #[test]
    fn broken_request_gets_400_echoing_via() {
        let bad = request("INVITE sip:15@y SIP/2.0", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        let v = judge(bad.as_bytes());
        let Verdict::Reply(r) = v else {
            panic!("no reply: {v:?}")
        };
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("SIP/2.0 400"), "{r}");
        assert!(r.contains("branch=z9hG4bK-1"));
    }

    #[test]
    fn missing_call_id_is_named() {
        let bad = request("OPTIONS sip:y SIP/2.0", "").replace("Call-ID: c1\r\n", "");
        let s = status(judge(bad.as_bytes())).unwrap_or_default();
        assert!(s.starts_with("SIP/2.0 400"), "{s}");
    }

    /// RFC 4475 torture messages: valid ones reach the stack, the ones the RFC says to
    /// refuse are refused, responses are never answered, nothing panics.
    #[test]
    fn rfc4475_torture_messages() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
        let mut checked = 0;
        let mut wrong = Vec::new();
        for line in manifest.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (file, expected, kind) = (cols[0], cols[2], cols[3]);
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let verdict = judge(&bytes);
            let code = status(judge(&bytes)).map(|s| s[8..11].to_string());
            checked += 1;
            let ok = match (expected, kind, file) {
                (_, "response", _) => !matches!(verdict, Verdict::Reply(_)),
                // Unknown methods: an endpoint answers 501.
                (_, _, "esc02.dat" | "mismatch02.dat" | "intmeth.dat") => {
                    code.as_deref() == Some("501")
                }
                // rsipstack cannot key a transaction on these (folded Via, no From tag):
                // a clear 400 beats the silence the stack would give.
                (_, _, "wsinv.dat" | "inv2543.dat") => code.as_deref() == Some("400"),
                (_, _, "badvers.dat") => code.as_deref() == Some("505"),
                ("valid" | "backward", _, _) => verdict == Verdict::Pass,
                (
                    _,
                    _,
                    "badinv01.dat" | "baddn.dat" | "clerr.dat" | "ncl.dat" | "scalar02.dat"
                    | "quotbal.dat" | "lwsruri.dat" | "mismatch01.dat" | "insuf.dat"
                    | "multi01.dat" | "mcl01.dat",
                ) => code.as_deref() == Some("400"),
                _ => true, // the RFC lets a liberal element accept these
            };
            if !ok {
                wrong.push(format!("{file} ({expected}): {verdict:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(checked >= 45, "{checked} messages");
    }

    fn reason(v: Verdict) -> String {
        status(v).unwrap_or_else(|| "passed".into())
    }

    #[test]
    fn unquoted_display_name_with_a_comma_is_refused() {
        let bad = request("OPTIONS sip:y SIP/2.0", "")
            .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS")
            .replace("From: <sip:a@x>", "From: Bell, Alexander <sip:a@x>");
        let s = reason(judge(bad.as_bytes()));
        assert!(s.contains("400") && s.contains("display name"), "{s}");
        // Quoted, or tokens only: fine.
        for from in ["\"Bell, Alexander\" <sip:a@x>", "Alexander Bell <sip:a@x>"] {
            let good = request("OPTIONS sip:y SIP/2.0", "")
                .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS")
                .replace("From: <sip:a@x>", &format!("From: {from}"));
            assert_eq!(judge(good.as_bytes()), Verdict::Pass, "{from}");
        }
    }

    #[test]
    fn invite_without_a_usable_contact_is_refused_with_the_reason() {
        let contact = "Contact: <sip:a@127.0.0.1:5070>\r\n";
        let invite = |extra: &str| request("INVITE sip:15@y SIP/2.0", extra);
        assert_eq!(judge(invite(contact).as_bytes()), Verdict::Pass);
        let s = reason(judge(invite("").as_bytes()));
        assert!(s.contains("400 Bad Request (missing Contact)"), "{s}");
        let two = format!("{contact}Contact: <sip:b@127.0.0.1:5071>\r\n");
        let s = reason(judge(invite(&two).as_bytes()));
        assert!(
            s.contains("400") && s.contains("more than one Contact"),
            "{s}"
        );
        let untagged = invite(contact).replace(";tag=1", "");
        let s = reason(judge(untagged.as_bytes()));
        assert!(s.contains("400") && s.contains("From without a tag"), "{s}");
        // Other methods need no Contact.
        let options = request("OPTIONS sip:y SIP/2.0", "").replace("1 INVITE", "1 OPTIONS");
        assert_eq!(judge(options.as_bytes()), Verdict::Pass);
    }

    /// Found by the fuzzer (seed 1, case 3418: INVITE 15 + header deleted + junk header):
    /// a line with no colon passed, and the INVITE, without its Contact, got a 500.
    #[test]
    fn header_lines_without_a_name_or_colon_are_refused() {
        let contact = "Contact: <sip:a@127.0.0.1:5070>\r\n";
        for junk in ["No-Colon-Here\r\n", ": no name\r\n", "Bad Name: x\r\n"] {
            let bad = request("INVITE sip:15@y SIP/2.0", &format!("{contact}{junk}"));
            let s = reason(judge(bad.as_bytes()));
            assert!(s.contains("400") && s.contains("header"), "{junk}: {s}");
        }
    }

    #[test]
    fn garbage_and_broken_responses_are_dropped_not_answered() {
        assert_eq!(judge(b"\x00\x01\x02garbage"), Verdict::Drop);
        assert_eq!(judge(b"SIP/2.0 abc\r\n\r\n"), Verdict::Drop);
        let no_via = "INVITE sip:x SIP/2.0\r\nCSeq: x\r\n\r\n";
        assert_eq!(judge(no_via.as_bytes()), Verdict::Drop);
    }
}
