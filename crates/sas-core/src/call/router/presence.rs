//! Seat presence, decided by the Router: a seat is online while its phone has a live
//! registration (one contact at least) or its console takes calls with audio. Each seat's
//! registrations expire on the one named-timer table ([`TimerName::RegistrationExpiry`],
//! armed at the earliest contact's expiry on the monotonic clock): the registrar keeps the
//! bindings (and answers REGISTER), the Router says when one is gone.

use super::{Router, RouterOutput, TimerName};
use crate::call::CallInput;
use crate::time::{Mono, Now};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Who keeps each seat online.
#[derive(Debug, Default)]
pub(super) struct Presence {
    /// Registered contacts per seat, with their expiry.
    contacts: HashMap<String, BTreeMap<String, Mono>>,
    /// Seats whose console takes their calls with audio (no phone needed).
    console_audio: HashSet<String>,
}

impl Presence {
    fn online(&self, seat: &str) -> bool {
        self.contacts.contains_key(seat) || self.console_audio.contains(seat)
    }
}

impl Router {
    /// The seat's registered contacts after a REGISTER (or a restart), each with the time
    /// it has left (ms): they replace what the seat had. Online with one at least.
    pub(super) fn registered(&mut self, now: Now, seat: &str, contacts: Vec<(String, u64)>) {
        let contacts: BTreeMap<String, Mono> = (contacts.into_iter())
            .filter(|(_, left)| *left > 0)
            .map(|(contact, left)| (contact, now.mono.saturating_add(left)))
            .collect();
        match contacts.is_empty() {
            true => self.presence.contacts.remove(seat),
            false => self.presence.contacts.insert(seat.into(), contacts),
        };
        self.arm_expiry(seat);
        let input = match self.presence.online(seat) {
            // Every REGISTER brings the seat back, as a phone found dead is taken offline.
            true => CallInput::SeatOnline { seat: seat.into() },
            false => CallInput::SeatOffline { seat: seat.into() },
        };
        self.board.handle(now, input);
    }

    /// The seat's earliest registration is due: the contacts expired go (the driver
    /// removes their bindings), and with none left (and no console audio) the seat is
    /// offline; calls offered to it are offered elsewhere.
    pub(super) fn registration_expired(&mut self, now: Now, seat: &str) {
        let Some(contacts) = self.presence.contacts.get_mut(seat) else {
            return;
        };
        let expired: Vec<String> = (contacts.iter())
            .filter(|(_, at)| **at <= now.mono)
            .map(|(c, _)| c.clone())
            .collect();
        for contact in expired {
            contacts.remove(&contact);
            tracing::info!(%seat, "registration expired");
            let seat = seat.into();
            self.outputs
                .push_back(RouterOutput::BindingExpired { seat, contact });
        }
        if contacts.is_empty() {
            self.presence.contacts.remove(seat);
            if !self.presence.online(seat) {
                let offline = CallInput::SeatOffline { seat: seat.into() };
                self.board.handle(now, offline);
            }
        }
        self.arm_expiry(seat);
    }

    fn arm_expiry(&mut self, seat: &str) {
        let first = self
            .presence
            .contacts
            .get(seat)
            .and_then(|c| c.values().min());
        match first {
            Some(at) => self.timers.arm(seat, TimerName::RegistrationExpiry, *at),
            None => self.timers.cancel(seat, TimerName::RegistrationExpiry),
        }
    }

    /// The seat's console takes (or stops taking) its calls with audio: it keeps the seat
    /// online as a registration would. False when nothing changed.
    pub fn console_audio(&mut self, now: Now, seat: &str, enabled: bool) -> bool {
        self.last = now;
        let changed = match enabled {
            true => self.presence.console_audio.insert(seat.into()),
            false => self.presence.console_audio.remove(seat),
        };
        if changed {
            let input = match self.presence.online(seat) {
                true => CallInput::SeatOnline { seat: seat.into() },
                false => CallInput::SeatOffline { seat: seat.into() },
            };
            self.board.handle(now, input);
            self.settle(now);
        }
        changed
    }

    /// The seat's calls ring its console (audio in the browser), not its phone.
    pub fn rings_console(&self, seat: &str) -> bool {
        self.presence.console_audio.contains(seat)
    }

    /// The seat's registered contacts, with their expiry.
    pub fn registrations(&self, seat: &str) -> Vec<(&str, Mono)> {
        (self.presence.contacts.get(seat).into_iter().flatten())
            .map(|(c, at)| (c.as_str(), *at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::outputs;
    use super::*;
    use crate::acd::SeatState;
    use crate::call::CallOutput;
    use crate::call::router::RouterInput;
    use crate::call::tests_support::{T0, arrive, board};

    fn register(r: &mut Router, now: Now, seat: &str, contacts: &[(&str, u64)]) {
        let contacts = contacts.iter().map(|(c, l)| (c.to_string(), *l)).collect();
        let seat = seat.into();
        r.handle(now, RouterInput::Registration { seat, contacts });
    }

    fn offline(r: &Router, seat: &str) -> bool {
        r.board().acd().seat(seat).unwrap().state == SeatState::Offline
    }

    #[test]
    fn a_phone_that_stops_refreshing_goes_offline_at_its_expiry_and_its_call_goes_on() {
        let mut b = board(&["arm1", "arm2"]);
        arrive(&mut b, T0, "c1", "samu", 0);
        let mut r = Router::new(b, Now::at(T0));
        let t = Now::at(T0);
        register(&mut r, t, "arm1", &[("sip:arm1@10.0.0.1", 60_000)]);
        let rang = outputs(&mut r);
        assert!(rang.contains(&RouterOutput::Call(CallOutput::RingSeat {
            call: "c1".into(),
            seat: "arm1".into()
        })));
        register(
            &mut r,
            t.plus(1_000),
            "arm2",
            &[("sip:arm2@10.0.0.2", 3_600_000)],
        );
        // Refreshed at 30 s for 60 s more, then silent: gone at 90 s, not before.
        register(
            &mut r,
            t.plus(30_000),
            "arm1",
            &[("sip:arm1@10.0.0.1", 60_000)],
        );
        assert_eq!(
            r.poll_timeout(),
            Some(Mono::from_millis(T0 + 15_000)),
            "ring timeout first"
        );
        r.handle_timeout(t.plus(89_999));
        outputs(&mut r);
        assert!(!offline(&r, "arm1"));
        r.handle_timeout(t.plus(90_000));
        let outs = outputs(&mut r);
        assert!(
            outs.contains(&RouterOutput::BindingExpired {
                seat: "arm1".into(),
                contact: "sip:arm1@10.0.0.1".into()
            }),
            "{outs:?}"
        );
        assert!(offline(&r, "arm1"));
        assert!(r.registrations("arm1").is_empty());
        assert_eq!(r.orphan_timers(), 0, "a seat's timer is no call's");
    }

    #[test]
    fn a_second_contact_or_the_console_keeps_the_seat_online() {
        let mut r = Router::new(board(&["arm1"]), Now::at(T0));
        let t = Now::at(T0);
        let two = [("sip:a@10.0.0.1", 10_000), ("sip:b@10.0.0.2", 20_000)];
        register(&mut r, t, "arm1", &two);
        r.handle_timeout(t.plus(10_000));
        assert!(!offline(&r, "arm1"), "one contact left");
        assert!(r.console_audio(t.plus(11_000), "arm1", true));
        r.handle_timeout(t.plus(20_000));
        assert!(!offline(&r, "arm1"), "its console takes the calls");
        assert!(r.console_audio(t.plus(21_000), "arm1", false));
        assert!(offline(&r, "arm1"));
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_wall_clock_step_neither_hastens_nor_delays_an_expiry() {
        let mut r = Router::new(board(&["arm1"]), Now::at(T0));
        register(&mut r, Now::at(T0), "arm1", &[("sip:a@10.0.0.1", 60_000)]);
        let at = |mono: u64, wall: u64| Now {
            mono: Mono::from_millis(T0 + mono),
            wall,
        };
        // An hour ahead on the wall, 59 s on the monotonic clock: still registered.
        r.handle_timeout(at(59_000, T0 + 3_600_000));
        assert!(!offline(&r, "arm1"));
        // An hour back on the wall, 60 s on the monotonic clock: expired.
        r.handle_timeout(at(60_000, T0 - 3_600_000));
        assert!(offline(&r, "arm1"));
    }

    #[test]
    fn unregistering_takes_the_seat_offline_and_disarms_its_expiry() {
        let mut r = Router::new(board(&["arm1"]), Now::at(T0));
        let t = Now::at(T0);
        register(&mut r, t, "arm1", &[("sip:a@10.0.0.1", 10_000)]);
        register(&mut r, t.plus(1_000), "arm1", &[]);
        assert!(offline(&r, "arm1"));
        assert_eq!(r.poll_timeout(), None);
    }
}
