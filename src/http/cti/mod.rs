//! CTI API: what seats' consoles and supervisors call over HTTP (JSON) and WebSocket.
//!
//! This module owns the network side of the CTI only: authentication (`sessions`), request
//! parsing and limits, and the mapping of the call driver's answers and [`CtiError`]s to
//! HTTP statuses. Every action becomes a [`CtiRequest`] sent through [`CtiChannels`]; the
//! driver decides. The reference for console authors is `docs/cti.md`.
//!
//! [`CtiChannels`]: crate::cti::CtiChannels

mod actions;
mod auth;
mod sessions;
mod wallboard;
mod ws;

pub use sessions::{CtiAccounts, SeatAccount};
pub(super) use wallboard::route as wallboard;

use super::{HttpState, Peer, constant_time_eq, json, query};
use crate::acd::{PauseReason, Urgency};
use crate::bans::{BanKey, Door};
use crate::cti::{CtiError, CtiRequest, PlansInForce, SupervisorAction, TransferMode};
use crate::store::StoreError;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sessions::{BadCredentials, Session};
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Request bodies are small JSON objects; anything bigger is refused unread.
const BODY_LIMIT: usize = 16 * 1024;
const HISTORY_DEFAULT: usize = 100;
const HISTORY_MAX: usize = 1000;

type HttpResponse = Response<Full<Bytes>>;

/// Why a CTI request failed, each with its HTTP status.
#[derive(Debug, Error)]
enum ApiError {
    #[error("bad seat or password")]
    BadLogin,
    #[error("too many failed logins, retry in {0} s")]
    Throttled(u64),
    #[error("a valid session token is required")]
    Unauthorized,
    #[error("supervisors only")]
    Forbidden,
    #[error(
        "cross-site request refused: a console sends X-Sas-Console: 1 from the router's own origin"
    )]
    CrossSite,
    #[error("not found")]
    NotFound,
    #[error("use {0}")]
    MethodNotAllowed(Method),
    #[error("request body over 16 KiB")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("limit must be a whole number")]
    BadLimit,
    #[error("a WebSocket upgrade (version 13) is expected here")]
    NotWebSocket,
    #[error("give one of source (an IP address) or user")]
    BadBanKey,
    #[error("seat history: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cti(#[from] CtiError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadLogin | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::NotFound | Self::Cti(CtiError::UnknownTarget(_) | CtiError::UnknownCall) => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(_)
            | Self::Json(_)
            | Self::BadLimit
            | Self::NotWebSocket
            | Self::BadBanKey
            | Self::Cti(CtiError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Cti(CtiError::NoCall | CtiError::Conflict(_)) => StatusCode::CONFLICT,
            Self::Cti(CtiError::Unavailable | CtiError::Storage(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn response(&self) -> HttpResponse {
        let mut response = json(self.status(), &json!({ "error": self.to_string() }));
        if let Self::MethodNotAllowed(allowed) = self {
            let value = hyper::header::HeaderValue::from_str(allowed.as_str())
                .expect("a method is a valid header value");
            response.headers_mut().insert(hyper::header::ALLOW, value);
        }
        if let Self::Throttled(seconds) = self {
            let value = hyper::header::HeaderValue::from(*seconds);
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, value);
        }
        response
    }
}

/// The routes, each with its one method.
enum Endpoint {
    Login,
    Seat(SeatRoute),
    Supervisor(SupervisorRoute),
}

/// Routes on the caller's own seat (a seat session).
enum SeatRoute {
    Logout,
    Status,
    Pause,
    Resume,
    Hangup,
    Transfer,
    File,
    Audio,
    Hold,
    Answer,
    History,
    Events,
}

/// Routes for a supervisor seat's session or the admin token.
enum SupervisorRoute {
    Overview,
    Bans,
    Unban,
    SeatHistory(String),
    SeatReset(String),
    Events,
    Lines,
    SwitchLine(String),
    RestoreLine(String),
    /// Listen, whisper, barge, stop, take over, move (`actions.rs`).
    Call(String, actions::CallAction),
    SeatUnpause(String),
    SeatLogout(String),
}

impl Endpoint {
    fn parse(path: &str) -> Option<(Method, Endpoint)> {
        use Endpoint::{Seat, Supervisor};
        let post = |e| Some((Method::POST, e));
        let get = |e| Some((Method::GET, e));
        match path {
            "/api/cti/login" => post(Endpoint::Login),
            "/api/cti/logout" => post(Seat(SeatRoute::Logout)),
            "/api/cti/status" => get(Seat(SeatRoute::Status)),
            "/api/cti/pause" => post(Seat(SeatRoute::Pause)),
            "/api/cti/resume" => post(Seat(SeatRoute::Resume)),
            "/api/cti/hangup" => post(Seat(SeatRoute::Hangup)),
            "/api/cti/transfer" => post(Seat(SeatRoute::Transfer)),
            "/api/cti/file" => post(Seat(SeatRoute::File)),
            "/api/cti/audio" => post(Seat(SeatRoute::Audio)),
            "/api/cti/hold" => post(Seat(SeatRoute::Hold)),
            "/api/cti/answer" => post(Seat(SeatRoute::Answer)),
            "/api/cti/history" => get(Seat(SeatRoute::History)),
            "/api/cti/events" => get(Seat(SeatRoute::Events)),
            "/api/supervisor/overview" => get(Supervisor(SupervisorRoute::Overview)),
            "/api/supervisor/events" => get(Supervisor(SupervisorRoute::Events)),
            "/api/supervisor/bans" => get(Supervisor(SupervisorRoute::Bans)),
            "/api/supervisor/bans/lift" => post(Supervisor(SupervisorRoute::Unban)),
            "/api/supervisor/lines" => get(Supervisor(SupervisorRoute::Lines)),
            _ if path.starts_with("/api/supervisor/lines/") => {
                let rest = path.strip_prefix("/api/supervisor/lines/")?;
                let (line, action) = rest.split_once('/')?;
                if line.is_empty() || action.contains('/') {
                    return None;
                }
                match action {
                    "switch" => post(Supervisor(SupervisorRoute::SwitchLine(line.into()))),
                    "restore" => post(Supervisor(SupervisorRoute::RestoreLine(line.into()))),
                    _ => None,
                }
            }
            _ if path.starts_with("/api/supervisor/calls/") => actions::parse(path),
            _ => {
                let rest = path.strip_prefix("/api/supervisor/seats/")?;
                let (seat, action) = rest.split_once('/')?;
                if seat.is_empty() || action.contains('/') {
                    return None;
                }
                match action {
                    "history" => get(Supervisor(SupervisorRoute::SeatHistory(seat.into()))),
                    "reset" => post(Supervisor(SupervisorRoute::SeatReset(seat.into()))),
                    "unpause" => post(Supervisor(SupervisorRoute::SeatUnpause(seat.into()))),
                    "logout" => post(Supervisor(SupervisorRoute::SeatLogout(seat.into()))),
                    _ => None,
                }
            }
        }
    }
}

/// Serves `/api/cti/…` and `/api/supervisor/…`.
/// `secure`: the request came over TLS.
pub(super) async fn route(
    state: Arc<HttpState>,
    req: Request<Incoming>,
    peer: Peer,
    shutdown: CancellationToken,
) -> HttpResponse {
    let secure = peer.secure;
    let result = match Endpoint::parse(req.uri().path()) {
        None => Err(ApiError::NotFound),
        Some((method, _)) if method != req.method() => Err(ApiError::MethodNotAllowed(method)),
        Some((_, Endpoint::Login)) => login(&state, req, peer).await,
        Some((_, Endpoint::Seat(route))) => seat(&state, route, req, secure, shutdown).await,
        Some((_, Endpoint::Supervisor(route))) => supervisor(&state, route, req, shutdown).await,
    };
    result.unwrap_or_else(|e| e.response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    seat: String,
    password: String,
}

/// The console's password is the SIP one unless the seat has its own: failures count
/// with SIP digest's in [`crate::bans`], and a ban there holds here too.
async fn login(
    state: &HttpState,
    req: Request<Incoming>,
    peer: Peer,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { seat, password } = body(req).await?;
    let accounts = &state.cti_accounts;
    let door = state.bans.check(peer.remote, Some(&seat));
    if door != Door::Open {
        tracing::info!(source = %peer.remote, "CTI login refused: banned");
        return Err(ApiError::Throttled(door.retry_after_s()));
    }
    let (token, account) = match accounts.login(&seat, &password, Instant::now()).await {
        Ok(opened) => opened,
        Err(BadCredentials) => {
            state.bans.failed("console", peer.remote, &seat);
            let known = accounts.seat(&seat).is_some();
            let seat = if known { seat.as_str() } else { "(not a seat)" };
            tracing::warn!(seat, source = %peer.remote, "CTI login refused");
            return Err(ApiError::BadLogin);
        }
    };
    state.bans.succeeded(peer.remote, &seat);
    let secure = peer.secure;
    let status = match state.cti.ask(&seat, CtiRequest::Login).await {
        Ok(status) => status,
        Err(e) => {
            accounts.revoke(&token);
            return Err(e.into());
        }
    };
    tracing::info!(seat, "CTI login");
    let answer = json!({
        "token": token,
        "seat": seat,
        "role": account.role,
        "supervisor": account.supervisor(),
        "status": status,
    });
    let cookie = auth::session_cookie(&token, secure);
    Ok(with_cookie(json(StatusCode::OK, &answer), cookie))
}

fn with_cookie(mut response: HttpResponse, cookie: hyper::header::HeaderValue) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(hyper::header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnbanBody {
    source: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    reason: String,
    #[serde(default)]
    move_waiting: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    reason: Option<PauseReason>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioBody {
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    held: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    sdp: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    target: String,
    #[serde(default)]
    mode: TransferMode,
    priority: Option<Urgency>,
}

async fn seat(
    state: &HttpState,
    route: SeatRoute,
    req: Request<Incoming>,
    secure: bool,
    shutdown: CancellationToken,
) -> Result<HttpResponse, ApiError> {
    let websocket = matches!(route, SeatRoute::Events);
    let credential = auth::credential(&req, websocket).ok_or(ApiError::Unauthorized)?;
    auth::same_site(&req, &credential)?;
    let Session { seat, .. } = state
        .cti_accounts
        .session(credential.token(), Instant::now())
        .ok_or(ApiError::Unauthorized)?;
    let request = match route {
        SeatRoute::Logout => {
            state.cti_accounts.revoke(credential.token());
            tracing::info!(seat, "CTI logout");
            let answer = state.cti.ask(&seat, CtiRequest::Logout).await?;
            let cleared = auth::cleared_cookie(secure);
            return Ok(with_cookie(json(StatusCode::OK, &answer), cleared));
        }
        SeatRoute::Status => CtiRequest::Status,
        SeatRoute::Pause => CtiRequest::Pause {
            reason: seat_pause_reason(body(req).await?)?,
        },
        SeatRoute::Resume => CtiRequest::Resume,
        SeatRoute::Hangup => CtiRequest::Hangup,
        SeatRoute::Transfer => {
            let TransferBody {
                target,
                mode,
                priority,
            } = body(req).await?;
            CtiRequest::Transfer {
                target,
                mode,
                urgency: priority,
            }
        }
        SeatRoute::File => CtiRequest::Qualify(body(req).await?),
        SeatRoute::Audio => {
            let AudioBody { enabled } = body(req).await?;
            CtiRequest::Audio { enabled }
        }
        SeatRoute::Hold => {
            let HoldBody { held } = body(req).await?;
            CtiRequest::Hold { held }
        }
        SeatRoute::Answer => {
            let AnswerBody { sdp } = body(req).await?;
            CtiRequest::Answer { sdp }
        }
        SeatRoute::History => return history(state, &seat, req.uri().query()),
        SeatRoute::Events => {
            let key = ws::accept_key(&req)?;
            let events = state.cti.events.subscribe();
            let status = state.cti.ask(&seat, CtiRequest::Status).await?;
            let hello = json!({ "kind": "hello", "status": status });
            let feed = ws::Feed::Events {
                events,
                seat: Some(seat),
            };
            return Ok(ws::upgrade(req, &key, Some(hello), feed, shutdown));
        }
    };
    let answer = state.cti.ask(&seat, request).await?;
    Ok(json(StatusCode::OK, &answer))
}

/// A seat may pause itself for these reasons only; the others are the router's.
fn seat_pause_reason(body: PauseBody) -> Result<PauseReason, CtiError> {
    match body.reason.unwrap_or(PauseReason::Requested) {
        r @ (PauseReason::Requested | PauseReason::Break | PauseReason::OtherTask) => Ok(r),
        r => Err(CtiError::Invalid(format!(
            "pause reason {} is set by the router",
            r.label()
        ))),
    }
}

/// Whether `req` may read reports: the admin token, or a supervisor's session (bearer or
/// the console's cookie, from the router's own pages). `Err` is the status to answer.
pub(super) fn may_read_reports(
    state: &HttpState,
    req: &Request<Incoming>,
) -> Result<(), StatusCode> {
    let credential = auth::credential(req, false).ok_or(StatusCode::UNAUTHORIZED)?;
    auth::same_site(req, &credential).map_err(|_| StatusCode::FORBIDDEN)?;
    let token = credential.token();
    if constant_time_eq(token.as_bytes(), state.admin_token.as_bytes()) {
        return Ok(());
    }
    match state.cti_accounts.session(token, Instant::now()) {
        Some(session) if session.supervisor => Ok(()),
        Some(_) => Err(StatusCode::FORBIDDEN),
        None => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn supervisor(
    state: &HttpState,
    route: SupervisorRoute,
    req: Request<Incoming>,
    shutdown: CancellationToken,
) -> Result<HttpResponse, ApiError> {
    let websocket = matches!(route, SupervisorRoute::Events);
    let credential = auth::credential(&req, websocket).ok_or(ApiError::Unauthorized)?;
    auth::same_site(&req, &credential)?;
    let token = credential.token();
    // The driver answers configured seats only: the admin token asks as a stand-in seat.
    let admin = constant_time_eq(token.as_bytes(), state.admin_token.as_bytes());
    let asking = if admin {
        let seat = state.cti_accounts.overview_seat();
        seat.ok_or(CtiError::Unavailable)?.to_string()
    } else {
        match state.cti_accounts.session(token, Instant::now()) {
            Some(session) if session.supervisor => session.seat,
            Some(_) => return Err(ApiError::Forbidden),
            None => return Err(ApiError::Unauthorized),
        }
    };
    match route {
        SupervisorRoute::Bans => Ok(json(StatusCode::OK, &state.bans.list())),
        SupervisorRoute::Unban => {
            let UnbanBody { source, user } = body(req).await?;
            let key = match (source, user) {
                (Some(ip), None) => BanKey::Source(ip.parse().map_err(|_| ApiError::BadBanKey)?),
                (None, Some(name)) => BanKey::User(name),
                _ => return Err(ApiError::BadBanKey),
            };
            if !state.bans.lift(&key) {
                return Err(ApiError::NotFound);
            }
            tracing::info!(by = %asking, kind = key.kind(), "ban lifted");
            Ok(json(StatusCode::OK, &json!({ "lifted": key })))
        }
        SupervisorRoute::Overview => {
            let overview = state.cti.ask(&asking, CtiRequest::Overview).await?;
            Ok(json(StatusCode::OK, &overview))
        }
        SupervisorRoute::SeatHistory(seat) => match state.cti_accounts.seat(&seat) {
            Some(_) => history(state, &seat, req.uri().query()),
            None => Err(ApiError::NotFound),
        },
        SupervisorRoute::SeatReset(seat) => match state.cti_accounts.seat(&seat) {
            Some(_) => {
                let request = CtiRequest::Reset { seat };
                Ok(json(
                    StatusCode::OK,
                    &state.cti.ask(&asking, request).await?,
                ))
            }
            None => Err(ApiError::NotFound),
        },
        SupervisorRoute::Lines => {
            let plans = PlansInForce(state.plans.current().plans);
            let lines = state.cti.ask(&asking, CtiRequest::Lines { plans }).await?;
            Ok(json(StatusCode::OK, &lines))
        }
        SupervisorRoute::SwitchLine(line) => {
            let SwitchBody {
                reason,
                move_waiting,
            } = body(req).await?;
            let request = CtiRequest::SwitchLine {
                line,
                reason,
                move_waiting,
                by: if admin {
                    "admin".into()
                } else {
                    asking.clone()
                },
                plans: PlansInForce(state.plans.current().plans),
            };
            Ok(json(
                StatusCode::OK,
                &state.cti.ask(&asking, request).await?,
            ))
        }
        SupervisorRoute::RestoreLine(line) => {
            let RestoreBody { reason } = body(req).await?;
            let by = if admin {
                "admin".into()
            } else {
                asking.clone()
            };
            let request = CtiRequest::RestoreLine { line, reason, by };
            Ok(json(
                StatusCode::OK,
                &state.cti.ask(&asking, request).await?,
            ))
        }
        SupervisorRoute::Call(call, action) => {
            let by = if admin { None } else { Some(asking.as_str()) };
            actions::on_call(state, req, (&asking, by), call, action).await
        }
        SupervisorRoute::SeatUnpause(seat) | SupervisorRoute::SeatLogout(seat)
            if state.cti_accounts.seat(&seat).is_none() =>
        {
            Err(ApiError::NotFound)
        }
        SupervisorRoute::SeatUnpause(seat) => {
            let by = if admin { "admin" } else { asking.as_str() };
            let action = SupervisorAction::Unpause { seat };
            actions::ask(state, &asking, by, action).await
        }
        SupervisorRoute::SeatLogout(seat) => {
            let by = if admin { "admin" } else { asking.as_str() };
            let ended = state.cti_accounts.revoke_seat(&seat);
            tracing::info!(%seat, %by, consoles = ended, "seat logged out by a supervisor");
            let action = SupervisorAction::Logout { seat };
            actions::ask(state, &asking, by, action).await
        }
        SupervisorRoute::Events => {
            let key = ws::accept_key(&req)?;
            let events = state.cti.events.subscribe();
            let overview = state.cti.ask(&asking, CtiRequest::Overview).await?;
            let hello = json!({ "kind": "hello", "overview": overview });
            let feed = ws::Feed::Events { events, seat: None };
            Ok(ws::upgrade(req, &key, Some(hello), feed, shutdown))
        }
    }
}

fn history(state: &HttpState, seat: &str, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let limit = match query::param(query, "limit") {
        Some(v) => v.parse::<usize>().map_err(|_| ApiError::BadLimit)?,
        None => HISTORY_DEFAULT,
    };
    let events = state.store.seat_history(seat, limit.min(HISTORY_MAX))?;
    Ok(json(StatusCode::OK, &events))
}

/// The JSON body (an empty body reads as `{}`), at most [`BODY_LIMIT`] bytes.
async fn body<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let collected = Limited::new(req.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                ApiError::TooLarge
            } else {
                ApiError::Body(e)
            }
        })?;
    let bytes = collected.to_bytes();
    let text: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
    Ok(serde_json::from_slice(text)?)
}
