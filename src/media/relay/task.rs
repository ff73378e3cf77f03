//! The per-call part of the relay: what one call's datagrams, WebRTC packets, commands and
//! timer do to its sans-IO [`MediaSession`], and sending what each leg hears. It does no
//! waiting of its own: a relay thread ([`super::engine`]) owns many calls' sockets, receives
//! in batches and calls in here.

use super::*;
use kernel::{KernelCall, KernelPath};
use std::borrow::Cow;

pub(super) mod kernel;

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

/// RTP version 2 with at least a fixed header.
fn looks_like_rtp(pkt: &[u8]) -> bool {
    pkt.len() >= RTP_HEADER_LEN && pkt[0] >> 6 == 2
}

/// A leg's WebRTC peer, in place of its socket.
pub(super) struct PeerLink {
    pub(super) io: WebRtcIo,
    /// Its channel ended (connection closed): no longer polled.
    pub(super) ended: bool,
}

/// The prometheus counters of a relay task, per leg.
pub(super) struct Counters {
    /// Packets from the leg that reached another leg.
    pub(super) relayed: [Option<IntCounter>; 3],
    /// SRTP/SRTCP packets from the leg that failed authentication or the replay check.
    pub(super) srtp_rejected: [Option<IntCounter>; 3],
}

/// How a SIP leg's packets are protected on the wire.
enum Protection {
    Plain,
    Srtp(Box<SrtpLeg>),
    /// SRTP was negotiated but its context could not be made: nothing in or out, rather
    /// than plain audio on a leg the peer believes encrypted.
    Unusable,
}

/// The task of one call: receives on every leg, runs the [`MediaSession`], sends.
pub(super) struct RelayTask {
    /// Each leg's sockets, once bound ([`Command::Open`]), and the RTP one's address.
    pub(super) rtp: [Option<UdpSocket>; 3],
    pub(super) local: [Option<SocketAddr>; 3],
    pub(super) rtcp: [Option<UdpSocket>; 3],
    /// Where the sockets are parked when the call ends.
    pub(super) ports: Option<Arc<PortPool>>,
    /// Where each peer's RTCP comes from (latched like RTP); until then, RTP port + 1.
    rtcp_remote: [Option<SocketAddr>; 3],
    /// The peer multiplexes RTCP on its RTP port (RFC 5761): reply there.
    rtcp_mux: [bool; 3],
    /// Legs whose peer is WebRTC.
    pub(super) peers: [Option<PeerLink>; 3],
    legs: Arc<[LegShared; 3]>,
    session: MediaSession,
    clock: Clock,
    /// Prometheus counters, by the leg packets come from.
    counters: Counters,
    /// SRTP or plain, per leg (a WebRTC peer's DTLS-SRTP is its stack's business).
    protection: [Protection; 3],
    /// An SRTCP packet of the leg's SRTP peer has passed authentication since its keys came.
    srtcp_authenticated: [bool; 3],
    notices: NoticeHandler,
    /// Number of the current [`MediaRelay::play`].
    playing: u64,
    out: Vec<Outgoing>,
    /// The kernel path this call may use, and its entries while it does.
    kernel_path: Option<KernelPath>,
    kernel: Option<KernelCall>,
    /// The entries the kernel refused (map full): not tried again until they change.
    kernel_refused: Option<[kernel::Entry; 2]>,
    /// The tap of a recorded call that just left the kernel: its last packets may still be
    /// on their way from the drainer.
    tap_tail: Option<kernel::Tap>,
    /// When the tapped packets are next handed to the recorder.
    feed_at: Option<Instant>,
}

impl RelayTask {
    pub(super) fn new(
        legs: Arc<[LegShared; 3]>,
        counters: Counters,
        notices: NoticeHandler,
        kernel_path: Option<KernelPath>,
    ) -> RelayTask {
        let clock = Clock::new();
        RelayTask {
            rtp: [None, None, None],
            local: [None; 3],
            rtcp: [None, None, None],
            ports: None,
            rtcp_remote: [None; 3],
            rtcp_mux: [false; 3],
            peers: [None, None, None],
            legs,
            session: MediaSession::new(clock.now(), rand::random(), rand::random()),
            clock,
            counters,
            protection: [Protection::Plain, Protection::Plain, Protection::Plain],
            srtcp_authenticated: [false; 3],
            notices,
            playing: 0,
            out: Vec::new(),
            kernel_path,
            kernel: None,
            kernel_refused: None,
            tap_tail: None,
            feed_at: None,
        }
    }

    /// When the session next wants [`on_timeout`](Self::on_timeout).
    pub(super) fn deadline(&self) -> Option<Instant> {
        let session = self.session.poll_timeout().map(|t| self.clock.instant(t));
        let kernel = self.kernel.as_ref().map(|k| k.next_sync);
        let at = session
            .into_iter()
            .chain(kernel)
            .chain(self.feed_at)
            .min()?;
        // In the kernel nothing a timer does is heard (no frames to pace): the call's feed,
        // sync, recording tick and RTCP wait for the next slot of a grid every call shares,
        // so a relay thread wakes once for many calls' timers, not for each.
        Some(match self.kernel {
            Some(_) => kernel::on_grid(at),
            None => at,
        })
    }

    pub(super) fn on_timeout(&mut self) {
        let now = Instant::now();
        // The kernel's packets first: the recording's tick must not pass them.
        if self.feed_at.is_some_and(|at| at <= now) {
            self.kernel_feed();
        }
        if self.kernel.as_ref().is_some_and(|k| k.next_sync <= now) {
            self.kernel_sync();
        }
        let now = self.clock.now();
        self.session.on_timeout(now, &mut self.out);
    }

    /// A datagram received on `leg`'s RTP socket (`rtcp`: its RTCP socket), in `buf`.
    pub(super) fn on_datagram(
        &mut self,
        leg: Leg,
        rtcp: bool,
        received: io::Result<(usize, SocketAddr)>,
        buf: &mut [u8],
    ) {
        if rtcp {
            self.received_rtcp(leg, received, buf, false)
        } else {
            self.received(leg, received, buf)
        }
    }

    /// An RTP packet from `leg`'s WebRTC peer.
    pub(super) fn on_peer_packet(&mut self, leg: Leg, pkt: &mut [u8]) {
        let rtp = looks_like_rtp(pkt);
        self.relay_in(leg, pkt, rtp);
    }

    pub(super) fn command(&mut self, command: Command) {
        // Whatever it changes, the session decides again with every packet in front of it.
        if !matches!(command, Command::Open(..)) {
            self.kernel_leave();
        }
        let now = self.clock.now();
        match command {
            Command::Codecs(leg, codecs) => self.session.set_codecs(leg, codecs),
            Command::Srtp(leg, keys) => self.set_srtp(leg, keys.map(|k| *k)),
            Command::Receiving(leg, receiving) => self.session.set_receiving(leg, receiving),
            Command::Play(announcement, play) => {
                self.playing = play;
                self.session.play(*announcement, now);
            }
            Command::Bridge(seat) => self.session.bridge(seat),
            Command::Conference => self.session.conference(now),
            Command::Monitor(monitor) => self.session.monitor(monitor),
            Command::Record(sink) => self.session.start_recording(sink, now),
            Command::AttachWebRtc(leg, io) => {
                self.peers[leg.idx()] = Some(PeerLink { io, ended: false });
            }
            Command::DetachWebRtc(leg) => self.peers[leg.idx()] = None,
            // A new remote: out of the kernel (above) until the leg latches again.
            Command::Remote => {}
            // The relay thread takes these itself (sockets to register, the call to end).
            Command::Open(..) | Command::Finish(_) => {}
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
        // A WebRTC leg's socket is not in use: whatever reaches it is stray.
        let mut accepted = self.peers[leg.idx()].is_none() && looks_like_rtp(&buf[..n]);
        let mut n = n;
        if accepted {
            // Only authenticated packets may latch the remote, be heard or count as signs
            // of life (`rx_packets`): a forgery is only counted as rejected.
            match self.unprotect(leg, &buf[..n], false) {
                None => return,
                Some(Cow::Borrowed(_)) => {}
                Some(Cow::Owned(plain)) => match buf.get_mut(..plain.len()) {
                    Some(room) => {
                        room.copy_from_slice(&plain);
                        n = plain.len();
                    }
                    None => accepted = false,
                },
            }
        }
        let accepted = accepted && self.legs[leg.idx()].accept_source(leg, src);
        self.relay_in(leg, &mut buf[..n], accepted);
    }

    /// `leg`'s peer speaks SRTP with `keys` (a new peer, or new keys in a re-INVITE), or
    /// plain RTP.
    fn set_srtp(&mut self, leg: Leg, keys: Option<SrtpKeys>) {
        self.srtcp_authenticated[leg.idx()] = false;
        let protection = &mut self.protection[leg.idx()];
        let made = match (keys, &mut *protection) {
            (None, _) => {
                *protection = Protection::Plain;
                return;
            }
            (Some(keys), Protection::Srtp(srtp)) => srtp.rekey(&keys),
            (Some(keys), _) => SrtpLeg::new(&keys).map(|srtp| {
                *protection = Protection::Srtp(Box::new(srtp));
            }),
        };
        if let Err(e) = made {
            warn!(?leg, error = %e, "SRTP leg unusable: its media is dropped");
            *protection = Protection::Unusable;
        }
    }

    /// `packet` from `leg`'s peer, unprotected if the leg is SRTP (as it is on a plain
    /// leg); `None`: drop it (counted as rejected).
    fn unprotect<'a>(&mut self, leg: Leg, packet: &'a [u8], rtcp: bool) -> Option<Cow<'a, [u8]>> {
        let plain = match &mut self.protection[leg.idx()] {
            Protection::Plain => return Some(Cow::Borrowed(packet)),
            Protection::Srtp(srtp) if rtcp => srtp.unprotect_rtcp(packet).ok(),
            Protection::Srtp(srtp) => srtp.unprotect_rtp(packet).ok(),
            Protection::Unusable => None,
        };
        self.srtcp_authenticated[leg.idx()] |= rtcp && plain.is_some();
        if plain.is_none() {
            LegCounters::add(&self.legs[leg.idx()].counters.srtp_rejected, 1);
            if let Some(counter) = &self.counters.srtp_rejected[leg.idx()] {
                counter.inc();
            }
        }
        plain.map(|p| Cow::Owned(p.to_vec()))
    }

    /// A plain RTCP report on an SRTP leg whose peer has not yet sent an authenticated
    /// SRTCP packet: one sent before the peer had the keys (baresip reports before its 200),
    /// read after them, maybe after its first SRTP packets too (another socket, read in
    /// another order than sent). Dropped unread, not counted as a forgery: a peer that still
    /// sends plain RTCP once its SRTCP flows is.
    fn early_plain_report(&self, leg: Leg, packet: &[u8]) -> bool {
        matches!(self.protection[leg.idx()], Protection::Srtp(_))
            && !self.srtcp_authenticated[leg.idx()]
            // A compound packet whose lengths add up to the datagram's: never SRTCP, whose
            // index and tag (14 bytes) follow the packets.
            && crate::media::rtcp::parse_compound(packet).is_ok()
    }

    /// `packet` for `leg`'s peer, protected if the leg is SRTP; `None`: do not send.
    fn protect<'a>(&mut self, leg: Leg, packet: &'a [u8], rtcp: bool) -> Option<Cow<'a, [u8]>> {
        let protected = match &mut self.protection[leg.idx()] {
            Protection::Plain => return Some(Cow::Borrowed(packet)),
            Protection::Srtp(srtp) if rtcp => srtp.protect_rtcp(packet),
            Protection::Srtp(srtp) => srtp.protect_rtp(packet),
            Protection::Unusable => return None,
        };
        protected
            .map_err(|e| debug!(?leg, error = %e, "packet not sent"))
            .ok()
            .map(|p| Cow::Owned(p.to_vec()))
    }

    /// A packet received on `leg` (socket or WebRTC peer), to the session if `accepted`.
    fn relay_in(&mut self, leg: Leg, pkt: &mut [u8], accepted: bool) {
        let c = &self.legs[leg.idx()].counters;
        LegCounters::add(&c.rx_packets, 1);
        LegCounters::add(&c.rx_bytes, pkt.len());
        if !accepted {
            LegCounters::add(&c.dropped, 1);
            return;
        }
        // A packet the kernel left to us: the session's streams first catch up with it.
        if self.kernel.is_some() {
            self.kernel_sync();
        }
        let heard = match self.session.on_rtp(leg, pkt, self.clock.now()) {
            Delivery::Relay(to) => self.send(to, pkt),
            Delivery::Mixed => true,
            // Nobody to hear it yet (queued), or not negotiated.
            Delivery::Dropped => false,
        };
        if !heard {
            LegCounters::add(&self.legs[leg.idx()].counters.dropped, 1);
        } else if let Some(counter) = &self.counters.relayed[leg.idx()] {
            counter.inc();
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
        if self.peers[leg.idx()].is_some() {
            return;
        }
        let peer = self.legs[leg.idx()].remote().addr;
        if peer.is_some_and(|p| p.ip() != src.ip()) {
            return;
        }
        if self.early_plain_report(leg, &buf[..n]) {
            LegCounters::add(&self.legs[leg.idx()].counters.dropped, 1);
            return;
        }
        let now = self.clock.now();
        let Some(plain) = self.unprotect(leg, &buf[..n], true) else {
            return;
        };
        self.session.on_rtcp(leg, &plain, now);
        self.rtcp_mux[leg.idx()] = muxed;
        self.rtcp_remote[leg.idx()] = Some(src);
        LegCounters::add(&self.legs[leg.idx()].counters.rx_rtcp, 1);
    }

    /// Sends what the session produced, and hands over digits and prompt ends.
    pub(super) fn flush(&mut self) {
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
        self.kernel_update();
    }

    /// Sends to `leg`'s remote (or WebRTC peer) without waiting: real-time audio is
    /// dropped rather than delayed when the socket buffer (or channel) is full.
    fn send(&mut self, leg: Leg, pkt: &[u8]) -> bool {
        let sent = if let Some(peer) = &self.peers[leg.idx()] {
            peer.io
                .to_peer
                .try_send(Bytes::copy_from_slice(pkt))
                .map(|()| pkt.len())
                .map_err(|e| debug!(?leg, error = %e, "RTP to WebRTC peer dropped"))
        } else {
            let Some(dst) = self.legs[leg.idx()].remote().addr else {
                return false;
            };
            match (self.protect(leg, pkt, false), &self.rtp[leg.idx()]) {
                (Some(wire), Some(socket)) => socket
                    .send_to(&wire, dst)
                    .map_err(|e| debug!(?leg, %dst, error = %e, "RTP send error")),
                _ => Err(()),
            }
        };
        let egress = &self.legs[leg.idx()];
        match sent {
            Ok(sent) => {
                LegCounters::add(&egress.counters.tx_packets, 1);
                LegCounters::add(&egress.counters.tx_bytes, sent);
                true
            }
            Err(()) => {
                LegCounters::add(&egress.counters.dropped, 1);
                false
            }
        }
    }

    /// Sends the session's report to `leg`, unless its peer is WebRTC (whose stack sends
    /// its own).
    fn send_rtcp(&mut self, leg: Leg, pkt: &[u8]) {
        let i = leg.idx();
        let Some(rtp) = self.legs[i]
            .remote()
            .addr
            .filter(|_| self.peers[i].is_none())
        else {
            return;
        };
        let dst = match self.rtcp_mux[i] {
            true => rtp,
            false => self.rtcp_remote[i]
                .unwrap_or_else(|| SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))),
        };
        let Some(wire) = self.protect(leg, pkt, true) else {
            return;
        };
        let socket = if self.rtcp_mux[i] {
            &self.rtp
        } else {
            &self.rtcp
        };
        let Some(socket) = &socket[i] else { return };
        if let Err(e) = socket.send_to(&wire, dst) {
            debug!(?leg, %dst, error = %e, "RTCP send error");
        }
    }

    pub(super) fn finish(&mut self) -> MediaReport {
        // Out of the kernel for good: the flush after this must not put it back.
        self.kernel_path = None;
        self.kernel_leave();
        self.kernel_feed();
        self.session.finish(self.clock.now());
        self.flush();
        MediaReport {
            stats: RelayStats::of(&self.legs),
            quality: Leg::ALL.map(|leg| self.session.quality(leg)),
            recorder: self.session.take_recorder(),
        }
    }
}
