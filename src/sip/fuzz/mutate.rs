//! The mutation operators: byte flips, header deletion and duplication, truncation, huge
//! values, bad numbers, bad URIs, bad SDP, method swaps, odd line endings. Each takes the
//! generator and the message and returns its own name for the report.

use super::corpus::{Message, header_name};
use crate::sim_rng::Rng;

/// Numbers no header should accept.
const BAD_NUMBERS: [&str; 12] = [
    "-1",
    "0",
    "abc",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "1.5",
    " ",
    "",
    "0x10",
    "+7",
    "2147483648",
];

/// URIs that are wrong in every way a parser can meet.
const BAD_URIS: [&str; 16] = [
    "sip:",
    "sip:@",
    "<>",
    "sip:a@[::1",
    "sip:a@b:99999",
    "sip:a@b:-5",
    "sip:%zz@x",
    "mailto:a@b",
    "tel:",
    "sip:a@b;;;",
    "sip:a@b?",
    "sips:a@",
    "<sip:a@b",
    "sip:a b@c",
    "sip:\u{0}@x",
    "\"unterminated <sip:a@b>",
];

/// SDP bodies that are wrong (or odd) in the ways that reach the media code.
const BAD_SDP: [&str; 14] = [
    "",
    "v=0\r\n",
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio abc RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 999.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP6 zz::zz\r\nm=audio 4000 RTP/AVP 0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 300 -1 x\r\na=rtpmap:300 PCMU/0\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVPF 0\r\na=fingerprint:sha-256 zz\r\na=ice-ufrag:\r\n",
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 4000 RTP/AVP 96\r\nm=audio 4002 RTP/AVP 8\r\na=rtpmap:8\r\na=ptime:0\r\n",
    "\u{0}\u{1}\u{2}binary",
];

/// Applies one operator picked by `rng`; returns its name.
pub(crate) fn apply(rng: &mut Rng, msg: &mut Message) -> &'static str {
    match rng.between(0, 13) {
        0 => flip_bytes(rng, msg),
        1 => delete_header(rng, msg),
        2 => duplicate_header(rng, msg),
        3 => truncate(rng, msg),
        4 => huge_value(rng, msg),
        5 => bad_number(rng, msg),
        6 => bad_uri(rng, msg),
        7 | 8 => bad_sdp(rng, msg),
        9 => swap_method(rng, msg),
        10 => junk_header(rng, msg),
        11 => line_endings(rng, msg),
        12 => wrong_length(rng, msg),
        _ => many_headers(rng, msg),
    }
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.between(0, items.len() as u64 - 1) as usize]
}

/// The message flattened (what a raw operator edits).
fn flat(msg: &Message) -> Vec<u8> {
    msg.clone().into_bytes()
}

fn flip_bytes(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let mut bytes = flat(msg);
    for _ in 0..rng.between(1, 8) {
        let at = rng.between(0, bytes.len() as u64 - 1) as usize;
        bytes[at] = match rng.between(0, 3) {
            0 => rng.next() as u8,
            1 => *pick(rng, b":;,<>\"@ \r\n\0%=/"),
            2 => bytes[at] ^ 0x20,
            _ => b'\xff',
        };
    }
    msg.raw = Some(bytes);
    "byte flip"
}

fn delete_header(rng: &mut Rng, msg: &mut Message) -> &'static str {
    if !msg.headers.is_empty() {
        let at = rng.between(0, msg.headers.len() as u64 - 1) as usize;
        msg.headers.remove(at);
    }
    "header deleted"
}

fn duplicate_header(rng: &mut Rng, msg: &mut Message) -> &'static str {
    if !msg.headers.is_empty() {
        let at = rng.between(0, msg.headers.len() as u64 - 1) as usize;
        let mut copy = msg.headers[at].clone();
        if rng.chance(50) {
            // A second value that differs.
            copy.extend_from_slice(b"2");
        }
        msg.headers.insert(at + 1, copy);
    }
    "header duplicated"
}

fn truncate(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let mut bytes = flat(msg);
    bytes.truncate(rng.between(1, bytes.len() as u64 - 1) as usize);
    msg.raw = Some(bytes);
    "truncated"
}

fn huge_value(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let size = *pick(rng, &[300usize, 5_000, 20_000, 60_000]);
    let filler = *pick(rng, b"a9; %");
    let huge = vec![filler; size];
    match rng.between(0, 2) {
        0 if !msg.headers.is_empty() => {
            let at = rng.between(0, msg.headers.len() as u64 - 1) as usize;
            msg.headers[at].extend_from_slice(&huge);
        }
        1 => msg.start.splice(4..4, huge.iter().copied()).for_each(drop),
        _ => msg.body.extend_from_slice(&huge),
    }
    "huge value"
}

fn bad_number(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let number = *pick(rng, &BAD_NUMBERS);
    let header = *pick(
        rng,
        &["CSeq", "Content-Length", "Max-Forwards", "Expires", "Via"],
    );
    let Some(at) = msg.find(header) else {
        msg.headers.push(format!("{header}: {number}").into_bytes());
        return "bad number";
    };
    let line = match header {
        "CSeq" => {
            let method = String::from_utf8_lossy(&msg.start)
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string();
            format!("CSeq: {number} {method}")
        }
        "Via" => {
            String::from_utf8_lossy(&msg.headers[at]).replace(";rport", &format!(";rport={number}"))
        }
        "Content-Length" => {
            msg.fix_length = false;
            format!("Content-Length: {number}")
        }
        _ => format!("{header}: {number}"),
    };
    msg.headers[at] = line.into_bytes();
    "bad number"
}

fn bad_uri(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let uri = *pick(rng, &BAD_URIS);
    match rng.between(0, 3) {
        0 => {
            let start = String::from_utf8_lossy(&msg.start).to_string();
            let words: Vec<&str> = start.split(' ').collect();
            if words.len() == 3 {
                msg.start = format!("{} {uri} {}", words[0], words[2]).into_bytes();
            }
        }
        n => {
            let header = ["From", "To", "Contact"][n as usize - 1];
            let Some(at) = msg.find(header) else {
                return "bad URI";
            };
            let tag = if header == "From" { ";tag=f1" } else { "" };
            msg.headers[at] = format!("{header}: {uri}{tag}").into_bytes();
        }
    }
    "bad URI"
}

fn bad_sdp(rng: &mut Rng, msg: &mut Message) -> &'static str {
    msg.body = pick(rng, &BAD_SDP).as_bytes().to_vec();
    if msg.find("Content-Type").is_none() {
        msg.headers.push(b"Content-Type: application/sdp".to_vec());
    }
    "bad SDP"
}

fn swap_method(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let method = *pick(
        rng,
        &[
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "OPTIONS",
            "REGISTER",
            "REFER",
            "INFO",
            "UPDATE",
            "PRACK",
            "FOO",
            "invite",
            "SUBSCRIBE",
        ],
    );
    let start = String::from_utf8_lossy(&msg.start).to_string();
    if rng.chance(50) {
        if let Some((_, rest)) = start.split_once(' ') {
            msg.start = format!("{method} {rest}").into_bytes();
        }
    } else if let Some(at) = msg.find("CSeq") {
        msg.headers[at] = format!("CSeq: 1 {method}").into_bytes();
    }
    "method swapped"
}

fn junk_header(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let line: &[u8] = pick::<&[u8]>(
        rng,
        &[
            b"X-Junk: \x00\x01\x02",
            b"X-Utf: \xc3\x28\xff",
            b": no name",
            b"No-Colon-Here",
            b"Via: ",
            b"Route: <sip:a@b;lr>,,<",
            b"Record-Route: <sip:127.0.0.1;lr>",
            b"Require: 100rel, timer",
            b"Session-Expires: 1",
            b"Replaces: x;to-tag=;from-tag",
            b"Authorization: Digest username=\"arm1\", realm=, nonce",
            b"Content-Type: multipart/mixed;boundary=",
            b"Content-Encoding: gzip",
            b" folded continuation",
        ],
    );
    let at = rng.between(0, msg.headers.len() as u64) as usize;
    msg.headers.insert(at, line.to_vec());
    "junk header"
}

fn line_endings(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let text = flat(msg);
    let from: &[u8] = b"\r\n";
    let to: &[u8] = pick::<&[u8]>(rng, &[b"\n", b"\r", b"\r\n\r\n", b"\r\n "]);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let limit = rng.between(1, 6);
    let mut done = 0;
    while i < text.len() {
        if done < limit && text[i..].starts_with(from) && rng.chance(50) {
            out.extend_from_slice(to);
            i += from.len();
            done += 1;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    msg.raw = Some(out);
    "line endings"
}

fn wrong_length(rng: &mut Rng, msg: &mut Message) -> &'static str {
    msg.fix_length = false;
    let declared = msg.body.len() as i64 + *pick(rng, &[-5i64, -1, 1, 10, 1000]);
    let declared = declared.max(0);
    if let Some(at) = msg.find("Content-Length") {
        msg.headers[at] = format!("Content-Length: {declared}").into_bytes();
    }
    "wrong Content-Length"
}

fn many_headers(rng: &mut Rng, msg: &mut Message) -> &'static str {
    let headers = msg.headers.clone();
    let name = headers
        .get(rng.between(0, headers.len().max(1) as u64 - 1) as usize)
        .and_then(|line| header_name(line))
        .unwrap_or("Via")
        .to_string();
    for i in 0..rng.between(20, 400) {
        msg.headers.push(format!("{name}: v{i}").into_bytes());
    }
    "many headers"
}
