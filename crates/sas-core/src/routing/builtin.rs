//! The schedules that ship with sas-router, usable by name in dial plans: the PDSA hours of
//! article R6315-1 of the Code de la santé publique, and the SAS daytime hours.
//!
//! - `pdsa`: every night 20:00-08:00 (R6315-1 1°), Sundays and public holidays 08:00-20:00
//!   (2°) — so Sundays and holidays are covered day and night.
//! - `pdsa_samedi`: `pdsa` plus the optional periods of 3°: Saturday from 12:00, and bridge
//!   days (Monday before a holiday, Friday and Saturday after one) as Sundays.
//! - `sas_jour`: Monday-Friday 08:00-20:00 and Saturday 08:00-12:00, closed on public
//!   holidays and bridge days: exactly the hours `pdsa_samedi` leaves.
//!
//! All three are for metropolitan France; [`Schedule::with_region`] moves one elsewhere.

use chrono::Weekday;

use super::holidays::Region;
use super::parse::{DayRule, DaySet, HourRange};
use super::schedule::{Schedule, WeeklyRule};

/// The names [`builtin`] knows.
pub const BUILTIN_NAMES: [&str; 3] = ["pdsa", "pdsa_samedi", "sas_jour"];

/// The built-in schedule called `name`, if there is one.
pub fn builtin(name: &str) -> Option<Schedule> {
    match name {
        "pdsa" => pdsa(false),
        "pdsa_samedi" => pdsa(true),
        "sas_jour" => sas_jour(),
        _ => None,
    }
}

fn hours(start_h: u16, end_h: u16) -> Option<Vec<HourRange>> {
    Some(vec![HourRange::new(start_h * 60, end_h * 60)?])
}

fn pdsa(saturday: bool) -> Option<Schedule> {
    let mut s = Schedule::new(Region::Metropole);
    s.weekly = vec![
        WeeklyRule {
            days: DaySet::ALL,
            hours: hours(20, 8)?,
        },
        WeeklyRule {
            days: DaySet::one(Weekday::Sun),
            hours: hours(8, 20)?,
        },
    ];
    s.holidays = DayRule::As(Weekday::Sun);
    if saturday {
        s.weekly.push(WeeklyRule {
            days: DaySet::one(Weekday::Sat),
            hours: hours(12, 20)?,
        });
        s.bridge_days = DayRule::As(Weekday::Sun);
    }
    Some(s)
}

fn sas_jour() -> Option<Schedule> {
    let mut s = Schedule::new(Region::Metropole);
    s.weekly = vec![
        WeeklyRule {
            days: DaySet::range(Weekday::Mon, Weekday::Fri),
            hours: hours(8, 20)?,
        },
        WeeklyRule {
            days: DaySet::one(Weekday::Sat),
            hours: hours(8, 12)?,
        },
    ];
    s.holidays = DayRule::Closed;
    s.bridge_days = DayRule::Closed;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, TimeZone, Utc};

    #[test]
    fn every_name_is_built() {
        for name in BUILTIN_NAMES {
            assert!(builtin(name).is_some(), "{name}");
        }
        assert!(builtin("PDSA").is_none());
    }

    /// For every minute-aligned hour of 2026 (and the half hours of both change nights),
    /// exactly one of `sas_jour` and `pdsa_samedi` is open.
    #[test]
    fn sas_jour_and_pdsa_samedi_are_complements_all_2026() {
        let sas = builtin("sas_jour").unwrap();
        let pdsa = builtin("pdsa_samedi").unwrap();
        let start: DateTime<Utc> = Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap();
        let mut checked = 0;
        let mut t = start;
        while t < Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap() {
            let (a, b) = (sas.decide(t), pdsa.decide(t));
            assert_ne!(
                a.open, b.open,
                "{t}:\n  sas_jour: {}\n  pdsa_samedi: {}",
                a.reason, b.reason
            );
            t += Duration::minutes(30);
            checked += 1;
        }
        assert_eq!(checked, 365 * 48);
    }

    #[test]
    fn pdsa_covers_sundays_and_holidays_all_day() {
        let pdsa = builtin("pdsa").unwrap();
        // Sunday 2026-03-08 and Easter Monday 2026-04-06, each hour (UTC+1 / UTC+2).
        for (day, offset) in [((3, 8), 1), ((4, 6), 2)] {
            for hour in 0..24 {
                let local = Utc
                    .with_ymd_and_hms(2026, day.0, day.1, hour, 0, 0)
                    .unwrap()
                    - Duration::hours(offset);
                assert!(pdsa.decide(local).open, "{local}");
            }
        }
        // A plain Wednesday at noon is the doctors' own hours.
        let noon = Utc.with_ymd_and_hms(2026, 3, 11, 11, 0, 0).unwrap();
        assert!(!pdsa.decide(noon).open);
    }
}
