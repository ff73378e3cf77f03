//! A minimal ng server (rtpengine's control protocol: `ping`, `offer`, `answer`, `delete`),
//! so `loadtest/mediagen rtpengine` drives this relay exactly as it drives rtpengine.
//!
//! `offer` takes the caller's SDP, reserves two port pairs on the relay (RTP and RTCP for
//! the caller's leg and for the seat's) and answers with the seat-facing one; `answer` takes
//! the seat's SDP, installs both directions in the kernel map (RTP tapped for the recorder,
//! RTCP not) and answers with the caller-facing one; `delete` removes them. The sockets are
//! bound only to reserve the ports: the kernel rewrites packets before any socket sees them.
//! `Direct` mode installs nothing and hands each side the other's own address: the baseline
//! of what the same packets cost with no relay at all.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use crate::bencode::{Bencode, dict, s};
use crate::bpf::{LegVal, Relay, Route};
use crate::sdp_text::sdp_media;

/// What the server does with a call.
pub enum Mode {
    /// Relay in the kernel: map entries redirected to `ifindex` (0: back to the stack),
    /// with `flags` ([`crate::bpf::LEG_SWAP_MAC`]).
    Kernel {
        relay: Relay,
        ifindex: u32,
        flags: u32,
    },
    /// No relay: each side is given the other's address.
    Direct,
}

/// One call: its relay ports (caller-facing, seat-facing) and the caller's address.
struct Call {
    caller: SocketAddrV4,
    ports: Option<(u16, u16)>,
    _sockets: Vec<UdpSocket>,
    tap: u32,
}

/// The ng server's state.
pub struct Server {
    mode: Mode,
    /// The relay's address in SDP and in the map keys.
    addr: Ipv4Addr,
    next_port: u16,
    port_range: (u16, u16),
    calls: HashMap<String, Call>,
    next_tap: u32,
    /// Counters of deleted legs (installed ones are read from the map).
    pub deleted: LegVal,
}

impl Server {
    pub fn new(mode: Mode, addr: Ipv4Addr, port_range: (u16, u16)) -> Self {
        Server {
            mode,
            addr,
            next_port: port_range.0 & !1,
            port_range,
            calls: HashMap::new(),
            next_tap: 0,
            deleted: LegVal::default(),
        }
    }

    pub fn relay(&self) -> Option<&Relay> {
        match &self.mode {
            Mode::Kernel { relay, .. } => Some(relay),
            Mode::Direct => None,
        }
    }

    /// Handles one datagram (`cookie bencoded-dict`); the reply, None if it is not ng.
    pub fn handle(&mut self, datagram: &[u8]) -> Option<Vec<u8>> {
        let space = datagram.iter().position(|&b| b == b' ')?;
        let (cookie, body) = (&datagram[..space], &datagram[space + 1..]);
        let answer = match Bencode::decode(body) {
            Ok((request, _)) => self
                .command(&request)
                .unwrap_or_else(|why| dict(&[("result", s("error")), ("error-reason", s(&why))])),
            Err(e) => dict(&[("result", s("error")), ("error-reason", s(&e.to_string()))]),
        };
        let mut out = cookie.to_vec();
        out.push(b' ');
        answer.encode(&mut out);
        Some(out)
    }

    fn command(&mut self, request: &Bencode) -> Result<Bencode, String> {
        let field = |k: &str| request.get_str(k).ok_or(format!("no {k}"));
        match field("command")?.as_str() {
            "ping" => Ok(dict(&[("result", s("pong"))])),
            "offer" => {
                let (call_id, sdp) = (field("call-id")?, field("sdp")?);
                let caller = sdp_media(&sdp).ok_or("no audio address in the offer")?;
                let seat_facing = self.offer(call_id, caller)?;
                Ok(ok_sdp(&rewrite(&sdp, self.addr, seat_facing)))
            }
            "answer" => {
                let (call_id, sdp) = (field("call-id")?, field("sdp")?);
                let seat = sdp_media(&sdp).ok_or("no audio address in the answer")?;
                let caller_facing = self.answer(&call_id, seat)?;
                Ok(ok_sdp(&rewrite(&sdp, self.addr, caller_facing)))
            }
            "delete" => {
                self.delete(&field("call-id")?);
                Ok(dict(&[("result", s("ok"))]))
            }
            other => Err(format!("unsupported command {other}")),
        }
    }

    /// Reserves the call's ports; the seat-facing port the offer's SDP gets (direct: the
    /// caller's own port, with its address kept).
    fn offer(&mut self, call_id: String, caller: SocketAddrV4) -> Result<u16, String> {
        if let Some(call) = self.calls.get(&call_id) {
            // A retransmitted offer.
            return Ok(call.ports.map_or(caller.port(), |p| p.1));
        }
        let (ports, sockets) = match self.mode {
            Mode::Direct => (None, Vec::new()),
            Mode::Kernel { .. } => {
                let (a, mut sa) = self.reserve()?;
                let (b, sb) = self.reserve()?;
                sa.extend(sb);
                (Some((a, b)), sa)
            }
        };
        let tap = self.next_tap;
        self.next_tap += 2;
        self.calls.insert(
            call_id,
            Call {
                caller,
                ports,
                _sockets: sockets,
                tap,
            },
        );
        Ok(ports.map_or(caller.port(), |p| p.1))
    }

    /// Installs both directions; the caller-facing port.
    fn answer(&mut self, call_id: &str, seat: SocketAddrV4) -> Result<u16, String> {
        let call = self.calls.get(call_id).ok_or("answer before offer")?;
        let Some((a, b)) = call.ports else {
            return Ok(seat.port());
        };
        let Mode::Kernel {
            relay,
            ifindex,
            flags,
        } = &mut self.mode
        else {
            return Ok(seat.port());
        };
        let at = |port| SocketAddrV4::new(self.addr, port);
        let rtcp = |x: SocketAddrV4| SocketAddrV4::new(*x.ip(), x.port() + 1);
        // Caller → relay:a → seat, from relay:b; seat → relay:b → caller, from relay:a.
        // Each side sends from its SDP address (mediagen's endpoints are symmetric): the
        // only source the program accepts. No RTP renumbering (the router's LEG_RTP).
        for (to, from, peer, source, tap) in [
            (at(a), at(b), seat, call.caller, call.tap),
            (at(b), at(a), call.caller, seat, call.tap + 1),
        ] {
            let route = |x: fn(SocketAddrV4) -> SocketAddrV4| Route {
                from: x(from),
                to: x(peer),
                source: x(source),
                ifindex: *ifindex,
            };
            relay
                .install(to, LegVal::new(route(|x| x), None, *flags).tapped(tap))
                .map_err(|e| e.to_string())?;
            relay
                .install(rtcp(to), LegVal::new(route(rtcp), None, *flags))
                .map_err(|e| e.to_string())?;
        }
        Ok(a)
    }

    fn delete(&mut self, call_id: &str) {
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        if let (Some((a, b)), Mode::Kernel { relay, .. }) = (call.ports, &mut self.mode) {
            for port in [a, a + 1, b, b + 1] {
                if let Some(v) = relay.remove(SocketAddrV4::new(self.addr, port)) {
                    self.deleted.add(&v);
                }
            }
        }
    }

    /// An even port and the next one, both bound (taken ones are skipped).
    fn reserve(&mut self) -> Result<(u16, Vec<UdpSocket>), String> {
        let span = usize::from(self.port_range.1 - self.port_range.0) / 2 + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port + 3 > self.port_range.1 {
                self.port_range.0 & !1
            } else {
                port + 2
            };
            let bind = |p| UdpSocket::bind(SocketAddrV4::new(self.addr, p));
            if let (Ok(rtp), Ok(rtcp)) = (bind(port), bind(port + 1)) {
                return Ok((port, vec![rtp, rtcp]));
            }
        }
        Err("no free port pair in the range".into())
    }
}

fn ok_sdp(sdp: &str) -> Bencode {
    dict(&[("result", s("ok")), ("sdp", s(sdp))])
}

/// `sdp` with its connection address (and origin's) set to `ip` and its audio port to `port`
/// (an unchanged port keeps the address too: the direct baseline).
fn rewrite(sdp: &str, ip: Ipv4Addr, port: u16) -> String {
    let keep = sdp_media(sdp).is_some_and(|m| m.port() == port);
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let line = line.trim_end();
        if keep {
            out += line;
        } else if let Some(rest) = line.strip_prefix("m=audio ") {
            let tail = rest.split_once(' ').map_or("", |(_, t)| t);
            out += &format!("m=audio {port} {tail}");
        } else if line.starts_with("c=IN IP4 ") {
            out += &format!("c=IN IP4 {ip}");
        } else if let Some(o) = line.strip_prefix("o=") {
            let fields: Vec<&str> = o.split(' ').collect();
            let kept = fields[..fields.len().saturating_sub(1)].join(" ");
            out += &format!("o={kept} {ip}");
        } else {
            out += line;
        }
        out += "\r\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=trunk 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc=IN IP4 127.0.0.5\r\n\
                       t=0 0\r\nm=audio 9600 RTP/AVP 8 101\r\na=ptime:20\r\n";

    #[test]
    fn rewrite_points_the_sdp_at_the_relay() {
        let out = rewrite(SDP, Ipv4Addr::LOCALHOST, 30002);
        assert_eq!(sdp_media(&out), Some("127.0.0.1:30002".parse().unwrap()));
        assert!(out.contains("o=trunk 1 1 IN IP4 127.0.0.1\r\n"));
        assert!(out.contains("m=audio 30002 RTP/AVP 8 101\r\n"));
    }

    #[test]
    fn direct_mode_hands_each_side_the_other() {
        let mut server = Server::new(Mode::Direct, Ipv4Addr::LOCALHOST, (30000, 30099));
        let offer = format!(
            "c1 {}",
            std::str::from_utf8(&{
                let mut v = Vec::new();
                dict(&[
                    ("command", s("offer")),
                    ("call-id", s("x")),
                    ("sdp", s(SDP)),
                ])
                .encode(&mut v);
                v
            })
            .unwrap()
        );
        let reply = server.handle(offer.as_bytes()).unwrap();
        let body = reply.strip_prefix(b"c1 ").unwrap();
        let (answer, _) = Bencode::decode(body).unwrap();
        assert_eq!(answer.get_str("result").as_deref(), Some("ok"));
        let sdp = answer.get_str("sdp").unwrap();
        assert_eq!(sdp_media(&sdp), Some("127.0.0.5:9600".parse().unwrap()));
    }

    #[test]
    fn garbage_gets_an_error_answer_not_a_panic() {
        let mut server = Server::new(Mode::Direct, Ipv4Addr::LOCALHOST, (30000, 30099));
        assert!(server.handle(b"nospace").is_none());
        for bad in [
            &b"c d3:sdp"[..],
            b"c i1e",
            b"c d7:command5:offere",
            b"c d7:command6:answer7:call-id1:x3:sdp1:xe",
        ] {
            let reply = server.handle(bad).unwrap();
            let (answer, _) = Bencode::decode(reply.strip_prefix(b"c ").unwrap()).unwrap();
            assert_eq!(
                answer.get_str("result").as_deref(),
                Some("error"),
                "{bad:?}"
            );
        }
    }
}
