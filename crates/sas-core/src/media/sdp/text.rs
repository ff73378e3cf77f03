//! Text form of a [`SessionDescription`]: parsing (`FromStr`) and serialisation (`Display`).
//!
//! Parsing validates only what rewriting relies on (`v=` first, `o=`, `c=`, `m=` shape);
//! every other line is kept verbatim.

use std::fmt;
use std::str::FromStr;

use super::{
    Line, MAX_SDP_LEN, MalformedReason, Media, SdpError, SessionDescription, parse_connection,
};

fn parse_media(value: &str, line: usize) -> Result<Media, SdpError> {
    let bad = |reason| SdpError::Malformed { line, reason };
    let mut it = value.split_ascii_whitespace();
    let (kind, port, proto) = match (it.next(), it.next(), it.next()) {
        (Some(k), Some(p), Some(t)) => (k, p, t),
        _ => return Err(bad(MalformedReason::BadMedia)),
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (p, Some(n.to_string())),
        None => (port, None),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| bad(MalformedReason::BadPort))?;
    let fmts: Vec<String> = it.map(str::to_string).collect();
    let media = Media {
        kind: kind.to_string(),
        port,
        port_count,
        proto: proto.to_string(),
        fmts,
        lines: Vec::new(),
    };
    if media.is_rtp()
        && media
            .fmts
            .iter()
            .any(|f| !f.parse::<u8>().is_ok_and(|pt| pt < 128))
    {
        return Err(bad(MalformedReason::BadPayloadType));
    }
    Ok(media)
}

fn check_line(l: &Line, line: usize) -> Result<(), SdpError> {
    let bad = |reason| Err(SdpError::Malformed { line, reason });
    match l.kind {
        'o' if l.value.split_ascii_whitespace().count() < 6 => bad(MalformedReason::BadOrigin),
        'c' if parse_connection(&l.value).is_none() => bad(MalformedReason::BadConnection),
        _ => Ok(()),
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(text.len()));
        }
        let mut sdp = SessionDescription {
            session: Vec::new(),
            media: Vec::new(),
        };
        for (i, raw) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.trim().is_empty() {
                continue;
            }
            let mut chars = raw.chars();
            let (kind, value) = match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_lowercase() => (k, chars.as_str()),
                _ => {
                    return Err(SdpError::Malformed {
                        line: line_no,
                        reason: MalformedReason::NotTypeValue,
                    });
                }
            };
            let first = sdp.session.is_empty();
            if first != (kind == 'v') || (first && value.trim() != "0") {
                return Err(SdpError::Malformed {
                    line: line_no,
                    reason: MalformedReason::BadVersion,
                });
            }
            if kind == 'm' {
                sdp.media.push(parse_media(value, line_no)?);
                continue;
            }
            let line = Line::new(kind, value);
            check_line(&line, line_no)?;
            match sdp.media.last_mut() {
                Some(m) => m.lines.push(line),
                None => sdp.session.push(line),
            }
        }
        if sdp.session.is_empty() {
            return Err(SdpError::Empty);
        }
        Ok(sdp)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.session {
            write!(f, "{}={}\r\n", l.kind, l.value)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.kind, m.port)?;
            if let Some(n) = &m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt_ in &m.fmts {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            for l in &m.lines {
                write!(f, "{}={}\r\n", l.kind, l.value)?;
            }
        }
        Ok(())
    }
}
