//! The caller's media at admission: a plain RTP offer (the trunk, SIP phones), or the
//! WebRTC offer of a WebSocket phone calling an internal number, which a WebRTC leg
//! answers (the relay then reads and writes leg A through its channels).

use crate::media::relay::{Leg, MediaRelay};
use crate::media::sdp::{LegCodecs, RELAYED_CODECS, SessionDescription, SrtpKeys, SrtpPolicy};
use crate::media::webrtc::{WebRtcConfig, WebRtcIo, WebRtcLeg};
use crate::net::calls::CallerWebRtc;
use std::sync::Arc;

/// The caller's side of a call, negotiated.
pub(super) struct CallerMedia {
    /// Its offer (a WebRTC one read as RTP).
    pub(super) offer: SessionDescription,
    /// The codecs it sends.
    pub(super) codecs: LegCodecs,
    /// Its SRTP keys, when its offer was taken with SRTP.
    pub(super) srtp: Option<SrtpKeys>,
    /// The WebRTC leg answering it, if it is WebRTC, and its packets for the relay.
    pub(super) webrtc: Option<CallerWebRtc>,
    io: Option<WebRtcIo>,
}

impl CallerMedia {
    /// Negotiates the caller's offer `body`; WebRTC only when `webrtc` is given (a seat's
    /// phone); SRTP by the caller's `srtp` policy. `None`: nothing usable (answer 488).
    pub(super) async fn negotiate(
        body: &[u8],
        webrtc: Option<&WebRtcConfig>,
        srtp: SrtpPolicy,
    ) -> Option<CallerMedia> {
        let mut offer = SessionDescription::parse_bytes(body).ok()?;
        if offer.is_webrtc() {
            let config = webrtc?;
            let text = std::str::from_utf8(body).ok()?;
            // Boxed: the WebRTC answer's future is ~20 KB, which would otherwise size every
            // INVITE's task, WebRTC or not.
            let (mut leg, answer, codecs) = match Box::pin(WebRtcLeg::answer(config, text)).await {
                Ok(answered) => answered,
                Err(e) => {
                    tracing::info!(error = %e, "a phone's WebRTC offer cannot be answered");
                    return None;
                }
            };
            let io = leg.take_io();
            let leg = Arc::new(leg);
            return Some(CallerMedia {
                offer: offer.webrtc_as_rtp(),
                codecs,
                srtp: None,
                webrtc: Some(CallerWebRtc { leg, answer }),
                io,
            });
        }
        offer.restrict_codecs(RELAYED_CODECS).ok()?;
        let codecs = offer.leg_codecs()?;
        offer.audio_endpoint()?;
        let srtp = match offer.srtp_for_offer(srtp, crate::media::srtp::fresh_key) {
            Ok(keys) => keys,
            Err(refusal) => {
                tracing::info!(%refusal, "an offer's SRTP is not acceptable");
                return None;
            }
        };
        Some(CallerMedia {
            offer,
            codecs,
            srtp,
            webrtc: None,
            io: None,
        })
    }

    /// Points leg A of `relay` at the caller.
    pub(super) fn apply(&mut self, relay: &MediaRelay) {
        relay.set_codecs(Leg::A, self.codecs);
        match self.io.take() {
            Some(io) => relay.attach_webrtc(Leg::A, io),
            None => {
                if let Some(remote) = self.offer.audio_endpoint() {
                    relay.set_remote(Leg::A, remote);
                }
                relay.set_srtp(Leg::A, self.srtp);
                relay.set_receiving(Leg::A, self.offer.receives_audio());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The INVITE's task holds this future while the offer is answered: a WebRTC answer's
    /// ~20 KB future inlined in it sized every INVITE's task (and the copy that spawns it)
    /// at ~26 KB, WebRTC or not.
    #[test]
    fn negotiating_an_offer_is_a_small_future() {
        let negotiating = CallerMedia::negotiate(b"", None, SrtpPolicy::Optional);
        let size = std::mem::size_of_val(&negotiating);
        assert!(
            size <= 2048,
            "CallerMedia::negotiate's future is {size} bytes"
        );
    }
}
