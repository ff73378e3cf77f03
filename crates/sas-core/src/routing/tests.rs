//! Decision tables for the schedules: ordinary days, every kind of special day, both DST
//! change nights, regions, the midnight rule, and TOML parsing with its errors.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::*;

/// A wall-clock time in `tz` (not on a DST gap or overlap) as UTC.
fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn paris(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    at(chrono_tz::Europe::Paris, y, mo, d, h, mi)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    schedules: BTreeMap<String, Schedule>,
}

fn from_toml(text: &str) -> Result<BTreeMap<String, Schedule>, String> {
    toml::from_str::<File>(text)
        .map(|f| f.schedules)
        .map_err(|e| e.to_string())
}

fn one(text: &str) -> Schedule {
    from_toml(text).unwrap().into_values().next().unwrap()
}

#[test]
fn decision_table_2026() {
    /// What, local Paris time (month, day, hour, minute), open for sas_jour, pdsa and
    /// pdsa_samedi, words the sas_jour reason has.
    type Row = (&'static str, (u32, u32, u32, u32), [bool; 3], &'static str);
    #[rustfmt::skip]
    let table: &[Row] = &[
        ("weekday noon", (3, 11, 12, 0), [true, false, false], "mercredi 11 mars 2026 12:00 (Europe/Paris, UTC+01:00) : horaires du mercredi ; plages du jour : 08:00-20:00 ; 08:00-20:00 couvre 12:00 → ouvert"),
        ("weekday 21h", (3, 11, 21, 0), [false, true, true], "aucune ne couvre 21:00"),
        ("weekday 19:59", (3, 11, 19, 59), [true, false, false], "couvre 19:59"),
        ("weekday 20:00", (3, 11, 20, 0), [false, true, true], "→ fermé"),
        ("weekday 07:59", (3, 11, 7, 59), [false, true, true], "→ fermé"),
        ("saturday 11h", (3, 14, 11, 0), [true, false, false], "horaires du samedi ; plages du jour : 08:00-12:00"),
        ("saturday 13h", (3, 14, 13, 0), [false, false, true], "aucune ne couvre 13:00"),
        ("sunday", (3, 15, 10, 0), [false, true, true], "horaires du dimanche ; plages du jour : aucune"),
        ("easter monday", (4, 6, 10, 0), [false, true, true], "Lundi de Pâques, jour férié, règle jours fériés = fermé"),
        ("ascension", (5, 14, 10, 0), [false, true, true], "jeudi 14 mai 2026 10:00 (Europe/Paris, UTC+02:00) : Ascension, jour férié"),
        ("bridge friday", (5, 15, 10, 0), [false, false, true], "jour de pont (vendredi après Ascension), règle ponts = fermé"),
        ("whit monday", (5, 25, 10, 0), [false, true, true], "Lundi de Pentecôte"),
        ("bridge monday", (7, 13, 10, 0), [false, false, true], "jour de pont (lundi avant Fête nationale)"),
        ("14 july", (7, 14, 15, 0), [false, true, true], "Fête nationale, jour férié"),
        ("1 may saturday after", (5, 2, 9, 0), [false, false, true], "samedi après Fête du travail"),
        ("christmas 03h", (12, 25, 3, 0), [false, true, true], "vendredi 25 décembre 2026 03:00 (Europe/Paris, UTC+01:00) : Noël, jour férié, règle jours fériés = fermé ; plages du jour : aucune ; veille jeudi 24 décembre 2026 (horaires du jeudi) : aucune plage ne se prolonge jusqu'à 03:00 → fermé"),
        ("christmas 14h", (12, 25, 14, 0), [false, true, true], "Noël"),
    ];
    let names = ["sas_jour", "pdsa", "pdsa_samedi"];
    for (what, (mo, d, h, mi), want, words) in table {
        let t = paris(2026, *mo, *d, *h, *mi);
        for (name, open) in names.iter().zip(want) {
            let decision = builtin(name).unwrap().decide(t);
            assert_eq!(decision.open, *open, "{what}, {name}: {}", decision.reason);
        }
        let reason = builtin("sas_jour").unwrap().decide(t).reason;
        assert!(reason.contains(words), "{what}: {reason}");
    }
}

#[test]
fn pdsa_reasons_name_the_range_that_decided() {
    let pdsa = builtin("pdsa").unwrap();
    let d = pdsa.decide(paris(2026, 12, 25, 3, 0));
    assert_eq!(
        d.reason,
        "vendredi 25 décembre 2026 03:00 (Europe/Paris, UTC+01:00) : Noël, jour férié, règle \
         jours fériés = horaires du dimanche ; plages du jour : 20:00-08:00, 08:00-20:00 ; \
         aucune ne couvre 03:00 ; veille jeudi 24 décembre 2026 (horaires du jeudi) : \
         20:00-08:00 se prolonge après minuit et couvre 03:00 → ouvert"
    );
    let d = pdsa.decide(paris(2026, 12, 25, 14, 0));
    assert!(
        d.reason.ends_with("; 08:00-20:00 couvre 14:00 → ouvert"),
        "{}",
        d.reason
    );
    let d = pdsa.decide(paris(2026, 5, 1, 0, 30));
    assert!(
        d.reason.contains("vendredi 1er mai 2026 00:30"),
        "{}",
        d.reason
    );
}

fn night_only() -> Schedule {
    one(r#"
        [schedules.nuit]
        weekly = [ { days = "lun-dim", hours = "20:00-08:00" } ]
    "#)
}

/// Every `step` from `from` (inclusive) to `to` (exclusive), UTC.
fn instants(from: DateTime<Utc>, to: DateTime<Utc>, step: i64) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        out.push(t);
        t += Duration::minutes(step);
    }
    out
}

#[test]
fn a_night_range_stays_open_across_spring_forward() {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC. The night from Saturday
    // 20:00 CET (19:00 UTC) to Sunday 08:00 CEST (06:00 UTC) lasts 11 real hours.
    let s = night_only();
    let start = Utc.with_ymd_and_hms(2026, 3, 28, 19, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2026, 3, 29, 6, 0, 0).unwrap();
    for t in instants(start, end, 5) {
        assert!(s.decide(t).open, "{t}: {}", s.decide(t).reason);
    }
    assert!(!s.decide(start - Duration::minutes(1)).open);
    assert!(!s.decide(end).open);
    let jump = s.decide(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
    assert!(
        jump.reason
            .starts_with("dimanche 29 mars 2026 03:00 (Europe/Paris, UTC+02:00)"),
        "{}",
        jump.reason
    );
}

#[test]
fn a_night_range_stays_open_across_fall_back() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC. The night from Saturday
    // 20:00 CEST (18:00 UTC) to Sunday 08:00 CET (07:00 UTC) lasts 13 real hours.
    let s = night_only();
    let start = Utc.with_ymd_and_hms(2026, 10, 24, 18, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2026, 10, 25, 7, 0, 0).unwrap();
    for t in instants(start, end, 5) {
        assert!(s.decide(t).open, "{t}: {}", s.decide(t).reason);
    }
    assert!(!s.decide(start - Duration::minutes(1)).open);
    assert!(!s.decide(end).open);
    // 02:30 happens twice; both are open and the offset tells them apart.
    let first = s.decide(Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
    let second = s.decide(Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap());
    assert!(
        first.reason.contains("02:30 (Europe/Paris, UTC+02:00)"),
        "{}",
        first.reason
    );
    assert!(
        second.reason.contains("02:30 (Europe/Paris, UTC+01:00)"),
        "{}",
        second.reason
    );
}

#[test]
fn a_range_ending_in_the_repeated_hour_covers_both() {
    let s = one(r#"
        [schedules.x]
        weekly = [ { days = "sat", hours = "22:00-02:30" } ]
    "#);
    for (h, mi, open) in [
        (0, 0, true),
        (0, 29, true),
        (1, 0, true),
        (1, 29, true),
        (1, 30, false),
    ] {
        let t = Utc.with_ymd_and_hms(2026, 10, 25, h, mi, 0).unwrap();
        assert_eq!(s.decide(t).open, open, "{t}: {}", s.decide(t).reason);
    }
}

#[test]
fn the_night_belongs_to_the_day_it_starts_on() {
    let s = one(r#"
        [schedules.nuits_ouvrees]
        holidays = "closed"
        weekly = [ { days = "mon-fri", hours = "20:00-08:00" } ]
    "#);
    // Monday night covers Tuesday 03:00.
    assert!(s.decide(paris(2026, 3, 10, 3, 0)).open);
    // Wednesday night before Ascension is an ordinary night, even on the holiday's morning.
    let d = s.decide(paris(2026, 5, 14, 3, 0));
    assert!(d.open, "{}", d.reason);
    assert!(
        d.reason
            .contains("veille mercredi 13 mai 2026 (horaires du mercredi)")
    );
    // The night that starts on Ascension is closed, until Friday 08:00.
    assert!(!s.decide(paris(2026, 5, 14, 22, 0)).open);
    let d = s.decide(paris(2026, 5, 15, 3, 0));
    assert!(!d.open);
    assert!(
        d.reason
            .contains("veille jeudi 14 mai 2026 (Ascension, jour férié"),
        "{}",
        d.reason
    );
    // Friday night runs into Saturday even though Saturday has no ranges.
    assert!(s.decide(paris(2026, 5, 16, 7, 0)).open);
}

#[test]
fn good_friday_differs_between_regions() {
    let t = paris(2026, 4, 3, 10, 0);
    let metropole = builtin("sas_jour").unwrap();
    let alsace = metropole.clone().with_region(Region::AlsaceMoselle);
    assert!(metropole.decide(t).open);
    let d = alsace.decide(t);
    assert!(!d.open);
    assert!(
        d.reason.contains("Vendredi saint, jour férié"),
        "{}",
        d.reason
    );
    // 26 December is a holiday there, and therefore not a bridge day.
    let pdsa = builtin("pdsa_samedi")
        .unwrap()
        .with_region(Region::AlsaceMoselle);
    assert!(
        pdsa.decide(paris(2026, 12, 26, 10, 0))
            .reason
            .contains("Saint-Étienne")
    );
}

#[test]
fn reunion_reads_its_own_clock_and_holiday() {
    let reunion = chrono_tz::Indian::Reunion;
    let pdsa = builtin("pdsa").unwrap().with_region(Region::Reunion);
    let d = pdsa.decide(at(reunion, 2026, 12, 20, 10, 0));
    assert!(d.open);
    assert!(
        d.reason.starts_with("dimanche 20 décembre 2026 10:00 (Indian/Reunion, UTC+04:00) : Abolition de l'esclavage, jour férié"),
        "{}",
        d.reason
    );
    // In 2027, 20 December is a Monday: open in Paris, closed in Réunion.
    let sas = builtin("sas_jour").unwrap();
    assert!(sas.decide(paris(2027, 12, 20, 10, 0)).open);
    let sas_reunion = sas.with_region(Region::Reunion);
    assert!(!sas_reunion.decide(at(reunion, 2027, 12, 20, 10, 0)).open);
    assert!(sas_reunion.decide(at(reunion, 2027, 12, 21, 10, 0)).open);
}

const SAS_TOML: &str = r#"
[schedules.sas_jour]
region = "metropole"
holidays = "closed"           # closed | open | normal | sunday
bridge_days = "closed"
weekly = [ { days = "mon-fri", hours = "08:00-20:00" }, { days = "sat", hours = "08:00-12:00" } ]
closures = [ "2026-12-24 14:00 .. 2026-12-24 20:00" ]
open = [ "2026-12-31 20:00 .. 2027-01-01 02:00", "2026-12-24 16:00 .. 2026-12-24 17:00" ]
"#;

#[test]
fn toml_schedule_matches_the_builtin_and_closures_override() {
    let s = one(SAS_TOML);
    let builtin = builtin("sas_jour").unwrap();
    assert_eq!(s.weekly, builtin.weekly);
    assert_eq!(
        (s.holidays, s.bridge_days),
        (builtin.holidays, builtin.bridge_days)
    );
    assert!(s.decide(paris(2026, 12, 24, 13, 59)).open);
    let d = s.decide(paris(2026, 12, 24, 14, 0));
    assert_eq!(
        d.reason,
        "jeudi 24 décembre 2026 14:00 (Europe/Paris, UTC+01:00) : fermeture ponctuelle \
         2026-12-24 14:00 .. 2026-12-24 20:00 → fermé"
    );
    // The closure wins over an opening inside it.
    assert!(!s.decide(paris(2026, 12, 24, 16, 30)).open);
    let d = s.decide(paris(2026, 12, 31, 23, 0));
    assert!(
        d.open && d.reason.contains("ouverture ponctuelle 2026-12-31 20:00"),
        "{}",
        d.reason
    );
    // New Year's Day 01:00 is in the opening although it is a holiday.
    assert!(s.decide(paris(2027, 1, 1, 1, 0)).open);
    assert!(!s.decide(paris(2027, 1, 1, 2, 0)).open);
}

#[test]
fn listed_bridge_dates() {
    let s = one(r#"
        [schedules.x]
        bridge_days = "open"
        bridge_dates = [ "2026-11-10" ]
        bridge_dates_only = true
        weekly = [ { days = "mon-fri", hours = "08:00-12:00" } ]
    "#);
    let d = s.decide(paris(2026, 11, 10, 15, 0));
    assert!(d.open);
    assert!(
        d.reason.contains(
            "jour de pont listé dans bridge_dates, règle ponts = ouvert toute la journée"
        )
    );
    // Computed bridges are ignored with bridge_dates_only.
    assert!(!s.decide(paris(2026, 5, 15, 15, 0)).open);
}

#[test]
fn toml_errors_name_the_bad_value() {
    for (body, words) in [
        (
            r#"weekly = [ { days = "mon-fri", hours = "08:00-25:00" } ]"#,
            "impossible time \"25:00\"",
        ),
        (
            r#"weekly = [ { days = "mon-fri", hours = "08:60-20:00" } ]"#,
            "impossible time \"08:60\"",
        ),
        (
            r#"weekly = [ { days = "mon-fri", hours = "10:00-10:00" } ]"#,
            "empty hour range \"10:00-10:00\"",
        ),
        (
            r#"weekly = [ { days = "lun-vem", hours = "08:00-20:00" } ]"#,
            "unknown day \"lun-vem\"",
        ),
        (
            r#"weekly = [ { days = "mon", hour = "08:00-20:00" } ]"#,
            "unknown field `hour`",
        ),
        (r#"holidays = "sundays""#, "unknown day rule \"sundays\""),
        (r#"region = "corse""#, "unknown variant `corse`"),
        (
            r#"timezone = "Europe/Pariss""#,
            "unknown time zone \"Europe/Pariss\"",
        ),
        (
            r#"closures = [ "2026-12-24 20:00 .. 2026-12-24 14:00" ]"#,
            "ends before it starts",
        ),
        (r#"open = [ "24/12/2026" ]"#, "bad date \"24/12/2026\""),
        (
            r#"bridge_dates = [ "2026-11-10" ]"#,
            "bridge_dates are listed but bridge_days is \"normal\"",
        ),
        (r#"colour = "blue""#, "unknown field `colour`"),
    ] {
        let text = format!("[schedules.x]\n{body}\n");
        let err = from_toml(&text).unwrap_err();
        assert!(err.contains(words), "{body}: {err}");
    }
}

#[test]
fn decide_never_panics_at_the_ends_of_time() {
    let s = builtin("pdsa_samedi").unwrap();
    for t in [
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        DateTime::UNIX_EPOCH,
    ] {
        let _ = s.decide(t);
    }
}
