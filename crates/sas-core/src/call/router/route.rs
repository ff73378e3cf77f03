//! One call's way through its dial plan: the [`Flow`] (the sans-IO interpreter of
//! `routing`) and what the Router does with its instructions: play a prompt, wait for a
//! key, queue with hold audio and an overflow timer, forward, hang up after a message.

use super::liveness::Watches;
use super::{Dialled, Router, RouterOutput, TimerName};
use crate::acd::CallRequest;
use crate::call::CallInput;
use crate::record::CallRecord;
use crate::routing::flow::{Flow, Instruction};
use crate::routing::plan::{Entry, InternalNumber, PlanSet};
use crate::time::{Now, SECOND};
use std::sync::Arc;

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
#[derive(Debug)]
pub(super) struct Route {
    pub(super) plans: Arc<PlanSet>,
    pub(super) dialled: Option<Dialled>,
    pub(super) flow: Option<Flow>,
    /// Whether the caller and the seats are still there.
    pub(super) watches: Watches,
    plays: u64,
    awaiting: Awaiting,
    /// The queue the call was last put in (a forward that cannot be made falls back here).
    pub(super) last_queue: Option<Instruction>,
    /// Full queues met in a row (overflow to a queue that is full too…): bounded, so
    /// queues overflowing into each other cannot spin.
    full_in_a_row: u32,
    /// Sent to its entry's backup step already (never twice: a failed backup forward
    /// waits in the line's queue).
    pub(super) backed_up: bool,
}

/// Full queues a call may meet in a row before it is refused busy.
const MAX_FULL_IN_A_ROW: u32 = 8;

impl Route {
    pub(super) fn new(plans: Arc<PlanSet>, dialled: Option<Dialled>, watches: Watches) -> Route {
        Route {
            plans,
            dialled,
            flow: None,
            watches,
            plays: 0,
            awaiting: Awaiting::Nothing,
            last_queue: None,
            full_in_a_row: 0,
            backed_up: false,
        }
    }

    /// A seat answered: pending prompts no longer matter.
    pub(super) fn settled(&mut self) {
        self.awaiting = Awaiting::Nothing;
    }

    /// The call waits for a prompt's end (the plan goes on after it).
    pub(super) fn awaits_prompt(&self) -> bool {
        matches!(self.awaiting, Awaiting::Prompt { .. })
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
        record.plan_version = Some(self.plans.version.clone());
        if let Some(flow) = &self.flow {
            record.route = flow.trace().to_vec();
            record.tags = flow.tags().clone();
        }
    }

    /// The entry the call is in now.
    pub(super) fn entry(&self) -> Option<&Entry> {
        self.plans.entries.get(self.flow.as_ref()?.entry())
    }

    /// The line of the entry the call is in now.
    pub(super) fn line(&self) -> Option<String> {
        self.entry().map(|e| e.line.clone())
    }

    /// Asks the flow something, with its plans as the calendar.
    pub(super) fn with_flow<T>(&mut self, ask: impl FnOnce(&mut Flow, &PlanSet) -> T) -> Option<T> {
        let plans = Arc::clone(&self.plans);
        self.flow.as_mut().map(|f| ask(f, plans.as_ref()))
    }
}

impl Router {
    /// The prompt of `play` ended: hang up, wait for a key, or go on.
    pub(super) fn prompt_ended(&mut self, now: Now, call: &str, play: u64) {
        let Some(r) = self.routes.get_mut(call) else {
            return;
        };
        let Awaiting::Prompt {
            play: current,
            wait_key_s,
            hang_up,
        } = r.awaiting
        else {
            return;
        };
        if play != current {
            return; // a prompt the call has moved past (a key cut it short)
        }
        r.awaiting = Awaiting::Nothing;
        if hang_up {
            self.release(now, call);
            return;
        }
        if let Some(wait) = wait_key_s {
            let at = now.mono.saturating_add(u64::from(wait) * SECOND);
            self.timers.arm(call, TimerName::KeyWait, at);
            return;
        }
        if let Some(next) = r.with_flow(|f, p| f.on_prompt_ended(now.wall, p)).flatten() {
            self.follow(now, call, next);
        }
    }

    /// The call's queue overflows now: its `max_wait_s` ran out, or (`no_seat`) no seat of
    /// it can answer a P0 caller left alone. False when its step has no overflow.
    pub(super) fn overflow_now(&mut self, now: Now, call: &str, no_seat: bool) -> bool {
        let next = self.routes.get_mut(call).and_then(|r| {
            r.with_flow(|f, p| match no_seat {
                true => f.on_no_seat(now.wall, p),
                false => f.on_queue_timeout(now.wall, p),
            })
            .flatten()
        });
        self.overflow_to(now, call, next)
    }

    /// The call leaves its queue for `next` (an overflow or the backup step). False when
    /// there is none.
    pub(super) fn overflow_to(&mut self, now: Now, call: &str, next: Option<Instruction>) -> bool {
        let Some(next) = next else {
            return false;
        };
        self.board
            .handle(now, CallInput::Overflow { call: call.into() });
        self.follow(now, call, next);
        true
    }

    /// A seat transferred the call: its dial plan goes on at the target's step.
    pub(super) fn transfer(&mut self, now: Now, call: &str, target: &InternalNumber, by: &str) {
        let next = self.routes.get_mut(call).and_then(|r| {
            r.with_flow(|f, p| f.transfer(&target.entry, &target.step, by, now.wall, p))
        });
        if let Some(next) = next {
            self.follow(now, call, next);
        }
    }

    /// Carries out one instruction of the call's flow.
    pub(super) fn follow(&mut self, now: Now, call: &str, instruction: Instruction) {
        let Some(r) = self.routes.get_mut(call) else {
            return;
        };
        // Whatever was armed belongs to the step the call is leaving.
        self.timers.cancel_all(call);
        r.awaiting = Awaiting::Nothing;
        match instruction {
            Instruction::Play { prompt, wait_key_s } => {
                self.play(call, Some(prompt), wait_key_s, false);
            }
            Instruction::HangUp { prompt: Some(p) } => self.play(call, Some(p), None, true),
            Instruction::HangUp { prompt: None } => self.release(now, call),
            Instruction::Queue {
                ref queue,
                priority,
                max_wait_s,
                ref greeting,
                ref hold,
                ref reassurance,
                reassurance_every_s,
            } => {
                let role = r
                    .plans
                    .queues
                    .get(queue)
                    .map_or_else(|| queue.clone(), |q| q.role.clone());
                r.last_queue = Some(instruction.clone());
                if let Some(why) = self.backup_due(now, call, queue, &role) {
                    self.send_to_backup(now, call, &why);
                    return;
                }
                let Some(r) = self.routes.get_mut(call) else {
                    return;
                };
                // Queued first, so that a full queue sends the caller on before any answer
                // or hold audio: unanswered, it can still be refused busy.
                let request = CallRequest::new(&role, priority);
                if !self.board.enqueue(now, call, queue, &request) {
                    return self.queue_full(now, call);
                }
                r.full_in_a_row = 0;
                // Hold audio needs an answered call; without it the caller hears ringback.
                // During an accompanied transfer the caller hears the seat instead.
                let audio = greeting.is_some() || hold.is_some() || reassurance.is_some();
                if audio && !self.board.accompanying(call) {
                    let play = r.next_play();
                    self.outputs.push_back(RouterOutput::Play {
                        call: call.into(),
                        play,
                        answer: true,
                        ends: false,
                        greeting: greeting.clone(),
                        hold: hold.clone(),
                        reassurance: reassurance.clone(),
                        reassurance_every_ms: u64::from(reassurance_every_s) * SECOND,
                    });
                }
                if let Some(wait) = max_wait_s {
                    let at = now.mono.saturating_add(u64::from(wait) * SECOND);
                    self.timers.arm(call, TimerName::QueueMaxWait, at);
                }
            }
            Instruction::Forward { number } => {
                let input = CallInput::Forward {
                    call: call.into(),
                    number,
                };
                self.board.handle(now, input);
            }
        }
    }

    /// The plan ends the call (closed service, or after its message).
    fn release(&mut self, now: Now, call: &str) {
        let reason = "dial_plan_hangup".to_string();
        let released = CallInput::Released {
            call: call.into(),
            reason,
        };
        self.board.handle(now, released);
    }

    /// The call's queue is full: the step's overflow at once, or, with none (or after too
    /// many full queues in a row), the caller is refused busy (`queue_full`). Never left
    /// on hold audio in no queue.
    fn queue_full(&mut self, now: Now, call: &str) {
        if self.backup_when_full(call) && self.send_to_backup(now, call, "queue full") {
            return;
        }
        let Some(r) = self.routes.get_mut(call) else {
            return;
        };
        r.full_in_a_row += 1;
        let next = match r.full_in_a_row <= MAX_FULL_IN_A_ROW {
            true => r.with_flow(|f, p| f.on_queue_full(now.wall, p)).flatten(),
            false => None,
        };
        if !self.overflow_to(now, call, next) {
            tracing::warn!(%call, "queue full and nowhere to overflow: refused busy");
            let input = CallInput::QueueFull { call: call.into() };
            self.board.handle(now, input);
        }
    }

    /// A forward could not be made (no outbound trunk, refused, unreachable) and its step
    /// names no `failed` step, or the seat talking with the caller was lost: the call must
    /// not be lost, so it waits again in its last queue, or else in its line's queue (it
    /// fails loudly, `why`, only on a line without any queue).
    pub(super) fn wait_again(&mut self, now: Now, call: &str, why: &str) {
        let last = self.routes.get(call).and_then(|r| r.last_queue.clone());
        match last {
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
                self.follow(now, call, again);
            }
            _ => {
                // Never queued (a forward straight from a menu or a schedule): the line's
                // queue, with its audio; failed only for a line without any queue.
                let line = self
                    .routes
                    .get_mut(call)
                    .and_then(|r| r.with_flow(|f, p| f.line_queue(why, now.wall, p)).flatten());
                match line {
                    Some(queue) => self.follow(now, call, queue),
                    None => {
                        let failed = CallInput::Failed {
                            call: call.into(),
                            reason: why.into(),
                        };
                        self.board.handle(now, failed);
                    }
                }
            }
        }
    }

    /// Answers the caller if needed and plays `prompt` once; its end comes back as
    /// [`super::RouterInput::PromptEnded`].
    fn play(&mut self, call: &str, prompt: Option<String>, wait_key_s: Option<u32>, hang_up: bool) {
        let Some(r) = self.routes.get_mut(call) else {
            return;
        };
        let play = r.next_play();
        r.awaiting = Awaiting::Prompt {
            play,
            wait_key_s,
            hang_up,
        };
        if self.board.accompanying(call) {
            // The seat is talking with the caller: the plan goes on without the prompt.
            self.skipped.push_back((call.into(), play));
            return;
        }
        self.outputs.push_back(RouterOutput::Play {
            call: call.into(),
            play,
            answer: true,
            ends: true,
            greeting: prompt,
            hold: None,
            reassurance: None,
            reassurance_every_ms: 0,
        });
    }

    /// The caller waits again in its queue (the seat left an accompanied transfer before
    /// the target answered): the queue's hold audio and reassurance, no greeting.
    pub(super) fn hold_again(&mut self, call: &str) {
        let Some(r) = self.routes.get_mut(call) else {
            return;
        };
        let Some(Instruction::Queue {
            hold,
            reassurance,
            reassurance_every_s,
            ..
        }) = r.last_queue.clone()
        else {
            return;
        };
        let play = r.next_play();
        self.outputs.push_back(RouterOutput::Play {
            call: call.into(),
            play,
            answer: false,
            ends: false,
            greeting: None,
            hold,
            reassurance,
            reassurance_every_ms: u64::from(reassurance_every_s) * SECOND,
        });
    }
}
