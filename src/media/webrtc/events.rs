//! What the peer connection tells a [`super::WebRtcLeg`]: connection and gathering states,
//! and the peer's audio track, whose RTP is forwarded to the relay as plain packets.

use std::sync::Arc;

use bytes::Bytes;
use rtc::shared::marshal::Marshal;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

use super::{Counters, WebRtcState};

/// The leg's side of the peer connection's callbacks.
pub(super) struct PeerEvents {
    pub(super) state: watch::Sender<WebRtcState>,
    pub(super) gathering: watch::Sender<RTCIceGatheringState>,
    pub(super) from_peer: mpsc::Sender<Bytes>,
    pub(super) counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerEvents {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = match state {
            RTCPeerConnectionState::Connected => WebRtcState::Connected,
            RTCPeerConnectionState::Disconnected => WebRtcState::Disconnected,
            RTCPeerConnectionState::Failed => WebRtcState::Failed,
            RTCPeerConnectionState::Closed => WebRtcState::Closed,
            _ => WebRtcState::Connecting,
        };
        info!(?state, "WebRTC leg");
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        tokio::spawn(read_from_peer(
            track,
            self.from_peer.clone(),
            Arc::clone(&self.counters),
        ));
    }
}

/// Peer → relay, until the track ends or the relay lets go. Never waits on the relay: a
/// full channel drops the packet (late audio is worthless).
async fn read_from_peer(
    track: Arc<dyn TrackRemote>,
    relay: mpsc::Sender<Bytes>,
    counters: Arc<Counters>,
) {
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(mut packet) = event else {
            continue;
        };
        // The browser's header extensions (audio level, abs-send-time…) use ids negotiated
        // with it alone: meaningless to the SIP side, so not relayed.
        packet.header.extension = false;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        let Ok(raw) = packet.marshal().map(|b| b.freeze()) else {
            continue;
        };
        Counters::inc(&counters.received);
        match relay.try_send(raw) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => Counters::inc(&counters.overflow),
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
    debug!("WebRTC remote track ended");
}
