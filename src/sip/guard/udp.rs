//! The guard on rsipstack's UDP transport: a socket wrapper that judges each datagram
//! before the stack reads it, answers the malformed ones itself, and counts the responses
//! every datagram carries out.
//!
//! Each read is one `recvmmsg` of up to two datagrams: a second one is kept for the next
//! read, and a read that found no second one knows the socket is drained, so the reader
//! waits for the next datagram's wake-up without a last `recvfrom` that would only say
//! `EAGAIN` (one syscall a wake-up: ~4 a call at 200 calls/s).
//!
//! The socket waits for readability only. A UDP send almost never blocks, and a socket
//! that also waited for writability would wake the worker parked in `epoll_wait` every
//! time the kernel freed a sent datagram (on loopback, at once: 0.4 wake-ups a call at
//! 200 calls/s, for nothing); a send that would block is retried a millisecond later.

use super::{Verdict, count_sent, judge_keeping};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use prometheus::{IntCounter, IntCounterVec};
use rsipstack::sip::SipMessage;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// How long a send that would block is retried, a millisecond at a time, before it fails.
const SEND_RETRIES: u32 = 100;

/// Answers a well-formed datagram's message from a source before the stack sees it
/// (`None`: the stack's; empty: absorbed): `net::front` challenges credential-less
/// REGISTERs this way.
pub type FrontAnswer =
    std::sync::Arc<dyn Fn(&SipMessage, SocketAddr) -> Option<Vec<u8>> + Send + Sync>;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// A datagram a read took beyond the one it was asked for, kept for the next read.
struct ReadAhead {
    spare: Box<[u8]>,
    /// Its length and source, in `spare`.
    held: Option<(usize, SocketAddr)>,
}

/// A UDP socket that answers malformed SIP itself and counts the responses it sends.
pub struct GuardedUdpSocket {
    socket: AsyncFd<UdpSocket>,
    ahead: Mutex<ReadAhead>,
    malformed: IntCounter,
    responses: IntCounterVec,
    front: Option<FrontAnswer>,
}

impl GuardedUdpSocket {
    /// Wraps a bound socket (made non-blocking, watched by the runtime: call from within
    /// it); `malformed` counts rejected datagrams, `responses` (labels method, code,
    /// direction) the responses sent.
    pub fn new(
        socket: UdpSocket,
        malformed: IntCounter,
        responses: IntCounterVec,
    ) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket: watch_readable(socket)?,
            ahead: Mutex::new(ReadAhead {
                spare: vec![0; MAX_DATAGRAM].into_boxed_slice(),
                held: None,
            }),
            malformed,
            responses,
            front: None,
        })
    }

    /// Lets `front` answer well-formed datagrams first.
    pub fn with_front(mut self, front: FrontAnswer) -> Self {
        self.front = Some(front);
        self
    }

    fn count_sent(&self, datagram: &[u8]) {
        count_sent(&self.responses, datagram);
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            {
                let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((len, from)) = ahead.held.take() {
                    let len = len.min(buf.len());
                    buf[..len].copy_from_slice(&ahead.spare[..len]);
                    return Ok((len, from));
                }
            }
            let mut ready = self.socket.readable().await?;
            let read = {
                let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
                read_two(self.socket.get_ref().as_raw_fd(), buf, &mut ahead)
            };
            let Read { first, drained } = read?;
            if drained {
                // Readiness is cleared as of this guard's wake-up only: a datagram that
                // came since still wakes the next wait.
                ready.clear_ready();
            }
            if let Some(received) = first {
                return Ok(received);
            }
        }
    }

    async fn send(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        let mut tries = 0;
        loop {
            match self.socket.get_ref().send_to(datagram, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && tries < SEND_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                sent => return sent,
            }
        }
    }
}

/// What one read got.
struct Read {
    /// The datagram for the caller, in its buffer.
    first: Option<(usize, SocketAddr)>,
    /// The socket had nothing more (its next datagram wakes the reader again).
    drained: bool,
}

/// One `recvmmsg` of up to two datagrams, the first into `buf`, a second into `ahead`
/// (held there for the next read).
fn read_two(fd: std::os::fd::RawFd, buf: &mut [u8], ahead: &mut ReadAhead) -> io::Result<Read> {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(2, None);
    let mut slices = [[IoSliceMut::new(buf)], [IoSliceMut::new(&mut ahead.spare)]];
    let received = match recvmmsg(
        fd,
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    ) {
        Ok(received) => received,
        Err(Errno::EAGAIN) => {
            return Ok(Read {
                first: None,
                drained: true,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut got = received.map(|m| (m.bytes, m.address.and_then(crate::sockaddr::socket_addr)));
    let (first, second) = (got.next(), got.next());
    // A datagram without an IP source (never, on a UDP/IP socket) is skipped.
    let datagram =
        |m: Option<(usize, Option<SocketAddr>)>| m.and_then(|(len, from)| Some((len, from?)));
    ahead.held = datagram(second);
    Ok(Read {
        first: datagram(first),
        drained: second.is_none(),
    })
}

/// `socket` watched by the runtime for readability only.
#[allow(unsafe_code)]
fn watch_readable(socket: UdpSocket) -> io::Result<AsyncFd<UdpSocket>> {
    // SAFETY: the `AsyncFd` owns the socket, whose descriptor stays open and the same
    // until the `AsyncFd` drops it.
    Ok(unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?)
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let (len, from, _) = self.recv_message(buf).await?;
        Ok((len, from))
    }

    /// The stack's reader: each datagram that passes comes with the message the guard
    /// parsed, so it is parsed once.
    async fn recv_message(
        &self,
        buf: &mut [u8],
    ) -> rsipstack::Result<(usize, SocketAddr, Option<SipMessage>)> {
        loop {
            let (len, from) = self.recv(buf).await?;
            match judge_keeping(&buf[..len]) {
                (Verdict::Pass, None) => return Ok((len, from, None)), // a keep-alive
                (Verdict::Pass, Some(message)) => {
                    let front = self.front.as_ref();
                    let Some(answer) = front.and_then(|f| f(&message, from)) else {
                        return Ok((len, from, Some(message)));
                    };
                    if answer.is_empty() {
                        continue;
                    }
                    self.count_sent(&answer);
                    if let Err(e) = self.send(&answer, from).await {
                        tracing::debug!(error = %e, "could not answer at the front");
                    }
                }
                (Verdict::Drop, _) => self.malformed.inc(),
                (Verdict::Reply(response), _) => {
                    self.malformed.inc();
                    self.count_sent(&response);
                    tracing::debug!(%from, "malformed SIP answered");
                    if let Err(e) = self.send(&response, from).await {
                        tracing::debug!(error = %e, "could not answer malformed SIP");
                    }
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        self.count_sent(buf);
        Ok(self.send(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.get_ref().local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::platform::net::UdpSocket as _;

    fn options(branch: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:router@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch}\r\n\
             From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:router@127.0.0.1>\r\nCall-ID: {branch}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// Datagrams queued together come out whole and in order, the second from the read
    /// that took both; once drained, the next datagram still wakes the reader.
    #[tokio::test]
    async fn queued_datagrams_are_read_in_order_and_a_later_one_still_wakes_the_reader() {
        let bound = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = bound.local_addr().unwrap();
        let malformed = IntCounter::new("m", "m").unwrap();
        let responses = IntCounterVec::new(
            prometheus::Opts::new("r", "r"),
            &["method", "code", "direction"],
        )
        .unwrap();
        let socket = GuardedUdpSocket::new(bound, malformed.clone(), responses).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for branch in ["one", "two", "three"] {
            peer.send_to(&options(branch), to).unwrap();
        }
        let mut buf = vec![0; MAX_DATAGRAM];
        let wait = Duration::from_secs(5);
        for branch in ["one", "two", "three"] {
            let read = tokio::time::timeout(wait, socket.recv_message(&mut buf));
            let (len, from, message) = read.await.expect("read in time").unwrap();
            assert_eq!(from, peer.local_addr().unwrap());
            assert_eq!(&buf[..len], &options(branch)[..]);
            assert!(message.is_some(), "{branch}: parsed once, kept");
        }
        // Drained now: a datagram sent while the reader waits wakes it.
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peer.send_to(&options("four"), to).unwrap();
        });
        let read = tokio::time::timeout(wait, socket.recv_message(&mut buf));
        let (len, _, _) = read.await.expect("woken by the later datagram").unwrap();
        assert_eq!(&buf[..len], &options("four")[..]);
        later.await.unwrap();
        assert_eq!(malformed.get(), 0);
    }
}
