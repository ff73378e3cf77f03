//! SIP over WebSocket (RFC 7118) for WebRTC phones (JsSIP, SIP.js): `[sip] ws` and, over
//! TLS, `[sip] wss`.
//!
//! rsipstack's own WebSocket listener neither refuses clients without the `sip` subprotocol
//! nor speaks server-side TLS, so this is a thin adapter: each accepted WebSocket becomes a
//! [`Link`] (an rsipstack channel connection of `ws`/`wss` type at the packet source, behind
//! the malformed-input guard like every transport). The registrar's binding (transport and
//! source, see `requests::destination_of`) leads INVITEs back over the very socket the phone
//! registered on, and dialogs keep using it (flow affinity). When the socket closes, the
//! connection is retired and the seat is unreachable until it registers again.
//!
//! Sockets come through the [`Doorway`] (caps per source and in total); the upgrade and
//! the first SIP message must each come within `limits.header_timeout_s`, and a socket
//! silent for `limits.sip_idle_timeout_s` is closed.

use crate::net::limits::{Doorway, Permit};
use crate::net::sip_stream::{Delivery, GuardMetrics, Link};
use futures_util::{SinkExt, StreamExt};
use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

/// SIP messages are a few KiB; anything much bigger is not a phone talking.
const MAX_MESSAGE: usize = 64 * 1024;
/// The subprotocol RFC 7118 registers.
const SUBPROTOCOL: &str = "sip";

/// One SIP WebSocket listener (`wss` when it has a TLS acceptor).
pub struct SipWsListener {
    /// The bound socket, behind the connection limits.
    pub doorway: Doorway,
    /// TLS for `wss`.
    pub tls: Option<TlsAcceptor>,
    /// The guard's counters.
    pub metrics: GuardMetrics,
    /// Time for the upgrade, then for the first message.
    pub message_timeout: Duration,
    /// Silence after which a socket is closed.
    pub idle_timeout: Duration,
}

impl SipWsListener {
    /// Accepts phones until `shutdown`, handing each socket to rsipstack's `endpoint`.
    pub async fn run(mut self, endpoint: EndpointInnerRef, shutdown: CancellationToken) {
        let transport = match self.tls {
            Some(_) => Transport::Wss,
            None => Transport::Ws,
        };
        while let Some((stream, remote, permit)) = self.doorway.next(&shutdown).await {
            let phone = Phone {
                endpoint: endpoint.clone(),
                transport,
                socket: remote,
                metrics: self.metrics.clone(),
                shutdown: shutdown.child_token(),
                message_timeout: self.message_timeout,
                idle_timeout: self.idle_timeout,
            };
            let tls = self.tls.clone();
            let gate = self.doorway.gate().clone();
            tokio::spawn(async move {
                let result = match tls {
                    None => phone.serve(stream, &permit).await,
                    Some(acceptor) => match crate::net::tls::handshake(&acceptor, stream).await {
                        Ok(stream) => phone.serve(stream, &permit).await,
                        Err(e) => Err(e.into()),
                    },
                };
                match result {
                    Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                        gate.timed_out();
                        tracing::debug!(%remote, "SIP WebSocket timed out");
                    }
                    Err(e) => tracing::debug!(%remote, error = %e, "SIP WebSocket ended"),
                    Ok(()) => {}
                }
            });
        }
    }
}

/// One connected phone.
struct Phone {
    endpoint: EndpointInnerRef,
    transport: Transport,
    socket: SocketAddr,
    metrics: GuardMetrics,
    shutdown: CancellationToken,
    message_timeout: Duration,
    idle_timeout: Duration,
}

type WsError = tokio_tungstenite::tungstenite::Error;

impl Phone {
    async fn serve<S>(self, stream: S, permit: &Permit) -> Result<(), WsError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let upgrade =
            tokio_tungstenite::accept_hdr_async_with_config(stream, require_sip, Some(config));
        // A client that never finishes its upgrade must not hold a task for ever.
        let socket = match tokio::time::timeout(self.message_timeout, upgrade).await {
            Ok(socket) => socket?,
            Err(_) => return Err(WsError::Io(std::io::ErrorKind::TimedOut.into())),
        };
        let (mut sink, mut reader) = socket.split();
        let (link, mut outbox) = Link::open(
            &self.endpoint,
            self.transport,
            self.socket,
            self.metrics.clone(),
            self.shutdown.clone(),
        )
        .await
        .map_err(|e| WsError::Io(std::io::Error::other(e.to_string())))?;
        tracing::info!(remote = %self.socket, "SIP WebSocket connected");

        let done = self.shutdown.clone();
        let writer = tokio::spawn(async move {
            while let Some(bytes) = outbox.next_until(&done).await {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            sink.close().await.ok();
        });
        // The first message must come soon; then silence is allowed up to the idle timeout.
        let mut wait = self.message_timeout;
        let result = loop {
            let frame = tokio::select! {
                _ = self.shutdown.cancelled() => break Ok(()),
                _ = permit.evicted.cancelled() => break Ok(()),
                frame = tokio::time::timeout(wait, reader.next()) => match frame {
                    Ok(frame) => frame,
                    Err(_) => break Err(WsError::Io(std::io::ErrorKind::TimedOut.into())),
                },
            };
            wait = self.idle_timeout;
            let delivery = match frame {
                Some(Ok(Message::Text(text))) => link.deliver(text.as_bytes()),
                Some(Ok(Message::Binary(bytes))) => link.deliver(&bytes),
                Some(Ok(Message::Close(_))) | None => break Ok(()),
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Err(e),
            };
            if delivery == Delivery::Closed {
                break Ok(());
            }
        };
        // Ends rsipstack's read loop for this connection, which retires it.
        drop(link);
        self.shutdown.cancel();
        writer.await.ok();
        tracing::info!(remote = %self.socket, "SIP WebSocket closed");
        result
    }
}

/// Handshake callback: RFC 7118 §4 — a client must ask for the `sip` subprotocol, and the
/// answer names it; anything else is not a SIP phone and is refused.
#[allow(clippy::result_large_err)] // the signature is tungstenite's callback's
fn require_sip(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    if !offered {
        let mut refusal =
            ErrorResponse::new(Some("the sip WebSocket subprotocol is required".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}
