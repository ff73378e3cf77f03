//! CTI event WebSockets: the RFC 6455 upgrade over hyper, then one task per socket that
//! sends the hello, then its [`Feed`]: the broadcast [`CtiEvent`]s (all of them, or one
//! seat's), or the wallboard's boards; and answers pings, until the client closes or the
//! router shuts down.

use super::{ApiError, HttpResponse};
use crate::cti::CtiEvent;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;

/// The `Sec-WebSocket-Accept` value, if `req` is a version 13 WebSocket upgrade.
pub(super) fn accept_key(req: &Request<Incoming>) -> Result<String, ApiError> {
    let has = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY);
    match key {
        Some(key)
            if has(header::CONNECTION, "upgrade")
                && has(header::UPGRADE, "websocket")
                && has(header::SEC_WEBSOCKET_VERSION, "13") =>
        {
            Ok(derive_accept_key(key.as_bytes()))
        }
        _ => Err(ApiError::NotWebSocket),
    }
}

/// What a socket sends after its hello.
pub(super) enum Feed {
    /// The events for `seat` (every event if `None`).
    Events {
        events: Receiver<CtiEvent>,
        seat: Option<String>,
    },
    /// Each new wallboard (JSON text), the latest only.
    Boards(watch::Receiver<Arc<str>>),
}

impl Feed {
    /// The next text to send; `None` once the router stopped.
    async fn next(&mut self) -> Option<String> {
        match self {
            Feed::Events { events, seat } => loop {
                match events.recv().await {
                    Ok(e) if seat.is_none() || e.seat == *seat => {
                        return Some(serde_json::json!(e).to_string());
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        let lagged = serde_json::json!({ "kind": "lagged", "missed": missed });
                        return Some(lagged.to_string());
                    }
                    Err(RecvError::Closed) => return None,
                }
            },
            Feed::Boards(boards) => {
                boards.changed().await.ok()?;
                Some(boards.borrow_and_update().to_string())
            }
        }
    }
}

/// Answers 101 and serves the socket in its own task: `hello` first (if any), then `feed`.
pub(super) fn upgrade(
    req: Request<Incoming>,
    accept: &str,
    hello: Option<serde_json::Value>,
    feed: Feed,
    shutdown: CancellationToken,
) -> HttpResponse {
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
                if let Err(e) = pump(socket, hello, feed, shutdown).await {
                    tracing::debug!(error = %e, "CTI WebSocket ended with an error");
                }
            }
            Err(e) => tracing::debug!(error = %e, "CTI WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Full::default())
        .expect("static response parts")
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

async fn pump(
    mut socket: Socket,
    hello: Option<serde_json::Value>,
    mut feed: Feed,
    shutdown: CancellationToken,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    if let Some(hello) = hello {
        socket.send(Message::text(hello.to_string())).await?;
    }
    loop {
        let text = tokio::select! {
            _ = shutdown.cancelled() => return close(socket, "router shutting down").await,
            incoming = socket.next() => match incoming {
                // Pings are answered by tungstenite as it reads; client messages are ignored.
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            next = feed.next() => match next {
                Some(text) => text,
                None => return close(socket, "router stopped").await,
            },
        };
        socket.send(Message::text(text)).await?;
    }
}

async fn close(
    mut socket: Socket,
    reason: &'static str,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let frame = CloseFrame {
        code: CloseCode::Away,
        reason: reason.into(),
    };
    socket.close(Some(frame)).await
}
