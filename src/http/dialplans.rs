//! Dial plan admin API: `GET /api/dialplans` (the version in force, when it was loaded, its
//! entries) and `POST /api/dialplans/reload` (read and validate the files again; a refused
//! set answers 422 with every problem, and the live one stays).

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{HttpState, json};

#[derive(Serialize)]
struct InForce<'a> {
    version: &'a str,
    loaded_at: String,
    entries: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    numbers: &'a [String],
}

pub(super) fn in_force(state: &HttpState) -> Response<Full<Bytes>> {
    let routing = state.plans.current();
    let entries = routing
        .plans
        .entries
        .values()
        .map(|e| Entry {
            name: &e.name,
            numbers: &e.numbers,
        })
        .collect();
    json(
        StatusCode::OK,
        &InForce {
            version: &routing.plans.version,
            loaded_at: crate::time::rfc3339(routing.loaded_at),
            entries,
        },
    )
}

pub(super) async fn reload(state: Arc<HttpState>) -> Response<Full<Bytes>> {
    let plans = Arc::clone(&state.plans);
    match tokio::task::spawn_blocking(move || plans.reload("admin API")).await {
        Ok(report) if report.errors.is_empty() => json(StatusCode::OK, &report),
        Ok(report) => json(StatusCode::UNPROCESSABLE_ENTITY, &report),
        Err(e) => super::reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string(),
        ),
    }
}
