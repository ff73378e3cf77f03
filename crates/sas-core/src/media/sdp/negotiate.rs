//! Offer/answer for legs the router terminates: which G.711 law and payload types a leg
//! uses, the answer we give the trunk, and the fresh offer we send a seat.
//!
//! Each leg is negotiated on its own (the router relays between its own sockets), so the
//! caller and the seat may pick different laws; the relay then converts PCMU ↔ PCMA.

use std::net::IpAddr;

use super::{Line, SdpError, SessionDescription, addr_type};
use crate::media::g711::G711Law;

/// Payload type we offer for `telephone-event` (the common dynamic choice).
pub const OFFERED_DTMF_PT: u8 = 101;

/// What one leg sends and expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodecs {
    /// Payload type of the voice codec.
    pub audio_pt: u8,
    /// Its law.
    pub law: G711Law,
    /// Payload type of `telephone-event/8000`, when the leg has it.
    pub dtmf_pt: Option<u8>,
    /// Payload type of the other law, when listed too: the peer may send either (RFC 3264
    /// §6.1), and packets in it are taken and converted. We always send `audio_pt`.
    pub other_pt: Option<u8>,
}

impl LegCodecs {
    /// The law of a voice payload type this leg may send, `None` for anything else.
    pub fn law_of(&self, pt: u8) -> Option<G711Law> {
        if pt == self.audio_pt {
            Some(self.law)
        } else if Some(pt) == self.other_pt {
            Some(self.law.other())
        } else {
            None
        }
    }
}

impl SessionDescription {
    /// The codecs of the peer that wrote this SDP: its first G.711 payload type (offer
    /// order is preference order, RFC 3264 §5.1) and `telephone-event/8000` if listed.
    pub fn leg_codecs(&self) -> Option<LegCodecs> {
        let mut voice: Option<(u8, G711Law)> = None;
        let mut other_pt = None;
        let mut dtmf_pt = None;
        for pt in self.audio_payload_types() {
            match self.codec_of(pt) {
                Some((enc, 8000)) if enc.eq_ignore_ascii_case("telephone-event") => {
                    dtmf_pt = dtmf_pt.or(Some(pt));
                }
                Some((enc, 8000)) => {
                    let law = if enc.eq_ignore_ascii_case("PCMU") {
                        G711Law::Ulaw
                    } else if enc.eq_ignore_ascii_case("PCMA") {
                        G711Law::Alaw
                    } else {
                        continue;
                    };
                    match voice {
                        None => voice = Some((pt, law)),
                        Some((_, first)) if first != law && other_pt.is_none() => {
                            other_pt = Some(pt)
                        }
                        Some(_) => {}
                    }
                }
                _ => {}
            }
        }
        voice.map(|(audio_pt, law)| LegCodecs {
            audio_pt,
            law,
            dtmf_pt,
            other_pt,
        })
    }

    /// The codecs of a WebRTC peer's SDP (`UDP/TLS/RTP/SAVPF`). The SIP side treats only
    /// `RTP/…` profiles as audio it can relay, which keeps it from answering an SRTP offer
    /// with plain RTP; a WebRTC leg's DTLS-SRTP is terminated by the webrtc stack, and its
    /// payload types mean the same.
    pub fn webrtc_leg_codecs(&self) -> Option<LegCodecs> {
        self.webrtc_as_rtp().leg_codecs()
    }

    /// Whether this is a WebRTC peer's SDP (audio over `UDP/TLS/RTP/SAVPF`).
    pub fn is_webrtc(&self) -> bool {
        self.media
            .iter()
            .any(|m| m.kind == "audio" && m.proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF"))
    }

    /// This WebRTC SDP with its audio read as an `RTP/…` profile, for what the SIP side
    /// reads of any peer (codecs, direction).
    pub fn webrtc_as_rtp(&self) -> SessionDescription {
        let mut plain = self.clone();
        for m in &mut plain.media {
            if m.kind == "audio" && m.proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF") {
                m.proto = "RTP/SAVPF".into();
            }
        }
        plain
    }

    /// Our answer to this offer: audio pointed at our `ip:port`, only `codecs` kept (one
    /// voice codec, so the peer never switches law mid-call), other media refused (port 0).
    pub fn answer(
        &self,
        codecs: LegCodecs,
        ip: IpAddr,
        port: u16,
        origin: (u64, u64),
    ) -> Result<SessionDescription, SdpError> {
        let mut answer = self.clone();
        answer.rewrite_for_anchor(ip, port)?;
        let idx = answer.audio_index().ok_or(SdpError::NoAudio)?;
        let keep: Vec<u8> = std::iter::once(codecs.audio_pt)
            .chain(codecs.dtmf_pt)
            .collect();
        answer.keep_payload_types(idx, &keep);
        // The peer's keys are not ours to echo: SRTP answers add theirs (`set_answer_crypto`).
        answer.replace_crypto(None);
        answer.mirror_direction();
        answer.set_origin("sas-router", origin.0, origin.1);
        Ok(answer)
    }

    /// Whether the writer of this SDP wants to receive audio: not `sendonly` or `inactive`
    /// (a phone putting us on hold), at media level first, then session level.
    pub fn receives_audio(&self) -> bool {
        !matches!(self.audio_direction(), Some("sendonly" | "inactive"))
    }

    /// Whether the writer of this SDP sends audio: not `recvonly` or `inactive`.
    pub fn sends_audio(&self) -> bool {
        !matches!(self.audio_direction(), Some("recvonly" | "inactive"))
    }

    /// The audio direction attribute, media level first, then session level.
    fn audio_direction(&self) -> Option<&str> {
        self.audio()
            .and_then(|m| m.lines.iter().find_map(direction_of))
            .or_else(|| self.session.iter().find_map(direction_of))
    }

    /// An answer's direction is the offer's seen from the other end (RFC 3264 §6.1):
    /// a `sendonly` offer (the peer puts us on hold) gets `recvonly`, and so on.
    fn mirror_direction(&mut self) {
        let lines = self
            .session
            .iter_mut()
            .chain(self.media.iter_mut().flat_map(|m| m.lines.iter_mut()));
        for line in lines {
            let mirrored = match direction_of(line) {
                Some("sendonly") => "recvonly",
                Some("recvonly") => "sendonly",
                _ => continue,
            };
            line.value = mirrored.into();
        }
    }

    /// A fresh offer from the router: both laws, `prefer` first (so a seat that can
    /// takes the caller's law and nothing is converted), and `telephone-event`.
    pub fn router_offer(
        ip: IpAddr,
        port: u16,
        prefer: G711Law,
        origin: (u64, u64),
    ) -> SessionDescription {
        let (first, second) = match prefer {
            G711Law::Ulaw => ((0, "PCMU"), (8, "PCMA")),
            G711Law::Alaw => ((8, "PCMA"), (0, "PCMU")),
        };
        let net = addr_type(ip);
        let te = OFFERED_DTMF_PT;
        let text = format!(
            "v=0\r\no=sas-router {} {} IN {net} {ip}\r\ns=sas-router\r\nc=IN {net} {ip}\r\n\
             t=0 0\r\nm=audio {port} RTP/AVP {} {} {te}\r\na=rtpmap:{} {}/8000\r\n\
             a=rtpmap:{} {}/8000\r\na=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n\
             a=ptime:20\r\na=sendrecv\r\n",
            origin.0, origin.1, first.0, second.0, first.0, first.1, second.0, second.1,
        );
        text.parse()
            .expect("the router's own offer is well-formed SDP")
    }
}

/// The direction attribute a line holds, if it is one.
fn direction_of(line: &Line) -> Option<&str> {
    ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| line.attr(d) == Some(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUNK: &str = "v=0\r\no=trunk 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
        t=0 0\r\nm=audio 7000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n\
        a=fmtp:96 0-15\r\na=ptime:20\r\nm=video 7002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n";

    #[test]
    fn trunk_offer_gives_its_first_law_and_dtmf_type() {
        let offer: SessionDescription = TRUNK.parse().unwrap();
        let codecs = offer.leg_codecs().unwrap();
        assert_eq!(
            codecs,
            LegCodecs {
                audio_pt: 8,
                law: G711Law::Alaw,
                dtmf_pt: Some(96),
                other_pt: Some(0),
            }
        );
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        let answer = offer.answer(codecs, ip, 20000, (5, 1)).unwrap();
        assert_eq!(answer.audio_payload_types(), vec![8, 96]);
        assert_eq!(
            answer.audio_endpoint(),
            Some("198.51.100.9:20000".parse().unwrap())
        );
        let text = answer.to_string();
        assert!(text.contains("m=video 0 "), "other media refused: {text}");
        assert!(
            text.contains("o=sas-router 5 1 IN IP4 198.51.100.9"),
            "{text}"
        );
        assert!(text.contains("a=fmtp:96 0-15"), "{text}");
    }

    #[test]
    fn router_offer_round_trips_and_prefers_the_callers_law() {
        let ip: IpAddr = "::1".parse().unwrap();
        let offer = SessionDescription::router_offer(ip, 30000, G711Law::Ulaw, (9, 2));
        assert_eq!(offer.audio_payload_types(), vec![0, 8, OFFERED_DTMF_PT]);
        assert_eq!(offer.leg_codecs().unwrap().law, G711Law::Ulaw);
        assert_eq!(offer.audio_endpoint(), Some("[::1]:30000".parse().unwrap()));
        let a = SessionDescription::router_offer(ip, 30000, G711Law::Alaw, (9, 2));
        assert_eq!(a.leg_codecs().unwrap().audio_pt, 8);
    }

    #[test]
    fn hold_offers_get_mirrored_answers() {
        let hold: SessionDescription = TRUNK.replace("a=ptime:20", "a=sendonly").parse().unwrap();
        let codecs = hold.leg_codecs().unwrap();
        let answer = hold
            .answer(codecs, "10.0.0.1".parse().unwrap(), 4000, (1, 2))
            .unwrap()
            .to_string();
        assert!(
            answer.contains("a=recvonly") && !answer.contains("sendonly"),
            "{answer}"
        );
    }

    #[test]
    fn webrtc_answers_give_codecs_only_when_asked_as_webrtc() {
        let answer: SessionDescription = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 0 101\r\nc=IN IP4 0.0.0.0\r\n\
            a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            .parse()
            .unwrap();
        assert_eq!(answer.leg_codecs(), None, "not plain RTP for the SIP side");
        let codecs = answer.webrtc_leg_codecs().unwrap();
        assert_eq!(
            (codecs.audio_pt, codecs.law, codecs.dtmf_pt),
            (0, G711Law::Ulaw, Some(101))
        );
    }

    #[test]
    fn directions_say_who_sends_and_who_receives() {
        let with = |attr: &str| -> SessionDescription {
            format!(
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 7000 RTP/AVP 8\r\n{attr}"
            )
            .parse()
            .unwrap()
        };
        let both = |sdp: SessionDescription| (sdp.sends_audio(), sdp.receives_audio());
        assert_eq!(both(with("")), (true, true));
        assert_eq!(both(with("a=sendrecv\r\n")), (true, true));
        assert_eq!(both(with("a=sendonly\r\n")), (true, false), "holding us");
        assert_eq!(both(with("a=recvonly\r\n")), (false, true));
        assert_eq!(both(with("a=inactive\r\n")), (false, false));
    }

    #[test]
    fn no_g711_no_codecs() {
        let opus: SessionDescription = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n\
            c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 111 101\r\n\
            a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
            .parse()
            .unwrap();
        assert_eq!(opus.leg_codecs(), None);
    }
}
