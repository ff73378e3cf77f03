//! HTTP server (hyper): `/metrics`, `/healthz`, and the local admin read API for call
//! records (`/api/calls`, `/api/calls/{id}`) that `sas-router calls` uses while the router
//! holds the database; `recordings` adds the audit log and audited recording reads;
//! `dialplans` shows the dial plans in force and reloads them; `cti` serves seats' consoles
//! and supervisors (`/api/cti/…`, `/api/supervisor/…`, session tokens of their own);
//! `console` serves the seat console's page (`/console`); `shared` reads the calls of
//! every node from the shared store (`/api/calls?source=shared`); `reports` serves the
//! activity reports (`/api/reports`, the `/reports` page).
//!
//! `serve` is plain HTTP, `serve_tls` the same routes over TLS (`[http] tls_listen`); a
//! route knows which one it came through (the console cookie is `Secure` over TLS only).
//! Both take connections through a [`Doorway`] (caps per source and in total) and close a
//! connection whose request headers do not arrive within `limits.header_timeout_s` of its
//! opening or of the previous answer (slow clients, idle keep-alive holders).
//!
//! The admin API needs `Authorization: Bearer <token>`, where the token is written at
//! start-up to `<data_dir>/admin.token` (mode 0600): whoever may read the data directory
//! may read the records through the API, nobody else. `/metrics` is open to loopback
//! clients of plain HTTP (the local Prometheus, the CLI); from anywhere else, HTTPS
//! included, it needs the bearer token of `<data_dir>/metrics.token` (or the admin one).
//! Every answer over TLS carries `Strict-Transport-Security`, so a browser that reached
//! the console once never falls back to plain HTTP.

mod console;
pub mod cti;
mod dialplans;
pub mod query;
mod recordings;
mod reports;
mod shared;
mod wallboard;

use crate::cti::CtiChannels;
use crate::metrics::Metrics;
use crate::net::limits::{Doorway, Permit};
use crate::net::overload::ShedReason;
use crate::net::reload::LivePlans;
use crate::store::Store;
use crate::store::recordings::Recordings;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// What the handlers read.
pub struct HttpState {
    /// Metrics to render.
    pub metrics: Metrics,
    /// Call records.
    pub store: Store,
    /// Recording files, read only through their audited accessor.
    pub recordings: Recordings,
    /// Bearer token of the admin API.
    pub admin_token: String,
    /// Bearer token of `/metrics` for scrapers that are not local.
    pub metrics_token: String,
    /// The dial plans in force (shown and reloaded by the admin API).
    pub plans: Arc<LivePlans>,
    /// Commands to the call driver and its events, for the CTI API.
    pub cti: CtiChannels,
    /// Seats allowed on the CTI API and their open sessions.
    pub cti_accounts: cti::CtiAccounts,
    /// Failed logins and bans, shared with SIP digest.
    pub bans: crate::bans::shared::Guard,
    /// Time for a request's headers (from the connection or the previous answer).
    pub header_timeout: Duration,
    /// The shared store, read by `/api/calls?source=shared` (`None`: not configured).
    pub shared: Option<crate::shared_store::SharedStoreConfig>,
    /// The boards the call driver draws, for wallboard WebSockets.
    pub wallboard: crate::net::wallboard::WallboardFeed,
    /// `[wallboard] token`: wall displays' read-only access.
    pub wallboard_token: Option<String>,
}

/// Serves plain HTTP until `shutdown` is cancelled.
pub async fn serve(doorway: Doorway, state: Arc<HttpState>, shutdown: CancellationToken) {
    accept(doorway, None, state, shutdown).await
}

/// Serves HTTPS until `shutdown` is cancelled.
pub async fn serve_tls(
    doorway: Doorway,
    tls: TlsAcceptor,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) {
    accept(doorway, Some(tls), state, shutdown).await
}

async fn accept(
    mut doorway: Doorway,
    tls: Option<TlsAcceptor>,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) {
    while let Some((stream, remote, permit)) = doorway.next(&shutdown).await {
        let (state, shutdown, tls) = (state.clone(), shutdown.clone(), tls.clone());
        let peer = Peer {
            secure: tls.is_some(),
            remote: remote.ip(),
        };
        let gate = doorway.gate().clone();
        tokio::spawn(async move {
            let timed_out = match tls {
                None => connection(stream, peer, permit, state, shutdown).await,
                Some(acceptor) => match crate::net::tls::handshake(&acceptor, stream).await {
                    Ok(stream) => connection(stream, peer, permit, state, shutdown).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "https handshake failed");
                        e.kind() == std::io::ErrorKind::TimedOut
                    }
                },
            };
            if timed_out {
                gate.timed_out();
            }
        });
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// It came over TLS.
    pub secure: bool,
    /// Its address.
    pub remote: IpAddr,
}

/// Serves one connection's requests until it closes, times out (true) or is evicted.
async fn connection<S>(
    stream: S,
    peer: Peer,
    permit: Permit,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = state.header_timeout;
    let service = service_fn(move |req| {
        let state = state.clone();
        let shutdown = shutdown.clone();
        async move {
            let mut response = route(state, req, peer, shutdown).await;
            if peer.secure {
                response
                    .headers_mut()
                    .insert("strict-transport-security", HSTS.clone());
            }
            Ok::<_, Infallible>(response)
        }
    });
    // Upgrades: the CTI event WebSockets (authenticated; they outlive the header timeout).
    let serving = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let result = tokio::select! {
        result = serving => result,
        _ = permit.evicted.cancelled() => return false,
    };
    match result {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(error = %e, "http connection ended with an error");
            e.is_timeout()
        }
    }
}

/// `200 ok`, or `503` while shedding new trunk calls (`net::overload`): a proxy in front
/// (Kamailio's dispatcher) then prefers another centre.
fn healthz(metrics: &Metrics) -> Response<Full<Bytes>> {
    let gauge = |r: &ShedReason| metrics.overload_shedding.with_label_values(&[r.label()]);
    match ShedReason::ALL.iter().find(|r| gauge(r).get() > 0) {
        Some(reason) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("overloaded: {}\n", reason.label()),
        ),
        None => reply(StatusCode::OK, "text/plain", "ok\n"),
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("static response parts")
}

/// Most records or audit entries one list answers (a larger `limit=N` is taken as this).
pub(super) const LIST_MAX: usize = 1000;

/// Answers with `answer` run on the blocking pool: a list of a thousand records takes
/// milliseconds to decode and encode, and the async worker carries every call's SIP.
async fn off_worker(
    answer: impl FnOnce() -> Response<Full<Bytes>> + Send + 'static,
) -> Response<Full<Bytes>> {
    tokio::task::spawn_blocking(answer)
        .await
        .unwrap_or_else(|e| {
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("{e}\n"),
            )
        })
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string(),
        ),
    }
}

async fn route(
    state: Arc<HttpState>,
    req: Request<Incoming>,
    peer: Peer,
    shutdown: CancellationToken,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path.starts_with("/api/cti/") || path.starts_with("/api/supervisor/") {
        return cti::route(state, req, peer, shutdown).await;
    }
    if path.starts_with("/api/wallboard") {
        return cti::wallboard(state, req, shutdown).await;
    }
    if path.starts_with("/api/dialplans") {
        if !authorised(&state, &req) {
            return reply(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "admin token required\n",
            );
        }
        return match (req.method(), path.as_str()) {
            (&Method::GET, "/api/dialplans") => dialplans::in_force(&state),
            (&Method::POST, "/api/dialplans/reload") => dialplans::reload(state).await,
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        };
    }
    if path == "/api/reports" && req.method() == Method::GET {
        return reports::api(state, req).await;
    }
    if req.method() == Method::GET
        && let Some(page) = reports::page(&path)
    {
        return page;
    }
    if req.method() == Method::GET
        && let Some(page) = wallboard::serve(&path)
    {
        return page;
    }
    if let Some(page) = console::serve(req.method(), &path) {
        return page;
    }
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    let recording = path
        .strip_prefix("/api/calls/")
        .and_then(|p| p.strip_suffix("/recording"));
    if path == "/api/audit" || recording.is_some() {
        if !authorised(&state, &req) {
            return reply(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "admin token required\n",
            );
        }
        let query = req.uri().query().map(str::to_string);
        return match recording {
            Some(id) => recordings::recording(state.clone(), id.to_string(), query).await,
            None => match shared::wants_shared(query.as_deref()) {
                Some(true) => shared::audit(&state, query.as_deref()).await,
                Some(false) => recordings::audit(&state, query.as_deref()).await,
                None => shared::bad_source(),
            },
        };
    }
    match path.as_str() {
        // A load balancer stops sending calls to a router that drains.
        "/healthz" if state.metrics.draining.get() > 0 => {
            reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
        }
        "/healthz" => healthz(&state.metrics),
        "/metrics" if !may_scrape(&state, &req, peer) => reply(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            "metrics token required (data_dir/metrics.token)\n",
        ),
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        ),
        p if p == "/api/calls" || p.starts_with("/api/calls/") => {
            if !authorised(&state, &req) {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    "text/plain",
                    "admin token required\n",
                );
            }
            let query = req.uri().query();
            let id = p.strip_prefix("/api/calls/");
            match shared::wants_shared(query) {
                Some(true) => return shared::calls(&state, id, query).await,
                Some(false) => {}
                None => return shared::bad_source(),
            }
            match id {
                Some(id) => match state.store.get_call(id) {
                    Ok(Some(record)) => json(StatusCode::OK, &record),
                    Ok(None) => reply(StatusCode::NOT_FOUND, "text/plain", "no such call\n"),
                    Err(e) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        e.to_string(),
                    ),
                },
                None => {
                    let limit = query_limit(query).unwrap_or(50).min(LIST_MAX);
                    let store = state.store.clone();
                    off_worker(move || match store.recent_calls(limit) {
                        Ok(list) => json(StatusCode::OK, &list),
                        Err(e) => reply(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "text/plain",
                            e.to_string(),
                        ),
                    })
                    .await
                }
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// One year, the usual HSTS lifetime; no `includeSubDomains`: other hosts of the
/// plateau's domain are not ours to decide for.
const HSTS: hyper::header::HeaderValue =
    hyper::header::HeaderValue::from_static("max-age=31536000");

fn authorised(state: &HttpState, req: &Request<Incoming>) -> bool {
    bearer_is(req, &state.admin_token)
}

/// Loopback over plain HTTP scrapes freely; anyone else shows a token.
fn may_scrape(state: &HttpState, req: &Request<Incoming>, peer: Peer) -> bool {
    (!peer.secure && peer.remote.is_loopback())
        || bearer_is(req, &state.metrics_token)
        || authorised(state, req)
}

fn bearer_is(req: &Request<Incoming>, token: &str) -> bool {
    let expected = format!("Bearer {token}");
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| constant_time_eq(v.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_limit(query: Option<&str>) -> Option<usize> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .and_then(|v| v.parse().ok())
}
