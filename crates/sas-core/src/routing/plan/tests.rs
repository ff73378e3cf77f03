//! Dial plan loading and validation: a valid set, and one rejection per rule, each located.

use super::*;

const PROMPTS: &[&str] = &[
    "accueil-15",
    "accueil-116117",
    "menu-116117",
    "musique-attente",
    "fermeture",
];
const SCHEDULES: &[&str] = &["pdsa", "sas_jour"];

const COMMON: &str = r#"
[queues.arm]
role = "arm"

[queues.psy]
role = "psy"

[external]
centre_secours = "+33387000000"
prevention_suicide = "3114"
"#;

const SAMU: &str = r#"
[entries.samu]
numbers = ["15", "+3315"]
line = "samu"
start = "accueil"

[entries.samu.steps.accueil]
play = "accueil-15"
next = "file"

[entries.samu.steps.file]
queue = "arm"
priority = 0
max_wait_s = 120
overflow = "secours"
hold = "musique-attente"

[entries.samu.steps.secours]
forward = "centre_secours"
"#;

const SAS: &str = r#"
[entries.sas]
numbers = ["116117"]
line = "sas"
start = "horaires"

[entries.sas.steps.horaires]
schedule = "sas_jour"
open = "menu"
closed = "menu"

[entries.sas.steps.menu]
menu = "menu-116117"
choices = { "1" = "file", "2" = "psy" }
timeout_s = 5
retries = 2
default = "file"

[entries.sas.steps.file]
queue = "arm"

[entries.sas.steps.psy]
queue = "psy"
max_wait_s = 60
overflow = "vers_3114"

[entries.sas.steps.vers_3114]
forward = "prevention_suicide"
"#;

fn files(texts: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    texts
        .iter()
        .map(|(name, text)| (PathBuf::from(format!("dialplans/{name}")), text.to_string()))
        .collect()
}

fn load(texts: &[(&str, &str)]) -> Result<PlanSet, Vec<PlanError>> {
    load_texts(files(texts), PROMPTS, SCHEDULES)
}

/// The single error of an invalid set, as displayed.
fn refused(texts: &[(&str, &str)]) -> String {
    match load(texts) {
        Ok(_) => panic!("accepted"),
        Err(errors) => {
            assert_eq!(errors.len(), 1, "{errors:#?}");
            errors[0].to_string()
        }
    }
}

#[test]
fn a_valid_set_loads_with_normalised_numbers() {
    let set = load(&[
        ("common.toml", COMMON),
        ("samu.toml", SAMU),
        ("sas.toml", SAS),
    ])
    .unwrap();
    let samu = &set.entries["samu"];
    assert_eq!(samu.numbers, vec!["15", "15"]);
    assert_eq!(samu.start, "accueil");
    assert!(matches!(
        &samu.steps["file"].action,
        Action::Queue { priority: 0, max_wait_s: Some(120), overflow: Some(o), .. } if o == "secours"
    ));
    let Action::Menu {
        choices,
        default,
        retries,
        ..
    } = &set.entries["sas"].steps["menu"].action
    else {
        panic!("menu");
    };
    assert_eq!(choices[&'2'], "psy");
    assert_eq!((default.as_str(), *retries), ("file", 2));
    assert_eq!(
        samu.steps["file"].origin.line, 11,
        "the step's table header"
    );
    assert_eq!(set.external["prevention_suicide"], "3114");
}

#[test]
fn syntax_errors_give_file_line_and_column() {
    let e = refused(&[(
        "samu.toml",
        "[entries.samu]\nnumbers = [\"15\"\nline = \"samu\"\n",
    )]);
    assert!(e.starts_with("dialplans/samu.toml:3:1: "), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    let e = refused(&[("x.toml", "[entries.samu]\nnumbres = [\"15\"]\n")]);
    assert!(e.starts_with("dialplans/x.toml:2:1: "), "{e}");
    assert!(e.contains("numbres"), "{e}");
}

#[test]
fn unknown_step_prompt_queue_and_schedule_are_named() {
    let e = refused(&[
        ("c.toml", COMMON),
        (
            "s.toml",
            &SAMU.replace("next = \"file\"", "next = \"fille\""),
        ),
    ]);
    assert!(e.starts_with("dialplans/s.toml:9:8: "), "{e}");
    assert!(e.contains("no step named \"fille\""), "{e}");
    let e = refused(&[
        ("c.toml", COMMON),
        (
            "s.toml",
            &SAMU.replace("queue = \"arm\"", "queue = \"amu\""),
        ),
    ]);
    assert!(
        e.contains("no queue named \"amu\"") && e.contains("known: arm, psy"),
        "{e}"
    );
    let e = refused(&[
        ("c.toml", COMMON),
        ("s.toml", &SAS.replace("\"sas_jour\"", "\"sas-jour\"")),
    ]);
    assert!(e.contains("no schedule named \"sas-jour\""), "{e}");
}

#[test]
fn two_entries_cannot_claim_one_number() {
    let other = SAMU
        .replace("entries.samu", "entries.samu_bis")
        .replace("\"15\", \"+3315\"", "\"0033 15\"");
    let e = refused(&[("c.toml", COMMON), ("a.toml", SAMU), ("b.toml", &other)]);
    assert!(e.starts_with("dialplans/b.toml:"), "{e}");
    assert!(
        e.contains("number 15 is already claimed by entry \"samu\" at dialplans/a.toml:3:"),
        "{e}"
    );
}

#[test]
fn forwards_only_to_listed_external_numbers() {
    let e = refused(&[
        ("c.toml", COMMON),
        (
            "s.toml",
            &SAMU.replace("\"centre_secours\"", "\"0899123456\""),
        ),
    ]);
    assert!(e.contains("\"0899123456\" is not in [external]"), "{e}");
    let bad = COMMON.replace("\"3114\"", "\"31 14; drop\"");
    let e = refused(&[("c.toml", &bad)]);
    assert!(e.contains("must be digits"), "{e}");
}

#[test]
fn unreachable_steps_and_spinning_loops_are_refused() {
    let orphan = format!("{SAMU}\n[entries.samu.steps.oubli]\nhangup = \"fermeture\"\n");
    let e = refused(&[("c.toml", COMMON), ("s.toml", &orphan)]);
    assert!(
        e.contains("step \"oubli\" of entry \"samu\" is never reached"),
        "{e}"
    );
    let spin = r#"
[entries.boucle]
numbers = ["3000"]
line = "test"
start = "a"
[entries.boucle.steps.a]
tags = { motif = "x" }
next = "b"
[entries.boucle.steps.b]
play = "fermeture"
next = "a"
"#;
    let e = refused(&[("c.toml", COMMON), ("b.toml", spin)]);
    assert!(
        e.contains("loops without ever waiting for the caller: a → b → a"),
        "{e}"
    );
    // A menu that asks again is a loop that waits: fine.
    let ask_again = r#"
[entries.menu]
numbers = ["3001"]
line = "test"
start = "m"
[entries.menu.steps.m]
menu = "menu-116117"
choices = { "9" = "encore" }
default = "fin"
[entries.menu.steps.encore]
play = "menu-116117"
next = "m"
[entries.menu.steps.fin]
hangup = true
"#;
    load(&[("c.toml", COMMON), ("m.toml", ask_again)]).unwrap();
}

#[test]
fn a_step_does_one_thing_with_its_own_keys() {
    let two = SAMU.replace(
        "play = \"accueil-15\"",
        "play = \"accueil-15\"\nqueue = \"arm\"",
    );
    let e = refused(&[("c.toml", COMMON), ("s.toml", &two)]);
    assert!(e.contains("does several things (play, queue)"), "{e}");
    let stray = SAMU.replace(
        "forward = \"centre_secours\"",
        "forward = \"centre_secours\"\nnext = \"file\"",
    );
    let e = refused(&[("c.toml", COMMON), ("s.toml", &stray)]);
    assert!(
        e.contains("is a forward step: `next` does not belong to it"),
        "{e}"
    );
    let half = SAMU.replace("overflow = \"secours\"\n", "");
    let errors = load(&[("c.toml", COMMON), ("s.toml", &half)]).unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("`max_wait_s` and `overflow` go together"),
        "{errors:?}"
    );
    let key = SAS.replace("\"2\" = \"psy\"", "\"22\" = \"psy\"");
    let e = refused(&[("c.toml", COMMON), ("s.toml", &key)]);
    assert!(e.contains("choice \"22\" is not a phone key"), "{e}");
}

/// A prompt with no file does not stop the set (the 15 must be answered): it is listed,
/// with its place, for the log, the metric and `check`.
#[test]
fn a_prompt_without_a_file_is_reported_not_refused() {
    let typo = SAMU.replace("accueil-15\"", "acceuil-15\"");
    let set = load(&[("c.toml", COMMON), ("s.toml", &typo)]).unwrap();
    assert_eq!(set.missing_prompts.len(), 1);
    let missing = &set.missing_prompts[0];
    assert_eq!(
        (
            missing.prompt.as_str(),
            missing.entry.as_str(),
            missing.step.as_str()
        ),
        ("acceuil-15", "samu", "accueil")
    );
    assert_eq!(
        missing.to_string(),
        "dialplans/s.toml:7:1: step \"accueil\" of entry \"samu\" plays \"acceuil-15\", but \
         there is no prompt file acceuil-15.wav: callers hear silence in its place"
    );
    let ok = load(&[("c.toml", COMMON), ("s.toml", SAMU)]).unwrap();
    assert!(ok.missing_prompts.is_empty());
}

#[test]
fn every_problem_is_reported_at_once() {
    let broken = SAMU
        .replace("next = \"file\"", "next = \"fille\"")
        .replace("\"centre_secours\"", "\"inconnu\"");
    let errors = load(&[("c.toml", COMMON), ("s.toml", &broken)]).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn impossible_times_in_a_schedule_are_refused_with_their_place() {
    let bad = r#"
[schedules.nuit]
region = "metropole"
weekly = [{ days = "lun-ven", hours = "20:00-25:00" }]
"#;
    let e = refused(&[("h.toml", bad)]);
    assert!(
        e.starts_with("dialplans/h.toml:2:1: schedule \"nuit\": "),
        "{e}"
    );
    assert!(e.contains("25:00"), "{e}");
}

#[test]
fn on_overload_names_a_step_which_counts_as_reachable() {
    let with = |step: &str| {
        SAMU.replace(
            "start = \"accueil\"\n",
            &format!("start = \"accueil\"\non_overload = \"{step}\"\n"),
        ) + "\n[entries.samu.steps.sature]\nforward = \"centre_secours\"\n"
    };
    let set = load(&[("c.toml", COMMON), ("s.toml", &with("sature"))]).unwrap();
    assert_eq!(set.entries["samu"].on_overload.as_deref(), Some("sature"));
    let e = refused(&[("c.toml", COMMON), ("s.toml", &with("sautre"))]);
    assert!(e.contains("no step named \"sautre\""), "{e}");
}
