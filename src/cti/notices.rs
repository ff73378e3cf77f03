//! What a switchboard decision means for consoles, supervisors and the seats' history,
//! read from the Router's state (sans-IO): the call driver stores the history lines,
//! publishes the events and counts the alerts.

use super::CtiEvent;
use crate::call::router::Router;
use crate::call::{CallOutput, Party};
use crate::store::record::EventKind;
use crate::store::seat_log::SeatEvent;
use crate::time::Now;
use serde_json::json;

/// One thing to tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A line of a seat's history (stored, and published to its console and supervisors).
    SeatLog(SeatEvent),
    /// An event for supervisors.
    Cti(CtiEvent),
}

/// A seat history line.
pub fn seat_line(
    now: Now,
    seat: &str,
    kind: EventKind,
    call: Option<&str>,
    detail: Option<&str>,
) -> SeatEvent {
    SeatEvent {
        at: now.wall,
        seat: seat.into(),
        kind,
        from: None,
        to: None,
        call: call.map(str::to_string),
        detail: detail.map(str::to_string),
    }
}

/// The seats' history lines and supervisors' events `out` means.
pub fn notices(router: &Router, now: Now, out: &CallOutput) -> Vec<Notice> {
    let line = |seat: &str, kind: EventKind, call: Option<&str>, detail: Option<&str>| {
        Notice::SeatLog(seat_line(now, seat, kind, call, detail))
    };
    let supervisors = |call: Option<&str>, kind: &str, detail| {
        Notice::Cti(CtiEvent {
            at: now.wall,
            seat: None,
            call: call.map(str::to_string),
            kind: kind.into(),
            detail,
        })
    };
    match out {
        CallOutput::SeatChanged { seat, from, to } => vec![Notice::SeatLog(SeatEvent {
            at: now.wall,
            seat: seat.to_string(),
            kind: EventKind::State,
            from: Some((*from).into()),
            to: Some((*to).into()),
            call: None,
            detail: None,
        })],
        CallOutput::RingSeat { call, seat } => {
            let detail = router.board().record(call).map(|r| {
                let urgency = router.board().urgency(call).map(|u| u.label());
                let queue = r.queue.as_deref().unwrap_or("-");
                format!("{} {queue} {}", r.line, urgency.unwrap_or("NR"))
            });
            vec![line(seat, EventKind::Offer, Some(call), detail.as_deref())]
        }
        CallOutput::SeatLeft { call, seat } => {
            vec![line(seat.name(), EventKind::Left, Some(call), None)]
        }
        CallOutput::SeatAutopaused {
            seat,
            reason,
            until,
        } => {
            let detail = json!({ "seat": seat, "reason": reason.label(), "until": until });
            vec![
                line(seat, EventKind::Autopause, None, Some(reason.label())),
                supervisors(None, "seat_autopaused", detail),
            ]
        }
        CallOutput::MissBurst { seats } => {
            vec![supervisors(
                None,
                "seat_miss_burst",
                json!({ "seats": seats }),
            )]
        }
        CallOutput::Bridge {
            call,
            seat: Party::Seat(seat),
        } => {
            vec![line(seat, EventKind::Connect, Some(call), None)]
        }
        CallOutput::Conference { call } => (router.board().record(call).into_iter())
            .flat_map(|r| r.handlers.iter())
            .filter(|h| h.until.is_none() && h.seat != Party::EXTERNAL_NAME)
            .map(|h| {
                line(
                    &h.seat,
                    EventKind::Accompanied,
                    Some(call),
                    Some("three-way"),
                )
            })
            .collect(),
        CallOutput::Unaccompanied {
            call,
            seat,
            reachable,
        } => {
            let queue = router.board().record(call).and_then(|r| r.queue.clone());
            let detail = json!({
                "reason": "p0_unaccompanied",
                "seat": seat,
                "queue": queue,
                "overflow": !reachable,
            });
            vec![supervisors(Some(call), "alert", detail)]
        }
        CallOutput::Finished(record) => {
            let end = record.ended_at;
            let lines = (record.handlers.iter())
                .filter(|h| h.until == end && h.seat != Party::EXTERNAL_NAME)
                .map(|h| {
                    line(
                        &h.seat,
                        EventKind::CallEnd,
                        Some(&record.id),
                        h.left.as_deref(),
                    )
                });
            let detail = json!({
                "line": record.line,
                "outcome": record.outcome,
                "seat": record.seat,
                "urgency": record.urgency,
            });
            let end = supervisors(Some(&record.id), "call_end", detail);
            lines.chain([end]).collect()
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::tests_support::{T0, arrive, board};

    #[test]
    fn an_offer_is_a_history_line_and_a_call_end_tells_the_supervisors() {
        let mut b = board(&["arm1"]);
        arrive(&mut b, T0, "c1", "samu", 0);
        let router = Router::new(b, Now::at(T0));
        let ring = CallOutput::RingSeat {
            call: "c1".into(),
            seat: "arm1".into(),
        };
        let said = notices(&router, Now::at(T0), &ring);
        let [Notice::SeatLog(line)] = said.as_slice() else {
            panic!("{said:?}");
        };
        assert_eq!(
            (line.kind.as_str(), line.call.as_deref()),
            ("OFFER", Some("c1"))
        );
        assert!(
            line.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("samu "))
        );
        let burst = CallOutput::MissBurst {
            seats: vec!["arm1".into()],
        };
        let said = notices(&router, Now::at(T0), &burst);
        assert!(matches!(said.as_slice(), [Notice::Cti(e)] if e.kind == "seat_miss_burst"));
    }
}
