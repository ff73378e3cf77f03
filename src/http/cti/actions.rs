//! Supervisors' actions on a live call: `POST /api/supervisor/calls/{id}/listen`
//! (`{"mode": "listen"|"whisper"|"barge", "seat": …}`), `…/stop`, `…/takeover`, `…/move`
//! (`{"queue": …, "priority": "P1"}`). The monitoring seat is the supervisor's own (the
//! admin token names one); the driver decides and audits ([`SupervisorAction`]).

use super::{ApiError, Endpoint, HttpResponse, SupervisorRoute, body};
use crate::acd::Urgency;
use crate::cti::{CtiError, CtiRequest, MonitorMode, SupervisorAction};
use crate::http::{HttpState, json};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;

/// What is done to the call.
pub(super) enum CallAction {
    Listen,
    Stop,
    TakeOver,
    Move,
}

/// `/api/supervisor/calls/{id}/{action}`: all POST.
pub(super) fn parse(path: &str) -> Option<(Method, Endpoint)> {
    let rest = path.strip_prefix("/api/supervisor/calls/")?;
    let (call, action) = rest.split_once('/')?;
    if call.is_empty() || action.contains('/') {
        return None;
    }
    let action = match action {
        "listen" => CallAction::Listen,
        "stop" => CallAction::Stop,
        "takeover" => CallAction::TakeOver,
        "move" => CallAction::Move,
        _ => return None,
    };
    let route = SupervisorRoute::Call(call.into(), action);
    Some((Method::POST, Endpoint::Supervisor(route)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenBody {
    #[serde(default)]
    mode: MonitorMode,
    seat: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeatBody {
    seat: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    queue: Option<String>,
    priority: Option<Urgency>,
}

/// One action on `call`. `asking`: the seat the driver answers (the admin token's stand-in);
/// `by`: the supervisor's own seat, `None` for the admin token.
pub(super) async fn on_call(
    state: &HttpState,
    req: Request<Incoming>,
    (asking, by): (&str, Option<&str>),
    call: String,
    action: CallAction,
) -> Result<HttpResponse, ApiError> {
    let action = match action {
        CallAction::Listen => {
            let ListenBody { mode, seat } = body(req).await?;
            let seat = monitoring_seat(state, by, seat)?;
            SupervisorAction::Monitor { call, seat, mode }
        }
        CallAction::Stop => {
            let SeatBody { seat } = body(req).await?;
            let seat = monitoring_seat(state, by, seat)?;
            SupervisorAction::StopMonitor { call, seat }
        }
        CallAction::TakeOver => {
            let SeatBody { seat } = body(req).await?;
            let seat = monitoring_seat(state, by, seat)?;
            SupervisorAction::TakeOver { call, seat }
        }
        CallAction::Move => {
            let MoveBody { queue, priority } = body(req).await?;
            if queue.is_none() && priority.is_none() {
                let why = "give a queue, a priority, or both".into();
                return Err(ApiError::Cti(CtiError::Invalid(why)));
            }
            SupervisorAction::Move {
                call,
                queue,
                priority,
            }
        }
    };
    ask(state, asking, by.unwrap_or("admin"), action).await
}

/// Sends the action to the driver, audited as `by`.
pub(super) async fn ask(
    state: &HttpState,
    asking: &str,
    by: &str,
    action: SupervisorAction,
) -> Result<HttpResponse, ApiError> {
    let request = CtiRequest::Supervise {
        by: by.into(),
        action,
    };
    let answer = state.cti.ask(asking, request).await?;
    Ok(json(StatusCode::OK, &answer))
}

/// The seat whose phone monitors: a supervisor's own (it may not name another), or the
/// supervisor seat the admin token names.
fn monitoring_seat(
    state: &HttpState,
    by: Option<&str>,
    seat: Option<String>,
) -> Result<String, ApiError> {
    let seat = match (by, seat) {
        (Some(own), None) => own.to_string(),
        (Some(own), Some(seat)) if seat == own => seat,
        (Some(_), Some(_)) => return Err(ApiError::Forbidden),
        (None, Some(seat)) => seat,
        (None, None) => {
            let why = "the admin token names the supervisor's seat (\"seat\")".into();
            return Err(ApiError::Cti(CtiError::Invalid(why)));
        }
    };
    match state.cti_accounts.seat(&seat) {
        Some(account) if account.supervisor() => Ok(seat),
        Some(_) => Err(ApiError::Cti(CtiError::Invalid(format!(
            "{seat} is not a supervisor's seat"
        )))),
        None => Err(ApiError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(path: &str) -> Option<&'static str> {
        match parse(path)? {
            (Method::POST, Endpoint::Supervisor(SupervisorRoute::Call(call, a))) => {
                assert_eq!(call, "c-1");
                Some(match a {
                    CallAction::Listen => "listen",
                    CallAction::Stop => "stop",
                    CallAction::TakeOver => "takeover",
                    CallAction::Move => "move",
                })
            }
            _ => None,
        }
    }

    #[test]
    fn call_actions_parse_and_nothing_else_does() {
        for a in ["listen", "stop", "takeover", "move"] {
            assert_eq!(action(&format!("/api/supervisor/calls/c-1/{a}")), Some(a));
        }
        for bad in [
            "/api/supervisor/calls/c-1/hangup",
            "/api/supervisor/calls//listen",
            "/api/supervisor/calls/c-1/listen/x",
            "/api/supervisor/calls/c-1",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
