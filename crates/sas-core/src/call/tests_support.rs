//! Shared helpers of the crate's virtual-time tests: a switchboard with its seats, the
//! inputs of a trunk call, a dial plan loaded from one text and a call admitted into it.

use std::path::PathBuf;
use std::sync::Arc;

use super::router::RouterInput;
use super::*;
use crate::pii::CallerNumber;
use crate::routing::plan::{PlanError, PlanSet, load_texts};
use crate::time::SECOND;

pub const T0: EpochMillis = 1_790_000_000_000;

/// ARM seats only.
pub fn board(seats: &[&str]) -> Switchboard {
    let seats: Vec<(&str, &str)> = seats.iter().map(|s| (*s, "arm")).collect();
    board_with(&seats)
}

/// Seats `(id, role)`, all offline; 15 s ring timeout, 10 s wrap-up, autopause.
pub fn board_with(seats: &[(&str, &str)]) -> Switchboard {
    let settings = SwitchboardSettings {
        acd: AcdSettings {
            ring_timeout_ms: 15 * SECOND,
            wrap_up_ms: 10 * SECOND,
            autopause: true,
            autopause_resume_ms: 0,
            autopause_burst: 0,
            aging_step_ms: 0,
        },
        misdial_threshold_ms: 15 * SECOND,
    };
    let seats: Vec<(String, String)> = seats
        .iter()
        .map(|(s, r)| (s.to_string(), r.to_string()))
        .collect();
    Switchboard::new(settings, &seats, Now::at(T0))
}

/// A call arrives and queues for the ARM.
pub fn arrive(b: &mut Switchboard, now: EpochMillis, call: &str, line: &str, priority: u8) {
    arrived(b, now, call, line);
    b.handle(Now::at(now), queue_for(call, "arm", priority));
}

/// A call arrives and queues straight for `role`.
pub fn arrive_in(b: &mut Switchboard, now: EpochMillis, call: &str, role: &str) {
    arrived(b, now, call, "escalade");
    b.handle(Now::at(now), queue_for(call, role, 0));
}

/// A call arrives (not queued yet).
pub fn arrived(b: &mut Switchboard, now: EpochMillis, call: &str, line: &str) {
    b.handle(Now::at(now), arrival(call, line, "15"));
}

/// A trunk call from 0612345678 to `called` on `line`.
pub fn arrival(call: &str, line: &str, called: &str) -> CallInput {
    CallInput::Arrived {
        call: call.into(),
        sip_call_id: format!("sip-{call}"),
        line: line.into(),
        called: called.into(),
        caller: CallerNumber::new("0612345678"),
    }
}

/// The call queues for `role`, in the queue of that name.
pub fn queue_for(call: &str, role: &str, priority: u8) -> CallInput {
    CallInput::Enqueue {
        call: call.into(),
        queue: role.into(),
        role: role.into(),
        priority,
    }
}

/// `text` as the only dial plan file, these prompts and schedules known.
pub fn load_plan(
    text: &str,
    prompts: &[&str],
    schedules: &[&str],
) -> Result<PlanSet, Vec<PlanError>> {
    load_texts(
        vec![(PathBuf::from("plan.toml"), text.into())],
        prompts,
        schedules,
    )
}

/// A trunk call to `called` on `line`, admitted into the entry named as its line.
pub fn admission(
    call: &str,
    line: &str,
    called: &str,
    plans: PlanSet,
    overloaded: bool,
) -> RouterInput {
    RouterInput::Admitted {
        arrived: arrival(call, line, called),
        plans: Arc::new(plans),
        entry: line.into(),
        dialled: None,
        overloaded,
    }
}

/// Drains outputs, dropping seat state changes (checked separately).
/// What the driver must do with calls (seat states and supervisor alerts left out).
pub fn actions(b: &mut Switchboard) -> Vec<CallOutput> {
    std::iter::from_fn(|| b.poll_output())
        .filter(|o| {
            !matches!(
                o,
                CallOutput::SeatChanged { .. }
                    | CallOutput::SeatAutopaused { .. }
                    | CallOutput::MissBurst { .. }
            )
        })
        .collect()
}

pub fn ring(call: &str, seat: &str) -> CallOutput {
    CallOutput::RingSeat {
        call: call.into(),
        seat: seat.into(),
    }
}

pub fn cancel(call: &str, seat: impl Into<Party>) -> CallOutput {
    CallOutput::CancelSeat {
        call: call.into(),
        seat: seat.into(),
    }
}

pub fn bridge(call: &str, seat: impl Into<Party>) -> CallOutput {
    CallOutput::Bridge {
        call: call.into(),
        seat: seat.into(),
    }
}

pub fn hang_up(call: &str, seat: impl Into<Party>) -> CallOutput {
    CallOutput::HangUpSeat {
        call: call.into(),
        seat: seat.into(),
    }
}

/// `seat` hung up on `call` (its BYE).
pub fn seat_gone(call: &str, seat: &str) -> CallInput {
    CallInput::SeatGone {
        call: call.into(),
        seat: seat.into(),
    }
}

pub fn finished(outputs: &[CallOutput]) -> Option<&CallRecord> {
    outputs.iter().find_map(|o| match o {
        CallOutput::Finished(r) => Some(r.as_ref()),
        _ => None,
    })
}

/// `seat` answers `call`.
pub fn answered_by(call: &str, seat: &str) -> CallInput {
    CallInput::SeatAnswered {
        call: call.into(),
        seat: seat.into(),
    }
}

/// `seat` answers `call` at `now`.
pub fn answer(b: &mut Switchboard, now: EpochMillis, call: &str, seat: &str) {
    b.handle(Now::at(now), answered_by(call, seat));
}

/// Who handled the call, in order, and why each left (none: still on it).
pub fn handlers(r: &CallRecord) -> Vec<(&str, Option<&str>)> {
    (r.handlers.iter())
        .map(|h| (h.seat.as_str(), h.left.as_deref()))
        .collect()
}

pub fn online(b: &mut Switchboard, now: EpochMillis, seat: &str) {
    b.handle(Now::at(now), CallInput::SeatOnline { seat: seat.into() });
}
