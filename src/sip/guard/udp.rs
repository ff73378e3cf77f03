//! The guard on rsipstack's UDP transport: a socket wrapper that judges each datagram
//! before the stack reads it, answers the malformed ones itself, and counts the responses
//! every datagram carries out.

use super::{Verdict, count_sent, judge};
use prometheus::{IntCounter, IntCounterVec};
use std::net::SocketAddr;

/// Answers a well-formed datagram from a source before the stack sees it (`None`: the
/// stack's; empty: absorbed): `net::front` challenges credential-less REGISTERs this way.
pub type FrontAnswer = std::sync::Arc<dyn Fn(&[u8], SocketAddr) -> Option<Vec<u8>> + Send + Sync>;

/// A UDP socket that answers malformed SIP itself and counts the responses it sends.
pub struct GuardedUdpSocket {
    socket: tokio::net::UdpSocket,
    malformed: IntCounter,
    responses: IntCounterVec,
    front: Option<FrontAnswer>,
}

impl GuardedUdpSocket {
    /// Wraps a bound socket; `malformed` counts rejected datagrams, `responses` (labels
    /// method, code, direction) the responses sent.
    pub fn new(
        socket: tokio::net::UdpSocket,
        malformed: IntCounter,
        responses: IntCounterVec,
    ) -> Self {
        Self {
            socket,
            malformed,
            responses,
            front: None,
        }
    }

    /// Lets `front` answer well-formed datagrams first.
    pub fn with_front(mut self, front: FrontAnswer) -> Self {
        self.front = Some(front);
        self
    }

    fn count_sent(&self, datagram: &[u8]) {
        count_sent(&self.responses, datagram);
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            match judge(&buf[..len]) {
                Verdict::Pass => {
                    let answer = self.front.as_ref().and_then(|f| f(&buf[..len], from));
                    let Some(answer) = answer else {
                        return Ok((len, from));
                    };
                    if answer.is_empty() {
                        continue;
                    }
                    self.count_sent(&answer);
                    if let Err(e) = self.socket.send_to(&answer, from).await {
                        tracing::debug!(error = %e, "could not answer at the front");
                    }
                }
                Verdict::Drop => self.malformed.inc(),
                Verdict::Reply(response) => {
                    self.malformed.inc();
                    self.count_sent(&response);
                    tracing::debug!(%from, "malformed SIP answered");
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        tracing::debug!(error = %e, "could not answer malformed SIP");
                    }
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        self.count_sent(buf);
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
