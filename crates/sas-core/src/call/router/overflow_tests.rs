//! Overflow timing on virtual time (moved from real-time end-to-end tests, which keep one
//! smoke test each): a forward after the queue's max wait that fails waits again in the
//! queue with no deadline; a full queue overflows at the same instant.

use super::tests::{PLAN, admit, admit_with, outputs, router, router_one_waiting};
use super::*;
use crate::call::tests_support::T0;

fn key(r: &mut Router, now: Now, call: &str) {
    let digit = crate::media::dtmf::DigitEvent {
        digit: '1',
        at: now.wall,
        duration_ms: 100,
        source: crate::media::dtmf::DtmfSource::Rfc4733,
    };
    r.handle_call(
        now,
        CallInput::Digit {
            call: call.into(),
            digit,
        },
    );
}

fn dialled(outs: &[RouterOutput]) -> bool {
    outs.iter()
        .any(|o| matches!(o, RouterOutput::Call(CallOutput::Dial { .. })))
}

#[test]
fn a_forward_failing_after_the_max_wait_waits_again_in_the_queue_without_a_deadline() {
    let mut r = router();
    let t = Now::at(T0);
    admit(&mut r, t, "c1");
    key(&mut r, t.plus(1_000), "c1");
    outputs(&mut r);
    r.handle_timeout(t.plus(31_000));
    assert!(dialled(&outputs(&mut r)), "overflow after 30 s");
    let failed = CallInput::ExternalFailed {
        call: "c1".into(),
        status: None,
    };
    r.handle_call(t.plus(33_000), failed);
    let outs = outputs(&mut r);
    let hold = outs.iter().find_map(|o| match o {
        RouterOutput::Play { hold, greeting, .. } => Some((hold.clone(), greeting.clone())),
        _ => None,
    });
    assert_eq!(hold, Some((Some("attente".into()), None)), "{outs:?}");
    assert_eq!(r.board().calls_waiting(), 1);
    assert_eq!(r.poll_timeout(), None, "no second overflow");
    // A seat comes: it is offered the call.
    r.handle_call(
        t.plus(40_000),
        CallInput::SeatOnline {
            seat: "arm1".into(),
        },
    );
    let ring = RouterOutput::Call(CallOutput::RingSeat {
        call: "c1".into(),
        seat: "arm1".into(),
    });
    assert!(outputs(&mut r).contains(&ring));
}

#[test]
fn a_call_refused_by_a_full_queue_overflows_at_the_same_instant() {
    let mut r = router_one_waiting();
    let t = Now::at(T0);
    for call in ["c1", "c2"] {
        admit(&mut r, t, call);
        key(&mut r, t.plus(1_000), call);
    }
    let outs = outputs(&mut r);
    let dial = RouterOutput::Call(CallOutput::Dial {
        call: "c2".into(),
        number: "0102030405".into(),
    });
    assert!(outs.contains(&dial), "at once, not after 30 s: {outs:?}");
    assert!(
        r.trace("c2")
            .iter()
            .any(|l| l.contains("queue arm full → overflow to renfort")),
        "{:?}",
        r.trace("c2")
    );
    assert_eq!(r.board().calls_waiting(), 1, "c1 still waits");
}

#[test]
fn a_call_admitted_under_overload_starts_at_its_entrys_on_overload_step() {
    let plan = PLAN.replace(
        "start = \"menu\"",
        "start = \"menu\"\non_overload = \"renfort\"",
    );
    let mut r = router();
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", &plan, true);
    let outs = outputs(&mut r);
    assert!(dialled(&outs), "forwarded at once, no menu: {outs:?}");
    // Not shed: the same plan without overload starts at its menu.
    admit_with(&mut r, t, "c2", &plan, false);
    assert!(!dialled(&outputs(&mut r)));
    // An entry without on_overload (plans reloaded meanwhile) starts as usual.
    admit_with(&mut r, t, "c3", PLAN, true);
    assert!(!dialled(&outputs(&mut r)));
}
