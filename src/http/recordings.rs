//! Admin API for the audit log and recordings: `GET /api/audit?limit=N` and
//! `GET /api/calls/{id}/recording?as=NAME&purpose=TEXT`, which reads the WAV through
//! [`Recordings::open_for_reading`](crate::store::recordings::Recordings::open_for_reading),
//! so the read is audited under the name given.

use super::{HttpState, LIST_MAX, json, off_worker, query, reply};
use crate::store::recordings::RecordingAccessError;
use crate::time::wall_clock_now;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use std::io::Read;
use std::sync::Arc;

/// The newest audit entries (at most [`LIST_MAX`]).
pub(super) async fn audit(state: &HttpState, query: Option<&str>) -> Response<Full<Bytes>> {
    let limit = query::param(query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .min(LIST_MAX);
    let store = state.store.clone();
    off_worker(move || match store.audit_entries(limit) {
        Ok(entries) => json(StatusCode::OK, &entries),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("{e}\n"),
        ),
    })
    .await
}

/// The recording of call `id`, as `audio/wav`.
pub(super) async fn recording(
    state: Arc<HttpState>,
    id: String,
    query: Option<String>,
) -> Response<Full<Bytes>> {
    let query = query.as_deref();
    let Some(actor) = query::param(query, "as") else {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "say who reads: ?as=NAME\n",
        );
    };
    let purpose = query::param(query, "purpose");
    // Audit write (a sled flush) and file read block: keep them off the async workers.
    // Recordings are read whole; a one-hour call is about 115 MB.
    let read = tokio::task::spawn_blocking(move || {
        let (_, mut file) = state.recordings.open_for_reading(
            wall_clock_now(),
            &state.store,
            &id,
            &actor,
            purpose.as_deref(),
        )?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| RecordingAccessError::Io {
                path: id.into(),
                source,
            })?;
        Ok::<_, RecordingAccessError>(bytes)
    })
    .await;
    let error = match read {
        Ok(Ok(bytes)) => return reply(StatusCode::OK, "audio/wav", bytes),
        Ok(Err(e)) => e,
        Err(e) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("{e}\n"),
            );
        }
    };
    let status = match &error {
        RecordingAccessError::InvalidActor => StatusCode::BAD_REQUEST,
        RecordingAccessError::UnknownCall(_) | RecordingAccessError::NoRecording(_) => {
            StatusCode::NOT_FOUND
        }
        RecordingAccessError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply(status, "text/plain", format!("{error}\n"))
}
