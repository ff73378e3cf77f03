//! The dial plan interpreter for one call, sans-IO: walks an entry's steps and tells the
//! driver what to do (play, wait for a key, queue, forward, hang up), driven by what
//! happens (prompt played, key pressed, timeouts). Every decision is written to a trace in
//! words an administrator reads (`simulate` prints it; the call record keeps it).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::plan::{Action, PlanSet};
use crate::time::EpochMillis;

#[cfg(test)]
mod tests;

/// Answers "is this schedule open at that instant, and why".
pub trait Calendar {
    /// `None` for an unknown schedule (validation prevents it).
    fn decide(&self, schedule: &str, at: EpochMillis) -> Option<(bool, String)>;
}

/// What the driver must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// Answer the caller if not yet, play the prompt once, then report
    /// [`Flow::on_prompt_ended`]. With `wait_key_s`, keys are expected (a menu): report
    /// them with [`Flow::on_digit`], and [`Flow::on_key_timeout`] if none came within
    /// `wait_key_s` after the prompt.
    Play {
        prompt: String,
        wait_key_s: Option<u32>,
    },
    /// Queue the call.
    Queue {
        queue: String,
        priority: u8,
        /// Report [`Flow::on_queue_timeout`] after this long without a seat.
        max_wait_s: Option<u32>,
        /// Played once first (the call is offered to seats meanwhile), then hold audio.
        greeting: Option<String>,
        hold: Option<String>,
        reassurance: Option<String>,
        reassurance_every_s: u32,
    },
    /// Dial this external number through the trunk and bridge the caller to it.
    Forward { number: String },
    /// Play the prompt (if any), then hang up.
    HangUp { prompt: Option<String> },
}

/// Where one call is in its entry's flow.
#[derive(Debug, Clone)]
pub struct Flow {
    plan: Arc<PlanSet>,
    entry: String,
    step: String,
    /// Menu: plays left after this one.
    retries_left: u32,
    tags: BTreeMap<String, String>,
    trace: Vec<String>,
}

/// Steps walked without waiting before the walk is declared broken (validation refuses
/// such loops; this keeps a bug from spinning the driver).
const MAX_STEPS: usize = 64;

impl Flow {
    /// Starts the flow of `entry` and returns the first thing to do.
    pub fn start(
        plan: Arc<PlanSet>,
        entry: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<(Flow, Instruction)> {
        let start = plan.entries.get(entry)?.start.clone();
        Some(Flow::start_at(
            plan,
            entry,
            &start,
            BTreeMap::new(),
            Vec::new(),
            now,
            calendar,
        ))
    }

    /// Overload control sent a new call of `entry` to its `on_overload` step rather than
    /// refuse it. `None` when the entry has no such step.
    pub fn overloaded(
        plan: Arc<PlanSet>,
        entry: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<(Flow, Instruction)> {
        let step = plan.entries.get(entry)?.on_overload.clone()?;
        Some(Flow::start_because(
            plan, entry, step, "overload", now, calendar,
        ))
    }

    /// The line of `entry` is switched to the backup centre: a new call starts at the
    /// entry's `backup` step. `None` when the entry has none.
    pub fn switched(
        plan: Arc<PlanSet>,
        entry: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<(Flow, Instruction)> {
        let step = plan.entries.get(entry)?.backup.clone()?;
        let why = "line switched to backup";
        Some(Flow::start_because(plan, entry, step, why, now, calendar))
    }

    /// A new call of `entry` starting at `step` rather than at the entry's start, `why`
    /// written first in its trace.
    fn start_because(
        plan: Arc<PlanSet>,
        entry: &str,
        step: String,
        why: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> (Flow, Instruction) {
        let trace = vec![format!("{why}: {entry}/{step}")];
        Flow::start_at(plan, entry, &step, BTreeMap::new(), trace, now, calendar)
    }

    /// The call goes to its entry's `backup` step now (`why`: the line was switched, or a
    /// `backup_when` trigger). `None` when the entry has none.
    pub fn send_to_backup(
        &mut self,
        why: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let step = self.plan.entries.get(&self.entry)?.backup.clone()?;
        self.note(format!("{}: {why} → backup {step}", self.step));
        self.retries_left = 0;
        Some(self.go(&step, now, calendar))
    }

    /// The entry the call is in now.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// A seat dialled an internal number: the flow of `entry` starts at that number's
    /// `step`, tagged `from_seat`. `None` when the plans have no such entry.
    pub fn dialled(
        plan: Arc<PlanSet>,
        entry: &str,
        step: &str,
        seat: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<(Flow, Instruction)> {
        plan.entries.get(entry)?;
        let tags = BTreeMap::from([("from_seat".to_string(), seat.to_string())]);
        let trace = vec![format!("dialled by {seat} to {entry}/{step}")];
        Some(Flow::start_at(
            plan, entry, step, tags, trace, now, calendar,
        ))
    }

    fn start_at(
        plan: Arc<PlanSet>,
        entry: &str,
        step: &str,
        tags: BTreeMap<String, String>,
        trace: Vec<String>,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> (Flow, Instruction) {
        let mut flow = Flow {
            plan,
            entry: entry.into(),
            step: String::new(),
            retries_left: 0,
            tags,
            trace,
        };
        let first = flow.go(step, now, calendar);
        (flow, first)
    }

    /// A seat transferred the call to `step` of `entry` (an internal number's target):
    /// the call goes on from there, its trace saying who sent it.
    pub fn transfer(
        &mut self,
        entry: &str,
        step: &str,
        by: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Instruction {
        self.note(format!("transferred by {by} to {entry}/{step}"));
        self.entry = entry.into();
        self.retries_left = 0;
        self.go(step, now, calendar)
    }

    /// The prompt of a [`Instruction::Play`] ended. `None`: keep waiting (a menu waits for
    /// a key or its timeout).
    pub fn on_prompt_ended(
        &mut self,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        match self.action()? {
            Action::Play { next, .. } => {
                let next = next.clone();
                Some(self.go(&next, now, calendar))
            }
            _ => None,
        }
    }

    /// A key, during or after a menu's prompt. Ignored elsewhere.
    pub fn on_digit(
        &mut self,
        digit: char,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let Some(Action::Menu { choices, .. }) = self.action() else {
            return None;
        };
        match choices.get(&digit).cloned() {
            Some(next) => {
                self.note(format!("{}: key {digit} → {next}", self.step));
                Some(self.go(&next, now, calendar))
            }
            None => Some(self.ask_again(format!("key {digit} is not a choice"), now, calendar)),
        }
    }

    /// No key within the menu's timeout.
    pub fn on_key_timeout(
        &mut self,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        matches!(self.action()?, Action::Menu { .. })
            .then(|| self.ask_again("no key".into(), now, calendar))
    }

    /// No seat answered within the queue's `max_wait_s`.
    pub fn on_queue_timeout(
        &mut self,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let Action::Queue { max_wait_s, .. } = self.action()? else {
            return None;
        };
        let why = format!("no seat within {} s", max_wait_s.unwrap_or(0));
        self.overflow(&why, now, calendar)
    }

    /// No seat of the queue can answer at all (none logged in, for a caller that must not
    /// wait for nobody): the queue's overflow now, without waiting for `max_wait_s`.
    pub fn on_no_seat(&mut self, now: EpochMillis, calendar: &dyn Calendar) -> Option<Instruction> {
        self.overflow("no seat can answer", now, calendar)
    }

    fn overflow(
        &mut self,
        why: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let Action::Queue {
            overflow: Some(next),
            ..
        } = self.action()?
        else {
            return None;
        };
        let next = next.clone();
        self.note(format!("{}: {why} → overflow to {next}", self.step));
        Some(self.go(&next, now, calendar))
    }

    /// The queue of the current step refused the call (full, `max_waiting`): its overflow
    /// is followed at once, without waiting for `max_wait_s`. `None` when the step has no
    /// overflow: the plan has nowhere else to send the call.
    pub fn on_queue_full(
        &mut self,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let Action::Queue {
            queue, overflow, ..
        } = self.action()?
        else {
            return None;
        };
        let (queue, overflow) = (queue.clone(), overflow.clone());
        match overflow {
            Some(next) => {
                self.note(format!(
                    "{}: queue {queue} full → overflow to {next}",
                    self.step
                ));
                Some(self.go(&next, now, calendar))
            }
            None => {
                self.note(format!(
                    "{}: queue {queue} full, no overflow: refused busy",
                    self.step
                ));
                None
            }
        }
    }

    /// The forward of the current step could not be made (refused, unreachable, no
    /// trunk): its `failed` step. `None` when it names none.
    pub fn on_forward_failed(
        &mut self,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let Action::Forward {
            to,
            failed: Some(next),
        } = self.action()?
        else {
            return None;
        };
        let (to, next) = (to.clone(), next.clone());
        self.note(format!("{}: forward to {to} failed → {next}", self.step));
        Some(self.go(&next, now, calendar))
    }

    /// The line's queue, for a call the plan has nowhere else to send (`why`): the first
    /// queue step met walking the entry from its start (the way most calls go), else any
    /// queue step of the entry, as a call arriving there. `None` when the entry has none.
    pub fn line_queue(
        &mut self,
        why: &str,
        now: EpochMillis,
        calendar: &dyn Calendar,
    ) -> Option<Instruction> {
        let entry = self.plan.entries.get(&self.entry)?;
        let is_queue = |name: &str| {
            let step = entry.steps.get(name);
            step.is_some_and(|s| matches!(s.action, Action::Queue { .. }))
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut next = std::collections::VecDeque::from([entry.start.as_str()]);
        let mut reached = None;
        while let Some(name) = next.pop_front() {
            if is_queue(name) {
                reached = Some(name);
                break;
            }
            if seen.insert(name)
                && let Some(step) = entry.steps.get(name)
            {
                next.extend(step.action.targets());
            }
        }
        // None on the way from the start (it forwards at once): any queue of the entry.
        let queue = reached
            .or_else(|| entry.steps.keys().map(String::as_str).find(|s| is_queue(s)))?
            .to_string();
        self.note(format!("{}: {why} → the line's queue {queue}", self.step));
        Some(self.go(&queue, now, calendar))
    }

    /// What happened so far, a line per decision.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// Tags set along the way.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    fn action(&self) -> Option<&Action> {
        self.plan
            .entries
            .get(&self.entry)?
            .steps
            .get(&self.step)
            .map(|s| &s.action)
    }

    fn note(&mut self, line: String) {
        self.trace.push(line);
    }

    /// The menu again, or its default once the retries are used up.
    fn ask_again(&mut self, why: String, now: EpochMillis, calendar: &dyn Calendar) -> Instruction {
        let Some(Action::Menu {
            prompt,
            timeout_s,
            default,
            ..
        }) = self.action().cloned()
        else {
            return self.broken("not at a menu");
        };
        if self.retries_left == 0 {
            self.note(format!("{}: {why}, no retry left → {default}", self.step));
            return self.go(&default, now, calendar);
        }
        self.retries_left -= 1;
        self.note(format!("{}: {why}, asking again", self.step));
        Instruction::Play {
            prompt,
            wait_key_s: Some(timeout_s),
        }
    }

    /// Walks from `step` through the steps that need no waiting, to the next instruction.
    fn go(&mut self, step: &str, now: EpochMillis, calendar: &dyn Calendar) -> Instruction {
        let mut step = step.to_string();
        for _ in 0..MAX_STEPS {
            let Some(action) = self
                .plan
                .entries
                .get(&self.entry)
                .and_then(|e| e.steps.get(&step))
                .map(|s| s.action.clone())
            else {
                return self.broken(&format!("no step {step}"));
            };
            self.step = step.clone();
            match action {
                Action::Time {
                    schedule,
                    open,
                    closed,
                } => {
                    let Some((is_open, why)) = calendar.decide(&schedule, now) else {
                        return self.broken(&format!("no schedule {schedule}"));
                    };
                    let next = if is_open { open } else { closed };
                    let state = if is_open { "open" } else { "closed" };
                    self.note(format!(
                        "{step}: schedule {schedule} {state} ({why}) → {next}"
                    ));
                    step = next;
                }
                Action::Tag { tags, next } => {
                    let list: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    self.note(format!("{step}: tags {} → {next}", list.join(", ")));
                    self.tags.extend(tags);
                    step = next;
                }
                Action::Play { prompt, next } => {
                    self.note(format!("{step}: play {prompt}, then {next}"));
                    return Instruction::Play {
                        prompt,
                        wait_key_s: None,
                    };
                }
                Action::Menu {
                    prompt,
                    timeout_s,
                    retries,
                    ..
                } => {
                    self.retries_left = retries;
                    self.note(format!(
                        "{step}: menu {prompt}, waiting {timeout_s} s for a key"
                    ));
                    return Instruction::Play {
                        prompt,
                        wait_key_s: Some(timeout_s),
                    };
                }
                Action::Queue {
                    queue,
                    priority,
                    max_wait_s,
                    overflow,
                    greeting,
                    hold,
                    reassurance,
                    reassurance_every_s,
                } => {
                    let after = match (max_wait_s, &overflow) {
                        (Some(s), Some(o)) => format!(", overflow after {s} s → {o}"),
                        _ => String::new(),
                    };
                    let said = greeting
                        .as_deref()
                        .map(|g| format!(", greeting {g}"))
                        .unwrap_or_default();
                    self.note(format!(
                        "{step}: queue {queue} (priority {priority}{said}){after}"
                    ));
                    return Instruction::Queue {
                        queue,
                        priority,
                        max_wait_s,
                        greeting,
                        hold,
                        reassurance,
                        reassurance_every_s,
                    };
                }
                Action::Forward { to, .. } => {
                    let Some(number) = self.plan.external.get(&to).cloned() else {
                        return self.broken(&format!("no external number {to}"));
                    };
                    self.note(format!("{step}: forward to {to} ({number})"));
                    return Instruction::Forward { number };
                }
                Action::Hangup { prompt } => {
                    let said = prompt
                        .as_deref()
                        .map(|p| format!(" after {p}"))
                        .unwrap_or_default();
                    self.note(format!("{step}: hang up{said}"));
                    return Instruction::HangUp { prompt };
                }
            }
        }
        self.broken("the flow walks in a circle")
    }

    /// A flow that cannot go on: the caller must not be left hanging in silence; the
    /// driver treats this like any failed call (recorded, and the caller released).
    fn broken(&mut self, why: &str) -> Instruction {
        self.note(format!("{}: dial plan error ({why}): hang up", self.step));
        Instruction::HangUp { prompt: None }
    }
}
