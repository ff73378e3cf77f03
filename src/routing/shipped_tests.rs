//! The shipped dial plans (`dialplans/`), read from disk: they load and validate, and the
//! simulator walks them as the admins expect. Here rather than in the core, which reads no
//! files.

use std::sync::Arc;

use crate::routing::BUILTIN_NAMES;
use crate::routing::plan::PlanSet;
use crate::routing::simulate::{Simulation, parse_instant, simulate};

#[test]
fn the_shipped_plans_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    let (prompts, errors) = crate::media::prompts::load_dir(&dir.join("prompts"));
    assert!(errors.is_empty(), "{errors:?}");
    let set = crate::routing::files::load_dir(
        &dir,
        &prompts.names(),
        &["sas_jour", "pdsa", "pdsa_samedi"],
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert_eq!(set.entries["samu"].numbers, vec!["15"]);
    assert_eq!(set.entries["sas"].numbers, vec!["116117"]);
    assert_eq!(set.internal["amu"].number, "2001");
}

fn shipped() -> Arc<PlanSet> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    let (prompts, _) = crate::media::prompts::load_dir(&dir.join("prompts"));
    Arc::new(crate::routing::files::load_dir(&dir, &prompts.names(), &BUILTIN_NAMES).unwrap())
}

fn run(number: &str, at: &str, digits: &str) -> Simulation {
    simulate(shipped(), number, parse_instant(at).unwrap(), digits).unwrap()
}

#[test]
fn instants_are_paris_time_unless_an_offset_is_given() {
    let winter = parse_instant("2026-12-25T03:00").unwrap();
    assert_eq!(winter, parse_instant("2026-12-25T02:00:00Z").unwrap());
    let summer = parse_instant("2026-07-14 12:00").unwrap();
    assert_eq!(summer, parse_instant("2026-07-14T10:00:00Z").unwrap());
    assert!(
        parse_instant("2026-03-29T02:30")
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(parse_instant("demain").is_err());
}

#[test]
fn the_15_queues_for_an_arm_and_overflows_to_the_backup_centre() {
    let s = run("15", "2026-11-23T12:00", "");
    assert_eq!(s.entry, "samu");
    assert_eq!(s.outcome, "waits in queue arm");
    assert!(
        s.steps
            .last()
            .unwrap()
            .contains("forward to centre_secours"),
        "{:#?}",
        s.steps
    );
}

#[test]
fn christmas_night_on_the_116117_is_pdsa() {
    let s = run("116117", "2026-12-25T03:00", "1");
    assert_eq!(s.outcome, "waits in queue arm");
    let schedule = s.steps.iter().find(|l| l.starts_with("soins:")).unwrap();
    assert!(
        schedule.contains("closed") && schedule.contains("Noël"),
        "{schedule}"
    );
    assert!(s.steps.iter().any(|l| l.contains("regulation=pdsa")));
}

#[test]
fn sas_psy_by_night_goes_to_the_3114_and_danger_to_the_amu() {
    let s = run("+33116117", "2026-11-24T23:30", "2");
    assert_eq!(s.outcome, "forwarded to 3114", "{:#?}", s.steps);
    let s = run("116117", "2026-11-24T23:30", "21");
    assert_eq!(s.outcome, "waits in queue amu", "{:#?}", s.steps);
    let s = run("116117", "2026-11-24T10:00", "2");
    assert_eq!(s.outcome, "waits in queue psy");
    assert!(
        s.steps
            .last()
            .unwrap()
            .contains("forward to prevention_suicide")
    );
}

#[test]
fn unknown_numbers_are_refused() {
    let err = simulate(shipped(), "17", 0, "").unwrap_err();
    assert!(err.contains("no entry answers 17"), "{err}");
}
