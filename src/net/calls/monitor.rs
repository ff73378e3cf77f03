//! A supervisor's monitor leg: the INVITE to the supervisor's phone (SIP, or a WebSocket
//! phone's WebRTC offer, `webrtc_phone.rs`), or the WebRTC offer to its browser console
//! (`console.rs`), on the seat leg the call does not use, rung like a seat (`ring_seat`);
//! its media mode on the relay, and its end. The Router decides (`call/router/monitor.rs`); this carries it out. Each path
//! tells a monitor leg from a seat's by [`CallDriver::rings_for_monitor`] when it rings,
//! and reports its answer and failure through [`CallDriver::leg_answered`] and
//! [`CallDriver::leg_failed`].

use super::seat_legs::{answered, release_seat_leg};
use super::{CallDriver, LegMap};
use crate::call::CallId;
use crate::call::router::RouterInput;
use crate::cti::MonitorMode;
use crate::media::session::Monitor;
use crate::time::Now;
use serde_json::json;
use std::collections::HashMap;

impl CallDriver {
    /// Whether the Router rings `seat` for its monitor of `call` (not yet answered): a leg
    /// offered to it now is the monitor's, not a seat's.
    pub(super) fn rings_for_monitor(&self, call: &str, seat: &str) -> bool {
        (self.router.monitoring(call)).is_some_and(|m| m.supervisor == seat && !m.answered)
    }

    /// A leg offered to `seat` answered: the monitor's answer, or the seat's (or the
    /// external party's).
    pub(super) fn leg_answered(&mut self, now: Now, call: String, seat: &str, monitor: bool) {
        let input = match monitor {
            true => RouterInput::MonitorAnswered { call: call.into() },
            false => RouterInput::Call(answered(call.into(), seat)),
        };
        self.router.handle(now, input);
    }

    /// A leg offered to `seat` could not be set up (before any SIP dialog, or with a
    /// refused answer): the monitor ends, or the seat failed.
    pub(super) fn leg_failed(
        &mut self,
        call: String,
        seat: String,
        monitor: bool,
        status: Option<u16>,
    ) {
        match monitor {
            true => {
                let gone = RouterInput::MonitorGone { call: call.into() };
                self.router.handle(self.clock.now(), gone);
            }
            false => self.seat_leg_failed(call, seat, status),
        }
    }

    /// Whether `seat` may be rung for a monitor now (its console has audio, or a phone is
    /// registered).
    pub(in crate::net) fn monitor_reachable(&self, seat: &str) -> bool {
        self.router.rings_console(seat) || self.seats.contact(seat).is_some()
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
        // A WebSocket phone's offer still being made: withdrawn, it never rings.
        l.phone_offers.retain(|(s, _)| s != seat);
        let Some(i) = l.seats.iter().position(|s| s.monitor && s.seat == seat) else {
            return;
        };
        let leg = l.remove_seat(i, by_leg);
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
        l.remove_seat(i, by_leg);
        l.relay.monitor(None);
        let gone = RouterInput::MonitorGone {
            call: CallId::from(call.to_string()),
        };
        self.router.handle(self.clock.now(), gone);
        true
    }
}
