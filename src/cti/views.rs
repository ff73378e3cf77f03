//! What consoles and supervisors are shown, read from the Router's state (sans-IO): a
//! seat's status with its call and its wrap-up call, and the supervisors' board (an
//! escalation as the wallboard shows it, the supervisor monitoring a call). The call
//! driver answers CTI requests with these.

use crate::acd::SeatState;
use crate::call::router::Router;
use crate::time::Now;
use sas_core::wallboard::Escalation;
use serde_json::{Value, json};

/// The seat, its state and its call as the console shows them.
pub fn seat_status(router: &Router, seat: &str, now: Now) -> Value {
    let Some(s) = router.board().acd().seat(seat) else {
        return Value::Null;
    };
    let call = router.current_call(seat).and_then(|call| {
        let record = router.board().record(call)?;
        let route = router.trace(call);
        Some(json!({
            "id": record.id,
            "line": record.line,
            "called": record.called,
            // The seat needs the number (call back); it is health data: HTTPS only.
            "caller": record.caller.reveal(),
            "arrived_at": record.arrived_at,
            "waited_ms": record.answered_at.unwrap_or(now.wall).saturating_sub(record.arrived_at),
            "queue": record.queue,
            "urgency": router.board().urgency(call),
            // Accompanying a transfer nobody answered yet (leaving leaves the caller alone).
            "accompanying": router.board().accompanying(call),
            "route": route,
            "tags": record.tags,
            "handlers": record.handlers,
            "file": record.file,
        }))
    });
    json!({
        "seat": s.id,
        "role": s.role,
        "state": s.state,
        "skills": s.skills,
        "calls_taken": s.calls_taken,
        "pause_after_call": s.pause_after_call,
        "call": call,
        "wrap_up": wrap_up(router, seat),
    })
}

/// Queues, waiting calls and seats, for supervisors.
pub fn overview(router: &Router, now: Now) -> Value {
    let acd = router.board().acd();
    let seats: Vec<Value> = acd
        .seats()
        .map(|s| json!({"seat": s.id, "role": s.role, "state": s.state}))
        .collect();
    let calls: Vec<Value> = router
        .board()
        .records()
        .map(|r| {
            // An escalated call waits again (for AMU…) though an ARM answered it once.
            let since = router.board().waiting_since(&r.id);
            let ringing: Vec<&str> = acd
                .seats()
                .filter(|s| matches!(&s.state, SeatState::Ringing { call, .. } if *call == r.id))
                .map(|s| s.id.as_str())
                .collect();
            json!({
                "id": r.id,
                "line": r.line,
                "queue": r.queue,
                "seat": r.seat,
                "seats": router.board().seats_on(&r.id),
                "ringing": ringing,
                "urgency": router.board().urgency(&r.id),
                "waiting": since.is_some(),
                "forwarding": router.board().forwarding(&r.id),
                "waiting_since": since,
                "waiting_ms": since.map_or(0, |s| now.wall.saturating_sub(s)),
                "answered": r.answered_at.is_some(),
                // Waiting again for a regulator (AMU…) since an ARM escalated it.
                "escalation": Escalation::of(router, &r.id),
                // A supervisor on the call: who, listen/whisper/barge, its leg answered.
                "monitor": router.monitoring(&r.id),
            })
        })
        .collect();
    json!({
        "now": now.wall,
        "waiting": router.board().calls_waiting(),
        "calls": calls,
        "seats": seats,
    })
}

/// The wrap-up call of a seat's status: its last call, when it is on none.
fn wrap_up(router: &Router, seat: &str) -> Value {
    match router.wrap_up(seat) {
        Some(w) => json!({
            "id": w.id, "line": w.line, "called": w.called, "ended_at": w.ended_at,
            "file": w.file,
        }),
        None => Value::Null,
    }
}
