//! The anchored RTP relay of one bridged call: two UDP sockets and the tasks between them.
//!
//! Leg A faces the caller (SIP trunk), leg B the seat's softphone. Whatever arrives on A is
//! sent from B's socket to B's remote, and vice versa, so each side sees one stable peer
//! (our socket) whatever happens behind it (queue, transfer to another seat).
//!
//! Remotes follow symmetric RTP (comedia): the SDP address set by [`MediaRelay::set_remote`]
//! is only a first guess; the first RTP packet received on a leg latches that leg's remote
//! to the packet's source, which is what gets through NAT. After latching, packets from any
//! other source are dropped (no injection into an emergency call); setting the remote again
//! (new SDP, e.g. a new seat) re-arms latching.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use prometheus::{IntCounter, IntCounterVec};
use serde::Serialize;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ports::PortPool;
use super::stream::OutboundStream;

#[cfg(test)]
mod tests;

/// Ports tried per socket before giving up when ports are taken by someone else.
const BIND_ATTEMPTS: usize = 8;

/// Large enough for any RTP packet we relay (audio fits well within an MTU).
const RECV_BUF: usize = 2048;

/// Smallest valid RTP packet: the fixed header.
const RTP_HEADER_LEN: usize = 12;

/// One side of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Leg {
    /// The caller, behind the SIP trunk.
    A,
    /// The seat's softphone.
    B,
}

impl Leg {
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    pub(crate) fn idx(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }

    /// `direction` label of packets received on this leg.
    fn direction(self) -> &'static str {
        match self {
            Leg::A => "caller_to_seat",
            Leg::B => "seat_to_caller",
        }
    }
}

/// Errors setting up a relay.
#[derive(Debug, Error)]
pub enum MediaError {
    #[error("RTP port pool exhausted")]
    PortsExhausted,
    #[error("cannot bind RTP socket on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Counters of one leg, snapshot. `rx_*` count every datagram received on the leg's
/// socket, `tx_*` what was sent out of it; `dropped` counts received datagrams not
/// forwarded (not RTP, wrong source after latching, other leg's remote unknown, send error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LegStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub dropped: u64,
}

/// Counters of both legs, snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    pub a: LegStats,
    pub b: LegStats,
}

#[derive(Debug, Default)]
struct LegCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    dropped: AtomicU64,
}

impl LegCounters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LegStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LegStats {
            rx_packets: get(&self.rx_packets),
            rx_bytes: get(&self.rx_bytes),
            tx_packets: get(&self.tx_packets),
            tx_bytes: get(&self.tx_bytes),
            dropped: get(&self.dropped),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Remote {
    addr: Option<SocketAddr>,
    /// A packet has fixed `addr`; only that source is accepted until the next SDP.
    latched: bool,
}

#[derive(Debug, Default)]
struct LegShared {
    counters: LegCounters,
    remote: Mutex<Remote>,
    /// Bumped on each new SDP remote: a new party on this leg (another seat) is a new
    /// source for the stream sent to the other leg.
    generation: AtomicU64,
}

impl LegShared {
    fn remote(&self) -> Remote {
        *self.remote.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_remote(&self, addr: SocketAddr) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let mut r = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        *r = Remote {
            addr: Some(addr),
            latched: false,
        };
    }

    /// Latches on the first RTP source; afterwards accepts only that source.
    fn accept_source(&self, leg: Leg, src: SocketAddr) -> bool {
        let mut r = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        if r.latched {
            return r.addr == Some(src);
        }
        if r.addr != Some(src) {
            info!(?leg, from = ?r.addr, to = %src, "RTP remote latched to packet source");
        }
        *r = Remote {
            addr: Some(src),
            latched: true,
        };
        true
    }
}

/// A port taken from the pool, given back on drop.
#[derive(Debug)]
struct Lease {
    pool: Arc<PortPool>,
    port: u16,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

/// The RTP relay of one call. Bind it, write [`local_addr`](Self::local_addr) of each leg
/// into the SDP sent to that side, feed each side's SDP address to
/// [`set_remote`](Self::set_remote), then [`start`](Self::start) it. Dropping it stops
/// the relay and gives the ports back.
#[derive(Debug)]
pub struct MediaRelay {
    sockets: [Arc<UdpSocket>; 2],
    local: [SocketAddr; 2],
    legs: Arc<[LegShared; 2]>,
    cancel: CancellationToken,
    started: AtomicBool,
    _leases: [Lease; 2],
}

impl MediaRelay {
    /// Binds the two legs' sockets on `ip`, on even ports from `pool`.
    pub async fn bind(ip: IpAddr, pool: &Arc<PortPool>) -> Result<MediaRelay, MediaError> {
        let (sock_a, lease_a) = bind_one(ip, pool).await?;
        let (sock_b, lease_b) = bind_one(ip, pool).await?;
        let local = [
            SocketAddr::new(ip, lease_a.port),
            SocketAddr::new(ip, lease_b.port),
        ];
        Ok(MediaRelay {
            sockets: [Arc::new(sock_a), Arc::new(sock_b)],
            local,
            legs: Arc::default(),
            cancel: CancellationToken::new(),
            started: AtomicBool::new(false),
            _leases: [lease_a, lease_b],
        })
    }

    /// Our address for `leg`: what goes in the SDP sent to that side.
    pub fn local_addr(&self, leg: Leg) -> SocketAddr {
        self.local[leg.idx()]
    }

    /// Sets `leg`'s remote from its SDP and re-arms latching.
    pub fn set_remote(&self, leg: Leg, addr: SocketAddr) {
        self.legs[leg.idx()].set_remote(addr);
    }

    /// Where packets for `leg` currently go (SDP guess or latched source).
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.idx()].remote().addr
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats {
            a: self.legs[0].counters.snapshot(),
            b: self.legs[1].counters.snapshot(),
        }
    }

    /// Spawns the forwarding tasks (one per direction) on the current tokio runtime.
    /// `metrics`, if given, must have exactly the label `direction`; it is incremented
    /// once per relayed packet. Calling `start` again is a no-op.
    pub fn start(&self, metrics: Option<IntCounterVec>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        for leg in [Leg::A, Leg::B] {
            let counter = metrics.as_ref().and_then(|m| {
                m.get_metric_with_label_values(&[leg.direction()])
                    .inspect_err(|e| warn!(error = %e, "RTP metrics vector unusable"))
                    .ok()
            });
            let fwd = Forwarder {
                from: leg,
                rx: Arc::clone(&self.sockets[leg.idx()]),
                tx: Arc::clone(&self.sockets[leg.other().idx()]),
                legs: Arc::clone(&self.legs),
                counter,
                stream: OutboundStream::new(rand::random(), rand::random()),
                started: Instant::now(),
            };
            tokio::spawn(fwd.run(self.cancel.clone()));
        }
    }

    /// Stops forwarding; the sockets close once the tasks notice.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for MediaRelay {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn bind_one(ip: IpAddr, pool: &Arc<PortPool>) -> Result<(UdpSocket, Lease), MediaError> {
    let mut last_err = None;
    for _ in 0..BIND_ATTEMPTS {
        let port = pool.allocate().ok_or(MediaError::PortsExhausted)?;
        // Leased before binding so a failure gives the port back (rotation skips it next).
        let lease = Lease {
            pool: Arc::clone(pool),
            port,
        };
        let addr = SocketAddr::new(ip, port);
        match UdpSocket::bind(addr).await {
            Ok(sock) => return Ok((sock, lease)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                debug!(%addr, "RTP port taken outside the pool, trying the next");
                last_err = Some(MediaError::Bind { addr, source: e });
            }
            Err(e) => return Err(MediaError::Bind { addr, source: e }),
        }
    }
    Err(last_err.unwrap_or(MediaError::PortsExhausted))
}

/// RTP version 2 with at least a fixed header (RTCP, when muxed, passes too).
fn looks_like_rtp(pkt: &[u8]) -> bool {
    pkt.len() >= RTP_HEADER_LEN && pkt[0] >> 6 == 2
}

/// One direction: receives on `from`'s socket, sends from the other leg's socket.
struct Forwarder {
    from: Leg,
    rx: Arc<UdpSocket>,
    tx: Arc<UdpSocket>,
    legs: Arc<[LegShared; 2]>,
    counter: Option<IntCounter>,
    /// The stream the other leg receives: one SSRC, continuous across source switches.
    stream: OutboundStream,
    started: Instant,
}

impl Forwarder {
    async fn run(mut self, cancel: CancellationToken) {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.rx.recv_from(&mut buf) => r,
            };
            match received {
                Ok((n, src)) => self.forward(&mut buf[..n], src).await,
                // Transient on UDP (e.g. ICMP reported by some OSes); keep relaying.
                Err(e) => debug!(leg = ?self.from, error = %e, "RTP receive error"),
            }
        }
    }

    async fn forward(&mut self, pkt: &mut [u8], src: SocketAddr) {
        let ingress = &self.legs[self.from.idx()];
        let egress = &self.legs[self.from.other().idx()];
        let c = &ingress.counters;
        LegCounters::add(&c.rx_packets, 1);
        LegCounters::add(&c.rx_bytes, pkt.len());
        if !looks_like_rtp(pkt) || !ingress.accept_source(self.from, src) {
            LegCounters::add(&c.dropped, 1);
            return;
        }
        // Per-packet hook (recording goes here too). Payload passes untouched (PCMU/PCMA);
        // the header is rewritten so the other leg sees one continuous stream.
        let source = ingress.generation.load(Ordering::Relaxed);
        let now_samples = self.started.elapsed().as_millis() as u64 * 8;
        self.stream.relay(pkt, source, now_samples);
        let Some(dst) = egress.remote().addr else {
            // The other side is not connected yet (call still queued).
            LegCounters::add(&c.dropped, 1);
            return;
        };
        match self.tx.send_to(pkt, dst).await {
            Ok(sent) => {
                LegCounters::add(&egress.counters.tx_packets, 1);
                LegCounters::add(&egress.counters.tx_bytes, sent);
                if let Some(counter) = &self.counter {
                    counter.inc();
                }
            }
            Err(e) => {
                debug!(leg = ?self.from.other(), %dst, error = %e, "RTP send error");
                LegCounters::add(&c.dropped, 1);
            }
        }
    }
}
