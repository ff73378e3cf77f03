//! Tests of the schedule vocabulary: what parses, and the sentence each bad value gets.

use super::*;
use chrono::Weekday::*;

fn days(list: &[Weekday]) -> DaySet {
    let mut set = DaySet::default();
    for d in list {
        set.0 |= DaySet::one(*d).0;
    }
    set
}

#[test]
fn day_sets_in_english_and_french() {
    assert_eq!(
        DaySet::parse("mon-fri"),
        Ok(days(&[Mon, Tue, Wed, Thu, Fri]))
    );
    assert_eq!(DaySet::parse("lun-ven"), DaySet::parse("mon-fri"));
    assert_eq!(DaySet::parse("sat,sun"), Ok(days(&[Sat, Sun])));
    assert_eq!(DaySet::parse(" Sam , DIM "), Ok(days(&[Sat, Sun])));
    assert_eq!(
        DaySet::parse("mon-wed,fri"),
        Ok(days(&[Mon, Tue, Wed, Fri]))
    );
    assert_eq!(DaySet::parse("fri-mon"), Ok(days(&[Fri, Sat, Sun, Mon])));
    assert_eq!(DaySet::parse("mon-sun"), Ok(DaySet::ALL));
    assert_eq!(DaySet::parse("dimanche"), Ok(days(&[Sun])));
    assert_eq!(DaySet::parse("mercredi"), Ok(days(&[Wed])));
}

#[test]
fn bad_day_sets_name_the_bad_value() {
    let e = DaySet::parse("mon-fry").unwrap_err();
    assert_eq!(e, ScheduleError::UnknownDay("mon-fry".into()));
    assert!(e.to_string().starts_with("unknown day \"mon-fry\""), "{e}");
    assert_eq!(
        DaySet::parse("sat,,sun"),
        Err(ScheduleError::EmptyDays("sat,,sun".into()))
    );
    assert_eq!(DaySet::parse(""), Err(ScheduleError::EmptyDays("".into())));
    assert!(DaySet::parse("weekend").is_err());
}

#[test]
fn hour_ranges() {
    let r = HourRange::parse("08:00-20:00").unwrap();
    assert_eq!((r.start, r.end, r.crosses_midnight()), (480, 1200, false));
    let r = HourRange::parse("20:00-08:00").unwrap();
    assert!(r.crosses_midnight());
    assert!(r.covers_same_day(23 * 60) && !r.covers_same_day(7 * 60));
    assert!(r.covers_next_day(7 * 60 + 59) && !r.covers_next_day(8 * 60));
    let r = HourRange::parse("00:00-24:00").unwrap();
    assert_eq!(r, HourRange::WHOLE_DAY);
    assert!(r.covers_same_day(1439) && !r.crosses_midnight());
    assert_eq!(
        HourRange::parse("8h-12h30").unwrap().to_string(),
        "08:00-12:30"
    );
    assert_eq!(
        HourRange::parse(" 12:00 - 24:00 ").unwrap().to_string(),
        "12:00-24:00"
    );
    assert_eq!(
        HourRange::parse_list("08:00-12:00, 14:00-18:00")
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn bad_hour_ranges_name_the_bad_value() {
    use ScheduleError::*;
    for (input, want) in [
        ("25:00-26:00", HourOutOfRange("25:00".into())),
        ("08:60-10:00", MinuteOutOfRange("08:60".into())),
        ("08:00-24:30", HourOutOfRange("24:30".into())),
        ("24:00-08:00", HourOutOfRange("24:00".into())),
        ("10:00-10:00", EmptyRange("10:00-10:00".into())),
        ("00:00-00:00", EmptyRange("00:00-00:00".into())),
        ("08:00", RangeSyntax("08:00".into())),
        ("", RangeSyntax("".into())),
        ("8-20", TimeSyntax("8".into())),
        ("08:0-20:00", TimeSyntax("08:0".into())),
        ("-08:00-20:00", TimeSyntax("".into())),
        ("08:00-20:00:00", TimeSyntax("20:00:00".into())),
        ("٠٨:00-20:00", TimeSyntax("٠٨:00".into())),
        ("+8:00-20:00", TimeSyntax("+8:00".into())),
    ] {
        assert_eq!(HourRange::parse(input), Err(want), "{input}");
    }
    let e = HourRange::parse("25:00-08:00").unwrap_err().to_string();
    assert_eq!(
        e,
        "impossible time \"25:00\": hours go from 00 to 23, and 24:00 may only end a range"
    );
    let e = HourRange::parse("10:00-10:00").unwrap_err().to_string();
    assert!(
        e.contains("\"10:00-10:00\"") && e.contains("00:00-24:00"),
        "{e}"
    );
}

#[test]
fn day_rules() {
    assert_eq!(DayRule::parse("closed"), Ok(DayRule::Closed));
    assert_eq!(DayRule::parse("Fermé"), Ok(DayRule::Closed));
    assert_eq!(DayRule::parse("open"), Ok(DayRule::Open));
    assert_eq!(DayRule::parse("normal"), Ok(DayRule::Normal));
    assert_eq!(DayRule::parse("sunday"), Ok(DayRule::As(Sun)));
    assert_eq!(DayRule::parse("dim"), Ok(DayRule::As(Sun)));
    assert_eq!(
        DayRule::parse("sundays"),
        Err(ScheduleError::UnknownDayRule("sundays".into()))
    );
}

fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

#[test]
fn intervals() {
    let i = LocalInterval::parse("2026-12-24 14:00 .. 2026-12-24 20:00").unwrap();
    assert_eq!(
        (i.start, i.end),
        (dt(2026, 12, 24, 14, 0), dt(2026, 12, 24, 20, 0))
    );
    assert_eq!(i.to_string(), "2026-12-24 14:00 .. 2026-12-24 20:00");
    assert!(i.contains(dt(2026, 12, 24, 19, 59)) && !i.contains(dt(2026, 12, 24, 20, 0)));
    let i = LocalInterval::parse("2026-12-24T14:00..2026-12-24T24:00").unwrap();
    assert_eq!(i.end, dt(2026, 12, 25, 0, 0));
    let i = LocalInterval::parse("2026-12-24").unwrap();
    assert_eq!(
        (i.start, i.end),
        (dt(2026, 12, 24, 0, 0), dt(2026, 12, 25, 0, 0))
    );
    let i = LocalInterval::parse("2026-12-24 .. 2026-12-26").unwrap();
    assert_eq!(
        (i.start, i.end),
        (dt(2026, 12, 24, 0, 0), dt(2026, 12, 27, 0, 0))
    );
}

#[test]
fn bad_intervals_name_the_bad_value() {
    use ScheduleError::*;
    for (input, want) in [
        (
            "2026-12-24 20:00 .. 2026-12-24 14:00",
            IntervalBackwards("2026-12-24 20:00 .. 2026-12-24 14:00".into()),
        ),
        (
            "2026-12-24 14:00 .. 2026-12-24 14:00",
            IntervalBackwards("2026-12-24 14:00 .. 2026-12-24 14:00".into()),
        ),
        ("2026-02-30", BadDate("2026-02-30".into())),
        (
            "2026-12-24 14:00",
            IntervalSyntax("2026-12-24 14:00".into()),
        ),
        (" .. 2026-12-24", IntervalSyntax(" .. 2026-12-24".into())),
        (
            "2026-12-24 25:00 .. 2026-12-25",
            HourOutOfRange("25:00".into()),
        ),
        ("24/12/2026", BadDate("24/12/2026".into())),
        ("+262143-12-31", BadDate("+262143-12-31".into())),
    ] {
        assert_eq!(LocalInterval::parse(input), Err(want), "{input}");
    }
}
