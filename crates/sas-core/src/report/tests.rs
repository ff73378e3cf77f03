//! A known month of calls, built as the router writes their records, and every figure the
//! reports must give for it.

use super::render::{Format, csv, render};
use super::test_calls::{Call, S, paris};
use super::*;
use crate::acd::Urgency;
use crate::record::{CallRecord, Decision, EventKind, Outcome};

const ANTONY: Option<(&str, &str)> = Some(("92160", "Antony"));

/// November 2026 (Paris, UTC+1): seven calls in the month, two just outside it.
fn month() -> Vec<CallRecord> {
    use EventKind::*;
    vec![
        // Answered by an ARM in 20 s; SAS appointment in Antony.
        Call::new("c1", "samu", paris(2026, 11, 2, 10, 0, 0))
            .queue(2, "arm")
            .answer("arm1", 20, 200)
            .end(200, Outcome::Answered)
            .file(230, "arm1", ANTONY, Decision::RdvSnp48h),
        // Answered in 45 s, P0 escalated to AMU: the regulator answers 12 s later.
        Call::new("c2", "samu", paris(2026, 11, 2, 10, 5, 0))
            .queue(1, "arm")
            .answer("arm2", 45, 100)
            .event(100, Transfer, None)
            .queue(100, "amu")
            .answer("reg1", 112, 300)
            .end(300, Outcome::Answered)
            .file(
                320,
                "reg1",
                Some(("92600", "Asnières-sur-Seine")),
                Decision::Smur,
            )
            .urgency(Urgency::P0),
        // Abandoned after 40 s; a misdial after 3 s.
        Call::new("c3", "samu", paris(2026, 11, 3, 8, 0, 0))
            .queue(1, "arm")
            .event(40, Abandon, None)
            .end(40, Outcome::Abandoned),
        Call::new("c4", "sas", paris(2026, 11, 3, 8, 1, 0))
            .queue(1, "arm")
            .event(3, Abandon, None)
            .end(3, Outcome::Misdial),
        // Answered in 10 s, escalated to a libéral regulator who answers 100 s later.
        Call::new("c8", "sas", paris(2026, 11, 10, 14, 0, 0))
            .queue(1, "arm")
            .answer("arm1", 10, 60)
            .event(60, Transfer, None)
            .queue(60, "liberal")
            .answer("lib1", 160, 400)
            .end(400, Outcome::Answered)
            .file(400, "lib1", ANTONY, Decision::RdvSnp48h)
            .urgency(Urgency::P2),
        // 00:30 local on the 16th (still the 15th in UTC): answered in 70 s, sent to SAS
        // Psy, nobody there within 2 minutes: overflow to the 3114.
        Call::new("c5", "sas", paris(2026, 11, 16, 0, 30, 0))
            .queue(1, "arm")
            .answer("arm1", 70, 130)
            .file(
                140,
                "arm1",
                Some(("92100", "Boulogne-Billancourt")),
                Decision::Ligne3114,
            )
            .event(130, Transfer, None)
            .queue(130, "psy")
            .event(250, Overflow, None)
            .event(255, Forward, Some("3114"))
            .end(600, Outcome::Forwarded),
        // The month's last second: no ARM within 2 minutes, the backup centre.
        Call::new("c6", "samu", paris(2026, 11, 30, 23, 59, 59))
            .queue(1, "arm")
            .event(121, Overflow, None)
            .event(121, Forward, Some("+33199001515"))
            .end(400, Outcome::Forwarded),
        // Outside November (local time).
        Call::new("c7", "samu", paris(2026, 12, 1, 0, 0, 0))
            .queue(1, "arm")
            .answer("arm1", 5, 50)
            .end(50, Outcome::Answered),
        Call::new("c0", "samu", paris(2026, 10, 31, 23, 59, 59))
            .queue(1, "arm")
            .answer("arm1", 5, 50)
            .end(50, Outcome::Answered),
    ]
    .into_iter()
    .map(|c| c.0)
    .collect()
}

fn november(by: GroupBy) -> Report {
    let mut b = ReportBuilder::new(Period::parse("2026-11-01", "2026-11-30").unwrap(), by);
    // Records come in any order.
    for r in month().iter().rev() {
        b.add(r);
    }
    b.finish()
}

fn l2(escalated: u64, answered: u64, wait_s: u64) -> Level2 {
    Level2 {
        escalated,
        answered,
        wait_ms: wait_s * S,
        max_ms: wait_s * S,
    }
}

fn row(key: &str) -> Row {
    Row::keyed(key.into())
}

#[test]
fn by_line_every_figure_of_the_month() {
    let report = november(GroupBy::Line);
    let samu = Row {
        received: 4,
        answered: 2,
        answered_30s: 1,
        answered_60s: 2,
        answer_wait_ms: 65 * S,
        abandoned: 1,
        overflows: 1,
        forwards: 1,
        l2_amu: l2(1, 1, 12),
        l2_p0: l2(1, 1, 12),
        handled: 3,
        talk_ms: (180 + 55 + 188) * S,
        wrap_up_ms: (30 + 20) * S,
        decisions: 2,
        decisions_rdv: 1,
        ..row("samu")
    };
    let sas = Row {
        received: 3,
        answered: 2,
        answered_30s: 1,
        answered_60s: 1,
        answer_wait_ms: 80 * S,
        misdials: 1,
        overflows: 1,
        forwards_3114: 1,
        psy: 1,
        l2_liberal: l2(1, 1, 100),
        l2_psy: l2(1, 0, 0),
        handled: 3,
        talk_ms: (60 + 50 + 240) * S,
        wrap_up_ms: 10 * S,
        decisions: 2,
        decisions_rdv: 1,
        decisions_3114: 1,
        ..row("sas")
    };
    assert_eq!(report.rows, [samu.clone(), sas.clone()]);
    let mut total = row("TOTAL");
    total.add(&samu);
    total.add(&sas);
    assert_eq!(report.total, total);
    assert_eq!(total.received, 7);
    assert_eq!(total.l2_p0, l2(1, 1, 12));

    // Derived cells: % within 30/60 s of the calls that were not misdials.
    let text = csv(&report);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "line,received,answered,answered_30s,answered_60s,pct_30s,pct_60s,avg_wait_s,\
         abandoned,misdials,overflows,forwards,forwards_3114,psy,\
         l2_amu,l2_amu_answered,l2_amu_avg_s,l2_amu_max_s,\
         l2_liberal,l2_liberal_answered,l2_liberal_avg_s,l2_liberal_max_s,\
         l2_psy,l2_psy_answered,l2_psy_avg_s,l2_psy_max_s,\
         l2_p0,l2_p0_answered,l2_p0_avg_s,l2_p0_max_s,\
         handled,talk_s,wrap_up_s,decisions,decisions_rdv,decisions_3114"
    );
    assert_eq!(
        lines[2],
        "sas,3,2,1,1,50.0,50.0,40.0,0,1,1,0,1,1,0,0,,0,1,1,100.0,100,1,0,,0,0,0,,0,3,350,10,2,1,1"
    );
    assert_eq!(
        lines[3],
        "TOTAL,7,4,2,3,33.3,50.0,36.2,1,1,2,1,1,1,1,1,12.0,12,1,1,100.0,100,1,0,,0,1,1,12.0,12,6,773,60,4,2,1"
    );
    assert_eq!(lines[4], "");
}

#[test]
fn by_day_every_local_day_with_calls_on_their_paris_date() {
    let report = november(GroupBy::Day);
    assert_eq!(report.rows.len(), 30);
    assert_eq!(report.rows[0].key, "2026-11-01");
    assert_eq!(report.rows[29].key, "2026-11-30");
    let received: Vec<(usize, u64)> = report
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.received > 0)
        .map(|(i, r)| (i + 1, r.received))
        .collect();
    assert_eq!(received, [(2, 2), (3, 2), (10, 1), (16, 1), (30, 1)]);
    // Days without calls are all zeros.
    for r in &report.rows {
        if r.received == 0 {
            assert_eq!(r, &row(&r.key));
        }
    }
    assert_eq!(report.rows[2].abandoned, 1);
    assert_eq!(report.rows[2].misdials, 1);
    assert_eq!(report.rows[15].forwards_3114, 1);
    assert_eq!(report.rows[29].forwards, 1);
    assert_eq!(report.total, november(GroupBy::Line).total);
}

#[test]
fn by_seat_talk_and_wrap_up_go_to_each_seat_that_handled_the_call() {
    let report = november(GroupBy::Seat);
    let keys: Vec<&str> = report.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["-", "arm1", "arm2", "lib1", "reg1"]);
    let arm1 = Row {
        received: 3,
        answered: 3,
        answered_30s: 2,
        answered_60s: 2,
        answer_wait_ms: 100 * S,
        overflows: 1,
        forwards_3114: 1,
        psy: 1,
        l2_liberal: l2(1, 1, 100),
        l2_psy: l2(1, 0, 0),
        handled: 3,
        talk_ms: (180 + 60 + 50) * S,
        wrap_up_ms: (30 + 10) * S,
        decisions: 3,
        decisions_rdv: 2,
        decisions_3114: 1,
        ..row("arm1")
    };
    assert_eq!(report.rows[1], arm1);
    let reg1 = Row {
        handled: 1,
        talk_ms: 188 * S,
        wrap_up_ms: 20 * S,
        ..row("reg1")
    };
    assert_eq!(report.rows[4], reg1);
    assert_eq!(report.rows[0].received, 3);
    assert_eq!(report.rows[0].handled, 0);
    assert_eq!(report.total, november(GroupBy::Line).total);
}

#[test]
fn by_queue_escalations_go_to_their_queue() {
    let report = november(GroupBy::Queue);
    let keys: Vec<(&str, u64)> = report
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.received))
        .collect();
    assert_eq!(keys, [("amu", 0), ("arm", 7), ("liberal", 0), ("psy", 0)]);
    assert_eq!(report.rows[0].l2_amu, l2(1, 1, 12));
    assert_eq!(report.rows[2].l2_liberal, l2(1, 1, 100));
    assert_eq!(report.rows[3].l2_psy, l2(1, 0, 0));
    assert_eq!(report.rows[1].l2_amu, Level2::default());
    assert_eq!(report.total, november(GroupBy::Line).total);
}

/// The SAS 92 table: orientation decisions to a SAS appointment per commune and month.
#[test]
fn by_commune_the_sas_92_table() {
    let report = november(GroupBy::Commune);
    let cells: Vec<(&str, u64, u64)> = report
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.received, r.decisions_rdv))
        .collect();
    assert_eq!(
        cells,
        [
            ("2026-11 - -", 3, 0),
            ("2026-11 92100 Boulogne-Billancourt", 1, 0),
            ("2026-11 92160 Antony", 2, 2),
            ("2026-11 92600 Asnières-sur-Seine", 1, 0),
        ]
    );
    assert_eq!(report.rows[1].decisions_3114, 1);
}

#[test]
fn dst_days_have_25_and_23_hours() {
    let autumn = Period::parse("2026-10-25", "2026-10-25").unwrap();
    let (start, end) = autumn.bounds();
    assert_eq!(end - start, 25 * 3_600 * S);
    let mut b = ReportBuilder::new(autumn, GroupBy::Hour);
    // 02:30 twice: before the clocks go back (+02:00) and after (+01:00).
    let first = Paris
        .with_ymd_and_hms(2026, 10, 25, 2, 30, 0)
        .earliest()
        .unwrap()
        .timestamp_millis() as u64;
    for (id, t0) in [
        ("a", first),
        ("b", first + 3_600 * S),
        ("c", first + 3_600 * S),
    ] {
        b.add(&Call::new(id, "samu", t0).end(1, Outcome::Misdial).0);
    }
    let report = b.finish();
    assert_eq!(report.rows.len(), 25);
    assert_eq!(report.rows[0].key, "2026-10-25 00:00+02:00");
    assert_eq!(report.rows[2].key, "2026-10-25 02:00+02:00");
    assert_eq!(report.rows[3].key, "2026-10-25 02:00+01:00");
    assert_eq!(report.rows[24].key, "2026-10-25 23:00+01:00");
    assert_eq!((report.rows[2].received, report.rows[3].received), (1, 2));
    assert_eq!(report.total.misdials, 3);

    let spring = Period::parse("2026-03-29", "2026-03-29").unwrap();
    let (start, end) = spring.bounds();
    assert_eq!(end - start, 23 * 3_600 * S);
    let report = ReportBuilder::new(spring, GroupBy::Hour).finish();
    assert_eq!(report.rows.len(), 23);
    assert_eq!(report.rows[1].key, "2026-03-29 01:00+01:00");
    assert_eq!(report.rows[2].key, "2026-03-29 03:00+02:00");
    // Days: one row each, whatever their length.
    let week = Period::parse("2026-10-24", "2026-10-26").unwrap();
    let days = ReportBuilder::new(week, GroupBy::Day).finish();
    let keys: Vec<&str> = days.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["2026-10-24", "2026-10-25", "2026-10-26"]);
}

/// A minimal RFC 4180 reader, independent of the writer.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let (mut row, mut field, mut quoted) = (vec![], String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

#[test]
fn csv_parses_back_and_its_totals_are_the_sums_of_its_rows() {
    for by in GroupBy::ALL {
        let mut records = month();
        // A commune that needs quoting.
        records[0].file[0].data.commune = Some("Saint-Cloud, \"bas\"".into());
        let mut b = ReportBuilder::new(Period::parse("2026-11-01", "2026-11-30").unwrap(), by);
        records.iter().for_each(|r| b.add(r));
        let report = b.finish();
        let table = parse_csv(&csv(&report));
        assert_eq!(table.len(), report.rows.len() + 2, "{by:?}");
        let width = table[0].len();
        assert!(table.iter().all(|l| l.len() == width));
        assert_eq!(table.last().unwrap()[0], "TOTAL");
        for (i, name) in table[0].iter().enumerate().skip(1) {
            if name.starts_with("pct_") || name.contains("avg") {
                continue;
            }
            let num = |s: &str| s.parse::<f64>().unwrap_or_else(|_| panic!("{name}: {s}"));
            let body = &table[1..table.len() - 1];
            let total = num(&table.last().unwrap()[i]);
            let expected = if name.ends_with("max_s") {
                body.iter().map(|l| num(&l[i])).fold(0.0, f64::max)
            } else {
                body.iter().map(|l| num(&l[i])).sum()
            };
            assert!((total - expected).abs() < 1e-9, "{by:?} {name}");
        }
        if by == GroupBy::Commune {
            assert!(
                table
                    .iter()
                    .any(|l| l[0] == "2026-11 92160 Saint-Cloud, \"bas\"")
            );
        }
        let json = render(&report, Format::Json);
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }
}

#[test]
fn bad_requests_say_what_is_wrong() {
    assert_eq!(
        Period::parse("2026-11-31", "2026-12-01"),
        Err(ReportError::BadDate("2026-11-31".into()))
    );
    assert!(matches!(
        Period::parse("2026-12-01", "2026-11-01"),
        Err(ReportError::Reversed { .. })
    ));
    assert_eq!(
        Period::parse("2000-01-01", "2026-01-01"),
        Err(ReportError::TooLong)
    );
    // The calendar's ends: an empty report, no panic, no endless loop.
    for (from, to) in [
        ("+262142-12-25", "+262142-12-31"),
        ("0001-01-01", "0001-01-03"),
    ] {
        let period = Period::parse(from, to).unwrap();
        for by in GroupBy::ALL {
            assert_eq!(ReportBuilder::new(period, by).finish().total.received, 0);
        }
    }
    assert_eq!(
        "week".parse::<GroupBy>(),
        Err(ReportError::BadGrouping("week".into()))
    );
    assert_eq!(
        "xls".parse::<Format>().unwrap_err().to_string(),
        "unknown format \"xls\" (table, csv, json)"
    );
}

#[test]
fn the_table_aligns_and_shows_empty_cells_as_dashes() {
    let text = render(&november(GroupBy::Line), Format::Table);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "report 2026-11-01 .. 2026-11-30 (Europe/Paris) by line"
    );
    assert!(lines[1].starts_with("line   received"), "{}", lines[1]);
    assert!(lines[4].starts_with("TOTAL         7"), "{}", lines[4]);
    assert!(lines[3].contains(" - "), "{}", lines[3]);
}
