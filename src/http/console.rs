//! The seat console: static HTML, CSS and JavaScript modules from `assets/console/`, compiled
//! into the binary (no build step, no CDN, nothing to deploy beside the router), and the
//! router's icon at `/favicon.ico` (4 KiB). `/` redirects to `/console`. Every answer forbids caching (a new router version must not run with an old
//! page) and carries a same-origin-only Content-Security-Policy: the page may load and
//! connect to this server alone, and runs no inline script.

use super::reply;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; media-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub(super) const HTML: &str = "text/html; charset=utf-8";
pub(super) const JS: &str = "text/javascript; charset=utf-8";
pub(super) const CSS: &str = "text/css; charset=utf-8";
const ICON: &str = "image/x-icon";

/// A blue square with a white cross, 32×32.
const FAVICON: &[u8] = include_bytes!("../../assets/console/favicon.ico");

/// Path, content type, body.
const ASSETS: [(&str, &str, &str); 14] = [
    (
        "/console",
        HTML,
        include_str!("../../assets/console/index.html"),
    ),
    (
        "/console/console.css",
        CSS,
        include_str!("../../assets/console/console.css"),
    ),
    (
        "/console/api.js",
        JS,
        include_str!("../../assets/console/api.js"),
    ),
    (
        "/console/app.js",
        JS,
        include_str!("../../assets/console/app.js"),
    ),
    (
        "/console/board.js",
        JS,
        include_str!("../../assets/console/board.js"),
    ),
    (
        "/console/call.js",
        JS,
        include_str!("../../assets/console/call.js"),
    ),
    (
        "/console/dom.js",
        JS,
        include_str!("../../assets/console/dom.js"),
    ),
    (
        "/console/events.js",
        JS,
        include_str!("../../assets/console/events.js"),
    ),
    (
        "/console/history.js",
        JS,
        include_str!("../../assets/console/history.js"),
    ),
    (
        "/console/labels.js",
        JS,
        include_str!("../../assets/console/labels.js"),
    ),
    (
        "/console/media.js",
        JS,
        include_str!("../../assets/console/media.js"),
    ),
    (
        "/console/seat.js",
        JS,
        include_str!("../../assets/console/seat.js"),
    ),
    (
        "/console/supervise.js",
        JS,
        include_str!("../../assets/console/supervise.js"),
    ),
    (
        "/console/wallboard.js",
        JS,
        include_str!("../../assets/console/wallboard.js"),
    ),
];

/// The console's answer for `path`, or `None` when the path is not the console's.
pub(super) fn serve(method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
    let asset = match path {
        "/" => None,
        "/console/" => ASSETS.first().map(|(_, t, body)| (*t, body.as_bytes())),
        "/favicon.ico" => Some((ICON, FAVICON)),
        p => ASSETS
            .iter()
            .find(|(name, _, _)| *name == p)
            .map(|(_, t, body)| (*t, body.as_bytes()))
            .map(Some)?,
    };
    if method != Method::GET && method != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        response
            .headers_mut()
            .insert(hyper::header::ALLOW, "GET, HEAD".parse().expect("static"));
        return Some(response);
    }
    let mut response = match asset {
        Some((content_type, body)) => reply(StatusCode::OK, content_type, body),
        None => {
            let mut r = reply(StatusCode::SEE_OTHER, "text/plain", "");
            r.headers_mut()
                .insert(hyper::header::LOCATION, "/console".parse().expect("static"));
            r
        }
    };
    guard(&mut response);
    Some(response)
}

/// The headers of every page and asset of ours: no caching, same-origin only, no sniffing,
/// no referrer (a wall display's URL carries its token).
pub(super) fn guard(response: &mut Response<Full<Bytes>>) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(name, value.parse().expect("static header value"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_have_their_types_and_headers() {
        let r = serve(&Method::GET, "/console/app.js").unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], JS);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let page = serve(&Method::GET, "/console").unwrap();
        assert_eq!(page.headers()["content-type"], HTML);
        let root = serve(&Method::GET, "/").unwrap();
        assert_eq!(root.status(), StatusCode::SEE_OTHER);
        assert_eq!(root.headers()["location"], "/console");
    }

    #[test]
    fn the_favicon_is_an_icon_built_in() {
        let r = serve(&Method::GET, "/favicon.ico").unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], ICON);
        // An ICO header: reserved 0, type 1 (icon), one image.
        assert_eq!(&FAVICON[..6], &[0, 0, 1, 0, 1, 0]);
        assert!(FAVICON.len() < 8 * 1024);
    }

    #[test]
    fn other_paths_and_methods() {
        assert!(serve(&Method::GET, "/metrics").is_none());
        assert!(serve(&Method::GET, "/console/nothing.js").is_none());
        let post = serve(&Method::POST, "/console").unwrap();
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    /// Every module the page imports is served (a missing one breaks the console silently).
    #[test]
    fn every_imported_module_is_served() {
        for (_, _, body) in ASSETS {
            for import in body.split("from \"./").skip(1) {
                let file = import.split('"').next().unwrap();
                let path = format!("/console/{file}");
                assert!(serve(&Method::GET, &path).is_some(), "{path} not served");
            }
        }
    }
}
