//! The fuzzer's driver: sends [`crate::sip::fuzz`] cases to a running router over UDP and
//! TCP (alternately), reads every response, and reports the ones that betray a bug — any
//! `5xx` but a deliberate `503` — then checks the router still answers a valid `OPTIONS` on
//! both transports. `sas-router fuzz` and the `e2e_fuzz` test run it.

use crate::net::sip_tcp::{Frame, next_frame};
use crate::sip::fuzz::{Case, Fuzzer, cancel, corpus, hang_up, marked_case, request_uri};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// What to fuzz and how hard.
#[derive(Debug, Clone)]
pub struct FuzzRun {
    /// Generator seed (same seed, same messages).
    pub seed: u64,
    /// Messages to send, over both transports together.
    pub count: u64,
    /// The router's SIP UDP address.
    pub udp: Option<SocketAddr>,
    /// The router's SIP TCP address.
    pub tcp: Option<SocketAddr>,
    /// Messages per second.
    pub rate: u32,
}

/// A response that shows a bug.
#[derive(Debug, Clone)]
pub struct Finding {
    /// `UDP` or `TCP`.
    pub transport: &'static str,
    /// The status line.
    pub status: String,
    /// The case, when its marker survived (its description and bytes).
    pub case: Option<Case>,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct FuzzReport {
    /// Messages sent.
    pub sent: u64,
    /// Final responses received, by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// TCP connections the router closed (unframeable messages) and were reopened.
    pub reconnects: u64,
    /// The bugs.
    pub findings: Vec<Finding>,
    /// Whether the router answered a valid OPTIONS with 200 on every transport afterwards.
    pub alive: bool,
}

impl std::fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let answered: u64 = self.statuses.values().sum();
        writeln!(
            f,
            "sent {} messages, {} final responses, {} TCP reconnects, still answering: {}",
            self.sent, answered, self.reconnects, self.alive
        )?;
        let codes: Vec<String> = self
            .statuses
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect();
        writeln!(f, "statuses: {}", codes.join(" "))?;
        writeln!(f, "findings: {}", self.findings.len())?;
        for finding in &self.findings {
            match &finding.case {
                Some(case) => {
                    let text = String::from_utf8_lossy(&case.bytes);
                    let shown: String = text.chars().take(1_500).collect();
                    writeln!(
                        f,
                        "  {} over {}: {}\n{shown}",
                        finding.status,
                        finding.transport,
                        case.describe(),
                    )?
                }
                None => writeln!(
                    f,
                    "  {} over {} (case unknown)",
                    finding.status, finding.transport
                )?,
            }
        }
        Ok(())
    }
}

/// The 5xx the router sends on purpose: 501 (a method it does not know, RFC 3261 §8.2.1),
/// 503 (no capacity left, e.g. RTP ports), 505 (another SIP version, §8.2.2.x). Any other
/// 5xx is a bug.
pub const DELIBERATE: [u16; 3] = [501, 503, 505];

/// Cases kept for attribution: responses come within milliseconds.
const KEEP: u64 = 4_000;

/// Runs the fuzzer against a router.
pub async fn run(config: &FuzzRun) -> std::io::Result<FuzzReport> {
    let (responses, mut received) = mpsc::unbounded_channel::<(&'static str, Vec<u8>)>();
    let udp = match config.udp {
        Some(target) => {
            let socket = std::sync::Arc::new(UdpSocket::bind(any_port(target)).await?);
            let reader = socket.clone();
            let out = responses.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, _)) = reader.recv_from(&mut buf).await {
                    if out.send(("UDP", buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
            let local = socket.local_addr()?;
            Some((
                socket,
                target,
                Fuzzer::new(config.seed, target, local, "UDP"),
            ))
        }
        None => None,
    };
    let mut tcp = match config.tcp {
        Some(target) => {
            let link = TcpLink::connect(target, responses.clone()).await?;
            let fuzzer = Fuzzer::new(config.seed, target, link.local, "TCP");
            Some((link, fuzzer))
        }
        None => None,
    };
    let mut udp = udp;
    let mut report = FuzzReport::default();
    let mut sent: HashMap<u64, (&'static str, Case)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / config.rate.max(1));
    for index in 0..config.count {
        tick.tick().await;
        let over_tcp = index % 2 == 1 || udp.is_none();
        let case = match (over_tcp, &mut udp, &mut tcp) {
            (false, Some((socket, target, fuzzer)), _) => {
                let case = fuzzer.case(index);
                socket.send_to(&case.bytes, *target).await.ok();
                ("UDP", case)
            }
            (true, _, Some((link, fuzzer))) => {
                let case = fuzzer.case(index);
                if !link.send(&case.bytes).await {
                    report.reconnects += 1;
                    *link = TcpLink::connect(link.target, responses.clone()).await?;
                    link.send(&case.bytes).await;
                }
                ("TCP", case)
            }
            _ => continue,
        };
        report.sent += 1;
        sent.insert(index, case);
        sent.retain(|&i, _| i + KEEP > index);
        while let Ok((transport, bytes)) = received.try_recv() {
            for request in judge_response(&mut report, &sent, transport, &bytes) {
                match (transport, &udp, &mut tcp) {
                    ("UDP", Some((socket, target, _)), _) => {
                        socket.send_to(&request, *target).await.ok();
                    }
                    (_, _, Some((link, _))) => {
                        link.send(&request).await;
                    }
                    _ => {}
                }
            }
        }
    }
    // Late answers (INVITEs queued, retransmitted responses).
    let settle = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(settle);
    loop {
        tokio::select! {
            _ = &mut settle => break,
            Some((transport, bytes)) = received.recv() => {
                // Calls still up after the run end with the router.
                judge_response(&mut report, &sent, transport, &bytes);
            }
        }
    }
    // Fuzzed INVITEs may have tripped overload control (from a trunk address), whose
    // OPTIONS answer is 503 for a second after the last call shed: ask again past it.
    report.alive = alive(config).await || {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        alive(config).await
    };
    Ok(report)
}

/// Counts one message from the router and records it when it is a bug. Returns what ends
/// the call a fuzzed INVITE made (a CANCEL while it rings, ACK and BYE once answered), so
/// calls do not pile up and take every media port.
fn judge_response(
    report: &mut FuzzReport,
    sent: &HashMap<u64, (&'static str, Case)>,
    transport: &'static str,
    bytes: &[u8],
) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let Some(code) = text
        .strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
    else {
        return Vec::new(); // a request from the router, or keep-alive
    };
    let case = marked_case(&text).and_then(|i| sent.get(&i));
    let uri = case
        .and_then(|(_, c)| request_uri(&c.bytes))
        .unwrap_or("sip:15@127.0.0.1");
    if (180..200).contains(&code) {
        return cancel(bytes, uri).into_iter().collect();
    }
    if code < 200 {
        return Vec::new();
    }
    if let Some(requests) = hang_up(bytes, uri) {
        *report.statuses.entry(code).or_default() += 1;
        return requests.into();
    }
    *report.statuses.entry(code).or_default() += 1;
    if code >= 500 && !DELIBERATE.contains(&code) {
        report.findings.push(Finding {
            transport,
            status: text.lines().next().unwrap_or_default().to_string(),
            case: case.map(|(_, case)| case.clone()),
        });
    }
    Vec::new()
}

/// Whether a valid OPTIONS gets 200 on every transport fuzzed.
async fn alive(config: &FuzzRun) -> bool {
    let wait = Duration::from_secs(5);
    let options = |target: SocketAddr, local: SocketAddr, transport: &'static str| {
        let context = corpus::Context {
            target,
            local,
            transport,
            marker: "alive".into(),
        };
        corpus::build("OPTIONS", &context)
    };
    if let Some(target) = config.udp {
        let answer = async {
            let socket = UdpSocket::bind(any_port(target)).await.ok()?;
            let message = options(target, socket.local_addr().ok()?, "UDP");
            socket.send_to(message.as_bytes(), target).await.ok()?;
            let mut buf = vec![0u8; 65_536];
            let (n, _) = socket.recv_from(&mut buf).await.ok()?;
            Some(buf[..n].starts_with(b"SIP/2.0 200"))
        };
        if tokio::time::timeout(wait, answer).await != Ok(Some(true)) {
            return false;
        }
    }
    if let Some(target) = config.tcp {
        let answer = async {
            let mut stream = TcpStream::connect(target).await.ok()?;
            let message = options(target, stream.local_addr().ok()?, "TCP");
            stream.write_all(message.as_bytes()).await.ok()?;
            let mut buf = vec![0u8; 65_536];
            let n = stream.read(&mut buf).await.ok()?;
            Some(buf[..n].starts_with(b"SIP/2.0 200"))
        };
        if tokio::time::timeout(wait, answer).await != Ok(Some(true)) {
            return false;
        }
    }
    true
}

/// A port on the loopback (or any) address of the target's family.
fn any_port(target: SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
    }
}

/// One TCP connection to the router; a task reads and frames what comes back.
struct TcpLink {
    target: SocketAddr,
    local: SocketAddr,
    writer: OwnedWriteHalf,
}

impl TcpLink {
    async fn connect(
        target: SocketAddr,
        responses: mpsc::UnboundedSender<(&'static str, Vec<u8>)>,
    ) -> std::io::Result<TcpLink> {
        let stream = TcpStream::connect(target).await?;
        let local = stream.local_addr()?;
        let (mut reader, writer) = stream.into_split();
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            while let Ok(n) = reader.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
                loop {
                    match next_frame(&mut buffer) {
                        Frame::Message(message) => {
                            if responses.send(("TCP", message)).is_err() {
                                return;
                            }
                        }
                        Frame::Ping => {}
                        Frame::Incomplete | Frame::Unframeable { .. } => break,
                    }
                }
            }
        });
        Ok(TcpLink {
            target,
            local,
            writer,
        })
    }

    /// False when the router has closed the connection.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.writer.write_all(bytes).await.is_ok()
    }
}
