//! Raw SIP over UDP for tests that look at every header: a request out, its final answer
//! back; digest REGISTERs answering a challenge.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Sends one datagram and returns the first response (if any within `wait`).
pub async fn exchange(
    socket: &UdpSocket,
    to: SocketAddr,
    message: &[u8],
    wait: Duration,
) -> Option<String> {
    socket.send_to(message, to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        // Skip provisional responses.
        if !text.starts_with("SIP/2.0 1") {
            return Some(text);
        }
    }
}

pub fn status(response: &str) -> u16 {
    response[8..11].parse().unwrap()
}

/// A REGISTER carrying a digest answer to `challenge` (a WWW-Authenticate value).
/// `ends`: (router, local).
pub fn register_with(
    (router, local): (SocketAddr, SocketAddr),
    user: &str,
    password: &str,
    challenge: Option<&str>,
    call_id: &str,
    cseq: u32,
    expires: u32,
) -> String {
    let uri = format!("sip:{router}");
    let auth = challenge
        .map(|c| authorization(c, (user, password), "REGISTER", &uri))
        .unwrap_or_default();
    format!(
        "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreg{call_id}{cseq}\r\nFrom: <sip:{user}@{router}>;tag=r{call_id}\r\nTo: <sip:{user}@{router}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}>\r\nExpires: {expires}\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

/// The Authorization header line answering `challenge` (a WWW-Authenticate value).
pub fn authorization(
    challenge: &str,
    (user, password): (&str, &str),
    method: &str,
    uri: &str,
) -> String {
    use sas_router::sip::digest::{DigestAlgorithm, QopAuth, compute_response, ha1};
    let param = |name: &str| {
        challenge
            .split(',')
            .find_map(|kv| {
                kv.trim()
                    .trim_start_matches("Digest ")
                    .trim()
                    .strip_prefix(&format!("{name}="))
            })
            .map(|v| v.trim_matches('"').to_string())
            .unwrap()
    };
    let algorithm = DigestAlgorithm::from_token(&param("algorithm")).unwrap();
    let nonce = param("nonce");
    let qop = QopAuth {
        nc: "00000001",
        cnonce: "c0ffee",
    };
    let secret = ha1(algorithm, user, "sas-router", password);
    let response = compute_response(algorithm, &secret, &nonce, method, uri, Some(qop));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"sas-router\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n",
        param("algorithm")
    )
}

pub fn challenges(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                .map(|(_, v)| v.trim().to_string())
        })
        .collect()
}

/// An OPTIONS (a proxy's health probe) to `router` from a fresh socket: its final answer.
pub async fn options(router: SocketAddr) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let probe = format!(
        "OPTIONS sip:{router} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{p}\r\nFrom: <sip:probe@{local}>;tag=p{p}\r\nTo: <sip:{router}>\r\nCall-ID: probe-{p}@{local}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        p = local.port()
    );
    exchange(&socket, router, probe.as_bytes(), Duration::from_secs(5))
        .await
        .expect("an answer to OPTIONS")
}
