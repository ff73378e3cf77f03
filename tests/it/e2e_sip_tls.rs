//! SIP over TLS (`[sip] tls`, issue 15 item 4) through the real router: a trunk call over
//! TLS answered by a seat registered over TLS (calls back over its connection, Via TLS,
//! `sips:` Contact), a seat restricted to TLS refused over UDP, the trunk's pinned
//! certificate (mutual TLS) and the outbound trunk over TLS, and the listener's defences: a
//! plain TCP client and idle TLS connections are closed, the listener serves on.
//!
//! SIPp reaches the TLS listener through the harness's tunnels ([`common::tls::Tunnel`]):
//! Debian's SIPp has no TLS.

use crate::common;

use common::sip::{challenges, exchange, register_with, status};
use common::tls::{Identity, Tunnel};
use common::*;
use rustls_pki_types::CertificateDer;
use sas_router::net::sip_tcp::{Frame, next_frame};
use sas_router::sip::fuzz::corpus::{self, Context};
use sas_router::store::record::Outcome;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(15);

/// A router with `[sip] tls` and the certificate it serves.
async fn tls_router(opts: Options) -> (Router, SocketAddr, CertificateDer<'static>) {
    let dir = temp_dir("sip-tls");
    let (cert, key, der) = tls::self_signed(&dir);
    let router = start(Options {
        tls: Some((cert, key)),
        sip_tls: true,
        ..opts
    })
    .await;
    let addr = router.running.as_ref().unwrap().sip_tls.unwrap();
    (router, addr, der)
}

/// Sends `message` on a stream and returns the first final response.
async fn stream_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    message: &str,
) -> String {
    stream.write_all(message.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    loop {
        while let Frame::Message(m) = next_frame(&mut buffer) {
            let text = String::from_utf8_lossy(&m).into_owned();
            if !text.starts_with("SIP/2.0 1") {
                return text;
            }
        }
        let mut chunk = vec![0u8; 16_384];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "the router closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// A request of the fuzz corpus (`INVITE 15`, `OPTIONS`…) as sent from `local` over TLS.
fn request(name: &str, router: SocketAddr, local: SocketAddr, marker: &str) -> String {
    let context = Context {
        target: router,
        local,
        transport: "TLS",
        marker: marker.into(),
    };
    corpus::build(name, &context)
}

/// A seat phone (SIPp over TCP into a TLS tunnel) registered as `user` over TLS, which
/// answers the calls coming back over its connection after `ring_ms`; SIPp logs the
/// messages it gets into the returned file.
async fn tls_seat(
    router: &Router,
    tls: SocketAddr,
    cert: &CertificateDer<'static>,
    user: &str,
    ring_ms: u64,
) -> (tokio::process::Child, Tunnel, PathBuf) {
    let tunnel = Tunnel::to_router(tls, cert, None).await;
    let password = SEATS.iter().find(|(u, _)| *u == user).unwrap().1;
    let log = temp_dir("tls-seat").join("messages.log");
    let (log_arg, seat_answer) = (log.display().to_string(), scenario("seat_answer.xml"));
    let more = [
        "-t",
        "t1",
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-oocsf",
        &seat_answer,
        "-trace_msg",
        "-message_file",
        &log_arg,
    ];
    let keys = [("expires", "300")];
    let (phone, _) = seat_sipp_with(
        tunnel.addr,
        ("register_stay.xml", &keys),
        1,
        ring_ms,
        true,
        &more,
    );
    let available = eventually(WAIT, || {
        router.metric("sas_seats{role=\"arm\",state=\"available\"}") == 1.0
    })
    .await;
    assert!(
        available,
        "{user} registered over TLS: {}",
        router.metrics()
    );
    (phone, tunnel, log)
}

/// A SIPp trunk caller (`scenario`, one call to the 15, its pause `ms`) over TLS, as `me`.
async fn tls_caller(
    tls: SocketAddr,
    cert: &CertificateDer<'static>,
    me: Option<Identity>,
    scenario: &str,
    ms: u64,
) -> (tokio::process::Child, Tunnel) {
    let tunnel = Tunnel::to_router(tls, cert, me).await;
    let (port, media) = (free_udp_port().to_string(), ports::media_port().to_string());
    let talk = ms.to_string();
    let args = [
        "-t", "t1", "-s", "15", "-p", &port, "-mp", &media, "-m", "1", "-d", &talk, "-timeout",
        "60s",
    ];
    (sipp(tunnel.addr, scenario, &args).spawn().unwrap(), tunnel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_call_over_tls_is_answered_by_a_seat_registered_over_tls() {
    let (mut router, tls, cert) = tls_router(Options {
        seat_lines: vec![("arm1", "transports = [\"tls\"]".into())],
        ring_timeout_s: 10,
        ..Options::default()
    })
    .await;
    let (phone, _seat_tunnel, log) = tls_seat(&router, tls, &cert, "arm1", 200).await;
    let (caller, _caller_tunnel) = tls_caller(tls, &cert, None, "caller.xml", 1500).await;
    assert!(finish(caller, Duration::from_secs(30)).await, "TLS caller");
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered), "{:#?}", r.events);
    assert_eq!(r.end_reason.as_deref(), Some("caller_bye"));
    assert_eq!(
        handlers(&r),
        [("arm1", Some("caller_bye"))],
        "{:#?}",
        r.handlers
    );
    let rtp = r.rtp.expect("bridged");
    assert!(
        rtp.seat.rx_packets > 20,
        "the seat's echo came back: {rtp:?}"
    );
    // The seat's INVITE came over its own TLS connection, saying so.
    let seen = std::fs::read_to_string(&log).unwrap();
    let invite = seen
        .split("INVITE sips:arm1@")
        .nth(1)
        .unwrap_or_else(|| panic!("an INVITE to the sips: Contact in {seen}"));
    let invite = invite.split("\n\n").next().unwrap();
    let via = format!("Via: SIP/2.0/TLS {tls};");
    assert!(invite.contains(&via), "{via} in {invite}");
    let contact = format!("contact: <sips:sas-router@{tls};transport=tls>");
    assert!(
        invite.to_lowercase().contains(&contact),
        "{contact} in {invite}"
    );
    drop(phone);
    router.stop().await;
}

/// A seat registered over TLS whose connection has closed is unreachable at once (the
/// stack would have held its INVITE until the ring timeout, the call ringing nowhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_seat_whose_connection_closed_is_unreachable_at_once() {
    let (mut router, tls, cert) = tls_router(Options {
        ring_timeout_s: 10,
        ..Options::default()
    })
    .await;
    let mut stream = tls::connect(tls, &cert).await;
    let local = stream.get_ref().0.local_addr().unwrap();
    let (user, password) = SEATS[0];
    let first = register_with((tls, local), user, password, None, "gone", 1, 300);
    let answer = stream_exchange(&mut stream, &first).await;
    let challenge = challenges(&answer).remove(0);
    let second = register_with(
        (tls, local),
        user,
        password,
        Some(&challenge),
        "gone",
        2,
        300,
    );
    let answer = stream_exchange(&mut stream, &second).await;
    assert_eq!(status(&answer), 200, "{answer}");
    // The seat stays registered (its binding lasts); its connection goes.
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let caller = trunk_caller(router.sip, "caller_cancel.xml", "15", 2000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller gives up"
    );
    let r = wait_records(&router, 1).await.remove(0);
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    // Before: the offer stayed pending (no UNREACHABLE) until the caller gave up.
    assert!(kinds.contains(&"UNREACHABLE"), "{kinds:?}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_restricted_to_tls_is_refused_over_udp_with_the_reason() {
    let (mut router, _, _) = tls_router(Options {
        seat_lines: vec![("arm1", "transports = [\"tls\"]".into())],
        ..Options::default()
    })
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ends = (router.sip, socket.local_addr().unwrap());
    let password = SEATS[0].1;
    let register = register_with(ends, "arm1", password, None, "tlsonly", 1, 300);
    let answer = exchange(&socket, router.sip, register.as_bytes(), WAIT)
        .await
        .expect("an answer");
    assert!(
        answer.starts_with("SIP/2.0 403 Forbidden (TLS required)\r\n"),
        "{answer}"
    );
    assert!(
        !answer.contains("WWW-Authenticate"),
        "no challenge: {answer}"
    );
    // Another seat is challenged over UDP as ever.
    let other = register_with(ends, "arm2", SEATS[1].1, None, "other", 1, 300);
    let answer = exchange(&socket, router.sip, other.as_bytes(), WAIT)
        .await
        .unwrap();
    assert_eq!(status(&answer), 401, "{answer}");
    // Its refusals are no password guesses: no ban however many.
    for i in 0..8 {
        let again = register_with(ends, "arm1", password, None, &format!("r{i}"), 1, 300);
        let answer = exchange(&socket, router.sip, again.as_bytes(), WAIT)
            .await
            .expect("answered, not banned");
        assert_eq!(status(&answer), 403, "{answer}");
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pinned_trunk_is_recognised_by_its_certificate_only() {
    let dir = temp_dir("operator");
    let operator = Identity::new(&dir.join("operator"));
    let (mut router, tls, cert) = tls_router(Options {
        trunk_extra: format!("tls_pinned_sha256 = [\"{}\"]\n", operator.fingerprint()),
        ring_timeout_s: 10,
        ..Options::default()
    })
    .await;
    // The operator's certificate: its call is the trunk's, answered by a seat.
    let phone = seat(&router, "arm1", 1, 200).await;
    let (caller, _tunnel) = tls_caller(tls, &cert, Some(operator), "caller.xml", 1000).await;
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "pinned caller"
    );
    assert!(finish(phone, Duration::from_secs(10)).await, "seat");
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered), "{:#?}", r.events);

    // Another certificate, none, or plain UDP from the trunk's address: not the trunk.
    let stranger = Identity::new(&dir.join("stranger"));
    for (i, me) in [Some(&stranger), None].into_iter().enumerate() {
        let mut stream = tls::connect_as(tls, &cert, me).await;
        let local = stream.get_ref().0.local_addr().unwrap();
        let invite = request("INVITE 15", tls, local, &format!("pin{i}"));
        let answer = stream_exchange(&mut stream, &invite).await;
        assert!(
            matches!(status(&answer), 401 | 403),
            "certificate {i}: {answer}"
        );
    }
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let context = Context {
        target: router.sip,
        local: socket.local_addr().unwrap(),
        transport: "UDP",
        marker: "pinudp".into(),
    };
    let invite = corpus::build("INVITE 15", &context);
    let answer = exchange(&socket, router.sip, invite.as_bytes(), WAIT)
        .await
        .unwrap();
    assert!(matches!(status(&answer), 401 | 403), "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(records(&router).await.len(), 1, "no other call admitted");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_idle_clients_of_the_tls_port_are_closed_and_it_serves_on() {
    let (mut router, tls, cert) = tls_router(Options {
        extra: "[limits]\nheader_timeout_s = 1\n".into(),
        ..Options::default()
    })
    .await;
    // Plain SIP to the TLS port: no handshake, closed at once.
    let mut plain = TcpStream::connect(tls).await.unwrap();
    let local = plain.local_addr().unwrap();
    let options = request("OPTIONS", tls, local, "plain");
    plain.write_all(options.as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), plain.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the plain client is closed");
    assert!(
        !String::from_utf8_lossy(&rest).contains("SIP/2.0"),
        "no SIP answer"
    );

    // Idle: a TCP connection that never starts its handshake, and a TLS one that never
    // sends a message, are both closed by the header timeout.
    let started = std::time::Instant::now();
    let mut silent_tcp = TcpStream::connect(tls).await.unwrap();
    let mut silent_tls = tls::connect(tls, &cert).await;
    let mut buf = [0u8; 64];
    let ended = tokio::time::timeout(Duration::from_secs(5), silent_tcp.read(&mut buf)).await;
    assert!(matches!(ended, Ok(Ok(0)) | Ok(Err(_))), "{ended:?}");
    let ended = tokio::time::timeout(Duration::from_secs(5), silent_tls.read(&mut buf)).await;
    assert!(matches!(ended, Ok(Ok(0)) | Ok(Err(_))), "{ended:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let timeouts = "sas_connections_refused_total{reason=\"timeout\"}";
    assert!(
        eventually(WAIT, || router.metric(timeouts) >= 2.0).await,
        "{}",
        router.metrics()
    );

    // The listener serves on.
    let mut stream = tls::connect(tls, &cert).await;
    let local = stream.get_ref().0.local_addr().unwrap();
    let answer = stream_exchange(&mut stream, &request("OPTIONS", tls, local, "after")).await;
    assert_eq!(status(&answer), 200, "{answer}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_goes_out_over_tls_to_the_pinned_operator_only() {
    let dir = temp_dir("outbound");
    let operator = Identity::new(&dir.join("operator"));
    // The backup centre: a SIPp UAS on TCP behind a TLS server with the operator's certificate.
    let (centre, port) = seat_sipp_with(
        "127.0.0.1:9".parse().unwrap(),
        ("seat_answer.xml", &[]),
        1,
        200,
        true,
        &["-t", "t1"],
    );
    let tunnel = Tunnel::from_router(SocketAddr::from(([127, 0, 0, 1], port)), &operator).await;
    let (mut router, tls, cert) = tls_router(Options {
        plans: Some(backup_centre_plan(1)),
        outbound: Some(tunnel.addr),
        trunk_extra: format!(
            "outbound_transport = \"tls\"\ntls_pinned_sha256 = [\"{}\"]\n",
            operator.fingerprint()
        ),
        ..Options::default()
    })
    .await;
    // With pins, the operator's calls come over TLS with its certificate too.
    let (caller, _in) = tls_caller(tls, &cert, Some(operator.copy()), "caller.xml", 3000).await;
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered over TLS"
    );
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Forwarded), "{:#?}", r.events);
    router.stop().await;

    // An operator certificate that is not pinned: the forward fails, the call waits again.
    let impostor = Identity::new(&dir.join("impostor"));
    let tunnel = Tunnel::from_router(SocketAddr::from(([127, 0, 0, 1], port)), &impostor).await;
    let (mut router, tls, cert) = tls_router(Options {
        plans: Some(backup_centre_plan(1)),
        outbound: Some(tunnel.addr),
        trunk_extra: format!(
            "outbound_transport = \"tls\"\ntls_pinned_sha256 = [\"{}\"]\n",
            operator.fingerprint()
        ),
        ..Options::default()
    })
    .await;
    let (caller, _in) = tls_caller(tls, &cert, Some(operator), "caller_cancel.xml", 2500).await;
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller gives up"
    );
    let r = wait_records(&router, 1).await.remove(0);
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"FORWARD_FAILED"), "{kinds:?}");
    assert_ne!(r.outcome, Some(Outcome::Forwarded));
    router.stop().await;
}
