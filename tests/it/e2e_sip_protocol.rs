//! SIP protocol behaviour over real sockets: admission, registrar, bad input. Each test
//! starts its own router on loopback ports of its own.

use crate::common;

use common::sip::*;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

fn request(
    method: &str,
    uri: &str,
    local: SocketAddr,
    call_id: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}{n};rport\r\nFrom: <sip:0612345678@{local}>;tag=t{call_id}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContact: <sip:0612345678@{local}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
        n = rand_suffix(),
        len = body.len()
    )
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

const SDP: &str = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_messages_never_stop_the_router() {
    let mut router = start(Options::default()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut bad_requests = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let bytes = std::fs::read(dir.join(cols[0])).unwrap();
        let answer = exchange(&socket, router.sip, &bytes, Duration::from_millis(150)).await;
        if cols[0] == "badinv01.dat" || cols[0] == "clerr.dat" || cols[0] == "quotbal.dat" {
            let answer = answer.unwrap_or_else(|| panic!("{} unanswered", cols[0]));
            assert_eq!(status(&answer), 400, "{}: {answer}", cols[0]);
            bad_requests += 1;
        }
    }
    assert_eq!(bad_requests, 3);
    assert!(
        router.metric("sas_sip_malformed_total") >= 10.0,
        "{}",
        router.metrics()
    );
    // Still serving.
    let local = socket.local_addr().unwrap();
    let uri = format!("sip:{}", router.sip);
    let options = request("OPTIONS", &uri, local, "alive", "", "");
    let answer = exchange(
        &socket,
        router.sip,
        options.as_bytes(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(answer.contains("INVITE"), "Allow lists INVITE: {answer}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_admission_methods_and_numbers() {
    let mut router = start(Options::default()).await;
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = trunk.local_addr().unwrap();
    let wait = Duration::from_secs(2);

    // Not from a trunk address (127.0.0.2 is loopback but not configured): only a seat may
    // call from there, so the router challenges.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let invite = request(
        "INVITE",
        &format!("sip:15@{}", router.sip),
        stranger.local_addr().unwrap(),
        "s1",
        "Content-Type: application/sdp\r\n",
        SDP,
    );
    let answer = exchange(&stranger, router.sip, invite.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 401, "a seat must authenticate: {answer}");

    // Unknown number: 404, no prefix matching.
    for number in ["150", "1511", "116118"] {
        let invite = request(
            "INVITE",
            &format!("sip:{number}@{}", router.sip),
            local,
            &format!("u{number}"),
            "Content-Type: application/sdp\r\n",
            SDP,
        );
        let answer = exchange(&trunk, router.sip, invite.as_bytes(), wait)
            .await
            .unwrap();
        assert_eq!(status(&answer), 404, "{number}: {answer}");
    }

    // The forms trunks send reach the 15: tel: URI, +33 with user=phone. They ring (180).
    for (i, uri) in [
        "tel:15",
        &format!("sip:+3315@{};user=phone", router.sip),
        "tel:+33-15",
    ]
    .iter()
    .enumerate()
    {
        let invite = request(
            "INVITE",
            uri,
            local,
            &format!("form{i}"),
            "Content-Type: application/sdp\r\n",
            SDP,
        );
        trunk.send_to(invite.as_bytes(), router.sip).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut ringing = false;
        while let Ok(Ok((n, _))) = tokio::time::timeout(wait, trunk.recv_from(&mut buf)).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(text.starts_with("SIP/2.0 1"), "{uri}: {text}");
            if text.starts_with("SIP/2.0 180") {
                ringing = true;
                break;
            }
        }
        assert!(ringing, "{uri} rings");
    }
    assert!(
        eventually(Duration::from_secs(15), || router
            .metric("sas_queue_depth{queue=\"arm\"}")
            == 3.0)
        .await
    );

    // Max-Forwards 0: the call cannot go on to a seat.
    let looped = request(
        "INVITE",
        &format!("sip:15@{}", router.sip),
        local,
        "mf0",
        "Content-Type: application/sdp\r\n",
        SDP,
    )
    .replace("Max-Forwards: 70", "Max-Forwards: 0");
    let answer = exchange(&trunk, router.sip, looped.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 483, "{answer}");

    // Unsupported method: 405 with Allow.
    let subscribe = request(
        "SUBSCRIBE",
        &format!("sip:15@{}", router.sip),
        local,
        "sub",
        "Event: presence\r\n",
        "",
    );
    let answer = exchange(&trunk, router.sip, subscribe.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 405, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("allow:"), "{answer}");

    // Unknown method: 501.
    let frob = request(
        "FROB",
        &format!("sip:15@{}", router.sip),
        local,
        "frob",
        "",
        "",
    );
    let answer = exchange(&trunk, router.sip, frob.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 501, "{answer}");

    // rport: the router answers to the source port and fills received/rport in Via.
    let options = request(
        "OPTIONS",
        &format!("sip:{}", router.sip),
        local,
        "rport",
        "",
        "",
    );
    let answer = exchange(&trunk, router.sip, options.as_bytes(), wait)
        .await
        .unwrap();
    assert!(
        answer.contains(&format!("rport={}", local.port())),
        "{answer}"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_over_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut router = start(Options::default()).await;
    let tcp = router.running.as_ref().unwrap().sip_tcp.unwrap();
    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    let options = request("OPTIONS", &format!("sip:{tcp}"), local, "tcp1", "", "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    stream.write_all(options.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    router.stop().await;
}

/// One registration: unauthenticated REGISTER, then the answer to the first challenge.
/// Returns the challenges offered and the final response.
async fn register_round(
    socket: &UdpSocket,
    router: SocketAddr,
    (user, password): (&str, &str),
    call_id: &str,
    expires: u32,
) -> (Vec<String>, String) {
    let local = socket.local_addr().unwrap();
    let wait = Duration::from_secs(2);
    let first = register_with((router, local), user, password, None, call_id, 1, expires);
    let answer = exchange(socket, router, first.as_bytes(), wait)
        .await
        .unwrap();
    let offered = challenges(&answer);
    let second = register_with(
        (router, local),
        user,
        password,
        Some(&offered[0]),
        call_id,
        2,
        expires,
    );
    let answer = exchange(socket, router, second.as_bytes(), wait)
        .await
        .unwrap();
    (offered, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_register_with_sha256_or_md5_digest() {
    // SHA-256 is offered over UDP only when configured (the default is MD5 alone).
    let mut router = start(Options {
        sip_digest: Some("udp = [\"SHA-256\", \"MD5\"]"),
        ..Options::default()
    })
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let wait = Duration::from_secs(2);
    let (user, password) = SEATS[2]; // has both HA1s

    let answer = exchange(
        &socket,
        router.sip,
        register_with((router.sip, local), user, password, None, "r1", 1, 300).as_bytes(),
        wait,
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 401, "{answer}");
    let offered = challenges(&answer);
    assert_eq!(offered.len(), 2, "{answer}");
    assert!(
        offered[0].contains("SHA-256") && offered[1].contains("MD5"),
        "SHA-256 first: {offered:?}"
    );

    // Wrong password: 403.
    let wrong = register_with(
        (router.sip, local),
        user,
        "not-the-password",
        Some(&offered[0]),
        "r1",
        2,
        300,
    );
    let answer = exchange(&socket, router.sip, wrong.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 403, "{answer}");

    // SHA-256 with a fresh challenge: 200, seat available.
    let answer = exchange(
        &socket,
        router.sip,
        register_with((router.sip, local), user, password, None, "r2", 1, 300).as_bytes(),
        wait,
    )
    .await
    .unwrap();
    let sha = challenges(&answer)
        .into_iter()
        .find(|c| c.contains("SHA-256"))
        .unwrap();
    let good = register_with(
        (router.sip, local),
        user,
        password,
        Some(&sha),
        "r2",
        2,
        300,
    );
    let answer = exchange(&socket, router.sip, good.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(answer.contains("expires="), "{answer}");
    assert!(
        eventually(Duration::from_secs(15), || router
            .metric("sas_seats{role=\"arm\",state=\"available\"}")
            == 1.0)
        .await
    );

    // Replaying the same Authorization (same nonce, same nc) is refused.
    let answer = exchange(
        &socket,
        router.sip,
        good.replace("CSeq: 2", "CSeq: 3").as_bytes(),
        wait,
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 401, "replay: {answer}");

    // Another seat, answering the first challenge, then unregister: offline again.
    let (offered, answer) = register_round(&socket, router.sip, SEATS[0], "r3", 300).await;
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(
        eventually(Duration::from_secs(15), || router
            .metric("sas_seats{role=\"arm\",state=\"available\"}")
            == 2.0)
        .await
    );
    let (_, answer) = register_round(&socket, router.sip, SEATS[0], "r4", 0).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(
        eventually(Duration::from_secs(15), || router
            .metric("sas_seats{role=\"arm\",state=\"available\"}")
            == 1.0)
        .await
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_dial_only_internal_numbers_and_only_with_their_password() {
    let mut router = start(Options::default()).await;
    let phone = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let arm1 = SEATS[0];
    // Wrong password: 403, and no call.
    let refused = seat_dials(
        &phone,
        router.sip,
        (arm1.0, "not-the-password"),
        "2001",
        ("w1", SDP),
    )
    .await;
    assert_eq!(refused, 403);
    // No seat calls the 15, another entry's number or the outside through the router.
    for (i, number) in ["15", "116117", "0612345678", "+33199001515"]
        .iter()
        .enumerate()
    {
        let call_id = format!("n{i}");
        let refused = seat_dials(&phone, router.sip, arm1, number, (&call_id, SDP)).await;
        assert_eq!(refused, 404, "{number}");
    }
    // Even from a trunk address, the internal numbers need a seat's password.
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let invite = seat_invite(
        (router.sip, trunk.local_addr().unwrap()),
        arm1,
        "2001",
        None,
        ("t1", SDP),
    );
    let answer = exchange(
        &trunk,
        router.sip,
        invite.as_bytes(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 401, "{answer}");
    // Nothing must happen: a wrongly admitted call gets 300 ms to show before the check.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(records(&router).await.is_empty(), "no call was admitted");
    assert_eq!(router.metric("sas_active_calls"), 0.0);
    router.stop().await;
}

/// A phone that stops refreshing its registration: the Router's expiry timer takes the
/// seat offline when the registration runs out (no registrar poll any more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_not_refreshed_takes_the_seat_offline_when_it_expires() {
    let mut router = start(Options::default()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_, answer) = register_round(&socket, router.sip, SEATS[0], "x1", 2).await;
    assert_eq!(status(&answer), 200, "{answer}");
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"available\"}", 1.0)
        .await;
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"available\"}", 0.0)
        .await;
    router.stop().await;
}
