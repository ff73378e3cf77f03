//! `/api/calls?source=shared`, `/api/calls/{id}?source=shared` and
//! `/api/audit?source=shared`: the calls and audit entries of every node, read from the
//! shared store (PostgreSQL) on a connection of their own; each record or entry as the
//! local routes give it, plus its `node`. A call id several nodes used needs `node=NAME`.

use super::{HttpState, json, reply};
use crate::shared_store::SharedError;
use crate::shared_store::pg::Reader;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

/// Where `/api/calls` reads: this node's sled (`source=local`, the default) or the
/// shared store (`source=shared`); `None` for any other value.
pub(super) fn wants_shared(query: Option<&str>) -> Option<bool> {
    match super::query::param(query, "source").as_deref() {
        None | Some("local") => Some(false),
        Some("shared") => Some(true),
        Some(_) => None,
    }
}

/// The answer to a `source` that is neither `local` nor `shared`.
pub(super) fn bad_source() -> Response<Full<Bytes>> {
    let text = "source is `local` (the default) or `shared`\n";
    reply(StatusCode::BAD_REQUEST, "text/plain", text)
}

/// A failed read: PostgreSQL is down, slow or refuses.
fn unavailable(e: SharedError) -> Response<Full<Bytes>> {
    tracing::warn!(error = %e, "shared store read failed");
    let text = format!("shared store unavailable: {e}\n");
    reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", text)
}

/// A connection to the shared store, or the answer saying why not.
async fn reader(state: &HttpState) -> Result<Reader, Response<Full<Bytes>>> {
    let Some(config) = &state.shared else {
        let text = "no shared store configured ([shared_store] url)\n";
        return Err(reply(StatusCode::BAD_REQUEST, "text/plain", text));
    };
    Reader::connect(config).await.map_err(unavailable)
}

/// Every node's newest audit entries.
pub(super) async fn audit(state: &HttpState, query: Option<&str>) -> Response<Full<Bytes>> {
    let reader = match reader(state).await {
        Ok(reader) => reader,
        Err(answer) => return answer,
    };
    let limit = super::query_limit(query).unwrap_or(50);
    match reader.audit_entries(limit).await {
        Ok(entries) => json(StatusCode::OK, &entries),
        Err(e) => unavailable(e),
    }
}

/// The calls of every node, newest first (`id` absent), or the call `id`.
pub(super) async fn calls(
    state: &HttpState,
    id: Option<&str>,
    query: Option<&str>,
) -> Response<Full<Bytes>> {
    let reader = match reader(state).await {
        Ok(reader) => reader,
        Err(answer) => return answer,
    };
    let Some(id) = id else {
        let limit = super::query_limit(query).unwrap_or(50);
        return match reader.recent_calls(limit).await {
            Ok(list) => json(StatusCode::OK, &list),
            Err(e) => unavailable(e),
        };
    };
    let node = super::query::param(query, "node");
    let found = match reader.calls_by_id(id).await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let mut found: Vec<_> = found
        .into_iter()
        .filter(|r| node.as_ref().is_none_or(|n| *n == r.node))
        .collect();
    match found.len() {
        0 => reply(StatusCode::NOT_FOUND, "text/plain", "no such call\n"),
        1 => json(StatusCode::OK, &found.remove(0)),
        _ => {
            let nodes: Vec<&str> = found.iter().map(|r| r.node.as_str()).collect();
            let text = format!(
                "call {id} is on several nodes ({}): add node=NAME\n",
                nodes.join(", ")
            );
            reply(StatusCode::CONFLICT, "text/plain", text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_local_unless_shared_is_asked_and_anything_else_is_refused() {
        assert_eq!(wants_shared(None), Some(false));
        assert_eq!(wants_shared(Some("limit=5")), Some(false));
        assert_eq!(wants_shared(Some("source=local&limit=5")), Some(false));
        assert_eq!(wants_shared(Some("limit=5&source=shared")), Some(true));
        assert_eq!(wants_shared(Some("source=Shared")), None);
        assert_eq!(wants_shared(Some("source=")), None);
    }
}
