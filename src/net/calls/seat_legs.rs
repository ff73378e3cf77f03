//! Seat legs: the INVITE that offers a call to a seat's phone (or, for a forward, to an
//! external number through the trunk), its outcome, and its release (CANCEL, BYE, and the
//! NOTIFY a REFER is owed).

use super::webrtc_phone::PhoneMedia;
use super::{CallDriver, CallEvent, LegMap, Legs};
use crate::acd::Urgency;
use crate::call::router::RouterInput;
use crate::call::{CallId, CallInput, Party};
use crate::media::relay::Leg;
use crate::media::sdp::{SessionDescription, SrtpPolicy};
use crate::net::limits::LogThrottle;
use crate::time::Now;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode, Uri};
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A leg towards a seat (or the external party): offered, then answered.
pub(in crate::net) struct SeatLeg {
    pub(super) seat: String,
    /// SIP Call-ID.
    pub(super) sip: String,
    pub(super) dialog: InviteDialog,
    /// Its side of the relay.
    pub(super) media: Leg,
    /// The seat answered (its BYE then means it left the call).
    pub(super) answered: bool,
    /// The seat asked for a transfer by REFER: the 202 goes out, then the outcome
    /// (NOTIFY), then the router hangs the leg up.
    pub(super) referred: Option<TransactionHandle>,
    /// The seat asked by REFER for an accompanied transfer: NOTIFY it when the target
    /// answers.
    pub(super) notify_on_answer: bool,
    /// A WebSocket phone's WebRTC media (otherwise plain RTP on the leg's socket).
    pub(super) webrtc: Option<PhoneMedia>,
    /// Its phone both sends and receives (not holding, not `recvonly`): silence from it
    /// then means it is dead. On hold a phone may well send nothing.
    pub(super) talking: bool,
    /// Renegotiated since the Router last heard of it: its silence watch starts again.
    pub(super) restarted: bool,
    /// A supervisor's monitor leg (listen, whisper, barge): its outcome and its end are
    /// the monitor's, not a seat's (until a take over makes it the call's seat leg).
    pub(super) monitor: bool,
}

/// The media offered in an INVITE to a seat.
pub(super) enum SeatOffer {
    /// Plain RTP on the relay's socket; the seat's Route set (its Path, if any).
    Rtp(Vec<String>),
    /// A WebRTC connection and its SDP offer.
    WebRtc(PhoneMedia, String),
}

impl Legs {
    /// Removes seat leg `i` from the call: its Call-ID forgotten, and a WebSocket phone's
    /// relay side back to its socket (the next offer may take it).
    pub(super) fn remove_seat(
        &mut self,
        i: usize,
        by_leg: &mut HashMap<String, String>,
    ) -> SeatLeg {
        let leg = self.seats.remove(i);
        by_leg.remove(&leg.sip);
        if leg.answered && leg.webrtc.is_some() {
            self.relay.detach_webrtc(leg.media);
        }
        leg
    }
}

impl CallDriver {
    /// The outcome of the INVITE of seat leg `leg` (its Call-ID): a 2xx bridges it (its
    /// answer applied), anything else fails the offer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_seat_result(
        &mut self,
        now: Now,
        call: String,
        seat: String,
        leg: String,
        status: Option<u16>,
        answer: Option<Vec<u8>>,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let offered = legs.get(&call).and_then(|l| l.seat_leg(&leg));
        let media = offered.map(|s| s.media);
        let current = media.is_some();
        let phone = offered
            .and_then(|s| s.webrtc.as_ref())
            .map(|w| Arc::clone(&w.leg));
        match (status, phone) {
            (Some(code), Some(phone)) if (200..300).contains(&code) => {
                let answer = answer.unwrap_or_default();
                self.phone_answered(call, leg, phone, &answer);
            }
            (Some(code), None) if (200..300).contains(&code) => {
                if let (Some(side), Some(answer), Some(l)) = (media, answer, legs.get_mut(&call)) {
                    let media = SessionDescription::parse_bytes(&answer)
                        .ok()
                        .and_then(|sdp| {
                            let peer = (sdp.audio_endpoint()?, sdp.leg_codecs()?);
                            let srtp = (self.router).sdp_answered(&call, side.idx(), peer, &sdp);
                            let srtp = srtp
                                .inspect_err(|e| tracing::info!(%call, %seat, error = %e, "seat answer refused"))
                                .ok()?;
                            Some((peer, srtp, sdp.receives_audio(), sdp.sends_audio()))
                        });
                    match media {
                        Some(((remote, codecs), srtp, receiving, sends)) => {
                            // Keys before codecs: the new peer's packets are read with its keys.
                            l.relay.set_srtp(side, srtp);
                            l.relay.set_remote(side, remote);
                            l.relay.set_codecs(side, codecs);
                            l.relay.set_receiving(side, receiving);
                            let mut monitor = false;
                            if let Some(s) = l.seats.iter_mut().find(|s| s.sip == leg) {
                                s.answered = true;
                                s.talking = sends && receiving;
                                monitor = s.monitor;
                            }
                            self.leg_answered(now, call, &seat, monitor);
                        }
                        None => {
                            // An answer we cannot bridge: treat the seat as failed.
                            self.hang_up_leg(&leg, legs.get(&call));
                            if !self.monitor_failed(&call, &leg, legs, by_leg) {
                                self.seat_leg_failed(call, seat, Some(488));
                            }
                        }
                    }
                }
                // Not current: a 2xx racing our CANCEL; rsipstack BYEs it.
            }
            _ if current && self.monitor_failed(&call, &leg, legs, by_leg) => {}
            _ if current => self.seat_leg_failed(call, seat, status),
            _ => {}
        }
    }

    /// Rings `seat` where its calls ring: its console (logged in with audio), its
    /// WebSocket phone (WebRTC), or its SIP phone. A supervisor is rung so for its monitor.
    pub(super) fn ring_seat(
        &mut self,
        call: String,
        seat: String,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        if self.router.rings_console(&seat) {
            return self.ring_console(call, seat, legs);
        }
        match self.seats.contact(&seat) {
            Some(contact) if contact.is_websocket() => {
                let target = (contact.uri, contact.destination);
                self.ring_webrtc_phone(call, seat, target, legs);
            }
            // A TLS phone is reached over its own connection only: gone (closed, or before
            // a restart), the stack would hold the INVITE until the ring timeout.
            Some(contact) if contact.over_tls() && !self.flow_open(&contact.destination) => {
                tracing::debug!(%call, %seat, "seat's TLS connection is closed");
                self.not_rung(call, seat);
            }
            Some(contact) => {
                let target = (contact.uri, contact.destination);
                let offer = SeatOffer::Rtp(contact.route);
                self.invite_b(call, seat, target, offer, legs, by_leg);
            }
            None => self.not_rung(call, seat),
        }
    }

    /// The offer to `seat` never left (no registration left, its connection closed, or
    /// the INVITE could not be sent): the monitor it was for ends, or the Router hears
    /// that the offer was not sent.
    fn not_rung(&mut self, call: String, seat: String) {
        let now = self.clock.now();
        if self.rings_for_monitor(&call, &seat) {
            let gone = RouterInput::MonitorGone { call: call.into() };
            self.router.handle(now, gone);
        } else {
            self.router.handle_call(now, not_sent(call, seat));
        }
    }

    /// Whether the stack holds a connection to `destination`.
    fn flow_open(&self, destination: &SipAddr) -> bool {
        let layer = &self.dialogs.endpoint.transport_layer;
        layer.get_addrs().contains(destination)
    }

    /// Dials an external number through the trunk, on the seat leg.
    pub(super) fn dial_out(
        &mut self,
        call: String,
        number: String,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let seat = Party::EXTERNAL_NAME.to_string();
        let target = self.trunk_out.clone().and_then(|destination| {
            let uri = format!("sip:{}@{}", sip_user(&number), destination.addr);
            Some((Uri::try_from(uri).ok()?, destination))
        });
        let tls = |t: &(Uri, SipAddr)| t.1.r#type == Some(rsipstack::sip::Transport::Tls);
        if target.as_ref().is_some_and(tls) && !self.trunk_link.is_up() {
            tracing::error!(%call, "forward: the outbound trunk's TLS connection is down");
            return self.seat_leg_failed(call, seat, None);
        }
        match target {
            Some(target) => {
                let offer = SeatOffer::Rtp(Vec::new());
                self.invite_b(call, seat, target, offer, legs, by_leg)
            }
            None => {
                // Once per call was 2,000 lines a minute under load: once per interval.
                if let Some(unlogged) = no_outbound_log() {
                    tracing::error!(%call, unlogged, "forward: no [trunk] outbound address configured");
                }
                self.seat_leg_failed(call, seat, None);
            }
        }
    }

    /// The seat leg could not be set up: the switchboard hears it, and a forward that
    /// failed sends the call back to its queue.
    pub(super) fn seat_leg_failed(&mut self, call: String, seat: String, status: Option<u16>) {
        let now = self.clock.now();
        let call = CallId::from(call);
        let input = match party_of(&seat) {
            Party::External => CallInput::ExternalFailed { call, status },
            Party::Seat(seat) => CallInput::SeatFailed { call, seat, status },
        };
        // A failed forward waits again in its queue: the Router sees to it.
        self.router.handle_call(now, input);
    }

    /// Sends the INVITE of the seat leg to `target` (URI, where to send it).
    pub(super) fn invite_b(
        &mut self,
        call: String,
        seat: String,
        target: (Uri, SipAddr),
        offer: SeatOffer,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let Some(l) = legs.get_mut(&call) else {
            return;
        };
        let (callee, destination) = target;
        // Each offer to a seat is a new session towards that seat: a fresh origin version.
        let media = l.free_media();
        let monitor = self.rings_for_monitor(&call, &seat);
        let (offer, webrtc, route) = match offer {
            SeatOffer::Rtp(route) => {
                let rtp = (self.sdp_ip, l.relay.local_addr(media).port(), l.codecs.law);
                // SRTP to a peer that requires it; the others are offered plain RTP.
                let policy = match party_of(&seat) {
                    Party::External => self.srtp.trunk(),
                    Party::Seat(_) => self.srtp.seat(&seat),
                };
                let srtp = (policy == SrtpPolicy::Required).then(crate::media::srtp::fresh_key);
                let offer = (self.router).sdp_offer_seat(&call, media.idx(), Some(rtp), srtp);
                (
                    offer.map(|o| o.to_string()).unwrap_or_default(),
                    None,
                    route,
                )
            }
            // The peer connection answers this leg's re-INVITEs itself.
            SeatOffer::WebRtc(phone, sdp) => {
                self.router.sdp_offer_seat(&call, media.idx(), None, None);
                (sdp, Some(phone), Vec::new())
            }
        };
        let caller = self
            .router
            .board()
            .record(&call)
            .map(|r| r.caller.reveal().to_string())
            .unwrap_or_default();
        let caller_uri = Uri::try_from(format!(
            "sip:{}@{}",
            sip_user(&caller),
            self.contact.host_with_port
        ))
        .unwrap_or_else(|_| self.contact.clone());
        // Over TLS, our TLS listener (rsipstack would name the first listener's port).
        let contact = match (&self.tls_contact, destination.r#type) {
            (Some(tls), Some(rsipstack::sip::Transport::Tls)) => tls.clone(),
            _ => self.contact.clone(),
        };
        let option = InviteOption {
            caller: caller_uri,
            callee,
            destination: Some(destination),
            contact,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            headers: Some(seat_headers(
                &call,
                l.max_forwards,
                self.router.board().urgency(&call),
                &route,
            )),
            ..Default::default()
        };
        match self
            .dialogs
            .do_invite_async(option, self.state_sender.clone())
        {
            Ok((dialog, result)) => {
                let leg = dialog.id().call_id.clone();
                by_leg.insert(leg.clone(), call.clone());
                l.seats.push(SeatLeg {
                    seat: seat.clone(),
                    sip: leg.clone(),
                    dialog,
                    media,
                    answered: false,
                    referred: None,
                    notify_on_answer: false,
                    webrtc,
                    talking: true,
                    restarted: false,
                    monitor,
                });
                let events = self.events.clone();
                tokio::spawn(async move {
                    let (status, answer) = match result.await {
                        Ok(Ok((_, Some(resp)))) => {
                            (Some(resp.status_code.code()), Some(resp.body().clone()))
                        }
                        _ => (None, None),
                    };
                    events
                        .send(CallEvent::SeatResult {
                            call,
                            seat,
                            leg,
                            status,
                            answer,
                        })
                        .ok();
                });
            }
            Err(e) => {
                tracing::warn!(%seat, error = %e, "could not send INVITE on the seat leg");
                if seat == Party::EXTERNAL_NAME {
                    self.seat_leg_failed(call, seat, None);
                } else {
                    self.not_rung(call, seat);
                }
            }
        }
    }

    pub(super) fn hang_up_leg(&self, leg: &str, l: Option<&Legs>) {
        if let Some(s) = l.and_then(|l| l.seat_leg(leg)) {
            let dialog = s.dialog.clone();
            tokio::spawn(async move { dialog.hangup().await.ok() });
        }
    }
}

/// `Some(n)` when a forward without `[trunk] outbound` is to be logged now (`n` not logged
/// since); `None`: not now. The call's timeline says FORWARD_FAILED either way.
fn no_outbound_log() -> Option<u64> {
    static LOG: OnceLock<Mutex<LogThrottle>> = OnceLock::new();
    let log = LOG.get_or_init(|| Mutex::new(LogThrottle::new(Duration::from_secs(10))));
    log.lock().ok()?.hit(Instant::now())
}

/// Time between the 202 to a REFER and its NOTIFY.
const REFER_NOTIFY_DELAY_MS: u64 = 30;

/// Ends a seat leg: CANCEL while ringing, BYE once answered. A seat that asked for the
/// transfer by REFER first hears that it succeeded (RFC 3515 NOTIFY).
pub(super) async fn release_seat_leg(leg: SeatLeg) {
    if let Some(refer) = leg.referred {
        refer.reply(StatusCode::Accepted).await.ok();
        // The reply is queued to its transaction, not sent yet: let the 202 leave first
        // (RFC 3515 allows the NOTIFY to overtake it, but phones cope badly).
        tokio::time::sleep(std::time::Duration::from_millis(REFER_NOTIFY_DELAY_MS)).await;
        leg.dialog
            .notify_refer(StatusCode::OK, "terminated;reason=noresource")
            .await
            .ok();
    }
    leg.dialog.hangup().await.ok();
}

/// The offer never left (no registration left, or the INVITE could not be sent): the
/// router's trouble, not the seat's.
fn not_sent(call: String, seat: String) -> CallInput {
    CallInput::OfferNotSent {
        call: call.into(),
        seat: seat.into(),
    }
}

/// Headers of an INVITE to a seat: the router's call id, Max-Forwards, Allow, and for a rated
/// call its Hub Santé priority (`X-Sas-Priority`) and the SIP `Priority` a phone can show
/// (RFC 3261 §20.26).
fn seat_headers(
    call: &str,
    max_forwards: u32,
    urgency: Option<Urgency>,
    route: &[String],
) -> Vec<Header> {
    // A seat registered through a proxy: its Path is the Route set (RFC 3327 §5.3).
    let mut headers: Vec<Header> = route
        .iter()
        .map(|hop| Header::Route(format!("<{hop}>").into()))
        .collect();
    headers.extend([
        Header::Other("X-Sas-Call".into(), call.into()),
        Header::MaxForwards(max_forwards.to_string().into()),
        // What the seat may send back in the dialog: phones offer transfer only with REFER.
        Header::Allow(crate::sip::guard::ALLOW.into()),
    ]);
    if let Some(u) = urgency.filter(|u| *u != Urgency::Nr) {
        let sip = match u {
            Urgency::P0 => "emergency",
            Urgency::P1 => "urgent",
            _ => "normal",
        };
        headers.push(Header::Other("X-Sas-Priority".into(), u.label().into()));
        headers.push(Header::Other("Priority".into(), sip.into()));
    }
    headers
}

/// A caller number usable as a SIP user part (digits, `+`; anything else dropped).
fn sip_user(number: &str) -> String {
    let user: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
        .collect();
    if user.is_empty() {
        "anonymous".into()
    } else {
        user
    }
}

/// The party a seat leg reaches: the driver names the leg of a forward through the trunk
/// [`Party::EXTERNAL_NAME`]; the switchboard gets a typed [`Party`].
pub(super) fn party_of(seat: &str) -> Party {
    if seat == Party::EXTERNAL_NAME {
        Party::External
    } else {
        Party::Seat(seat.into())
    }
}

/// The 200 of a seat leg, as the switchboard's input.
pub(super) fn answered(call: CallId, seat: &str) -> CallInput {
    match party_of(seat) {
        Party::External => CallInput::ExternalAnswered { call },
        Party::Seat(seat) => CallInput::SeatAnswered { call, seat },
    }
}
