//! `/api/calls?source=shared` and `/api/calls/{id}?source=shared`: the calls of every
//! node, read from the shared store (PostgreSQL) on a connection of their own; each record
//! as `/api/calls` gives it, plus its `node`. A call id several nodes used needs
//! `node=NAME`.

use super::{HttpState, json, reply};
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

/// The calls of every node, newest first (`id` absent), or the call `id`.
pub(super) async fn calls(
    state: &HttpState,
    id: Option<&str>,
    query: Option<&str>,
) -> Response<Full<Bytes>> {
    let Some(config) = &state.shared else {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "no shared store configured ([shared_store] url)\n",
        );
    };
    let unavailable = |e: crate::shared_store::SharedError| {
        tracing::warn!(error = %e, "shared store read failed");
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("shared store unavailable: {e}\n"),
        )
    };
    let reader = match Reader::connect(config).await {
        Ok(reader) => reader,
        Err(e) => return unavailable(e),
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
