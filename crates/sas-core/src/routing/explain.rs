//! The French sentences that explain a schedule decision, for `sas-router simulate` and the
//! logs: the local time and its offset, what kind of day it is, which range decided.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, Weekday};
use chrono_tz::Tz;

use super::parse::{Clock, DayRule, HourRange};
use super::schedule::{DayKind, DayPlan};

/// "lundi", "mardi"…
pub(crate) fn weekday_fr(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "lundi",
        Weekday::Tue => "mardi",
        Weekday::Wed => "mercredi",
        Weekday::Thu => "jeudi",
        Weekday::Fri => "vendredi",
        Weekday::Sat => "samedi",
        Weekday::Sun => "dimanche",
    }
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// "vendredi 1er mai 2026".
pub(crate) fn date_fr(date: NaiveDate) -> String {
    let month = MONTHS.get(date.month0() as usize).copied().unwrap_or("?");
    let day = match date.day() {
        1 => "1er".to_string(),
        n => n.to_string(),
    };
    format!(
        "{} {day} {month} {}",
        weekday_fr(date.weekday()),
        date.year()
    )
}

/// "vendredi 25 décembre 2026 03:00 (Europe/Paris, UTC+01:00)".
pub(crate) fn header(wall: NaiveDateTime, offset: FixedOffset, tz: Tz) -> String {
    format!(
        "{} {} ({}, UTC{offset})",
        date_fr(wall.date()),
        wall.format("%H:%M"),
        tz.name(),
    )
}

fn rule_fr(rule: DayRule) -> String {
    match rule {
        DayRule::Normal => "horaires habituels".to_string(),
        DayRule::Closed => "fermé".to_string(),
        DayRule::Open => "ouvert toute la journée".to_string(),
        DayRule::As(day) => format!("horaires du {}", weekday_fr(day)),
    }
}

/// Why a day has the ranges it has.
fn kind_fr(plan: &DayPlan) -> String {
    match plan.kind {
        DayKind::Ordinary => format!("horaires du {}", weekday_fr(plan.date.weekday())),
        DayKind::Holiday(h, rule) => format!(
            "{}, jour férié, règle jours fériés = {}",
            h.name(),
            rule_fr(rule)
        ),
        DayKind::Bridge(b, rule) => {
            format!("jour de pont ({b}), règle ponts = {}", rule_fr(rule))
        }
        DayKind::ListedBridge(rule) => format!(
            "jour de pont listé dans bridge_dates, règle ponts = {}",
            rule_fr(rule)
        ),
        DayKind::LocalHoliday(rule) => format!(
            "jour férié local (local_holidays), règle jours fériés = {}",
            rule_fr(rule)
        ),
    }
}

fn ranges_fr(ranges: &[HourRange]) -> String {
    if ranges.is_empty() {
        return "aucune".to_string();
    }
    ranges
        .iter()
        .map(HourRange::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn today_fr(today: &DayPlan) -> String {
    format!(
        "{} ; plages du jour : {}",
        kind_fr(today),
        ranges_fr(&today.ranges)
    )
}

/// Today's ranges, and that none covers the time (unless there are none).
fn today_miss(today: &DayPlan, at: Clock) -> String {
    if today.ranges.is_empty() {
        today_fr(today)
    } else {
        format!("{} ; aucune ne couvre {at}", today_fr(today))
    }
}

/// Open by a range that starts today.
pub(crate) fn open_today(header: &str, today: &DayPlan, range: HourRange, minute: u16) -> String {
    format!(
        "{header} : {} ; {range} couvre {} → ouvert",
        today_fr(today),
        Clock(minute)
    )
}

/// Open by a range that started the day before and runs past midnight.
pub(crate) fn open_from_eve(
    header: &str,
    today: &DayPlan,
    eve: &DayPlan,
    range: HourRange,
    minute: u16,
) -> String {
    let at = Clock(minute);
    format!(
        "{header} : {} ; veille {} ({}) : {range} se prolonge après minuit et couvre {at} → ouvert",
        today_miss(today, Clock(minute)),
        date_fr(eve.date),
        kind_fr(eve),
    )
}

/// Closed: no range of today nor of the eve covers the time.
pub(crate) fn closed(header: &str, today: &DayPlan, eve: Option<&DayPlan>, minute: u16) -> String {
    let at = Clock(minute);
    let eve = match eve {
        Some(eve) => format!(
            "veille {} ({}) : aucune plage ne se prolonge jusqu'à {at}",
            date_fr(eve.date),
            kind_fr(eve)
        ),
        None => "pas de veille".to_string(),
    };
    format!(
        "{header} : {} ; {eve} → fermé",
        today_miss(today, Clock(minute))
    )
}
