//! The RTP side: every call endpoint on one UDP socket, batched.
//!
//! All of 127.0.0.0/8 is loopback, so endpoint `i` of side `s` is the address
//! 127.`s`.`i >> 8`.`i & 255` on one shared port: one socket bound to 0.0.0.0:PORT sends from
//! any of them (`IP_PKTINFO`'s `ipi_spec_dst` per message) and receives for all of them
//! (`IP_PKTINFO`'s destination address tells which endpoint a packet is for). The relay
//! sees a distinct remote per leg, as with real phones, and there is no socket per endpoint.
//!
//! Two threads while the media streams: the sender ([`Outbox`]) splits each 20 ms period
//! into [`SUB_TICKS`] sub-ticks and sends a tenth of the endpoints in each (`sendmmsg`
//! batches), so 2,000 calls are ten bursts of 400 packets rather than one of 4,000, and
//! measures how late each sub-tick started; the receiver ([`Inbox`]) drains the socket with
//! `recvmmsg` and the kernel's receive timestamps (`SO_TIMESTAMPNS`, so when it reads does
//! not change the jitter), napping a millisecond when it is empty so each call reads a batch.
//! RTCP sent to PORT+1 is read and dropped on a second socket (nobody listening would make the
//! kernel answer every report with an ICMP error).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::batch::{BATCH, Batch, PACKET_LEN, RECV_BUF, setsockopt};
use crate::procfs::{
    ksoftirqd_cpu, process_cpu, rss_kib, runqueue_wait, socket_drops, softirq_time,
};
use crate::stats::{Lateness, RxStats};

/// The two sides of a call: the caller (trunk) and the seat.
pub const SIDES: [u8; 2] = [10, 20];
pub const PTIME: Duration = Duration::from_millis(20);
/// Sends per 20 ms period: endpoint `i` sends in sub-tick `i % SUB_TICKS`. One burst of every
/// endpoint per period (as before) took longer than a period at 2,000 calls on a loaded
/// machine, and overflowed socket buffers on the way.
pub const SUB_TICKS: usize = 10;
/// The receiver's pause when the socket is empty: long enough that the next `recvmmsg`
/// returns a batch, short against the receive buffer (64 MiB).
const RECV_NAP: Duration = Duration::from_millis(1);
/// How often the relay's RSS is sampled over the window.
const RSS_EVERY: Duration = Duration::from_millis(250);
/// A sender more than this behind skips sub-ticks rather than sending a backlog (the phone
/// skipped them); any skip flags the run.
const MAX_BEHIND: Duration = Duration::from_millis(40);

/// The address of endpoint `index` on `side` (one of [`SIDES`]).
pub fn endpoint_ip(side: u8, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, side, (index >> 8) as u8, index as u8)
}

/// What one endpoint sends: to where (the relay's port for its leg), how many so far, and
/// its stream's header fields.
#[derive(Debug, Default, Clone)]
pub struct Sender {
    pub remote: Option<SocketAddrV4>,
    pub sent: u64,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

/// What the streaming phase measured.
#[derive(Debug, Default)]
pub struct StreamReport {
    /// Packets received over the steady window, and its length.
    pub window_packets: u64,
    pub window: Duration,
    /// Packets sent and received over the window, by the generator itself.
    pub window_io: u64,
    /// The generator's own CPU (utime + stime of the process) over the window, and the time
    /// its threads were runnable but not running (a loaded machine starving it).
    pub gen_cpu: Duration,
    pub gen_starved: Duration,
    /// The relay's CPU over the window, and its RSS at the end (when a pid was given).
    pub relay_cpu: Option<Duration>,
    pub relay_rss_kib: Option<u64>,
    /// The relay's VmRSS averaged over the window (sampled every [`RSS_EVERY`]): whether
    /// the single sample at the end is typical of the window.
    pub relay_rss_mean_kib: Option<u64>,
    /// The kernel's share over the window: CPU of the ksoftirqd threads (softirq work
    /// deferred out of the sending processes' context), and softirq time machine-wide (from
    /// /proc/stat; most of it is already inside the generator's and the relay's CPU, where
    /// loopback runs it).
    pub ksoftirqd_cpu: Duration,
    pub softirq: Duration,
    /// The sender's side: how late its sub-ticks started, what it skipped.
    pub send: SendReport,
    /// Time spent receiving over the hold (the rest is napping).
    pub recv_time: Duration,
    /// Packets received outside the streaming phase (greetings before it), or for no known
    /// endpoint.
    pub stray: u64,
    /// Datagrams the kernel dropped on our socket (receive buffer full): not the relay's.
    pub socket_drops: u64,
}

impl StreamReport {
    /// Whether the generator could not keep its clock: it skipped sub-ticks, or its p99
    /// lateness is half a period (the jitter measured is then the generator's).
    pub fn generator_behind(&self) -> bool {
        self.send.skipped_ticks > 0 || self.send.lateness.percentile(99.0) >= PTIME / 2
    }
}

/// The sender's own measurements.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Delay between each sub-tick's due time and the start of its sends.
    pub lateness: Lateness,
    /// Sub-ticks skipped when more than [`MAX_BEHIND`] late, and the packets not sent.
    pub skipped_ticks: u64,
    pub skipped_packets: u64,
    /// Time spent sending (the rest is sleeping until the next sub-tick).
    pub send_time: Duration,
    /// Times a send found the socket's buffer full and waited.
    pub send_waits: u64,
}

/// The batched RTP engine over `2 * calls` endpoints (callers first, then seats).
pub struct Engine {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    pub outbox: Outbox,
    pub inbox: Inbox,
}

/// The sending half: every endpoint's stream.
pub struct Outbox {
    pub senders: Vec<Sender>,
    /// Payloads: 1 s of tone per side, 50 frames.
    tones: [Vec<[u8; 160]>; 2],
    calls: usize,
}

/// The receiving half: what every endpoint received.
pub struct Inbox {
    pub receivers: Vec<RxStats>,
    batch: Batch,
    calls: usize,
    /// Whether received packets count (the streaming phase).
    counting: bool,
    stray: u64,
    received_total: u64,
}

impl Engine {
    /// Binds 0.0.0.0:`port` (RTP) and `port + 1` (RTCP) for `calls` calls.
    pub fn bind(port: u16, calls: usize) -> io::Result<Self> {
        let rtp = UdpSocket::bind(("0.0.0.0", port))?;
        let rtcp = UdpSocket::bind(("0.0.0.0", port + 1))?;
        for s in [&rtp, &rtcp] {
            s.set_nonblocking(true)?;
        }
        let fd = rtp.as_raw_fd();
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        // Room for the receiver's naps and a descheduled moment: FORCE goes past rmem_max as
        // root.
        let want = 64 << 20;
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want).is_err() {
            setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, want)?;
        }
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 16 << 20).is_err() {
            setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 16 << 20)?;
        }
        let senders = (0..2 * calls)
            .map(|i| Sender {
                ssrc: 0x5a5a_0000 ^ (i as u32).wrapping_mul(2_654_435_761),
                seq: (i as u16).wrapping_mul(7919),
                ts: (i as u32).wrapping_mul(104_729),
                ..Sender::default()
            })
            .collect();
        Ok(Engine {
            rtp,
            rtcp,
            outbox: Outbox {
                senders,
                tones: [tone(1000.0), tone(440.0)],
                calls,
            },
            inbox: Inbox {
                receivers: vec![RxStats::default(); 2 * calls],
                batch: Batch::new(),
                calls,
                counting: false,
                stray: 0,
                received_total: 0,
            },
        })
    }

    /// Index into the endpoints of endpoint `index` on side 0 (caller) or 1 (seat).
    pub fn index(&self, side: usize, index: usize) -> usize {
        side * self.outbox.calls + index
    }

    /// The endpoint that sends to endpoint `i`: its call's other side.
    pub fn peer(&self, i: usize) -> usize {
        (i + self.outbox.calls) % (2 * self.outbox.calls)
    }

    /// Reads and drops whatever arrived (before and after the streaming phase).
    pub fn drain(&mut self) -> io::Result<()> {
        self.inbox.receive(&self.rtp, &self.rtcp)
    }

    /// Streams both ways for `hold`, measuring over the window that starts after `warm_up`,
    /// then keeps receiving for `linger` so packets in flight are counted.
    pub fn stream(
        &mut self,
        hold: Duration,
        warm_up: Duration,
        linger: Duration,
        relay_pid: Option<u32>,
    ) -> io::Result<StreamReport> {
        self.drain()?;
        let (rtp, rtcp, outbox, inbox) = (&self.rtp, &self.rtcp, &mut self.outbox, &mut self.inbox);
        inbox.counting = true;
        inbox.stray = 0;
        let start = Instant::now();
        let (window_start, window_end) = (start + warm_up, start + hold);
        let sent_total = AtomicU64::new(0);
        let mut report = StreamReport::default();
        let mut at_start: Option<(u64, u64, Duration, Option<Duration>)> = None;
        let mut starved0 = Duration::ZERO;
        let mut kernel0 = (Duration::ZERO, Duration::ZERO);
        let (mut rss_samples, mut next_rss) = (Vec::new(), window_start);
        report.send = thread::scope(|scope| -> io::Result<SendReport> {
            let sender = thread::Builder::new()
                .name("mediagen-send".into())
                .spawn_scoped(scope, || outbox.run(rtp, start, window_end, &sent_total))?;
            let received = (|| {
                loop {
                    let now = Instant::now();
                    if now >= window_start && at_start.is_none() {
                        at_start = Some((
                            inbox.received_total,
                            sent_total.load(Ordering::Relaxed),
                            process_cpu(None)?,
                            relay_pid.map(|p| process_cpu(Some(p))).transpose()?,
                        ));
                        starved0 = runqueue_wait();
                        kernel0 = (ksoftirqd_cpu(), softirq_time());
                    }
                    if now >= window_end {
                        return Ok(());
                    }
                    if now >= next_rss {
                        rss_samples.extend(relay_pid.and_then(rss_kib));
                        next_rss += RSS_EVERY;
                    }
                    let t = Instant::now();
                    inbox.receive(rtp, rtcp)?;
                    report.recv_time += t.elapsed();
                    thread::sleep(RECV_NAP.min(window_end.saturating_duration_since(now)));
                }
            })();
            let sent = sender
                .join()
                .map_err(|_| io::Error::other("the sending thread panicked"))?;
            received.and(sent)
        })?;
        let (r0, s0, g0, p0) = at_start.unwrap_or_default();
        report.window = window_end - window_start;
        report.window_packets = inbox.received_total - r0;
        report.window_io = report.window_packets + sent_total.load(Ordering::Relaxed) - s0;
        report.gen_cpu = process_cpu(None)? - g0;
        report.gen_starved = runqueue_wait().saturating_sub(starved0);
        report.ksoftirqd_cpu = ksoftirqd_cpu().saturating_sub(kernel0.0);
        report.softirq = softirq_time().saturating_sub(kernel0.1);
        if let (Some(pid), Some(p0)) = (relay_pid, p0) {
            report.relay_cpu = Some(process_cpu(Some(pid))? - p0);
            report.relay_rss_kib = rss_kib(pid);
            let samples = rss_samples.len() as u64;
            report.relay_rss_mean_kib =
                (samples > 0).then(|| rss_samples.iter().sum::<u64>() / samples);
        }
        let end = Instant::now() + linger;
        while Instant::now() < end {
            inbox.receive(rtp, rtcp)?;
            thread::sleep(RECV_NAP);
        }
        inbox.counting = false;
        report.stray = inbox.stray;
        report.socket_drops = socket_drops(rtp).unwrap_or(0);
        Ok(report)
    }
}

impl Outbox {
    /// Sends every endpoint's packets, sub-tick by sub-tick, from `start` until `end`.
    fn run(
        &mut self,
        socket: &UdpSocket,
        start: Instant,
        end: Instant,
        sent_total: &AtomicU64,
    ) -> io::Result<SendReport> {
        let mut batch = Batch::new();
        let mut r = SendReport::default();
        let slot = PTIME / SUB_TICKS as u32;
        let (mut due, mut k) = (start, 0);
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(r);
            }
            if now < due {
                thread::sleep(due - now);
                continue;
            }
            r.lateness.record(now - due);
            let sent = self.send_sub_tick(k, socket, &mut batch, &mut r.send_waits)?;
            sent_total.fetch_add(sent, Ordering::Relaxed);
            r.send_time += now.elapsed();
            due += slot;
            k = (k + 1) % SUB_TICKS;
            let behind = Instant::now().saturating_duration_since(due);
            if behind > MAX_BEHIND {
                let skip = (behind.as_nanos() / slot.as_nanos()) as usize;
                r.skipped_ticks += skip as u64;
                r.skipped_packets += (0..skip)
                    .map(|s| self.active_in((k + s) % SUB_TICKS))
                    .sum::<u64>();
                due += slot * skip as u32;
                k = (k + skip) % SUB_TICKS;
            }
        }
    }

    /// Endpoints of sub-tick `k` that have somewhere to send.
    fn active_in(&self, k: usize) -> u64 {
        let n = self.senders.iter().skip(k).step_by(SUB_TICKS);
        n.filter(|s| s.remote.is_some()).count() as u64
    }

    /// Sends one packet from every endpoint of sub-tick `k` that has a remote, in
    /// `sendmmsg` batches; how many.
    fn send_sub_tick(
        &mut self,
        k: usize,
        socket: &UdpSocket,
        batch: &mut Batch,
        waits: &mut u64,
    ) -> io::Result<u64> {
        let (mut n, mut total) = (0, 0);
        for i in (k..self.senders.len()).step_by(SUB_TICKS) {
            let Some(remote) = self.senders[i].remote else {
                continue;
            };
            let side = usize::from(i >= self.calls);
            let e = &mut self.senders[i];
            let frame = &self.tones[side][(e.sent % 50) as usize];
            let packet = &mut batch.bufs[n];
            packet[0] = 0x80;
            packet[1] = 8 | if e.sent == 0 { 0x80 } else { 0 };
            packet[2..4].copy_from_slice(&e.seq.to_be_bytes());
            packet[4..8].copy_from_slice(&e.ts.to_be_bytes());
            packet[8..12].copy_from_slice(&e.ssrc.to_be_bytes());
            packet[12..PACKET_LEN].copy_from_slice(frame);
            e.seq = e.seq.wrapping_add(1);
            e.ts = e.ts.wrapping_add(160);
            e.sent += 1;
            batch.set_out(n, endpoint_ip(SIDES[side], i % self.calls), remote);
            n += 1;
            if n == BATCH {
                *waits += batch.send_all(socket, n)?;
                (total, n) = (total + n as u64, 0);
            }
        }
        if n > 0 {
            *waits += batch.send_all(socket, n)?;
            total += n as u64;
        }
        Ok(total)
    }
}

impl Inbox {
    /// Receives until the socket is empty; RTCP is read and dropped.
    fn receive(&mut self, rtp: &UdpSocket, rtcp: &UdpSocket) -> io::Result<()> {
        let mut sink = [0u8; RECV_BUF];
        while rtcp.recv(&mut sink).is_ok() {}
        loop {
            let n = self.batch.recv_some(rtp)?;
            for m in 0..n {
                let (dst, len, arrival_ns) = self.batch.incoming(m);
                self.on_packet(dst, m, len, arrival_ns);
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }

    fn on_packet(&mut self, dst: Ipv4Addr, m: usize, len: usize, arrival_ns: u64) {
        let [_, side, hi, lo] = dst.octets();
        let index = usize::from(hi) << 8 | usize::from(lo);
        let packet = &self.batch.bufs[m][..len];
        let side = SIDES.iter().position(|&s| s == side);
        let (Some(side), true, true) = (side, index < self.calls, len >= 12) else {
            self.stray += 1;
            return;
        };
        if !self.counting || packet[0] >> 6 != 2 {
            self.stray += 1;
            return;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        self.receivers[side * self.calls + index].on_packet(seq, ts, arrival_ns);
        self.received_total += 1;
    }
}

/// 50 frames (1 s) of an A-law tone at `hz`, at a quarter of full scale.
fn tone(hz: f64) -> Vec<[u8; 160]> {
    let law = sas_core::media::g711::G711Law::Alaw;
    (0..50)
        .map(|f| {
            let mut frame = [0u8; 160];
            for (i, b) in frame.iter_mut().enumerate() {
                let t = (f * 160 + i) as f64 / 8000.0;
                *b = law.encode((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16);
            }
            frame
        })
        .collect()
}
