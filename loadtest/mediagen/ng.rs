//! rtpengine's ng control protocol: bencoded dictionaries over UDP, each request prefixed by
//! a cookie its answer repeats. Per call an `offer` with the caller's SDP (rtpengine answers
//! with its own port for the caller), an `answer` with the seat's SDP (its port for the
//! seat), and a `delete` at the end: what a SIP proxy in front of rtpengine sends.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::Setup;
use crate::bencode::{Bencode, dict, s};
use crate::rtp::{SIDES, endpoint_ip};
use crate::sdp_text::sdp_media;
use crate::sip::sdp;

/// Sends of one ng request before giving up (500 ms apart).
const TRIES: u32 = 10;

/// Why an ng request failed.
enum NgError {
    /// No answer to any try.
    Silent,
    /// An answer that is not ok: rtpengine's reason.
    Refused(String),
}

/// A client of one rtpengine's ng port.
pub struct Ng {
    socket: UdpSocket,
    cookie: u64,
}

impl Ng {
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(Ng { socket, cookie: 0 })
    }

    /// Sends `request`, retrying on silence; the answer, an error if its result is not ok.
    pub fn request(&mut self, request: &Bencode) -> anyhow::Result<Bencode> {
        match self.request_tries(request).0 {
            Ok(answer) => Ok(answer),
            Err(NgError::Silent) => bail!("rtpengine does not answer on its ng port"),
            Err(NgError::Refused(why)) => bail!("{why}"),
        }
    }

    /// [`Ng::request`] and how many times it was sent.
    fn request_tries(&mut self, request: &Bencode) -> (Result<Bencode, NgError>, u32) {
        self.cookie += 1;
        let cookie = format!("{}_{}", std::process::id(), self.cookie);
        let mut out = format!("{cookie} ").into_bytes();
        request.encode(&mut out);
        let mut buf = vec![0u8; 65535];
        for tries in 1..=TRIES {
            // Refused (ICMP: nothing listening yet, rtpengine starting) comes back at once.
            let n = match self
                .socket
                .send(&out)
                .and_then(|_| self.socket.recv(&mut buf))
            {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                }
                Err(_) => continue,
            };
            let Some(body) = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()) else {
                continue; // an answer to an earlier try
            };
            let answer = match Bencode::decode(body) {
                Ok((answer, _)) => answer,
                Err(e) => return (Err(NgError::Refused(format!("bad ng answer: {e}"))), tries),
            };
            let result = match answer.get_str("result").as_deref() {
                Some("ok" | "pong") => Ok(answer),
                _ => Err(NgError::Refused(format!(
                    "rtpengine: {}",
                    answer
                        .get_str("error-reason")
                        .unwrap_or_else(|| format!("{answer:?}"))
                ))),
            };
            return (result, tries);
        }
        (Err(NgError::Silent), TRIES)
    }

    /// [`Ng::request`], counting retransmissions and timeouts into `setup`; a timeout is
    /// an error whose reason is "timeout".
    fn request_counted(&mut self, request: &Bencode, setup: &mut Setup) -> Result<Bencode, String> {
        let (result, tries) = self.request_tries(request);
        setup.retransmits += u64::from(tries.saturating_sub(1));
        match result {
            Ok(answer) => Ok(answer),
            Err(NgError::Silent) => {
                setup.timeouts += 1;
                Err("timeout".into())
            }
            Err(NgError::Refused(why)) => Err(why),
        }
    }

    /// Pings until rtpengine answers: on a loaded machine it took more than the 3-5 s of
    /// one request's tries to open its ng port.
    pub fn ping(&mut self) -> anyhow::Result<()> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            match self.request(&dict(&[("command", s("ping"))])) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= end => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Offer and answer for every call, `rate` calls a second: caller `i` at caller endpoint
    /// `i`, seat at seat endpoint `i`, both on `rtp_port`. A call rtpengine refuses or does
    /// not answer fails and is counted; the others go on.
    pub fn setup(&mut self, calls: usize, rtp_port: u16, rate: u32) -> anyhow::Result<Setup> {
        let mut setup = Setup::new(calls);
        let tag = std::process::id();
        let start = Instant::now();
        for i in 0..calls {
            let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate.max(1)));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let call_id = format!("mg-{i}-{tag}");
            let common = |command: &str, body: String| {
                let mut d = vec![
                    ("command", s(command)),
                    ("call-id", s(&call_id)),
                    ("from-tag", s(&format!("c{i}"))),
                    ("sdp", s(&body)),
                    (
                        "replace",
                        Bencode::List(vec![s("origin"), s("session-connection")]),
                    ),
                ];
                if command == "answer" {
                    d.push(("to-tag", s(&format!("s{i}"))));
                }
                dict(&d)
            };
            let offer = common("offer", sdp(endpoint_ip(SIDES[0], i), rtp_port, "trunk"));
            let answer = common("answer", sdp(endpoint_ip(SIDES[1], i), rtp_port, "seat"));
            let answers = self
                .request_counted(&offer, &mut setup)
                .and_then(|to_seat| Ok((to_seat, self.request_counted(&answer, &mut setup)?)));
            let (to_seat, to_caller) = match answers {
                Ok(a) => a,
                Err(why) => {
                    if setup.failed < 5 {
                        eprintln!("call {i}: {why}");
                    }
                    if why != "timeout" {
                        *setup.refused.entry(why).or_default() += 1;
                    }
                    setup.failed += 1;
                    continue;
                }
            };
            // The offer's result is what the seat is sent (rtpengine's port for the seat);
            // the answer's, what the caller is sent.
            setup.seat[i] = to_seat.get_str("sdp").as_deref().and_then(sdp_media);
            setup.caller[i] = to_caller.get_str("sdp").as_deref().and_then(sdp_media);
            if setup.seat[i].is_some() && setup.caller[i].is_some() {
                setup.bridged += 1;
            } else {
                setup.failed += 1;
            }
        }
        Ok(setup)
    }

    /// Deletes every call; how many rtpengine knew.
    pub fn delete(&mut self, calls: usize) -> usize {
        let tag = std::process::id();
        (0..calls)
            .filter(|i| {
                let d = dict(&[
                    ("command", s("delete")),
                    ("call-id", s(&format!("mg-{i}-{tag}"))),
                    ("from-tag", s(&format!("c{i}"))),
                ]);
                self.request(&d).is_ok()
            })
            .count()
    }
}
