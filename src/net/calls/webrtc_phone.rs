//! Seats whose phone registered over SIP WebSocket (JsSIP, SIP.js: a browser). Such a phone
//! speaks WebRTC only, so its INVITE carries the router's WebRTC offer (DTLS-SRTP, every
//! ICE candidate) instead of plain RTP. Its 2xx answer is applied to that peer connection,
//! and the leg is then bridged like any seat leg (the relay reads and writes it through
//! channels). A re-INVITE from the phone (hold, resume) is answered by the same
//! connection, and its hold gives the caller the hold audio. A WebSocket phone may also
//! place a call (an ARM dialling 2001): the router answers its WebRTC offer at admission
//! (`net::caller_media`), and re-INVITEs and a dead connection are handled here too. A phone whose media dies (tab closed, network lost) is hung up, and its
//! caller waits again. A supervisor's WebSocket phone takes its monitor legs this way too:
//! their answer, failure and loss are the monitor's (`monitor.rs`).

use super::{CallDriver, CallEvent, LegMap, Legs, SeatOffer};
use crate::call::CallInput;
use crate::media::relay::Leg;
use crate::media::sdp::{LegCodecs, SessionDescription};
use crate::media::webrtc::{WebRtcIo, WebRtcLeg, WebRtcState};

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, StatusCode, Uri};
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::Arc;

/// The WebRTC side of a seat leg towards a WebSocket phone.
pub(super) struct PhoneMedia {
    pub(super) leg: Arc<WebRtcLeg>,
    /// Handed to the relay once the phone answered.
    io: Option<WebRtcIo>,
}

impl PhoneMedia {
    pub(super) fn new(mut leg: WebRtcLeg) -> PhoneMedia {
        let io = leg.take_io();
        PhoneMedia {
            leg: Arc::new(leg),
            io,
        }
    }
}

/// What comes back from the tasks doing the (async) WebRTC work for phones.
pub enum PhoneEvent {
    /// The offer for `seat` is ready (or could not be made): send the INVITE to `target`.
    Offered {
        call: String,
        seat: String,
        id: u64,
        target: Box<(Uri, SipAddr)>,
        result: Result<(WebRtcLeg, String), String>,
    },
    /// The phone's 2xx answer on leg `sip` (its Call-ID) was applied (or refused).
    Answered {
        call: String,
        sip: String,
        result: Result<LegCodecs, String>,
    },
    /// The phone offered again and now sends with `codecs`; it receives audio unless it
    /// put the caller on hold.
    Reoffered {
        call: String,
        sip: String,
        codecs: LegCodecs,
        receiving: bool,
    },
    /// The phone's media went away (ICE/DTLS failed or closed).
    Lost { call: String, sip: String },
    /// The same for a WebSocket phone that placed the call.
    CallerLost { call: String },
}

impl Legs {
    /// The WebRTC leg of the phone on SIP leg `sip`: a seat's, or the caller's.
    fn webrtc_of(&self, sip: &str) -> Option<&Arc<WebRtcLeg>> {
        match self.seat_leg(sip) {
            Some(s) => s.webrtc.as_ref().map(|w| &w.leg),
            None if self.trunk_leg == sip => self.caller_webrtc.as_ref().map(|w| &w.leg),
            None => None,
        }
    }
}

impl CallDriver {
    /// Rings a WebSocket phone: the offer is made off the event loop (ICE gathering), then
    /// the INVITE goes, unless the switchboard gave up on the seat meanwhile.
    pub(super) fn ring_webrtc_phone(
        &mut self,
        call: String,
        seat: String,
        target: (Uri, SipAddr),
        legs: &mut LegMap,
    ) {
        let Some(l) = legs.get_mut(&call) else { return };
        self.webrtc_offers += 1;
        let id = self.webrtc_offers;
        l.phone_offers.push((seat.clone(), id));
        let (config, law, events) = (self.webrtc, l.codecs.law, self.events.clone());
        tokio::spawn(async move {
            let result = WebRtcLeg::offer(&config, law)
                .await
                .map_err(|e| e.to_string());
            let offered = PhoneEvent::Offered {
                call,
                seat,
                id,
                target: Box::new(target),
                result,
            };
            events.send(CallEvent::Phone(Box::new(offered))).ok();
        });
    }

    /// The phone answered leg `sip` with `sdp`: applied off the event loop (DTLS setup).
    pub(super) fn phone_answered(
        &self,
        call: String,
        sip: String,
        leg: Arc<WebRtcLeg>,
        sdp: &[u8],
    ) {
        let events = self.events.clone();
        let sdp = String::from_utf8_lossy(sdp).into_owned();
        tokio::spawn(async move {
            let result = leg.set_answer(&sdp).await.map_err(|e| e.to_string());
            let answered = PhoneEvent::Answered { call, sip, result };
            events.send(CallEvent::Phone(Box::new(answered))).ok();
        });
    }

    /// A re-INVITE on a phone's WebRTC leg: answered by its peer connection. Returns false
    /// when `sip` is not such a leg.
    pub(super) fn phone_reoffer(
        &self,
        sip: &str,
        offer: &[u8],
        handle: &TransactionHandle,
        legs: &LegMap,
    ) -> bool {
        let Some((call, leg)) = legs.iter().find_map(|(call, l)| {
            let leg = l.webrtc_of(sip)?;
            Some((call.clone(), Arc::clone(leg)))
        }) else {
            return false;
        };
        let (handle, events, sip) = (handle.clone(), self.events.clone(), sip.to_string());
        let receiving = SessionDescription::parse_bytes(offer)
            .map_or(true, |sdp| sdp.webrtc_as_rtp().receives_audio());
        let offer = String::from_utf8_lossy(offer).into_owned();
        tokio::spawn(async move {
            match leg.answer_reoffer(&offer).await {
                Ok((answer, codecs)) => {
                    let content_type = Header::ContentType("application/sdp".into());
                    let body = Some(answer.into_bytes());
                    handle
                        .respond(StatusCode::OK, Some(vec![content_type]), body)
                        .await
                        .ok();
                    let reoffered = PhoneEvent::Reoffered {
                        call,
                        sip,
                        codecs,
                        receiving,
                    };
                    events.send(CallEvent::Phone(Box::new(reoffered))).ok();
                }
                Err(e) => {
                    tracing::info!(error = %e, "a phone's new WebRTC offer refused");
                    handle.reply(StatusCode::NotAcceptableHere).await.ok();
                }
            }
        });
        true
    }

    pub(super) fn on_phone(
        &mut self,
        event: PhoneEvent,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        match event {
            PhoneEvent::Offered {
                call,
                seat,
                id,
                target,
                result,
            } => {
                let Some(l) = legs.get_mut(&call) else { return };
                let Some(i) = l.phone_offers.iter().position(|o| *o == (seat.clone(), id)) else {
                    // Withdrawn meanwhile: the leg closes as it drops.
                    return;
                };
                l.phone_offers.remove(i);
                match result {
                    Ok((leg, sdp)) => {
                        let offer = SeatOffer::WebRtc(PhoneMedia::new(leg), sdp);
                        self.invite_b(call, seat, *target, offer, legs, by_leg);
                    }
                    Err(why) => {
                        tracing::warn!(%seat, error = %why, "no WebRTC offer for the phone");
                        let monitor = self.rings_for_monitor(&call, &seat);
                        self.leg_failed(call, seat, monitor, None);
                    }
                }
            }
            PhoneEvent::Answered { call, sip, result } => {
                let Some(l) = legs.get_mut(&call) else { return };
                let Some(s) = l.seats.iter_mut().find(|s| s.sip == sip) else {
                    return; // cancelled meanwhile
                };
                let (seat, monitor) = (s.seat.clone(), s.monitor);
                let codecs = match result {
                    Ok(codecs) => codecs,
                    Err(why) => {
                        tracing::info!(%seat, error = %why, "a phone's WebRTC answer refused");
                        self.hang_up_leg(&sip, Some(l));
                        if !self.monitor_failed(&call, &sip, legs, by_leg) {
                            self.seat_leg_failed(call, seat, Some(488));
                        }
                        return;
                    }
                };
                let Some(webrtc) = s.webrtc.as_mut() else {
                    return;
                };
                if let Some(io) = webrtc.io.take() {
                    l.relay.set_codecs(s.media, codecs);
                    l.relay.set_receiving(s.media, true);
                    l.relay.attach_webrtc(s.media, io);
                }
                s.answered = true;
                let lost = PhoneEvent::Lost {
                    call: call.clone(),
                    sip,
                };
                self.watch_webrtc(&webrtc.leg, CallEvent::Phone(Box::new(lost)));
                self.leg_answered(self.clock.now(), call, &seat, monitor);
            }
            PhoneEvent::Reoffered {
                call,
                sip,
                codecs,
                receiving,
            } => {
                let Some(l) = legs.get(&call) else { return };
                let Some(s) = l.seat_leg(&sip) else {
                    // The phone that placed the call.
                    return l.relay.set_codecs(Leg::A, codecs);
                };
                l.relay.set_codecs(s.media, codecs);
                if s.monitor {
                    return; // a supervisor's hold is not the call's
                }
                let seat = s.seat.clone();
                let now = self.clock.now();
                self.router.phone_hold(now, &call, &seat, !receiving);
            }
            PhoneEvent::CallerLost { call } => {
                let Some(l) = legs.get(&call) else { return };
                tracing::warn!(%call, "the calling phone's WebRTC media is gone");
                let dialog = l.trunk.clone();
                tokio::spawn(async move { dialog.bye().await.ok() });
                let input = CallInput::CallerGone { call: call.into() };
                self.router.handle_call(self.clock.now(), input);
            }
            PhoneEvent::Lost { call, sip } => {
                let Some(s) = legs.get(&call).and_then(|l| l.seat_leg(&sip)) else {
                    return;
                };
                tracing::warn!(seat = %s.seat, "a phone's WebRTC media is gone: hanging it up");
                let seat = s.seat.clone();
                self.hang_up_leg(&sip, legs.get(&call));
                if self.monitor_failed(&call, &sip, legs, by_leg) {
                    return;
                }
                let input = CallInput::SeatLost {
                    call: call.into(),
                    seat: seat.into(),
                };
                self.router.handle_call(self.clock.now(), input);
            }
        }
    }

    /// Sends `lost` back to the driver when the WebRTC connection fails or closes.
    pub(super) fn watch_webrtc(&self, leg: &WebRtcLeg, lost: CallEvent) {
        let mut state = leg.state();
        let events = self.events.clone();
        tokio::spawn(async move {
            while state.changed().await.is_ok() {
                if matches!(*state.borrow(), WebRtcState::Failed | WebRtcState::Closed) {
                    events.send(lost).ok();
                    return;
                }
            }
        });
    }
}
