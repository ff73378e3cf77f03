//! What the switchboard's inputs do to a call once dispatched: the caller gone, a party
//! connected, an offer withdrawn, a seat released, the ACD drained, the call failed or
//! finished, and its timeline's events.

use super::*;

impl Switchboard {
    pub(super) fn caller_gone(&mut self, now: Now, call: &str) {
        let Some((phase, arrived)) = self.calls.get(call).map(|c| (c.phase.clone(), c.arrived))
        else {
            return;
        };
        self.release_parties(now, call);
        match phase {
            Phase::Waiting | Phase::Forwarding => {
                let waited = now.mono.saturating_sub(arrived);
                // A caller a seat already talked with (waiting after a transfer) did not
                // misdial, however short the call.
                let handled = self
                    .calls
                    .get(call)
                    .is_some_and(|c| c.record.answered_at.is_some());
                // A caller a seat answered was answered, whatever became of the call
                // after (requeued after a lost seat, waiting for a regulator).
                let outcome = if handled {
                    Outcome::Answered
                } else if waited < self.settings.misdial_threshold_ms {
                    Outcome::Misdial
                } else {
                    Outcome::Abandoned
                };
                self.event(
                    now,
                    call,
                    EventKind::Abandon,
                    None,
                    Some(format!("waited {waited} ms")),
                );
                // Answered by the router (a prompt, hold audio): the caller sent BYE.
                let how = match self
                    .calls
                    .get(call)
                    .and_then(|c| c.record.caller_answered_at)
                {
                    Some(_) => EndReason::CallerBye,
                    None => EndReason::CallerCancel,
                };
                self.finish(now, call, outcome, how);
            }
            Phase::Bridged { .. } | Phase::Accompanying { .. } | Phase::Conference { .. } => {
                let outcome = match phase.seats().last() {
                    Some(Party::External) => Outcome::Forwarded,
                    _ => Outcome::Answered,
                };
                self.finish(now, call, outcome, EndReason::CallerBye);
            }
        }
    }

    /// The external number answered a forwarded call: bridge it like a seat.
    pub(super) fn external_answered(&mut self, now: Now, call: &str) {
        let Some(c) = self
            .calls
            .get_mut(call)
            .filter(|c| matches!(c.phase, Phase::Forwarding | Phase::Accompanying { .. }))
        else {
            // Too late (the caller left): hang the external party up.
            self.outputs.push_back(CallOutput::HangUpSeat {
                call: call.into(),
                seat: Party::External,
            });
            return;
        };
        c.dialling = false;
        c.record.answered_at.get_or_insert(now.wall);
        c.answered.get_or_insert(now.mono);
        c.record
            .wait_ms
            .get_or_insert(now.mono.saturating_sub(c.arrived));
        self.connected(now, call, Party::External);
    }

    /// A seat (or the external party) answered a call that sought one: bridge it, or make
    /// it the third party of an accompanied transfer.
    pub(super) fn connected(&mut self, now: Now, call: &str, party: Party) {
        let role = match &party {
            Party::External => Party::EXTERNAL_NAME.to_string(),
            Party::Seat(seat) => self
                .acd
                .seat(seat)
                .map(|s| s.role.clone())
                .unwrap_or_default(),
        };
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.record
            .event(now.wall, EventKind::Connect, Some(party.name()), None);
        c.record.handlers.push(Handler {
            seat: party.name().to_string(),
            role,
            from: now.wall,
            until: None,
            left: None,
        });
        c.dialling = false;
        let out = match std::mem::replace(&mut c.phase, Phase::Waiting) {
            Phase::Accompanying { seat: with } => {
                c.phase = Phase::Conference {
                    seat: with,
                    joined: party,
                };
                CallOutput::Conference { call: call.into() }
            }
            _ => {
                c.phase = Phase::Bridged {
                    seat: party.clone(),
                };
                c.held = false;
                CallOutput::Bridge {
                    call: call.into(),
                    seat: party,
                }
            }
        };
        self.outputs.push_back(out);
    }

    /// Ends the caller's leg: BYE once answered (by a seat or the router), else a final
    /// response to its INVITE.
    pub(super) fn release_caller(&mut self, call: &str, status: u16) {
        let answered = self.calls.get(call).is_some_and(|c| {
            c.record.caller_answered_at.is_some() || c.record.answered_at.is_some()
        });
        let out = if answered {
            CallOutput::HangUpCaller { call: call.into() }
        } else {
            CallOutput::RejectCaller {
                call: call.into(),
                status,
            }
        };
        self.outputs.push_back(out);
    }

    pub(super) fn seat_answered(&mut self, now: Now, call: &str, seat: &str) {
        let live = matches!(self.calls.get(call), Some(c) if c.phase.seeks_seat());
        if !live || !self.acd.answered(now.mono, seat, call) {
            // A late 200 (the offer was withdrawn or the caller left): hang it up.
            self.outputs.push_back(CallOutput::HangUpSeat {
                call: call.into(),
                seat: seat.into(),
            });
            return;
        }
        self.close_offer(now, call, seat, OfferResult::Answered, None);
        if let Some(c) = self.calls.get_mut(call) {
            // The first answer ends the wait; later ones (transfers) are in `handlers`.
            c.record.answered_at.get_or_insert(now.wall);
            c.answered.get_or_insert(now.mono);
            c.record.seat.get_or_insert_with(|| seat.into());
            c.record
                .wait_ms
                .get_or_insert(now.mono.saturating_sub(c.arrived));
        }
        self.connected(now, call, seat.into());
    }

    pub(super) fn fail(&mut self, now: Now, call: &str, reason: &str) {
        if !self.calls.contains_key(call) {
            return;
        }
        self.release_parties(now, call);
        self.release_caller(call, 500);
        self.event(now, call, EventKind::Failed, None, Some(reason.into()));
        self.finish(now, call, Outcome::Failed, reason.into());
    }

    /// Lets go of every party on the call but its caller, as it ends: the number dialled
    /// for it (a forward, maybe accompanied), its offers, its seats.
    pub(super) fn release_parties(&mut self, now: Now, call: &str) {
        let Some((seats, dialling)) = self.calls.get(call).map(|c| (c.phase.seats(), c.dialling))
        else {
            return;
        };
        if dialling {
            self.outputs.push_back(CallOutput::CancelSeat {
                call: call.into(),
                seat: Party::External,
            });
        }
        self.withdraw_offer(now, call);
        for seat in seats {
            self.release_seat(now, call, seat);
        }
    }

    /// Withdraws the offer ringing for a waiting call, if any.
    /// Takes the call out of its queue, cancelling its offers: whether any was ringing.
    pub(super) fn withdraw_offer(&mut self, now: Now, call: &str) -> bool {
        let seats = self.acd.withdraw(now.mono, call);
        let rang = !seats.is_empty();
        for seat in seats {
            self.close_offer(now, call, &seat, OfferResult::Withdrawn, None);
            self.outputs.push_back(CallOutput::CancelSeat {
                call: call.into(),
                seat: seat.into(),
            });
        }
        rang
    }

    /// Hangs up the seat of a bridged call and starts its wrap-up.
    pub(super) fn release_seat(&mut self, now: Now, call: &str, seat: Party) {
        if let Party::Seat(seat) = &seat {
            self.acd.call_ended(now.mono, seat);
        }
        self.outputs.push_back(CallOutput::HangUpSeat {
            call: call.into(),
            seat,
        });
    }

    /// Belt and braces as `call` ends: a seat still offered it or busy with it would never
    /// be offered another call (seen under overload: all seats busy for minutes). Every
    /// ending path releases its seats first; one that did not is logged and its seats are
    /// freed here. Only the call's own seats are looked at (its handlers and offers).
    pub(super) fn free_seats_left(&mut self, now: Now, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let busy_with_it = |acd: &Acd, seat: &str| {
            matches!(acd.seat(seat).map(|s| &s.state),
                Some(SeatState::Busy { call: on }) if on.as_str() == call)
        };
        let left: Vec<String> = (c.record.handlers.iter())
            .map(|h| h.seat.clone())
            .filter(|seat| busy_with_it(&self.acd, seat))
            .collect();
        if self.withdraw_offer(now, call) || !left.is_empty() {
            tracing::error!(%call, seats = ?left, "call ended with seats still held: freed");
        }
        for seat in left {
            self.release_seat(now, call, Party::Seat(seat.into()));
        }
    }

    pub(super) fn drain_acd(&mut self, now: Now) {
        while let Some(out) = self.acd.poll_output() {
            match out {
                AcdOutput::Offer { call, seat } => {
                    if let Some(c) = self.calls.get_mut(call.as_str()) {
                        c.record.offers.push(OfferRecord {
                            seat: seat.to_string(),
                            at: now.wall,
                            ended_at: None,
                            result: OfferResult::Ringing,
                            status: None,
                        });
                        c.record
                            .event(now.wall, EventKind::Offer, Some(&seat), None);
                    }
                    self.outputs.push_back(CallOutput::RingSeat { call, seat });
                }
                AcdOutput::OfferTimedOut { call, seat } => {
                    self.close_offer(now, &call, &seat, OfferResult::NoAnswer, None);
                    self.event(now, &call, EventKind::RingNoAnswer, Some(&seat), None);
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call,
                        seat: seat.into(),
                    });
                }
                AcdOutput::Cancel { call, seat } => {
                    // Another seat answered first (ring-all).
                    self.close_offer(now, &call, &seat, OfferResult::Withdrawn, None);
                    self.outputs.push_back(CallOutput::CancelSeat {
                        call,
                        seat: seat.into(),
                    });
                }
                AcdOutput::SeatChanged { seat, from, to } => {
                    self.outputs
                        .push_back(CallOutput::SeatChanged { seat, from, to });
                }
                AcdOutput::Autopaused {
                    seat,
                    reason,
                    until,
                } => {
                    self.outputs.push_back(CallOutput::SeatAutopaused {
                        seat,
                        reason,
                        until: until.map(|t| now.wall_at(t)),
                    });
                }
                AcdOutput::MissBurst { seats } => {
                    self.outputs.push_back(CallOutput::MissBurst { seats });
                }
            }
        }
    }

    /// Marks the seat's open offer for the call as ended. False when there was none.
    pub(super) fn close_offer(
        &mut self,
        now: Now,
        call: &str,
        seat: &str,
        result: OfferResult,
        status: Option<u16>,
    ) -> bool {
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let open = c
            .record
            .offers
            .iter_mut()
            .rev()
            .find(|o| o.seat == seat && o.result == OfferResult::Ringing);
        match open {
            Some(offer) => {
                offer.result = result;
                offer.ended_at = Some(now.wall);
                offer.status = status;
                true
            }
            None => false,
        }
    }

    pub(super) fn event(
        &mut self,
        now: Now,
        call: &str,
        kind: EventKind,
        seat: Option<&str>,
        detail: Option<String>,
    ) {
        if let Some(c) = self.calls.get_mut(call) {
            c.record.event(now.wall, kind, seat, detail);
        }
    }

    pub(super) fn finish(&mut self, now: Now, call: &str, outcome: Outcome, reason: EndReason) {
        self.free_seats_left(now, call);
        let Some(mut c) = self.calls.remove(call) else {
            return;
        };
        let r = &mut c.record;
        r.urgency = (c.urgency != Urgency::Nr).then_some(c.urgency);
        r.ended_at = Some(now.wall);
        r.outcome = Some(outcome);
        match c.answered {
            Some(answered) => r.talk_ms = Some(now.mono.saturating_sub(answered)),
            None => r.wait_ms = Some(now.mono.saturating_sub(c.arrived)),
        }
        for h in r.handlers.iter_mut().filter(|h| h.until.is_none()) {
            h.until = Some(now.wall);
            h.left = Some(reason.to_string());
        }
        let last = r.handlers.last().map(|h| h.seat.clone());
        r.event(
            now.wall,
            EventKind::End,
            last.as_deref(),
            Some(reason.to_string()),
        );
        r.end_reason = Some(reason);
        self.outputs
            .push_back(CallOutput::Finished(Box::new(c.record)));
    }
}
