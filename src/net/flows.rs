//! Dial plans on live calls: the call driver follows each call's [`Flow`] (the sans-IO
//! interpreter of `routing`) and carries out its instructions: answer and play a prompt,
//! wait for a key, queue with hold audio and an overflow timer, hang up after a message.
//! Keys (RFC 4733, in-band, SIP INFO), prompt ends and timers come back here.

use std::sync::Arc;
use std::time::Duration;

use super::calls::{CallDriver, CallEvent, Legs, SeatDial};
use super::reload::Routing;
use crate::acd::CallRequest;
use crate::call::CallInput;
use crate::media::playback::Announcement;
use crate::media::relay::MediaNotice;
use crate::routing::flow::{Flow, Instruction};
use crate::routing::plan::InternalNumber;
use crate::store::record::CallRecord;
use crate::time::SECOND;
use std::collections::HashMap;

/// A dial plan timer of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    kind: TimerKind,
    /// Which arming: a timer armed before the call moved on is stale.
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    /// A menu's wait for a key, after its prompt.
    Key,
    /// A queue's `max_wait_s`.
    Queue,
}

/// What the call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// Nothing from the plan (queued, bridged, or done).
    Nothing,
    /// The end of the prompt of play number `play`; then a key for `wait_key_s` (a menu),
    /// or hang up (`hang_up`), or the next step.
    Prompt {
        play: u64,
        wait_key_s: Option<u32>,
        hang_up: bool,
    },
}

/// Where one call is in its dial plan.
pub(super) struct Route {
    routing: Routing,
    entry: String,
    /// The seat that dialled the call, if it came from a seat's phone.
    pub(super) dialled_by: Option<SeatDial>,
    flow: Option<Flow>,
    plays: u64,
    timers: u64,
    awaiting: Awaiting,
    /// The queue the call was last put in (a forward that cannot be made falls back here).
    last_queue: Option<Instruction>,
    /// Full queues met in a row (overflow to a queue that is full too…): bounded, so
    /// queues overflowing into each other cannot spin.
    full_in_a_row: u32,
}

/// Full queues a call may meet in a row before it is refused busy.
const MAX_FULL_IN_A_ROW: u32 = 8;

impl Route {
    pub(super) fn new(routing: Routing, entry: &str, dialled_by: Option<SeatDial>) -> Route {
        Route {
            routing,
            entry: entry.into(),
            dialled_by,
            flow: None,
            plays: 0,
            timers: 0,
            awaiting: Awaiting::Nothing,
            last_queue: None,
            full_in_a_row: 0,
        }
    }

    /// A seat answered: pending prompts and timers no longer matter.
    pub(super) fn settled(&mut self) {
        self.awaiting = Awaiting::Nothing;
        self.timers += 1;
    }

    /// Numbers the next announcement (a prompt end reports its number).
    pub(super) fn next_play(&mut self) -> u64 {
        self.plays += 1;
        self.plays
    }

    /// The dial plan decisions so far.
    pub(super) fn trace(&self) -> Vec<String> {
        self.flow
            .as_ref()
            .map(|f| f.trace().to_vec())
            .unwrap_or_default()
    }

    /// The plan's part of the call record.
    pub(super) fn describe(&self, record: &mut CallRecord) {
        record.plan_version = Some(self.routing.plans.version.clone());
        if let Some(flow) = &self.flow {
            record.route = flow.trace().to_vec();
            record.tags = flow.tags().clone();
        }
    }
}

impl CallDriver {
    /// A call was admitted: its flow starts.
    pub(super) fn start_route(&mut self, call: &str, legs: &mut HashMap<String, Legs>) {
        let Some(l) = legs.get_mut(call) else { return };
        let plans = Arc::clone(&l.route.routing.plans);
        let now = self.clock.now();
        let (entry, calendar) = (&l.route.entry, plans.as_ref());
        let started = match &l.route.dialled_by {
            Some(d) => Flow::dialled(
                Arc::clone(&plans),
                entry,
                &d.step,
                &d.seat,
                now.wall,
                calendar,
            ),
            None => Flow::start(Arc::clone(&plans), entry, now.wall, calendar),
        };
        match started {
            Some((flow, first)) => {
                l.route.flow = Some(flow);
                self.follow(call, first, legs);
            }
            None => {
                let reason = format!("dial_plan_entry_missing: {}", l.route.entry);
                self.switchboard.handle(
                    now,
                    CallInput::Failed {
                        call: call.into(),
                        reason,
                    },
                );
            }
        }
    }

    /// A key or the end of a prompt, from the call's media (or a SIP INFO).
    pub(super) fn on_media(
        &mut self,
        call: &str,
        notice: MediaNotice,
        legs: &mut HashMap<String, Legs>,
    ) {
        let now = self.clock.now();
        let next = match notice {
            MediaNotice::Digit(digit) => {
                self.switchboard.handle(
                    now,
                    CallInput::Digit {
                        call: call.into(),
                        digit,
                    },
                );
                let Some(l) = legs.get_mut(call) else { return };
                let plans = Arc::clone(&l.route.routing.plans);
                let Some(flow) = l.route.flow.as_mut() else {
                    return;
                };
                flow.on_digit(digit.digit, now.wall, plans.as_ref())
            }
            MediaNotice::PromptEnded { play } => {
                let Some(l) = legs.get_mut(call) else { return };
                let Awaiting::Prompt {
                    play: current,
                    wait_key_s,
                    hang_up,
                } = l.route.awaiting
                else {
                    return;
                };
                if play != current {
                    return; // a prompt the call has moved past (a key cut it short)
                }
                l.route.awaiting = Awaiting::Nothing;
                if hang_up {
                    let reason = "dial_plan_hangup".to_string();
                    self.switchboard.handle(
                        now,
                        CallInput::Released {
                            call: call.into(),
                            reason,
                        },
                    );
                    return;
                }
                if let Some(wait) = wait_key_s {
                    self.arm(call, TimerKind::Key, wait, l);
                    return;
                }
                let plans = Arc::clone(&l.route.routing.plans);
                let Some(flow) = l.route.flow.as_mut() else {
                    return;
                };
                flow.on_prompt_ended(now.wall, plans.as_ref())
            }
        };
        if let Some(next) = next {
            self.follow(call, next, legs);
        }
    }

    /// A dial plan timer fired.
    pub(super) fn on_timer(&mut self, call: &str, timer: Timer, legs: &mut HashMap<String, Legs>) {
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call) else { return };
        if timer.seq != l.route.timers {
            return; // the call moved on since it was armed
        }
        let plans = Arc::clone(&l.route.routing.plans);
        let Some(flow) = l.route.flow.as_mut() else {
            return;
        };
        let next = match timer.kind {
            TimerKind::Key => flow.on_key_timeout(now.wall, plans.as_ref()),
            TimerKind::Queue => {
                self.overflow_now(call, false, legs);
                return;
            }
        };
        if let Some(next) = next {
            self.follow(call, next, legs);
        }
    }

    /// The call's queue overflows now: its `max_wait_s` ran out, or (`no_seat`) no seat of
    /// it can answer a P0 caller left alone. False when its step has no overflow.
    pub(super) fn overflow_now(
        &mut self,
        call: &str,
        no_seat: bool,
        legs: &mut HashMap<String, Legs>,
    ) -> bool {
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call) else {
            return false;
        };
        let plans = Arc::clone(&l.route.routing.plans);
        let flow = l.route.flow.as_mut();
        let next = if no_seat {
            flow.and_then(|f| f.on_no_seat(now.wall, plans.as_ref()))
        } else {
            flow.and_then(|f| f.on_queue_timeout(now.wall, plans.as_ref()))
        };
        let Some(next) = next else {
            return false;
        };
        self.switchboard
            .handle(now, CallInput::Overflow { call: call.into() });
        self.follow(call, next, legs);
        true
    }

    /// Carries out one instruction of the call's flow.
    fn follow(&mut self, call: &str, instruction: Instruction, legs: &mut HashMap<String, Legs>) {
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call) else { return };
        // Whatever was armed belongs to the step the call is leaving.
        l.route.timers += 1;
        l.route.awaiting = Awaiting::Nothing;
        match instruction {
            Instruction::Play { prompt, wait_key_s } => {
                self.play(call, Some(&prompt), wait_key_s, false, legs);
            }
            Instruction::HangUp { prompt } => {
                if prompt.is_some() {
                    self.play(call, prompt.as_deref(), None, true, legs);
                } else {
                    let reason = "dial_plan_hangup".to_string();
                    self.switchboard.handle(
                        now,
                        CallInput::Released {
                            call: call.into(),
                            reason,
                        },
                    );
                }
            }
            Instruction::Queue {
                ref queue,
                priority,
                max_wait_s,
                ref greeting,
                ref hold,
                ref reassurance,
                reassurance_every_s,
            } => {
                let role = l
                    .route
                    .routing
                    .plans
                    .queues
                    .get(queue)
                    .map_or_else(|| queue.clone(), |q| q.role.clone());
                l.route.last_queue = Some(instruction.clone());
                // Queued first, so that a full queue sends the caller on before any answer
                // or hold audio: unanswered, it can still be refused busy.
                let request = CallRequest::new(&role, priority);
                if !self.switchboard.enqueue(now, call, queue, &request) {
                    return self.queue_full(call, legs);
                }
                l.route.full_in_a_row = 0;
                let prompts = Arc::clone(&l.route.routing.prompts);
                let find =
                    |name: &Option<String>| name.as_deref().and_then(|n| prompts.get(n).cloned());
                let announcement = Announcement {
                    greeting: find(greeting),
                    hold: find(hold),
                    reassurance: find(reassurance),
                    reassurance_every_ms: u64::from(reassurance_every_s) * SECOND,
                };
                // Hold audio needs an answered call; without it the caller hears ringback.
                // During an accompanied transfer the caller hears the seat instead.
                if !self.switchboard.accompanying(call)
                    && (announcement.greeting.is_some()
                        || announcement.hold.is_some()
                        || announcement.reassurance.is_some())
                {
                    match self.answer_caller(call, l) {
                        Ok(()) => {
                            self.switchboard
                                .handle(now, CallInput::CallerAnswered { call: call.into() });
                            l.route.plays += 1;
                            l.relay.play(announcement, l.route.plays);
                        }
                        Err(reason) => {
                            self.switchboard.handle(
                                now,
                                CallInput::Failed {
                                    call: call.into(),
                                    reason,
                                },
                            );
                            return;
                        }
                    }
                }
                if let Some(wait) = max_wait_s {
                    self.arm(call, TimerKind::Queue, wait, l);
                }
            }
            Instruction::Forward { number } => {
                let input = CallInput::Forward {
                    call: call.into(),
                    number,
                };
                self.switchboard.handle(now, input);
            }
        }
    }

    /// The call's queue is full: the step's overflow at once, or, with none (or after too
    /// many full queues in a row), the caller is refused busy (`queue_full`). Never left
    /// on hold audio in no queue.
    fn queue_full(&mut self, call: &str, legs: &mut HashMap<String, Legs>) {
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call) else { return };
        l.route.full_in_a_row += 1;
        let plans = Arc::clone(&l.route.routing.plans);
        let next = match l.route.flow.as_mut() {
            Some(flow) if l.route.full_in_a_row <= MAX_FULL_IN_A_ROW => {
                flow.on_queue_full(now.wall, plans.as_ref())
            }
            _ => None,
        };
        match next {
            Some(next) => {
                let overflow = CallInput::Overflow { call: call.into() };
                self.switchboard.handle(now, overflow);
                self.follow(call, next, legs);
            }
            None => {
                tracing::warn!(%call, "queue full and nowhere to overflow: refused busy");
                let input = CallInput::QueueFull { call: call.into() };
                self.switchboard.handle(now, input);
            }
        }
    }

    /// A forward could not be made (no outbound trunk, refused, unreachable), or the seat
    /// talking with the caller was lost: the call must not be lost, so it waits again in
    /// its last queue (or fails loudly, `why`, if it had none).
    pub(super) fn wait_again(&mut self, call: &str, why: &str, legs: &mut HashMap<String, Legs>) {
        let Some(l) = legs.get_mut(call) else { return };
        match l.route.last_queue.clone() {
            Some(Instruction::Queue {
                queue,
                priority,
                hold,
                reassurance,
                reassurance_every_s,
                ..
            }) => {
                let again = Instruction::Queue {
                    queue,
                    priority,
                    max_wait_s: None,
                    greeting: None,
                    hold,
                    reassurance,
                    reassurance_every_s,
                };
                self.follow(call, again, legs);
            }
            _ => self.switchboard.handle(
                self.clock.now(),
                CallInput::Failed {
                    call: call.into(),
                    reason: why.into(),
                },
            ),
        }
    }

    /// Answers the caller if needed and plays `prompt` once; its end comes back as
    /// [`MediaNotice::PromptEnded`]. A prompt that cannot be played (bad file) ends at once.
    fn play(
        &mut self,
        call: &str,
        prompt: Option<&str>,
        wait_key_s: Option<u32>,
        hang_up: bool,
        legs: &mut HashMap<String, Legs>,
    ) {
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call) else { return };
        l.route.plays += 1;
        let play = l.route.plays;
        l.route.awaiting = Awaiting::Prompt {
            play,
            wait_key_s,
            hang_up,
        };
        if self.switchboard.accompanying(call) {
            // The seat is talking with the caller: the plan goes on without the prompt.
            self.prompt_skipped(call, play);
            return;
        }
        if let Err(reason) = self.answer_caller(call, l) {
            self.switchboard.handle(
                now,
                CallInput::Failed {
                    call: call.into(),
                    reason,
                },
            );
            return;
        }
        self.switchboard
            .handle(now, CallInput::CallerAnswered { call: call.into() });
        let greeting = prompt.and_then(|p| l.route.routing.prompts.get(p).cloned());
        let missing = greeting.is_none();
        l.relay.play(
            Announcement {
                greeting,
                ..Announcement::default()
            },
            play,
        );
        if missing {
            self.prompt_skipped(call, play);
        }
    }

    /// A prompt that is not played ends at once (through the event queue, like a real end).
    fn prompt_skipped(&self, call: &str, play: u64) {
        self.events
            .send(CallEvent::Media {
                call: call.into(),
                notice: MediaNotice::PromptEnded { play },
            })
            .ok();
    }

    /// The caller waits again in its queue (the seat left an accompanied transfer before
    /// the target answered): the queue's hold audio and reassurance, no greeting.
    pub(super) fn hold_again(&mut self, call: &str, legs: &mut HashMap<String, Legs>) {
        let Some(l) = legs.get_mut(call) else { return };
        let Some(Instruction::Queue {
            hold,
            reassurance,
            reassurance_every_s,
            ..
        }) = l.route.last_queue.clone()
        else {
            return;
        };
        let prompts = Arc::clone(&l.route.routing.prompts);
        let find = |name: &Option<String>| name.as_deref().and_then(|n| prompts.get(n).cloned());
        l.route.plays += 1;
        l.relay.play(
            Announcement {
                greeting: None,
                hold: find(&hold),
                reassurance: find(&reassurance),
                reassurance_every_ms: u64::from(reassurance_every_s) * SECOND,
            },
            l.route.plays,
        );
    }

    /// A seat transferred the call: its dial plan goes on at the target's step (which
    /// queues or forwards it).
    pub(super) fn route_transfer(
        &mut self,
        call: &str,
        target: &InternalNumber,
        by: &str,
        legs: &mut HashMap<String, Legs>,
    ) {
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call) else { return };
        let plans = Arc::clone(&l.route.routing.plans);
        let Some(flow) = l.route.flow.as_mut() else {
            return;
        };
        let next = flow.transfer(&target.entry, &target.step, by, now.wall, plans.as_ref());
        self.follow(call, next, legs);
    }

    /// What a transfer to `target` means in this call's dial plans: an internal name
    /// (`amu`, `3114`) or number (`2001`).
    pub(super) fn transfer_target(
        &self,
        call: &str,
        target: &str,
        legs: &HashMap<String, Legs>,
    ) -> Option<InternalNumber> {
        let plans = &legs.get(call)?.route.routing.plans;
        plans
            .internal
            .get(target)
            .or_else(|| plans.internal.values().find(|i| i.number == target))
            .cloned()
    }

    /// Arms a timer of `kind` for `seconds`, superseding any other of the call.
    fn arm(&self, call: &str, kind: TimerKind, seconds: u32, l: &mut Legs) {
        l.route.timers += 1;
        let timer = Timer {
            kind,
            seq: l.route.timers,
        };
        let (events, call) = (self.events.clone(), call.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
            events.send(CallEvent::Timer { call, timer }).ok();
        });
    }
}
