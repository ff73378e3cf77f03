//! A supervisor's monitor leg: the INVITE to the supervisor's SIP phone, or the WebRTC offer
//! to its browser console (`console.rs`), on the seat leg the call does not use; its media
//! mode on the relay, and its end. The Router decides (`call/router/monitor.rs`); this
//! carries it out.

use super::seat_legs::{SeatOffer, release_seat_leg};
use super::{CallDriver, LegMap};
use crate::call::CallId;
use crate::call::router::RouterInput;
use crate::cti::MonitorMode;
use crate::media::session::Monitor;
use serde_json::json;
use std::collections::HashMap;

impl CallDriver {
    /// Rings the supervisor's console (logged in with audio) or SIP phone for its monitor
    /// of `call`. A WebSocket phone cannot take it yet: then the monitor ends.
    pub(super) fn ring_monitor(
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
            Some(contact) if !contact.is_websocket() => {
                let target = (contact.uri, contact.destination);
                self.invite_b(
                    call,
                    seat,
                    target,
                    SeatOffer::Rtp(contact.route),
                    legs,
                    by_leg,
                );
            }
            _ => {
                tracing::info!(%call, %seat, "monitor: the supervisor has no phone to ring");
                let gone = RouterInput::MonitorGone { call: call.into() };
                self.router.handle(self.clock.now(), gone);
            }
        }
    }

    /// Whether `seat` may be rung for a monitor now (its console has audio, or a SIP phone
    /// is registered).
    pub(in crate::net) fn monitor_reachable(&self, seat: &str) -> bool {
        self.router.rings_console(seat)
            || self.seats.contact(seat).is_some_and(|c| !c.is_websocket())
    }

    /// The relay mixes the supervisor in as `mode` says (`None`: not at all); a console
    /// is told its mode (`monitor` event) so that the supervisor sees what it is doing.
    pub(super) fn monitor_media(&self, call: &str, mode: Option<MonitorMode>, legs: &LegMap) {
        let Some(l) = legs.get(call) else { return };
        let phone = l.seats.iter().find(|s| s.monitor && s.answered);
        let console = l.consoles.iter().find(|c| c.monitor && c.answered);
        if let Some((c, mode)) = console.zip(mode) {
            self.tell_console(&c.seat, call, "monitor", json!({ "mode": mode }));
        }
        let media = phone.map(|s| s.media).or(console.map(|c| c.media));
        let monitor = mode
            .zip(media)
            .map(|(mode, supervisor)| Monitor { supervisor, mode });
        l.relay.monitor(monitor);
    }

    /// Hangs up (or cancels) the supervisor's monitor leg.
    pub(super) fn hang_up_monitor(
        &self,
        call: &str,
        seat: &str,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let Some(l) = legs.get_mut(call) else { return };
        if let Some(i) = l.consoles.iter().position(|c| c.monitor && c.seat == seat) {
            let c = l.consoles.remove(i);
            l.relay.monitor(None);
            return self.release_console(call, c, l);
        }
        let Some(i) = l.seats.iter().position(|s| s.monitor && s.seat == seat) else {
            return;
        };
        let leg = l.seats.remove(i);
        by_leg.remove(&leg.sip);
        l.relay.monitor(None);
        tokio::spawn(release_seat_leg(leg));
    }

    /// The supervisor took the call over: its monitor leg is the call's seat leg now.
    pub(super) fn monitor_taken_over(&self, call: &str, seat: &str, legs: &mut LegMap) {
        let Some(l) = legs.get_mut(call) else { return };
        if let Some(s) = l.seats.iter_mut().find(|s| s.monitor && s.seat == seat) {
            s.monitor = false;
        }
        if let Some(c) = l.consoles.iter_mut().find(|c| c.monitor && c.seat == seat) {
            c.monitor = false;
        }
        l.relay.monitor(None);
    }

    /// If `leg` (a SIP Call-ID) is `call`'s monitor leg, it failed or hung up: it goes,
    /// and the Router hears it. False for any other leg.
    pub(super) fn monitor_failed(
        &mut self,
        call: &str,
        leg: &str,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) -> bool {
        let Some(l) = legs.get_mut(call) else {
            return false;
        };
        let Some(i) = l.seats.iter().position(|s| s.monitor && s.sip == leg) else {
            return false;
        };
        by_leg.remove(&l.seats.remove(i).sip);
        l.relay.monitor(None);
        let gone = RouterInput::MonitorGone {
            call: CallId::from(call.to_string()),
        };
        self.router.handle(self.clock.now(), gone);
        true
    }
}
