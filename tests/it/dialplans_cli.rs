//! The shipped dial plans through the CLI, as an admin uses it: `simulate` at a table of
//! instants (weekdays, nights, week-ends, public holidays, both clock changes) and
//! `check` refusing a broken copy with file, line and column.

use std::path::Path;
use std::process::{Command, Output};

fn router(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn simulate(to: &str, at: &str, digits: &str) -> String {
    let out = router(&["simulate", "--to", to, "--at", at, "--digits", digits]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (instant in Paris, what the 116 117 "care" choice is tagged)
const TABLE: &[(&str, &str, &str)] = &[
    ("weekday noon", "2026-11-23T12:00", "sas"),
    ("weekday 21h", "2026-11-23T21:00", "pdsa"),
    ("weekday 7h59", "2026-11-24T07:59", "pdsa"),
    ("Saturday 11h", "2026-11-28T11:00", "sas"),
    ("Saturday 13h", "2026-11-28T13:00", "pdsa"),
    ("Sunday noon", "2026-11-29T12:00", "pdsa"),
    ("Easter Monday 2026", "2026-04-06T12:00", "pdsa"),
    ("Ascension 2026", "2026-05-14T10:00", "pdsa"),
    (
        "Friday after Ascension (bridge day)",
        "2026-05-15T10:00",
        "pdsa",
    ),
    ("Whit Monday 2026", "2026-05-25T12:00", "pdsa"),
    ("14 July", "2026-07-14T12:00", "pdsa"),
    ("25 December", "2026-12-25T12:00", "pdsa"),
    ("spring-forward night", "2026-03-29T03:30", "pdsa"),
    ("autumn-back night", "2026-10-25T02:30", "pdsa"),
    (
        "the Monday after the spring change",
        "2026-03-30T09:00",
        "sas",
    ),
    (
        "Good Friday (not a holiday outside Alsace-Moselle)",
        "2026-04-03T12:00",
        "sas",
    ),
];

#[test]
fn the_116117_is_sas_by_day_and_pdsa_otherwise() {
    for (what, at, regulation) in TABLE {
        let out = simulate("116117", at, "1");
        assert!(
            out.contains(&format!("regulation={regulation}")),
            "{what} ({at}): expected {regulation}\n{out}"
        );
        assert!(out.ends_with("→ waits in queue arm\n"), "{what}: {out}");
    }
}

#[test]
fn the_15_always_goes_to_the_arm_queue_first() {
    for (what, at, _) in TABLE {
        let out = simulate("15", at, "");
        assert!(out.contains("entry samu"), "{what}: {out}");
        assert!(out.ends_with("→ waits in queue arm\n"), "{what}: {out}");
        assert!(
            out.contains("forward to centre_secours"),
            "{what}: overflow shown\n{out}"
        );
    }
}

/// `simulate` shows an entry's backup centre step and what sends calls there: the line
/// switch, and the automatic triggers (the shipped 15: no ARM logged in and unpaused).
#[test]
fn simulate_shows_the_backup_step_and_its_triggers() {
    let samu = simulate("15", "2026-11-24T10:00", "");
    for line in [
        "  backup: backup step secours: forward to centre_secours (+33199001515) through the trunk\n",
        "  backup: while line samu is switched (sas-router lines switch samu): every new call, at once\n",
        "  backup: automatically, as a call reaches a queue, when no seat of the queue's role is logged in and unpaused (no_seat)\n",
    ] {
        assert!(samu.contains(line), "{line}\n{samu}");
    }
    let sas = simulate("116117", "2026-11-24T10:00", "1");
    assert!(
        sas.contains("  backup: automatically: never (no backup_when)\n"),
        "{sas}"
    );
    // An internal number starts no line: nothing to switch.
    assert!(!simulate("2001", "2026-11-24T10:00", "").contains("backup:"));
}

#[test]
fn sas_psy_in_hours_at_night_and_in_danger() {
    let day = simulate("116117", "2026-11-24T10:00", "2");
    assert!(day.ends_with("→ waits in queue psy\n"), "{day}");
    assert!(day.contains("(if no seat answers) appel_3114: forward to prevention_suicide (3114)"));
    let night = simulate("116117", "2026-11-24T23:00", "2");
    assert!(night.ends_with("→ forwarded to 3114\n"), "{night}");
    let danger = simulate("116117", "2026-11-24T23:00", "21");
    assert!(danger.ends_with("→ waits in queue amu\n"), "{danger}");
    let nothing = simulate("116117", "2026-11-24T10:00", "");
    assert!(
        nothing.contains("no key, no retry left → soins"),
        "{nothing}"
    );
}

#[test]
fn the_escalation_numbers_lead_to_the_regulators_and_sas_psy_follows_its_hours() {
    for (number, queue) in [
        ("2001", "amu"),
        ("2002", "liberal"),
        ("2003", "osnp"),
        ("2004", "psy"),
    ] {
        let out = simulate(number, "2026-11-24T10:00", "");
        assert!(out.contains("(internal number"), "{out}");
        assert!(
            out.ends_with(&format!("→ waits in queue {queue}\n")),
            "{out}"
        );
    }
    // Outside SAS Psy hours, an ARM's transfer to psy goes straight to the 3114.
    let night = simulate("2004", "2026-11-24T23:00", "");
    assert!(night.ends_with("→ forwarded to 3114\n"), "{night}");
    let direct = simulate("3114", "2026-11-24T10:00", "");
    assert!(direct.ends_with("→ forwarded to 3114\n"), "{direct}");
}

#[test]
fn alsace_moselle_good_friday_is_a_holiday_there() {
    let dir = copy_of_shipped("alsace");
    let schedules = dir.join("schedules.toml");
    let text = std::fs::read_to_string(&schedules).unwrap()
        + "\n[schedules.sas_jour_57]\nregion = \"alsace_moselle\"\nholidays = \"closed\"\n\
           weekly = [{ days = \"mon-fri\", hours = \"08:00-20:00\" }]\n";
    std::fs::write(&schedules, text).unwrap();
    let sas = dir.join("sas.toml");
    let text = std::fs::read_to_string(&sas)
        .unwrap()
        .replace("schedule = \"sas_jour\"", "schedule = \"sas_jour_57\"");
    std::fs::write(&sas, text).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let out = router(&[
        "simulate",
        "--to",
        "116117",
        "--at",
        "2026-04-03T12:00",
        "--digits",
        "1",
        "--dir",
        dir_arg,
    ]);
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.contains("Vendredi saint") && out.contains("regulation=pdsa"),
        "{out}"
    );
}

#[test]
fn check_accepts_the_shipped_plans_and_refuses_a_typo_with_its_place() {
    let ok = router(&["check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = copy_of_shipped("typo");
    let samu = dir.join("samu.toml");
    let text = std::fs::read_to_string(&samu)
        .unwrap()
        .replace("overflow = \"secours\"", "overflow = \"secour\"");
    std::fs::write(&samu, text).unwrap();
    let out = router(&["check", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().next().unwrap();
    assert!(line.ends_with("samu.toml:21:12: entry \"samu\" has no step named \"secour\" (known: file_arm, secours)"), "{stderr}");
    assert!(stderr.contains("nothing changed"), "{stderr}");
}

/// The shipped dial plans copied to a fresh directory (prompts stay where the config says).
fn copy_of_shipped(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sas-plans-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// The shipped plans plus one file of `text`.
fn shipped_with(name: &str, file: &str, text: &str) -> std::path::PathBuf {
    let dir = copy_of_shipped(name);
    std::fs::write(dir.join(file), text).unwrap();
    dir
}

/// `simulate` on the plans of `dir`: its output, or its error.
fn simulate_in(dir: &Path, to: &str, at: &str) -> Result<String, String> {
    let dir = dir.to_str().unwrap();
    let out = router(&["simulate", "--to", to, "--at", at, "--dir", dir]);
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// `check` on the plans of `dir`: success and what it wrote on standard error.
fn check_in(dir: &Path) -> (bool, String) {
    let out = router(&["check", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stderr)
}

#[test]
fn redefining_a_built_in_schedule_is_said_by_check() {
    let hours =
        "[schedules.sas_jour]\nweekly = [{ days = \"mon-fri\", hours = \"09:00-17:00\" }]\n";
    let dir = shipped_with("redefine", "local.toml", hours);
    let (ok, stderr) = check_in(&dir);
    assert!(ok, "still valid: {stderr}");
    assert!(
        stderr.contains("local.toml:1:1: schedule \"sas_jour\" replaces the built-in one"),
        "{stderr}"
    );
    // And it is what calls follow: 116 117 on a Monday at 18:00 is now PDSA.
    let shipped = simulate("116117", "2026-12-07T18:00", "");
    assert!(shipped.contains("→ entry sas"), "{shipped}");
    let local = simulate_in(&dir, "116117", "2026-12-07T18:00").unwrap();
    assert_ne!(shipped, local, "the redefined hours apply");
}

#[test]
fn a_local_public_holiday_closes_sas_hours_and_opens_pdsa() {
    // Friday 4 June 2027, 10:00: an ordinary working day, SAS hours.
    let before = simulate("116117", "2027-06-04T10:00", "");
    let holiday = "# Fête locale\nlocal_holidays = [\"2027-06-04\"]\n";
    let dir = shipped_with("local-holiday", "local.toml", holiday);
    let after = simulate_in(&dir, "116117", "2027-06-04T10:00").unwrap();
    assert!(after.contains("jour férié local"), "{after}");
    assert_ne!(before, after, "{before}\n{after}");
    let dir = shipped_with(
        "bad-holiday",
        "local.toml",
        "local_holidays = [\"2027-13-04\"]\n",
    );
    let (ok, stderr) = check_in(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("local.toml:1:19: local_holidays"),
        "{stderr}"
    );
}

#[test]
fn a_step_written_under_another_files_entry_is_explained() {
    let step = "[entries.samu.steps.extra]\nhangup = true\n";
    let dir = shipped_with("foreign-step", "extra.toml", step);
    let (ok, stderr) = check_in(&dir);
    assert!(!ok);
    assert!(
        stderr.contains("entry \"samu\" has steps here but no numbers, line or start"),
        "{stderr}"
    );
    assert!(
        stderr.contains("add these steps to the file that defines"),
        "{stderr}"
    );
    assert!(!stderr.contains("borrowed string"), "{stderr}");
}
