//! SIP over TCP (`[sip] tcp`) and over TLS (`[sip] tls`, RFC 3261 §26.2, `sips:`): the
//! router's own listeners, so that stream messages go through the same guard as UDP
//! datagrams (rsipstack's TCP listener hands parsed messages straight to its transactions
//! and closes the connection on one it cannot parse, without an answer). The outbound trunk
//! connection over TLS ([`crate::net::sip_tls_out`]) is read by the same loop.
//!
//! Each connection is split into messages by [`next_frame`] (RFC 3261 §18.3: the header
//! section, then `Content-Length` octets of body) and each message is delivered through
//! [`Link`]. A message that cannot be framed (bad or huge `Content-Length`) is answered
//! `400` and the connection closed: the rest of the stream cannot be trusted to be in step.
//!
//! Connections come through the [`Doorway`] (caps per source and in total). One that has
//! not finished its TLS handshake and sent a complete message within
//! `limits.header_timeout_s` of opening, or a message begun, is closed (slow or silent
//! holders); so is one silent for `limits.sip_idle_timeout_s`. Over TLS, a client whose
//! certificate is pinned (`[trunk] tls_pinned_sha256`) is marked as the trunk's for as long
//! as its connection lasts ([`PinnedFlows`]).

use crate::net::limits::Doorway;
use crate::net::sip_stream::{Delivery, GuardMetrics, Link};
use crate::net::tls_pin::{PinnedFlows, Pins};
use crate::sip::guard::{self, Verdict};
use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Largest message accepted on a stream (a SIP message is a few KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// One SIP TCP or TLS listener.
pub struct SipTcpListener {
    /// The bound socket, behind the connection limits.
    pub doorway: Doorway,
    /// `sip.tls`: the handshake, then messages of transport TLS.
    pub tls: Option<SipTls>,
    /// The guard's counters.
    pub metrics: GuardMetrics,
    /// Time to send a whole message (the first, TLS handshake included, or one begun).
    pub message_timeout: Duration,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
}

/// What a TLS listener adds.
#[derive(Clone)]
pub struct SipTls {
    /// The `[tls]` certificate (asking clients for theirs when `pins` are set).
    pub acceptor: TlsAcceptor,
    /// The operator's certificates.
    pub pins: Pins,
    /// Where connections with a pinned certificate are noted.
    pub flows: PinnedFlows,
}

impl SipTcpListener {
    /// Accepts clients until `shutdown`, handing each connection to rsipstack's `endpoint`.
    pub async fn run(mut self, endpoint: EndpointInnerRef, shutdown: CancellationToken) {
        let transport = match self.tls {
            Some(_) => Transport::Tls,
            None => Transport::Tcp,
        };
        while let Some((stream, remote, permit)) = self.doorway.next(&shutdown).await {
            let opened = Instant::now();
            let client = Client {
                endpoint: endpoint.clone(),
                transport,
                remote,
                metrics: self.metrics.clone(),
                done: shutdown.child_token(),
                message_timeout: self.message_timeout,
                idle_timeout: self.idle_timeout,
            };
            let gate = self.doorway.gate().clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let first_by = Some(opened + client.message_timeout);
                let result = match tls {
                    None => client.serve(stream, &permit.evicted, first_by).await,
                    Some(tls) => {
                        let limit = client.message_timeout;
                        match crate::net::tls::handshake_within(&tls.acceptor, stream, limit).await
                        {
                            Ok(stream) => {
                                let cert = stream.get_ref().1.peer_certificates();
                                let pinned = tls.pins.admits(cert.and_then(|c| c.first()));
                                let _flow = pinned.then(|| tls.flows.note(remote));
                                client.serve(stream, &permit.evicted, first_by).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                };
                match result {
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        gate.timed_out();
                        tracing::debug!(%remote, ?transport, "SIP stream connection timed out");
                    }
                    Err(e) => {
                        tracing::debug!(%remote, ?transport, error = %e, "SIP stream connection ended")
                    }
                    Ok(()) => {}
                }
            });
        }
    }
}

/// One connection, accepted or dialled.
pub(crate) struct Client {
    pub(crate) endpoint: EndpointInnerRef,
    pub(crate) transport: Transport,
    pub(crate) remote: SocketAddr,
    pub(crate) metrics: GuardMetrics,
    pub(crate) done: CancellationToken,
    pub(crate) message_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl Client {
    /// Reads messages until the peer closes, a message cannot be framed, it is too slow or
    /// idle, `evicted` (the limits close it for a newcomer), or shutdown. `first_by`: when
    /// the first message must have come (`None`: the connection starts idle, as one we
    /// dialled does).
    pub(crate) async fn serve<S>(
        self,
        stream: S,
        evicted: &CancellationToken,
        first_by: Option<Instant>,
    ) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Client {
            endpoint,
            transport,
            remote,
            metrics,
            done,
            message_timeout,
            idle_timeout,
        } = self;
        let (link, mut outbox) = Link::open(&endpoint, transport, remote, metrics, done.clone())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (mut reader, mut writer) = tokio::io::split(stream);
        let stop = done.clone();
        let write = tokio::spawn(async move {
            while let Some(bytes) = outbox.next_until(&stop).await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            writer.shutdown().await.ok();
        });
        let mut buffer = Vec::with_capacity(8 * 1024);
        let mut chunk = vec![0u8; 16 * 1024];
        // Until a first message: its deadline; then idle, or a message begun.
        let mut delivered = first_by.is_none();
        let mut deadline = first_by.unwrap_or_else(|| Instant::now() + idle_timeout);
        let mut partial_since = None;
        let result = 'read: loop {
            let n = tokio::select! {
                _ = done.cancelled() => break Ok(()),
                _ = evicted.cancelled() => break Ok(()),
                _ = tokio::time::sleep_until(deadline) => {
                    break Err(std::io::ErrorKind::TimedOut.into())
                }
                n = reader.read(&mut chunk) => n,
            };
            match n {
                Ok(0) => break Ok(()),
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                Err(e) => break Err(e),
            }
            loop {
                match next_frame(&mut buffer) {
                    Frame::Incomplete => break,
                    Frame::Ping => link.send_raw(b"\r\n".to_vec()),
                    Frame::Message(message) => {
                        delivered = true;
                        partial_since = None;
                        if link.deliver(&message) == Delivery::Closed {
                            break 'read Ok(());
                        }
                    }
                    Frame::Unframeable { head, defect } => {
                        if let Verdict::Reply(answer) = guard::bad_request(&head, defect) {
                            link.send_raw(answer);
                        }
                        break 'read Ok(());
                    }
                }
            }
            // Before the first message, its deadline stands. Then: idle between messages, and
            // a message begun must end in time however slowly its bytes trickle in. A lone
            // CRLF (a pong to our ping, or half a ping) is not a message begun.
            if delivered {
                let now = Instant::now();
                deadline = match buffer.iter().all(u8::is_ascii_whitespace) {
                    true => now + idle_timeout,
                    false => *partial_since.get_or_insert(now) + message_timeout,
                };
            }
        };
        // Ends rsipstack's read loop for this connection, which retires it; the writer writes
        // the answers already queued (biased), then stops.
        drop(link);
        done.cancel();
        write.await.ok();
        result
    }
}

/// The next unit on a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// More octets are needed.
    Incomplete,
    /// A CRLFCRLF keep-alive ping (RFC 5626 §3.5.1), to be answered with CRLF.
    Ping,
    /// One whole message.
    Message(Vec<u8>),
    /// The stream cannot be split any further: this header section, and why.
    Unframeable {
        /// The header section read (to echo in the answer).
        head: Vec<u8>,
        /// What is wrong.
        defect: &'static str,
    },
}

/// Takes the next frame off the front of `buffer`.
pub fn next_frame(buffer: &mut Vec<u8>) -> Frame {
    // CRLFs between messages: a double one is a ping, a single one a pong (ignored).
    if buffer.starts_with(b"\r\n\r\n") {
        buffer.drain(..4);
        return Frame::Ping;
    }
    if buffer.starts_with(b"\r\n") {
        if buffer.len() < 4 && b"\r\n\r\n".starts_with(buffer) {
            return Frame::Incomplete;
        }
        buffer.drain(..2);
        return next_frame(buffer);
    }
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buffer.len() > MAX_MESSAGE {
            let head = std::mem::take(buffer);
            return Frame::Unframeable {
                head,
                defect: "message too large",
            };
        }
        return Frame::Incomplete;
    };
    let head = &buffer[..end];
    let body = match content_length(head) {
        // Checked: a length near usize::MAX overflowed the sum (found by `cargo fuzz`).
        Ok(length)
            if (end + 4)
                .checked_add(length)
                .is_none_or(|n| n > MAX_MESSAGE) =>
        {
            Err("message too large")
        }
        other => other,
    };
    let length = match body {
        Ok(length) => length,
        Err(defect) => {
            let head = buffer[..end + 4].to_vec();
            buffer.clear();
            return Frame::Unframeable { head, defect };
        }
    };
    if buffer.len() < end + 4 + length {
        return Frame::Incomplete;
    }
    let rest = buffer.split_off(end + 4 + length);
    Frame::Message(std::mem::replace(buffer, rest))
}

/// The body length a header section declares: 0 when absent (RFC 3261 §18.3 makes it
/// mandatory on streams; the guard then checks the message like any other).
fn content_length(head: &[u8]) -> Result<usize, &'static str> {
    let text = String::from_utf8_lossy(head);
    let mut values = text
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| {
            let name = name.trim();
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")
        })
        .map(|(_, value)| value.trim().parse::<usize>());
    let first = match values.next() {
        None => return Ok(0),
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err("invalid Content-Length"),
    };
    if values.any(|v| v != Ok(first)) {
        return Err("conflicting Content-Length values");
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        format!(
            "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn splits_a_stream_into_messages_and_pings() {
        let one = message("abc");
        let two = message("");
        let mut buffer = format!("\r\n\r\n{one}{two}\r\n{}", &one[..10]).into_bytes();
        assert_eq!(next_frame(&mut buffer), Frame::Ping);
        assert_eq!(next_frame(&mut buffer), Frame::Message(one.clone().into()));
        assert_eq!(next_frame(&mut buffer), Frame::Message(two.into()));
        assert_eq!(next_frame(&mut buffer), Frame::Incomplete);
        assert_eq!(buffer, &one.as_bytes()[..10]);
        let mut partial_body = one.as_bytes()[..one.len() - 1].to_vec();
        assert_eq!(next_frame(&mut partial_body), Frame::Incomplete);
        let mut half_ping = b"\r\n\r".to_vec();
        assert_eq!(next_frame(&mut half_ping), Frame::Incomplete);
    }

    #[test]
    fn bad_or_huge_lengths_cannot_be_framed() {
        for (length, defect) in [
            ("abc", "invalid Content-Length"),
            ("-1", "invalid Content-Length"),
            ("99999999999999999999999", "invalid Content-Length"),
            ("70000", "message too large"),
            // Found by `cargo fuzz run sip_guard`: the total length overflowed (a panic).
            ("18446744073709551615", "message too large"),
        ] {
            let text = message("").replace("Content-Length: 0", &format!("l: {length}"));
            let mut buffer = text.clone().into_bytes();
            match next_frame(&mut buffer) {
                Frame::Unframeable { head, defect: d } => {
                    assert_eq!(d, defect, "{length}");
                    assert_eq!(head, text.as_bytes());
                }
                other => panic!("{length}: {other:?}"),
            }
        }
        let twice = message("").replace("Content-Length: 0", "Content-Length: 0\r\nl: 5");
        assert!(matches!(
            next_frame(&mut twice.into_bytes()),
            Frame::Unframeable { .. }
        ));
        let mut endless = vec![b'a'; MAX_MESSAGE + 1];
        assert!(matches!(
            next_frame(&mut endless),
            Frame::Unframeable { .. }
        ));
    }
}
