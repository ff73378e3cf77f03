//! The outbound trunk over TLS (`[trunk] outbound_transport = "tls"`): one connection to
//! `[trunk] outbound`, dialled at start-up and again whenever it drops (1 s, doubling up
//! to 30 s between tries), that trusts the operator's pinned certificates only
//! ([`crate::net::tls_pin`]) and presents the `[tls]` certificate.
//!
//! The connection is registered with the stack under the trunk's address with transport
//! TLS, so the forwards' INVITEs (destination TLS at that address) and their dialogs find
//! it in the stack's connection cache; what the operator sends on it is read by the same
//! loop and guard as an accepted connection ([`crate::net::sip_tcp`]). While it is down
//! ([`LinkState`]), a forward fails at once and the call goes back to its queue (the stack
//! would otherwise hold the INVITE until its timer B, 32 s).

use crate::net::limits::LogThrottle;
use crate::net::sip_stream::GuardMetrics;
use crate::net::sip_tcp::Client;
use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

/// First wait before dialling again; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// TCP keep-alive: probes after 30 s of silence, every 10 s, 3 unanswered close the
/// connection. A flow that died silently (a firewall or NAT forgetting it) is seen within
/// about a minute and redialled, instead of a forward sent into it waiting 32 s for nothing;
/// the probes also keep such middleboxes' state fresh. No SIP pongs are required: not every
/// operator answers CRLF pings.
const KEEPALIVE: (Duration, Duration, u32) = (Duration::from_secs(30), Duration::from_secs(10), 3);

/// Whether the connection to the operator is up now.
#[derive(Clone, Default)]
pub struct LinkState(Arc<AtomicBool>);

impl LinkState {
    /// True while connected.
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed);
    }
}

/// Keeps the connection to the operator open.
pub struct TrunkDialer {
    /// `[trunk] outbound`.
    pub target: SocketAddr,
    /// Pinned operator certificates, our certificate.
    pub connector: TlsConnector,
    /// The guard's counters.
    pub metrics: GuardMetrics,
    /// Time to connect and finish the handshake; then for a message begun.
    pub message_timeout: Duration,
    /// Silence after which the connection is closed (and dialled again).
    pub idle_timeout: Duration,
    /// Failures logged once per this interval.
    pub log_every: Duration,
    /// Set while connected.
    pub state: LinkState,
}

impl TrunkDialer {
    /// Dials and serves the connection until `shutdown`.
    pub async fn run(self, endpoint: EndpointInnerRef, shutdown: CancellationToken) {
        let mut backoff = MIN_BACKOFF;
        let mut failures = LogThrottle::new(self.log_every);
        let target = self.target;
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                connected = self.connect() => connected,
            };
            match connected {
                Ok(stream) => {
                    backoff = MIN_BACKOFF;
                    tracing::info!(%target, "outbound trunk connected over TLS");
                    let client = Client {
                        endpoint: endpoint.clone(),
                        transport: Transport::Tls,
                        remote: target,
                        metrics: self.metrics.clone(),
                        done: shutdown.child_token(),
                        message_timeout: self.message_timeout,
                        idle_timeout: self.idle_timeout,
                    };
                    let never = CancellationToken::new();
                    self.state.set(true);
                    let ended = client.serve(stream, &never, None).await;
                    self.state.set(false);
                    if shutdown.is_cancelled() {
                        return;
                    }
                    let reason = ended.err().map(|e| e.to_string());
                    tracing::warn!(%target, ?reason, "outbound trunk TLS connection closed");
                }
                Err(e) => {
                    if let Some(unlogged) = failures.hit(std::time::Instant::now()) {
                        tracing::warn!(%target, error = %e, unlogged, "cannot connect to the outbound trunk over TLS");
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let dial = async {
            let tcp = TcpStream::connect(self.target).await?;
            let (idle, interval, retries) = KEEPALIVE;
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(interval)
                .with_retries(retries);
            socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive)?;
            let name = ServerName::IpAddress(self.target.ip().into());
            self.connector.connect(name, tcp).await
        };
        match tokio::time::timeout(self.message_timeout, dial).await {
            Ok(result) => result,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}
