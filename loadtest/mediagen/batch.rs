//! Batched UDP IO for the RTP engine: `sendmmsg` with a source address per message
//! (`IP_PKTINFO`), `recvmmsg` with the destination address and the kernel's receive
//! timestamp of each message, and the socket helpers around them (options, `poll`).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// RTP packet: 12-byte header + 20 ms of G.711 at 8 kHz.
pub const PACKET_LEN: usize = 12 + 160;
/// Messages per `sendmmsg` / `recvmmsg` call (the kernel's UIO_MAXIOV is 1024).
pub const BATCH: usize = 512;
pub const RECV_BUF: usize = 2048;
/// Enough for one `in_pktinfo` and one `timespec` control message (u64 for alignment).
const CMSG_WORDS: usize = 16;
/// Longest wait for room in a full send buffer before trying again.
const SEND_WAIT: Duration = Duration::from_millis(20);

/// Buffers and headers for one `sendmmsg` / `recvmmsg` batch. The headers point into the
/// other vectors, which never grow after `new`, so the pointers stay valid.
pub struct Batch {
    pub bufs: Vec<[u8; RECV_BUF]>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_WORDS]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    pub fn new() -> Self {
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
    pub fn set_out(&mut self, n: usize, src: Ipv4Addr, dst: SocketAddrV4) {
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
    pub fn send_all(&mut self, socket: &UdpSocket, n: usize) -> io::Result<u64> {
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
    pub fn recv_some(&mut self, socket: &UdpSocket) -> io::Result<usize> {
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
    pub fn incoming(&self, m: usize) -> (Ipv4Addr, usize, u64) {
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

pub fn setsockopt(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
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
    poll(&[socket], libc::POLLOUT, Instant::now() + SEND_WAIT)
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
