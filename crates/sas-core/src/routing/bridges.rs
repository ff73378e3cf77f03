//! Bridge days ("ponts"): the working days stuck between a public holiday and a weekend.
//!
//! The days are those R6315-1 CSP lets the PDSA cover: a Monday before a (Tuesday) holiday,
//! a Friday after a (Thursday) holiday, and a Saturday after a (Friday) holiday — each day
//! immediately next to the holiday, and never a holiday itself. Days an agency declares on
//! top of these are listed in a schedule's `bridge_dates`.

use chrono::{Datelike, NaiveDate, Weekday};

use super::holidays::{Holiday, Region, holiday};

/// Why a date is a bridge day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    /// A Monday whose Tuesday is a holiday.
    MondayBefore(Holiday),
    /// A Friday whose Thursday was a holiday (the Friday after Ascension).
    FridayAfter(Holiday),
    /// A Saturday whose Friday was a holiday.
    SaturdayAfter(Holiday),
}

impl std::fmt::Display for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bridge::MondayBefore(h) => write!(f, "lundi avant {}", h.name()),
            Bridge::FridayAfter(h) => write!(f, "vendredi après {}", h.name()),
            Bridge::SaturdayAfter(h) => write!(f, "samedi après {}", h.name()),
        }
    }
}

/// The bridge `date` is in `region`, if it is one.
pub fn bridge_day(date: NaiveDate, region: Region) -> Option<Bridge> {
    if holiday(date, region).is_some() {
        return None;
    }
    match date.weekday() {
        Weekday::Mon => holiday(date.succ_opt()?, region).map(Bridge::MondayBefore),
        Weekday::Fri => holiday(date.pred_opt()?, region).map(Bridge::FridayAfter),
        Weekday::Sat => holiday(date.pred_opt()?, region).map(Bridge::SaturdayAfter),
        _ => None,
    }
}

/// Whether `date` is a bridge day in `region` (see [`bridge_day`]).
pub fn is_bridge_day(date: NaiveDate, region: Region) -> bool {
    bridge_day(date, region).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn friday_after_ascension_is_a_bridge() {
        let b = bridge_day(d(2026, 5, 15), Region::Metropole).unwrap();
        assert_eq!(b.to_string(), "vendredi après Ascension");
    }

    #[test]
    fn bridges_of_2026_in_metropole() {
        let all: Vec<NaiveDate> = d(2026, 1, 1)
            .iter_days()
            .take_while(|x| x.year() == 2026)
            .filter(|x| is_bridge_day(*x, Region::Metropole))
            .collect();
        // In 2026, 1 January and Ascension are Thursdays, 1 May, 8 May and Christmas
        // Fridays, 14 July a Tuesday; 11 November is a Wednesday (no bridge).
        assert_eq!(
            all,
            vec![
                d(2026, 1, 2),
                d(2026, 5, 2),
                d(2026, 5, 9),
                d(2026, 5, 15),
                d(2026, 7, 13),
                d(2026, 12, 26),
            ]
        );
    }

    #[test]
    fn a_holiday_is_never_a_bridge() {
        // 26 December 2026 is a Saturday after Christmas, but a holiday in Alsace-Moselle.
        assert!(is_bridge_day(d(2026, 12, 26), Region::Metropole));
        assert!(!is_bridge_day(d(2026, 12, 26), Region::AlsaceMoselle));
        assert!(!is_bridge_day(d(2026, 5, 14), Region::Metropole));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        assert!(!is_bridge_day(NaiveDate::MIN, Region::Metropole));
        assert!(!is_bridge_day(NaiveDate::MAX, Region::Metropole));
    }
}
