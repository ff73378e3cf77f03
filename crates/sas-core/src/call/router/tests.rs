//! The Router on virtual time: a menu's key wait and a queue's max wait are named timers
//! on the monotonic clock; nothing is left armed for a call that ended.

use super::*;
use crate::acd::{QueueKey, QueueSettings};
use crate::call::tests_support::{T0, admission, board, load_plan};

pub(super) const PLAN: &str = r#"
[queues.arm]
role = "arm"
[external]
renfort = "0102030405"

[entries.sas]
numbers = ["116117"]
line = "sas"
start = "menu"

[entries.sas.steps.menu]
menu = "menu"
choices = { "1" = "file" }
timeout_s = 4
retries = 0
default = "file"

[entries.sas.steps.file]
queue = "arm"
hold = "attente"
max_wait_s = 30
overflow = "renfort"

[entries.sas.steps.renfort]
forward = "renfort"
"#;

/// The prompts [`PLAN`] and its variants play.
pub(super) const PROMPTS: &[&str] = &["menu", "attente"];

pub(super) fn router() -> Router {
    Router::new(board(&["arm1"]), Now::at(T0))
}

/// [`router`] whose ARM queue takes one waiting call at most.
pub(super) fn router_one_waiting() -> Router {
    let mut board = board(&["arm1"]);
    let one = QueueSettings {
        max_waiting: Some(1),
        ..Default::default()
    };
    board.set_queue(QueueKey::role("arm"), one);
    Router::new(board, Now::at(T0))
}

pub(super) fn admit(r: &mut Router, now: Now, call: &str) {
    admit_with(r, now, call, PLAN, false);
}

/// [`admit`] on `plan`, `overloaded` or not.
pub(super) fn admit_with(r: &mut Router, now: Now, call: &str, plan: &str, overloaded: bool) {
    let plans = load_plan(plan, PROMPTS, &[]).unwrap();
    r.handle(now, admission(call, "sas", "116117", plans, overloaded));
}

pub(super) fn outputs(r: &mut Router) -> Vec<RouterOutput> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn plays(outs: &[RouterOutput]) -> Vec<(u64, Option<String>, Option<String>)> {
    outs.iter()
        .filter_map(|o| match o {
            RouterOutput::Play {
                play,
                greeting,
                hold,
                ..
            } => Some((*play, greeting.clone(), hold.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn menu_key_wait_then_queue_max_wait_then_overflow_on_one_timer_table() {
    let mut r = router();
    let t = Now::at(T0);
    admit(&mut r, t, "c1");
    let outs = outputs(&mut r);
    assert_eq!(plays(&outs), vec![(1, Some("menu".into()), None)]);
    assert_eq!(r.poll_timeout(), None, "no key wait before the prompt ends");
    r.handle(
        t.plus(3_000),
        RouterInput::PromptEnded {
            call: "c1".into(),
            play: 1,
        },
    );
    let key_wait = Mono::from_millis(T0 + 7_000);
    assert_eq!(r.poll_timeout(), Some(key_wait));
    r.handle_timeout(t.plus(6_999));
    assert!(plays(&outputs(&mut r)).is_empty(), "not before its time");
    r.handle_timeout(t.plus(7_000));
    // Nobody online: the call waits with its hold audio and a deadline.
    assert_eq!(
        plays(&outputs(&mut r)),
        vec![(2, None, Some("attente".into()))]
    );
    assert_eq!(r.board().calls_waiting(), 1);
    assert_eq!(r.poll_timeout(), Some(Mono::from_millis(T0 + 37_000)));
    r.handle_timeout(t.plus(37_000));
    let outs = outputs(&mut r);
    assert!(
        outs.contains(&RouterOutput::Call(CallOutput::Dial {
            call: "c1".into(),
            number: "0102030405".into()
        })),
        "{outs:?}"
    );
    assert_eq!(r.poll_timeout(), None);
    r.handle_call(t.plus(40_000), CallInput::CallerGone { call: "c1".into() });
    let outs = outputs(&mut r);
    let record = outs.iter().find_map(|o| match o {
        RouterOutput::Call(CallOutput::Finished(r)) => Some(r),
        _ => None,
    });
    let record = record.expect("the call ended");
    assert_eq!(
        record.plan_version.as_deref().map(str::is_empty),
        Some(false)
    );
    assert!(
        record.route.iter().any(|s| s.contains("overflow")),
        "{:?}",
        record.route
    );
    assert_eq!((r.orphan_timers(), r.poll_timeout()), (0, None));
}

#[test]
fn a_key_cuts_the_menu_short_and_a_caller_leaving_disarms_its_timers() {
    let mut r = router();
    let t = Now::at(T0);
    admit(&mut r, t, "c1");
    outputs(&mut r);
    let digit = crate::media::dtmf::DigitEvent {
        digit: '1',
        at: T0 + 1_000,
        duration_ms: 100,
        source: crate::media::dtmf::DtmfSource::Rfc4733,
    };
    r.handle_call(
        t.plus(1_000),
        CallInput::Digit {
            call: "c1".into(),
            digit,
        },
    );
    assert_eq!(
        plays(&outputs(&mut r)),
        vec![(2, None, Some("attente".into()))]
    );
    // The menu prompt's late end is moot: the call moved on.
    r.handle(
        t.plus(2_000),
        RouterInput::PromptEnded {
            call: "c1".into(),
            play: 1,
        },
    );
    assert_eq!(r.poll_timeout(), Some(Mono::from_millis(T0 + 31_000)));
    r.handle_call(t.plus(5_000), CallInput::CallerGone { call: "c1".into() });
    outputs(&mut r);
    assert_eq!((r.orphan_timers(), r.poll_timeout()), (0, None));
}
