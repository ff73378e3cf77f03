//! The fuzzer's seed messages: one valid request of every method the router serves, as a
//! trunk or a phone would send it, and the editable [`Message`] form the mutations work on.

use std::net::SocketAddr;

/// Where a seed message goes and what it carries.
pub struct Context {
    /// The router.
    pub target: SocketAddr,
    /// The sender (Via, Contact).
    pub local: SocketAddr,
    /// `UDP` or `TCP` (the Via transport).
    pub transport: &'static str,
    /// The case marker put in Call-ID, branch and tag.
    pub marker: String,
}

/// The seed names; [`build`] makes each.
pub const SEEDS: [&str; 12] = [
    "INVITE 15",
    "INVITE 116117",
    "INVITE unknown",
    "REGISTER",
    "OPTIONS",
    "BYE",
    "CANCEL",
    "ACK",
    "REFER",
    "INFO",
    "UPDATE",
    "re-INVITE",
];

/// A G.711 offer as trunks send it.
pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";

/// The text of seed `name` (one of [`SEEDS`]).
pub fn build(name: &str, c: &Context) -> String {
    let (target, local, transport, m) = (c.target, c.local, c.transport, &c.marker);
    let (method, user, to_tag, extra, body) = match name {
        "INVITE 15" => ("INVITE", "15", "", "", SDP),
        "INVITE 116117" => ("INVITE", "116117", "", "", SDP),
        "INVITE unknown" => ("INVITE", "0999", "", "", SDP),
        "re-INVITE" => ("INVITE", "15", ";tag=r1", "", SDP),
        "REGISTER" => ("REGISTER", "arm1", "", "Expires: 60\r\n", ""),
        "OPTIONS" => ("OPTIONS", "", "", "Accept: application/sdp\r\n", ""),
        "BYE" => ("BYE", "15", ";tag=r1", "", ""),
        "CANCEL" => ("CANCEL", "15", "", "", ""),
        "ACK" => ("ACK", "15", ";tag=r1", "", ""),
        "REFER" => (
            "REFER",
            "15",
            ";tag=r1",
            "Refer-To: <sip:116117@127.0.0.1>\r\nReferred-By: <sip:arm1@127.0.0.1>\r\n",
            "",
        ),
        "INFO" => (
            "INFO",
            "15",
            ";tag=r1",
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=5\r\nDuration=160\r\n",
        ),
        _ => ("UPDATE", "15", ";tag=r1", "", SDP),
    };
    let (uri, to_uri) = match (name, user) {
        ("REGISTER", _) => (
            format!("sip:{}", target.ip()),
            format!("sip:arm1@{}", target.ip()),
        ),
        (_, "") => (format!("sip:{target}"), format!("sip:{target}")),
        (_, user) => (
            format!("sip:{user}@{target}"),
            format!("sip:{user}@{target}"),
        ),
    };
    let content_type = if body == SDP {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{m};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Fuzz\" <sip:0612345678@{local}>;tag={m}\r\n\
         To: <{to_uri}>{to_tag}\r\n\
         Call-ID: {m}@{local}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:0612345678@{local};transport={tl}>\r\n\
         User-Agent: sas-fuzz\r\n\
         {extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
        tl = transport.to_ascii_lowercase(),
        len = body.len(),
    )
}

/// A message split for editing: the start line, the header lines, the body (bytes: the
/// mutations may make them anything).
#[derive(Debug, Clone)]
pub struct Message {
    /// The request line.
    pub start: Vec<u8>,
    /// Header lines, without their CRLF.
    pub headers: Vec<Vec<u8>>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether [`Message::into_bytes`] rewrites Content-Length to the body's length.
    pub fix_length: bool,
    /// Set by a mutation that works on raw bytes: sent exactly as is.
    pub raw: Option<Vec<u8>>,
}

impl Message {
    /// Splits a well-formed message text.
    pub fn parse(text: &str) -> Message {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n").map(|l| l.as_bytes().to_vec());
        Message {
            start: lines.next().unwrap_or_default(),
            headers: lines.collect(),
            body: body.as_bytes().to_vec(),
            fix_length: true,
            raw: None,
        }
    }

    /// The bytes to send.
    pub fn into_bytes(self) -> Vec<u8> {
        if let Some(raw) = self.raw {
            return raw;
        }
        let mut out = self.start;
        out.extend_from_slice(b"\r\n");
        for line in &self.headers {
            let is_length = header_name(line)
                .is_some_and(|n| n.eq_ignore_ascii_case("content-length") || n == "l");
            if self.fix_length && is_length {
                out.extend_from_slice(format!("Content-Length: {}", self.body.len()).as_bytes());
            } else {
                out.extend_from_slice(line);
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Index of the first header named `name` (case-insensitive).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|l| header_name(l).is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }
}

/// A header line's name.
pub fn header_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    std::str::from_utf8(&line[..colon]).ok().map(str::trim)
}
