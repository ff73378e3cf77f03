//! Signalling through sas-router, hand-built SIP over UDP: the generator is the SIP trunk
//! (INVITE with SDP to the service number, from the trunk address 127.0.0.1) and every
//! registered seat (digest REGISTER, 200 with SDP to the router's INVITEs, 200 to its BYEs).
//!
//! Call `i` is placed from caller number `06{i:08}`; the router passes the number on to the
//! seat it picks, which is how the seat side knows which call an INVITE belongs to (its media
//! endpoint is then seat endpoint `i`). Requests are retransmitted every 500 ms until
//! answered, as RFC 3261 timers A/E would, up to 7 times; then the call counts as timed out
//! and failed (set-up never waits past its last retransmission). INVITEs are paced at the
//! rate asked and at most [`MAX_SETTING_UP`] calls are being set up at once, so a slow
//! router sees the load back off instead of a growing retransmission storm; refusals (503
//! when its RTP ports or admission ran out) are counted by status code. One thread, two
//! sockets (trunk and seats), nonblocking.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context;
use sas_router::sip::digest::{DigestAlgorithm, QopAuth, compute_response, ha1};

use crate::Setup;
use crate::batch::wait_readable;
use crate::rtp::{SIDES, endpoint_ip};
use crate::sdp_text::sdp_media;
use crate::sip_text::{first_line, headers, param, response};

const RETRANSMIT: Duration = Duration::from_millis(500);
const TRIES: u32 = 7;
/// A call not bridged this long after its INVITE (answered by the router but no seat rung,
/// say) has failed: the set-up does not wait for it.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Calls INVITEd and not yet bridged or failed, at most.
const MAX_SETTING_UP: usize = 200;
/// Failures told one by one on stderr; the rest are only counted.
const FAILURES_TOLD: u64 = 5;

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Trunk,
    Seat,
}

/// A request waiting for its answer (or a 200 waiting for its ACK).
struct Pending {
    text: String,
    via: Via,
    sent: Instant,
    tries: u32,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum CallState {
    Idle,
    Inviting,
    /// The router answered the trunk (it may answer before a seat does: greeting).
    Answered,
    Failed,
    Ended,
}

struct Call {
    state: CallState,
    /// The router's media address for the caller leg, the dialog's To tag and Contact.
    media: Option<SocketAddrV4>,
    to_tag: String,
    contact: String,
    /// The seat side: the router's media address for the seat leg, ACK received.
    seat_media: Option<SocketAddrV4>,
    seat_acked: bool,
    invited: Option<Instant>,
}

/// The trunk and the seats, talking to one router.
pub struct RouterSip {
    trunk: UdpSocket,
    seat: UdpSocket,
    router: SocketAddr,
    calls: Vec<Call>,
    prefix: String,
    password: String,
    service: String,
    rtp_port: u16,
    pending: HashMap<String, Pending>,
    /// Seat INVITE Call-ID → call index.
    seat_calls: HashMap<String, usize>,
    registered: usize,
    /// Seat INVITEs whose caller number named no call of ours.
    pub unknown_invites: u64,
    /// Refusals by status code, timeouts and retransmissions (the set-up's and hang-up's).
    refused: BTreeMap<String, u64>,
    timeouts: u64,
    retransmits: u64,
    tag: u32,
}

impl RouterSip {
    pub fn new(
        router: SocketAddr,
        calls: usize,
        prefix: &str,
        password: &str,
        service: &str,
        rtp_port: u16,
    ) -> io::Result<Self> {
        let trunk = UdpSocket::bind("127.0.0.1:0")?;
        let seat = UdpSocket::bind("127.0.0.1:0")?;
        for s in [&trunk, &seat] {
            s.set_nonblocking(true)?;
        }
        let calls = (0..calls)
            .map(|_| Call {
                state: CallState::Idle,
                media: None,
                to_tag: String::new(),
                contact: String::new(),
                seat_media: None,
                seat_acked: false,
                invited: None,
            })
            .collect();
        Ok(RouterSip {
            trunk,
            seat,
            router,
            calls,
            prefix: prefix.to_owned(),
            password: password.to_owned(),
            service: service.to_owned(),
            rtp_port,
            pending: HashMap::new(),
            seat_calls: HashMap::new(),
            registered: 0,
            unknown_invites: 0,
            refused: BTreeMap::new(),
            timeouts: 0,
            retransmits: 0,
            tag: std::process::id(),
        })
    }

    /// Registers one seat per call; how many got their 200.
    pub fn register(&mut self, rate: u32, deadline: Duration) -> anyhow::Result<usize> {
        let n = self.calls.len();
        let end = Instant::now() + deadline;
        let mut next = 0;
        let start = Instant::now();
        while self.registered < n && Instant::now() < end {
            // Paced, and at most 200 in flight.
            let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as usize + 1;
            while next < n.min(due) && self.pending.len() < 200 {
                let text = self.register_request(next, 1, None);
                self.send(format!("reg-{next}"), text, Via::Seat)?;
                next += 1;
            }
            self.step()?;
        }
        Ok(self.registered)
    }

    /// Places every call at `rate` per second; returns once each is bridged (the router
    /// answered the trunk and a seat ACKed our 200) or failed, or at `deadline`.
    pub fn call(&mut self, rate: u32, deadline: Duration) -> anyhow::Result<Setup> {
        let n = self.calls.len();
        let end = Instant::now() + deadline;
        let start = Instant::now();
        let (mut next, mut settled) = (0, 0);
        loop {
            let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as usize + 1;
            while next < n.min(due) && next - settled < MAX_SETTING_UP {
                let text = self.invite(next);
                self.calls[next].state = CallState::Inviting;
                self.calls[next].invited = Some(Instant::now());
                self.send(format!("inv-{next}"), text, Via::Trunk)?;
                next += 1;
            }
            self.step()?;
            settled = 0;
            for i in 0..next {
                let c = &self.calls[i];
                let bridged = c.state == CallState::Answered && c.seat_acked;
                if !bridged
                    && c.state != CallState::Failed
                    && c.invited.is_some_and(|t| t.elapsed() > SETUP_TIMEOUT)
                {
                    self.calls[i].state = CallState::Failed;
                    self.count_failure(i, "timeout", "not bridged within the set-up timeout");
                }
                let c = &self.calls[i];
                settled += usize::from(c.state == CallState::Failed || bridged);
            }
            if (next == n && settled == n) || Instant::now() >= end {
                break;
            }
        }
        let mut setup = Setup::new(n);
        for (i, c) in self.calls.iter().enumerate() {
            if c.state == CallState::Answered && c.seat_acked {
                setup.bridged += 1;
                setup.caller[i] = c.media;
                setup.seat[i] = c.seat_media;
            } else {
                setup.failed += 1;
            }
        }
        setup.refused = self.refused.clone();
        (setup.timeouts, setup.retransmits) = (self.timeouts, self.retransmits);
        Ok(setup)
    }

    /// Counts a failure of call `i` (`why`: a status code, or "timeout"); tells the first few.
    fn count_failure(&mut self, i: usize, why: &str, detail: &str) {
        let told = self.refused.values().sum::<u64>() + self.timeouts;
        if why == "timeout" {
            self.timeouts += 1;
        } else {
            *self.refused.entry(why.to_owned()).or_default() += 1;
        }
        if told < FAILURES_TOLD {
            eprintln!("call {i}: {detail}");
        } else if told == FAILURES_TOLD {
            eprintln!("(further failures only counted)");
        }
    }

    /// Hangs up (BYE from the trunk) every call the router answered; how many got their 200.
    pub fn hang_up(&mut self, rate: u32, deadline: Duration) -> anyhow::Result<usize> {
        let end = Instant::now() + deadline;
        let start = Instant::now();
        let answered: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls[i].state == CallState::Answered)
            .collect();
        let mut next = 0;
        loop {
            let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as usize + 1;
            while next < answered.len().min(due) {
                let i = answered[next];
                let text = self.in_dialog(i, "BYE", 2);
                self.send(format!("bye-{i}"), text, Via::Trunk)?;
                next += 1;
            }
            self.step()?;
            let open = answered
                .iter()
                .filter(|&&i| self.calls[i].state == CallState::Answered)
                .count();
            if (next == answered.len() && open == 0) || Instant::now() >= end {
                break;
            }
        }
        Ok(answered
            .iter()
            .filter(|&&i| self.calls[i].state == CallState::Ended)
            .count())
    }

    /// Handles what arrived, retransmits what is due, waits a little.
    fn step(&mut self) -> anyhow::Result<()> {
        let mut buf = [0u8; 65535];
        let mut got = false;
        for via in [Via::Trunk, Via::Seat] {
            let socket = if via == Via::Trunk {
                &self.trunk
            } else {
                &self.seat
            };
            match socket.recv(&mut buf) {
                Ok(n) => {
                    got = true;
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.on_message(via, &text)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("SIP recv"),
            }
        }
        self.retransmit()?;
        if !got {
            wait_readable(
                &[&self.trunk, &self.seat],
                Instant::now() + Duration::from_millis(5),
            )?;
        }
        Ok(())
    }

    fn on_message(&mut self, via: Via, text: &str) -> anyhow::Result<()> {
        let call_id = headers(text, "Call-ID")
            .first()
            .copied()
            .unwrap_or_default();
        if let Some(status) = text.strip_prefix("SIP/2.0 ") {
            let code: u16 = status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            let cseq = headers(text, "CSeq").first().copied().unwrap_or_default();
            if let Some(seat) = call_id.strip_prefix("reg-") {
                let seat: usize = seat.split('-').next().unwrap_or("").parse()?;
                return self.on_register_response(seat, code, text);
            }
            let Some(i) = call_index(call_id) else {
                return Ok(());
            };
            if cseq.ends_with("INVITE") {
                self.on_invite_response(i, code, text)?;
            } else if cseq.ends_with("BYE") && code >= 200 {
                self.pending.remove(&format!("bye-{i}"));
                self.calls[i].state = CallState::Ended;
            }
            return Ok(());
        }
        if via == Via::Seat {
            self.on_seat_request(text, call_id)?;
        } else {
            // The router hanging up the trunk leg (seat gone, timeout): answer, mark it.
            let method = text.split(' ').next().unwrap_or_default();
            self.reply(Via::Trunk, response(text, "200 OK", None, None))?;
            if method == "BYE"
                && let Some(i) = call_index(call_id)
            {
                self.calls[i].state = CallState::Failed;
            }
        }
        Ok(())
    }

    fn on_register_response(&mut self, seat: usize, code: u16, text: &str) -> anyhow::Result<()> {
        let key = format!("reg-{seat}");
        match code {
            401 | 407 => {
                let Some(challenge) = headers(text, "WWW-Authenticate")
                    .into_iter()
                    .chain(headers(text, "Proxy-Authenticate"))
                    .find(|c| c.contains("MD5"))
                else {
                    anyhow::bail!("REGISTER: no MD5 challenge in {}", first_line(text));
                };
                if self
                    .pending
                    .get(&key)
                    .is_some_and(|p| p.text.contains("Authorization"))
                {
                    anyhow::bail!("REGISTER of seat {seat} refused: wrong password?");
                }
                let auth = self.authorization(seat, challenge);
                let text = self.register_request(seat, 2, Some(auth));
                self.send(key, text, Via::Seat)?;
            }
            200..=299 => {
                if self.pending.remove(&key).is_some() {
                    self.registered += 1;
                }
            }
            100..=199 => {}
            _ => anyhow::bail!("REGISTER of seat {seat}: {}", first_line(text)),
        }
        Ok(())
    }

    fn on_invite_response(&mut self, i: usize, code: u16, text: &str) -> anyhow::Result<()> {
        match code {
            100..=199 => {
                // Provisional: the router has it; stop retransmitting (timer A).
                self.pending.remove(&format!("inv-{i}"));
            }
            200..=299 => {
                self.pending.remove(&format!("inv-{i}"));
                let to = headers(text, "To").first().copied().unwrap_or_default();
                let c = &mut self.calls[i];
                c.to_tag = param(to, "tag").to_owned();
                c.contact = headers(text, "Contact")
                    .first()
                    .map(|h| h.trim_start_matches('<').split('>').next().unwrap_or(""))
                    .unwrap_or("")
                    .to_owned();
                c.media = sdp_media(text);
                if c.state == CallState::Inviting {
                    c.state = CallState::Answered;
                }
                let ack = self.in_dialog(i, "ACK", 1);
                self.reply(Via::Trunk, ack)?;
            }
            _ => {
                self.pending.remove(&format!("inv-{i}"));
                // ACK of a final non-2xx: same branch as the INVITE (one transaction).
                let to = headers(text, "To").first().copied().unwrap_or_default();
                let ack = self
                    .invite(i)
                    .split("\r\n\r\n")
                    .next()
                    .unwrap_or_default()
                    .replacen("INVITE ", "ACK ", 1)
                    .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
                    .lines()
                    .map(|l| {
                        if l.starts_with("To:") {
                            format!("To: {to}")
                        } else {
                            l.to_owned()
                        }
                    })
                    .filter(|l| !l.starts_with("Content-"))
                    .collect::<Vec<_>>()
                    .join("\r\n");
                self.reply(Via::Trunk, format!("{ack}\r\nContent-Length: 0\r\n\r\n"))?;
                if self.calls[i].state == CallState::Inviting {
                    self.calls[i].state = CallState::Failed;
                    self.count_failure(i, &code.to_string(), first_line(text));
                }
            }
        }
        Ok(())
    }

    /// A request to a seat: INVITE answered 200 with our SDP, ACK noted, anything else 200.
    fn on_seat_request(&mut self, text: &str, call_id: &str) -> anyhow::Result<()> {
        let method = text.split(' ').next().unwrap_or_default();
        match method {
            "INVITE" => {
                let i = match self.seat_calls.get(call_id) {
                    Some(&i) => i,
                    None => {
                        let from = headers(text, "From").first().copied().unwrap_or_default();
                        let Some(i) = caller_of(from).filter(|&i| i < self.calls.len()) else {
                            self.unknown_invites += 1;
                            let busy = response(text, "486 Busy Here", Some("mg"), None);
                            return self.reply(Via::Seat, busy);
                        };
                        self.seat_calls.insert(call_id.to_owned(), i);
                        i
                    }
                };
                self.calls[i].seat_media = sdp_media(text);
                let ip = endpoint_ip(SIDES[1], i);
                let sdp = sdp(ip, self.rtp_port, "seat");
                let contact = format!("<sip:{}@{}>", self.seat_user(i), self.seat.local_addr()?);
                let ok = response(
                    text,
                    "200 OK",
                    Some(&format!("s{i}")),
                    Some((&contact, &sdp)),
                );
                self.send(format!("ok-{call_id}"), ok, Via::Seat)?;
            }
            "ACK" => {
                self.pending.remove(&format!("ok-{call_id}"));
                if let Some(&i) = self.seat_calls.get(call_id) {
                    self.calls[i].seat_acked = true;
                }
            }
            _ => self.reply(Via::Seat, response(text, "200 OK", None, None))?,
        }
        Ok(())
    }

    fn seat_user(&self, i: usize) -> String {
        format!("{}{i:04}", self.prefix)
    }

    fn register_request(&self, seat: usize, cseq: u32, auth: Option<String>) -> String {
        let user = self.seat_user(seat);
        let local = self.seat.local_addr().expect("bound");
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{r} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKreg{seat}x{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{r}>;tag=r{seat}\r\n\
             To: <sip:{user}@{r}>\r\n\
             Call-ID: reg-{seat}-{t}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Expires: 3600\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            r = self.router,
            t = self.tag,
        )
    }

    fn authorization(&self, seat: usize, challenge: &str) -> String {
        let user = self.seat_user(seat);
        let (realm, nonce) = (param(challenge, "realm"), param(challenge, "nonce"));
        let ha1 = ha1(DigestAlgorithm::Md5, &user, realm, &self.password);
        let uri = format!("sip:{}", self.router);
        let cnonce = format!("{:08x}", seat);
        let qop = challenge.contains("qop").then_some(QopAuth {
            nc: "00000001",
            cnonce: &cnonce,
        });
        let answer = compute_response(DigestAlgorithm::Md5, &ha1, nonce, "REGISTER", &uri, qop);
        let qop = if challenge.contains("qop") {
            format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\"")
        } else {
            String::new()
        };
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{answer}\", algorithm=MD5{qop}"
        )
    }

    fn invite(&self, i: usize) -> String {
        let local = self.trunk.local_addr().expect("bound");
        let sdp = sdp(endpoint_ip(SIDES[0], i), self.rtp_port, "trunk");
        format!(
            "INVITE sip:{s}@{r} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKinv{i}x{t}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:06{i:08}@{local}>;tag=c{i}\r\n\
             To: <sip:{s}@{r}>\r\n\
             Call-ID: mg-{i}-{t}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:06{i:08}@{local}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            s = self.service,
            r = self.router,
            t = self.tag,
            len = sdp.len(),
        )
    }

    /// ACK or BYE in call `i`'s dialog.
    fn in_dialog(&self, i: usize, method: &str, cseq: u32) -> String {
        let local = self.trunk.local_addr().expect("bound");
        let c = &self.calls[i];
        let uri = if c.contact.is_empty() {
            format!("sip:{}@{}", self.service, self.router)
        } else {
            c.contact.clone()
        };
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{m}{i}x{t}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:06{i:08}@{local}>;tag=c{i}\r\n\
             To: <sip:{s}@{r}>;tag={tag}\r\n\
             Call-ID: mg-{i}-{t}\r\n\
             CSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            m = method.to_ascii_lowercase(),
            s = self.service,
            r = self.router,
            t = self.tag,
            tag = c.to_tag,
        )
    }

    /// Sends a request to be retransmitted until `key` is settled.
    fn send(&mut self, key: String, text: String, via: Via) -> anyhow::Result<()> {
        self.reply(via, text.clone())?;
        self.pending.insert(
            key,
            Pending {
                text,
                via,
                sent: Instant::now(),
                tries: 1,
            },
        );
        Ok(())
    }

    /// Sends once.
    fn reply(&self, via: Via, text: String) -> anyhow::Result<()> {
        let socket = if via == Via::Trunk {
            &self.trunk
        } else {
            &self.seat
        };
        match socket.send_to(text.as_bytes(), self.router) {
            Ok(_) => Ok(()),
            // A full socket buffer loses this copy; the retransmission covers it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e).context("SIP send"),
        }
    }

    fn retransmit(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let (mut due, mut given_up) = (Vec::new(), Vec::new());
        self.pending.retain(|key, p| {
            if now.duration_since(p.sent) < RETRANSMIT {
                return true;
            }
            if p.tries >= TRIES {
                given_up.push(key.clone());
                return false;
            }
            p.tries += 1;
            p.sent = now;
            due.push((p.via, p.text.clone()));
            true
        });
        self.retransmits += due.len() as u64;
        for (via, text) in due {
            self.reply(via, text)?;
        }
        for key in given_up {
            self.give_up(&key);
        }
        Ok(())
    }

    /// No answer to `key` after every retransmission: its call failed (or, for a BYE, ended
    /// unanswered), so set-up and hang-up stop waiting for it.
    fn give_up(&mut self, key: &str) {
        let detail = format!("no answer to {key} after {TRIES} tries");
        let call = match key.split_once('-') {
            Some(("inv" | "bye", i)) => i.parse().ok(),
            Some(("ok", call_id)) => self.seat_calls.get(call_id).copied(),
            _ => None,
        };
        let Some(i) = call.filter(|&i| i < self.calls.len()) else {
            // A REGISTER: the seat stays unregistered, which register() reports.
            self.timeouts += 1;
            eprintln!("{detail}");
            return;
        };
        self.calls[i].state = CallState::Failed;
        self.count_failure(i, "timeout", &detail);
    }
}

/// An SDP offering or answering PCMA (and telephone-event) at `ip:port`.
pub fn sdp(ip: Ipv4Addr, port: u16, user: &str) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// Call index of one of our Call-IDs (`mg-{i}-{tag}`).
fn call_index(call_id: &str) -> Option<usize> {
    call_id.strip_prefix("mg-")?.split('-').next()?.parse().ok()
}

/// Call index of caller number `06{i:08}` in a From header.
fn caller_of(from: &str) -> Option<usize> {
    let user = from.split("sip:").nth(1)?.split(['@', ';', '>']).next()?;
    // The router may present the number in international form (+336…, 336…).
    let digits = user.trim_start_matches('+');
    let national = digits
        .strip_prefix("33")
        .map_or_else(|| digits.to_owned(), |rest| format!("0{rest}"));
    national.strip_prefix("06")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_number_names_the_call() {
        assert_eq!(caller_of("<sip:0600000042@127.0.0.1:5060>;tag=x"), Some(42));
        assert_eq!(caller_of("\"x\" <sip:+33600000042@h>"), Some(42));
        assert_eq!(caller_of("<sip:0144556677@h>"), None);
    }

    #[test]
    fn sdp_round_trip() {
        let s = sdp(Ipv4Addr::new(127, 10, 0, 3), 17400, "t");
        assert_eq!(sdp_media(&s), Some("127.10.0.3:17400".parse().unwrap()));
    }
}
