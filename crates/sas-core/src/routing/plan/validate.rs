//! Whole-set checks of the dial plans, run before a set goes live: every name used is
//! defined (steps, schedules, queues, external numbers; a prompt without a file is only
//! reported, see [`missing_prompts`]), no number is claimed
//! twice, every step is reachable, and no flow loops without waiting for the caller.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::load::place;
use super::{MissingPrompt, Origin, PlanError, PlanSet};

/// Names defined outside the files, and every reference seen while loading, with where it
/// was written.
pub(in crate::routing) struct Known {
    prompts: HashSet<String>,
    builtin_schedules: Vec<String>,
    defined_schedules: BTreeMap<String, Origin>,
    /// (entry, step named, where)
    step_refs: Vec<(String, String, Origin)>,
    schedule_refs: Vec<(String, Origin)>,
    queue_refs: Vec<(String, Origin)>,
    external_refs: Vec<(String, Origin)>,
    /// (entry, number, where)
    numbers: Vec<(String, String, Origin)>,
    /// (name, where its entry is named, where its step is named)
    pub internal_refs: Vec<(String, Origin, Origin)>,
}

impl Known {
    pub fn new(prompts: &[&str], schedules: &[&str]) -> Self {
        Known {
            prompts: prompts.iter().map(|p| p.to_string()).collect(),
            builtin_schedules: schedules.iter().map(|s| s.to_string()).collect(),
            defined_schedules: BTreeMap::new(),
            step_refs: Vec::new(),
            schedule_refs: Vec::new(),
            queue_refs: Vec::new(),
            external_refs: Vec::new(),
            numbers: Vec::new(),
            internal_refs: Vec::new(),
        }
    }

    /// Records a schedule definition; returns where it was first defined if it already was.
    pub fn define_schedule(&mut self, name: &str, at: Origin) -> Option<Origin> {
        if let Some(first) = self.defined_schedules.get(name) {
            return Some(first.clone());
        }
        self.defined_schedules.insert(name.to_string(), at);
        None
    }

    pub fn step_ref(&mut self, entry: &str, step: &str, at: Origin) {
        self.step_refs.push((entry.into(), step.into(), at));
    }

    pub fn schedule_ref(&mut self, name: &str, at: Origin) {
        self.schedule_refs.push((name.into(), at));
    }

    pub fn queue_ref(&mut self, name: &str, at: Origin) {
        self.queue_refs.push((name.into(), at));
    }

    pub fn external_ref(&mut self, name: &str, at: Origin) {
        self.external_refs.push((name.into(), at));
    }

    pub fn number_at(&mut self, entry: &str, number: &str, at: Origin) {
        self.numbers.push((entry.into(), number.into(), at));
    }
}

fn error(at: &Origin, message: String) -> PlanError {
    PlanError {
        file: at.file.clone(),
        line: at.line,
        column: at.column,
        message,
    }
}

fn listing<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none is defined".into()
    } else {
        format!("known: {}", names.join(", "))
    }
}

/// Every problem of the set, in file order of the references.
/// The steps naming a prompt with no file (not an error: see [`PlanSet::missing_prompts`]).
pub(in crate::routing) fn missing_prompts(set: &PlanSet, known: &Known) -> Vec<MissingPrompt> {
    let mut missing = Vec::new();
    for entry in set.entries.values() {
        for step in entry.steps.values() {
            for prompt in step.action.prompts() {
                if !known.prompts.contains(prompt) {
                    missing.push(MissingPrompt {
                        prompt: prompt.to_string(),
                        entry: entry.name.clone(),
                        step: step.name.clone(),
                        origin: step.origin.clone(),
                    });
                }
            }
        }
    }
    missing
}

pub(in crate::routing) fn validate(set: &PlanSet, known: &Known) -> Vec<PlanError> {
    let mut errors = Vec::new();
    for (entry, step, at) in &known.step_refs {
        let Some(e) = set.entries.get(entry) else {
            continue;
        };
        if !e.steps.contains_key(step) {
            errors.push(error(
                at,
                format!(
                    "entry \"{entry}\" has no step named \"{step}\" ({})",
                    listing(e.steps.keys().map(String::as_str))
                ),
            ));
        }
    }
    for (name, at) in &known.schedule_refs {
        if !known.defined_schedules.contains_key(name) && !known.builtin_schedules.contains(name) {
            let all = known
                .defined_schedules
                .keys()
                .chain(&known.builtin_schedules)
                .map(String::as_str);
            errors.push(error(
                at,
                format!("there is no schedule named \"{name}\" ({})", listing(all)),
            ));
        }
    }
    for (name, at) in &known.queue_refs {
        if !set.queues.contains_key(name) {
            errors.push(error(
                at,
                format!(
                    "there is no queue named \"{name}\": define it under [queues.{name}] ({})",
                    listing(set.queues.keys().map(String::as_str))
                ),
            ));
        }
    }
    for (name, at) in &known.external_refs {
        if !set.external.contains_key(name) {
            errors.push(error(
                at,
                format!(
                    "\"{name}\" is not in [external]: the router only dials out numbers listed \
                     there ({})",
                    listing(set.external.keys().map(String::as_str))
                ),
            ));
        }
    }
    let mut claimed: BTreeMap<&str, (&str, &Origin)> = BTreeMap::new();
    for (entry, number, at) in &known.numbers {
        match claimed.get(number.as_str()) {
            Some((first, first_at)) if first != entry => errors.push(error(
                at,
                format!(
                    "number {number} is already claimed by entry \"{first}\" at {}",
                    place(first_at)
                ),
            )),
            _ => {
                claimed.insert(number, (entry, at));
            }
        }
    }
    for (name, entry_at, step_at) in &known.internal_refs {
        let Some(internal) = set.internal.get(name) else {
            continue;
        };
        match set.entries.get(&internal.entry) {
            None => errors.push(error(
                entry_at,
                format!(
                    "internal number \"{name}\" leads to entry \"{}\", which does not exist",
                    internal.entry
                ),
            )),
            Some(e) if !e.steps.contains_key(&internal.step) => errors.push(error(
                step_at,
                format!(
                    "internal number \"{name}\": entry \"{}\" has no step \"{}\"",
                    internal.entry, internal.step
                ),
            )),
            Some(_) => {}
        }
        if let Some((first, first_at)) = claimed.get(internal.number.as_str()) {
            errors.push(error(
                entry_at,
                format!(
                    "internal number {} is already claimed by entry \"{first}\" at {}",
                    internal.number,
                    place(first_at)
                ),
            ));
        }
    }
    if errors.is_empty() {
        errors.extend(flow_errors(set));
    }
    errors
}

/// Unreachable steps and loops that never wait for the caller.
fn flow_errors(set: &PlanSet) -> Vec<PlanError> {
    let mut errors = Vec::new();
    for entry in set.entries.values() {
        let internal = set.internal.values().any(|i| i.entry == entry.name);
        if entry.numbers.is_empty() && !internal {
            errors.push(error(
                &entry.origin,
                format!(
                    "entry \"{}\" answers no number and no internal number leads to it: list \
                     its numbers in `numbers`",
                    entry.name
                ),
            ));
        }
        let mut roots: Vec<&str> = vec![&entry.start];
        roots.extend(entry.on_overload.as_deref());
        roots.extend(entry.backup.as_deref());
        roots.extend(
            set.internal
                .values()
                .filter(|i| i.entry == entry.name)
                .map(|i| i.step.as_str()),
        );
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        while let Some(step) = roots.pop() {
            if reached.insert(step)
                && let Some(s) = entry.steps.get(step)
            {
                roots.extend(s.action.targets());
            }
        }
        for step in entry.steps.values() {
            if !reached.contains(step.name.as_str()) {
                errors.push(error(
                    &step.origin,
                    format!(
                        "step \"{}\" of entry \"{}\" is never reached: no step leads to it \
                         (remove it, or point a step at it)",
                        step.name, entry.name
                    ),
                ));
            }
        }
        if let Some(cycle) = spin(entry) {
            let first = &entry.steps[&cycle[0]];
            errors.push(error(
                &first.origin,
                format!(
                    "entry \"{}\" loops without ever waiting for the caller: {} (put a menu or \
                     a queue in the loop, or break it)",
                    entry.name,
                    cycle.join(" → ")
                ),
            ));
        }
    }
    errors
}

/// A cycle through steps none of which waits (menu, queue), as step names ending where it
/// starts.
fn spin(entry: &super::Entry) -> Option<Vec<String>> {
    fn visit<'a>(
        entry: &'a super::Entry,
        step: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|s| *s == step) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(step.to_string());
            return Some(cycle);
        }
        if done.contains(step) {
            return None;
        }
        let s = entry.steps.get(step)?;
        if s.action.waits() {
            done.insert(step);
            return None;
        }
        path.push(step);
        for next in s.action.targets() {
            if let Some(cycle) = visit(entry, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(step);
        None
    }
    let mut done = BTreeSet::new();
    entry
        .steps
        .keys()
        .find_map(|start| visit(entry, start, &mut Vec::new(), &mut done))
}
