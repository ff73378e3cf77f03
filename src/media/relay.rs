//! The anchored media of one call: an RTP/RTCP socket pair per leg and the relay between them.
//!
//! A call takes its three ports from the pool at once (a call the pool cannot carry whole
//! is refused at its INVITE), but binds a leg's sockets only once that leg has an SDP to
//! negotiate: the caller's at once (its INVITE carries the offer), a seat leg's when the
//! router first writes our address into an offer to a seat ([`MediaRelay::local_addr`]).
//! A call that never reaches a seat, or never needs the third leg (C: accompanied
//! transfers, supervision), never opens those sockets. A leg opens on a pair another
//! call's leg left parked in the pool when one has rested long enough (its queue emptied
//! first), and its sockets are parked again when the call ends ([`super::ports`]).
//!
//! Leg A faces the caller (SIP trunk), legs B and C seats' softphones (C is the seat joining
//! during an accompanied transfer). A relay thread (one per core, `[media] relay_threads`;
//! [`engine`]) owns many calls' sockets: it receives in batches, runs each call's sans-IO
//! [`MediaSession`] (what each leg hears, digits, recording taps) and sends from each leg's
//! socket to that leg's remote, so each side sees one stable peer (our socket)
//! whatever happens behind it (greeting, queue, transfer to another seat, conference).
//!
//! Remotes follow symmetric RTP (comedia): the SDP address set by [`MediaRelay::set_remote`]
//! is only a first guess; the first RTP packet received on a leg latches that leg's remote
//! to the packet's source, which is what gets through NAT. After latching, packets from any
//! other source are dropped (no injection into an emergency call); setting the remote again
//! (new SDP, e.g. a new seat) re-arms latching.
//!
//! A seat leg may instead be a WebRTC peer ([`MediaRelay::attach_webrtc`]): its RTP then
//! comes and goes through the channels of a [`WebRtcIo`] rather than the leg's socket (no
//! latching, and RTCP is left to the WebRTC stack), until [`MediaRelay::detach_webrtc`]
//! gives the leg back its socket for the next (SIP) seat.
//!
//! A SIP leg may be SRTP (SDES keys, [`MediaRelay::set_srtp`]): what it receives is
//! unprotected before anything else looks at it (latching, liveness, digits, recording see
//! only authenticated packets; the rest are dropped and counted), what is sent to it is
//! protected last. Between legs, and in recordings, audio is plain.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{IntCounter, IntCounterVec};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::dtmf::DigitEvent;
use super::playback::Announcement;
use super::ports::PortPool;
use super::rtcp::{LegQuality, is_rtcp};
use super::sdp::LegCodecs;
use super::session::{Delivery, MediaSession, Monitor, Outgoing, RecordSink};
use super::srtp::{SrtpKeys, SrtpLeg};
use super::webrtc::WebRtcIo;
use crate::time::{EpochMillis, wall_clock_now};
pub use engine::set_relay_threads;
pub use sas_core::media::leg::Leg;
use task::RelayTask;
pub use task::kernel::KernelPath;

mod engine;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod srtp_tests;
mod task;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod webrtc_tests;

/// Ports tried per socket before giving up when ports are taken by someone else: each
/// attempt a different port.
const BIND_ATTEMPTS: usize = 32;

/// Datagrams read at most to empty a parked socket's queue before reuse; one still not
/// empty (a flood at a parked port) is closed instead.
const DRAIN_MAX: usize = 4096;

/// Large enough for any RTP packet we relay (audio fits well within an MTU).
const RECV_BUF: usize = 2048;

/// Smallest valid RTP packet: the fixed header.
const RTP_HEADER_LEN: usize = 12;

/// Errors setting up a relay.
#[derive(Debug, Error)]
pub enum MediaError {
    #[error("RTP port pool exhausted")]
    PortsExhausted,
    /// Every port tried failed to bind (held by another process, most likely).
    #[error("no RTP port could be bound; ports tried: {ports:?}")]
    PortsUnusable { ports: Vec<u16> },
}

/// Counters of one leg, snapshot. `rx_*` count every datagram received on the leg's
/// socket, `tx_*` what was sent out of it; `dropped` counts received datagrams that reached
/// nobody (not RTP, wrong source after latching, nobody listening, send error).
/// `rx_rtcp` counts the RTCP packets the leg's peer sent (a sign of life when a VAD trunk
/// sends no RTP during silence). `srtp_rejected` counts the datagrams of an SRTP leg that
/// failed authentication or the replay check, and only there (not in `rx_*`: the Router
/// takes received packets for signs of life, and forgeries must not keep a dead leg up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LegStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub dropped: u64,
    pub rx_rtcp: u64,
    pub srtp_rejected: u64,
}

/// Counters of every leg, snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    pub a: LegStats,
    pub b: LegStats,
    pub c: LegStats,
}

impl RelayStats {
    fn of(legs: &[LegShared; 3]) -> RelayStats {
        let [a, b, c] = legs.each_ref().map(|l| l.counters.snapshot());
        RelayStats { a, b, c }
    }
}

#[derive(Debug, Default)]
struct LegCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    dropped: AtomicU64,
    rx_rtcp: AtomicU64,
    srtp_rejected: AtomicU64,
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
            rx_rtcp: get(&self.rx_rtcp),
            srtp_rejected: get(&self.srtp_rejected),
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

/// A call's commands to its relay thread: futures' unbounded channel, 112 bytes and a
/// node per command (a call sends a dozen or so). tokio's allocated 1,312 bytes when
/// created (its cache-padded state and a first block of 32 commands), kept for the call's
/// life.
type CommandSender = futures_channel::mpsc::UnboundedSender<Command>;
/// The relay thread's end of [`CommandSender`].
type Commands = futures_channel::mpsc::UnboundedReceiver<Command>;

/// Instructions to the call on its relay thread. Kept small (the rare large payloads
/// boxed): each is a node of the call's channel until its thread takes it.
enum Command {
    Codecs(Leg, LegCodecs),
    Srtp(Leg, Option<Box<SrtpKeys>>),
    Receiving(Leg, bool),
    Play(Box<Announcement>, u64),
    Bridge(Leg),
    Conference,
    Monitor(Option<Monitor>),
    Record(Box<dyn RecordSink>),
    AttachWebRtc(Leg, WebRtcIo),
    DetachWebRtc(Leg),
    Finish(Box<OnFinish>),
    /// A leg's remote was set again ([`MediaRelay::set_remote`]).
    Remote,
    /// `leg`'s sockets, just bound (boxed: a command stays 24 bytes).
    Open(Leg, Box<LegSockets>),
}

/// What the media of a call tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaNotice {
    /// The caller pressed a key.
    Digit(DigitEvent),
    /// The greeting of the [`MediaRelay::play`] numbered `play` has been sent out entirely.
    PromptEnded { play: u64 },
}

/// Prometheus counters a relay adds to (none in most tests), and the kernel path its
/// calls may use.
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics {
    /// Label `direction`: received packets that reached another leg (relayed or mixed).
    pub relayed: Option<IntCounterVec>,
    /// Label `leg` (`caller`, `seat`): SRTP/SRTCP packets that failed authentication or
    /// the replay check, dropped.
    pub srtp_rejected: Option<IntCounterVec>,
    /// `[media] kernel_relay` on and the program attached.
    pub kernel: Option<KernelPath>,
}

/// Called with each notice (on its relay thread).
pub type NoticeHandler = Box<dyn Fn(MediaNotice) + Send + 'static>;

/// What is left of a call's media when it ends.
pub struct MediaReport {
    pub stats: RelayStats,
    /// Loss, jitter, round trip, by [`Leg::idx`].
    pub quality: [LegQuality; 3],
    /// The recording, to be finished by the owner (blocking IO).
    pub recorder: Option<Box<dyn RecordSink>>,
}

/// The media of one call. Bind it, write [`local_addr`](Self::local_addr) of each leg into
/// the SDP sent to that side, give each side's address and codecs with
/// [`set_remote`](Self::set_remote) and [`set_codecs`](Self::set_codecs), then
/// [`start`](Self::start) it; say who hears whom with [`play`](Self::play),
/// [`bridge`](Self::bridge) and [`conference`](Self::conference). [`finish`](Self::finish)
/// ends it and hands back the recording; dropping it ends the call on its relay thread and
/// gives the ports back.
pub struct MediaRelay {
    ip: IpAddr,
    pool: Arc<PortPool>,
    /// Each leg's port, and whether its sockets are bound (they then belong to the task).
    ports: Mutex<[LegPort; 3]>,
    legs: Arc<[LegShared; 3]>,
    commands: CommandSender,
    /// Taken by [`start`](Self::start); commands sent before wait in the channel.
    pending: Mutex<Option<Commands>>,
}

impl std::fmt::Debug for MediaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRelay")
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl MediaRelay {
    /// Takes the three legs' ports from `pool` (even ports on `ip`, with the odd one above
    /// for RTCP: a call takes six) and binds the caller's, whose SDP is negotiated now; the
    /// seat legs are bound when first needed (see the module doc).
    pub async fn bind(ip: IpAddr, pool: &Arc<PortPool>) -> Result<MediaRelay, MediaError> {
        let lease = || -> Result<LegPort, MediaError> {
            let port = pool.allocate().ok_or(MediaError::PortsExhausted)?;
            let lease = Lease {
                pool: Arc::clone(pool),
                port,
            };
            Ok(LegPort {
                lease,
                bound: false,
            })
        };
        let ports = [lease()?, lease()?, lease()?];
        let (commands, pending) = futures_channel::mpsc::unbounded();
        let relay = MediaRelay {
            ip,
            pool: Arc::clone(pool),
            ports: Mutex::new(ports),
            legs: Arc::default(),
            commands,
            pending: Mutex::new(Some(pending)),
        };
        relay.open(Leg::A)?;
        Ok(relay)
    }

    /// Our address for `leg`: what goes in the SDP sent to that side. Binds the leg's
    /// sockets the first time; when no port can be bound (the free ones held by other
    /// programs), says so loudly and gives the leased port: that leg carries no media.
    pub fn local_addr(&self, leg: Leg) -> SocketAddr {
        self.open(leg).unwrap_or_else(|e| {
            error!(?leg, error = %e, "no RTP port for a call leg: it carries no media");
            let ports = self.ports.lock().unwrap_or_else(PoisonError::into_inner);
            SocketAddr::new(self.ip, ports[leg.idx()].lease.port)
        })
    }

    /// Binds `leg`'s sockets if they are not yet (on its leased port, else on the next
    /// ports of the pool that bind) and hands them to the task; returns our address.
    pub fn open(&self, leg: Leg) -> Result<SocketAddr, MediaError> {
        let mut ports = self.ports.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut ports[leg.idx()];
        if !slot.bound {
            let sockets = bind_one(self.ip, &self.pool, &mut slot.lease)?;
            slot.bound = true;
            self.send(Command::Open(leg, Box::new(sockets)));
        }
        Ok(SocketAddr::new(self.ip, slot.lease.port))
    }

    /// Whether `leg`'s sockets are bound.
    pub fn is_open(&self, leg: Leg) -> bool {
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)[leg.idx()].bound
    }

    /// Sets `leg`'s remote from its SDP and re-arms latching; binds the leg's sockets if
    /// they are not yet (a leg with a peer sends from them).
    pub fn set_remote(&self, leg: Leg, addr: SocketAddr) {
        self.local_addr(leg);
        self.legs[leg.idx()].set_remote(addr);
        self.send(Command::Remote);
    }

    /// The codecs of a (new) peer on `leg`; until set, the leg's packets are dropped.
    pub fn set_codecs(&self, leg: Leg, codecs: LegCodecs) {
        self.send(Command::Codecs(leg, codecs));
    }

    /// `leg`'s peer speaks SRTP with `keys` from now on (`None`: plain RTP). Until set,
    /// a leg is plain.
    pub fn set_srtp(&self, leg: Leg, keys: Option<SrtpKeys>) {
        self.send(Command::Srtp(leg, keys.map(Box::new)));
    }

    /// Whether `leg`'s peer wants our audio (false: it put us on hold).
    pub fn set_receiving(&self, leg: Leg, receiving: bool) {
        self.send(Command::Receiving(leg, receiving));
    }

    /// The caller hears `announcement` (and the seat legs nothing); the end of its
    /// greeting is reported as [`MediaNotice::PromptEnded`] with `play`.
    pub fn play(&self, announcement: Announcement, play: u64) {
        self.send(Command::Play(Box::new(announcement), play));
    }

    /// The caller and the seat on `seat` (B or C) hear each other; the other seat leg hears
    /// nothing and is not heard. `Leg::A` is ignored.
    pub fn bridge(&self, seat: Leg) {
        self.send(Command::Bridge(seat));
    }

    /// Each leg with codecs hears the mix of the others (accompanied transfer).
    pub fn conference(&self) {
        self.send(Command::Conference);
    }

    /// A supervisor on `monitor.supervisor` (the seat leg the call does not use) hears
    /// and is heard as its mode says while the caller is bridged to a seat; `None`: the
    /// supervisor is gone, caller and seat are relayed again.
    pub fn monitor(&self, monitor: Option<Monitor>) {
        self.send(Command::Monitor(monitor));
    }

    /// Records the call from now on.
    pub fn record(&self, sink: Box<dyn RecordSink>) {
        self.send(Command::Record(sink));
    }

    /// `leg`'s peer is WebRTC from now on: its RTP goes through `io`, not the leg's socket
    /// (whose traffic is dropped meanwhile), and [`set_remote`](Self::set_remote) no longer
    /// matters for it. Give the peer's codecs with [`set_codecs`](Self::set_codecs) as for
    /// any peer.
    pub fn attach_webrtc(&self, leg: Leg, io: WebRtcIo) {
        self.send(Command::AttachWebRtc(leg, io));
    }

    /// The WebRTC peer on `leg` is gone: the leg is back on its socket (a next seat over
    /// SIP gives its remote with [`set_remote`](Self::set_remote)).
    pub fn detach_webrtc(&self, leg: Leg) {
        self.send(Command::DetachWebRtc(leg));
    }

    /// Where packets for `leg` currently go (SDP guess or latched source).
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.idx()].remote().addr
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats::of(&self.legs)
    }

    /// Hands the call to a relay thread, counting into `metrics` (no tokio runtime needed).
    /// `notices` hears the caller's key presses and the ends of greetings. Calling `start`
    /// again is a no-op.
    pub fn start(&self, metrics: RelayMetrics, notices: NoticeHandler) {
        let Some(commands) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let counter = |vec: &Option<IntCounterVec>, label: &str| {
            vec.as_ref().and_then(|m| {
                m.get_metric_with_label_values(&[label])
                    .inspect_err(|e| warn!(error = %e, "RTP metrics vector unusable"))
                    .ok()
            })
        };
        let counters = Leg::ALL.map(|leg| counter(&metrics.relayed, leg.direction()));
        let rejected = Leg::ALL.map(|leg| {
            let side = if leg == Leg::A { "caller" } else { "seat" };
            counter(&metrics.srtp_rejected, side)
        });
        let counters = task::Counters {
            relayed: counters,
            srtp_rejected: rejected,
        };
        let task = RelayTask::new(
            Arc::clone(&self.legs),
            counters,
            notices,
            metrics.kernel.clone(),
        );
        engine::Engine::global().add(task, commands);
    }

    /// Ends the media and returns its figures and recording. Without a running task
    /// (never started, or stopped), only the counters.
    pub async fn finish(self) -> MediaReport {
        let (tx, rx) = oneshot::channel();
        self.finish_then(Box::new(move |report| _ = tx.send(report)));
        rx.await.expect("OnFinish always reports")
    }

    /// [`finish`](Self::finish), with `then` called with the report on the relay thread
    /// (at once on this one if the media never started): no task waits for it.
    pub fn finish_then(self, then: Box<dyn FnOnce(MediaReport) + Send>) {
        let MediaRelay {
            ports,
            legs,
            commands,
            pending,
            ..
        } = self;
        let on_finish = OnFinish {
            legs,
            ports: Some(ports.into_inner().unwrap_or_else(PoisonError::into_inner)),
            then: Some(then),
        };
        let started = pending
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        if started {
            // Refused (the thread dropped the call): `on_finish` reports the counters as
            // it is dropped.
            commands
                .unbounded_send(Command::Finish(Box::new(on_finish)))
                .ok();
        }
    }

    fn send(&self, command: Command) {
        // The task is gone only after stop/finish: nothing left to do then.
        self.commands.unbounded_send(command).ok();
    }
}

/// Reports a call's media once: with the relay thread's report, or, dropped unused (the
/// media never started, the thread dropped the call), with the counters alone.
pub(super) struct OnFinish {
    legs: Arc<[LegShared; 3]>,
    /// The call's ports, back to the pool as it reports (after the relay thread closed
    /// their sockets, so that no new call finds one still bound).
    ports: Option<[LegPort; 3]>,
    then: Option<Box<dyn FnOnce(MediaReport) + Send>>,
}

impl OnFinish {
    pub(super) fn report(mut self, report: MediaReport) {
        self.ports = None;
        if let Some(then) = self.then.take() {
            then(report);
        }
    }
}

impl Drop for OnFinish {
    fn drop(&mut self) {
        self.ports = None;
        if let Some(then) = self.then.take() {
            then(MediaReport {
                stats: RelayStats::of(&self.legs),
                quality: Default::default(),
                recorder: None,
            });
        }
    }
}

/// A leg's port, bound or not yet.
#[derive(Debug)]
struct LegPort {
    lease: Lease,
    bound: bool,
}

/// The RTP and RTCP sockets of one leg, on an even port and the odd one above.
struct LegSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// The RTP socket's address, as bound (no `getsockname` to learn it).
    local: SocketAddr,
    /// Where they are parked when the call ends.
    pool: Arc<PortPool>,
}

/// Empties a parked socket's queue (its last call's late packets) and clears a pending
/// error; false if it would not empty.
fn drained(socket: &UdpSocket) -> bool {
    // A datagram longer than the buffer is discarded whole.
    let mut buf = [0u8; 16];
    for _ in 0..DRAIN_MAX {
        match socket.recv(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            // A datagram, or an ICMP error reported once (the kernel clears it).
            _ => {}
        }
    }
    false
}

/// A parked pair on `ip` that has rested, emptied, with `lease` moved to its port.
fn reuse_parked(ip: IpAddr, pool: &Arc<PortPool>, lease: &mut Lease) -> Option<LegSockets> {
    let pair = pool.reuse(ip, Instant::now())?;
    let reused = Lease {
        pool: Arc::clone(pool),
        port: pair.port,
    };
    if !(drained(&pair.rtp) && drained(&pair.rtcp)) {
        warn!(port = pair.port, "parked RTP port still flooded: closed");
        return None;
    }
    *lease = reused;
    Some(LegSockets {
        rtp: pair.rtp,
        rtcp: pair.rtcp,
        local: SocketAddr::new(ip, pair.port),
        pool: Arc::clone(pool),
    })
}

/// A pair parked in the pool, or binds the RTP/RTCP pair of `lease`'s port; if that
/// fails, of the next ports the pool hands out, moving `lease` to the port that bound.
/// Plain `bind` syscalls (no address to resolve), non-blocking sockets for a relay thread.
fn bind_one(ip: IpAddr, pool: &Arc<PortPool>, lease: &mut Lease) -> Result<LegSockets, MediaError> {
    if let Some(sockets) = reuse_parked(ip, pool, lease) {
        return Ok(sockets);
    }
    let bind_pair = |port: u16| -> Result<LegSockets, (SocketAddr, io::Error)> {
        // Non-blocking from `socket(2)` on: no `ioctl` after it (four sockets a call).
        let bind = |addr: SocketAddr| {
            let kind = socket2::Type::DGRAM.nonblocking().cloexec();
            socket2::Socket::new(socket2::Domain::for_address(addr), kind, None)
                .and_then(|s| s.bind(&addr.into()).map(|()| s.into()))
                .map_err(|e| (addr, e))
        };
        let local = SocketAddr::new(ip, port);
        let rtp = bind(local)?;
        let rtcp = bind(SocketAddr::new(ip, port + 1))?;
        Ok(LegSockets {
            rtp,
            rtcp,
            local,
            pool: Arc::clone(pool),
        })
    };
    // Ports that failed stay leased until we return, so the pool hands out the next one
    // rather than the same port again (the wedge of a nearly full pool).
    let mut skipped: Vec<Lease> = Vec::new();
    for attempt in 1..=BIND_ATTEMPTS {
        match bind_pair(lease.port) {
            Ok(sockets) => return Ok(sockets),
            Err((addr, e)) => {
                debug!(%addr, error = %e, "RTP/RTCP port unusable, trying the next");
            }
        }
        if attempt == BIND_ATTEMPTS {
            break;
        }
        let Some(port) = pool.allocate() else { break };
        let next = Lease {
            pool: Arc::clone(pool),
            port,
        };
        skipped.push(std::mem::replace(lease, next));
    }
    let mut ports: Vec<u16> = skipped.iter().map(|l| l.port).collect();
    ports.push(lease.port);
    warn!(
        ?ports,
        "no RTP port could be bound: the free ones are held outside the router"
    );
    Err(MediaError::PortsUnusable { ports })
}
