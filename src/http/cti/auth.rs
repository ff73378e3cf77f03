//! How a CTI request shows its session, and the guard against cross-site request forgery
//! that a browser cookie makes necessary.
//!
//! The token comes as `Authorization: Bearer` (scripts, tools), as `?token=` on the event
//! WebSockets, or as the `sas_session` cookie the login sets for browser consoles. A browser
//! attaches that cookie to any request for the router, even one a foreign page makes it send,
//! so a cookie-authenticated POST must also carry `X-Sas-Console: 1` (a cross-site form
//! cannot add a header, and a cross-site script would need a CORS preflight the router never
//! grants), and an `Origin`, if any, must be the router's own. `SameSite=Strict` stops most of
//! this already; the guard holds in browsers that ignore it.

use super::ApiError;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};

/// The session cookie's name.
const COOKIE: &str = "sas_session";
/// The header a console sends with its cookie-authenticated POSTs.
const CONSOLE_HEADER: &str = "x-sas-console";

/// Where a request's session token came from.
pub(super) enum Credential {
    /// `Authorization: Bearer` or `?token=`: set by the client itself, never ambient.
    Explicit(String),
    /// The browser's cookie: sent along whoever made the browser send the request.
    Cookie(String),
}

impl Credential {
    pub(super) fn token(&self) -> &str {
        match self {
            Self::Explicit(token) | Self::Cookie(token) => token,
        }
    }
}

/// The request's token: the bearer header first; for WebSockets `?token=` (browsers cannot
/// set their headers); then the cookie.
pub(super) fn credential(req: &Request<Incoming>, websocket: bool) -> Option<Credential> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return Some(Credential::Explicit(token.to_string()));
    }
    if websocket && let Some(token) = crate::http::query::param(req.uri().query(), "token") {
        return Some(Credential::Explicit(token));
    }
    cookie(req).map(Credential::Cookie)
}

/// Refuses a cookie-authenticated request that a foreign page may have caused.
pub(super) fn same_site(req: &Request<Incoming>, credential: &Credential) -> Result<(), ApiError> {
    if let Credential::Explicit(_) = credential {
        return Ok(());
    }
    let value = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if req.method() == Method::POST && value(CONSOLE_HEADER).map(str::trim) != Some("1") {
        return Err(ApiError::CrossSite);
    }
    match (value(header::ORIGIN.as_str()), value(header::HOST.as_str())) {
        (None, _) => Ok(()),
        (Some(origin), Some(host)) if same_origin(origin, host) => Ok(()),
        _ => Err(ApiError::CrossSite),
    }
}

/// `Origin` (`scheme://host[:port]`, or `null`) names the host the request was sent to.
fn same_origin(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()))
}

fn cookie(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

/// `Set-Cookie` opening a session; `Secure` when served over TLS (over plain HTTP a
/// `Secure` cookie would never come back).
pub(super) fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    set_cookie(token, "", secure)
}

/// `Set-Cookie` removing the session cookie.
pub(super) fn cleared_cookie(secure: bool) -> HeaderValue {
    set_cookie("", "; Max-Age=0", secure)
}

fn set_cookie(value: &str, extra: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{extra}{secure}");
    HeaderValue::from_str(&text).expect("hex tokens and fixed attributes are header-safe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_the_host_only() {
        assert!(same_origin(
            "https://router.samu69.fr:8443",
            "router.samu69.fr:8443"
        ));
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!same_origin("https://evil.example", "router.samu69.fr"));
        assert!(!same_origin("null", "router.samu69.fr"));
        assert!(!same_origin(
            "https://router.samu69.fr.evil",
            "router.samu69.fr"
        ));
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let set = session_cookie("abc", true);
        assert_eq!(
            set.to_str().unwrap(),
            "sas_session=abc; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        let cleared = cleared_cookie(false);
        assert_eq!(
            cleared.to_str().unwrap(),
            "sas_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
    }
}
