//! A named schedule: weekly hour ranges, what public holidays and bridge days follow, and
//! dated openings and closures — and the decision, open or closed, for an instant.
//!
//! The rules, in order:
//! 1. A one-off closure covering the local time closes, whatever else says.
//! 2. A one-off opening covering it opens.
//! 3. Otherwise the weekly ranges decide. The ranges of a date are its weekday's, unless the
//!    date is a public holiday (then `holidays` says which) or a bridge day (`bridge_days`).
//!    A range that crosses midnight (20:00-08:00) belongs to the day it starts on: Monday
//!    20:00-08:00 covers Tuesday 03:00, and a holiday's rule covers the night that starts on
//!    the holiday, not the one that ends on it.
//!
//! Times are read on the region's wall clock (Europe/Paris in metropolitan France), to the
//! minute. On the spring-forward night 02:00-02:59 never happens; on the fall-back night
//! 02:00-02:59 happens twice and a range covering 02:30 covers both. A night range such as
//! 20:00-08:00 therefore stays open all night on both nights.

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::Deserialize;

use super::bridges::{Bridge, bridge_day};
use super::explain;
use super::holidays::{Holiday, Region, holiday};
use super::parse::{DayRule, DaySet, HourRange, LocalInterval, ScheduleError};

/// One line of the weekly hours: these days, these ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyRule {
    /// The weekdays the ranges start on.
    pub days: DaySet,
    /// The ranges (a range crossing midnight runs into the next day).
    pub hours: Vec<HourRange>,
}

/// A schedule, ready to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Whose public holidays and bridge days apply.
    pub region: Region,
    /// The wall clock the ranges are read on (by default the region's).
    pub time_zone: Tz,
    /// The weekly hours.
    pub weekly: Vec<WeeklyRule>,
    /// What a public holiday follows.
    pub holidays: DayRule,
    /// What a bridge day follows (`Normal`: bridge days are ordinary days).
    pub bridge_days: DayRule,
    /// Dates treated as bridge days on top of (or, with `bridge_dates_only`, instead of)
    /// the computed ones.
    pub bridge_dates: Vec<NaiveDate>,
    /// Only `bridge_dates` are bridge days; none are computed.
    pub bridge_dates_only: bool,
    /// Local public holidays on top of the region's (the dial plans' `local_holidays`,
    /// given to every schedule).
    pub local_holidays: Vec<NaiveDate>,
    /// Extra opening hours, local time.
    pub openings: Vec<LocalInterval>,
    /// One-off closures, local time; they win over everything.
    pub closures: Vec<LocalInterval>,
}

/// An open/closed answer and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the schedule is open at that instant.
    pub open: bool,
    /// Why, in one French sentence an admin can follow.
    pub reason: String,
}

/// What kind of day a date is for a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayKind {
    /// An ordinary day: its weekday's ranges.
    Ordinary,
    /// A public holiday, following `rule`.
    Holiday(Holiday, DayRule),
    /// A computed bridge day, following `rule`.
    Bridge(Bridge, DayRule),
    /// A date listed in `bridge_dates`, following `rule`.
    ListedBridge(DayRule),
    /// A local public holiday (`local_holidays` of the dial plans), following `rule`.
    LocalHoliday(DayRule),
}

/// The ranges that start on a date, and why those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayPlan {
    pub(crate) date: NaiveDate,
    pub(crate) kind: DayKind,
    pub(crate) ranges: Vec<HourRange>,
}

impl Schedule {
    /// An empty (always closed) schedule for `region`, on the region's clock.
    pub fn new(region: Region) -> Schedule {
        Schedule {
            region,
            time_zone: region.time_zone(),
            weekly: Vec::new(),
            holidays: DayRule::Normal,
            bridge_days: DayRule::Normal,
            bridge_dates: Vec::new(),
            bridge_dates_only: false,
            local_holidays: Vec::new(),
            openings: Vec::new(),
            closures: Vec::new(),
        }
    }

    /// The same schedule for another region (its holidays and its clock).
    pub fn with_region(mut self, region: Region) -> Schedule {
        self.region = region;
        self.time_zone = region.time_zone();
        self
    }

    /// Open or closed at `at`, and why.
    pub fn decide(&self, at: DateTime<Utc>) -> Decision {
        let offset = self
            .time_zone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix();
        let Some(wall) = at.naive_utc().checked_add_offset(offset) else {
            return Decision {
                open: false,
                reason: format!("{at} : instant hors du calendrier représentable → fermé"),
            };
        };
        let header = explain::header(wall, offset, self.time_zone);
        if let Some(c) = self.closures.iter().find(|c| c.contains(wall)) {
            return Decision {
                open: false,
                reason: format!("{header} : fermeture ponctuelle {c} → fermé"),
            };
        }
        if let Some(o) = self.openings.iter().find(|o| o.contains(wall)) {
            return Decision {
                open: true,
                reason: format!("{header} : ouverture ponctuelle {o} → ouvert"),
            };
        }
        let minute = minute_of(wall);
        let today = self.day_plan(wall.date());
        if let Some(r) = today.ranges.iter().find(|r| r.covers_same_day(minute)) {
            return Decision {
                open: true,
                reason: explain::open_today(&header, &today, *r, minute),
            };
        }
        let yesterday = wall.date().pred_opt().map(|d| self.day_plan(d));
        if let Some(y) = &yesterday
            && let Some(r) = y.ranges.iter().find(|r| r.covers_next_day(minute))
        {
            return Decision {
                open: true,
                reason: explain::open_from_eve(&header, &today, y, *r, minute),
            };
        }
        Decision {
            open: false,
            reason: explain::closed(&header, &today, yesterday.as_ref(), minute),
        }
    }

    /// The ranges that start on `date`, and what kind of day it is.
    pub(crate) fn day_plan(&self, date: NaiveDate) -> DayPlan {
        let kind = self.day_kind(date);
        let rule = match kind {
            DayKind::Ordinary => DayRule::Normal,
            DayKind::Holiday(_, r)
            | DayKind::Bridge(_, r)
            | DayKind::ListedBridge(r)
            | DayKind::LocalHoliday(r) => r,
        };
        let ranges = match rule {
            DayRule::Normal => self.weekly_ranges(date.weekday()),
            DayRule::Closed => Vec::new(),
            DayRule::Open => vec![HourRange::WHOLE_DAY],
            DayRule::As(day) => self.weekly_ranges(day),
        };
        DayPlan { date, kind, ranges }
    }

    fn day_kind(&self, date: NaiveDate) -> DayKind {
        if self.holidays != DayRule::Normal
            && let Some(h) = holiday(date, self.region)
        {
            return DayKind::Holiday(h, self.holidays);
        }
        if self.holidays != DayRule::Normal && self.local_holidays.contains(&date) {
            return DayKind::LocalHoliday(self.holidays);
        }
        if self.bridge_days != DayRule::Normal {
            if self.bridge_dates.contains(&date) {
                return DayKind::ListedBridge(self.bridge_days);
            }
            if !self.bridge_dates_only
                && let Some(b) = bridge_day(date, self.region)
            {
                return DayKind::Bridge(b, self.bridge_days);
            }
        }
        DayKind::Ordinary
    }

    fn weekly_ranges(&self, day: Weekday) -> Vec<HourRange> {
        self.weekly
            .iter()
            .filter(|w| w.days.contains(day))
            .flat_map(|w| w.hours.iter().copied())
            .collect()
    }
}

/// One `weekly` line as an admin writes it: `{ days = "mon-fri", hours = "08:00-20:00" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySpec {
    /// "mon-fri", "sat,sun", "lun-ven"…
    pub days: String,
    /// "08:00-20:00", "20:00-08:00", "08:00-12:00, 14:00-18:00"…
    pub hours: String,
}

/// A schedule as an admin writes it in TOML (see the README, "Schedules and public
/// holidays"); [`Schedule`] deserializes through it and checks every value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Default `metropole`.
    #[serde(default = "default_region")]
    pub region: Region,
    /// An IANA zone overriding the region's clock.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `closed`, `open`, `normal` or a day name; default `normal`.
    #[serde(default)]
    pub holidays: Option<String>,
    /// Same words as `holidays`; default `normal`.
    #[serde(default)]
    pub bridge_days: Option<String>,
    /// Extra bridge days, "YYYY-MM-DD".
    #[serde(default)]
    pub bridge_dates: Vec<String>,
    /// Only `bridge_dates` are bridge days.
    #[serde(default)]
    pub bridge_dates_only: bool,
    /// The weekly hours.
    #[serde(default)]
    pub weekly: Vec<WeeklySpec>,
    /// Extra openings, "YYYY-MM-DD HH:MM .. YYYY-MM-DD HH:MM".
    #[serde(default)]
    pub open: Vec<String>,
    /// One-off closures, same shape.
    #[serde(default)]
    pub closures: Vec<String>,
}

fn default_region() -> Region {
    Region::Metropole
}

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = ScheduleError;

    fn try_from(spec: ScheduleSpec) -> Result<Schedule, ScheduleError> {
        let rule =
            |text: &Option<String>| text.as_deref().map_or(Ok(DayRule::Normal), DayRule::parse);
        let time_zone = match &spec.timezone {
            Some(name) => name
                .trim()
                .parse::<Tz>()
                .map_err(|_| ScheduleError::UnknownTimeZone(name.clone()))?,
            None => spec.region.time_zone(),
        };
        let schedule = Schedule {
            region: spec.region,
            time_zone,
            weekly: spec
                .weekly
                .iter()
                .map(|w| {
                    Ok(WeeklyRule {
                        days: DaySet::parse(&w.days)?,
                        hours: HourRange::parse_list(&w.hours)?,
                    })
                })
                .collect::<Result<_, ScheduleError>>()?,
            holidays: rule(&spec.holidays)?,
            bridge_days: rule(&spec.bridge_days)?,
            bridge_dates: spec
                .bridge_dates
                .iter()
                .map(|d| super::parse::parse_date(d))
                .collect::<Result<_, _>>()?,
            bridge_dates_only: spec.bridge_dates_only,
            local_holidays: Vec::new(),
            openings: spec
                .open
                .iter()
                .map(|i| LocalInterval::parse(i))
                .collect::<Result<_, _>>()?,
            closures: spec
                .closures
                .iter()
                .map(|i| LocalInterval::parse(i))
                .collect::<Result<_, _>>()?,
        };
        if schedule.bridge_days == DayRule::Normal
            && (!schedule.bridge_dates.is_empty() || schedule.bridge_dates_only)
        {
            return Err(ScheduleError::BridgeDatesWithoutRule);
        }
        Ok(schedule)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = ScheduleSpec::deserialize(deserializer)?;
        Schedule::try_from(spec).map_err(serde::de::Error::custom)
    }
}

/// The minutes since midnight of a wall-clock time (seconds are dropped).
fn minute_of(wall: NaiveDateTime) -> u16 {
    u16::try_from(wall.hour() * 60 + wall.minute()).unwrap_or(0)
}
