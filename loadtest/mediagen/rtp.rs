//! The RTP side: every call endpoint on one UDP socket, batched.
//!
//! All of 127.0.0.0/8 is loopback, so endpoint `i` of side `s` is the address
//! 127.`s`.`i >> 8`.`i & 255` on one shared port: one socket bound to 0.0.0.0:PORT sends from
//! any of them (`IP_PKTINFO`'s `ipi_spec_dst` per message) and receives for all of them
//! (`IP_PKTINFO`'s destination address tells which endpoint a packet is for). The relay
//! sees a distinct remote per leg, as with real phones, and there is no socket per endpoint.
//!
//! One thread, one timer tick per 20 ms: every due packet goes out in `sendmmsg` batches;
//! between ticks `recvmmsg` drains the socket with kernel receive timestamps
//! (`SO_TIMESTAMPNS`) for the jitter. RTCP sent to PORT+1 is read and dropped on a second
//! socket (nobody listening would make the kernel answer every report with an ICMP error).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::stats::RxStats;

/// The two sides of a call: the caller (trunk) and the seat.
pub const SIDES: [u8; 2] = [10, 20];
/// RTP packet: 12-byte header + 20 ms of G.711 at 8 kHz.
const PACKET_LEN: usize = 12 + 160;
const PTIME: Duration = Duration::from_millis(20);
/// Messages per `sendmmsg` / `recvmmsg` call (the kernel's UIO_MAXIOV is 1024).
const BATCH: usize = 512;
const RECV_BUF: usize = 2048;
/// Enough for one `in_pktinfo` and one `timespec` control message (u64 for alignment).
const CMSG_WORDS: usize = 16;

/// The address of endpoint `index` on `side` (one of [`SIDES`]).
pub fn endpoint_ip(side: u8, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, side, (index >> 8) as u8, index as u8)
}

/// One call endpoint: where it sends (the relay's port for its leg), what it sent, what it
/// received while the stream ran.
#[derive(Debug, Default, Clone)]
pub struct Endpoint {
    pub remote: Option<SocketAddrV4>,
    /// Index of the endpoint that sends to this one (its call's other side), if known.
    pub peer: Option<usize>,
    pub sent: u64,
    pub rx: RxStats,
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
    /// The generator's own CPU (utime + stime of the process) over the window.
    pub gen_cpu: Duration,
    /// The relay's CPU over the window, and its RSS at the end (when a pid was given).
    pub relay_cpu: Option<Duration>,
    pub relay_rss_kib: Option<u64>,
    /// Ticks that started more than one period late, and ticks skipped when several periods
    /// late (the generator was not scheduled in time: a loaded machine).
    pub late_ticks: u64,
    pub skipped_ticks: u64,
    /// Time spent sending and receiving over the whole hold (the rest is waiting).
    pub send_time: Duration,
    pub recv_time: Duration,
    /// Times a send found the socket's buffer full and waited.
    pub send_waits: u64,
    /// Packets received outside the streaming phase (greetings before it), or for no known
    /// endpoint.
    pub stray: u64,
    /// Datagrams the kernel dropped on our socket (receive buffer full): not the relay's.
    pub socket_drops: u64,
}

/// The batched RTP engine over `2 * calls` endpoints (callers first, then seats).
pub struct Engine {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    pub endpoints: Vec<Endpoint>,
    calls: usize,
    /// Payloads: 1 s of tone per side, 50 frames.
    tones: [Vec<[u8; 160]>; 2],
    send: Batch,
    recv: Batch,
    /// Whether received packets count (the streaming phase).
    counting: bool,
    stray: u64,
    /// `sendmmsg` calls that found the socket's send buffer full.
    send_waits: u64,
    received_total: u64,
    sent_total: u64,
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
        // A tick's burst (one packet per endpoint) must fit: FORCE goes past rmem_max as root.
        let want = 64 << 20;
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want).is_err() {
            setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, want)?;
        }
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 16 << 20).is_err() {
            setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 16 << 20)?;
        }
        let mut endpoints = vec![Endpoint::default(); 2 * calls];
        for (i, e) in endpoints.iter_mut().enumerate() {
            e.ssrc = 0x5a5a_0000 ^ (i as u32).wrapping_mul(2_654_435_761);
            e.seq = (i as u16).wrapping_mul(7919);
            e.ts = (i as u32).wrapping_mul(104_729);
        }
        Ok(Engine {
            rtp,
            rtcp,
            endpoints,
            calls,
            tones: [tone(1000.0), tone(440.0)],
            send: Batch::new(),
            recv: Batch::new(),
            counting: false,
            stray: 0,
            send_waits: 0,
            received_total: 0,
            sent_total: 0,
        })
    }

    /// Index into `endpoints` of endpoint `index` on side 0 (caller) or 1 (seat).
    pub fn index(&self, side: usize, index: usize) -> usize {
        side * self.calls + index
    }

    /// Reads and drops whatever arrived (before and after the streaming phase).
    pub fn drain(&mut self) -> io::Result<()> {
        self.receive()
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
        self.counting = true;
        self.stray = 0;
        let start = Instant::now();
        let (window_start, window_end) = (start + warm_up, start + hold);
        let mut report = StreamReport::default();
        let mut at_start: Option<(u64, u64, Duration, Option<Duration>)> = None;
        let mut next_tick = start;
        loop {
            let now = Instant::now();
            if now >= window_start && at_start.is_none() {
                at_start = Some((
                    self.received_total,
                    self.sent_total,
                    process_cpu(None)?,
                    relay_pid.map(|p| process_cpu(Some(p))).transpose()?,
                ));
            }
            if now >= window_end {
                break;
            }
            if now >= next_tick {
                if now >= next_tick + PTIME {
                    report.late_ticks += 1;
                }
                let t = Instant::now();
                self.send_tick()?;
                report.send_time += t.elapsed();
                next_tick += PTIME;
                // Descheduled for several periods (a loaded machine): send one burst, not a
                // backlog that would starve the receiving below; the phone skipped them.
                if now >= next_tick + 2 * PTIME {
                    let behind = (now - next_tick).as_nanos() / PTIME.as_nanos();
                    report.skipped_ticks += behind as u64;
                    next_tick += PTIME * behind as u32;
                }
            }
            let t = Instant::now();
            self.receive()?;
            report.recv_time += t.elapsed();
            wait_readable(&[&self.rtp, &self.rtcp], next_tick.min(window_end))?;
        }
        let (r0, s0, g0, p0) = at_start.unwrap_or_default();
        report.window = window_end - window_start;
        report.window_packets = self.received_total - r0;
        report.window_io = report.window_packets + self.sent_total - s0;
        report.gen_cpu = process_cpu(None)? - g0;
        if let (Some(pid), Some(p0)) = (relay_pid, p0) {
            report.relay_cpu = Some(process_cpu(Some(pid))? - p0);
            report.relay_rss_kib = rss_kib(pid);
        }
        let end = Instant::now() + linger;
        while Instant::now() < end {
            self.receive()?;
            wait_readable(&[&self.rtp, &self.rtcp], end)?;
        }
        self.counting = false;
        report.late_ticks = report.late_ticks.saturating_sub(1);
        report.stray = self.stray;
        report.send_waits = self.send_waits;
        report.socket_drops = socket_drops(&self.rtp).unwrap_or(0);
        Ok(report)
    }

    /// Sends one packet from every endpoint that has a remote, in `sendmmsg` batches.
    fn send_tick(&mut self) -> io::Result<()> {
        let mut n = 0;
        for i in 0..self.endpoints.len() {
            let Some(remote) = self.endpoints[i].remote else {
                continue;
            };
            let side = usize::from(i >= self.calls);
            let src = endpoint_ip(SIDES[side], i % self.calls);
            let e = &mut self.endpoints[i];
            let frame = &self.tones[side][(e.sent % 50) as usize];
            let packet = &mut self.send.bufs[n];
            packet[0] = 0x80;
            packet[1] = 8 | if e.sent == 0 { 0x80 } else { 0 };
            packet[2..4].copy_from_slice(&e.seq.to_be_bytes());
            packet[4..8].copy_from_slice(&e.ts.to_be_bytes());
            packet[8..12].copy_from_slice(&e.ssrc.to_be_bytes());
            packet[12..PACKET_LEN].copy_from_slice(frame);
            e.seq = e.seq.wrapping_add(1);
            e.ts = e.ts.wrapping_add(160);
            e.sent += 1;
            self.send.set_out(n, src, remote);
            n += 1;
            if n == BATCH {
                self.send_waits += self.send.send_all(&self.rtp, n)?;
                self.sent_total += n as u64;
                n = 0;
            }
        }
        if n > 0 {
            self.send_waits += self.send.send_all(&self.rtp, n)?;
            self.sent_total += n as u64;
        }
        Ok(())
    }

    /// Receives until the socket is empty; RTCP is read and dropped.
    fn receive(&mut self) -> io::Result<()> {
        let mut sink = [0u8; RECV_BUF];
        while self.rtcp.recv(&mut sink).is_ok() {}
        loop {
            let n = self.recv.recv_some(&self.rtp)?;
            for m in 0..n {
                let (dst, len, arrival_ns) = self.recv.incoming(m);
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
        let packet = &self.recv.bufs[m][..len];
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
        let i = self.index(side, index);
        self.endpoints[i].rx.on_packet(seq, ts, arrival_ns);
        self.received_total += 1;
    }
}

/// Buffers and headers for one `sendmmsg` / `recvmmsg` batch. The headers point into the
/// other vectors, which never grow after `new`, so the pointers stay valid.
struct Batch {
    bufs: Vec<[u8; RECV_BUF]>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let zero_name: libc::sockaddr_in = unsafe { zeroed() };
        // Moving the struct moves only the vectors' handles, not what the headers point to.
        let mut b = Batch {
            bufs: vec![[0; RECV_BUF]; BATCH],
            names: vec![zero_name; BATCH],
            cmsgs: vec![[0; CMSG_WORDS]; BATCH],
            iovs: Vec::with_capacity(BATCH),
            hdrs: Vec::with_capacity(BATCH),
        };
        for i in 0..BATCH {
            b.iovs.push(libc::iovec {
                iov_base: b.bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            });
        }
        for i in 0..BATCH {
            // SAFETY: as above.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&raw mut b.names[i]).cast();
            h.msg_hdr.msg_iov = &raw mut b.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = b.cmsgs[i].as_mut_ptr().cast();
            b.hdrs.push(h);
        }
        b
    }

    /// Message `n` goes from `src` to `dst`, `PACKET_LEN` bytes of `bufs[n]`.
    fn set_out(&mut self, n: usize, src: Ipv4Addr, dst: SocketAddrV4) {
        self.names[n] = sockaddr(dst);
        self.iovs[n].iov_len = PACKET_LEN;
        let h = &mut self.hdrs[n].msg_hdr;
        h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
        // SAFETY: CMSG_SPACE of a small constant; the control buffer holds CMSG_WORDS u64s,
        // more than one in_pktinfo message, and is aligned for cmsghdr.
        unsafe {
            h.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(h);
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(src).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            libc::CMSG_DATA(c)
                .cast::<libc::in_pktinfo>()
                .write_unaligned(info);
        }
    }

    /// Sends messages `0..n`, waiting for room when the socket's buffer is full; how many
    /// times it waited.
    fn send_all(&mut self, socket: &UdpSocket, n: usize) -> io::Result<u64> {
        let (mut done, mut waits) = (0, 0);
        while done < n {
            // SAFETY: hdrs[done..n] are initialised and point into live buffers.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.hdrs[done..].as_mut_ptr(),
                    (n - done) as u32,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::WouldBlock {
                    return Err(e);
                }
                waits += 1;
                wait_writable(socket)?;
            } else {
                done += r as usize;
            }
        }
        Ok(waits)
    }

    /// Receives up to `BATCH` datagrams without blocking; how many.
    fn recv_some(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovs[i].iov_len = RECV_BUF;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_controllen = CMSG_WORDS * 8;
        }
        // SAFETY: the headers point into buffers owned by self, sized as declared.
        let r = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(r as usize)
    }

    /// Received message `m`: the address it was sent to, its length, its kernel timestamp.
    fn incoming(&self, m: usize) -> (Ipv4Addr, usize, u64) {
        let h = &self.hdrs[m];
        let (mut dst, mut at) = (Ipv4Addr::UNSPECIFIED, 0);
        // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed
        // control messages; CMSG_NXTHDR stays within them.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !c.is_null() {
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                        let info = libc::CMSG_DATA(c)
                            .cast::<libc::in_pktinfo>()
                            .read_unaligned();
                        dst = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                    }
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                        let t = libc::CMSG_DATA(c).cast::<libc::timespec>().read_unaligned();
                        at = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
            }
        }
        (dst, h.msg_len as usize, at)
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn setsockopt(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: an int option, passed by pointer with its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<i32>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until one of `sockets` is readable or `until`.
pub fn wait_readable(sockets: &[&UdpSocket], until: Instant) -> io::Result<()> {
    poll(sockets, libc::POLLIN, until)
}

fn wait_writable(socket: &UdpSocket) -> io::Result<()> {
    poll(&[socket], libc::POLLOUT, Instant::now() + PTIME)
}

fn poll(sockets: &[&UdpSocket], events: i16, until: Instant) -> io::Result<()> {
    let timeout = until.saturating_duration_since(Instant::now());
    // Round up: a 0 ms poll before the tick would spin.
    let ms = timeout.as_micros().div_ceil(1000) as i32;
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: fds is a live array of fds.len() pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// utime + stime of process `pid` (None: this one), from /proc.
pub fn process_cpu(pid: Option<u32>) -> io::Result<Duration> {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name (which may hold spaces): state is field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let (utime, stime) = (f.get(11).copied(), f.get(12).copied());
    let ticks = utime.unwrap_or(0) + stime.unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The kernel's drop counter for `socket` (last column of /proc/net/udp, matched by inode).
fn socket_drops(socket: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(9) == Some(&inode)).then(|| f.last()?.parse().ok())?
    })
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
