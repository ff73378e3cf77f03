//! The phone's media: one `webrtc` peer connection per call, built like a browser's
//! (default interceptors: RTCP reports, NACK) but with PCMU and PCMA only, host candidates
//! on 127.0.0.1 and mDNS off (as `src/media/webrtc/testutil.rs`). Once connected it sends
//! a 20 ms G.711 tone frame every 20 ms in the law the answer settled on, and counts what
//! arrives on the router's track.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_PCMA, MIME_TYPE_PCMU};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use sas_router::media::g711::G711Law;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use crate::Counts;

/// The tone the phone talks: 400 Hz, a whole number of periods in 20 ms.
const TONE_HZ: f64 = 400.0;
/// ICE and DTLS on loopback take milliseconds; this is for a saturated machine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One answered call: its peer connection and the task talking on it.
pub struct Call {
    pc: Box<dyn PeerConnection>,
    talker: JoinHandle<()>,
}

impl Call {
    /// Answers the router's `offer`; returns the call and the answer SDP (every candidate
    /// in it: no trickle over SIP).
    pub async fn answer(offer: &str, counts: Arc<Counts>) -> anyhow::Result<(Call, String)> {
        let (gathered_tx, mut gathered) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let handler = Handler {
            gathered: gathered_tx,
            connected: connected_tx,
            counts: Arc::clone(&counts),
        };
        let pc = peer_connection(handler).await?;
        let ssrc = rand::random();
        let track = Arc::new(audio_track(ssrc));
        pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        pc.set_remote_description(RTCSessionDescription::offer(offer.to_owned())?)
            .await?;
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
            .await
            .context("ICE gathering")??;
        let sdp = pc
            .local_description()
            .await
            .context("no local description")?
            .sdp;
        let (pt, law) = chosen_codec(&sdp).ok_or_else(|| anyhow!("no G.711 in {sdp}"))?;
        let frame = tone(law);
        let talker = tokio::spawn(talk(track, ssrc, pt, frame, connected, counts));
        Ok((
            Call {
                pc: Box::new(pc),
                talker,
            },
            sdp,
        ))
    }

    pub async fn hang_up(self) {
        self.talker.abort();
        let _ = self.pc.close().await;
    }
}

async fn peer_connection(handler: Handler) -> anyhow::Result<impl PeerConnection> {
    let mut media = MediaEngine::default();
    for (mime, payload_type) in [(MIME_TYPE_PCMU, 0), (MIME_TYPE_PCMA, 8)] {
        let rtp_codec = codec(mime);
        let params = RTCRtpCodecParameters {
            rtp_codec,
            payload_type,
        };
        media.register_codec(params, RtpCodecKind::Audio)?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    // Checks every 50 ms as browsers pace them (RFC 8445's Ta), not the library's 200 ms.
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .build()
        .await?;
    Ok(pc)
}

fn codec(mime: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate: 8000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// Our track; no codec on its encoding, so that either law can be negotiated.
fn audio_track(ssrc: u32) -> TrackLocalStaticRTP {
    TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "phone-stream".into(),
        format!("phone-{ssrc:08x}"),
        "phone".into(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            ..Default::default()
        }],
    ))
}

/// The payload type our answer puts first on its `m=audio` line, and its law.
fn chosen_codec(answer: &str) -> Option<(u8, G711Law)> {
    let m = answer.lines().find(|l| l.starts_with("m=audio"))?;
    // m=audio PORT PROTO PT…
    let pt: u8 = m.split_whitespace().nth(3)?.parse().ok()?;
    match pt {
        0 => Some((0, G711Law::Ulaw)),
        8 => Some((8, G711Law::Alaw)),
        _ => None,
    }
}

/// 20 ms (160 samples at 8 kHz) of the tone, encoded.
fn tone(law: G711Law) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            let sample = 8000.0 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin();
            law.encode(sample as i16)
        })
        .collect()
}

/// Once connected, one frame every 20 ms until the call is hung up.
async fn talk(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    frame: Vec<u8>,
    mut connected: watch::Receiver<bool>,
    counts: Arc<Counts>,
) {
    match tokio::time::timeout(CONNECT_TIMEOUT, connected.wait_for(|c| *c)).await {
        Ok(Ok(_)) => Counts::inc(&counts.connected),
        _ => {
            eprintln!("a call did not connect within {CONNECT_TIMEOUT:?}");
            return;
        }
    }
    let payload = bytes::Bytes::from(frame);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let start: u32 = rand::random();
    for n in 0u32.. {
        tick.tick().await;
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type,
                sequence_number: n as u16,
                timestamp: start.wrapping_add(n.wrapping_mul(160)),
                ssrc,
                ..Default::default()
            },
            payload: payload.clone(),
        };
        if track.write_rtp(packet).await.is_ok() {
            Counts::inc(&counts.sent);
        }
    }
}

struct Handler {
    gathered: watch::Sender<bool>,
    connected: watch::Sender<bool>,
    counts: Arc<Counts>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathered
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.connected
            .send_replace(state == RTCPeerConnectionState::Connected);
    }

    /// Counts the router's RTP, decrypted, and the gaps in its sequence numbers, until
    /// the track ends.
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let counts = Arc::clone(&self.counts);
        tokio::spawn(async move {
            let mut last: Option<u16> = None;
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                Counts::inc(&counts.received);
                let seq = packet.header.sequence_number;
                // Forward jumps only (a reordered packet is not a gap).
                if let Some(step) = last
                    .map(|l| seq.wrapping_sub(l))
                    .filter(|s| (2..1000).contains(s))
                {
                    counts
                        .gaps
                        .fetch_add(u64::from(step - 1), Ordering::Relaxed);
                }
                if last.is_none_or(|l| seq.wrapping_sub(l) < 1000) {
                    last = Some(seq);
                }
            }
        });
    }
}
