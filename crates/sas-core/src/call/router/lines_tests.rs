//! Lines switched to the backup centre and the automatic overflow there (`backup`,
//! `backup_when`), on virtual time.

use super::tests::{PLAN, PROMPTS, admit_with, outputs, router, router_one_waiting};
use super::*;
use crate::call::tests_support::{T0, load_plan};

/// [`PLAN`] straight to its queue (no menu), with a `backup` step and these entry keys.
fn plan(keys: &str) -> String {
    let menu = PLAN.find("[entries.sas.steps.menu]").unwrap();
    let file = PLAN.find("[entries.sas.steps.file]").unwrap();
    let without_menu = format!("{}{}", &PLAN[..menu], &PLAN[file..]);
    without_menu.replace(
        "start = \"menu\"",
        &format!("start = \"file\"\nbackup = \"renfort\"\n{keys}"),
    )
}

fn plans(text: &str) -> PlanSet {
    load_plan(text, PROMPTS, &[]).unwrap()
}

fn dialled(r: &mut Router, call: &str) -> bool {
    outputs(r).iter().any(|o| {
        matches!(o, RouterOutput::Call(CallOutput::Dial { call: c, number })
            if c == call && number == "0102030405")
    })
}

fn switch(by: &str) -> LineSwitch {
    LineSwitch {
        by: by.into(),
        reason: "évacuation du plateau".into(),
        since: T0,
        node: Some("a".into()),
    }
}

/// A router where c1 and c2 wait in the queue of `text`'s line (no seat online).
fn two_waiting(text: &str) -> (Router, Now) {
    let mut r = router();
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", text, false);
    admit_with(&mut r, t, "c2", text, false);
    outputs(&mut r);
    assert_eq!(r.board().calls_waiting(), 2);
    (r, t)
}

fn online(r: &mut Router, now: Now, seat: &str) {
    r.handle_call(now, CallInput::SeatOnline { seat: seat.into() });
}

#[test]
fn a_switched_line_forwards_new_calls_at_once_until_restored() {
    let text = plan("");
    let mut r = router();
    let t = Now::at(T0);
    online(&mut r, t, "arm1");
    r.switch_line(t, &plans(&text), "sas", switch("sup1"), false)
        .unwrap();
    admit_with(&mut r, t, "c1", &text, false);
    assert!(dialled(&mut r, "c1"), "forwarded at once");
    assert!(
        r.trace("c1")[0].contains("line switched"),
        "{:?}",
        r.trace("c1")
    );
    assert_eq!(r.switched_lines()["sas"].by, "sup1");
    // Restored: the next call is queued (and rings the seat).
    assert_eq!(
        r.restore_line("sas").unwrap().reason,
        "évacuation du plateau"
    );
    admit_with(&mut r, t.plus(1_000), "c2", &text, false);
    assert!(!dialled(&mut r, "c2"));
    assert_eq!(r.board().calls_waiting(), 1);
    assert_eq!(
        r.restore_line("sas"),
        Err(LineSwitchError::NotSwitched("sas".into()))
    );
}

#[test]
fn switching_with_move_waiting_moves_the_queued_calls_of_the_line() {
    let text = plan("");
    let (mut r, t) = two_waiting(&text);
    let moved = r
        .switch_line(t.plus(5_000), &plans(&text), "sas", switch("sup1"), true)
        .unwrap();
    assert_eq!(moved, 2);
    let outs = outputs(&mut r);
    let dials = outs
        .iter()
        .filter(|o| matches!(o, RouterOutput::Call(CallOutput::Dial { .. })))
        .count();
    assert_eq!(dials, 2, "{outs:?}");
    assert_eq!(r.board().calls_waiting(), 0);
    assert_eq!(r.poll_timeout(), None, "their max-wait timers are gone");
}

/// A switch made on another node, applied here: without `move_waiting` the calls waiting
/// here stay (new ones go to the backup); with it they go to the backup step too.
#[test]
fn following_another_nodes_switch_moves_the_waiting_calls_only_when_it_did() {
    let text = plan("");
    let mut r = router();
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", &text, false);
    outputs(&mut r);
    assert_eq!(
        r.follow_switch(t.plus(1_000), "sas", switch("sup1"), false),
        0
    );
    assert_eq!(r.board().calls_waiting(), 1, "stays in its queue");
    assert_eq!(r.switched_lines()["sas"].node.as_deref(), Some("a"));
    r.restore_line("sas").unwrap();
    admit_with(&mut r, t.plus(2_000), "c2", &text, false);
    outputs(&mut r);
    assert_eq!(
        r.follow_switch(t.plus(3_000), "sas", switch("sup1"), true),
        2
    );
    let dials = outputs(&mut r)
        .into_iter()
        .filter(|o| matches!(o, RouterOutput::Call(CallOutput::Dial { .. })))
        .count();
    assert_eq!(dials, 2);
    assert_eq!(r.board().calls_waiting(), 0);
    assert!(
        r.trace("c2").iter().any(|l| l.contains("line switched")),
        "{:?}",
        r.trace("c2")
    );
}

#[test]
fn a_line_without_backup_or_unknown_cannot_be_switched() {
    let mut r = router();
    let t = Now::at(T0);
    let without = plans(PLAN);
    assert_eq!(
        r.switch_line(t, &without, "sas", switch("sup1"), false),
        Err(LineSwitchError::NoBackup {
            line: "sas".into(),
            entry: "sas".into()
        })
    );
    assert_eq!(
        r.switch_line(t, &without, "psy", switch("sup1"), false),
        Err(LineSwitchError::UnknownLine("psy".into()))
    );
    // A line reached by internal numbers only (escalation) takes no trunk call.
    let internal = format!(
        "{PLAN}[entries.esc]\nnumbers = []\nline = \"esc\"\nstart = \"f\"\n\
         [entries.esc.steps.f]\nqueue = \"arm\"\n\
         [internal.esc]\nnumber = \"2009\"\nentry = \"esc\"\nstep = \"f\"\n"
    );
    let err = r.switch_line(t, &plans(&internal), "esc", switch("sup1"), false);
    assert_eq!(err, Err(LineSwitchError::NoTrunkEntry("esc".into())));
    assert!(err.unwrap_err().to_string().contains("nothing to switch"));
    assert!(r.switched_lines().is_empty());
}

#[test]
fn a_failed_backup_forward_waits_in_the_line_queue_and_is_not_bounced_back() {
    let text = plan("");
    let mut r = router();
    let t = Now::at(T0);
    r.restore_switch("sas", switch("sup1"));
    admit_with(&mut r, t, "c1", &text, false);
    assert!(dialled(&mut r, "c1"));
    let failed = CallInput::ExternalFailed {
        call: "c1".into(),
        status: Some(503),
    };
    r.handle_call(t.plus(2_000), failed);
    assert!(!dialled(&mut r, "c1"), "not forwarded again");
    assert_eq!(r.board().calls_waiting(), 1, "waits in its queue");
}

#[test]
fn no_seat_logged_in_sends_the_call_to_backup_at_once() {
    let text = plan("backup_when = [\"no_seat\"]");
    let mut r = router();
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", &text, false);
    assert!(dialled(&mut r, "c1"), "no arm logged in: backup at once");
    assert!(
        r.trace("c1")
            .iter()
            .any(|l| l.contains("no arm seat logged in and unpaused → backup renfort")),
        "{:?}",
        r.trace("c1")
    );
    online(&mut r, t.plus(1_000), "arm1");
    admit_with(&mut r, t.plus(1_000), "c2", &text, false);
    assert!(!dialled(&mut r, "c2"), "a seat is there: queued");
    // Logged out of the console counts as not logged in.
    r.handle_call(
        t.plus(2_000),
        CallInput::SeatOffline {
            seat: "arm1".into(),
        },
    );
    admit_with(&mut r, t.plus(3_000), "c3", &text, false);
    assert!(dialled(&mut r, "c3"));
}

/// `no_seat` looks at the queue's eligible seats (its role): every one paused, for any
/// reason, is an empty queue; one busy with a call still serves it (it will be free).
#[test]
fn no_seat_counts_paused_seats_out_and_busy_ones_in() {
    use crate::acd::PauseReason;
    use crate::call::router::SeatRequest;
    let text = plan("backup_when = [\"no_seat\"]");
    let seats = [("arm1", "arm"), ("arm2", "arm"), ("amu1", "regulateur_amu")];
    let mut r = Router::new(crate::call::tests_support::board_with(&seats), Now::at(T0));
    let t = Now::at(T0);
    for seat in ["arm1", "arm2", "amu1"] {
        online(&mut r, t, seat);
    }
    for (seat, reason) in [
        ("arm1", PauseReason::Break),
        ("arm2", PauseReason::RingNoAnswer),
    ] {
        r.seat_request(t, seat, SeatRequest::Pause(reason)).unwrap();
    }
    // A seat of another role does not serve the ARM queue.
    admit_with(&mut r, t, "c1", &text, false);
    assert!(dialled(&mut r, "c1"), "both ARMs paused: backup at once");
    r.seat_request(t.plus(1_000), "arm1", SeatRequest::Resume)
        .unwrap();
    admit_with(&mut r, t.plus(1_000), "c2", &text, false);
    assert!(!dialled(&mut r, "c2"), "arm1 back: queued, offered to it");
    assert!(matches!(
        r.board().acd().seat("arm1").unwrap().state,
        crate::acd::SeatState::Ringing { .. }
    ));
    admit_with(&mut r, t.plus(1_000), "c3", &text, false);
    assert!(
        !dialled(&mut r, "c3"),
        "arm1 ringing still serves the queue"
    );
}

#[test]
fn a_full_queue_sends_the_call_to_backup() {
    let text = plan("backup_when = [\"queue_full\"]");
    let mut r = router_one_waiting();
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", &text, false);
    assert!(!dialled(&mut r, "c1"));
    admit_with(&mut r, t, "c2", &text, false);
    assert!(dialled(&mut r, "c2"));
    assert!(
        r.trace("c2")
            .iter()
            .any(|l| l.contains("queue full → backup renfort")),
        "{:?}",
        r.trace("c2")
    );
}

#[test]
fn past_the_waiting_calls_threshold_calls_go_to_backup() {
    let text = plan("backup_when = [\"threshold\"]\nbackup_max_waiting = 2");
    let mut r = router();
    let t = Now::at(T0);
    for call in ["c1", "c2"] {
        admit_with(&mut r, t, call, &text, false);
        assert!(!dialled(&mut r, call), "{call} under the threshold");
    }
    admit_with(&mut r, t, "c3", &text, false);
    assert!(dialled(&mut r, "c3"), "2 already waiting");
    assert!(
        r.trace("c3")
            .iter()
            .any(|l| l.contains("2 calls waiting in arm"))
    );
}

#[test]
fn past_the_longest_wait_threshold_calls_go_to_backup() {
    let text = plan("backup_when = [\"threshold\"]\nbackup_max_wait_s = 60");
    let mut r = router();
    let t = Now::at(T0);
    admit_with(&mut r, t, "c1", &text, false);
    admit_with(&mut r, t.plus(20_000), "c2", &text, false);
    assert!(!dialled(&mut r, "c2"), "c1 waited 20 s");
    admit_with(&mut r, t.plus(61_000), "c3", &text, false);
    assert!(dialled(&mut r, "c3"), "c1 waited 61 s");
}

#[test]
fn backup_when_needs_a_backup_step_and_known_triggers() {
    let bad = [
        (
            PLAN.replace(
                "start = \"menu\"",
                "start = \"menu\"\nbackup_when = [\"no_seat\"]",
            ),
            "no `backup` step",
        ),
        (plan("backup_when = [\"sometimes\"]"), "unknown backup_when"),
        (
            plan("backup_when = [\"threshold\"]"),
            "needs backup_max_waiting",
        ),
        (
            PLAN.replace("start = \"menu\"", "start = \"menu\"\nbackup = \"nowhere\""),
            "nowhere",
        ),
    ];
    for (text, expected) in bad {
        let errors = load_plan(&text, PROMPTS, &[]).unwrap_err();
        let all = format!("{errors:?}");
        assert!(all.contains(expected), "{expected}: {all}");
    }
}

#[test]
fn the_waiting_count_follows_calls_whether_or_not_the_changes_were_taken() {
    // The driver takes the changed calls after every event; the count must hold on both
    // sides of that (debug builds also check it against a walk over every call).
    let text = plan("");
    let (mut r, t) = two_waiting(&text);
    r.take_changed();
    assert_eq!(r.board().calls_waiting(), 2, "taken: still both");
    r.handle_call(t.plus(1_000), CallInput::CallerGone { call: "c1".into() });
    assert_eq!(r.board().calls_waiting(), 1, "c1 gone, not taken yet");
    r.take_changed();
    assert_eq!(r.board().calls_waiting(), 1);
    // A seat comes: c2 rings it (still waiting), then is answered (no longer).
    online(&mut r, t.plus(2_000), "arm1");
    r.take_changed();
    assert_eq!(r.board().calls_waiting(), 1, "ringing still waits");
    r.handle_call(
        t.plus(3_000),
        CallInput::SeatAnswered {
            call: "c2".into(),
            seat: "arm1".into(),
        },
    );
    assert_eq!(r.board().calls_waiting(), 0);
    r.take_changed();
    assert_eq!(r.board().calls_waiting(), 0);
}
