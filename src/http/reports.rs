//! Activity reports over HTTP: `/api/reports?from=&to=&by=&format=` (the admin token or a
//! supervisor's session; `sas-router report` reads it while the router holds the database)
//! and `/reports`, a small page for supervisors and medical directors (the table, and its
//! CSV to download), served with the console's policy: same origin only, no inline script.

use super::{HttpState, cti, query, reply};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use sas_core::report::render::{Format, render};
use sas_core::report::{GroupBy, Period, ReportError};
use std::sync::Arc;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The page and its script, when `path` is one of them.
pub(super) fn page(path: &str) -> Option<Response<Full<Bytes>>> {
    let (content_type, body) = match path {
        "/reports" => (
            "text/html; charset=utf-8",
            include_str!("../../assets/reports/index.html"),
        ),
        "/reports/reports.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../assets/reports/reports.js"),
        ),
        _ => return None,
    };
    let mut response = reply(StatusCode::OK, content_type, body);
    let headers = response.headers_mut();
    headers.insert("content-security-policy", CSP.parse().expect("static"));
    headers.insert("cache-control", "no-store".parse().expect("static"));
    Some(response)
}

/// A report request, read from the query string.
struct Ask {
    period: Period,
    by: GroupBy,
    format: Format,
}

fn ask(q: Option<&str>) -> Result<Ask, ReportError> {
    let get = |name| query::param(q, name);
    let from = get("from").ok_or(ReportError::MissingFrom)?;
    let to = get("to").unwrap_or_else(|| from.clone());
    Ok(Ask {
        period: Period::parse(&from, &to)?,
        by: get("by").as_deref().unwrap_or("day").parse()?,
        format: get("format").as_deref().unwrap_or("json").parse()?,
    })
}

/// `GET /api/reports`.
pub(super) async fn api(state: Arc<HttpState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Err(status) = cti::may_read_reports(&state, &req) {
        let why = "the admin token or a supervisor's session is required\n";
        return reply(status, "text/plain", why);
    }
    let Ask { period, by, format } = match ask(req.uri().query()) {
        Ok(ask) => ask,
        Err(e) => return reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
    };
    // A year is read in seconds: off the async workers.
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || store.report(period, by)).await;
    match report {
        Ok(Ok(report)) => {
            let mut response = reply(
                StatusCode::OK,
                format.content_type(),
                render(&report, format),
            );
            if format == Format::Csv {
                let name = format!(
                    "attachment; filename=\"report-{}-{}-{}.csv\"",
                    period.from,
                    period.to,
                    by.label()
                );
                if let Ok(value) = name.parse() {
                    response.headers_mut().insert("content-disposition", value);
                }
            }
            response
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "report failed");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("store: {e}\n"),
            )
        }
        Err(e) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("{e}\n"),
        ),
    }
}
