//! The anchored media of one call: two UDP sockets and the task between them.
//!
//! Leg A faces the caller (SIP trunk), leg B the seat's softphone. One tokio task per call
//! receives on both sockets, runs the sans-IO [`MediaSession`] (what each leg hears,
//! digits, recording taps) and sends from each leg's socket to that leg's remote, so each
//! side sees one stable peer (our socket) whatever happens behind it (greeting, queue,
//! transfer to another seat).
//!
//! Remotes follow symmetric RTP (comedia): the SDP address set by [`MediaRelay::set_remote`]
//! is only a first guess; the first RTP packet received on a leg latches that leg's remote
//! to the packet's source, which is what gets through NAT. After latching, packets from any
//! other source are dropped (no injection into an emergency call); setting the remote again
//! (new SDP, e.g. a new seat) re-arms latching.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec};
use serde::Serialize;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::dtmf::DigitEvent;
use super::playback::Announcement;
use super::ports::PortPool;
use super::rtcp::{LegQuality, is_rtcp};
use super::sdp::LegCodecs;
use super::session::{MediaSession, Outgoing, RecordSink};
use crate::time::{EpochMillis, wall_clock_now};

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
    /// Interim: shares B's socket until the three-leg relay lands.
    C,
}

impl Leg {
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B | Leg::C => Leg::A,
        }
    }

    pub(crate) fn idx(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B | Leg::C => 1,
        }
    }

    /// `direction` label of packets received on this leg.
    fn direction(self) -> &'static str {
        match self {
            Leg::A => "caller_to_seat",
            Leg::B | Leg::C => "seat_to_caller",
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
}

impl LegShared {
    fn remote(&self) -> Remote {
        *self.remote.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_remote(&self, addr: SocketAddr) {
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

/// Instructions to the relay task.
enum Command {
    Codecs(Leg, LegCodecs),
    Receiving(Leg, bool),
    Play(Announcement, u64),
    Bridge,
    Record(Box<dyn RecordSink>),
    Finish(oneshot::Sender<MediaReport>),
}

/// What the media of a call tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaNotice {
    /// The caller pressed a key.
    Digit(DigitEvent),
    /// The greeting of the [`MediaRelay::play`] numbered `play` has been sent out entirely.
    PromptEnded { play: u64 },
}

/// Called with each notice (from the relay task).
pub type NoticeHandler = Box<dyn Fn(MediaNotice) + Send + 'static>;

/// What is left of a call's media when it ends.
pub struct MediaReport {
    pub stats: RelayStats,
    /// Loss, jitter, round trip: caller leg, seat leg.
    pub quality: [LegQuality; 2],
    /// The recording, to be finished by the owner (blocking IO).
    pub recorder: Option<Box<dyn RecordSink>>,
}

/// The media of one call. Bind it, write [`local_addr`](Self::local_addr) of each leg into
/// the SDP sent to that side, give each side's address and codecs with
/// [`set_remote`](Self::set_remote) and [`set_codecs`](Self::set_codecs), then
/// [`start`](Self::start) it; say what the caller hears with [`play`](Self::play) and
/// [`bridge`](Self::bridge). [`finish`](Self::finish) ends it and hands back the
/// recording; dropping it stops the task and gives the ports back.
pub struct MediaRelay {
    sockets: [Arc<UdpSocket>; 2],
    rtcp_sockets: [Arc<UdpSocket>; 2],
    local: [SocketAddr; 2],
    legs: Arc<[LegShared; 2]>,
    cancel: CancellationToken,
    commands: mpsc::UnboundedSender<Command>,
    /// Taken by [`start`](Self::start); commands sent before wait in the channel.
    pending: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    _leases: [Lease; 2],
}

impl std::fmt::Debug for MediaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRelay")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl MediaRelay {
    /// Binds the two legs' sockets on `ip`, on even ports from `pool`.
    pub async fn bind(ip: IpAddr, pool: &Arc<PortPool>) -> Result<MediaRelay, MediaError> {
        let a = bind_one(ip, pool).await?;
        let b = bind_one(ip, pool).await?;
        let local = [
            SocketAddr::new(ip, a.lease.port),
            SocketAddr::new(ip, b.lease.port),
        ];
        let (commands, pending) = mpsc::unbounded_channel();
        let (lease_a, lease_b) = (a.lease, b.lease);
        Ok(MediaRelay {
            sockets: [Arc::new(a.rtp), Arc::new(b.rtp)],
            rtcp_sockets: [Arc::new(a.rtcp), Arc::new(b.rtcp)],
            local,
            legs: Arc::default(),
            cancel: CancellationToken::new(),
            commands,
            pending: Mutex::new(Some(pending)),
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

    /// The codecs of a (new) peer on `leg`; until set, the leg's packets are dropped.
    pub fn set_codecs(&self, leg: Leg, codecs: LegCodecs) {
        self.send(Command::Codecs(leg, codecs));
    }

    /// Whether `leg`'s peer wants our audio (false: it put us on hold).
    pub fn set_receiving(&self, leg: Leg, receiving: bool) {
        self.send(Command::Receiving(leg, receiving));
    }

    /// The caller hears `announcement` (and the seat leg nothing); the end of its greeting
    /// is reported as [`MediaNotice::PromptEnded`] with `play`.
    pub fn play(&self, announcement: Announcement, play: u64) {
        self.send(Command::Play(announcement, play));
    }

    /// Caller and seat hear each other.
    pub fn bridge(&self, _leg: Leg) {
        self.send(Command::Bridge);
    }

    /// Interim: a two-leg bridge until the three-leg relay lands.
    pub fn conference(&self) {
        self.send(Command::Bridge);
    }

    /// Records the call from now on.
    pub fn record(&self, sink: Box<dyn RecordSink>) {
        self.send(Command::Record(sink));
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

    /// Spawns the relay task on the current tokio runtime. `metrics`, if given, must have
    /// exactly the label `direction`; it is incremented once per relayed packet.
    /// `notices` hears the caller's key presses and the ends of greetings. Calling `start`
    /// again is a no-op.
    pub fn start(&self, metrics: Option<IntCounterVec>, notices: NoticeHandler) {
        let Some(commands) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let counters = [Leg::A, Leg::B].map(|leg| {
            metrics.as_ref().and_then(|m| {
                m.get_metric_with_label_values(&[leg.direction()])
                    .inspect_err(|e| warn!(error = %e, "RTP metrics vector unusable"))
                    .ok()
            })
        });
        let clock = Clock::new();
        let task = RelayTask {
            sockets: self.sockets.clone(),
            rtcp_sockets: self.rtcp_sockets.clone(),
            rtcp_remote: [None, None],
            rtcp_mux: [false, false],
            legs: Arc::clone(&self.legs),
            session: MediaSession::new(clock.now(), rand::random(), rand::random()),
            clock,
            relayed: counters,
            notices,
            playing: 0,
            out: Vec::new(),
        };
        tokio::spawn(task.run(commands, self.cancel.clone()));
    }

    /// Ends the media and returns its figures and recording. Without a running task
    /// (never started, or stopped), only the counters.
    pub async fn finish(self) -> MediaReport {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Finish(tx));
        let started = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        match (started, rx.await) {
            (true, Ok(report)) => report,
            _ => MediaReport {
                stats: self.stats(),
                quality: Default::default(),
                recorder: None,
            },
        }
    }

    fn send(&self, command: Command) {
        // The task is gone only after stop/finish: nothing left to do then.
        self.commands.send(command).ok();
    }
}

impl Drop for MediaRelay {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Milliseconds on a monotonic clock that reads like epoch time (digit timestamps).
struct Clock {
    epoch: EpochMillis,
    started: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            epoch: wall_clock_now(),
            started: Instant::now(),
        }
    }

    fn now(&self) -> EpochMillis {
        self.epoch + self.started.elapsed().as_millis() as u64
    }

    fn instant(&self, at: EpochMillis) -> Instant {
        self.started + Duration::from_millis(at.saturating_sub(self.epoch))
    }
}

/// The RTP and RTCP sockets of one leg, on an even port and the odd one above.
struct LegSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    lease: Lease,
}

async fn bind_one(ip: IpAddr, pool: &Arc<PortPool>) -> Result<LegSockets, MediaError> {
    let mut last_err = None;
    for _ in 0..BIND_ATTEMPTS {
        let port = pool.allocate().ok_or(MediaError::PortsExhausted)?;
        // Leased before binding so a failure gives the port back (rotation skips it next).
        let lease = Lease {
            pool: Arc::clone(pool),
            port,
        };
        let rtp_addr = SocketAddr::new(ip, port);
        let rtcp_addr = SocketAddr::new(ip, port + 1);
        let bound = match UdpSocket::bind(rtp_addr).await {
            Ok(rtp) => UdpSocket::bind(rtcp_addr)
                .await
                .map(|rtcp| (rtp, rtcp))
                .map_err(|e| (rtcp_addr, e)),
            Err(e) => Err((rtp_addr, e)),
        };
        match bound {
            Ok((rtp, rtcp)) => return Ok(LegSockets { rtp, rtcp, lease }),
            Err((addr, e)) if e.kind() == io::ErrorKind::AddrInUse => {
                debug!(%addr, "RTP/RTCP port taken outside the pool, trying the next");
                last_err = Some(MediaError::Bind { addr, source: e });
            }
            Err((addr, e)) => return Err(MediaError::Bind { addr, source: e }),
        }
    }
    Err(last_err.unwrap_or(MediaError::PortsExhausted))
}

/// RTP version 2 with at least a fixed header.
fn looks_like_rtp(pkt: &[u8]) -> bool {
    pkt.len() >= RTP_HEADER_LEN && pkt[0] >> 6 == 2
}

/// The task of one call: receives on both legs, runs the [`MediaSession`], sends.
struct RelayTask {
    sockets: [Arc<UdpSocket>; 2],
    rtcp_sockets: [Arc<UdpSocket>; 2],
    /// Where each peer's RTCP comes from (latched like RTP); until then, RTP port + 1.
    rtcp_remote: [Option<SocketAddr>; 2],
    /// The peer multiplexes RTCP on its RTP port (RFC 5761): reply there.
    rtcp_mux: [bool; 2],
    legs: Arc<[LegShared; 2]>,
    session: MediaSession,
    clock: Clock,
    /// Relayed-packet counters, by the leg packets come from.
    relayed: [Option<IntCounter>; 2],
    notices: NoticeHandler,
    /// Number of the current [`MediaRelay::play`].
    playing: u64,
    out: Vec<Outgoing>,
}

impl RelayTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
    ) {
        let mut bufs = [(); 4].map(|_| vec![0u8; RECV_BUF]);
        let sockets = self.sockets.clone();
        let rtcp = self.rtcp_sockets.clone();
        loop {
            let deadline = self.session.poll_timeout().map(|t| self.clock.instant(t));
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let [buf_a, buf_b, rtcp_a, rtcp_b] = &mut bufs;
            tokio::select! {
                _ = cancel.cancelled() => break,
                command = commands.recv() => match command {
                    Some(Command::Finish(reply)) => {
                        reply.send(self.finish()).ok();
                        break;
                    }
                    Some(command) => self.command(command),
                    None => break,
                },
                r = sockets[0].recv_from(buf_a) => self.received(Leg::A, r, buf_a),
                r = sockets[1].recv_from(buf_b) => self.received(Leg::B, r, buf_b),
                r = rtcp[0].recv_from(rtcp_a) => self.received_rtcp(Leg::A, r, rtcp_a, false),
                r = rtcp[1].recv_from(rtcp_b) => self.received_rtcp(Leg::B, r, rtcp_b, false),
                _ = timer => {
                    let now = self.clock.now();
                    self.session.on_timeout(now, &mut self.out);
                }
            }
            self.flush();
        }
    }

    fn command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Codecs(leg, codecs) => self.session.set_codecs(leg, codecs),
            Command::Receiving(leg, receiving) => self.session.set_receiving(leg, receiving),
            Command::Play(announcement, play) => {
                self.playing = play;
                self.session.play(announcement, now);
            }
            Command::Bridge => self.session.bridge(),
            Command::Record(sink) => self.session.start_recording(sink, now),
            Command::Finish(_) => {}
        }
    }

    fn received(&mut self, leg: Leg, r: io::Result<(usize, SocketAddr)>, buf: &mut [u8]) {
        let (n, src) = match r {
            Ok(r) => r,
            // Transient on UDP (e.g. ICMP reported by some OSes); keep relaying.
            Err(e) => {
                debug!(?leg, error = %e, "RTP receive error");
                return;
            }
        };
        if is_rtcp(&buf[..n]) {
            return self.received_rtcp(leg, Ok((n, src)), buf, true);
        }
        let pkt = &mut buf[..n];
        let ingress = &self.legs[leg.idx()];
        let c = &ingress.counters;
        LegCounters::add(&c.rx_packets, 1);
        LegCounters::add(&c.rx_bytes, n);
        if !looks_like_rtp(pkt) || !ingress.accept_source(leg, src) {
            LegCounters::add(&c.dropped, 1);
            return;
        }
        match self.session.on_rtp(leg, pkt, self.clock.now()) {
            Some(to) => {
                if self.send(to, pkt)
                    && let Some(counter) = &self.relayed[leg.idx()]
                {
                    counter.inc();
                }
            }
            // Not forwarded: nobody to hear it yet (queued), or not negotiated.
            None => LegCounters::add(&c.dropped, 1),
        }
    }

    /// An RTCP packet from `leg`'s peer, on the RTCP socket or muxed on the RTP one. Only
    /// the peer's address is listened to (its RTP address's host).
    fn received_rtcp(
        &mut self,
        leg: Leg,
        r: io::Result<(usize, SocketAddr)>,
        buf: &[u8],
        muxed: bool,
    ) {
        let Ok((n, src)) = r else { return };
        let peer = self.legs[leg.idx()].remote().addr;
        if peer.is_some_and(|p| p.ip() != src.ip()) {
            return;
        }
        self.rtcp_mux[leg.idx()] = muxed;
        self.rtcp_remote[leg.idx()] = Some(src);
        self.session.on_rtcp(leg, &buf[..n], self.clock.now());
    }

    /// Sends what the session produced, and hands over digits and prompt ends.
    fn flush(&mut self) {
        for o in std::mem::take(&mut self.out) {
            if o.rtcp {
                self.send_rtcp(o.leg, &o.packet);
            } else {
                self.send(o.leg, &o.packet);
            }
        }
        while let Some(digit) = self.session.poll_digit() {
            (self.notices)(MediaNotice::Digit(digit));
        }
        if self.session.take_prompt_ended() {
            (self.notices)(MediaNotice::PromptEnded { play: self.playing });
        }
    }

    /// Sends to `leg`'s remote without waiting: real-time audio is dropped rather than
    /// delayed when the socket buffer is full.
    fn send(&self, leg: Leg, pkt: &[u8]) -> bool {
        let egress = &self.legs[leg.idx()];
        let Some(dst) = egress.remote().addr else {
            return false;
        };
        match self.sockets[leg.idx()].try_send_to(pkt, dst) {
            Ok(sent) => {
                LegCounters::add(&egress.counters.tx_packets, 1);
                LegCounters::add(&egress.counters.tx_bytes, sent);
                true
            }
            Err(e) => {
                debug!(?leg, %dst, error = %e, "RTP send error");
                LegCounters::add(&egress.counters.dropped, 1);
                false
            }
        }
    }

    fn send_rtcp(&self, leg: Leg, pkt: &[u8]) {
        let i = leg.idx();
        let Some(rtp) = self.legs[i].remote().addr else {
            return;
        };
        let (socket, dst) = if self.rtcp_mux[i] {
            (&self.sockets[i], rtp)
        } else {
            let dst = self.rtcp_remote[i]
                .unwrap_or_else(|| SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)));
            (&self.rtcp_sockets[i], dst)
        };
        if let Err(e) = socket.try_send_to(pkt, dst) {
            debug!(?leg, %dst, error = %e, "RTCP send error");
        }
    }

    fn finish(&mut self) -> MediaReport {
        self.session.finish();
        self.flush();
        MediaReport {
            stats: RelayStats {
                a: self.legs[0].counters.snapshot(),
                b: self.legs[1].counters.snapshot(),
            },
            quality: [self.session.quality(Leg::A), self.session.quality(Leg::B)],
            recorder: self.session.take_recorder(),
        }
    }
}
