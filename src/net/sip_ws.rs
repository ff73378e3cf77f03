//! SIP over WebSocket (RFC 7118) for WebRTC phones (JsSIP, SIP.js): `[sip] ws` and, over
//! TLS, `[sip] wss`.
//!
//! rsipstack's own WebSocket listener neither refuses clients without the `sip` subprotocol
//! nor speaks server-side TLS, so this is a thin adapter: each accepted WebSocket becomes an
//! rsipstack channel connection whose address is the client's (`ws`/`wss` type, packet
//! source). The transport layer caches it under that address, so the registrar's binding
//! (transport and source, see `requests::destination_of`) leads INVITEs back over the very
//! socket the phone registered on, and dialogs keep using it (flow affinity). When the socket
//! closes, the connection is retired and the seat is unreachable until it registers again.

use futures_util::{SinkExt, StreamExt};
use prometheus::IntCounter;
use rsipstack::sip::{SipMessage, Transport};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

/// SIP messages are a few KiB; anything much bigger is not a phone talking.
const MAX_MESSAGE: usize = 64 * 1024;
/// Time allowed for the HTTP upgrade once connected (and TLS done).
const UPGRADE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The subprotocol RFC 7118 registers.
const SUBPROTOCOL: &str = "sip";

/// One SIP WebSocket listener (`wss` when it has a TLS acceptor).
pub struct SipWsListener {
    /// The bound socket.
    pub listener: TcpListener,
    /// TLS for `wss`.
    pub tls: Option<TlsAcceptor>,
    /// Counts messages that do not parse as SIP.
    pub malformed: IntCounter,
}

impl SipWsListener {
    /// Accepts phones until `shutdown`, handing each socket to rsipstack's `endpoint`.
    pub async fn run(self, endpoint: EndpointInnerRef, shutdown: CancellationToken) {
        let transport = match self.tls {
            Some(_) => Transport::Wss,
            None => Transport::Ws,
        };
        loop {
            let (stream, remote) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "SIP WebSocket accept failed");
                        continue;
                    }
                },
            };
            let phone = Phone {
                endpoint: endpoint.clone(),
                remote: SipAddr {
                    r#type: Some(transport),
                    addr: remote.into(),
                },
                socket: remote,
                malformed: self.malformed.clone(),
                shutdown: shutdown.child_token(),
            };
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let result = match tls {
                    None => phone.serve(stream).await,
                    Some(acceptor) => match crate::net::tls::handshake(&acceptor, stream).await {
                        Ok(stream) => phone.serve(stream).await,
                        Err(e) => Err(e.into()),
                    },
                };
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "SIP WebSocket ended");
                }
            });
        }
    }
}

/// One connected phone.
struct Phone {
    endpoint: EndpointInnerRef,
    remote: SipAddr,
    socket: SocketAddr,
    malformed: IntCounter,
    shutdown: CancellationToken,
}

type WsError = tokio_tungstenite::tungstenite::Error;

impl Phone {
    async fn serve<S>(self, stream: S) -> Result<(), WsError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let upgrade =
            tokio_tungstenite::accept_hdr_async_with_config(stream, require_sip, Some(config));
        // A client that never finishes its upgrade must not hold a task for ever.
        let socket = match tokio::time::timeout(UPGRADE_TIMEOUT, upgrade).await {
            Ok(socket) => socket?,
            Err(_) => return Err(WsError::Io(std::io::ErrorKind::TimedOut.into())),
        };
        let (mut sink, mut reader) = socket.split();
        // To rsipstack: what the phone sends. From rsipstack: what to send to the phone.
        let (to_stack, from_phone) = mpsc::unbounded_channel();
        let (to_phone, mut outgoing) = mpsc::unbounded_channel();
        let connection = ChannelConnection::create_connection(
            from_phone,
            to_phone,
            self.remote.clone(),
            Some(self.shutdown.clone()),
        )
        .await
        .map_err(|e| WsError::Io(std::io::Error::other(e.to_string())))?;
        let connection = SipConnection::Channel(connection);
        self.endpoint
            .transport_layer
            .add_connection(connection.clone());
        tracing::info!(remote = %self.socket, "SIP WebSocket connected");

        let done = self.shutdown.clone();
        let writer = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = done.cancelled() => break,
                    event = outgoing.recv() => event,
                };
                let Some(TransportEvent::Incoming(msg, _, _)) = event else {
                    break;
                };
                if sink.send(Message::text(msg.to_string())).await.is_err() {
                    break;
                }
            }
            sink.close().await.ok();
        });
        let result = loop {
            let frame = tokio::select! {
                _ = self.shutdown.cancelled() => break Ok(()),
                frame = reader.next() => frame,
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(bytes))) => match Utf8Bytes::try_from(bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        self.malformed.inc();
                        continue;
                    }
                },
                Some(Ok(Message::Close(_))) | None => break Ok(()),
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Err(e),
            };
            let Some(msg) = self.parse(&text) else {
                self.malformed.inc();
                continue;
            };
            let event = TransportEvent::Incoming(msg, connection.clone(), self.remote.clone());
            if to_stack.send(event).is_err() {
                break Ok(());
            }
        };
        // Ends rsipstack's read loop for this connection, which retires it.
        drop(to_stack);
        self.shutdown.cancel();
        writer.await.ok();
        tracing::info!(remote = %self.socket, "SIP WebSocket closed");
        result
    }

    /// The SIP message, with `received`/`rport` on a request's Via as on UDP and TCP.
    fn parse(&self, text: &str) -> Option<SipMessage> {
        let msg = SipMessage::try_from(text).ok()?;
        let transport = self.remote.r#type.unwrap_or_default();
        SipConnection::update_msg_received(msg, self.socket, transport).ok()
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
