//! Console security end to end: HTTPS with a self-signed certificate, the session cookie
//! and its CSRF guard, argon2 console passwords beside HA1-only seats.

use crate::common;

use common::*;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on `stream` with `extra` header lines.
async fn request<S>(mut stream: S, method: &str, path: &str, extra: &[String], body: &str) -> Answer
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let extra: String = extra.iter().map(|h| format!("{h}\r\n")).collect();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // A TLS peer may end without close_notify once the answer is out: keep what came.
    let _ = stream.read_to_end(&mut raw).await;
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A router with `[tls]` (self-signed) and HTTPS; the certificate to trust.
async fn tls_router(
    console_passwords: Vec<(&'static str, String)>,
) -> (Router, rustls_pki_types::CertificateDer<'static>) {
    let (cert, key, der) = tls::self_signed(&temp_dir("tls"));
    let router = start(Options {
        tls: Some((cert, key)),
        console_passwords,
        ..Options::default()
    })
    .await;
    (router, der)
}

async fn https(
    router: &Router,
    cert: &rustls_pki_types::CertificateDer<'static>,
    method: &str,
    path: &str,
    extra: &[String],
    body: &str,
) -> Answer {
    let addr = router.running.as_ref().unwrap().https.unwrap();
    request(tls::connect(addr, cert).await, method, path, extra, body).await
}

fn login_body(seat: &str, password: &str) -> String {
    serde_json::json!({ "seat": seat, "password": password }).to_string()
}

/// The `sas_session=<token>` pair of a login's Set-Cookie.
fn session_pair(answer: &Answer) -> String {
    let set = answer.header("set-cookie").expect("login sets a cookie");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_cookie_is_secure_and_guarded_against_cross_site_requests() {
    let (mut router, cert) = tls_router(Vec::new()).await;
    let login = https(
        &router,
        &cert,
        "POST",
        "/api/cti/login",
        &[],
        &login_body("arm1", "pw-arm1"),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let set = login.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let cookie = format!("Cookie: theme=dark; {}", session_pair(&login));
    let console = "X-Sas-Console: 1".to_string();

    let status = https(
        &router,
        &cert,
        "GET",
        "/api/cti/status",
        std::slice::from_ref(&cookie),
        "",
    )
    .await;
    assert_eq!(status.status, 200, "a GET with the cookie: {}", status.body);

    let forged = https(
        &router,
        &cert,
        "POST",
        "/api/cti/logout",
        std::slice::from_ref(&cookie),
        "",
    )
    .await;
    assert_eq!(forged.status, 403, "a cookie POST without X-Sas-Console");
    let foreign = [
        cookie.clone(),
        console.clone(),
        "Origin: https://evil.example".to_string(),
    ];
    let forged = https(&router, &cert, "POST", "/api/cti/logout", &foreign, "").await;
    assert_eq!(forged.status, 403, "a cookie POST from a foreign origin");

    // The helper's requests go to `Host: localhost`.
    let origin = "Origin: https://localhost".to_string();
    let own = [cookie.clone(), console.clone()];
    let logout = https(&router, &cert, "POST", "/api/cti/logout", &own, "").await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    let cleared = logout.header("set-cookie").unwrap();
    assert!(
        cleared.contains("Max-Age=0") && cleared.starts_with("sas_session=;"),
        "{cleared}"
    );
    let gone = https(&router, &cert, "GET", "/api/cti/status", &[cookie], "").await;
    assert_eq!(gone.status, 401, "logged out");

    // Our own origin passes; a bearer token needs no console header.
    let again = https(
        &router,
        &cert,
        "POST",
        "/api/cti/login",
        &[],
        &login_body("arm1", "pw-arm1"),
    )
    .await;
    let own = [format!("Cookie: {}", session_pair(&again)), console, origin];
    let status = https(&router, &cert, "POST", "/api/cti/pause", &own, "").await;
    assert_ne!(status.status, 403, "same origin: {}", status.body);
    let token: serde_json::Value = serde_json::from_str(&again.body).unwrap();
    let bearer = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    let logout = https(&router, &cert, "POST", "/api/cti/logout", &[bearer], "").await;
    assert_eq!(
        logout.status, 200,
        "bearer without X-Sas-Console: {}",
        logout.body
    );

    // Plain HTTP (localhost): the cookie cannot be Secure, or it would never come back.
    let tcp = tokio::net::TcpStream::connect(router.http).await.unwrap();
    let plain = request(
        tcp,
        "POST",
        "/api/cti/login",
        &[],
        &login_body("arm2", "pw-arm2"),
    )
    .await;
    assert_eq!(plain.status, 200);
    let set = plain.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && !set.contains("Secure"), "{set}");

    // The event WebSocket takes the cookie too, from the router's own pages only.
    let url = format!("ws://{}/api/cti/events", router.http);
    let mut ws_request = url.as_str().into_client_request().unwrap();
    let pair = session_pair(&plain).parse().unwrap();
    ws_request.headers_mut().insert("cookie", pair);
    let (mut events, _) = tokio_tungstenite::connect_async(ws_request.clone())
        .await
        .expect("cookie WebSocket");
    let hello = tokio::time::timeout(Duration::from_secs(15), events.next()).await;
    let hello = hello.unwrap().unwrap().unwrap().into_text().unwrap();
    assert!(hello.contains("hello"), "{hello}");
    let evil = "https://evil.example".parse().unwrap();
    ws_request.headers_mut().insert("origin", evil);
    match tokio_tungstenite::connect_async(ws_request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a foreign page opened the events: {other:?}"),
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argon2_console_password_replaces_the_sip_password_and_ha1_seats_still_log_in() {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2::Argon2::default()
        .hash_password(b"a much longer console secret", &salt)
        .unwrap()
        .to_string();
    let (mut router, cert) = tls_router(vec![("arm1", phc)]).await;
    let login = |seat: &'static str, password: &'static str| {
        let (router, cert) = (&router, &cert);
        async move {
            let body = login_body(seat, password);
            https(router, cert, "POST", "/api/cti/login", &[], &body)
                .await
                .status
        }
    };
    assert_eq!(login("arm1", "a much longer console secret").await, 200);
    assert_eq!(login("arm1", "pw-arm1").await, 401, "SIP password refused");
    assert_eq!(login("arm2", "pw-arm2").await, 200, "HA1-only seat");
    assert_eq!(login("arm2", "wrong").await, 401);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_scrapes_need_the_metrics_token_and_https_answers_carry_hsts() {
    let (router, cert) = tls_router(Vec::new()).await;
    let token = std::fs::read_to_string(router.data.join("metrics.token")).unwrap();
    let bare = https(&router, &cert, "GET", "/metrics", &[], "").await;
    assert_eq!(bare.status, 401, "{}", bare.body);
    assert!(
        bare.header("strict-transport-security")
            .is_some_and(|v| v.starts_with("max-age="))
    );
    let wrong = ["Authorization: Bearer 00".to_string()];
    assert_eq!(
        https(&router, &cert, "GET", "/metrics", &wrong, "")
            .await
            .status,
        401
    );
    let bearer = [format!("Authorization: Bearer {}", token.trim())];
    let scraped = https(&router, &cert, "GET", "/metrics", &bearer, "").await;
    assert_eq!(scraped.status, 200);
    assert!(
        scraped.body.contains("sas_active_calls"),
        "{}",
        scraped.body
    );
    // The local Prometheus over plain HTTP needs nothing, and gets no HSTS (it would be ignored).
    let local = request(
        tokio::net::TcpStream::connect(router.http).await.unwrap(),
        "GET",
        "/metrics",
        &[],
        "",
    )
    .await;
    assert_eq!(local.status, 200);
    assert!(local.header("strict-transport-security").is_none());
}
