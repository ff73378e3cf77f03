//! Seats' softphones as they are, against the digest challenge: SIPp registering every
//! shipped seat, baresip 1.0 (Debian) registering and taking a 15 call (over UDP and over TLS), SIP.js 0.21 in
//! headless Chromium over WSS; and the 401 itself, which must not tell a seat from an
//! unknown name. (JsSIP is in `e2e_jssip.rs`.)

use crate::common;

use common::baresip::Baresip;
use common::browser::{self, with_browser_args};
use common::*;
use sas_router::config::Config;
use sas_router::store::record::Outcome;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The shipped seats, each with its demo password `<name>-demo`.
fn shipped_seats() -> Vec<(String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sas-router.toml");
    let config = Config::load(&path).unwrap();
    config
        .seats
        .iter()
        .map(|s| {
            (
                s.username.clone(),
                format!("{}-demo", s.username),
                s.role.clone(),
            )
        })
        .collect()
}

/// A request from `local` with `user` in From and To (REGISTER: the AOR; INVITE: the
/// calling seat), no credentials.
fn unauthenticated(
    method: &str,
    user: &str,
    router: SocketAddr,
    local: SocketAddr,
    tcp: bool,
) -> String {
    let (transport, target) = if tcp {
        ("TCP", ";transport=tcp")
    } else {
        ("UDP", "")
    };
    let uri = match method {
        "REGISTER" => format!("sip:{router}{target}"),
        _ => format!("sip:2001@{router}{target}"),
    };
    let id = format!("{method}-{user}-{}", local.port());
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK{id}\r\n\
         From: <sip:{user}@{router}>;tag=f{id}\r\nTo: <sip:{user}@{router}>\r\n\
         Call-ID: {id}\r\nCSeq: 1 {method}\r\nContact: <sip:{user}@{local}>\r\n\
         Expires: 60\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// What a 401 shows of the user it was for: its status line, the names of its headers in
/// order, and each WWW-Authenticate in full but for the (random) nonce.
fn shape(response: &str) -> Vec<String> {
    let mut lines = response.split("\r\n").take_while(|l| !l.is_empty());
    let mut shape = vec![lines.next().unwrap_or_default().to_owned()];
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("WWW-Authenticate") {
            let nonce = value
                .split("nonce=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            shape.push(format!("{name}:{}", value.replace(nonce, "N")));
        } else {
            shape.push(name.to_owned());
        }
    }
    shape
}

async fn over_udp(socket: &UdpSocket, router: SocketAddr, request: &str) -> String {
    socket.send_to(request.as_bytes(), router).await.unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(15), socket.recv_from(&mut buf))
            .await
            .expect("an answer within 15 s")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

async fn over_tcp(router: SocketAddr, user: &str) -> String {
    let mut stream = TcpStream::connect(router).await.unwrap();
    let local = stream.local_addr().unwrap();
    let request = unauthenticated("REGISTER", user, router, local, true);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf))
            .await
            .expect("an answer within 15 s")
            .unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_gets_the_same_401_as_a_seat() {
    let mut router = start_shipped(None).await;
    let tcp = router.running.as_ref().unwrap().sip_tcp.unwrap();
    // arm1 has both HA1s, arm3 MD5 only; nobody is not a seat.
    let users = ["arm1", "arm3", "nobody"];
    let registrar = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Seats dialling come from anywhere but the trunk (127.0.0.1 in the shipped config).
    let phone = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut shapes = Vec::new();
    for user in users {
        let local = registrar.local_addr().unwrap();
        let register = over_udp(
            &registrar,
            router.sip,
            &unauthenticated("REGISTER", user, router.sip, local, false),
        )
        .await;
        let local = phone.local_addr().unwrap();
        let invite = over_udp(
            &phone,
            router.sip,
            &unauthenticated("INVITE", user, router.sip, local, false),
        )
        .await;
        let register_tcp = over_tcp(tcp, user).await;
        shapes.push([shape(&register), shape(&invite), shape(&register_tcp)]);
    }
    for (user, shape) in users.iter().zip(&shapes) {
        assert_eq!(shape, &shapes[0], "{user}'s 401s differ from arm1's");
    }
    let [register, invite, _] = &shapes[0];
    assert_eq!(register[0], "SIP/2.0 401 Unauthorized");
    assert_eq!(invite[0], "SIP/2.0 401 Unauthorized");
    let challenges: Vec<_> = register
        .iter()
        .filter(|h| h.starts_with("WWW-Authenticate"))
        .collect();
    assert_eq!(
        challenges,
        ["WWW-Authenticate: Digest realm=\"sas-router\", nonce=\"N\", algorithm=MD5, qop=\"auth\""]
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_every_shipped_seat() {
    let mut router = start_shipped(None).await;
    let seats = shipped_seats();
    let names: Vec<&str> = seats.iter().map(|(u, _, _)| u.as_str()).collect();
    for seat in [
        "arm1", "arm2", "arm3", "arm4", "amu1", "amu2", "lib1", "lib2", "osnp1", "psy1", "sup1",
    ] {
        assert!(
            names.contains(&seat),
            "{seat} is no longer shipped: {names:?}"
        );
    }
    for (user, password, _) in &seats {
        register_as(router.sip, (user, password), free_udp_port()).await;
    }
    let mut roles: Vec<&str> = seats.iter().map(|(_, _, r)| r.as_str()).collect();
    roles.dedup();
    for role in roles {
        let expected = seats.iter().filter(|(_, _, r)| r == role).count() as f64;
        let sample = format!("sas_seats{{role=\"{role}\",state=\"available\"}}");
        assert!(
            eventually(Duration::from_secs(15), || router.metric(&sample)
                == expected)
            .await,
            "{sample} is {}, not {expected}",
            router.metric(&sample)
        );
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_as_a_sha256_and_md5_seat_and_takes_a_15_call() {
    let dir = temp_dir("baresip");
    let router = start(Options::default()).await;
    let microphone = dir.join("sounds");
    media::write_tone_prompts(&microphone, &[("microphone", 1000.0, 10_000)]);
    // arm1 has both HA1s, as the shipped arm1: baresip answers the first challenge only.
    let phone = Baresip::start(
        &dir.join("baresip"),
        router.sip,
        SEATS[0],
        &microphone.join("microphone.wav"),
    );
    baresip_takes_a_15_call(router, phone, &dir).await;
}

/// baresip over SIP over TLS (`;transport=tls`, the router's certificate as its CA), as a
/// seat allowed TLS only: it registers, and the 15 call comes back over its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_over_tls_and_takes_a_15_call() {
    let dir = temp_dir("baresip-tls");
    let (cert, key, _) = tls::self_signed(&dir);
    let router = start(Options {
        tls: Some((cert.clone(), key)),
        sip_tls: true,
        seat_lines: vec![("arm1", "transports = [\"tls\"]".into())],
        ..Options::default()
    })
    .await;
    let microphone = dir.join("sounds");
    media::write_tone_prompts(&microphone, &[("microphone", 1000.0, 10_000)]);
    let tls = router.running.as_ref().unwrap().sip_tls.unwrap();
    let phone = Baresip::start_tls(
        &dir.join("baresip"),
        tls,
        SEATS[0],
        &microphone.join("microphone.wav"),
        &cert,
    );
    baresip_takes_a_15_call(router, phone, &dir).await;
}

/// Waits for the baresip `phone` (as arm1) to register, then a SIPp trunk call to the 15
/// must be answered by it with its audio reaching the router.
async fn baresip_takes_a_15_call(mut router: Router, phone: Baresip, dir: &std::path::Path) {
    let user = SEATS[0].0;
    let available = "sas_seats{role=\"arm\",state=\"available\"}";
    assert!(
        eventually(Duration::from_secs(15), || router.metric(available) == 1.0).await,
        "baresip did not register as {user}; see {}",
        dir.join("baresip/baresip.log").display()
    );

    let caller = trunk_caller(router.sip, "caller.xml", "15", 1500);
    assert!(
        finish(caller, Duration::from_secs(20)).await,
        "the 15 call failed"
    );
    let records = wait_records(&router, 1).await;
    let call = &records[0];
    assert_eq!(call.called, "15");
    assert_eq!(call.seat.as_deref(), Some(user), "{call:?}");
    assert_eq!(call.outcome, Some(Outcome::Answered), "{call:?}");
    let rtp = call.rtp.as_ref().expect("RTP counters");
    assert!(
        rtp.seat.rx_packets > 25,
        "baresip's audio reached the router: {rtp:?}"
    );
    phone.stop().await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipjs_registers_over_wss_as_a_shipped_seat() {
    let dir = temp_dir("sipjs");
    let (cert, key, _) = tls::self_signed(&dir);
    let mut router = start_shipped(Some((cert, key))).await;
    let wss = router.running.as_ref().unwrap().sip_wss.unwrap();
    // The shipped arm1 has both HA1s; SIP.js keeps only the last challenge, MD5 only.
    let page = browser::phone_page("sipjs-phone.html", "sipjs.js", wss, "arm1", "arm1-demo");
    with_browser_args(
        &dir,
        &["--ignore-certificate-errors"],
        |browser| async move {
            browser.goto(&page).await;
            browser.wait_text_is("#reg", "registered").await;
            assert!(
                eventually(Duration::from_secs(15), || router
                    .metric("sas_seats{role=\"arm\",state=\"available\"}")
                    == 1.0)
                .await,
                "arm1 available after SIP.js's REGISTER"
            );
            router.stop().await;
        },
    )
    .await;
}

#[test]
fn check_config_names_a_seat_challenged_without_its_ha1() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sas-router.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    // arm3 has an MD5 HA1 only.
    let bad = text.replace(
        "username = \"arm3\"\n",
        "username = \"arm3\"\ndigest = [\"SHA-256\"]\n",
    );
    assert_ne!(bad, text);
    let path = temp_dir("digest-config").join("sas-router.toml");
    std::fs::write(&path, bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("seats[2].digest") && stderr.contains("seat arm3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SHA-256") && stderr.contains("ha1_sha256"),
        "{stderr}"
    );
}
