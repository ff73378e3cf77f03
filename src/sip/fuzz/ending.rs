//! Ending the calls fuzzed INVITEs make, so they do not pile up and take every media port:
//! a CANCEL while one rings, ACK and BYE once answered. Built from the router's response
//! (which echoes our Via, From, To, Call-ID and CSeq), so it works whatever the mutation did
//! to the INVITE, as long as the response came back.

/// The dialog-forming headers of a response to an INVITE.
struct Echo<'a> {
    via: &'a str,
    from: &'a str,
    to: &'a str,
    call_id: &'a str,
    seq: u32,
}

impl<'a> Echo<'a> {
    /// The headers of `response` when it answers an INVITE and its status starts with
    /// `class` (`"1"`, `"2"`).
    fn read(response: &'a [u8], class: &str) -> Option<Echo<'a>> {
        let text = std::str::from_utf8(response).ok()?;
        if !text.strip_prefix("SIP/2.0 ")?.starts_with(class) {
            return None;
        }
        let head = text.split("\r\n\r\n").next()?;
        let (mut via, mut from, mut to, mut call_id, mut cseq) = (None, None, None, None, None);
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "via" | "v" if via.is_none() => via = Some(value.trim()),
                "from" | "f" => from = Some(value.trim()),
                "to" | "t" => to = Some(value.trim()),
                "call-id" | "i" => call_id = Some(value.trim()),
                "cseq" => cseq = Some(value.trim()),
                _ => {}
            }
        }
        let (seq, method) = cseq?.split_once(' ')?;
        if method.trim() != "INVITE" {
            return None;
        }
        Some(Echo {
            via: via?,
            from: from?,
            to: to?,
            call_id: call_id?,
            seq: seq.trim().parse().ok()?,
        })
    }

    fn request(&self, method: &str, uri: &str, via: &str, to: &str, seq: u32) -> Vec<u8> {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n",
            self.from, self.call_id
        )
        .into_bytes()
    }
}

/// The CANCEL of the ringing INVITE a provisional `response` answers (same Via branch, To
/// without the router's tag), to request URI `uri`.
pub fn cancel(response: &[u8], uri: &str) -> Option<Vec<u8>> {
    let echo = Echo::read(response, "1")?;
    let to = echo.to.split(";tag=").next()?;
    Some(echo.request("CANCEL", uri, echo.via, to, echo.seq))
}

/// The ACK and the BYE that end the call a `2xx` to an INVITE set up (new branches), to
/// request URI `uri`.
pub fn hang_up(response: &[u8], uri: &str) -> Option<[Vec<u8>; 2]> {
    let echo = Echo::read(response, "2")?;
    let via = |method: &str| {
        echo.via
            .replacen("branch=z9hG4bK", &format!("branch=z9hG4bK{method}"), 1)
    };
    Some([
        echo.request("ACK", uri, &via("ACK"), echo.to, echo.seq),
        echo.request("BYE", uri, &via("BYE"), echo.to, echo.seq + 1),
    ])
}

/// The request URI of a request's bytes.
pub fn request_uri(request: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(request.split(|&b| b == b'\r').next()?).ok()?;
    line.split(' ').nth(1)
}
