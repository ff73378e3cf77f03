//! A plateau leg (B or C) terminated as WebRTC: a browser console or a SIP-over-WebSocket
//! phone instead of a plain RTP endpoint.
//!
//! [`WebRtcLeg`] owns one `webrtc` peer connection with one sendrecv audio transceiver
//! (PCMU 0, PCMA 8, telephone-event 101), ICE host candidates on the configured address
//! (no mDNS, no STUN, no trickle: the offer carries every candidate) and DTLS-SRTP. The
//! router is the offerer towards seats: [`WebRtcLeg::offer`], then
//! [`WebRtcLeg::set_answer`] with the seat's SDP; a WebSocket phone calling out is answered
//! ([`WebRtcLeg::answer`]). A phone may later offer again on the same connection (hold,
//! resume): [`WebRtcLeg::answer_reoffer`].
//!
//! Media crosses as plain RTP packets in tokio channels ([`WebRtcIo`]), so the relay treats
//! the leg like a socket and the session's continuity, law conversion, DTMF and recording
//! apply unchanged. RTCP is the webrtc stack's business.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_PCMA, MIME_TYPE_PCMU, MIME_TYPE_TELEPHONE_EVENT,
};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::shared::marshal::Unmarshal;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::debug;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};

use super::g711::G711Law;
use super::sdp::{LegCodecs, OFFERED_DTMF_PT, SdpError, SessionDescription};
use crate::config::MediaConfig;
use events::PeerEvents;

mod events;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

/// Packets queued between the relay task and the peer connection, each way: 20 ms
/// packets, so about a second; beyond that audio is stale and dropped.
const CHANNEL_PACKETS: usize = 64;

/// Audio flows every 20 ms, so this much silence on the wire means the seat's browser is
/// gone (closed tab, lost network): [`WebRtcState::Disconnected`]; the library's 5 s would
/// leave the caller alone longer.
const ICE_DISCONNECTED: Duration = Duration::from_secs(3);
/// Further silence before [`WebRtcState::Failed`] (the library's default is 25 s).
const ICE_FAILED: Duration = Duration::from_secs(7);
/// Consent checks while no audio flows (on hold): well within [`ICE_DISCONNECTED`].
const ICE_KEEPALIVE: Duration = Duration::from_secs(1);
/// Pace of connectivity checks. The phone's first check reaches us before its SDP answer
/// does and is refused (no remote credentials yet), so the leg connects on our own first
/// check: at the library's 200 ms the caller's first words were lost.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(40);
/// Checks per candidate pair: the library's 1.4 s of trying, at our pace.
const ICE_CHECKS: u16 = 35;

/// Where and how WebRTC legs gather their candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// Local address of the ICE socket (`[media] webrtc_ip`, else `rtp_ip`).
    pub bind_ip: IpAddr,
    /// Address advertised in the candidates instead, behind NAT (`[media] public_ip`).
    pub public_ip: Option<IpAddr>,
    /// How long [`WebRtcLeg::offer`] waits for ICE gathering to complete.
    pub gather_timeout: Duration,
}

impl WebRtcConfig {
    /// Host candidates gather at once; a second is generous.
    pub const DEFAULT_GATHER_TIMEOUT: Duration = Duration::from_secs(1);
}

impl From<&MediaConfig> for WebRtcConfig {
    fn from(media: &MediaConfig) -> WebRtcConfig {
        WebRtcConfig {
            bind_ip: media.webrtc_bind_ip(),
            public_ip: media.public_ip,
            gather_timeout: WebRtcConfig::DEFAULT_GATHER_TIMEOUT,
        }
    }
}

/// Why a WebRTC leg could not be set up. `Setup`, `Offer` and `Gathering` are the router's
/// side (resources, configuration: try another seat, not the same again); `Answer*` and
/// `NoCommonCodec` are the seat's (its phone or browser is at fault).
#[derive(Debug, Error)]
pub enum WebRtcError {
    #[error("cannot set up the WebRTC peer connection")]
    Setup(#[source] webrtc::error::Error),
    #[error("cannot create the WebRTC offer")]
    Offer(#[source] webrtc::error::Error),
    #[error("ICE gathering did not complete within {0:?}")]
    Gathering(Duration),
    #[error("the seat's WebRTC answer is not usable SDP")]
    AnswerSdp(#[source] SdpError),
    #[error("the seat's WebRTC answer has neither PCMU nor PCMA")]
    NoCommonCodec,
    #[error("the seat's WebRTC answer was refused")]
    Answer(#[source] webrtc::error::Error),
    #[error("the phone's WebRTC offer was refused")]
    PeerOffer(#[source] webrtc::error::Error),
}

/// The connection as the driver sees it (RTCPeerConnectionState, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WebRtcState {
    /// Offered, not yet connected (ICE and DTLS under way).
    Connecting,
    /// Media flows.
    Connected,
    /// Connectivity lost; ICE may still recover it.
    Disconnected,
    /// Gone for good (ICE or DTLS failed): treat like a seat that left.
    Failed,
    /// Closed by either side.
    Closed,
}

/// Counters of one WebRTC leg, snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebRtcStats {
    /// RTP packets handed to the peer connection.
    pub sent: u64,
    /// RTP packets received from the peer.
    pub received: u64,
    /// Packets for the peer dropped because the connection was not (yet) up.
    pub not_connected: u64,
    /// Packets the peer connection refused (malformed, codec not negotiated).
    pub write_errors: u64,
    /// Received packets dropped because the relay was not keeping up.
    pub overflow: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    not_connected: AtomicU64,
    write_errors: AtomicU64,
    overflow: AtomicU64,
}

impl Counters {
    fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WebRtcStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebRtcStats {
            sent: get(&self.sent),
            received: get(&self.received),
            not_connected: get(&self.not_connected),
            write_errors: get(&self.write_errors),
            overflow: get(&self.overflow),
        }
    }
}

/// The RTP of a WebRTC leg as the relay sees it: packets from the peer, and where to put
/// packets for it (any SSRC: it is rewritten to the leg's track).
#[derive(Debug)]
pub struct WebRtcIo {
    pub from_peer: mpsc::Receiver<Bytes>,
    pub to_peer: mpsc::Sender<Bytes>,
}

/// One WebRTC seat leg. [`close`](Self::close) it when the seat leaves; dropping it closes
/// the connection too, in the background.
pub struct WebRtcLeg {
    pc: Option<Arc<dyn PeerConnection>>,
    /// The candidates' addresses: bound, and advertised instead (1:1 NAT).
    addresses: (IpAddr, Option<IpAddr>),
    state: watch::Receiver<WebRtcState>,
    io: Option<WebRtcIo>,
    counters: Arc<Counters>,
    writer: JoinHandle<()>,
}

impl std::fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("state", &*self.state.borrow())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl WebRtcLeg {
    /// A new leg and its SDP offer, candidates included: `law_first` is offered first (the
    /// caller's law, so that nothing is converted when the seat can take it).
    pub async fn offer(
        config: &WebRtcConfig,
        law_first: G711Law,
    ) -> Result<(WebRtcLeg, String), WebRtcError> {
        let (leg, gathering) = WebRtcLeg::new(config, law_first).await?;
        let pc = leg.pc();
        let offer = pc.create_offer(None).await.map_err(WebRtcError::Offer)?;
        pc.set_local_description(offer)
            .await
            .map_err(WebRtcError::Offer)?;
        let sdp = leg.gathered(config, gathering).await?;
        Ok((leg, sdp))
    }

    /// A new leg answering a phone's WebRTC offer (a WebSocket phone calling): the leg,
    /// our answer with every candidate, and the codecs it settles on.
    pub async fn answer(
        config: &WebRtcConfig,
        offer: &str,
    ) -> Result<(WebRtcLeg, String, LegCodecs), WebRtcError> {
        let (leg, gathering) = WebRtcLeg::new(config, G711Law::Alaw).await?;
        leg.take_offer(offer).await?;
        let sdp = leg.gathered(config, gathering).await?;
        let codecs = answer_codecs(&sdp)?;
        Ok((leg, sdp, codecs))
    }

    /// A leg with its connection and audio track, and the gathering state to wait on.
    async fn new(
        config: &WebRtcConfig,
        law_first: G711Law,
    ) -> Result<(WebRtcLeg, watch::Receiver<RTCIceGatheringState>), WebRtcError> {
        let (state_tx, state) = watch::channel(WebRtcState::Connecting);
        let (gathering_tx, gathering) = watch::channel(RTCIceGatheringState::New);
        let (from_peer_tx, from_peer) = mpsc::channel(CHANNEL_PACKETS);
        let (to_peer, to_peer_rx) = mpsc::channel(CHANNEL_PACKETS);
        let counters = Arc::new(Counters::default());
        let events = PeerEvents {
            state: state_tx,
            gathering: gathering_tx,
            from_peer: from_peer_tx,
            counters: Arc::clone(&counters),
        };
        let pc = build(config, law_first, events).await?;
        let ssrc = rand::random();
        let track = audio_track(ssrc);
        let added = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await;
        // From here on, failures close the connection (its driver runs in the background).
        let leg = WebRtcLeg {
            writer: tokio::spawn(write_to_peer(
                to_peer_rx,
                track,
                ssrc,
                state.clone(),
                Arc::clone(&counters),
            )),
            pc: Some(pc),
            addresses: (config.bind_ip, config.public_ip),
            state,
            io: Some(WebRtcIo { from_peer, to_peer }),
            counters,
        };
        added.map_err(WebRtcError::Setup)?;
        Ok((leg, gathering))
    }

    /// Our description once every candidate is gathered (no trickle).
    async fn gathered(
        &self,
        config: &WebRtcConfig,
        mut gathering: watch::Receiver<RTCIceGatheringState>,
    ) -> Result<String, WebRtcError> {
        let complete = gathering.wait_for(|s| *s == RTCIceGatheringState::Complete);
        match tokio::time::timeout(config.gather_timeout, complete).await {
            Ok(Ok(_)) => {}
            _ => return Err(WebRtcError::Gathering(config.gather_timeout)),
        }
        self.local_sdp()
            .await
            .ok_or(WebRtcError::Gathering(config.gather_timeout))
    }

    /// The peer's offer as remote description, and our answer as local one.
    async fn take_offer(&self, offer: &str) -> Result<(), WebRtcError> {
        let offer =
            RTCSessionDescription::offer(offer.to_owned()).map_err(WebRtcError::PeerOffer)?;
        let pc = self.pc();
        pc.set_remote_description(offer)
            .await
            .map_err(WebRtcError::PeerOffer)?;
        let answer = pc
            .create_answer(None)
            .await
            .map_err(WebRtcError::PeerOffer)?;
        pc.set_local_description(answer)
            .await
            .map_err(WebRtcError::PeerOffer)
    }

    /// Our current description, candidates advertised as configured.
    async fn local_sdp(&self) -> Option<String> {
        let sdp = self.pc().local_description().await?.sdp;
        Some(match self.addresses {
            (bind, Some(public)) => advertise(&sdp, bind, public),
            (_, None) => sdp,
        })
    }

    /// The seat offers again on the connected leg (a phone's re-INVITE to hold or resume):
    /// our answer SDP, and the codecs it settles on, which the peer sends from now on (it
    /// may switch law: a browser's offer lists its own preference first).
    pub async fn answer_reoffer(&self, sdp: &str) -> Result<(String, LegCodecs), WebRtcError> {
        self.take_offer(sdp).await?;
        let ours = self.local_sdp().await.unwrap_or_default();
        let codecs = answer_codecs(&ours)?;
        Ok((ours, codecs))
    }

    /// The seat's answer: the codecs it took (its first G.711 and telephone-event, if kept).
    pub async fn set_answer(&self, sdp: &str) -> Result<LegCodecs, WebRtcError> {
        let codecs = answer_codecs(sdp)?;
        let answer = RTCSessionDescription::answer(sdp.to_owned()).map_err(WebRtcError::Answer)?;
        self.pc()
            .set_remote_description(answer)
            .await
            .map_err(WebRtcError::Answer)?;
        Ok(codecs)
    }

    /// The packet channels, for [`super::relay::MediaRelay::attach_webrtc`]; `None` once
    /// taken.
    pub fn take_io(&mut self) -> Option<WebRtcIo> {
        self.io.take()
    }

    /// Follows the connection: [`WebRtcState::Failed`] means the seat is gone.
    pub fn state(&self) -> watch::Receiver<WebRtcState> {
        self.state.clone()
    }

    pub fn stats(&self) -> WebRtcStats {
        self.counters.snapshot()
    }

    /// Closes the connection (DTLS close, sockets released).
    pub async fn close(mut self) {
        if let Some(pc) = self.pc.take() {
            close(pc).await;
        }
    }

    fn pc(&self) -> &Arc<dyn PeerConnection> {
        self.pc
            .as_ref()
            .expect("the connection is only taken by close")
    }
}

impl Drop for WebRtcLeg {
    fn drop(&mut self) {
        self.writer.abort();
        // Not closed by `close`: close it in the background, if there is still a runtime.
        if let (Some(pc), Ok(runtime)) = (self.pc.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(close(pc));
        }
    }
}

async fn close(pc: Arc<dyn PeerConnection>) {
    if let Err(e) = pc.close().await {
        debug!(error = %e, "closing a WebRTC leg");
    }
}

/// The codecs an answer `sdp` (ours or the seat's) settles on: its first G.711, and
/// telephone-event if kept.
fn answer_codecs(sdp: &str) -> Result<LegCodecs, WebRtcError> {
    sdp.parse::<SessionDescription>()
        .map_err(WebRtcError::AnswerSdp)?
        .webrtc_leg_codecs()
        .ok_or(WebRtcError::NoCommonCodec)
}

/// `sdp` with its host candidates on `bind` advertised at `public` instead (1:1 NAT): the
/// NAT forwards the seat's checks and media to our socket. The webrtc crate's own
/// `nat_1to1_ips` setting is not applied by its ICE agent (0.21.1), hence the rewrite.
fn advertise(sdp: &str, bind: IpAddr, public: IpAddr) -> String {
    let (bind, public) = (bind.to_string(), public.to_string());
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if !line.starts_with("a=candidate:") {
            out.push_str(line);
            continue;
        }
        // foundation component transport priority ADDRESS port typ ...
        let fields = line.split(' ').enumerate();
        let rewritten: Vec<&str> = fields
            .map(|(i, f)| if i == 4 && f == bind { &public } else { f })
            .collect();
        out.push_str(&rewritten.join(" "));
    }
    out
}

/// A G.711 (or telephone-event) codec at 8 kHz.
fn codec(mime: &str, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate: 8000,
        channels: 0,
        sdp_fmtp_line: fmtp.into(),
        rtcp_feedback: vec![],
    }
}

/// The payload types we offer, `law_first` first (offer order is preference order).
fn codecs(law_first: G711Law) -> [RTCRtpCodecParameters; 3] {
    let ulaw = (codec(MIME_TYPE_PCMU, ""), 0);
    let alaw = (codec(MIME_TYPE_PCMA, ""), 8);
    let (first, second) = match law_first {
        G711Law::Ulaw => (ulaw, alaw),
        G711Law::Alaw => (alaw, ulaw),
    };
    let dtmf = (codec(MIME_TYPE_TELEPHONE_EVENT, "0-15"), OFFERED_DTMF_PT);
    [first, second, dtmf].map(|(rtp_codec, payload_type)| RTCRtpCodecParameters {
        rtp_codec,
        payload_type,
    })
}

async fn build(
    config: &WebRtcConfig,
    law_first: G711Law,
    events: PeerEvents,
) -> Result<Arc<dyn PeerConnection>, WebRtcError> {
    let mut media = MediaEngine::default();
    for c in codecs(law_first) {
        media
            .register_codec(c, RtpCodecKind::Audio)
            .map_err(WebRtcError::Setup)?;
    }
    // Reports, NACK and the rest: RTCP is terminated here, not by the session.
    let registry =
        register_default_interceptors(Registry::new(), &mut media).map_err(WebRtcError::Setup)?;
    // mDNS off: host candidates carry IPs (SIP phones cannot resolve .local names) and no
    // multicast socket is needed (it fails where only loopback exists).
    // We offer `actpass` and browsers answer `active`: the router is the DTLS server. When a
    // phone offers again (hold), the answer must keep that role (RFC 5763 §5), and the
    // library's answering default (client) would break the connection.
    let settings = SettingEngineBuilder::new()
        .with_answering_dtls_role(RTCDtlsRole::Server)
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED),
            Some(ICE_FAILED),
            Some(ICE_KEEPALIVE),
        )
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_CHECKS));
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings.build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(events))
        // An explicit address, not a wildcard: a wildcard skips loopback and binds every
        // interface, and the leg must use the one configured.
        .with_udp_addrs(vec![SocketAddr::new(config.bind_ip, 0)])
        .build()
        .await
        .map_err(WebRtcError::Setup)?;
    Ok(Arc::new(pc))
}

/// Our audio track. No codec on its encoding: one would restrict the offer to it, and
/// the seat must be able to pick either law (and keep telephone-event).
fn audio_track(ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let id = format!("sas-router-{ssrc:08x}");
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{id}"),
        format!("track-{id}"),
        id,
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            ..Default::default()
        }],
    )))
}

/// Relay → peer: each packet re-stamped with the track's SSRC (the only one the sender
/// accepts) and written, once the connection is up. Ends when the relay lets go.
async fn write_to_peer(
    mut packets: mpsc::Receiver<Bytes>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    state: watch::Receiver<WebRtcState>,
    counters: Arc<Counters>,
) {
    while let Some(mut raw) = packets.recv().await {
        // Before the connection is up writes fail (and the stack logs each): skip them.
        if *state.borrow() != WebRtcState::Connected {
            Counters::inc(&counters.not_connected);
            continue;
        }
        let Ok(mut packet) = rtp::Packet::unmarshal(&mut raw) else {
            Counters::inc(&counters.write_errors);
            continue;
        };
        packet.header.ssrc = ssrc;
        match track.write_rtp(packet).await {
            Ok(()) => Counters::inc(&counters.sent),
            Err(e) => {
                debug!(error = %e, "WebRTC RTP write refused");
                Counters::inc(&counters.write_errors);
            }
        }
    }
}
