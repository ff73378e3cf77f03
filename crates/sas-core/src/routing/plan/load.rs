//! Reading dial plan files: TOML into [`PlanSet`], every problem located by file, line and
//! column. Each step is a table with one action key (`play`, `menu`, `schedule`, `tags`,
//! `queue`, `forward`, `hangup`) and the keys that action takes.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::validate::{Known, missing_prompts, validate};
use super::{
    Action, BackupWhen, Entry, InternalNumber, Origin, PlanError, PlanSet, QueueDef, Step,
};
use crate::routing::builtin::{BUILTIN_NAMES, builtin};
use crate::routing::schedule::Schedule;
use crate::sip::numbers::normalise;

/// One file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    entries: BTreeMap<String, Spanned<RawEntry>>,
    #[serde(default)]
    queues: BTreeMap<String, Spanned<RawQueue>>,
    #[serde(default)]
    external: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    internal: BTreeMap<String, Spanned<RawInternal>>,
    /// Checked by the schedule parser; here only their names matter.
    #[serde(default)]
    schedules: BTreeMap<String, Spanned<toml::Value>>,
    /// Local public holidays (`YYYY-MM-DD`): every schedule treats them as public holidays.
    #[serde(default)]
    local_holidays: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    // Optional here so that an entry's steps written in another file get a sentence
    // saying so rather than serde's "missing field".
    numbers: Option<Vec<Spanned<String>>>,
    line: Option<String>,
    start: Option<Spanned<String>>,
    /// Where new calls go instead of a 503 while overload control sheds them.
    on_overload: Option<Spanned<String>>,
    /// The backup centre step (line switch, automatic overflow).
    backup: Option<Spanned<String>>,
    /// `queue_full`, `no_seat`, `threshold`.
    #[serde(default)]
    backup_when: Vec<Spanned<String>>,
    backup_max_waiting: Option<usize>,
    backup_max_wait_s: Option<u32>,
    #[serde(default)]
    steps: BTreeMap<String, Spanned<RawStep>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInternal {
    number: String,
    entry: Spanned<String>,
    step: Spanned<String>,
}

/// `hangup = true`, or `hangup = "prompt"` to say something first.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawHangup {
    Plain(bool),
    WithPrompt(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    play: Option<String>,
    menu: Option<String>,
    schedule: Option<Spanned<String>>,
    tags: Option<BTreeMap<String, String>>,
    queue: Option<Spanned<String>>,
    forward: Option<Spanned<String>>,
    hangup: Option<RawHangup>,
    next: Option<Spanned<String>>,
    choices: Option<BTreeMap<String, Spanned<String>>>,
    timeout_s: Option<u32>,
    retries: Option<u32>,
    default: Option<Spanned<String>>,
    open: Option<Spanned<String>>,
    closed: Option<Spanned<String>>,
    priority: Option<u8>,
    max_wait_s: Option<u32>,
    overflow: Option<Spanned<String>>,
    failed: Option<Spanned<String>>,
    greeting: Option<String>,
    hold: Option<String>,
    reassurance: Option<String>,
    reassurance_every_s: Option<u32>,
}

/// Text positions of one file, to turn byte spans into line and column.
pub(super) struct Source {
    pub path: PathBuf,
    text: String,
}

impl Source {
    pub(super) fn at(&self, span: Range<usize>) -> Origin {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Origin {
            file: self.path.clone(),
            line,
            column,
        }
    }

    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> PlanError {
        let o = self.at(span);
        PlanError {
            file: o.file,
            line: o.line,
            column: o.column,
            message: message.into(),
        }
    }
}

/// Loads and validates dial plans given as `(file name, text)` pairs.
pub fn load_texts(
    files: Vec<(PathBuf, String)>,
    prompts: &[&str],
    schedules: &[&str],
) -> Result<PlanSet, Vec<PlanError>> {
    let mut digest = Sha256::new();
    for (path, text) in &files {
        digest.update(path.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(text.as_bytes());
        digest.update([0]);
    }
    let mut set = PlanSet {
        version: hex::encode(&digest.finalize()[..6]),
        entries: BTreeMap::new(),
        queues: BTreeMap::new(),
        external: BTreeMap::new(),
        internal: BTreeMap::new(),
        schedules: BTreeMap::new(),
        warnings: Vec::new(),
        missing_prompts: Vec::new(),
    };
    let mut errors = Vec::new();
    let mut known = Known::new(prompts, schedules);
    let mut sources = Vec::new();
    let mut local_holidays = Vec::new();
    for (path, text) in files {
        let source = Source { path, text };
        match toml::from_str::<RawFile>(&source.text) {
            Ok(mut raw) => {
                for date in std::mem::take(&mut raw.local_holidays) {
                    match crate::routing::parse::parse_date(date.get_ref()) {
                        Ok(d) => local_holidays.push(d),
                        Err(e) => {
                            errors.push(source.error(date.span(), format!("local_holidays: {e}")))
                        }
                    }
                }
                merge(&source, raw, &mut set, &mut known, &mut errors);
            }
            Err(e) => match steps_without_entry(&source) {
                Some(explained) => errors.push(explained),
                None => errors.push(source.error(
                    e.span().unwrap_or(0..0),
                    e.message().trim_end().replace('\n', "; "),
                )),
            },
        }
        sources.push(source);
    }
    if errors.is_empty() {
        errors.extend(validate(&set, &known));
        set.missing_prompts = missing_prompts(&set, &known);
    }
    if errors.is_empty() {
        for name in crate::routing::builtin::BUILTIN_NAMES {
            if !set.schedules.contains_key(name) {
                set.schedules
                    .insert(name.into(), builtin(name).expect("built in"));
            }
        }
        for schedule in set.schedules.values_mut() {
            schedule.local_holidays = local_holidays.clone();
        }
        Ok(set)
    } else {
        Err(errors)
    }
}

/// An entry table holding only steps (`[entries.samu.steps.extra]` in a file that does not
/// define `samu`): the typed parse fails on it with a message about serde's internals, so
/// say what is wrong instead.
fn steps_without_entry(src: &Source) -> Option<PlanError> {
    let table: toml::Table = toml::from_str(&src.text).ok()?;
    let entries = table.get("entries")?.as_table()?;
    let (name, _) = entries.iter().find(|(_, entry)| {
        entry
            .as_table()
            .is_some_and(|t| t.contains_key("steps") && t.keys().all(|k| k == "steps"))
    })?;
    let header = format!("[entries.{name}.");
    let at = src.text.find(&header).unwrap_or(0);
    Some(src.error(
        at..at,
        format!(
            "entry \"{name}\" has steps here but no numbers, line or start: an entry and its \
             steps are written in one file; add these steps to the file that defines \"{name}\""
        ),
    ))
}

/// Adds one file's definitions, refusing a name defined twice anywhere in the set.
fn merge(
    src: &Source,
    raw: RawFile,
    set: &mut PlanSet,
    known: &mut Known,
    errors: &mut Vec<PlanError>,
) {
    for (name, schedule) in raw.schedules {
        let span = schedule.span();
        if BUILTIN_NAMES.contains(&name.as_str()) {
            set.warnings.push(src.error(
                span.clone(),
                format!(
                    "schedule \"{name}\" replaces the built-in one of that name: every step \
                     naming \"{name}\" follows these hours (give it another name to keep \
                     the built-in)"
                ),
            ));
        }
        if let Some(first) = known.define_schedule(&name, src.at(span.clone())) {
            errors.push(src.error(
                span,
                format!(
                    "schedule \"{name}\" is already defined at {}",
                    place(&first)
                ),
            ));
            continue;
        }
        match schedule.into_inner().try_into::<Schedule>() {
            Ok(parsed) => {
                set.schedules.insert(name, parsed);
            }
            Err(e) => errors.push(src.error(
                span,
                format!(
                    "schedule \"{name}\": {}",
                    e.message().trim_end().replace('\n', "; ")
                ),
            )),
        }
    }
    for (name, queue) in raw.queues {
        let span = queue.span();
        if set.queues.contains_key(&name) {
            errors.push(src.error(span, format!("queue \"{name}\" is defined twice")));
            continue;
        }
        let role = queue.into_inner().role;
        set.queues.insert(name.clone(), QueueDef { name, role });
    }
    for (name, number) in raw.external {
        if set.external.contains_key(&name) {
            errors.push(src.error(
                number.span(),
                format!("external number \"{name}\" is defined twice"),
            ));
            continue;
        }
        let value = number.get_ref().trim();
        if value.is_empty()
            || !value
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_digit())
        {
            errors.push(src.error(
                number.span(),
                format!(
                    "external number \"{name}\" must be digits (an optional leading +), not \"{value}\""
                ),
            ));
            continue;
        }
        set.external.insert(name, value.to_string());
    }
    for (name, internal) in raw.internal {
        let span = internal.span();
        let raw = internal.into_inner();
        known.internal_refs.push((
            name.clone(),
            src.at(raw.entry.span()),
            src.at(raw.step.span()),
        ));
        if set.internal.contains_key(&name) {
            errors.push(src.error(span, format!("internal number \"{name}\" is defined twice")));
            continue;
        }
        set.internal.insert(
            name,
            InternalNumber {
                number: normalise(&raw.number),
                entry: raw.entry.into_inner(),
                step: raw.step.into_inner(),
            },
        );
    }
    for (name, entry) in raw.entries {
        if let Some(first) = set.entries.get(&name) {
            errors.push(src.error(
                entry.span(),
                format!(
                    "entry \"{name}\" is already defined at {}",
                    place(&first.origin)
                ),
            ));
            continue;
        }
        if let Some(e) = entry_of(src, name, entry, known, errors) {
            set.entries.insert(e.name.clone(), e);
        }
    }
}

fn entry_of(
    src: &Source,
    name: String,
    raw: Spanned<RawEntry>,
    known: &mut Known,
    errors: &mut Vec<PlanError>,
) -> Option<Entry> {
    let origin = src.at(raw.span());
    let raw = raw.into_inner();
    let missing = [
        ("numbers", raw.numbers.is_none()),
        ("line", raw.line.is_none()),
        ("start", raw.start.is_none()),
    ];
    let missing: Vec<&str> = missing.iter().filter(|m| m.1).map(|m| m.0).collect();
    let (Some(raw_numbers), Some(line), Some(start)) = (raw.numbers, raw.line, raw.start) else {
        errors.push(PlanError {
            file: origin.file.clone(),
            line: origin.line,
            column: origin.column,
            message: format!("entry \"{name}\" lacks {}", missing.join(", ")),
        });
        return None;
    };
    let mut numbers = Vec::new();
    for n in &raw_numbers {
        let normalised = normalise(n.get_ref());
        known.number_at(&name, &normalised, src.at(n.span()));
        numbers.push(normalised);
    }
    known.step_ref(&name, start.get_ref(), src.at(start.span()));
    if let Some(step) = &raw.on_overload {
        known.step_ref(&name, step.get_ref(), src.at(step.span()));
    }
    if let Some(step) = &raw.backup {
        known.step_ref(&name, step.get_ref(), src.at(step.span()));
    }
    let backup_when = backup_when_of(
        src,
        &name,
        raw.backup.is_some(),
        &raw.backup_when,
        (raw.backup_max_waiting, raw.backup_max_wait_s),
        errors,
    );
    let mut steps = BTreeMap::new();
    for (step_name, step) in raw.steps {
        let span = step.span();
        match action_of(src, &name, &step_name, step.into_inner(), known) {
            Ok(action) => {
                steps.insert(
                    step_name.clone(),
                    Step {
                        name: step_name,
                        action,
                        origin: src.at(span),
                    },
                );
            }
            Err(message) => errors.push(src.error(span, message)),
        }
    }
    Some(Entry {
        name,
        numbers,
        line,
        start: start.into_inner(),
        on_overload: raw.on_overload.map(Spanned::into_inner),
        backup: raw.backup.map(Spanned::into_inner),
        backup_when,
        steps,
        origin,
    })
}

/// The action of one step; every key must belong to it.
fn action_of(
    src: &Source,
    entry: &str,
    name: &str,
    s: RawStep,
    known: &mut Known,
) -> Result<Action, String> {
    let kinds: Vec<&str> = [
        ("play", s.play.is_some()),
        ("menu", s.menu.is_some()),
        ("schedule", s.schedule.is_some()),
        ("tags", s.tags.is_some()),
        ("queue", s.queue.is_some()),
        ("forward", s.forward.is_some()),
        ("hangup", s.hangup.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if let Some(RawHangup::Plain(false)) = s.hangup {
        return Err(format!(
            "step \"{name}\": `hangup = false` means nothing; write `hangup = true`, or \
             `hangup = \"prompt\"` to say something first"
        ));
    }
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "step \"{name}\" does nothing: give it one of play, menu, schedule, tags, \
                 queue, forward, hangup"
            ));
        }
        many => {
            return Err(format!(
                "step \"{name}\" does several things ({}): one step, one action; chain steps \
                 with `next`",
                many.join(", ")
            ));
        }
    };
    let allowed: &[&str] = match kind {
        "play" | "tags" => &["next"],
        "menu" => &["choices", "timeout_s", "retries", "default"],
        "schedule" => &["open", "closed"],
        "queue" => &[
            "priority",
            "max_wait_s",
            "overflow",
            "greeting",
            "hold",
            "reassurance",
            "reassurance_every_s",
        ],
        "forward" => &["failed"],
        _ => &[],
    };
    let present = [
        ("next", s.next.is_some()),
        ("choices", s.choices.is_some()),
        ("timeout_s", s.timeout_s.is_some()),
        ("retries", s.retries.is_some()),
        ("default", s.default.is_some()),
        ("open", s.open.is_some()),
        ("closed", s.closed.is_some()),
        ("priority", s.priority.is_some()),
        ("max_wait_s", s.max_wait_s.is_some()),
        ("overflow", s.overflow.is_some()),
        ("failed", s.failed.is_some()),
        ("greeting", s.greeting.is_some()),
        ("hold", s.hold.is_some()),
        ("reassurance", s.reassurance.is_some()),
        ("reassurance_every_s", s.reassurance_every_s.is_some()),
    ];
    if let Some((key, _)) = present.iter().find(|(k, p)| *p && !allowed.contains(k)) {
        return Err(format!(
            "step \"{name}\" is a {kind} step: `{key}` does not belong to it{}",
            if allowed.is_empty() {
                String::new()
            } else {
                format!(" (a {kind} step takes: {})", allowed.join(", "))
            }
        ));
    }
    // Steps named here, checked once the whole set is read.
    let mut named = Vec::new();
    let mut target = |key: &str, value: Option<Spanned<String>>| -> Result<String, String> {
        let v =
            value.ok_or_else(|| format!("{kind} step \"{name}\" needs `{key}` (a step name)"))?;
        named.push((v.get_ref().clone(), src.at(v.span())));
        Ok(v.into_inner())
    };
    let action = match kind {
        "play" => Action::Play {
            prompt: s.play.unwrap_or_default(),
            next: target("next", s.next)?,
        },
        "tags" => Action::Tag {
            tags: s.tags.unwrap_or_default(),
            next: target("next", s.next)?,
        },
        "menu" => {
            let mut choices = BTreeMap::new();
            for (key, step) in s.choices.unwrap_or_default() {
                let digit = match key.chars().collect::<Vec<_>>().as_slice() {
                    [d] if d.is_ascii_digit() || *d == '*' || *d == '#' => *d,
                    _ => {
                        return Err(format!(
                            "menu \"{name}\": choice \"{key}\" is not a phone key (0-9, * or #)"
                        ));
                    }
                };
                choices.insert(digit, target("choices", Some(step))?);
            }
            if choices.is_empty() {
                return Err(format!("menu \"{name}\" offers no choice: add `choices`"));
            }
            Action::Menu {
                prompt: s.menu.unwrap_or_default(),
                choices,
                timeout_s: s.timeout_s.unwrap_or(5),
                retries: s.retries.unwrap_or(2),
                default: target("default", s.default)?,
            }
        }
        "schedule" => {
            let schedule = s.schedule.expect("kind is schedule");
            known.schedule_ref(schedule.get_ref(), src.at(schedule.span()));
            Action::Time {
                schedule: schedule.into_inner(),
                open: target("open", s.open)?,
                closed: target("closed", s.closed)?,
            }
        }
        "queue" => {
            let queue = s.queue.expect("kind is queue");
            known.queue_ref(queue.get_ref(), src.at(queue.span()));
            let overflow = s
                .overflow
                .map(|o| target("overflow", Some(o)))
                .transpose()?;
            if s.max_wait_s.is_some() != overflow.is_some() {
                return Err(format!(
                    "queue step \"{name}\": `max_wait_s` and `overflow` go together (after how \
                     long, and where to)"
                ));
            }
            Action::Queue {
                queue: queue.into_inner(),
                priority: s.priority.unwrap_or(1),
                max_wait_s: s.max_wait_s,
                overflow,
                greeting: s.greeting,
                hold: s.hold,
                reassurance: s.reassurance,
                reassurance_every_s: s.reassurance_every_s.unwrap_or(30),
            }
        }
        "forward" => {
            let to = s.forward.expect("kind is forward");
            known.external_ref(to.get_ref(), src.at(to.span()));
            Action::Forward {
                to: to.into_inner(),
                failed: s.failed.map(|f| target("failed", Some(f))).transpose()?,
            }
        }
        _ => Action::Hangup {
            prompt: match s.hangup {
                Some(RawHangup::WithPrompt(p)) => Some(p),
                _ => None,
            },
        },
    };
    for (step, at) in named {
        known.step_ref(entry, &step, at);
    }
    Ok(action)
}

pub(super) fn place(o: &Origin) -> String {
    format!("{}:{}:{}", o.file.display(), o.line, o.column)
}

/// An entry's `backup_when` triggers, each a sentence when it cannot work: a trigger without
/// a `backup` step, an unknown one, or `threshold` without a limit.
fn backup_when_of(
    src: &Source,
    entry: &str,
    has_backup: bool,
    triggers: &[Spanned<String>],
    (max_waiting, max_wait_s): (Option<usize>, Option<u32>),
    errors: &mut Vec<PlanError>,
) -> BackupWhen {
    let mut when = BackupWhen::default();
    let mut threshold = false;
    for trigger in triggers {
        match trigger.get_ref().as_str() {
            "queue_full" => when.queue_full = true,
            "no_seat" => when.no_seat = true,
            "threshold" => threshold = true,
            other => errors.push(src.error(
                trigger.span(),
                format!(
                    "entry \"{entry}\": unknown backup_when \"{other}\" (queue_full, no_seat, \
                     threshold)"
                ),
            )),
        }
        if !has_backup {
            errors.push(src.error(
                trigger.span(),
                format!("entry \"{entry}\" has backup_when but no `backup` step to send calls to"),
            ));
        }
    }
    if threshold {
        when.max_waiting = max_waiting;
        when.max_wait_s = max_wait_s;
        if when.max_waiting.is_none() && when.max_wait_s.is_none() {
            let span = triggers.first().map(Spanned::span).unwrap_or_default();
            errors.push(src.error(
                span,
                format!(
                    "entry \"{entry}\": backup_when \"threshold\" needs backup_max_waiting or \
                     backup_max_wait_s"
                ),
            ));
        }
    }
    when
}
