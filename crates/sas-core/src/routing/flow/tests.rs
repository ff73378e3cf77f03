//! The interpreter on a small plan: schedule branches, menu keys, retries, default,
//! queue overflow, forward; each decision in the trace.

use super::*;
use crate::call::tests_support::load_plan;

const PLAN: &str = r#"
[queues.arm]
role = "arm"
[queues.psy]
role = "psy"
[external]
prevention_suicide = "3114"

[entries.sas]
numbers = ["116117"]
line = "sas"
start = "horaires"

[entries.sas.steps.horaires]
schedule = "sas_jour"
open = "accueil"
closed = "ferme"

[entries.sas.steps.accueil]
tags = { service = "sas" }
next = "menu"

[entries.sas.steps.menu]
menu = "menu"
choices = { "1" = "file", "2" = "psy" }
timeout_s = 4
retries = 1
default = "file"

[entries.sas.steps.file]
queue = "arm"
priority = 1

[entries.sas.steps.psy]
queue = "psy"
max_wait_s = 60
overflow = "vers_3114"

[entries.sas.steps.vers_3114]
forward = "prevention_suicide"

[entries.sas.steps.ferme]
hangup = "fermeture"
"#;

struct Fixed(bool);

impl Calendar for Fixed {
    fn decide(&self, schedule: &str, _at: EpochMillis) -> Option<(bool, String)> {
        (schedule == "sas_jour").then(|| (self.0, "test".into()))
    }
}

fn plan() -> Arc<PlanSet> {
    Arc::new(load_plan(PLAN, &["menu", "fermeture"], &["sas_jour"]).unwrap())
}

const OPEN: Fixed = Fixed(true);
const T: EpochMillis = 1_800_000_000_000;

fn menu_prompt() -> Instruction {
    Instruction::Play {
        prompt: "menu".into(),
        wait_key_s: Some(4),
    }
}

#[test]
fn open_hours_menu_key_two_then_psy_overflows_to_3114() {
    let (mut flow, first) = Flow::start(plan(), "sas", T, &OPEN).unwrap();
    assert_eq!(first, menu_prompt());
    assert_eq!(flow.tags()["service"], "sas");
    assert_eq!(
        flow.on_prompt_ended(T, &OPEN),
        None,
        "a menu waits for its key"
    );
    let queued = flow.on_digit('2', T, &OPEN).unwrap();
    assert!(
        matches!(queued, Instruction::Queue { ref queue, max_wait_s: Some(60), .. } if queue == "psy")
    );
    assert_eq!(
        flow.on_digit('1', T, &OPEN),
        None,
        "keys outside a menu are ignored"
    );
    assert_eq!(
        flow.on_queue_timeout(T, &OPEN),
        Some(Instruction::Forward {
            number: "3114".into()
        })
    );
    assert_eq!(
        flow.trace(),
        [
            "horaires: schedule sas_jour open (test) → accueil",
            "accueil: tags service=sas → menu",
            "menu: menu menu, waiting 4 s for a key",
            "menu: key 2 → psy",
            "psy: queue psy (priority 1), overflow after 60 s → vers_3114",
            "psy: no seat within 60 s → overflow to vers_3114",
            "vers_3114: forward to prevention_suicide (3114)",
        ]
    );
}

#[test]
fn wrong_keys_and_silence_use_the_retries_then_the_default() {
    let (mut flow, _) = Flow::start(plan(), "sas", T, &OPEN).unwrap();
    assert_eq!(
        flow.on_digit('7', T, &OPEN),
        Some(menu_prompt()),
        "asked again"
    );
    let fallback = flow.on_key_timeout(T, &OPEN).unwrap();
    assert!(matches!(fallback, Instruction::Queue { ref queue, .. } if queue == "arm"));
    assert!(
        flow.trace()
            .iter()
            .any(|l| l == "menu: no key, no retry left → file")
    );
}

#[test]
fn closed_hours_hang_up_after_the_closing_message() {
    let (flow, first) = Flow::start(plan(), "sas", T, &Fixed(false)).unwrap();
    assert_eq!(
        first,
        Instruction::HangUp {
            prompt: Some("fermeture".into())
        }
    );
    assert_eq!(
        flow.trace().last().unwrap(),
        "ferme: hang up after fermeture"
    );
    assert!(Flow::start(plan(), "nope", T, &OPEN).is_none());
}

#[test]
fn a_seat_dialling_starts_at_the_step_tagged_with_its_name() {
    let (flow, first) = Flow::dialled(plan(), "sas", "psy", "arm1", T, &OPEN).unwrap();
    assert!(matches!(first, Instruction::Queue { ref queue, .. } if queue == "psy"));
    assert_eq!(flow.tags()["from_seat"], "arm1");
    assert_eq!(flow.trace()[0], "dialled by arm1 to sas/psy");
    assert!(Flow::dialled(plan(), "nope", "psy", "arm1", T, &OPEN).is_none());
}

#[test]
fn a_full_queue_overflows_at_once_or_says_it_has_nowhere_to_go() {
    let (mut flow, _) = Flow::start(plan(), "sas", T, &OPEN).unwrap();
    flow.on_digit('2', T, &OPEN).unwrap();
    assert_eq!(
        flow.on_queue_full(T, &OPEN),
        Some(Instruction::Forward {
            number: "3114".into()
        }),
        "no wait for max_wait_s"
    );
    assert!(
        flow.trace()
            .contains(&"psy: queue psy full → overflow to vers_3114".to_string())
    );

    let (mut flow, _) = Flow::start(plan(), "sas", T, &OPEN).unwrap();
    flow.on_digit('1', T, &OPEN).unwrap();
    assert_eq!(
        flow.on_queue_full(T, &OPEN),
        None,
        "the arm step has no overflow"
    );
    assert_eq!(
        flow.trace().last().map(String::as_str),
        Some("file: queue arm full, no overflow: refused busy")
    );
    // Elsewhere than at a queue step, nothing happens.
    let (mut flow, _) = Flow::start(plan(), "sas", T, &OPEN).unwrap();
    assert_eq!(flow.on_queue_full(T, &OPEN), None);
}

#[test]
fn a_queue_nobody_can_answer_overflows_at_once_saying_why() {
    let (mut flow, _) = Flow::start(plan(), "sas", T, &OPEN).unwrap();
    flow.on_digit('2', T, &OPEN).unwrap();
    assert_eq!(
        flow.on_no_seat(T, &OPEN),
        Some(Instruction::Forward {
            number: "3114".into()
        })
    );
    let line = flow
        .trace()
        .iter()
        .find(|l| l.contains("no seat can answer"));
    assert!(
        line.is_some_and(|l| l.ends_with("→ overflow to vers_3114")),
        "{:?}",
        flow.trace()
    );
    // A step without an overflow has nothing to do.
    assert_eq!(flow.on_no_seat(T, &OPEN), None);
}
