//! The wallboard page, `/wallboard`: full screen on a wall display (`?token=` the
//! `[wallboard] token`) or in a supervisor's browser (the console's session). Its assets
//! are compiled in, served with the console's headers; `board.js` draws the board for this
//! page and for the supervisor's panel in the console alike. The data comes over
//! `/api/wallboard/events` (`http/cti/wallboard.rs`).

use super::console::{CSS, HTML, JS, guard};
use super::reply;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

/// Path, content type, body.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "/wallboard",
        HTML,
        include_str!("../../assets/wallboard/index.html"),
    ),
    (
        "/wallboard/page.js",
        JS,
        include_str!("../../assets/wallboard/page.js"),
    ),
    (
        "/wallboard/board.js",
        JS,
        include_str!("../../assets/wallboard/board.js"),
    ),
    (
        "/wallboard/wallboard.css",
        CSS,
        include_str!("../../assets/wallboard/wallboard.css"),
    ),
];

/// The page or asset at `path` (GET), if it is one.
pub(super) fn serve(path: &str) -> Option<Response<Full<Bytes>>> {
    let (_, content_type, body) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    let mut response = reply(StatusCode::OK, content_type, *body);
    guard(&mut response);
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module an asset imports is served.
    #[test]
    fn every_imported_module_is_served() {
        for (_, _, body) in ASSETS {
            for import in body.split("from \"./").skip(1) {
                let file = import.split('"').next().unwrap();
                assert!(serve(&format!("/wallboard/{file}")).is_some(), "{file}");
            }
        }
        let console = include_str!("../../assets/console/wallboard.js");
        for import in console.split("from \"/wallboard/").skip(1) {
            let file = import.split('"').next().unwrap();
            assert!(serve(&format!("/wallboard/{file}")).is_some(), "{file}");
        }
        let page = serve("/wallboard").unwrap();
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    }
}
