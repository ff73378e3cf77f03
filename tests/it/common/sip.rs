//! Raw SIP over UDP for tests that look at every header: a request out, its final answer
//! back; digest REGISTERs answering a challenge; a seat's phone dialling with its password.

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
    final_response(socket, wait).await
}

/// The next final response on `socket` (if any within `wait`), provisional ones skipped.
pub async fn final_response(socket: &UdpSocket, wait: Duration) -> Option<String> {
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

/// A seat's INVITE to `number` from `local`, answering `challenge` if any, offering `sdp`.
pub fn seat_invite(
    (router, local): (SocketAddr, SocketAddr),
    seat: (&str, &str),
    number: &str,
    challenge: Option<&str>,
    (call_id, sdp): (&str, &str),
) -> String {
    let uri = format!("sip:{number}@{router}");
    let (cseq, auth) = match challenge {
        Some(c) => (2, authorization(c, seat, "INVITE", &uri)),
        None => (1, String::new()),
    };
    format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKinv{call_id}{cseq}\r\nFrom: <sip:{user}@{router}>;tag=s{call_id}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{user}@{local}>\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        user = seat.0,
        len = sdp.len()
    )
}

/// A seat's INVITE to `number` offering `sdp`, challenged then answered with `password`:
/// the final status.
pub async fn seat_dials(
    socket: &UdpSocket,
    router: SocketAddr,
    (user, password): (&str, &str),
    number: &str,
    (call_id, sdp): (&str, &str),
) -> u16 {
    let ends = (router, socket.local_addr().unwrap());
    let wait = Duration::from_secs(2);
    let first = seat_invite(ends, (user, password), number, None, (call_id, sdp));
    let answer = exchange(socket, router, first.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 401, "{answer}");
    // ACK the 401, or it comes again over what follows.
    socket
        .send_to(ack(&first, &answer).as_bytes(), router)
        .await
        .unwrap();
    let offered = challenges(&answer);
    let second = seat_invite(
        ends,
        (user, password),
        number,
        Some(&offered[0]),
        (call_id, sdp),
    );
    let answer = exchange(socket, router, second.as_bytes(), wait)
        .await
        .unwrap();
    status(&answer)
}

/// The ACK of `answer` to `invite` (the INVITE's CSeq): for a failure, in its transaction
/// (same branch); for a 2xx, a request of its own (new branch). Carries the answer's To tag.
pub fn ack(invite: &str, answer: &str) -> String {
    let success = answer.starts_with("SIP/2.0 2");
    let cseq = invite
        .lines()
        .find_map(|l| l.strip_prefix("CSeq: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    follow_up(invite, answer, ("ACK", cseq), success)
}

/// The caller's BYE (CSeq `cseq`, above its last request's) in the dialog `answer` (a
/// 2xx) to `invite` set up.
pub fn bye(invite: &str, answer: &str, cseq: u32) -> String {
    follow_up(invite, answer, ("BYE", cseq), true)
}

/// The caller's re-INVITE (CSeq `cseq`) offering `sdp` in the dialog `answer` (a 2xx) to
/// `invite` set up.
pub fn reinvite(invite: &str, answer: &str, cseq: u32, sdp: &str) -> String {
    let head = follow_up(invite, answer, ("INVITE", cseq), true);
    let head = head.trim_end_matches("Content-Length: 0\r\n\r\n");
    format!(
        "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// A request in `invite`'s dialog, from its headers and `answer`'s To tag, without a body.
fn follow_up(invite: &str, answer: &str, (method, cseq): (&str, u32), new_branch: bool) -> String {
    let to = answer.lines().find(|l| l.starts_with("To:")).unwrap();
    let head = invite.split("\r\n\r\n").next().unwrap();
    let request: String = head
        .lines()
        .filter(|l| !l.starts_with("Content-"))
        .map(|l| match l {
            l if l.starts_with("INVITE ") => l.replacen("INVITE", method, 1),
            l if l.starts_with("To:") => to.to_string(),
            l if l.starts_with("CSeq:") => format!("CSeq: {cseq} {method}"),
            l if new_branch && l.starts_with("Via:") => {
                l.replace("branch=z9hG4bK", &format!("branch=z9hG4bK{method}{cseq}"))
            }
            l => l.to_string(),
        })
        .map(|l| l + "\r\n")
        .collect();
    request + "Content-Length: 0\r\n\r\n"
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
