//! Dial plans: what happens to a call to an entry number, as a graph of named steps.
//!
//! Admins write them as TOML files under `dialplans/` (format in `dialplans/README.md`).
//! [`crate::routing::files::load_dir`] reads every file, checks the whole set ([`validate`]) and returns a
//! [`PlanSet`] or every problem found, each with file, line, column and a sentence an
//! administrator understands. The set is immutable once built: a reload builds a new one.

mod load;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use load::load_texts;

use super::builtin::builtin;
use super::flow::Calendar;
use super::schedule::Schedule;
use crate::time::EpochMillis;

/// One problem in the dial plans, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not in one place (e.g. an unreadable directory).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for PlanError {}

/// Where a definition was written (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Every dial plan in force, validated.
#[derive(Debug, Clone)]
pub struct PlanSet {
    /// Identifies the set: the start of the SHA-256 of its files' names and texts.
    pub version: String,
    /// Entries by name.
    pub entries: BTreeMap<String, Entry>,
    /// Queues by name.
    pub queues: BTreeMap<String, QueueDef>,
    /// External numbers the router may dial through the trunk, by name. Nothing else is
    /// ever dialled out (toll fraud).
    pub external: BTreeMap<String, String>,
    /// Short internal numbers seats dial to reach a step (escalation: AMU, libéral, psy…).
    pub internal: BTreeMap<String, InternalNumber>,
    /// Every schedule: those defined in the files, and the built-in ones they did not
    /// redefine, each given the files' `local_holidays`.
    pub schedules: BTreeMap<String, Schedule>,
    /// What is valid but probably not what the admin meant (a built-in schedule
    /// redefined): `check` prints these, the router logs them.
    pub warnings: Vec<PlanError>,
    /// Prompts the steps name that have no file: the set is valid (a missing greeting must
    /// never stop the 15 from being answered), they play silence, and this says so loudly.
    pub missing_prompts: Vec<MissingPrompt>,
}

/// A step naming a prompt with no file. Shown as `file:line:column: step … plays …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPrompt {
    pub prompt: String,
    pub entry: String,
    pub step: String,
    /// Where the step is written.
    pub origin: Origin,
}

impl fmt::Display for MissingPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Origin { file, line, column } = &self.origin;
        write!(
            f,
            "{}:{line}:{column}: step \"{}\" of entry \"{}\" plays \"{}\", but there is no \
             prompt file {}.wav: callers hear silence in its place",
            file.display(),
            self.step,
            self.entry,
            self.prompt,
            self.prompt
        )
    }
}

impl PlanSet {
    /// The entry answering `number` (normalised).
    pub fn entry_for(&self, number: &str) -> Option<&Entry> {
        self.entries
            .values()
            .find(|e| e.numbers.iter().any(|n| n == number))
    }
}

impl Calendar for PlanSet {
    fn decide(&self, schedule: &str, at: EpochMillis) -> Option<(bool, String)> {
        let at = chrono::DateTime::from_timestamp_millis(i64::try_from(at).ok()?)?;
        let decision = match self.schedules.get(schedule) {
            Some(s) => s.decide(at),
            None => builtin(schedule)?.decide(at),
        };
        Some((decision.open, decision.reason))
    }
}

/// An entry: the numbers it answers and its flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    /// Called numbers, normalised (`15`, `116117`).
    pub numbers: Vec<String>,
    /// Line label for records and metrics (`samu`, `sas`).
    pub line: String,
    /// First step.
    pub start: String,
    /// The step new calls start at instead of being refused (503) while overload control
    /// sheds them: typically a forward to the backup centre.
    pub on_overload: Option<String>,
    /// The backup centre step (`backup`): where new calls go while the line is switched
    /// to the backup centre, and where `backup_when` overflows them automatically.
    pub backup: Option<String>,
    /// When calls go to `backup` by themselves instead of waiting in the line's queue.
    pub backup_when: BackupWhen,
    pub steps: BTreeMap<String, Step>,
    pub origin: Origin,
}

/// The automatic overflow to an entry's `backup` step (`backup_when = [...]`), checked
/// when a call reaches a queue step of the entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupWhen {
    /// The queue refused the call (`max_waiting` reached).
    pub queue_full: bool,
    /// None of the queue's eligible seats (its role) is logged in and unpaused.
    pub no_seat: bool,
    /// `threshold`: this many calls already wait in the queue (`backup_max_waiting`).
    pub max_waiting: Option<usize>,
    /// `threshold`: the longest waiting call has waited this long (`backup_max_wait_s`).
    pub max_wait_s: Option<u32>,
}

impl BackupWhen {
    /// No trigger set.
    pub fn is_empty(&self) -> bool {
        *self == BackupWhen::default()
    }
}

/// A queue of seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub name: String,
    /// Seats with this role answer it.
    pub role: String,
}

/// An internal number: dialled by a seat, it leads to `step` of `entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalNumber {
    pub number: String,
    pub entry: String,
    pub step: String,
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub origin: Origin,
}

/// What a step does, and where the call goes next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer if needed, play a prompt once, go on.
    Play { prompt: String, next: String },
    /// Play a prompt and wait for one key.
    Menu {
        prompt: String,
        choices: BTreeMap<char, String>,
        /// Seconds to wait for a key after the prompt.
        timeout_s: u32,
        /// How many times the prompt is played again after a timeout or a wrong key.
        retries: u32,
        /// Where the call goes when the retries are used up.
        default: String,
    },
    /// Branch on a named schedule.
    Time {
        schedule: String,
        open: String,
        closed: String,
    },
    /// Label the call (department, reason…), go on.
    Tag {
        tags: BTreeMap<String, String>,
        next: String,
    },
    /// Wait for a seat of the queue.
    Queue {
        queue: String,
        priority: u8,
        /// After this long without a seat, go to `overflow`.
        max_wait_s: Option<u32>,
        overflow: Option<String>,
        /// Played once as the call enters the queue (it is already offered to seats).
        greeting: Option<String>,
        hold: Option<String>,
        reassurance: Option<String>,
        reassurance_every_s: u32,
    },
    /// Send the call out through the trunk to an allowed external number (by name); if
    /// that fails, go to `failed` (without it: the call's last queue, or its line's).
    Forward { to: String, failed: Option<String> },
    /// Play a prompt if given, then hang up.
    Hangup { prompt: Option<String> },
}

impl Action {
    /// The steps this one can lead to.
    pub fn targets(&self) -> Vec<&str> {
        match self {
            Action::Play { next, .. } | Action::Tag { next, .. } => vec![next],
            Action::Menu {
                choices, default, ..
            } => choices
                .values()
                .map(String::as_str)
                .chain([default.as_str()])
                .collect(),
            Action::Time { open, closed, .. } => vec![open, closed],
            Action::Queue { overflow, .. } => overflow.iter().map(String::as_str).collect(),
            Action::Forward { failed, .. } => failed.iter().map(String::as_str).collect(),
            Action::Hangup { .. } => vec![],
        }
    }

    /// The prompts this step plays.
    pub fn prompts(&self) -> Vec<&str> {
        match self {
            Action::Play { prompt, .. } | Action::Menu { prompt, .. } => vec![prompt],
            Action::Queue {
                greeting,
                hold,
                reassurance,
                ..
            } => greeting
                .iter()
                .chain(hold)
                .chain(reassurance)
                .map(String::as_str)
                .collect(),
            Action::Hangup { prompt } => prompt.iter().map(String::as_str).collect(),
            _ => vec![],
        }
    }

    /// The caller waits here for something (a key, a seat): a loop through such a step
    /// is a menu asking again or a queue, not a spin.
    pub fn waits(&self) -> bool {
        matches!(self, Action::Menu { .. } | Action::Queue { .. })
    }
}
