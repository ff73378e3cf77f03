//! SIP over WebSocket (RFC 7118) end to end: a WebRTC-style phone written here (raw SIP
//! text over tokio-tungstenite, `sip` subprotocol, Contact `….invalid;transport=ws`)
//! registers with digest auth, then a SIPp trunk caller dials 15 and the INVITE, the ACK
//! and the BYE reach the phone over its own WebSocket. Plain `ws` and `wss` (self-signed).

use crate::common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use sas_router::sip::digest::{DigestAlgorithm, QopAuth, compute_response, ha1};
use sas_router::store::record::Outcome;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What the phone puts in its Contact, as JsSIP does: not an address anyone can dial.
const CONTACT: &str = "<sip:k3v9p2@df7jal23ls0d.invalid;transport=ws>";

/// A phone's WebSocket on `stream`, asking for the `sip` subprotocol.
async fn handshake<S>(url: &str, stream: S) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url.into_client_request().unwrap();
    let sip = "sip".parse().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", sip);
    let (socket, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("WebSocket handshake");
    assert_eq!(response.headers()["sec-websocket-protocol"], "sip");
    socket
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, text: String) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next SIP message from the router.
async fn recv<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a SIP message within 15 s")
            .expect("the WebSocket stays open")
            .unwrap();
        if let Message::Text(text) = frame {
            return text.to_string();
        }
    }
}

/// The values of header `name` (full name, case-insensitive).
fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = challenge[start..].trim_start_matches('"');
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    &rest[..end]
}

fn register_request(cseq: u32, authorization: Option<String>) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKws{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:arm1@127.0.0.1>\r\n\
         From: <sip:arm1@127.0.0.1>;tag=wsphone\r\n\
         Call-ID: ws-register-1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {CONTACT};expires=300\r\n\
         Expires: 300\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

/// REGISTER as arm1: 401 with a challenge, then 200 with the MD5 digest answer.
async fn register<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    send(ws, register_request(1, None)).await;
    let challenge = recv(ws).await;
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let md5 = headers(&challenge, "WWW-Authenticate")
        .into_iter()
        .find(|c| c.contains("algorithm=MD5"))
        .expect("an MD5 challenge");
    let (realm, nonce) = (param(md5, "realm"), param(md5, "nonce"));
    let password = SEATS.iter().find(|(u, _)| *u == "arm1").unwrap().1;
    let ha1 = ha1(DigestAlgorithm::Md5, "arm1", realm, password);
    let qop = QopAuth {
        nc: "00000001",
        cnonce: "0a4f113b",
    };
    let uri = "sip:127.0.0.1";
    let response = compute_response(
        DigestAlgorithm::Md5,
        &ha1,
        nonce,
        "REGISTER",
        uri,
        Some(qop),
    );
    let authorization = format!(
        "Digest username=\"arm1\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\""
    );
    send(ws, register_request(2, Some(authorization))).await;
    let ok = recv(ws).await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(headers(&ok, "Contact")[0].contains(".invalid"), "{ok}");
}

/// A response to `request` (its Via, From, To with our tag, Call-ID, CSeq).
fn response(request: &str, status: &str, sdp: Option<&str>) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in headers(request, "Via") {
        text.push_str(&format!("Via: {via}\r\n"));
    }
    let to = headers(request, "To")[0];
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag=wsphone-answer")
    };
    text.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: {CONTACT}\r\n",
        headers(request, "From")[0],
        headers(request, "Call-ID")[0],
        headers(request, "CSeq")[0],
    ));
    match sdp {
        Some(sdp) => text.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )),
        None => text.push_str("Content-Length: 0\r\n\r\n"),
    }
    text
}

/// A well-formed WebRTC answer to `offer` that no connection stands behind: this test is
/// about signalling; the media with a real browser phone is `e2e_jssip`'s.
fn webrtc_answer(offer: &str) -> String {
    let mid = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .expect("a=mid in the offer");
    let fingerprint: Vec<String> = (0..32u8).map(|b| format!("{:02X}", b * 7)).collect();
    format!(
        "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
         a=ice-ufrag:wsph\r\na=ice-pwd:wsphonepassword0123456789\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:active\r\na=rtcp-mux\r\n\
         a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        fingerprint.join(":")
    )
}

/// Registers arm1 over `ws`, has a trunk caller dial 15, answers the INVITE that comes over
/// the same WebSocket, acknowledges the BYE, and checks the call record.
async fn call_reaches_the_phone<S>(router: &Router, mut ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    register(&mut ws).await;
    assert!(
        eventually(Duration::from_secs(15), || router
            .metric("sas_seats{role=\"arm\",state=\"available\"}")
            == 1.0)
        .await,
        "arm1 available after its WebSocket REGISTER"
    );
    let caller = trunk_caller(router.sip, "caller.xml", "15", 1500);
    let invite = recv(&mut ws).await;
    assert!(invite.starts_with("INVITE sip:k3v9p2@"), "{invite}");
    assert!(
        headers(&invite, "Via")[0].starts_with("SIP/2.0/WS"),
        "the Via names the transport the INVITE travels on: {invite}"
    );
    assert!(
        headers(&invite, "Call-ID")[0].ends_with("@127.0.0.1"),
        "the Call-ID names the router's host: {invite}"
    );
    assert!(
        headers(&invite, "Allow")
            .iter()
            .any(|a| a.contains("REFER")),
        "phones offer transfer only to a peer that allows REFER: {invite}"
    );
    // A phone on a WebSocket is a browser: the offer is WebRTC (DTLS-SRTP, ICE).
    let offer = invite.split("\r\n\r\n").nth(1).unwrap_or_default();
    for needed in [
        "UDP/TLS/RTP/SAVPF",
        "a=fingerprint:sha-256",
        "a=candidate:",
        "a=ice-ufrag:",
    ] {
        assert!(offer.contains(needed), "{needed} in the offer: {offer}");
    }
    let sdp = webrtc_answer(offer);
    send(&mut ws, response(&invite, "200 OK", Some(&sdp))).await;
    let mut acked = false;
    loop {
        let request = recv(&mut ws).await;
        if request.starts_with("ACK ") {
            acked = true;
        } else if request.starts_with("BYE ") {
            send(&mut ws, response(&request, "200 OK", None)).await;
            break;
        } else if !request.starts_with("SIP/2.0") {
            send(&mut ws, response(&request, "200 OK", None)).await;
        }
    }
    assert!(acked, "the 200 was acknowledged over the WebSocket");
    assert!(
        finish(caller, Duration::from_secs(20)).await,
        "caller scenario"
    );
    let list = wait_records(router, 1).await;
    let record = &list[0];
    assert_eq!(record.outcome, Some(Outcome::Answered), "{record:?}");
    assert_eq!(record.seat.as_deref(), Some("arm1"));
    assert_eq!(record.end_reason.as_deref(), Some("caller_bye"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_on_a_websocket_registers_and_takes_a_call_over_it() {
    let mut router = start(Options {
        sip_ws: true,
        ..Options::default()
    })
    .await;
    let addr: SocketAddr = router.running.as_ref().unwrap().sip_ws.unwrap();

    // Not a SIP phone: no `sip` subprotocol, no WebSocket.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("a WebSocket without the sip subprotocol was accepted: {other:?}"),
    }

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ws = handshake(&format!("ws://{addr}/"), tcp).await;
    call_reaches_the_phone(&router, ws).await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_on_a_secure_websocket_registers_and_takes_a_call_over_it() {
    let dir = temp_dir("wss");
    let (cert, key, der) = tls::self_signed(&dir);
    let mut router = start(Options {
        sip_ws: true,
        tls: Some((cert, key)),
        ..Options::default()
    })
    .await;
    let addr = router.running.as_ref().unwrap().sip_wss.unwrap();
    let stream = tls::connect(addr, &der).await;
    let ws = handshake(&format!("wss://localhost:{}/", addr.port()), stream).await;
    call_reaches_the_phone(&router, ws).await;
    router.stop().await;
}
