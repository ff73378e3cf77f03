//! Admission, decided in the core: which INVITE becomes a call and where its dial plan
//! starts, and which is refused and how (status, Retry-After, whether it is recorded).
//! The dispatcher (`net/requests.rs`) reads the request, authenticates seats when told,
//! and carries the decision out; media and dialog failures after it stay IO errors.

use super::Dialled;
use crate::record::EndReason;
use crate::routing::plan::PlanSet;

/// What admission looks at in an INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite<'a> {
    /// It came from a trunk address.
    pub from_trunk: bool,
    /// The called number, normalised.
    pub called: &'a str,
    /// Its Max-Forwards.
    pub max_forwards: u32,
    /// The seat it authenticated as (`None`: not authenticated yet).
    pub seat: Option<&'a str>,
    /// Draining after SIGTERM: new calls are refused with this Retry-After (s).
    pub draining: Option<u32>,
}

/// What becomes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A new call, starting at `entry`'s plan (at `dialled`'s step for a seat).
    Accept {
        /// The plan entry.
        entry: String,
        /// Its line.
        line: String,
        /// Dialled by a seat.
        dialled: Option<Dialled>,
    },
    /// Only an authenticated seat may place it: authenticate, then ask again with `seat`.
    Authenticate,
    /// Refused.
    Refuse(Refusal),
}

/// How an INVITE is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The SIP status.
    pub status: u16,
    /// Recorded as a failed call with this end reason, on this line.
    pub recorded: Option<(EndReason, String)>,
    /// A Retry-After header, seconds.
    pub retry_after_s: Option<u32>,
}

impl Refusal {
    fn quiet(status: u16) -> Admission {
        Admission::Refuse(Refusal {
            status,
            recorded: None,
            retry_after_s: None,
        })
    }
}

/// Decides `invite` against the plans in force. The trunk reaches the entries' numbers;
/// internal numbers are for authenticated seats only, whatever the source; and a seat
/// reaches nothing else (no toll fraud, no seat calling the 15 through the router).
pub fn admit(plans: &PlanSet, invite: &Invite) -> Admission {
    // We forward the call to a seat: a request that may not travel further is refused
    // (loop protection, RFC 3261 §16.6 applied to our outgoing leg).
    if invite.max_forwards == 0 {
        return Refusal::quiet(483);
    }
    let internal = (plans.internal.values()).find(|i| i.number == invite.called);
    let (entry, dialled) = match (invite.from_trunk && internal.is_none(), invite.seat) {
        (true, _) => match plans.entry_for(invite.called) {
            Some(entry) => (entry, None),
            None => {
                return Admission::Refuse(Refusal {
                    status: 404,
                    recorded: Some((EndReason::UnknownNumber, "unknown".into())),
                    retry_after_s: None,
                });
            }
        },
        (false, None) => return Admission::Authenticate,
        (false, Some(seat)) => {
            let target = internal.and_then(|i| Some((plans.entries.get(&i.entry)?, i)));
            let Some((entry, i)) = target else {
                return Refusal::quiet(404);
            };
            let dialled = Dialled {
                seat: seat.into(),
                step: i.step.clone(),
            };
            (entry, Some(dialled))
        }
    };
    if let Some(retry) = invite.draining {
        // Shutting down: the trunk tries elsewhere or later; the refusal is recorded.
        return Admission::Refuse(Refusal {
            status: 503,
            recorded: Some((EndReason::ShuttingDown, entry.line.clone())),
            retry_after_s: Some(retry),
        });
    }
    Admission::Accept {
        entry: entry.name.clone(),
        line: entry.line.clone(),
        dialled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::tests_support::load_plan;

    const PLAN: &str = r#"
[queues.arm]
role = "arm"
[internal.amu]
number = "2001"
entry = "samu"
step = "file"
[entries.samu]
numbers = ["15"]
line = "samu"
start = "file"
[entries.samu.steps.file]
queue = "arm"
"#;

    fn plans() -> PlanSet {
        load_plan(PLAN, &[], &[]).unwrap()
    }

    fn invite<'a>(from_trunk: bool, called: &'a str, seat: Option<&'a str>) -> Invite<'a> {
        Invite {
            from_trunk,
            called,
            max_forwards: 70,
            seat,
            draining: None,
        }
    }

    #[test]
    fn the_trunk_reaches_entries_and_seats_only_internal_numbers() {
        let p = plans();
        let accept = |dialled| Admission::Accept {
            entry: "samu".into(),
            line: "samu".into(),
            dialled,
        };
        assert_eq!(admit(&p, &invite(true, "15", None)), accept(None));
        let unknown = admit(&p, &invite(true, "17", None));
        assert!(
            matches!(&unknown, Admission::Refuse(r) if r.status == 404
                && r.recorded == Some((EndReason::UnknownNumber, "unknown".into()))),
            "{unknown:?}"
        );
        // An internal number from the trunk, or anything from elsewhere: a seat's.
        assert_eq!(
            admit(&p, &invite(true, "2001", None)),
            Admission::Authenticate
        );
        assert_eq!(
            admit(&p, &invite(false, "15", None)),
            Admission::Authenticate
        );
        let dialled = Dialled {
            seat: "arm1".into(),
            step: "file".into(),
        };
        let by_seat = admit(&p, &invite(false, "2001", Some("arm1")));
        assert_eq!(by_seat, accept(Some(dialled)));
        let toll = admit(&p, &invite(false, "15", Some("arm1")));
        assert_eq!(toll, Refusal::quiet(404), "a seat does not call the 15");
        let mut looped = invite(true, "15", None);
        looped.max_forwards = 0;
        assert_eq!(admit(&p, &looped), Refusal::quiet(483));
    }

    #[test]
    fn while_draining_new_calls_are_refused_with_retry_after_and_recorded() {
        let p = plans();
        let mut draining = invite(true, "15", None);
        draining.draining = Some(30);
        let refused = Admission::Refuse(Refusal {
            status: 503,
            recorded: Some((EndReason::ShuttingDown, "samu".into())),
            retry_after_s: Some(30),
        });
        assert_eq!(admit(&p, &draining), refused);
        // An unknown number is still not ours, draining or not.
        draining.called = "17";
        assert!(matches!(admit(&p, &draining), Admission::Refuse(r) if r.status == 404));
    }
}
