//! The wallboard's data: `GET /api/wallboard/events` (a WebSocket sending a board every
//! second, `{"kind":"wallboard","board":…}`) and `GET /api/wallboard` (the next board, for
//! scripts). Read-only, and free of caller numbers: open to a supervisor's session (the
//! console's cookie, or bearer), the admin token, or `[wallboard] token`, the wall
//! displays' token (`?token=` on the WebSocket, or bearer). Another seat's session: 403.

use super::{ApiError, HttpResponse, auth, ws};
use crate::http::{HttpState, constant_time_eq, reply};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The driver draws a board every second while someone watches: the next one comes soon.
const NEXT_BOARD: Duration = Duration::from_secs(3);

/// Serves `/api/wallboard` and `/api/wallboard/events`.
pub(in crate::http) async fn route(
    state: Arc<HttpState>,
    req: Request<Incoming>,
    shutdown: CancellationToken,
) -> HttpResponse {
    let path = req.uri().path();
    let result = match path {
        "/api/wallboard" | "/api/wallboard/events" if req.method() != Method::GET => {
            Err(ApiError::MethodNotAllowed(Method::GET))
        }
        "/api/wallboard/events" => events(&state, req, shutdown),
        "/api/wallboard" => next_board(&state, &req).await,
        _ => Err(ApiError::NotFound),
    };
    result.unwrap_or_else(|e| e.response())
}

/// A supervisor's session, the admin token or the wall displays' token.
fn may_watch(state: &HttpState, req: &Request<Incoming>, websocket: bool) -> Result<(), ApiError> {
    let credential = auth::credential(req, websocket).ok_or(ApiError::Unauthorized)?;
    auth::same_site(req, &credential)?;
    let token = credential.token();
    let is = |secret: &str| constant_time_eq(token.as_bytes(), secret.as_bytes());
    if is(&state.admin_token) || state.wallboard_token.as_deref().is_some_and(is) {
        return Ok(());
    }
    match state.cti_accounts.session(token, Instant::now()) {
        Some(session) if session.supervisor => Ok(()),
        Some(_) => Err(ApiError::Forbidden),
        None => Err(ApiError::Unauthorized),
    }
}

fn events(
    state: &HttpState,
    req: Request<Incoming>,
    shutdown: CancellationToken,
) -> Result<HttpResponse, ApiError> {
    may_watch(state, &req, true)?;
    let key = ws::accept_key(&req)?;
    let feed = ws::Feed::Boards(state.wallboard.subscribe());
    Ok(ws::upgrade(req, &key, None, feed, shutdown))
}

async fn next_board(state: &HttpState, req: &Request<Incoming>) -> Result<HttpResponse, ApiError> {
    may_watch(state, req, false)?;
    let mut boards = state.wallboard.subscribe();
    match tokio::time::timeout(NEXT_BOARD, boards.changed()).await {
        Ok(Ok(())) => {
            let text = boards.borrow_and_update().to_string();
            Ok(reply(StatusCode::OK, "application/json", text))
        }
        _ => Err(crate::cti::CtiError::Unavailable.into()),
    }
}
