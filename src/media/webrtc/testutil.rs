//! A second, independent peer connection that plays the browser on 127.0.0.1: it answers
//! the router's offer with PCMU only, sends RTP on its own track and collects what arrives.

use std::sync::Arc;
use std::time::Duration;

use rtc::peer_connection::configuration::media_engine::MIME_TYPE_PCMU;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use rtc::ice::mdns::MulticastDnsMode;

const BROWSER_SSRC: u32 = 0xB0B0_B0B0;

fn pcmu() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_PCMU.into(),
        clock_rate: 8000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

struct Handler {
    gathered: watch::Sender<bool>,
    connected: watch::Sender<bool>,
    received: mpsc::UnboundedSender<rtp::Packet>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        self.gathered
            .send_replace(s == RTCIceGatheringState::Complete);
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        self.connected
            .send_replace(s == RTCPeerConnectionState::Connected);
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event {
                    received.send(p).ok();
                }
            }
        });
    }
}

/// The browser end of a WebRTC seat leg.
pub(crate) struct Browser {
    pc: Box<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    connected: watch::Receiver<bool>,
    /// RTP that reached the browser's speaker.
    pub(crate) received: mpsc::UnboundedReceiver<rtp::Packet>,
    seq: u16,
}

impl Browser {
    /// Answers `offer` (PCMU only), gathering on 127.0.0.1; returns the answer SDP.
    pub(crate) async fn answer(offer: &str) -> (Browser, String) {
        let mut media = MediaEngine::default();
        let codec = RTCRtpCodecParameters {
            rtp_codec: pcmu(),
            payload_type: 0,
        };
        media.register_codec(codec, RtpCodecKind::Audio).unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        let (gathered_tx, mut gathered) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let (received_tx, received) = mpsc::unbounded_channel();
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                gathered: gathered_tx,
                connected: connected_tx,
                received: received_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await
            .unwrap();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "browser-stream".into(),
            "browser-track".into(),
            "browser".into(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(BROWSER_SSRC),
                    ..Default::default()
                },
                codec: pcmu(),
                ..Default::default()
            }],
        )));
        pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let offer = RTCSessionDescription::offer(offer.to_owned()).unwrap();
        pc.set_remote_description(offer).await.unwrap();
        let answer = pc.create_answer(None).await.unwrap();
        pc.set_local_description(answer).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
            .await
            .expect("browser gathering")
            .unwrap();
        let sdp = pc.local_description().await.unwrap().sdp;
        let browser = Browser {
            pc: Box::new(pc),
            track,
            connected,
            received,
            seq: 0,
        };
        (browser, sdp)
    }

    /// Offers again on the live connection (as a phone does to hold or resume); returns
    /// the offer, to be answered with [`Self::take_answer`].
    pub(crate) async fn reoffer(&self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer).await.unwrap();
        self.pc.local_description().await.unwrap().sdp
    }

    pub(crate) async fn take_answer(&self, answer: &str) {
        let answer = RTCSessionDescription::answer(answer.to_owned()).unwrap();
        self.pc.set_remote_description(answer).await.unwrap();
    }

    pub(crate) async fn connected(&mut self) {
        tokio::time::timeout(Duration::from_secs(5), self.connected.wait_for(|c| *c))
            .await
            .expect("browser connected")
            .unwrap();
    }

    /// Sends one 20 ms PCMU frame.
    pub(crate) async fn send(&mut self, payload: &[u8]) {
        self.seq = self.seq.wrapping_add(1);
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: 0,
                sequence_number: self.seq,
                timestamp: u32::from(self.seq) * 160,
                ssrc: BROWSER_SSRC,
                ..Default::default()
            },
            payload: payload.to_vec().into(),
        };
        self.track.write_rtp(packet).await.unwrap();
    }

    pub(crate) async fn close(self) {
        self.pc.close().await.unwrap();
    }
}
