//! Malformed-input guard in front of rsipstack's UDP transport.
//!
//! rsipstack drops a datagram it cannot parse without a word. The router must answer
//! `400 Bad Request` where a response is possible (and `501` with `Allow` for a method it
//! does not know), so [`GuardedUdpSocket`] wraps the socket: each datagram is parsed once
//! here; bad ones are answered and never reach the stack, good ones pass through untouched.

use prometheus::{IntCounter, IntCounterVec};
use rsipstack::sip::SipMessage;
use std::net::SocketAddr;

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

/// A UDP socket that answers malformed SIP itself and counts the responses it sends
/// (rsipstack's inspector hook does not see responses sent by transactions).
pub struct GuardedUdpSocket {
    socket: tokio::net::UdpSocket,
    malformed: IntCounter,
    responses: IntCounterVec,
}

impl GuardedUdpSocket {
    /// Wraps a bound socket; `malformed` counts rejected datagrams, `responses` (labels
    /// method, code, direction) the responses sent.
    pub fn new(
        socket: tokio::net::UdpSocket,
        malformed: IntCounter,
        responses: IntCounterVec,
    ) -> Self {
        Self {
            socket,
            malformed,
            responses,
        }
    }

    fn count_sent(&self, datagram: &[u8]) {
        if let Some((code, method)) = response_summary(datagram) {
            self.responses
                .with_label_values(&[method, code, "sent"])
                .inc();
        }
    }
}

/// Status code and CSeq method of a response datagram, read without a full parse.
fn response_summary(datagram: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(datagram.get(..datagram.len().min(2048))?).ok()?;
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

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the stack.
    Pass,
    /// Drop it silently (a broken response, or no way to answer).
    Drop,
    /// Answer with this response and drop it.
    Reply(Vec<u8>),
}

/// Judges one datagram.
pub fn judge(packet: &[u8]) -> Verdict {
    // Keep-alives (CRLF) are the stack's business.
    if packet.iter().all(|b| b.is_ascii_whitespace()) {
        return Verdict::Pass;
    }
    let text = String::from_utf8_lossy(packet);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let first_line = head.lines().next().unwrap_or_default();
    let mut words = first_line.split_whitespace();
    let is_request = !words.next().unwrap_or_default().starts_with("SIP/")
        && words.last().is_some_and(|v| v.starts_with("SIP/"));
    if is_request && !first_line.trim_end().ends_with(" SIP/2.0") {
        return reply(head, 505, "Version Not Supported");
    }
    match SipMessage::try_from(packet) {
        Ok(SipMessage::Request(req)) => match request_defect(&req, head, packet) {
            None => Verdict::Pass,
            Some(defect) => reply(head, 400, &format!("Bad Request ({defect})")),
        },
        Ok(SipMessage::Response(_)) => Verdict::Pass,
        Err(_) if !is_request => Verdict::Drop,
        Err(_) => {
            let method = first_line.split(' ').next().unwrap_or_default();
            let is_token = !method.is_empty()
                && method
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
            if is_token && method.parse::<rsipstack::sip::Method>().is_err() {
                reply(head, 501, "Not Implemented")
            } else if method == "ACK" {
                Verdict::Drop // never answer an ACK
            } else {
                reply(head, 400, "Bad Request")
            }
        }
    }
}

/// Why a parsed request cannot start a transaction, if it cannot.
fn request_defect(req: &rsipstack::sip::Request, head: &str, packet: &[u8]) -> Option<String> {
    use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
    use rsipstack::transaction::key::{TransactionKey, TransactionRole};
    if let Some(name) = missing_header(head) {
        return Some(format!("missing {name}"));
    }
    if let Some(defect) = lexical_defect(head) {
        return Some(defect.into());
    }
    if let Some(name) = repeated_single_header(head) {
        return Some(format!("{name} given more than once"));
    }
    if TransactionKey::from_request(req, TransactionRole::Server).is_err() {
        return Some("malformed Via, From, Call-ID or CSeq".into());
    }
    if req.from_header().and_then(|h| h.typed()).is_err()
        || req.to_header().and_then(|h| h.typed()).is_err()
        || req.contact_header().is_ok_and(|h| h.typed().is_err())
    {
        return Some("malformed From, To or Contact".into());
    }
    let cseq_method = req.cseq_header().ok().and_then(|c| c.method().ok());
    if cseq_method != Some(req.method) {
        return Some("CSeq method differs from the request method".into());
    }
    content_length_defect(head, packet).map(str::to_string)
}

/// Content-Length must be single, numeric and not larger than the datagram's body
/// (RFC 3261 §18.3; extra trailing octets are allowed and ignored).
fn content_length_defect(head: &str, packet: &[u8]) -> Option<&'static str> {
    let values: Vec<&str> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| {
            let n = n.trim();
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l")
        })
        .map(|(_, v)| v.trim())
        .collect();
    let value = values.first()?;
    if values.len() > 1 {
        return Some("several Content-Length values");
    }
    let Ok(declared) = value.parse::<usize>() else {
        return Some("invalid Content-Length");
    };
    let body = packet
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| packet.len() - at - 4)
        .unwrap_or(0);
    (declared > body).then_some("Content-Length larger than the message")
}

/// Header lines with continuation lines folded in (RFC 3261 §7.3.1).
fn unfolded(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.lines().skip(1) {
        match out.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// Errors rsipstack's lenient header parsers let through: an unterminated quoted string in
/// an address header, and empty parameters in Via or Contact (RFC 4475 §3.1.2.1, §3.1.2.5).
fn lexical_defect(head: &str) -> Option<&'static str> {
    for line in unfolded(head) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "from" | "f" | "to" | "t" | "contact" | "m" | "via" | "v"
        ) {
            continue;
        }
        let mut in_quotes = false;
        let mut escaped = false;
        let mut outside = String::new();
        for c in value.chars() {
            match (in_quotes, escaped, c) {
                (true, false, '\\') => escaped = true,
                (true, true, _) => escaped = false,
                (_, _, '"') => in_quotes = !in_quotes,
                (false, _, c) if !c.is_whitespace() => outside.push(c),
                _ => {}
            }
        }
        if in_quotes {
            return Some("unterminated quoted string");
        }
        let empty_param =
            [";;", ";,", ",,"].iter().any(|p| outside.contains(p)) || outside.ends_with([';', ',']);
        if matches!(name.as_str(), "contact" | "m" | "via" | "v") && empty_param {
            return Some("empty header parameter");
        }
    }
    None
}

/// A header that must appear once and appears more (RFC 4475 §3.3.9).
fn repeated_single_header(head: &str) -> Option<&'static str> {
    const SINGLE: [(&str, Option<&str>); 5] = [
        ("from", Some("f")),
        ("to", Some("t")),
        ("call-id", Some("i")),
        ("cseq", None),
        ("max-forwards", None),
    ];
    SINGLE
        .iter()
        .find(|(full, compact)| {
            head.lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .filter(|(n, _)| {
                    let n = n.trim().to_ascii_lowercase();
                    n == *full || compact.is_some_and(|c| n == c)
                })
                .count()
                > 1
        })
        .map(|(full, _)| *full)
}

/// The first mandatory header a request lacks, by full or compact name.
fn missing_header(head: &str) -> Option<&'static str> {
    let names: Vec<String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .collect();
    MANDATORY
        .iter()
        .find(|(full, compact)| {
            !names
                .iter()
                .any(|n| n == full || compact.is_some_and(|c| n == c))
        })
        .map(|(full, _)| *full)
}

/// Builds a response echoing the request's Via, From, To, Call-ID and CSeq lines verbatim
/// (RFC 3261 §8.2.6). Without a Via there is nowhere to answer: drop.
fn reply(head: &str, code: u16, reason: &str) -> Verdict {
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

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            match judge(&buf[..len]) {
                Verdict::Pass => return Ok((len, from)),
                Verdict::Drop => self.malformed.inc(),
                Verdict::Reply(response) => {
                    self.malformed.inc();
                    self.count_sent(&response);
                    tracing::debug!(%from, "malformed SIP answered");
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        tracing::debug!(error = %e, "could not answer malformed SIP");
                    }
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        self.count_sent(buf);
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
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
        assert_eq!(
            judge(request("INVITE sip:15@y SIP/2.0", "").as_bytes()),
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
                    "badinv01.dat" | "clerr.dat" | "ncl.dat" | "scalar02.dat" | "quotbal.dat"
                    | "lwsruri.dat" | "mismatch01.dat" | "insuf.dat" | "multi01.dat" | "mcl01.dat",
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

    #[test]
    fn garbage_and_broken_responses_are_dropped_not_answered() {
        assert_eq!(judge(b"\x00\x01\x02garbage"), Verdict::Drop);
        assert_eq!(judge(b"SIP/2.0 abc\r\n\r\n"), Verdict::Drop);
        let no_via = "INVITE sip:x SIP/2.0\r\nCSeq: x\r\n\r\n";
        assert_eq!(judge(no_via.as_bytes()), Verdict::Drop);
    }
}
