//! One way into rsipstack for every connection-oriented SIP transport: TCP
//! ([`crate::net::sip_tcp`]), WebSocket and secure WebSocket ([`crate::net::sip_ws`]).
//!
//! Each accepted connection becomes an rsipstack channel connection whose address is the
//! client's (its transport type, packet source), so the transport layer caches it under that
//! address and responses, dialogs and the registrar's bindings lead back over the very socket
//! the client opened (flow affinity). Every message read goes through the same
//! [`guard::judge`] as a UDP datagram before the stack sees it: malformed requests are
//! answered here (`400`/`501`/`505` naming the defect) and never reach a transaction.

use crate::sip::guard::{self, Verdict};
use prometheus::{IntCounter, IntCounterVec};
use rsipstack::sip::{SipMessage, Transport};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use std::net::SocketAddr;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The counters every transport shares with the UDP guard.
#[derive(Clone)]
pub struct GuardMetrics {
    /// Messages refused (answered or dropped) by the guard.
    pub malformed: IntCounter,
    /// Responses sent, by method, code and direction.
    pub responses: IntCounterVec,
    /// Answers given before the stack (credential-less REGISTERs).
    pub front: Option<crate::net::front::FrontDesk>,
}

/// What became of one message read from a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the stack.
    Stack,
    /// Refused; the guard's answer is queued on the connection.
    Answered,
    /// Refused without an answer (a broken response, nowhere to reply).
    Dropped,
    /// The stack no longer reads this connection.
    Closed,
}

/// A client connection registered with the stack.
pub struct Link {
    connection: SipConnection,
    to_stack: mpsc::UnboundedSender<TransportEvent>,
    replies: mpsc::UnboundedSender<Vec<u8>>,
    remote: SipAddr,
    socket: SocketAddr,
    metrics: GuardMetrics,
}

/// What to write on a connection: the stack's messages and the guard's answers, in order.
pub struct Outbox {
    from_stack: mpsc::UnboundedReceiver<TransportEvent>,
    replies: mpsc::UnboundedReceiver<Vec<u8>>,
    responses: IntCounterVec,
}

impl Link {
    /// Registers the connection from `socket` (arrived over `transport`) with the stack.
    pub async fn open(
        endpoint: &EndpointInnerRef,
        transport: Transport,
        socket: SocketAddr,
        metrics: GuardMetrics,
        shutdown: CancellationToken,
    ) -> rsipstack::Result<(Link, Outbox)> {
        let remote = SipAddr {
            r#type: Some(transport),
            addr: socket.into(),
        };
        // To rsipstack: what the client sends. From rsipstack: what to send to the client.
        let (to_stack, from_client) = mpsc::unbounded_channel();
        let (to_client, from_stack) = mpsc::unbounded_channel();
        let (replies, queued) = mpsc::unbounded_channel();
        let connection = ChannelConnection::create_connection(
            from_client,
            to_client,
            remote.clone(),
            Some(shutdown),
        )
        .await?;
        let connection = SipConnection::Channel(connection);
        endpoint.transport_layer.add_connection(connection.clone());
        let outbox = Outbox {
            from_stack,
            replies: queued,
            responses: metrics.responses.clone(),
        };
        let link = Link {
            connection,
            to_stack,
            replies,
            remote,
            socket,
            metrics,
        };
        Ok((link, outbox))
    }

    /// Judges one message and hands it to the stack or answers it.
    pub fn deliver(&self, bytes: &[u8]) -> Delivery {
        let (verdict, parsed) = guard::judge_keeping(bytes);
        match verdict {
            Verdict::Pass => {}
            Verdict::Drop => {
                self.metrics.malformed.inc();
                return Delivery::Dropped;
            }
            Verdict::Reply(answer) => {
                self.metrics.malformed.inc();
                tracing::debug!(remote = %self.socket, "malformed SIP answered");
                return match self.replies.send(answer) {
                    Ok(()) => Delivery::Answered,
                    Err(_) => Delivery::Closed,
                };
            }
        }
        // Keep-alives (whitespace only, the one pass with no message): nothing for the stack.
        let Some(parsed) = parsed else {
            return Delivery::Dropped;
        };
        let transport = self.remote.r#type.unwrap_or_default();
        if let Some(front) = &self.metrics.front
            && let Some(answer) = front.answer(&parsed, self.socket, transport)
        {
            if answer.is_empty() {
                return Delivery::Dropped; // absorbed: the ACK of a stateless 503
            }
            return match self.replies.send(answer) {
                Ok(()) => Delivery::Answered,
                Err(_) => Delivery::Closed,
            };
        }
        let Some(msg) = self.received(parsed) else {
            self.metrics.malformed.inc();
            return Delivery::Dropped;
        };
        let event = TransportEvent::Incoming(msg, self.connection.clone(), self.remote.clone());
        match self.to_stack.send(event) {
            Ok(()) => Delivery::Stack,
            Err(_) => Delivery::Closed,
        }
    }

    /// Queues raw bytes for the client (a keep-alive answer, a refusal of a message that
    /// cannot be framed).
    pub fn send_raw(&self, bytes: Vec<u8>) {
        self.replies.send(bytes).ok();
    }

    /// The message, with `received`/`rport` on a request's Via as on UDP.
    fn received(&self, msg: SipMessage) -> Option<SipMessage> {
        let transport = self.remote.r#type.unwrap_or_default();
        SipConnection::update_msg_received(msg, self.socket, transport).ok()
    }
}

impl Outbox {
    /// The next bytes to write; `None` once the stack and the guard are both done.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            let bytes = tokio::select! {
                // The guard's answers first: they answer what was read before.
                biased;
                Some(bytes) = self.replies.recv() => bytes,
                event = self.from_stack.recv() => match event? {
                    TransportEvent::Incoming(msg, _, _) => msg.to_bytes().to_vec(),
                    _ => continue,
                },
            };
            guard::count_sent(&self.responses, &bytes);
            return Some(bytes);
        }
    }

    /// [`Outbox::next`] until `stop`: what is already pending is still handed out first, so
    /// answers are written before the connection closes.
    pub async fn next_until(&mut self, stop: &CancellationToken) -> Option<Vec<u8>> {
        tokio::select! {
            biased;
            bytes = self.next() => bytes,
            _ = stop.cancelled() => None,
        }
    }
}
