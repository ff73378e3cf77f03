//! Per-leg SDP negotiation state, owned by the Router: for each media side of a call (0 the
//! caller, 1 and 2 the plateau's two seat sides, as the relay numbers them), what we last
//! sent and its version, and the peer's address and codecs; the session's origin and how
//! many offers went to seats. The driver carries SDP bodies in and out and points the relay
//! where the returned [`Reoffered`] says; a seat's re-INVITE that stops (or resumes)
//! receiving holds (or takes back) its caller here.

use super::Router;
use crate::media::g711::G711Law;
use crate::media::sdp::{LegCodecs, SessionDescription};
use crate::time::Now;
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// One call's SDP state.
#[derive(Debug, Clone)]
pub(super) struct Negotiation {
    /// Our `o=` session id.
    origin: u64,
    /// Offers made to seats (each a new session version towards its seat).
    seat_offers: u64,
    /// Per side: the last SDP we sent and its version.
    sent: [Option<(SessionDescription, u64)>; 3],
    /// Per side: the peer's address and codecs.
    peer: [Option<(SocketAddr, LegCodecs)>; 3],
}

/// What a re-INVITE or UPDATE changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reoffered {
    /// Our answer (version bumped), or our current SDP for a re-INVITE without a body.
    pub answer: SessionDescription,
    /// The peer's new address, when it moved.
    pub remote: Option<SocketAddr>,
    /// The peer's new codecs, when they changed.
    pub codecs: Option<LegCodecs>,
    /// The peer receives audio (not on hold).
    pub receiving: bool,
    /// The peer sends audio.
    pub sending: bool,
}

/// Why a re-INVITE's offer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReofferError {
    /// No SDP was exchanged on that side yet (an offer of ours is pending).
    #[error("no SDP exchanged on this side yet")]
    Pending,
    /// The body is not SDP.
    #[error("not SDP")]
    Malformed,
    /// No audio we can take.
    #[error("no usable audio")]
    NotAcceptable,
}

impl Router {
    /// A call's media sides start: our session id `origin`, the caller's offer.
    pub fn sdp_open(&mut self, call: &str, origin: u64, caller: Option<(SocketAddr, LegCodecs)>) {
        let negotiation = Negotiation {
            origin,
            seat_offers: 0,
            sent: [None, None, None],
            peer: [caller, None, None],
        };
        self.sdp.insert(call.into(), negotiation);
    }

    /// Our answer to the caller's `offer` (version 1), pointed at `ip:port`.
    pub fn sdp_answer_caller(
        &mut self,
        call: &str,
        offer: &SessionDescription,
        codecs: LegCodecs,
        (ip, port): (IpAddr, u16),
    ) -> Result<SessionDescription, crate::media::sdp::SdpError> {
        let n = self
            .sdp
            .get_mut(call)
            .ok_or(crate::media::sdp::SdpError::NoAudio)?;
        let answer = offer.answer(codecs, ip, port, (n.origin, 1))?;
        n.sent[0] = Some((answer.clone(), 1));
        Ok(answer)
    }

    /// A new offer to a seat on `side`, pointed at `ip:port` with `law` first; `None` for a
    /// WebRTC leg (its peer connection answers re-INVITEs itself): the side is reset.
    pub fn sdp_offer_seat(
        &mut self,
        call: &str,
        side: usize,
        rtp: Option<(IpAddr, u16, G711Law)>,
    ) -> Option<SessionDescription> {
        let n = self.sdp.get_mut(call)?;
        n.seat_offers += 1;
        n.peer[side] = None;
        let offer = rtp.map(|(ip, port, law)| {
            SessionDescription::router_offer(ip, port, law, (n.origin, n.seat_offers))
        });
        n.sent[side] = offer.clone().map(|o| (o, n.seat_offers));
        offer
    }

    /// The seat on `side` answered from `remote` with `codecs`.
    pub fn sdp_answered(&mut self, call: &str, side: usize, remote: SocketAddr, codecs: LegCodecs) {
        if let Some(n) = self.sdp.get_mut(call) {
            n.peer[side] = Some((remote, codecs));
        }
    }

    /// A re-INVITE or UPDATE on `side` (`seat`'s leg, or the caller's): follows the peer's
    /// new address and codecs and answers with our SDP, version bumped. Without a body, our
    /// current SDP is the offer (RFC 3261 §14.2); its answer comes in the ACK, which we do
    /// not see: the usual case is assumed (a refresh, or resuming), so a held leg never
    /// stays silent. A seat that stops receiving puts its caller on hold.
    pub fn sdp_reoffer(
        &mut self,
        now: Now,
        call: &str,
        (side, seat): (usize, Option<&str>),
        body: &[u8],
        (ip, port): (IpAddr, u16),
    ) -> Result<Reoffered, ReofferError> {
        let n = self.sdp.get_mut(call).ok_or(ReofferError::Pending)?;
        let (ours, version) = n.sent[side].clone().ok_or(ReofferError::Pending)?;
        let reoffered = if body.is_empty() {
            Reoffered {
                answer: ours,
                remote: None,
                codecs: None,
                receiving: true,
                sending: true,
            }
        } else {
            let offer =
                SessionDescription::parse_bytes(body).map_err(|_| ReofferError::Malformed)?;
            let (remote, codecs) = (offer.audio_endpoint())
                .zip(offer.leg_codecs())
                .ok_or(ReofferError::NotAcceptable)?;
            let answer = offer
                .answer(codecs, ip, port, (n.origin, version + 1))
                .map_err(|_| ReofferError::NotAcceptable)?;
            let before = n.peer[side];
            n.peer[side] = Some((remote, codecs));
            n.sent[side] = Some((answer.clone(), version + 1));
            Reoffered {
                answer,
                remote: (before.map(|p| p.0) != Some(remote)).then_some(remote),
                codecs: (before.map(|p| p.1) != Some(codecs)).then_some(codecs),
                receiving: offer.receives_audio(),
                sending: offer.sends_audio(),
            }
        };
        if let Some(seat) = seat {
            self.phone_hold(now, call, seat, !reoffered.receiving);
        }
        Ok(reoffered)
    }

    /// Attended transfer: the offer re-INVITing the consulted target (on `consult`'s
    /// `target_side`) towards `call`'s `side` at `ip:port`: the same dialog, so the same
    /// SDP session, its version plus one (RFC 3264 §8).
    pub fn sdp_handover_offer(
        &self,
        (consult, target_side): (&str, usize),
        (ip, port, law): (IpAddr, u16, G711Law),
    ) -> Option<(SessionDescription, u64)> {
        let y = self.sdp.get(consult)?;
        let version = y.sent[target_side].as_ref().map_or(1, |(_, v)| v + 1);
        let offer = SessionDescription::router_offer(ip, port, law, (y.origin, version));
        Some((offer, version))
    }

    /// The target answered the hand-over's re-INVITE: `call`'s `side` is now its leg.
    pub fn sdp_handed_over(
        &mut self,
        call: &str,
        side: usize,
        peer: (SocketAddr, LegCodecs),
        sent: (SessionDescription, u64),
    ) {
        if let Some(x) = self.sdp.get_mut(call) {
            x.peer[side] = Some(peer);
            x.sent[side] = Some(sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::tests_support::{T0, board};

    const PHONE: &str = "v=0\r\no=phone 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn a_seat_re_invite_moves_its_side_bumps_our_version_and_holds_by_direction() {
        let mut r = Router::new(board(&["arm1"]), Now::at(T0));
        r.sdp_open("c1", 42, None);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let offer = r.sdp_offer_seat("c1", 1, Some((ip, 30000, G711Law::Ulaw)));
        assert!(offer.unwrap().to_string().contains("o=sas-router 42 1"));
        let now = Now::at(T0);
        let pending = r.sdp_reoffer(now, "c1", (2, None), b"", (ip, 30002));
        assert_eq!(
            pending,
            Err(ReofferError::Pending),
            "nothing sent on side 2"
        );
        let held = PHONE.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        let re = r.sdp_reoffer(now, "c1", (1, None), held.as_bytes(), (ip, 30000));
        let re = re.unwrap();
        assert_eq!(re.remote, Some("10.0.0.9:4000".parse().unwrap()));
        assert!(re.codecs.is_some() && !re.receiving && re.sending);
        let answer = re.answer.to_string();
        assert!(answer.contains("o=sas-router 42 2") && answer.contains("a=recvonly"));
        // Resumed from the same address: nothing moves, the version goes on.
        let re = r.sdp_reoffer(now, "c1", (1, None), PHONE.as_bytes(), (ip, 30000));
        let re = re.unwrap();
        assert_eq!((re.remote, re.codecs, re.receiving), (None, None, true));
        assert!(re.answer.to_string().contains("o=sas-router 42 3"));
        let bad = r.sdp_reoffer(now, "c1", (1, None), b"garbage", (ip, 30000));
        assert_eq!(bad, Err(ReofferError::Malformed));
    }
}
