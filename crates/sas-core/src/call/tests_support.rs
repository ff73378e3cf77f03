//! Shared helpers of the switchboard's virtual-time tests.

use super::*;
use crate::pii::CallerNumber;
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
    b.handle(
        Now::at(now),
        CallInput::Enqueue {
            call: call.into(),
            queue: "arm".into(),
            role: "arm".into(),
            priority,
        },
    );
}

/// A call arrives and queues straight for `role`.
pub fn arrive_in(b: &mut Switchboard, now: EpochMillis, call: &str, role: &str) {
    arrived(b, now, call, "escalade");
    b.handle(
        Now::at(now),
        CallInput::Enqueue {
            call: call.into(),
            queue: role.into(),
            role: role.into(),
            priority: 0,
        },
    );
}

/// A call arrives (not queued yet).
pub fn arrived(b: &mut Switchboard, now: EpochMillis, call: &str, line: &str) {
    b.handle(
        Now::at(now),
        CallInput::Arrived {
            call: call.into(),
            sip_call_id: format!("sip-{call}"),
            line: line.into(),
            called: "15".into(),
            caller: CallerNumber::new("0612345678"),
        },
    );
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

pub fn finished(outputs: &[CallOutput]) -> Option<&CallRecord> {
    outputs.iter().find_map(|o| match o {
        CallOutput::Finished(r) => Some(r.as_ref()),
        _ => None,
    })
}

pub fn online(b: &mut Switchboard, now: EpochMillis, seat: &str) {
    b.handle(Now::at(now), CallInput::SeatOnline { seat: seat.into() });
}
