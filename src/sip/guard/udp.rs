//! The guard on rsipstack's UDP transport: a socket wrapper that judges each datagram
//! before the stack reads it, answers the malformed ones itself, and counts the responses
//! every datagram carries out.
//!
//! The socket waits for readability only. A UDP send almost never blocks, and a socket
//! that also waited for writability would wake the worker parked in `epoll_wait` every
//! time the kernel freed a sent datagram (on loopback, at once: 0.4 wake-ups a call at
//! 200 calls/s, for nothing); a send that would block is retried a millisecond later.

use super::{Verdict, count_sent, judge_keeping};
use prometheus::{IntCounter, IntCounterVec};
use rsipstack::sip::SipMessage;
use std::io;
use std::net::{SocketAddr, UdpSocket};
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

/// A UDP socket that answers malformed SIP itself and counts the responses it sends.
pub struct GuardedUdpSocket {
    socket: AsyncFd<UdpSocket>,
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
            let mut ready = self.socket.readable().await?;
            if let Ok(received) = ready.try_io(|s| s.get_ref().recv_from(buf)) {
                return received;
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
