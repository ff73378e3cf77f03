//! A forward that fails never loses the call: the step's `failed`, else the last queue,
//! else the line's queue with its audio.

use super::tests::{admit_with, outputs};
use super::*;
use crate::call::tests_support::{T0, board};

/// A menu whose `2` forwards at once (never queued); `3` forwards with a `failed` step.
const PLAN: &str = r#"
[queues.arm]
role = "arm"
[queues.amu]
role = "amu"
[external]
ecoute = "3114"

[entries.sas]
numbers = ["116117"]
line = "sas"
start = "menu"

[entries.sas.steps.menu]
menu = "menu"
choices = { "2" = "vers_3114", "3" = "vers_3114_secours" }
timeout_s = 4
retries = 0
default = "file"

[entries.sas.steps.file]
queue = "arm"
hold = "attente"

[entries.sas.steps.vers_3114]
forward = "ecoute"

[entries.sas.steps.vers_3114_secours]
forward = "ecoute"
failed = "file_amu"

[entries.sas.steps.file_amu]
queue = "amu"
priority = 0
hold = "attente"
"#;

/// A call that pressed `key` at the menu; its forward is being dialled.
fn forwarded(key: char) -> (Router, Now) {
    let mut r = Router::new(board(&["arm1"]), Now::at(T0));
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", PLAN, false);
    let digit = crate::media::dtmf::DigitEvent {
        digit: key,
        at: T0 + 1_000,
        duration_ms: 100,
        source: crate::media::dtmf::DtmfSource::Rfc4733,
    };
    let call = "c1".into();
    r.handle_call(t.plus(1_000), CallInput::Digit { call, digit });
    let outs = outputs(&mut r);
    assert!(
        outs.iter()
            .any(|o| matches!(o, RouterOutput::Call(CallOutput::Dial { .. }))),
        "{outs:?}"
    );
    (r, t.plus(5_000))
}

fn fail_forward(r: &mut Router, now: Now) -> Vec<RouterOutput> {
    let failed = CallInput::ExternalFailed {
        call: "c1".into(),
        status: Some(503),
    };
    r.handle_call(now, failed);
    outputs(r)
}

fn hold_audio(outs: &[RouterOutput]) -> Option<String> {
    outs.iter().find_map(|o| match o {
        RouterOutput::Play { hold, .. } => hold.clone(),
        _ => None,
    })
}

#[test]
fn a_failed_forward_never_queued_waits_in_the_lines_queue_with_its_audio() {
    let (mut r, now) = forwarded('2');
    let outs = fail_forward(&mut r, now);
    assert_eq!(hold_audio(&outs).as_deref(), Some("attente"), "{outs:?}");
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, RouterOutput::Call(CallOutput::Finished(_)))),
        "the call is not lost: {outs:?}"
    );
    assert_eq!(r.board().calls_waiting(), 1);
    assert!(r.stranded().is_empty());
    assert!(
        r.trace("c1")
            .iter()
            .any(|s| s.contains("the line's queue file")),
        "{:?}",
        r.trace("c1")
    );
}

#[test]
fn a_failed_forward_goes_to_its_failed_step() {
    let (mut r, now) = forwarded('3');
    let outs = fail_forward(&mut r, now);
    assert_eq!(hold_audio(&outs).as_deref(), Some("attente"), "{outs:?}");
    assert_eq!(r.board().calls_waiting(), 1);
    let trace = r.trace("c1");
    assert!(
        trace
            .iter()
            .any(|s| s.contains("forward to ecoute failed → file_amu")),
        "{trace:?}"
    );
}

/// The shipped 15's shape with no `[trunk] outbound` (every forward fails at once) and
/// nobody logged in: the backup forward (no seat), then the max-wait overflow's, each fails
/// and the call waits again. It never loops: at most those two dials over ten minutes, no
/// timer left armed for it, and it is still waiting (never lost).
#[test]
fn forwards_that_always_fail_never_loop_the_call() {
    const SAMU: &str = r#"
[queues.arm]
role = "arm"
[external]
centre_secours = "0387000000"
[entries.sas]
numbers = ["116117"]
line = "sas"
start = "file"
backup = "secours"
backup_when = ["no_seat"]
[entries.sas.steps.file]
queue = "arm"
max_wait_s = 120
overflow = "secours"
[entries.sas.steps.secours]
forward = "centre_secours"
"#;
    let mut r = Router::new(board(&["arm1"]), Now::at(T0));
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", SAMU, false);
    let mut dials = 0;
    let mut at = t;
    for _ in 0..100 {
        let outs = outputs(&mut r);
        let dialled = outs
            .iter()
            .filter(|o| matches!(o, RouterOutput::Call(CallOutput::Dial { .. })))
            .count();
        dials += dialled;
        if dialled > 0 {
            let failed = CallInput::ExternalFailed {
                call: "c1".into(),
                status: None,
            };
            r.handle(at, RouterInput::Call(failed));
            continue;
        }
        match r.poll_timeout() {
            Some(next) if next <= t.plus(600_000).mono => {
                at = t.plus(next.saturating_sub(t.mono));
                r.handle_timeout(at);
            }
            _ => break,
        }
    }
    assert!((1..=2).contains(&dials), "{dials} dials");
    assert!(r.board().waiting_since("c1").is_some(), "still waiting");
    assert!(r.board().record("c1").is_some(), "not lost");
}
