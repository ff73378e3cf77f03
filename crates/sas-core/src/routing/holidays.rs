//! Public holidays of France by region: the eleven national days, Alsace-Moselle's two
//! extra days, and the overseas departments' and collectivities' abolition-of-slavery day.
//!
//! Sources, in force as of 2026:
//! - the eleven national days: Code du travail, art. L3133-1;
//! - Alsace-Moselle (Bas-Rhin, Haut-Rhin, Moselle): local law kept by Code du travail,
//!   art. L3134-13 — 26 December everywhere, Good Friday in communes that have a Protestant
//!   temple or a mixed church (that is, nearly all: we treat it as a holiday for the whole
//!   region);
//! - abolition of slavery: loi 83-550 du 30 juin 1983 and its décret 83-1003 du 23 novembre
//!   1983 (as amended by décret 2012-553): Guadeloupe 27 May, Guyane 10 June, Martinique
//!   22 May, Mayotte 27 April, La Réunion 20 December, Saint-Barthélemy 9 October;
//!   Saint-Martin 28 May since 2018 (it was 27 May before; the amended décret fixed 28 May
//!   after a clerical error, see the 2018 and 2019 interministerial circulars).
//!
//! Victor Schœlcher's day (21 July) is not a legal holiday: the 1914 local order that made it
//! one lapsed with the 1983 law, so it is not listed.

use chrono::{Datelike, Days, NaiveDate};
use serde::Deserialize;

/// Which list of public holidays applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Metropolitan France outside Alsace-Moselle (the default).
    Metropole,
    /// Bas-Rhin, Haut-Rhin and Moselle: adds Good Friday and 26 December.
    #[serde(alias = "alsace-moselle")]
    AlsaceMoselle,
    /// Guadeloupe (971): adds 27 May.
    Guadeloupe,
    /// Martinique (972): adds 22 May.
    Martinique,
    /// Guyane (973): adds 10 June.
    Guyane,
    /// La Réunion (974): adds 20 December.
    Reunion,
    /// Mayotte (976): adds 27 April.
    Mayotte,
    /// Saint-Barthélemy (977): adds 9 October.
    #[serde(alias = "saint-barthelemy")]
    SaintBarthelemy,
    /// Saint-Martin (978): adds 28 May.
    #[serde(alias = "saint-martin")]
    SaintMartin,
}

impl Region {
    /// Every region, in the order above.
    pub const ALL: [Region; 9] = [
        Region::Metropole,
        Region::AlsaceMoselle,
        Region::Guadeloupe,
        Region::Martinique,
        Region::Guyane,
        Region::Reunion,
        Region::Mayotte,
        Region::SaintBarthelemy,
        Region::SaintMartin,
    ];

    /// The region's legal time zone: the wall clock schedules are read on.
    pub fn time_zone(self) -> chrono_tz::Tz {
        use chrono_tz::{America, Europe, Indian};
        match self {
            Region::Metropole | Region::AlsaceMoselle => Europe::Paris,
            Region::Guadeloupe => America::Guadeloupe,
            Region::Martinique => America::Martinique,
            Region::Guyane => America::Cayenne,
            Region::Reunion => Indian::Reunion,
            Region::Mayotte => Indian::Mayotte,
            Region::SaintBarthelemy => America::St_Barthelemy,
            Region::SaintMartin => America::Marigot,
        }
    }

    /// The day and month of the region's abolition-of-slavery holiday (décret 83-1003).
    fn abolition_day(self) -> Option<(u32, u32)> {
        match self {
            Region::Metropole | Region::AlsaceMoselle => None,
            Region::Guadeloupe => Some((5, 27)),
            Region::Martinique => Some((5, 22)),
            Region::Guyane => Some((6, 10)),
            Region::Reunion => Some((12, 20)),
            Region::Mayotte => Some((4, 27)),
            Region::SaintBarthelemy => Some((10, 9)),
            Region::SaintMartin => Some((5, 28)),
        }
    }
}

/// Which holiday a date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HolidayKind {
    /// 1 January.
    NewYear,
    /// Friday before Easter (Alsace-Moselle only).
    GoodFriday,
    /// Easter Sunday + 1.
    EasterMonday,
    /// 1 May.
    LabourDay,
    /// 8 May.
    VictoryInEurope,
    /// Easter Sunday + 39 (a Thursday).
    Ascension,
    /// Easter Sunday + 50.
    WhitMonday,
    /// 14 July.
    BastilleDay,
    /// 15 August.
    Assumption,
    /// 1 November.
    AllSaints,
    /// 11 November.
    Armistice,
    /// 25 December.
    Christmas,
    /// 26 December (Alsace-Moselle only).
    SaintStephen,
    /// The overseas region's abolition-of-slavery day.
    AbolitionOfSlavery,
}

impl HolidayKind {
    /// The French name, as admins and the `simulate` output show it.
    pub fn name(self) -> &'static str {
        match self {
            HolidayKind::NewYear => "Jour de l'an",
            HolidayKind::GoodFriday => "Vendredi saint",
            HolidayKind::EasterMonday => "Lundi de Pâques",
            HolidayKind::LabourDay => "Fête du travail",
            HolidayKind::VictoryInEurope => "Victoire 1945",
            HolidayKind::Ascension => "Ascension",
            HolidayKind::WhitMonday => "Lundi de Pentecôte",
            HolidayKind::BastilleDay => "Fête nationale",
            HolidayKind::Assumption => "Assomption",
            HolidayKind::AllSaints => "Toussaint",
            HolidayKind::Armistice => "Armistice 1918",
            HolidayKind::Christmas => "Noël",
            HolidayKind::SaintStephen => "Saint-Étienne",
            HolidayKind::AbolitionOfSlavery => "Abolition de l'esclavage",
        }
    }
}

/// One public holiday: a date and what it celebrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Holiday {
    /// The (local) calendar date.
    pub date: NaiveDate,
    /// Which holiday it is.
    pub kind: HolidayKind,
}

impl Holiday {
    /// The French name ("Lundi de Pâques", "Noël"…).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

impl std::fmt::Display for Holiday {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.date)
    }
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm, "Meeus/Jones/
/// Butcher"), or `None` for a year chrono cannot represent.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The public holidays of `year` in `region`, in date order (empty for a year chrono cannot
/// represent).
pub fn holidays_of(year: i32, region: Region) -> Vec<Holiday> {
    let mut out = Vec::with_capacity(13);
    let mut fixed = |month: u32, day: u32, kind: HolidayKind| {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
            out.push(Holiday { date, kind });
        }
    };
    fixed(1, 1, HolidayKind::NewYear);
    fixed(5, 1, HolidayKind::LabourDay);
    fixed(5, 8, HolidayKind::VictoryInEurope);
    fixed(7, 14, HolidayKind::BastilleDay);
    fixed(8, 15, HolidayKind::Assumption);
    fixed(11, 1, HolidayKind::AllSaints);
    fixed(11, 11, HolidayKind::Armistice);
    fixed(12, 25, HolidayKind::Christmas);
    if region == Region::AlsaceMoselle {
        fixed(12, 26, HolidayKind::SaintStephen);
    }
    if let Some((month, day)) = region.abolition_day() {
        fixed(month, day, HolidayKind::AbolitionOfSlavery);
    }
    if let Some(easter) = easter_sunday(year) {
        let mut movable = |days: i64, kind: HolidayKind| {
            let date = if days >= 0 {
                easter.checked_add_days(Days::new(days.unsigned_abs()))
            } else {
                easter.checked_sub_days(Days::new(days.unsigned_abs()))
            };
            if let Some(date) = date {
                out.push(Holiday { date, kind });
            }
        };
        movable(1, HolidayKind::EasterMonday);
        movable(39, HolidayKind::Ascension);
        movable(50, HolidayKind::WhitMonday);
        if region == Region::AlsaceMoselle {
            movable(-2, HolidayKind::GoodFriday);
        }
    }
    out.sort_by_key(|h| h.date);
    out
}

/// The holiday `date` is in `region`, if any.
pub fn holiday(date: NaiveDate, region: Region) -> Option<Holiday> {
    holidays_of(date.year(), region)
        .into_iter()
        .find(|h| h.date == date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_sunday_matches_known_dates() {
        for (year, date) in [
            (2024, d(2024, 3, 31)),
            (2025, d(2025, 4, 20)),
            (2026, d(2026, 4, 5)),
            (2027, d(2027, 3, 28)),
            (2038, d(2038, 4, 25)),
            (2285, d(2285, 3, 22)),
            (1818, d(1818, 3, 22)),
            (1943, d(1943, 4, 25)),
        ] {
            assert_eq!(easter_sunday(year), Some(date), "{year}");
        }
    }

    #[test]
    fn extreme_years_do_not_panic() {
        for year in [i32::MIN, -262_145, -1, 0, 262_142, 262_143, i32::MAX] {
            let _ = easter_sunday(year);
            let _ = holidays_of(year, Region::AlsaceMoselle);
        }
        assert!(holidays_of(i32::MAX, Region::Metropole).is_empty());
    }

    fn names(year: i32, region: Region) -> Vec<(NaiveDate, &'static str)> {
        holidays_of(year, region)
            .iter()
            .map(|h| (h.date, h.name()))
            .collect()
    }

    fn metropole_2026() -> Vec<(NaiveDate, &'static str)> {
        vec![
            (d(2026, 1, 1), "Jour de l'an"),
            (d(2026, 4, 6), "Lundi de Pâques"),
            (d(2026, 5, 1), "Fête du travail"),
            (d(2026, 5, 8), "Victoire 1945"),
            (d(2026, 5, 14), "Ascension"),
            (d(2026, 5, 25), "Lundi de Pentecôte"),
            (d(2026, 7, 14), "Fête nationale"),
            (d(2026, 8, 15), "Assomption"),
            (d(2026, 11, 1), "Toussaint"),
            (d(2026, 11, 11), "Armistice 1918"),
            (d(2026, 12, 25), "Noël"),
        ]
    }

    #[test]
    fn metropole_2026_has_the_eleven_days_of_l3133_1() {
        assert_eq!(names(2026, Region::Metropole), metropole_2026());
    }

    #[test]
    fn alsace_moselle_2026_adds_good_friday_and_saint_stephen() {
        let mut want = metropole_2026();
        want.push((d(2026, 4, 3), "Vendredi saint"));
        want.push((d(2026, 12, 26), "Saint-Étienne"));
        want.sort();
        assert_eq!(names(2026, Region::AlsaceMoselle), want);
    }

    #[test]
    fn overseas_regions_add_their_abolition_day() {
        for (region, date) in [
            (Region::Guadeloupe, d(2026, 5, 27)),
            (Region::Martinique, d(2026, 5, 22)),
            (Region::Guyane, d(2026, 6, 10)),
            (Region::Reunion, d(2026, 12, 20)),
            (Region::Mayotte, d(2026, 4, 27)),
            (Region::SaintBarthelemy, d(2026, 10, 9)),
            (Region::SaintMartin, d(2026, 5, 28)),
        ] {
            let mut want = metropole_2026();
            want.push((date, "Abolition de l'esclavage"));
            want.sort();
            assert_eq!(names(2026, region), want, "{region:?}");
            assert_eq!(
                holiday(date, region).map(|h| h.kind),
                Some(HolidayKind::AbolitionOfSlavery)
            );
            assert_eq!(holiday(date, Region::Metropole), None);
        }
    }

    #[test]
    fn holiday_finds_movable_days() {
        let r = Region::Metropole;
        assert_eq!(holiday(d(2026, 5, 14), r).unwrap().name(), "Ascension");
        assert_eq!(
            holiday(d(2027, 5, 17), r).unwrap().name(),
            "Lundi de Pentecôte"
        );
        assert_eq!(holiday(d(2026, 4, 3), r), None);
        assert_eq!(
            holiday(d(2026, 4, 3), Region::AlsaceMoselle)
                .unwrap()
                .name(),
            "Vendredi saint"
        );
        assert_eq!(holiday(d(2026, 4, 5), r), None, "Easter Sunday is a Sunday");
    }

    #[test]
    fn regions_read_their_own_clock() {
        assert_eq!(Region::Metropole.time_zone(), chrono_tz::Europe::Paris);
        assert_eq!(Region::Reunion.time_zone(), chrono_tz::Indian::Reunion);
        assert_eq!(Region::ALL.len(), 9);
    }
}
