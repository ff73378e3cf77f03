//! The admin-facing vocabulary of schedules and its parsers: day sets ("mon-fri", "sam,dim"),
//! hour ranges ("08:00-20:00", "20:00-08:00"), day rules ("closed", "sunday") and local
//! date-time intervals ("2026-12-24 14:00 .. 2026-12-24 20:00").
//!
//! Every error is a [`ScheduleError`] whose message is one English sentence naming the bad
//! value; the dial plan loader adds the file, line and column.

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// Minutes in a day: the end of a range written "24:00".
pub const DAY_MINUTES: u16 = 24 * 60;

/// Why a piece of a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A day name that is neither English nor French.
    #[error(
        "unknown day {0:?}: write mon, tue, wed, thu, fri, sat, sun (or lun, mar, mer, jeu, ven, sam, dim), a range such as mon-fri, or a list such as sat,sun"
    )]
    UnknownDay(String),
    /// Nothing between the commas.
    #[error("empty day list {0:?}: name at least one day, e.g. mon-fri")]
    EmptyDays(String),
    /// Not `HH:MM-HH:MM`.
    #[error("bad hour range {0:?}: write HH:MM-HH:MM, e.g. 08:00-20:00 or 20:00-08:00")]
    RangeSyntax(String),
    /// Not `HH:MM`.
    #[error("bad time {0:?}: write HH:MM, e.g. 08:00")]
    TimeSyntax(String),
    /// An hour past 23 (or 24 with minutes, or 24:00 as a start).
    #[error("impossible time {0:?}: hours go from 00 to 23, and 24:00 may only end a range")]
    HourOutOfRange(String),
    /// A minute past 59.
    #[error("impossible time {0:?}: minutes go from 00 to 59")]
    MinuteOutOfRange(String),
    /// Start equals end.
    #[error(
        "empty hour range {0:?}: it starts and ends at the same time; write 00:00-24:00 for a whole day"
    )]
    EmptyRange(String),
    /// Not a `YYYY-MM-DD` date.
    #[error("bad date {0:?}: write YYYY-MM-DD, e.g. 2026-12-24")]
    BadDate(String),
    /// Not `A .. B` with dates or date-times.
    #[error(
        "bad interval {0:?}: write \"YYYY-MM-DD HH:MM .. YYYY-MM-DD HH:MM\", or one date for a whole day"
    )]
    IntervalSyntax(String),
    /// An interval that ends before (or when) it starts.
    #[error("interval {0:?} ends before it starts")]
    IntervalBackwards(String),
    /// A day rule that is not closed/open/normal/a day.
    #[error("unknown day rule {0:?}: write closed, open, normal, or a day name such as sunday")]
    UnknownDayRule(String),
    /// A time zone chrono-tz does not know.
    #[error("unknown time zone {0:?}: write an IANA name such as Europe/Paris")]
    UnknownTimeZone(String),
    /// `bridge_dates` given while bridge days follow the normal weekly hours.
    #[error(
        "bridge_dates are listed but bridge_days is \"normal\", so they would change nothing: set bridge_days, e.g. bridge_days = \"sunday\""
    )]
    BridgeDatesWithoutRule,
}

/// A set of weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySet(u8);

impl DaySet {
    /// Every day of the week.
    pub const ALL: DaySet = DaySet(0x7f);

    /// The set holding the days from `first` to `last`, wrapping past Sunday ("fri-mon").
    pub fn range(first: Weekday, last: Weekday) -> DaySet {
        let mut set = DaySet::default();
        let mut day = first;
        loop {
            set.0 |= 1 << day.num_days_from_monday();
            if day == last {
                return set;
            }
            day = day.succ();
        }
    }

    /// The set holding one day.
    pub fn one(day: Weekday) -> DaySet {
        DaySet::range(day, day)
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    /// Parses "mon-fri", "sat,sun", "lun-ven", "mon-wed,fri", "monday" (case-insensitive).
    pub fn parse(text: &str) -> Result<DaySet, ScheduleError> {
        let mut set = DaySet::default();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(ScheduleError::EmptyDays(text.to_string()));
            }
            let unknown = || ScheduleError::UnknownDay(part.to_string());
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (
                    parse_weekday(a).ok_or_else(unknown)?,
                    parse_weekday(b).ok_or_else(unknown)?,
                ),
                None => {
                    let day = parse_weekday(part).ok_or_else(unknown)?;
                    (day, day)
                }
            };
            set.0 |= DaySet::range(first, last).0;
        }
        Ok(set)
    }
}

/// An English or French day name, short or long, any case.
pub fn parse_weekday(text: &str) -> Option<Weekday> {
    let day = match text.trim().to_lowercase().as_str() {
        "mon" | "monday" | "lun" | "lundi" => Weekday::Mon,
        "tue" | "tuesday" | "mar" | "mardi" => Weekday::Tue,
        "wed" | "wednesday" | "mer" | "mercredi" => Weekday::Wed,
        "thu" | "thursday" | "jeu" | "jeudi" => Weekday::Thu,
        "fri" | "friday" | "ven" | "vendredi" => Weekday::Fri,
        "sat" | "saturday" | "sam" | "samedi" => Weekday::Sat,
        "sun" | "sunday" | "dim" | "dimanche" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

/// A range of the wall clock within a day, `[start, end)` in minutes since midnight. When
/// `end <= start` the range crosses midnight and ends at `end` on the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourRange {
    start: u16,
    end: u16,
}

impl HourRange {
    /// A range from `start` to `end` minutes; `start` in 0..1440, `end` in 0..=1440, not
    /// equal (`None` otherwise).
    pub fn new(start: u16, end: u16) -> Option<HourRange> {
        (start < DAY_MINUTES && end <= DAY_MINUTES && start != end)
            .then_some(HourRange { start, end })
    }

    /// The whole day, 00:00-24:00.
    pub const WHOLE_DAY: HourRange = HourRange {
        start: 0,
        end: DAY_MINUTES,
    };

    /// Whether the range runs past midnight into the next day.
    pub fn crosses_midnight(self) -> bool {
        self.end <= self.start
    }

    /// Whether the part on the range's own day covers `minute` (since midnight).
    pub fn covers_same_day(self, minute: u16) -> bool {
        minute >= self.start && (self.crosses_midnight() || minute < self.end)
    }

    /// Whether the part after midnight covers `minute` of the next day.
    pub fn covers_next_day(self, minute: u16) -> bool {
        self.crosses_midnight() && minute < self.end
    }

    /// Parses "08:00-20:00", "20:00-08:00", "00:00-24:00", "8h-12h30" style ranges.
    pub fn parse(text: &str) -> Result<HourRange, ScheduleError> {
        let trimmed = text.trim();
        let (a, b) = trimmed
            .split_once('-')
            .ok_or_else(|| ScheduleError::RangeSyntax(text.to_string()))?;
        let start = parse_minutes(a)?;
        let end = parse_minutes(b)?;
        if start == DAY_MINUTES {
            return Err(ScheduleError::HourOutOfRange(a.trim().to_string()));
        }
        HourRange::new(start, end).ok_or_else(|| ScheduleError::EmptyRange(trimmed.to_string()))
    }

    /// Parses a comma-separated list: "08:00-12:00, 14:00-18:00".
    pub fn parse_list(text: &str) -> Result<Vec<HourRange>, ScheduleError> {
        text.split(',').map(HourRange::parse).collect()
    }
}

impl std::fmt::Display for HourRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", Clock(self.start), Clock(self.end))
    }
}

/// Minutes since midnight shown as HH:MM.
pub(crate) struct Clock(pub(crate) u16);

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// "HH:MM", "H:MM", "HHhMM", "HHh" → minutes since midnight (24:00 → 1440).
fn parse_minutes(text: &str) -> Result<u16, ScheduleError> {
    let t = text.trim();
    let bad = || ScheduleError::TimeSyntax(t.to_string());
    let (h, m) = t
        .split_once(':')
        .or_else(|| t.split_once(['h', 'H']))
        .ok_or_else(bad)?;
    let m = if m.is_empty() && !t.contains(':') {
        "00"
    } else {
        m
    };
    let digits = |s: &str, max_len| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let hour: u16 = h.parse().map_err(|_| bad())?;
    let minute: u16 = m.parse().map_err(|_| bad())?;
    if minute > 59 {
        return Err(ScheduleError::MinuteOutOfRange(t.to_string()));
    }
    if hour > 24 || (hour == 24 && minute != 0) {
        return Err(ScheduleError::HourOutOfRange(t.to_string()));
    }
    Ok(hour * 60 + minute)
}

/// What a special day (a public holiday, a bridge day) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRule {
    /// The weekly hours of its own weekday, as if it were not special.
    Normal,
    /// Closed all day (a range started the day before still runs out).
    Closed,
    /// Open all day, 00:00-24:00.
    Open,
    /// The weekly hours of another weekday (typically Sunday).
    As(Weekday),
}

impl DayRule {
    /// Parses "closed"/"fermé", "open"/"ouvert", "normal", or a day name ("sunday", "dim").
    pub fn parse(text: &str) -> Result<DayRule, ScheduleError> {
        let rule = match text.trim().to_lowercase().as_str() {
            "closed" | "fermé" | "ferme" => DayRule::Closed,
            "open" | "ouvert" => DayRule::Open,
            "normal" => DayRule::Normal,
            other => DayRule::As(
                parse_weekday(other)
                    .ok_or_else(|| ScheduleError::UnknownDayRule(text.to_string()))?,
            ),
        };
        Ok(rule)
    }
}

/// A stretch of local wall-clock time, `[start, end)`, such as a one-off closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalInterval {
    /// First covered minute.
    pub start: NaiveDateTime,
    /// First minute no longer covered.
    pub end: NaiveDateTime,
}

impl LocalInterval {
    /// Whether the wall-clock time `at` falls in the interval.
    pub fn contains(&self, at: NaiveDateTime) -> bool {
        self.start <= at && at < self.end
    }

    /// Parses "2026-12-24 14:00 .. 2026-12-24 20:00" (a `T` may replace the space), a date
    /// for a whole day ("2026-12-24"), or "2026-12-24 .. 2026-12-26" (both days whole).
    pub fn parse(text: &str) -> Result<LocalInterval, ScheduleError> {
        let syntax = || ScheduleError::IntervalSyntax(text.to_string());
        let (start, end) = match text.split_once("..") {
            Some((a, b)) => (
                parse_instant(a, false, text)?,
                parse_instant(b, true, text)?,
            ),
            None if text.trim().contains([' ', 'T']) => return Err(syntax()),
            None => (
                parse_instant(text, false, text)?,
                parse_instant(text, true, text)?,
            ),
        };
        let (Some(start), Some(end)) = (start, end) else {
            return Err(syntax());
        };
        if end <= start {
            return Err(ScheduleError::IntervalBackwards(text.trim().to_string()));
        }
        Ok(LocalInterval { start, end })
    }
}

impl std::fmt::Display for LocalInterval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fmt = "%Y-%m-%d %H:%M";
        write!(f, "{} .. {}", self.start.format(fmt), self.end.format(fmt))
    }
}

/// One side of an interval. A bare date is midnight at its start, or, as an end, midnight
/// after it. `Ok(None)` only when a date has no next day.
fn parse_instant(
    side: &str,
    is_end: bool,
    whole: &str,
) -> Result<Option<NaiveDateTime>, ScheduleError> {
    let side = side.trim();
    let (date, time) = match side.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (side, None),
    };
    if date.is_empty() {
        return Err(ScheduleError::IntervalSyntax(whole.to_string()));
    }
    let date = parse_date(date)?;
    Ok(match time {
        Some(t) => {
            let minutes = parse_minutes(t)?;
            if minutes == DAY_MINUTES {
                date.checked_add_days(Days::new(1))
                    .map(|d| d.and_time(NaiveTime::MIN))
            } else {
                NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)
                    .map(|t| date.and_time(t))
            }
        }
        None if is_end => date
            .checked_add_days(Days::new(1))
            .map(|d| d.and_time(NaiveTime::MIN)),
        None => Some(date.and_time(NaiveTime::MIN)),
    })
}

/// "YYYY-MM-DD".
pub fn parse_date(text: &str) -> Result<NaiveDate, ScheduleError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ScheduleError::BadDate(text.trim().to_string()))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
