//! The floor of a userspace RTP relay on this kernel: relay-thread CPU per relayed packet
//! for four ways of doing the socket IO (issue 18, the media relay's packet path).
//!
//! `CALLS` calls, each a pair of relay sockets (A receives the caller's packet, B sends it
//! on, as a relay's two legs do). A generator thread sends one 172-byte packet to every A
//! each 20 ms tick from one socket per caller (a distinct source per call); the relay
//! thread relays each from the call's B to a sink the generator drains. Reported: the relay
//! thread's own CPU (`CLOCK_THREAD_CPUTIME_ID`) per relayed packet, and what was lost.
//!
//! - `a`: level-triggered epoll, `recvfrom` + `sendto` per packet;
//! - `b`: level-triggered epoll, `recvmmsg` per ready socket, `sendmmsg` per sending socket;
//! - `c`: io_uring, one recvmsg outstanding per A socket, the sends and the re-armed
//!   receives of a wake-up submitted together (`submit_and_wait`, one syscall per wake);
//! - `d`: one shared socket, `recvmmsg`/`sendmmsg` across calls, demultiplexed by source.
//!
//! `cargo run --release --example relay_floor -- [CALLS] [SECONDS] [MODES]`

use std::collections::HashMap;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PACKET: usize = 172;
const BATCH: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let modes = args.get(3).cloned().unwrap_or_else(|| "abcd".into());
    raise_nofile();
    println!("calls {calls}, {secs} s per mode, one packet per call per 20 ms");
    println!("mode | relayed pkts | relay CPU s | µs per packet | packets per CPU-second | lost");
    for mode in modes.chars() {
        run(mode, calls, Duration::from_secs(secs));
    }
}

fn raise_nofile() {
    let lim = libc::rlimit {
        rlim_cur: 65536,
        rlim_max: 65536,
    };
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}

fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_nonblocking(true).unwrap();
    s
}

fn thread_cpu() -> Duration {
    let mut ts: libc::timespec = unsafe { zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn sockaddr(addr: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
    sa
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    ))
}

struct Setup {
    a: Vec<UdpSocket>,
    b: Vec<UdpSocket>,
    /// Only for `d`.
    shared: Option<UdpSocket>,
    sink: SocketAddr,
}

fn run(mode: char, calls: usize, dur: Duration) {
    let callers: Vec<UdpSocket> = (0..calls).map(|_| bind()).collect();
    let sink = bind();
    let shared = (mode == 'd').then(bind);
    let (a, b) = if mode == 'd' {
        (Vec::new(), Vec::new())
    } else {
        (
            (0..calls).map(|_| bind()).collect(),
            (0..calls).map(|_| bind()).collect(),
        )
    };
    let targets: Vec<SocketAddr> = match &shared {
        Some(s) => vec![s.local_addr().unwrap(); calls],
        None => a.iter().map(|s| s.local_addr().unwrap()).collect(),
    };
    let setup = Setup {
        a,
        b,
        shared,
        sink: sink.local_addr().unwrap(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let relayed = Arc::new(AtomicU64::new(0));
    let relay = {
        let stop = Arc::clone(&stop);
        let relayed = Arc::clone(&relayed);
        let caller_addrs: Vec<SocketAddr> =
            callers.iter().map(|s| s.local_addr().unwrap()).collect();
        std::thread::spawn(move || {
            let cpu0 = thread_cpu();
            match mode {
                'a' => epoll_relay(&setup, &stop, &relayed, false),
                'b' => epoll_relay(&setup, &stop, &relayed, true),
                'c' => uring_relay(&setup, &stop, &relayed),
                'd' => shared_relay(&setup, &caller_addrs, &stop, &relayed),
                _ => panic!("unknown mode {mode}"),
            }
            thread_cpu() - cpu0
        })
    };
    // Generator: one packet per call per 20 ms tick, drain the sink between ticks.
    let pkt = [0x80u8; PACKET];
    let mut buf = [0u8; 2048];
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    let mut tick = start;
    while tick - start < dur {
        for (s, t) in callers.iter().zip(&targets) {
            if s.send_to(&pkt, t).is_ok() {
                sent += 1;
            }
        }
        tick += Duration::from_millis(20);
        loop {
            while sink.recv_from(&mut buf).is_ok() {
                received += 1;
            }
            let now = Instant::now();
            if now >= tick {
                break;
            }
            std::thread::sleep((tick - now).min(Duration::from_millis(2)));
        }
    }
    let settle = Instant::now() + Duration::from_millis(200);
    while Instant::now() < settle {
        while sink.recv_from(&mut buf).is_ok() {
            received += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let cpu = relay.join().unwrap();
    let n = relayed.load(Ordering::Relaxed);
    println!(
        "{mode} | {n} | {:.3} | {:.2} | {:.0} | {}",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
        n as f64 / cpu.as_secs_f64(),
        sent.saturating_sub(received)
    );
}

/// Level-triggered epoll over the A sockets; `mmsg`: `recvmmsg`/`sendmmsg`.
fn epoll_relay(s: &Setup, stop: &AtomicBool, relayed: &AtomicU64, mmsg: bool) {
    let ep = unsafe { libc::epoll_create1(0) };
    for (i, sock) in s.a.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, sock.as_raw_fd(), &mut ev) };
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let sink = sockaddr(s.sink);
    while !stop.load(Ordering::Relaxed) {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 50) };
        for ev in &events[..n.max(0) as usize] {
            let i = ev.u64 as usize;
            let (a, b) = (s.a[i].as_raw_fd(), s.b[i].as_raw_fd());
            if !mmsg {
                let mut src: libc::sockaddr_in = unsafe { zeroed() };
                let mut len = size_of::<libc::sockaddr_in>() as u32;
                let r = unsafe {
                    libc::recvfrom(
                        a,
                        bufs[0].as_mut_ptr().cast(),
                        2048,
                        0,
                        (&mut src as *mut libc::sockaddr_in).cast(),
                        &mut len,
                    )
                };
                if r > 0 {
                    let w = unsafe {
                        libc::sendto(
                            b,
                            bufs[0].as_ptr().cast(),
                            r as usize,
                            0,
                            (&sink as *const libc::sockaddr_in).cast(),
                            size_of::<libc::sockaddr_in>() as u32,
                        )
                    };
                    if w > 0 {
                        relayed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                let got = mmsg_io(a, &mut bufs, None, true);
                if got > 0 {
                    let sent = mmsg_io(b, &mut bufs[..got], Some(&sink), false);
                    relayed.fetch_add(sent as u64, Ordering::Relaxed);
                }
            }
        }
    }
    unsafe { libc::close(ep) };
}

/// One `recvmmsg` (`recv`) or `sendmmsg` to `dst` over `bufs`; returns the messages done.
fn mmsg_io(fd: i32, bufs: &mut [[u8; 2048]], dst: Option<&libc::sockaddr_in>, recv: bool) -> usize {
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: if recv { 2048 } else { PACKET },
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            if let Some(d) = dst {
                h.msg_hdr.msg_name = (d as *const libc::sockaddr_in).cast_mut().cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            }
            h
        })
        .collect();
    let n = unsafe {
        if recv {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                hdrs.len() as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        } else {
            libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, libc::MSG_DONTWAIT)
        }
    };
    n.max(0) as usize
}

/// io_uring: a recvmsg per A socket outstanding; each completion queues the send from B and
/// re-arms the receive; one `submit_and_wait` per wake-up.
fn uring_relay(s: &Setup, stop: &AtomicBool, relayed: &AtomicU64) {
    use io_uring::{IoUring, opcode, types};
    let calls = s.a.len();
    let mut ring = IoUring::new((calls * 2).next_power_of_two() as u32).expect("io_uring");
    let mut bufs = vec![[0u8; 2048]; calls];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 2048,
        })
        .collect();
    let sink = sockaddr(s.sink);
    let mut rx: Vec<libc::msghdr> = (0..calls).map(|_| unsafe { zeroed() }).collect();
    let mut tx: Vec<libc::msghdr> = (0..calls).map(|_| unsafe { zeroed() }).collect();
    let mut tx_iov: Vec<libc::iovec> = iovs.clone();
    for i in 0..calls {
        rx[i].msg_iov = &mut iovs[i];
        rx[i].msg_iovlen = 1;
        tx[i].msg_iov = &mut tx_iov[i];
        tx[i].msg_iovlen = 1;
        tx[i].msg_name = (&sink as *const libc::sockaddr_in).cast_mut().cast();
        tx[i].msg_namelen = size_of::<libc::sockaddr_in>() as u32;
    }
    const SEND: u64 = 1 << 32;
    let recv_sqe = |i: usize, rx: &mut [libc::msghdr]| {
        opcode::RecvMsg::new(types::Fd(s.a[i].as_raw_fd()), &mut rx[i])
            .build()
            .user_data(i as u64)
    };
    for i in 0..calls {
        let e = recv_sqe(i, &mut rx);
        unsafe { ring.submission().push(&e).unwrap() };
    }
    let mut done: Vec<(u64, i32)> = Vec::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let ts = types::Timespec::new().nsec(50_000_000);
        let args = types::SubmitArgs::new().timespec(&ts);
        if let Err(e) = ring.submitter().submit_with_args(1, &args)
            && e.raw_os_error() != Some(libc::ETIME)
        {
            panic!("submit: {e}");
        }
        done.clear();
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for &(data, res) in &done {
            if data & SEND != 0 {
                if res > 0 {
                    relayed.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            let i = data as usize;
            if res > 0 {
                tx_iov[i].iov_len = res as usize;
                let send = opcode::SendMsg::new(types::Fd(s.b[i].as_raw_fd()), &tx[i])
                    .build()
                    .user_data(SEND | i as u64);
                unsafe { ring.submission().push(&send).unwrap() };
            }
            let e = recv_sqe(i, &mut rx);
            unsafe { ring.submission().push(&e).unwrap() };
        }
    }
}

/// One socket for every call: `recvmmsg` across calls, demultiplexed by source, `sendmmsg`.
fn shared_relay(s: &Setup, callers: &[SocketAddr], stop: &AtomicBool, relayed: &AtomicU64) {
    let sock = s.shared.as_ref().unwrap();
    let fd = sock.as_raw_fd();
    let by_src: HashMap<SocketAddr, usize> =
        callers.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut bufs = vec![[0u8; 2048]; 256];
    let mut srcs: Vec<libc::sockaddr_in> = vec![unsafe { zeroed() }; 256];
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 2048,
        })
        .collect();
    let sink = sockaddr(s.sink);
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        unsafe { libc::poll(&mut pfd, 1, 50) };
        loop {
            let mut hdrs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .zip(srcs.iter_mut())
                .map(|(v, src)| {
                    let mut h: libc::mmsghdr = unsafe { zeroed() };
                    v.iov_len = 2048;
                    h.msg_hdr.msg_iov = v;
                    h.msg_hdr.msg_iovlen = 1;
                    h.msg_hdr.msg_name = (src as *mut libc::sockaddr_in).cast();
                    h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
                    h
                })
                .collect();
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    256,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                break;
            }
            let n = n as usize;
            let mut out: Vec<libc::mmsghdr> = Vec::with_capacity(n);
            for (k, h) in hdrs[..n].iter().enumerate() {
                if by_src.contains_key(&from_sockaddr(&srcs[k])) {
                    let mut o = *h;
                    iov[k].iov_len = h.msg_len as usize;
                    o.msg_hdr.msg_name = (&sink as *const libc::sockaddr_in).cast_mut().cast();
                    out.push(o);
                }
            }
            let sent = unsafe {
                libc::sendmmsg(fd, out.as_mut_ptr(), out.len() as u32, libc::MSG_DONTWAIT)
            };
            relayed.fetch_add(sent.max(0) as u64, Ordering::Relaxed);
        }
    }
}
