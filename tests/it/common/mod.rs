//! Shared test harness: a router on loopback ports of its own, SIPp peers, HTTP reads.

pub mod baresip;
pub mod browser;
pub mod kamailio;
pub mod media;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod prometheus_server;
pub mod sip;
pub mod tls;

use sas_router::app::{self, Running};
use sas_router::config::Config;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Demo seat passwords used by the tests (HA1 computed at config time).
pub const SEATS: [(&str, &str); 7] = [
    ("arm1", "pw-arm1"),
    ("arm2", "pw-arm2"),
    ("arm3", "pw-arm3"),
    ("amu1", "pw-amu1"),
    ("amu2", "pw-amu2"),
    ("lib1", "pw-lib1"),
    ("sup1", "pw-sup1"),
];

/// A test seat's role unless [`Options::roles`] says otherwise: from its name.
fn default_role(user: &str) -> &'static str {
    match &user[..3] {
        "amu" => "regulateur_amu",
        "lib" => "regulateur_liberal",
        "sup" => "superviseur",
        _ => "arm",
    }
}

/// A router running in this process.
pub struct Router {
    pub running: Option<Running>,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub data: PathBuf,
    pub config_path: PathBuf,
}

/// Test knobs.
#[derive(Clone)]
pub struct Options {
    pub ring_timeout_s: u32,
    pub wrap_up_s: u32,
    pub misdial_threshold_s: u32,
    pub data: Option<PathBuf>,
    /// Both lines answer at once and play the prompts `greeting`, `hold` and
    /// `reassurance` (every second) from this directory.
    pub prompts: Option<PathBuf>,
    /// Dial plans replacing [`test_plans`].
    pub plans: Option<String>,
    /// `[trunk] outbound`: where forwards are sent.
    pub outbound: Option<SocketAddr>,
    /// Seat roles other than `arm`: (user, role).
    pub roles: Vec<(&'static str, &'static str)>,
    /// The ARM queue's strategy (`[[acd.queues]]`), when not the default.
    pub arm_strategy: Option<&'static str>,
    /// `[sip] ws` on a port of its own (and `wss` too with `tls`).
    pub sip_ws: bool,
    /// The body of `[sip.digest]` (challenge algorithms per transport), when not default.
    pub sip_digest: Option<&'static str>,
    /// `[tls]` certificate and key files: also `[http] tls_listen` on a port of its own.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `console_password` (argon2 PHC) of some seats: (user, hash).
    pub console_passwords: Vec<(&'static str, String)>,
    /// `[media] seat_rtp_timeout_s`: off (0) unless a test is about it, since the test
    /// seats echo RTP and most test callers send none.
    pub seat_rtp_timeout_s: u32,
    /// `[media] caller_rtp_timeout_s`: off (0) unless a test is about it, since most
    /// test callers send no RTP.
    pub caller_rtp_timeout_s: u32,
    /// `[acd] autopause_resume_s` and `autopause_burst`, when not the defaults.
    pub autopause: Option<(u32, usize)>,
    /// The ARM queue's `max_waiting` (`[[acd.queues]]`).
    pub arm_max_waiting: Option<usize>,
    /// `[sip] tls` on a port of its own (needs `tls`).
    pub sip_tls: bool,
    /// More `[trunk]` keys (`tls_pinned_sha256`, `outbound_transport`, `srtp`), as given.
    pub trunk_extra: String,
    /// More keys of some seats (`transports = ["tls"]`, `srtp = "required"`): (user, lines).
    pub seat_lines: Vec<(&'static str, String)>,
    /// The `[overload]` body. Default: the queue-delay signal off, so a test router on a
    /// machine loaded by the rest of the suite never sheds the test's own calls.
    pub overload: String,
    /// More sections (`[limits]`, `[bans]`…), appended as given.
    pub extra: String,
    /// `[media] kernel_relay`.
    pub kernel_relay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ring_timeout_s: 3,
            wrap_up_s: 0,
            misdial_threshold_s: 1,
            data: None,
            prompts: None,
            plans: None,
            outbound: None,
            roles: Vec::new(),
            arm_strategy: None,
            sip_ws: false,
            sip_digest: None,
            tls: None,
            console_passwords: Vec::new(),
            seat_rtp_timeout_s: 0,
            caller_rtp_timeout_s: 0,
            autopause: None,
            arm_max_waiting: None,
            sip_tls: false,
            trunk_extra: String::new(),
            seat_lines: Vec::new(),
            overload: "max_queue_delay_ms = 0\n".into(),
            extra: String::new(),
            kernel_relay: false,
        }
    }
}

/// A fresh directory under the target dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU16 = AtomicU16::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sas-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn config_text(opts: &Options, data: &Path) -> String {
    let (rtp_min, rtp_max) = ports::rtp_range();
    let mut seats = String::new();
    for (user, password) in SEATS {
        let md5 = sas_router::sip::digest::ha1(
            sas_router::sip::digest::DigestAlgorithm::Md5,
            user,
            "sas-router",
            password,
        );
        let sha = sas_router::sip::digest::ha1(
            sas_router::sip::digest::DigestAlgorithm::Sha256,
            user,
            "sas-router",
            password,
        );
        // Both HA1s, as the shipped seats have them (challenged with MD5 by default).
        seats.push_str(&format!(
            "[[seats]]\nusername = \"{user}\"\nrole = \"{role}\"\nha1_md5 = \"{md5}\"\n\
             ha1_sha256 = \"{sha}\"\n",
            role = opts
                .roles
                .iter()
                .find(|(u, _)| *u == user)
                .map_or(default_role(user), |(_, r)| r)
        ));
        if let Some((_, phc)) = opts.console_passwords.iter().find(|(u, _)| *u == user) {
            seats.push_str(&format!("console_password = \"{phc}\"\n"));
        }
        for (_, lines) in opts.seat_lines.iter().filter(|(u, _)| *u == user) {
            seats.push_str(lines);
            seats.push('\n');
        }
    }
    let prompts_dir = match &opts.prompts {
        Some(dir) => format!("prompts_dir = \"{}\"\n", dir.display()),
        None => String::new(),
    };
    let plans = data.join("dialplans");
    std::fs::create_dir_all(&plans).unwrap();
    let text = opts
        .plans
        .clone()
        .unwrap_or_else(|| test_plans(opts.prompts.is_some()));
    std::fs::write(plans.join("test.toml"), text).unwrap();
    format!(
        r#"
[sip]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
min_expires_s = 1
{ws}{sip_tls}{digest}[trunk]
addresses = ["127.0.0.1"]
{outbound}{trunk_extra}[routing]
dialplans_dir = "{plans}"
[acd]
ring_timeout_s = {ring}
wrap_up_s = {wrap}
misdial_threshold_s = {misdial}
{autopause}{strategy}[media]
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
seat_rtp_timeout_s = {seat_rtp_timeout}
caller_rtp_timeout_s = {caller_rtp_timeout}
kernel_relay = {kernel_relay}
{prompts_dir}[http]
listen = "127.0.0.1:0"
{https}[store]
data_dir = "{data}"
[overload]
{overload}{tls}{seats}{extra}"#,
        overload = opts.overload,
        extra = opts.extra,
        trunk_extra = opts.trunk_extra,
        sip_tls = match opts.sip_tls {
            true => "tls = \"127.0.0.1:0\"\n",
            false => "",
        },
        ring = opts.ring_timeout_s,
        seat_rtp_timeout = opts.seat_rtp_timeout_s,
        caller_rtp_timeout = opts.caller_rtp_timeout_s,
        kernel_relay = opts.kernel_relay,
        autopause = opts
            .autopause
            .map(|(resume, burst)| {
                format!("autopause_resume_s = {resume}\nautopause_burst = {burst}\n")
            })
            .unwrap_or_default(),
        wrap = opts.wrap_up_s,
        misdial = opts.misdial_threshold_s,
        data = data.display(),
        plans = plans.display(),
        outbound = opts
            .outbound
            .map(|a| format!("outbound = \"{a}\"\n"))
            .unwrap_or_default(),
        ws = match (opts.sip_ws, opts.tls.is_some()) {
            (false, _) => "",
            (true, false) => "ws = \"127.0.0.1:0\"\n",
            (true, true) => "ws = \"127.0.0.1:0\"\nwss = \"127.0.0.1:0\"\n",
        },
        digest = opts
            .sip_digest
            .map(|d| format!("[sip.digest]\n{d}\n"))
            .unwrap_or_default(),
        https = match opts.tls {
            Some(_) => "tls_listen = \"127.0.0.1:0\"\n",
            None => "",
        },
        tls = opts
            .tls
            .as_ref()
            .map(|(cert, key)| {
                format!(
                    "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                    cert.display(),
                    key.display()
                )
            })
            .unwrap_or_default(),
        strategy = arm_queue(opts),
    )
}

/// `[[acd.queues]]` for the ARM queue, when a test sets its strategy or size.
fn arm_queue(opts: &Options) -> String {
    if opts.arm_strategy.is_none() && opts.arm_max_waiting.is_none() {
        return String::new();
    }
    let mut text = String::from("[[acd.queues]]\nrole = \"arm\"\n");
    if let Some(s) = opts.arm_strategy {
        text.push_str(&format!("strategy = \"{s}\"\n"));
    }
    if let Some(n) = opts.arm_max_waiting {
        text.push_str(&format!("max_waiting = {n}\n"));
    }
    text
}

/// The test dial plans: the 15 and the 116 117 straight to the ARM queue (the 15 first);
/// with `announce`, each answers with the prompt `greeting`, then queues with `hold` and
/// `reassurance` every second.
pub fn test_plans(announce: bool) -> String {
    let mut text = String::from("[queues.arm]\nrole = \"arm\"\n");
    for (entry, number, priority) in [("samu", "15", 0), ("sas", "116117", 1)] {
        let start = if announce { "accueil" } else { "file" };
        text.push_str(&format!(
            "[entries.{entry}]\nnumbers = [\"{number}\"]\nline = \"{entry}\"\nstart = \"{start}\"\n\
             [entries.{entry}.steps.file]\nqueue = \"arm\"\npriority = {priority}\n"
        ));
        if announce {
            text.push_str(&format!(
                "hold = \"hold\"\nreassurance = \"reassurance\"\nreassurance_every_s = 1\n\
                 [entries.{entry}.steps.accueil]\nplay = \"greeting\"\nnext = \"file\"\n"
            ));
        }
    }
    // Escalation: AMU (2001) and libéral (2002) regulators, reached only by transfer.
    text.push_str("[entries.escalade]\nnumbers = []\nline = \"escalade\"\nstart = \"amu\"\n");
    for (name, number, role) in [
        ("amu", "2001", "regulateur_amu"),
        ("liberal", "2002", "regulateur_liberal"),
    ] {
        text.push_str(&format!(
            "[queues.{name}]\nrole = \"{role}\"\n\
             [internal.{name}]\nnumber = \"{number}\"\nentry = \"escalade\"\nstep = \"{name}\"\n\
             [entries.escalade.steps.{name}]\nqueue = \"{name}\"\npriority = 0\n"
        ));
        if announce {
            text.push_str("hold = \"hold\"\n");
        }
    }
    text
}

/// Starts a router with its own ports and data directory.
pub async fn start(opts: Options) -> Router {
    let data = opts.data.clone().unwrap_or_else(|| temp_dir("data"));
    let text = config_text(&opts, &data);
    let config_path = data.join("test-config.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::from_toml(&text, &config_path).unwrap();
    config.validate().unwrap();
    let running = app::start(config, CancellationToken::new())
        .await
        .expect("router starts");
    let sip = running.sip_udp.unwrap();
    let http = running.http;
    // The CLI reads the same file; point it at the ports actually bound.
    let cli_text = text.replace(
        "\nlisten = \"127.0.0.1:0\"",
        &format!("\nlisten = \"{http}\""),
    );
    std::fs::write(&config_path, cli_text).unwrap();
    Router {
        running: Some(running),
        sip,
        http,
        data,
        config_path,
    }
}

impl Router {
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub fn metrics(&self) -> String {
        self.running.as_ref().unwrap().metrics.render()
    }

    /// A metric sample's value (`name{labels}` exactly as rendered).
    pub fn metric(&self, sample: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits (up to 15 s) for a metric sample to read `value`: gauges are published after
    /// the router handled an event, not before it answered.
    pub async fn wait_metric(&self, sample: &str, value: f64) {
        let reached = eventually(Duration::from_secs(15), || self.metric(sample) == value).await;
        assert!(
            reached,
            "{sample} is {}, not {value}:\n{}",
            self.metric(sample),
            self.metrics()
        );
    }

    /// The admin API token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin.token")).unwrap()
    }
}

/// The shipped `config/sas-router.toml` and its dial plans, unchanged but for where it
/// listens (own loopback ports; SIP over WS and WSS too with `tls`) and keeps its data.
/// Its seats' passwords are `<name>-demo`.
pub async fn start_shipped(tls: Option<(PathBuf, PathBuf)>) -> Router {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config_path = root.join("config/sas-router.toml");
    let mut config = Config::load(&config_path).expect("shipped config loads");
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let data = temp_dir("shipped");
    config.sip.udp = Some(any_port);
    config.sip.tcp = Some(any_port);
    if let Some((cert, key)) = tls {
        config.sip.ws = Some(any_port);
        config.sip.wss = Some(any_port);
        config.tls = Some(sas_router::config::TlsConfig { cert, key });
    }
    config.http.listen = any_port;
    config.store.data_dir = data.clone();
    config.routing.dialplans_dir = root.join(&config.routing.dialplans_dir);
    config.media.prompts_dir = root.join(&config.media.prompts_dir);
    (config.media.rtp_port_min, config.media.rtp_port_max) = ports::rtp_range();
    config.validate().unwrap();
    let running = app::start(config, CancellationToken::new())
        .await
        .expect("router starts on the shipped config");
    Router {
        sip: running.sip_udp.unwrap(),
        http: running.http,
        running: Some(running),
        data,
        config_path,
    }
}

/// A port free on loopback for UDP and for TCP too: SIPp binds its `-p` port with the
/// transport it is given (`-t t1` is TCP), and a port free for UDP may be some TCP
/// connection's local port.
pub fn free_udp_port() -> u16 {
    ports::signal_port()
}

/// Waits until a peer (SIPp, baresip) holds UDP `port` on loopback: datagrams sent to it
/// from then on wait in its socket even if it reads them later.
pub async fn udp_bound(port: u16) {
    let bound = eventually(Duration::from_secs(15), || {
        UdpSocket::bind(("127.0.0.1", port)).is_err()
    })
    .await;
    assert!(bound, "nothing bound UDP port {port}");
}

/// `sipp` must be installed (Debian package `sip-tester`).
pub fn sipp_path() -> &'static str {
    let path = "/usr/bin/sipp";
    assert!(
        Path::new(path).exists(),
        "SIPp is missing: install the Debian package `sip-tester` (tests/run.sh does it)"
    );
    path
}

pub fn scenario(name: &str) -> String {
    format!("{}/tests/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A SIPp command against the router with common flags.
pub fn sipp(router: SocketAddr, scenario_file: &str, args: &[&str]) -> Command {
    sipp_keyed(router, scenario_file, &[], args)
}

/// A SIPp command toward `target` with `-key` values placed before `-sf` (SIPp resolves
/// `play_pcap_audio="[pcap]"` while loading the scenario) and `args` after it (where `-set`
/// must be), plus the common flags.
pub fn sipp_keyed(
    target: SocketAddr,
    scenario_file: &str,
    keys: &[(&str, &str)],
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(sipp_path());
    cmd.arg(target.to_string());
    for (k, v) in keys {
        cmd.args(["-key", k, v]);
    }
    // Unexpected messages go to a log under the temp dir, not the working tree.
    let errors = std::env::temp_dir().join(format!(
        "sas-router-sipp-{}-{}.errors.log",
        scenario_file.trim_end_matches(".xml"),
        target.port()
    ));
    cmd.args(["-sf", &scenario(scenario_file)])
        .args([
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout_error",
            "-trace_err",
        ])
        .arg("-error_file")
        .arg(errors)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Registers `user` (test password) with SIPp (digest auth), Contact on `contact_port`.
pub async fn register(router: SocketAddr, user: &str, contact_port: u16) {
    let password = SEATS.iter().find(|(u, _)| *u == user).unwrap().1;
    register_as(router, (user, password), contact_port).await;
}

/// Registers `user` with `password` with SIPp (digest auth), Contact on `contact_port`.
pub async fn register_as(router: SocketAddr, credentials: (&str, &str), contact_port: u16) {
    register_for(router, credentials, contact_port, 300).await;
}

/// Unregisters `user`'s Contact on `contact_port` (`Expires: 0`): the seat goes offline.
pub async fn unregister(router: SocketAddr, user: &str, contact_port: u16) {
    let password = SEATS.iter().find(|(u, _)| *u == user).unwrap().1;
    register_for(router, (user, password), contact_port, 0).await;
}

/// [`register_as`] for `expires` seconds.
async fn register_for(
    router: SocketAddr,
    (user, password): (&str, &str),
    contact_port: u16,
    expires: u32,
) {
    let port = free_udp_port().to_string();
    let contact = contact_port.to_string();
    let expires = expires.to_string();
    let out = sipp(
        router,
        "register.xml",
        &[
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
            "-key",
            "contact_port",
            &contact,
            "-key",
            "expires",
            &expires,
            "-m",
            "1",
            "-p",
            &port,
            "-timeout",
            "10s",
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "registration of {user} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for a child with a deadline, returning whether it exited 0.
pub async fn finish(child: tokio::process::Child, within: Duration) -> bool {
    let out = tokio::time::timeout(within, child.wait_with_output())
        .await
        .expect("SIPp did not finish in time")
        .unwrap();
    if !out.status.success() {
        eprintln!("sipp stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// Stops a SIPp seat that still has calls left in its `-m` (SIGINT: it quits at once) and
/// returns whether it exited 0: every call it completed passed its checks (Max-Forwards…).
/// A call still open is dropped and not counted failed: one stranded on a router that was
/// killed never gets its BYE, and that is the router's loss, not the phone's.
pub async fn stop_sipp(child: tokio::process::Child) -> bool {
    let pid = child.id().expect("SIPp still running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(signalled.is_ok_and(|s| s.success()), "SIGINT to SIPp {pid}");
    finish(child, Duration::from_secs(10)).await
}

/// GET on the router's HTTP server; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http_request(addr, "GET", path, token).await
}

/// A body-less request on the router's HTTP server; returns (status, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    http_send(addr, method, path, token, "").await
}

/// An HTTP request with a JSON `body` (may be empty); returns (status, body).
pub async fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Logs `seat` in to the CTI API (test password) and returns its session token.
pub async fn cti_login(router: &Router, seat: &str) -> String {
    let password = SEATS.iter().find(|(u, _)| *u == seat).unwrap().1;
    let body = serde_json::json!({ "seat": seat, "password": password }).to_string();
    let (status, answer) = http_send(router.http, "POST", "/api/cti/login", None, &body).await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    answer["token"].as_str().unwrap().to_string()
}

/// A CTI request as a logged-in seat; returns (status, JSON answer).
pub async fn cti(
    router: &Router,
    token: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, answer) = http_send(router.http, method, path, Some(token), &body).await;
    (status, serde_json::from_str(&answer).unwrap_or_default())
}

/// Polls `check` every 50 ms for up to `within`.
pub async fn eventually<F: FnMut() -> bool>(within: Duration, mut check: F) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// A SIPp trunk caller dialling `number` with `scenario` (own SIP and media ports, one call);
/// `duration_ms` is the scenario's pause (talk time, or wait before CANCEL).
pub fn trunk_caller(
    router: SocketAddr,
    scenario_file: &str,
    number: &str,
    duration_ms: u64,
) -> tokio::process::Child {
    let port = free_udp_port().to_string();
    let media = ports::media_port().to_string();
    let duration = duration_ms.to_string();
    sipp(
        router,
        scenario_file,
        &[
            "-s", number, "-p", &port, "-mp", &media, "-m", "1", "-d", &duration, "-timeout", "60s",
        ],
    )
    .spawn()
    .unwrap()
}

/// A 15 plan whose ARM queue overflows after `max_wait_s` to the backup centre, dialled
/// through the trunk (`[trunk] outbound`).
pub fn backup_centre_plan(max_wait_s: u32) -> String {
    format!(
        r#"
[queues.arm]
role = "arm"

[external]
centre_secours = "0387000000"

[entries.samu]
numbers = ["15"]
line = "samu"
start = "file"

[entries.samu.steps.file]
queue = "arm"
priority = 0
max_wait_s = {max_wait_s}
overflow = "secours"

[entries.samu.steps.secours]
forward = "centre_secours"
"#
    )
}

/// [`backup_centre_plan`] with its `secours` step as the 15's `backup` (a line that can be
/// switched to the backup centre) and `extra` entry keys; no overflow timer worth the name
/// (60 s), so a forward within seconds is the switch's doing.
pub fn switchable_plan(extra: &str) -> String {
    backup_centre_plan(60).replace(
        "start = \"file\"\n",
        &format!("start = \"file\"\nbackup = \"secours\"\n{extra}"),
    )
}

/// Runs the `sas-router` CLI on `config`; asserts it succeeded and returns its stdout.
///
/// From an async test the wait is moved off the runtime's worker: the CLI reads through
/// the in-process router's admin API, and a task of that router left in this worker's
/// queue would never run while the worker blocks (the test hung until killed).
pub fn cli(args: &[&str], config: &Path) -> String {
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
            .args(args)
            .arg("-c")
            .arg(config)
            .output()
            .unwrap()
    };
    let in_worker = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let out = if in_worker {
        tokio::task::block_in_place(run)
    } else {
        run()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The router's call records, newest first (admin API).
pub async fn records(router: &Router) -> Vec<sas_router::store::record::CallRecord> {
    let (status, body) = http_get(router.http, "/api/calls?limit=100", Some(&router.token())).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The record says the seat held its caller, then took it back.
pub fn assert_held_then_resumed(r: &sas_router::store::record::CallRecord) {
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    let hold = kinds.iter().position(|k| *k == "HOLD").expect("HOLD");
    assert_eq!(kinds.get(hold + 1), Some(&"RESUME"), "{kinds:?}");
}

/// Who handled a call and how each left it: (seat, `left`), in order.
pub fn handlers(r: &sas_router::store::record::CallRecord) -> Vec<(&str, Option<&str>)> {
    r.handlers
        .iter()
        .map(|h| (h.seat.as_str(), h.left.as_deref()))
        .collect()
}

/// The records once there are at least `n` (they are written as calls end).
pub async fn wait_records(router: &Router, n: usize) -> Vec<sas_router::store::record::CallRecord> {
    for _ in 0..100 {
        let list = records(router).await;
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} call records, got {:?}", records(router).await);
}

/// A SIPp seat phone playing `scenario` (with `keys`) for `calls` calls on SIP and media
/// ports of its own; its `-d` pause is `ms`, and `echo` sends back the RTP it gets
/// (`-rtp_echo`). Returns it and its SIP port, for `register`.
pub fn seat_sipp(
    target: SocketAddr,
    scenario: &str,
    keys: &[(&str, &str)],
    calls: usize,
    ms: u64,
    echo: bool,
) -> (tokio::process::Child, u16) {
    seat_sipp_with(target, (scenario, keys), calls, ms, echo, &[])
}

/// [`seat_sipp`] with more SIPp arguments (`-t t1` for TCP, `-oocsf`…).
pub fn seat_sipp_with(
    target: SocketAddr,
    (scenario, keys): (&str, &[(&str, &str)]),
    calls: usize,
    ms: u64,
    echo: bool,
    more: &[&str],
) -> (tokio::process::Child, u16) {
    let port = free_udp_port();
    let (port_arg, media) = (port.to_string(), ports::media_port().to_string());
    let (calls, ms) = (calls.to_string(), ms.to_string());
    let mut args = vec!["-p", &port_arg, "-mp", &media, "-m", &calls, "-d", &ms];
    args.extend(["-timeout", "60s"]);
    args.extend(more);
    if echo {
        args.push("-rtp_echo");
    }
    let child = sipp_keyed(target, scenario, keys, &args).spawn().unwrap();
    (child, port)
}

/// A SIPp UAS (`seat_answer.xml`) answering `calls` calls after `ring_ms`, echoing RTP;
/// returns it and its SIP port (to register seats on, or as a trunk).
pub fn answering_sipp(
    target: SocketAddr,
    calls: usize,
    ring_ms: u64,
) -> (tokio::process::Child, u16) {
    seat_sipp(target, "seat_answer.xml", &[], calls, ring_ms, true)
}

/// A seat whose phone (SIPp, `seat_no_answer.xml`) rings for one call and never answers: it
/// expects the router's CANCEL. Registered as `user`.
pub async fn never_answering_seat(router: &Router, user: &str) -> tokio::process::Child {
    let port = free_udp_port();
    let phone = sipp(
        router.sip,
        "seat_no_answer.xml",
        &["-p", &port.to_string(), "-m", "1", "-timeout", "30s"],
    )
    .spawn()
    .unwrap();
    register(router.sip, user, port).await;
    phone
}

/// `arm1`, a phone that never answers, registered and available first (so offered first:
/// longest idle), then `arm2`, which answers one call after 100 ms: (arm1, arm2).
pub async fn silent_arm1_then_answering_arm2(
    router: &Router,
) -> (tokio::process::Child, tokio::process::Child) {
    let silent = never_answering_seat(router, "arm1").await;
    let idle = eventually(Duration::from_secs(15), || {
        router.metric("sas_seats{role=\"arm\",state=\"available\"}") == 1.0
    })
    .await;
    assert!(idle, "arm1 is available");
    (silent, seat(router, "arm2", 1, 100).await)
}

/// A seat: registers `user`, whose phone is a SIPp answering `calls` calls after `ring_ms`.
pub async fn seat(
    router: &Router,
    user: &str,
    calls: usize,
    ring_ms: u64,
) -> tokio::process::Child {
    let (child, port) = answering_sipp(router.sip, calls, ring_ms);
    register(router.sip, user, port).await;
    child
}

/// `seat`'s phone dials `number` (seat_dials.xml: digest-authenticated, plays audio), then
/// waits for the router's BYE.
pub fn seat_phone(
    router: SocketAddr,
    seat: &str,
    number: &str,
    extra: &[&str],
) -> tokio::process::Child {
    let password = SEATS.iter().find(|(u, _)| *u == seat).unwrap().1;
    let (port, media) = (free_udp_port().to_string(), ports::media_port().to_string());
    let mut args = vec![
        "-s", number, "-au", seat, "-ap", password, "-p", &port, "-mp", &media, "-m", "1",
        "-timeout", "30s",
    ];
    args.extend_from_slice(extra);
    sipp_keyed(router, "seat_dials.xml", &[("seat", seat)], &args)
        .spawn()
        .unwrap()
}
