//! Per-leg SDP negotiation state, owned by the Router: for each media side of a call (0 the
//! caller, 1 and 2 the plateau's two seat sides, as the relay numbers them), what we last
//! sent and its version, and the peer's address and codecs; the session's origin and how
//! many offers went to seats. The driver carries SDP bodies in and out and points the relay
//! where the returned [`Reoffered`] says; a seat's re-INVITE that stops (or resumes)
//! receiving holds (or takes back) its caller here.
//!
//! SRTP (SDES) is decided per leg when it is set up (the caller's offer by its peer's
//! policy, a seat's by what we offered) and kept for the dialog: a re-INVITE may bring new
//! keys but cannot turn an SRTP leg plain or a plain one SRTP. Keys are drawn by the app.

use super::Router;
use crate::media::g711::G711Law;
use crate::media::sdp::{LegCodecs, MasterKey, SessionDescription, SrtpKeys, SrtpRefusal};
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
    /// Per side: its SRTP keys once negotiated (`None`: plain RTP).
    srtp: [Option<SrtpKeys>; 3],
    /// Per side: our key in a pending SRTP offer to a seat.
    offered_srtp: [Option<MasterKey>; 3],
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
    /// The leg's SRTP keys, when the peer changed its key (or suite).
    pub srtp: Option<SrtpKeys>,
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
            srtp: [None; 3],
            offered_srtp: [None; 3],
        };
        self.sdp.insert(call.into(), negotiation);
    }

    /// Our answer to the caller's `offer` (version 1), pointed at `ip:port`, with our key
    /// when its SRTP was taken (`srtp`, from [`SessionDescription::srtp_for_offer`]).
    pub fn sdp_answer_caller(
        &mut self,
        call: &str,
        offer: &SessionDescription,
        codecs: LegCodecs,
        (ip, port): (IpAddr, u16),
        srtp: Option<SrtpKeys>,
    ) -> Result<SessionDescription, crate::media::sdp::SdpError> {
        let n = self
            .sdp
            .get_mut(call)
            .ok_or(crate::media::sdp::SdpError::NoAudio)?;
        let mut answer = offer.answer(codecs, ip, port, (n.origin, 1))?;
        answer.set_answer_crypto(srtp.as_ref());
        n.srtp[0] = srtp;
        n.sent[0] = Some((answer.clone(), 1));
        Ok(answer)
    }

    /// A new offer to a seat on `side`, pointed at `ip:port` with `law` first, SRTP
    /// (`RTP/SAVP`) keyed with `srtp` if given; `None` for a WebRTC leg (its peer connection
    /// answers re-INVITEs itself): the side is reset.
    pub fn sdp_offer_seat(
        &mut self,
        call: &str,
        side: usize,
        rtp: Option<(IpAddr, u16, G711Law)>,
        srtp: Option<MasterKey>,
    ) -> Option<SessionDescription> {
        let n = self.sdp.get_mut(call)?;
        n.seat_offers += 1;
        n.peer[side] = None;
        n.srtp[side] = None;
        n.offered_srtp[side] = srtp;
        let offer = rtp.map(|(ip, port, law)| {
            let mut offer =
                SessionDescription::router_offer(ip, port, law, (n.origin, n.seat_offers));
            if let Some(key) = srtp {
                offer.offer_srtp(key);
            }
            offer
        });
        n.sent[side] = offer.clone().map(|o| (o, n.seat_offers));
        offer
    }

    /// The seat on `side` answered `answer`, from `remote` with `codecs`: its SRTP keys
    /// if we offered SRTP (refused when the answer has no matching `a=crypto`: the leg
    /// cannot be bridged), `None` for plain RTP.
    pub fn sdp_answered(
        &mut self,
        call: &str,
        side: usize,
        (remote, codecs): (SocketAddr, LegCodecs),
        answer: &SessionDescription,
    ) -> Result<Option<SrtpKeys>, SrtpRefusal> {
        let Some(n) = self.sdp.get_mut(call) else {
            return Ok(None);
        };
        let srtp = match n.offered_srtp[side].take() {
            Some(local) => Some(answer.srtp_in_answer(local)?),
            None => None,
        };
        n.peer[side] = Some((remote, codecs));
        n.srtp[side] = srtp;
        Ok(srtp)
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
                srtp: None,
            }
        } else {
            let offer =
                SessionDescription::parse_bytes(body).map_err(|_| ReofferError::Malformed)?;
            let (remote, codecs) = (offer.audio_endpoint())
                .zip(offer.leg_codecs())
                .ok_or(ReofferError::NotAcceptable)?;
            let srtp = reoffered_srtp(&offer, n.srtp[side])?;
            let mut answer = offer
                .answer(codecs, ip, port, (n.origin, version + 1))
                .map_err(|_| ReofferError::NotAcceptable)?;
            answer.set_answer_crypto(srtp.as_ref());
            let before = n.peer[side];
            let keys_before = n.srtp[side];
            n.peer[side] = Some((remote, codecs));
            n.sent[side] = Some((answer.clone(), version + 1));
            n.srtp[side] = srtp;
            Reoffered {
                answer,
                remote: (before.map(|p| p.0) != Some(remote)).then_some(remote),
                codecs: (before.map(|p| p.1) != Some(codecs)).then_some(codecs),
                receiving: offer.receives_audio(),
                sending: offer.sends_audio(),
                srtp: srtp.filter(|_| srtp != keys_before),
            }
        };
        if let Some(seat) = seat {
            self.phone_hold(now, call, seat, !reoffered.receiving);
        }
        Ok(reoffered)
    }

    /// Attended transfer: the offer re-INVITing the consulted target (on `consult`'s
    /// `target_side`) towards `call`'s `side` at `ip:port`: the same dialog, so the same
    /// SDP session, its version plus one (RFC 3264 §8). An SRTP target stays SRTP, with
    /// the key we already send it with.
    pub fn sdp_handover_offer(
        &self,
        (consult, target_side): (&str, usize),
        (ip, port, law): (IpAddr, u16, G711Law),
    ) -> Option<(SessionDescription, u64)> {
        let y = self.sdp.get(consult)?;
        let version = y.sent[target_side].as_ref().map_or(1, |(_, v)| v + 1);
        let mut offer = SessionDescription::router_offer(ip, port, law, (y.origin, version));
        if let Some(keys) = y.srtp[target_side] {
            offer.offer_srtp(keys.local);
        }
        Some((offer, version))
    }

    /// The target answered the hand-over's re-INVITE: `call`'s `side` is now its leg, with
    /// `srtp` (from [`SessionDescription::srtp_answering`] our offer).
    pub fn sdp_handed_over(
        &mut self,
        call: &str,
        side: usize,
        peer: (SocketAddr, LegCodecs),
        sent: (SessionDescription, u64),
        srtp: Option<SrtpKeys>,
    ) {
        if let Some(x) = self.sdp.get_mut(call) {
            x.peer[side] = Some(peer);
            x.sent[side] = Some(sent);
            x.srtp[side] = srtp;
        }
    }
}

/// The keys of a leg after a re-INVITE's `offer`: an SRTP leg (`before`) stays SRTP in the
/// same suite, with the peer's new key and our same one (our stream goes on, so its packet
/// index does: a new suite or key would restart it); a plain leg stays plain (`a=crypto`
/// ignored, a secure profile refused).
fn reoffered_srtp(
    offer: &SessionDescription,
    before: Option<SrtpKeys>,
) -> Result<Option<SrtpKeys>, ReofferError> {
    match before {
        Some(keys) => offer
            .audio_crypto()
            .into_iter()
            .find(|c| c.suite == keys.suite)
            .map(|c| {
                Some(SrtpKeys {
                    tag: c.tag,
                    remote: c.key,
                    ..keys
                })
            })
            .ok_or(ReofferError::NotAcceptable),
        None if offer.audio_is_savp() => Err(ReofferError::NotAcceptable),
        None => Ok(None),
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
        let offer = r.sdp_offer_seat("c1", 1, Some((ip, 30000, G711Law::Ulaw)), None);
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

    #[test]
    fn an_srtp_seat_leg_keeps_its_key_and_stays_srtp_across_re_invites() {
        use crate::media::sdp::{KEY_MATERIAL_LEN, MasterKey, SrtpSuite};
        const THEIRS: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
        let savp = |key: &str| -> SessionDescription {
            PHONE
                .replace("RTP/AVP", "RTP/SAVP")
                .replace("telephone-event/8000\r\n", &format!("telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"))
                .parse()
                .unwrap()
        };
        let ours = MasterKey::new([9; KEY_MATERIAL_LEN]);
        let mut r = Router::new(board(&["arm1"]), Now::at(T0));
        r.sdp_open("c1", 42, None);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let offer = r.sdp_offer_seat("c1", 1, Some((ip, 30000, G711Law::Ulaw)), Some(ours));
        assert!(offer.unwrap().audio_is_savp());
        let peer = (
            "10.0.0.9:4000".parse().unwrap(),
            savp(THEIRS).leg_codecs().unwrap(),
        );
        let plain: SessionDescription = PHONE.parse().unwrap();
        assert_eq!(
            r.sdp_answered("c1", 1, peer, &plain),
            Err(SrtpRefusal::Required),
            "a plain answer to an SRTP offer"
        );
        r.sdp_offer_seat("c1", 1, Some((ip, 30000, G711Law::Ulaw)), Some(ours));
        let keys = r
            .sdp_answered("c1", 1, peer, &savp(THEIRS))
            .unwrap()
            .unwrap();
        assert_eq!(keys.local, ours);

        let now = Now::at(T0);
        let body = savp(THEIRS).to_string();
        let same = r
            .sdp_reoffer(now, "c1", (1, None), body.as_bytes(), (ip, 30000))
            .unwrap();
        assert_eq!(
            same.srtp, None,
            "same keys: nothing for the relay to change"
        );
        assert!(same.answer.audio_is_savp() && same.answer.audio_crypto()[0].key == ours);
        let rekeyed = savp("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur").to_string();
        let re = r
            .sdp_reoffer(now, "c1", (1, None), rekeyed.as_bytes(), (ip, 30000))
            .unwrap();
        let new = re.srtp.expect("the peer's new key");
        assert_eq!((new.local, new.remote.key()[0]), (ours, 0xab));
        let downgrade = r.sdp_reoffer(now, "c1", (1, None), PHONE.as_bytes(), (ip, 30000));
        assert_eq!(
            downgrade,
            Err(ReofferError::NotAcceptable),
            "no silent downgrade"
        );
        // Our stream keeps its suite (a new one would restart its index under our key).
        let crypto_80 = "a=crypto:1 AES_CM_128_HMAC_SHA1_80";
        let other_suite = savp(THEIRS)
            .to_string()
            .replace(crypto_80, "a=crypto:5 AES_CM_128_HMAC_SHA1_32");
        let re = r.sdp_reoffer(now, "c1", (1, None), other_suite.as_bytes(), (ip, 30000));
        assert_eq!(re, Err(ReofferError::NotAcceptable), "no change of suite");
        let both = savp(THEIRS).to_string().replace(
            crypto_80,
            &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{THEIRS}\r\na=crypto:6 AES_CM_128_HMAC_SHA1_80"),
        );
        let re = r.sdp_reoffer(now, "c1", (1, None), both.as_bytes(), (ip, 30000));
        let re = re.unwrap();
        let crypto = re.answer.audio_crypto();
        assert_eq!(
            (crypto[0].tag, crypto[0].suite),
            (6, SrtpSuite::AesCm128HmacSha1_80)
        );
        assert_eq!(re.srtp.map(|k| k.tag), Some(6), "same keys, new tag");

        r.sdp_offer_seat("c1", 2, Some((ip, 30002, G711Law::Ulaw)), None);
        let plain_peer = (
            "10.0.0.9:4002".parse().unwrap(),
            plain.leg_codecs().unwrap(),
        );
        assert_eq!(r.sdp_answered("c1", 2, plain_peer, &savp(THEIRS)), Ok(None));
        let upgrade = r.sdp_reoffer(now, "c1", (2, None), body.as_bytes(), (ip, 30002));
        assert_eq!(upgrade, Err(ReofferError::NotAcceptable));
    }

    #[test]
    fn an_attended_handover_re_offers_srtp_to_an_srtp_target_with_its_key() {
        use crate::media::sdp::{KEY_MATERIAL_LEN, MasterKey};
        let ours = MasterKey::new([7; KEY_MATERIAL_LEN]);
        let savp: SessionDescription = PHONE
            .replace("RTP/AVP", "RTP/SAVP")
            .replace(
                "telephone-event/8000\r\n",
                "telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 \
                 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n",
            )
            .parse()
            .unwrap();
        let mut r = Router::new(board(&["arm1"]), Now::at(T0));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // The consultation call Y: its target (side 1) answered our SRTP offer.
        r.sdp_open("y", 7, None);
        r.sdp_offer_seat("y", 1, Some((ip, 30000, G711Law::Ulaw)), Some(ours));
        let peer = ("10.0.0.9:4000".parse().unwrap(), savp.leg_codecs().unwrap());
        let keys = r.sdp_answered("y", 1, peer, &savp).unwrap().unwrap();
        // X takes the target over by re-INVITE: SRTP again, our same key, next version.
        r.sdp_open("x", 8, None);
        let (offer, version) = r
            .sdp_handover_offer(("y", 1), (ip, 30004, G711Law::Ulaw))
            .unwrap();
        assert_eq!(version, 2);
        assert!(offer.audio_is_savp());
        assert_eq!(offer.audio_crypto()[0].key, ours);
        assert_eq!(savp.srtp_answering(&offer), Ok(Some(keys)));
        let plain: SessionDescription = PHONE.parse().unwrap();
        assert_eq!(plain.srtp_answering(&offer), Err(SrtpRefusal::Required));
        r.sdp_handed_over("x", 2, peer, (offer, version), Some(keys));
    }
}
