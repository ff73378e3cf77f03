//! Seats that answer in the browser console (WebRTC): a console that logged in with audio
//! is rung with the router's WebRTC offer on its CTI event stream (`offer`, its SDP with
//! every ICE candidate), answers with `POST /api/cti/answer`, and its leg is then bridged
//! like any seat leg (the relay reads and writes it through channels). `cancel` and
//! `hangup` events tell the console its leg is gone.
//!
//! A supervisor's console takes its monitor legs (listen, whisper, barge) the same way:
//! the offer says `monitor` (the mode) and the page answers it by itself, the supervisor
//! having asked for it (`monitor.rs` tells the Router). The relay mixes the console's
//! G.711 like a SIP phone's.

use super::{CallDriver, CallEvent, LegMap, Legs};
use crate::acd::SeatState;
use crate::call::router::RouterInput;
use crate::call::{CallId, CallInput, SeatId};
use crate::cti::{CtiError, CtiEvent};
use crate::media::relay::Leg;
use crate::media::sdp::LegCodecs;
use crate::media::webrtc::WebRtcLeg;

use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A console's WebRTC leg on a call: offered, then answered.
pub(in crate::net) struct ConsoleLeg {
    pub(super) seat: String,
    /// Tells this offer apart from a later one to the same seat.
    id: u64,
    pub(super) media: Leg,
    pub(super) answered: bool,
    /// A supervisor's monitor leg: its outcome and its end are the monitor's (until a
    /// take over makes it the call's seat leg).
    pub(super) monitor: bool,
    /// `None` while the offer is being made or the answer applied.
    leg: Option<WebRtcLeg>,
}

/// What comes back from the tasks doing the (async) WebRTC work.
pub enum ConsoleEvent {
    /// The offer for `seat` is ready (or could not be made).
    Offered {
        call: String,
        seat: String,
        id: u64,
        result: Result<(WebRtcLeg, String), String>,
    },
    /// The console's answer was applied (or refused); `reply` answers its request.
    Answered {
        call: String,
        seat: String,
        id: u64,
        leg: WebRtcLeg,
        result: Result<LegCodecs, String>,
        reply: oneshot::Sender<Result<Value, CtiError>>,
    },
    /// The browser went away (ICE/DTLS failed or closed).
    Lost { call: String, seat: String, id: u64 },
}

impl Legs {
    fn console_mut(&mut self, seat: &str, id: u64) -> Option<&mut ConsoleLeg> {
        self.consoles
            .iter_mut()
            .find(|c| c.seat == seat && c.id == id)
    }

    /// Removes the console leg of `seat`, if any.
    pub(super) fn take_console(&mut self, seat: &str) -> Option<ConsoleLeg> {
        let i = self.consoles.iter().position(|c| c.seat == seat)?;
        Some(self.consoles.remove(i))
    }
}

impl CallDriver {
    /// Rings `seat`'s console: the offer is made off the event loop (ICE gathering).
    pub(super) fn ring_console(&mut self, call: String, seat: String, legs: &mut LegMap) {
        let Some(l) = legs.get_mut(&call) else { return };
        self.webrtc_offers += 1;
        let id = self.webrtc_offers;
        let media = l.free_media();
        let monitor = self.rings_for_monitor(&call, &seat);
        l.consoles.push(ConsoleLeg {
            seat: seat.clone(),
            id,
            media,
            answered: false,
            monitor,
            leg: None,
        });
        let (config, law, events) = (self.webrtc, l.codecs.law, self.events.clone());
        tokio::spawn(async move {
            let result = WebRtcLeg::offer(&config, law)
                .await
                .map_err(|e| e.to_string());
            let offered = ConsoleEvent::Offered {
                call,
                seat,
                id,
                result,
            };
            events.send(CallEvent::Console(Box::new(offered))).ok();
        });
    }

    /// The console answers the call ringing on it with its SDP; the request is answered
    /// once the answer is applied.
    pub(in crate::net) fn console_answer(
        &mut self,
        seat: &str,
        sdp: String,
        reply: oneshot::Sender<Result<Value, CtiError>>,
        legs: &mut LegMap,
    ) {
        let ringing = match self.router.board().acd().seat(seat).map(|s| &s.state) {
            Some(SeatState::Ringing { call, .. }) => Some(call.clone()),
            // A supervisor's seat is paused while its monitor leg rings.
            _ => (legs.iter())
                .find(|(_, l)| {
                    (l.consoles.iter()).any(|c| c.seat == seat && c.monitor && !c.answered)
                })
                .map(|(call, _)| CallId::from(call.clone())),
        };
        let Some(call) = ringing else {
            reply.send(Err(CtiError::NoCall)).ok();
            return;
        };
        let Some(c) = legs.get_mut(call.as_str()).and_then(|l| {
            l.consoles
                .iter_mut()
                .find(|c| c.seat == seat && !c.answered)
        }) else {
            let why = "the call rings on the SIP phone".to_string();
            reply.send(Err(CtiError::Conflict(why))).ok();
            return;
        };
        let Some(leg) = c.leg.take() else {
            reply
                .send(Err(CtiError::Conflict("the offer is not ready".into())))
                .ok();
            return;
        };
        let (id, seat, events) = (c.id, seat.to_string(), self.events.clone());
        tokio::spawn(async move {
            let result = leg.set_answer(&sdp).await.map_err(|e| e.to_string());
            let answered = ConsoleEvent::Answered {
                call: call.into(),
                seat,
                id,
                leg,
                result,
                reply,
            };
            events.send(CallEvent::Console(Box::new(answered))).ok();
        });
    }

    pub(super) fn on_console(&mut self, event: ConsoleEvent, legs: &mut LegMap) {
        let now = self.clock.now();
        match event {
            ConsoleEvent::Offered {
                call,
                seat,
                id,
                result,
            } => {
                let Some(c) = legs.get_mut(&call).and_then(|l| l.console_mut(&seat, id)) else {
                    // Withdrawn meanwhile: the leg closes as it drops.
                    return;
                };
                match result {
                    Ok((leg, sdp)) => {
                        let lost = ConsoleEvent::Lost {
                            call: call.clone(),
                            seat: seat.clone(),
                            id,
                        };
                        self.watch_webrtc(&leg, CallEvent::Console(Box::new(lost)));
                        c.leg = Some(leg);
                        let mode = (self.router.monitoring(&call))
                            .filter(|_| c.monitor)
                            .map(|m| m.mode);
                        let detail = json!({ "sdp": sdp, "monitor": mode });
                        self.tell_console(&seat, &call, "offer", detail);
                    }
                    Err(why) => {
                        tracing::warn!(%seat, error = %why, "no WebRTC offer for the console");
                        let monitor = c.monitor;
                        if let Some(l) = legs.get_mut(&call) {
                            l.take_console(&seat);
                        }
                        self.leg_failed(call, seat, monitor, None);
                    }
                }
            }
            ConsoleEvent::Answered {
                call,
                seat,
                id,
                mut leg,
                result,
                reply,
            } => {
                let Some(l) = legs.get_mut(&call) else {
                    reply.send(Err(CtiError::NoCall)).ok();
                    return;
                };
                let Some(c) = l.console_mut(&seat, id) else {
                    reply.send(Err(CtiError::NoCall)).ok();
                    return;
                };
                let codecs = match result {
                    Ok(codecs) => codecs,
                    Err(why) => {
                        c.leg = Some(leg);
                        reply.send(Err(CtiError::Invalid(why))).ok();
                        return;
                    }
                };
                let (media, monitor) = (c.media, c.monitor);
                let io = leg.take_io();
                c.answered = true;
                c.leg = Some(leg);
                if let Some(io) = io {
                    l.relay.set_codecs(media, codecs);
                    l.relay.set_receiving(media, true);
                    l.relay.attach_webrtc(media, io);
                }
                self.leg_answered(now, call.clone(), &seat, monitor);
                reply.send(Ok(json!({ "call": call }))).ok();
            }
            ConsoleEvent::Lost { call, seat, id } => {
                let Some(c) = legs.get_mut(&call).and_then(|l| l.console_mut(&seat, id)) else {
                    return;
                };
                if c.monitor {
                    tracing::info!(%seat, "a supervisor console's monitor media is gone");
                    if let Some(l) = legs.get_mut(&call)
                        && let Some(c) = l.take_console(&seat)
                    {
                        l.relay.monitor(None);
                        self.release_console(&call, c, l);
                    }
                    let gone = RouterInput::MonitorGone { call: call.into() };
                    return self.router.handle(now, gone);
                }
                let input = if c.answered {
                    tracing::warn!(%seat, "a console's WebRTC media is gone");
                    CallInput::SeatLost {
                        call: call.into(),
                        seat: seat.into(),
                    }
                } else {
                    CallInput::SeatFailed {
                        call: call.into(),
                        seat: SeatId::from(seat),
                        status: None,
                    }
                };
                self.router.handle_call(now, input);
            }
        }
    }

    /// Ends a console leg: the relay side back to its socket, the console told why.
    pub(super) fn release_console(&self, call: &str, c: ConsoleLeg, l: &Legs) {
        if c.answered {
            l.relay.detach_webrtc(c.media);
        }
        let kind = if c.answered { "hangup" } else { "cancel" };
        self.tell_console(&c.seat, call, kind, json!({}));
        if let Some(leg) = c.leg {
            tokio::spawn(leg.close());
        }
    }

    pub(super) fn tell_console(&self, seat: &str, call: &str, kind: &str, detail: Value) {
        self.cti.publish(CtiEvent {
            at: self.clock.now().wall,
            seat: Some(seat.into()),
            call: Some(call.into()),
            kind: kind.into(),
            detail,
        });
    }
}
