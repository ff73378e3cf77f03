//! The CTI API through its real HTTP and WebSocket surface: the hyper server on port 0, a
//! real store, and a fake call driver that echoes the requests it receives.

use futures_util::{SinkExt, StreamExt};
use sas_router::config::Config;
use sas_router::cti::{CtiChannels, CtiError, CtiEvent, CtiRequest};
use sas_router::http::cti::CtiAccounts;
use sas_router::http::{self, HttpState};
use sas_router::metrics::Metrics;
use sas_router::net::limits::{Doorway, Gate};
use sas_router::net::reload::{LivePlans, ReloadMetrics};
use sas_router::sip::digest::{DigestAlgorithm, ha1};
use sas_router::store::Store;
use sas_router::store::recordings::Recordings;
use sas_router::store::seat_log::SeatEvent;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

const REALM: &str = "cti-test";
const ADMIN: &str = "admin-secret";

struct Server {
    addr: SocketAddr,
    cti: CtiChannels,
    store: Store,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// arm1 has an MD5 HA1 only, arm2 a SHA-256 one only (so its SIP phone is challenged with
/// SHA-256 alone), sup1 (a supervisor) both; each password is `pw-<seat>`.
fn config(dir: &std::path::Path) -> Config {
    let hash = |algorithm, seat: &str| ha1(algorithm, seat, REALM, &format!("pw-{seat}"));
    let text = format!(
        "[sip]\nrealm = \"{REALM}\"\n[trunk]\naddresses = [\"127.0.0.1\"]\n\
         [[seats]]\nusername = \"arm1\"\nha1_md5 = \"{}\"\n\
         [[seats]]\nusername = \"arm2\"\nha1_sha256 = \"{}\"\ndigest = [\"SHA-256\"]\n\
         [[seats]]\nusername = \"sup1\"\nrole = \"superviseur\"\nha1_md5 = \"{}\"\nha1_sha256 = \"{}\"\n",
        hash(DigestAlgorithm::Md5, "arm1"),
        hash(DigestAlgorithm::Sha256, "arm2"),
        hash(DigestAlgorithm::Md5, "sup1"),
        hash(DigestAlgorithm::Sha256, "sup1"),
    );
    let config = Config::from_toml(&text, &dir.join("config.toml")).unwrap();
    config.validate().unwrap();
    config
}

/// Answers every command with `{"seat", "request"}` (the request's debug form), except a
/// hangup (no call) and a transfer to `nowhere` (unknown target).
async fn fake_driver(
    mut commands: tokio::sync::mpsc::UnboundedReceiver<sas_router::cti::CtiCommand>,
) {
    while let Some(command) = commands.recv().await {
        let answer = match &command.request {
            CtiRequest::Hangup => Err(CtiError::NoCall),
            CtiRequest::Transfer { target, .. } if target == "nowhere" => {
                Err(CtiError::UnknownTarget(target.clone()))
            }
            request => Ok(json!({ "seat": command.seat, "request": format!("{request:?}") })),
        };
        command.reply.send(answer).ok();
    }
}

async fn start() -> Server {
    start_with_backlog(64).await
}

/// A server whose event channel keeps `backlog` events for a slow console.
async fn start_with_backlog(backlog: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let plans_dir = dir.path().join("dialplans");
    std::fs::create_dir_all(&plans_dir).unwrap();
    std::fs::write(
        plans_dir.join("test.toml"),
        "[queues.arm]\nrole = \"arm\"\n[entries.samu]\nnumbers = [\"15\"]\nline = \"samu\"\n\
         start = \"file\"\n[entries.samu.steps.file]\nqueue = \"arm\"\npriority = 0\n",
    )
    .unwrap();
    let metrics = Metrics::new();
    let reload = ReloadMetrics::register(&metrics.registry).unwrap();
    let plans = LivePlans::load(&plans_dir, &dir.path().join("prompts"), reload).unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let (cti, commands) = CtiChannels::new(backlog);
    tokio::spawn(fake_driver(commands));
    let bans = sas_router::bans::shared::Guard::new(
        config.bans.clone(),
        &config.trunk.addresses,
        config.seats.iter().map(|s| s.username.clone()),
        &metrics.registry,
    )
    .unwrap();
    let limits = &config.limits;
    let gate = Gate::new(limits, 1 << 16, Vec::new(), &metrics.registry).unwrap();
    let state = HttpState {
        bans,
        header_timeout: limits.header_timeout(),
        shared: None,
        metrics,
        store: store.clone(),
        recordings: Recordings::new(dir.path().join("recordings"), 1),
        admin_token: ADMIN.into(),
        metrics_token: "not-the-admin-token".into(),
        plans: Arc::new(plans),
        cti: cti.clone(),
        cti_accounts: CtiAccounts::from_config(&config),
        wallboard: Default::default(),
        wallboard_token: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let doorway = Doorway::new(listener, gate, "http", Duration::from_secs(10));
    tokio::spawn(http::serve(doorway, Arc::new(state), shutdown.clone()));
    Server {
        addr,
        cti,
        store,
        shutdown,
        _dir: dir,
    }
}

/// One HTTP/1.1 request on its own connection: the status and the body (JSON if it is).
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let status = text[9..12].parse().unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
    (status, value)
}

async fn login(server: &Server, seat: &str) -> String {
    let body = json!({ "seat": seat, "password": format!("pw-{seat}") }).to_string();
    let (status, answer) = call(server, "POST", "/api/cti/login", None, &body).await;
    assert_eq!(status, 200, "{answer}");
    answer["token"].as_str().unwrap().to_string()
}

fn event(seat: Option<&str>, kind: &str) -> CtiEvent {
    CtiEvent {
        at: 1,
        seat: seat.map(String::from),
        call: None,
        kind: kind.into(),
        detail: json!({}),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message, as JSON.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn login_checks_the_password_against_md5_and_sha256_ha1s() {
    let server = start().await;
    for seat in ["arm1", "arm2", "sup1"] {
        let body = json!({ "seat": seat, "password": format!("pw-{seat}") }).to_string();
        let (status, answer) = call(&server, "POST", "/api/cti/login", None, &body).await;
        assert_eq!(status, 200, "{seat}: {answer}");
        assert_eq!(answer["token"].as_str().unwrap().len(), 64);
        assert_eq!(answer["seat"], seat);
        assert_eq!(answer["supervisor"], seat == "sup1");
        assert_eq!(answer["status"]["request"], "Login");
    }
    let refused = json!({ "error": "bad seat or password" });
    for (seat, password) in [("arm1", "pw-arm2"), ("arm2", ""), ("ghost", "pw-ghost")] {
        let body = json!({ "seat": seat, "password": password }).to_string();
        let (status, answer) = call(&server, "POST", "/api/cti/login", None, &body).await;
        assert_eq!((status, answer), (401, refused.clone()), "{seat}");
    }
}

#[tokio::test]
async fn five_bad_passwords_lock_the_seat_with_429() {
    let server = start().await;
    let bad = json!({ "seat": "arm1", "password": "guess" }).to_string();
    for _ in 0..5 {
        assert_eq!(
            call(&server, "POST", "/api/cti/login", None, &bad).await.0,
            401
        );
    }
    let good = json!({ "seat": "arm1", "password": "pw-arm1" }).to_string();
    assert_eq!(
        call(&server, "POST", "/api/cti/login", None, &good).await.0,
        429
    );
    assert_eq!(
        login(&server, "arm2").await.len(),
        64,
        "other seats unaffected"
    );
}

#[tokio::test]
async fn seat_routes_need_a_session_token() {
    let server = start().await;
    let forged = "00".repeat(32);
    for token in [None, Some(forged.as_str()), Some(ADMIN)] {
        let (status, answer) = call(&server, "GET", "/api/cti/status", token, "").await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(answer["error"], "a valid session token is required");
    }
}

#[tokio::test]
async fn requests_reach_the_driver_and_errors_map_to_statuses() {
    let server = start().await;
    let token = login(&server, "arm1").await;
    let t = Some(token.as_str());
    let (status, answer) = call(&server, "GET", "/api/cti/status", t, "").await;
    assert_eq!((status, answer["seat"].clone()), (200, json!("arm1")));

    let (status, answer) = call(
        &server,
        "POST",
        "/api/cti/pause",
        t,
        r#"{"reason":"break"}"#,
    )
    .await;
    assert_eq!(
        (status, answer["request"].clone()),
        (200, json!("Pause { reason: Break }"))
    );
    let (_, answer) = call(&server, "POST", "/api/cti/pause", t, "").await;
    assert_eq!(answer["request"], "Pause { reason: Requested }");
    let (status, answer) = call(
        &server,
        "POST",
        "/api/cti/pause",
        t,
        r#"{"reason":"logged_out"}"#,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("set by the router")
    );

    let (status, answer) = call(&server, "POST", "/api/cti/hangup", t, "").await;
    assert_eq!(
        (status, answer),
        (409, json!({ "error": "no call in progress on this seat" }))
    );
    let transfer = r#"{"target":"nowhere"}"#;
    assert_eq!(
        call(&server, "POST", "/api/cti/transfer", t, transfer)
            .await
            .0,
        404
    );
    let transfer = r#"{"target":"amu","mode":"accompanied","priority":"P0"}"#;
    let (status, answer) = call(&server, "POST", "/api/cti/transfer", t, transfer).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["request"],
        r#"Transfer { target: "amu", mode: Accompanied, urgency: Some(P0) }"#
    );

    let file = r#"{"priority":"P2","commune":"Lyon"}"#;
    let (status, answer) = call(&server, "POST", "/api/cti/file", t, file).await;
    assert_eq!(status, 200);
    assert!(answer["request"].as_str().unwrap().contains("Lyon"));
    let (status, answer) = call(&server, "POST", "/api/cti/file", t, r#"{"colour":1}"#).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`")
    );
    assert_eq!(
        call(&server, "POST", "/api/cti/file", t, "{not json")
            .await
            .0,
        400
    );
    let huge = format!(r#"{{"note":"{}"}}"#, "x".repeat(17 * 1024));
    assert_eq!(
        call(&server, "POST", "/api/cti/file", t, &huge).await.0,
        413
    );

    assert_eq!(call(&server, "GET", "/api/cti/nope", t, "").await.0, 404);
    assert_eq!(call(&server, "GET", "/api/cti/hangup", t, "").await.0, 405);
}

#[tokio::test]
async fn history_is_the_seat_s_own() {
    let server = start().await;
    for (seat, at) in [("arm1", 10), ("arm2", 11), ("arm1", 12)] {
        let e = SeatEvent {
            at,
            seat: seat.into(),
            kind: "LOGIN".into(),
            from: None,
            to: None,
            call: None,
            detail: None,
        };
        server.store.put_seat_event(&e).unwrap();
    }
    let token = login(&server, "arm1").await;
    let (status, answer) = call(&server, "GET", "/api/cti/history", Some(&token), "").await;
    assert_eq!(status, 200);
    let times: Vec<_> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].clone())
        .collect();
    assert_eq!(times, [json!(12), json!(10)]);
    let path = "/api/cti/history?limit=1";
    let (_, answer) = call(&server, "GET", path, Some(&token), "").await;
    assert_eq!(answer.as_array().unwrap().len(), 1);
    let path = "/api/cti/history?limit=many";
    assert_eq!(call(&server, "GET", path, Some(&token), "").await.0, 400);
}

#[tokio::test]
async fn a_seat_socket_hears_only_its_seat_and_a_supervisor_socket_hears_all() {
    let server = start().await;
    let arm1 = login(&server, "arm1").await;
    let url = format!("ws://{}/api/cti/events?token={arm1}", server.addr);
    let (mut seat_socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = next_json(&mut seat_socket).await;
    assert_eq!(hello["kind"], "hello");
    assert_eq!(hello["status"]["request"], "Status");

    let mut request = format!("ws://{}/api/supervisor/events", server.addr)
        .into_client_request()
        .unwrap();
    let auth = format!("Bearer {ADMIN}").parse().unwrap();
    request.headers_mut().insert("authorization", auth);
    let (mut supervisor_socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = next_json(&mut supervisor_socket).await;
    assert_eq!(hello["overview"]["request"], "Overview");
    assert_eq!(
        hello["overview"]["seat"], "sup1",
        "admin asks as the first supervisor"
    );

    server.cti.publish(event(Some("arm2"), "offer"));
    server.cti.publish(event(None, "queue"));
    server.cti.publish(event(Some("arm1"), "connect"));
    let got = next_json(&mut seat_socket).await;
    assert_eq!(
        (got["seat"].clone(), got["kind"].clone()),
        (json!("arm1"), json!("connect"))
    );
    for kind in ["offer", "queue", "connect"] {
        assert_eq!(next_json(&mut supervisor_socket).await["kind"], kind);
    }

    seat_socket
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(15), seat_socket.next()).await;
    assert!(matches!(pong, Ok(Some(Ok(Message::Pong(p)))) if p.as_ref() == b"hi"));

    server.shutdown.cancel();
    let closed = tokio::time::timeout(Duration::from_secs(15), seat_socket.next()).await;
    assert!(
        matches!(closed, Ok(Some(Ok(Message::Close(_))))),
        "{closed:?}"
    );
}

#[tokio::test]
async fn a_slow_console_is_told_how_many_events_it_missed() {
    let server = start_with_backlog(2).await;
    let arm1 = login(&server, "arm1").await;
    let url = format!("ws://{}/api/cti/events?token={arm1}", server.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut socket).await["kind"], "hello");
    // The test runtime has one thread: the socket's task cannot read between these.
    for kind in ["a", "b", "c", "d", "e"] {
        server.cti.publish(event(Some("arm1"), kind));
    }
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "kind": "lagged", "missed": 3 })
    );
    assert_eq!(next_json(&mut socket).await["kind"], "d");
    assert_eq!(next_json(&mut socket).await["kind"], "e");

    socket.close(None).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(15), socket.next()).await;
    assert!(
        matches!(end, Ok(Some(Ok(Message::Close(_)))) | Ok(None)),
        "the router answers the close: {end:?}"
    );
}

#[tokio::test]
async fn websockets_need_a_token_and_a_supervisor_for_all_events() {
    let server = start().await;
    let refused = async |url: String| match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    };
    let url = format!("ws://{}/api/cti/events?token=forged", server.addr);
    assert_eq!(refused(url).await, 401);
    let arm1 = login(&server, "arm1").await;
    let url = format!("ws://{}/api/supervisor/events?token={arm1}", server.addr);
    assert_eq!(refused(url).await, 403);
    let path = format!("/api/cti/events?token={arm1}");
    let (status, _) = call(&server, "GET", &path, None, "").await;
    assert_eq!(status, 400, "a plain GET is not an upgrade");
}

#[tokio::test]
async fn supervisor_routes_take_supervisor_sessions_and_the_admin_token() {
    let server = start().await;
    let arm1 = login(&server, "arm1").await;
    let sup1 = login(&server, "sup1").await;
    let overview = "/api/supervisor/overview";
    assert_eq!(call(&server, "GET", overview, Some(&arm1), "").await.0, 403);
    assert_eq!(call(&server, "GET", overview, None, "").await.0, 401);
    for token in [sup1.as_str(), ADMIN] {
        let (status, answer) = call(&server, "GET", overview, Some(token), "").await;
        assert_eq!(status, 200);
        assert_eq!(answer, json!({ "seat": "sup1", "request": "Overview" }));
    }
    let history = "/api/supervisor/seats/arm1/history?limit=5";
    assert_eq!(
        call(&server, "GET", history, Some(ADMIN), "").await,
        (200, json!([]))
    );
    assert_eq!(call(&server, "GET", history, Some(&arm1), "").await.0, 403);
    let unknown = "/api/supervisor/seats/ghost/history";
    assert_eq!(call(&server, "GET", unknown, Some(&sup1), "").await.0, 404);
}

#[tokio::test]
async fn logout_tells_the_driver_and_revokes_the_token() {
    let server = start().await;
    let token = login(&server, "arm2").await;
    let (status, answer) = call(&server, "POST", "/api/cti/logout", Some(&token), "").await;
    assert_eq!((status, answer["request"].clone()), (200, json!("Logout")));
    assert_eq!(
        call(&server, "GET", "/api/cti/status", Some(&token), "")
            .await
            .0,
        401
    );
}
