//! SDP offer/answer handling for media anchoring (RFC 4566 / RFC 3264 subset).
//!
//! Owns parsing an SDP body into [`SessionDescription`], reading the audio endpoint and
//! codecs, rewriting addresses and ports so media flows through our relay, and trimming the
//! codec list to what we relay (PCMU, PCMA, telephone-event). Lines we do not interpret are
//! kept verbatim and in order, so a rewrite changes only what it must.

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

mod negotiate;
mod srtp;
#[cfg(test)]
mod srtp_tests;
#[cfg(test)]
mod tests;
mod text;

pub use negotiate::{LegCodecs, OFFERED_DTMF_PT};
pub use srtp::{
    CryptoAttr, CryptoAttrError, KEY_MATERIAL_LEN, MASTER_KEY_LEN, MASTER_SALT_LEN, MasterKey,
    SrtpKeys, SrtpPolicy, SrtpRefusal, SrtpSuite,
};

/// Bodies larger than this are refused outright: a real audio offer is well under 4 KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// Codecs the router relays; pass to [`SessionDescription::restrict_codecs`].
pub const RELAYED_CODECS: &[&str] = &["PCMU", "PCMA", "telephone-event"];

/// Why a line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MalformedReason {
    #[error("not a `<type>=<value>` line")]
    NotTypeValue,
    #[error("first line is not `v=0`")]
    BadVersion,
    #[error("bad `o=` line")]
    BadOrigin,
    #[error("bad `c=` line")]
    BadConnection,
    #[error("bad `m=` line")]
    BadMedia,
    #[error("port out of range")]
    BadPort,
    #[error("bad RTP payload type")]
    BadPayloadType,
}

/// Errors from SDP parsing and rewriting.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("empty SDP body")]
    Empty,
    #[error("SDP body too large ({0} bytes)")]
    TooLarge(usize),
    #[error("SDP body is not valid UTF-8")]
    NotUtf8,
    #[error("malformed SDP at line {line}: {reason}")]
    Malformed {
        line: usize,
        reason: MalformedReason,
    },
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("no codec in common with the offer")]
    NoCommonCodec,
}

/// One `<type>=<value>` line, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    kind: char,
    value: String,
}

impl Line {
    fn new(kind: char, value: impl Into<String>) -> Self {
        Line {
            kind,
            value: value.into(),
        }
    }

    /// Value of an `a=<name>:...` or `a=<name>` attribute line.
    fn attr(&self, name: &str) -> Option<&str> {
        if self.kind != 'a' {
            return None;
        }
        let rest = self.value.strip_prefix(name)?;
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix(':')
        }
    }
}

/// One media section: the parsed `m=` line plus its other lines verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Media {
    kind: String,
    port: u16,
    /// The `/<n>` suffix of the port, kept as written.
    port_count: Option<String>,
    proto: String,
    fmts: Vec<String>,
    lines: Vec<Line>,
}

impl Media {
    fn is_rtp(&self) -> bool {
        self.proto.starts_with("RTP/")
    }

    fn connection(&self) -> Option<IpAddr> {
        self.lines
            .iter()
            .find(|l| l.kind == 'c')
            .and_then(|l| parse_connection(&l.value))
    }

    fn payload_types(&self) -> Vec<u8> {
        self.fmts.iter().filter_map(|f| f.parse().ok()).collect()
    }

    fn rtpmaps(&self) -> Vec<RtpMap> {
        self.lines
            .iter()
            .filter_map(|l| l.attr("rtpmap"))
            .filter_map(RtpMap::parse)
            .collect()
    }
}

/// A parsed `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    /// Encoding parameters (channel count for audio), as written.
    pub params: Option<String>,
}

/// An `rtpmap` value's fields, borrowed: payload type, encoding, clock rate, parameters.
fn rtpmap_fields(v: &str) -> Option<(u8, &str, u32, Option<&str>)> {
    let (pt, rest) = v.split_once(' ')?;
    let mut parts = rest.trim().splitn(3, '/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = parts.next()?.parse().ok()?;
    Some((pt.trim().parse().ok()?, encoding, clock_rate, parts.next()))
}

impl RtpMap {
    fn parse(v: &str) -> Option<RtpMap> {
        let (payload_type, encoding, clock_rate, params) = rtpmap_fields(v)?;
        Some(RtpMap {
            payload_type,
            encoding: encoding.to_string(),
            clock_rate,
            params: params.map(str::to_string),
        })
    }
}

/// Encoding and clock rate of static payload types (RFC 3551) that offers often leave
/// without an rtpmap.
fn static_payload(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// Address of a `c=IN IP4 <addr>[/ttl]` value; `None` for FQDNs or garbage.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut it = value.split_ascii_whitespace();
    let (_net, _kind, addr) = (it.next()?, it.next()?, it.next()?);
    addr.split('/').next()?.parse().ok()
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// Attributes that describe the original transport and would point around the relay.
fn is_transport_attr(line: &Line) -> bool {
    const DROPPED: &[&str] = &[
        "rtcp",
        "candidate",
        "remote-candidates",
        "end-of-candidates",
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "ice-lite",
        "ice-mismatch",
    ];
    DROPPED.iter().any(|name| line.attr(name).is_some())
}

/// A parsed SDP body. Serialise with `to_string()` (always `\r\n` line endings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    session: Vec<Line>,
    media: Vec<Media>,
}

impl SessionDescription {
    /// Parses a body as received on the wire (bytes need not be UTF-8 to be rejected cleanly).
    pub fn parse_bytes(body: &[u8]) -> Result<Self, SdpError> {
        if body.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(body.len()));
        }
        std::str::from_utf8(body)
            .map_err(|_| SdpError::NotUtf8)?
            .parse()
    }

    /// Connection address for audio: the audio media-level `c=` wins over session level.
    pub fn connection_address(&self) -> Option<IpAddr> {
        self.audio()
            .and_then(Media::connection)
            .or_else(|| self.session_connection())
    }

    /// Port of the first `m=audio` line.
    pub fn audio_port(&self) -> Option<u16> {
        self.audio().map(|m| m.port)
    }

    /// Numeric payload types of the first `m=audio` line, in offer order.
    pub fn audio_payload_types(&self) -> Vec<u8> {
        self.audio().map(Media::payload_types).unwrap_or_default()
    }

    /// `a=rtpmap` lines of the first `m=audio` section.
    pub fn audio_rtpmaps(&self) -> Vec<RtpMap> {
        self.audio().map(Media::rtpmaps).unwrap_or_default()
    }

    /// Encoding name of an audio payload type (rtpmap first, then the static table).
    pub fn encoding_of(&self, pt: u8) -> Option<String> {
        self.codec_of(pt).map(|(e, _)| e.to_string())
    }

    /// Where the peer wants audio sent. `None` when there is no audio, the stream is
    /// rejected (port 0), or the address is unspecified (old-style hold, `0.0.0.0`).
    pub fn audio_endpoint(&self) -> Option<SocketAddr> {
        let port = self.audio_port().filter(|p| *p != 0)?;
        let ip = self
            .connection_address()
            .filter(|ip| !ip.is_unspecified())?;
        Some(SocketAddr::new(ip, port))
    }

    /// Points the audio stream at our relay socket `ip:port`.
    ///
    /// Sets the session and audio `c=` (adds a session `c=` if there was none anywhere
    /// relevant), the `o=` address and the audio `m=` port. Drops `a=rtcp` (the default,
    /// port+1, is right for us) and ICE attributes, which would name the peer's own
    /// addresses. Other media sections (video, a second audio) are not relayed, so their
    /// port is set to 0, which keeps the m-line count RFC 3264 needs. Direction
    /// attributes and everything else are kept.
    pub fn rewrite_for_anchor(&mut self, ip: IpAddr, port: u16) -> Result<(), SdpError> {
        let audio_idx = self.audio_index().ok_or(SdpError::NoAudio)?;
        let c_value = format!("IN {} {ip}", addr_type(ip));

        for line in &mut self.session {
            match line.kind {
                'o' => {
                    let mut f: Vec<&str> = line.value.split_ascii_whitespace().collect();
                    // Length was checked at parse time.
                    if f.len() >= 6 {
                        let addr = ip.to_string();
                        f[4] = addr_type(ip);
                        f[5] = &addr;
                        line.value = f.join(" ");
                    }
                }
                'c' => line.value.clone_from(&c_value),
                _ => {}
            }
        }
        self.session.retain(|l| !is_transport_attr(l));

        for (i, m) in self.media.iter_mut().enumerate() {
            if i != audio_idx {
                m.port = 0;
                m.port_count = None;
                continue;
            }
            m.port = port;
            m.port_count = None;
            m.lines.retain(|l| !is_transport_attr(l));
            let mut has_c = false;
            for l in m.lines.iter_mut().filter(|l| l.kind == 'c') {
                l.value.clone_from(&c_value);
                has_c = true;
            }
            if !has_c && !self.session.iter().any(|l| l.kind == 'c') {
                // Media-level c= goes after an optional i= (RFC 4566 field order).
                let at = usize::from(m.lines.first().is_some_and(|l| l.kind == 'i'));
                m.lines.insert(at, Line::new('c', c_value.clone()));
            }
        }
        Ok(())
    }

    /// Replaces the `o=` username, session id and version (adds `o=` if missing).
    ///
    /// A B2BUA must present one stable origin per leg and bump the version on each new
    /// offer (RFC 3264 §8): the peer's own `o=` changes when the other side does (new seat).
    /// Call after [`rewrite_for_anchor`](Self::rewrite_for_anchor), which sets the address.
    pub fn set_origin(&mut self, username: &str, session_id: u64, version: u64) {
        // An empty or spaced username would break the field layout.
        let user = username.split_ascii_whitespace().next().unwrap_or("-");
        let addr = self
            .session
            .iter()
            .find(|l| l.kind == 'o')
            .map(|l| l.value.split_ascii_whitespace().skip(3).collect::<Vec<_>>())
            .filter(|rest| rest.len() >= 3)
            .map_or_else(|| "IN IP4 0.0.0.0".to_string(), |rest| rest.join(" "));
        let value = format!("{user} {session_id} {version} {addr}");
        match self.session.iter_mut().find(|l| l.kind == 'o') {
            Some(l) => l.value = value,
            // o= follows v= (RFC 4566 field order).
            None => self.session.insert(1, Line::new('o', value)),
        }
    }

    /// Keeps only audio payload types whose encoding is in `allowed` (case-insensitive),
    /// dropping the `rtpmap`/`fmtp`/`rtcp-fb` lines of the others.
    ///
    /// `telephone-event` is kept only at a clock rate of a kept voice codec (so the
    /// 48 kHz variant offered alongside opus goes). Errors with [`SdpError::NoCommonCodec`]
    /// (leaving `self` untouched) if no voice codec survives.
    pub fn restrict_codecs(&mut self, allowed: &[&str]) -> Result<(), SdpError> {
        let idx = self.audio_index().ok_or(SdpError::NoAudio)?;
        let is_allowed = |enc: &str| allowed.iter().any(|a| a.eq_ignore_ascii_case(enc));
        let is_dtmf = |enc: &str| enc.eq_ignore_ascii_case("telephone-event");

        let pts = self.media[idx].payload_types();
        let voice: Vec<(u8, u32)> = pts
            .iter()
            .filter_map(|&pt| self.codec_of(pt).map(|c| (pt, c)))
            .filter(|(_, (enc, _))| is_allowed(enc) && !is_dtmf(enc))
            .map(|(pt, (_, rate))| (pt, rate))
            .collect();
        if voice.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let keep: Vec<u8> = pts
            .iter()
            .copied()
            .filter(|&pt| match self.codec_of(pt) {
                Some((enc, rate)) if is_dtmf(enc) => {
                    is_allowed(enc) && voice.iter().any(|(_, r)| *r == rate)
                }
                Some(_) => voice.iter().any(|(v, _)| *v == pt),
                None => false,
            })
            .collect();

        self.keep_payload_types(idx, &keep);
        Ok(())
    }

    /// Keeps only the payload types `keep` in the audio section `idx`, with their
    /// `rtpmap`/`fmtp`/`rtcp-fb` lines.
    fn keep_payload_types(&mut self, idx: usize, keep: &[u8]) {
        let m = &mut self.media[idx];
        m.fmts
            .retain(|f| f.parse().is_ok_and(|pt: u8| keep.contains(&pt)));
        m.lines.retain(|l| {
            let pt_attr = ["rtpmap", "fmtp", "rtcp-fb"]
                .iter()
                .find_map(|name| l.attr(name));
            match pt_attr {
                // `a=rtcp-fb:*` applies to all formats: keep it.
                Some(v) => {
                    let pt = v.split_ascii_whitespace().next().unwrap_or("");
                    pt == "*" || pt.parse().is_ok_and(|pt: u8| keep.contains(&pt))
                }
                None => true,
            }
        });
    }

    fn audio_index(&self) -> Option<usize> {
        self.media
            .iter()
            .position(|m| m.kind == "audio" && m.is_rtp())
    }

    fn audio(&self) -> Option<&Media> {
        self.audio_index().map(|i| &self.media[i])
    }

    fn session_connection(&self) -> Option<IpAddr> {
        self.session
            .iter()
            .find(|l| l.kind == 'c')
            .and_then(|l| parse_connection(&l.value))
    }

    /// Encoding name and clock rate of an audio payload type.
    /// (Every offer and answer asks this of each payload type: nothing is allocated.)
    fn codec_of(&self, pt: u8) -> Option<(&str, u32)> {
        let m = self.audio()?;
        m.lines
            .iter()
            .filter_map(|l| l.attr("rtpmap"))
            .filter_map(rtpmap_fields)
            .find(|(p, ..)| *p == pt)
            .map(|(_, encoding, rate, _)| (encoding, rate))
            .or_else(|| static_payload(pt))
    }
}
