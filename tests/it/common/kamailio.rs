//! Kamailio (Debian's `kamailio`) in front of two router processes, on the shipped
//! `deploy/kamailio/kamailio.cfg`: Kamailio on 127.0.0.1, the primary node on 127.0.0.2,
//! the standby on 127.0.0.3 (loopback aliases), the seats (SIPp on 127.0.0.1) and the trunk
//! (SIPp on [`TRUNK_IP`]) talking to Kamailio only. The nodes know Kamailio as their proxy
//! (`[edge] addresses`), and Kamailio knows the trunk's address (`TRUNK_NETS`).

use super::process::{Process, setup};
use super::{Options, free_udp_port, ports, sipp, temp_dir, udp_bound};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const KAMAILIO: &str = "/usr/sbin/kamailio";
/// The trunk's address: Kamailio marks what comes from it `X-SAS-Origin: trunk`.
pub const TRUNK_IP: &str = "127.0.0.4";

/// A free UDP port on `ip`.
fn free_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Kamailio, killed on drop.
pub struct Kamailio {
    child: tokio::process::Child,
    /// Where the trunk and the seats send.
    pub sip: SocketAddr,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl Kamailio {
    /// Starts Kamailio in the foreground on `sip` (127.0.0.1) with `nodes` as dispatcher set 1
    /// (the first is the primary) and as the REGISTER fork targets, relaying the nodes' calls
    /// out to `trunk_out` (the operator's trunk; none: the shipped default, unreachable).
    pub async fn start(
        sip: SocketAddr,
        nodes: [SocketAddr; 2],
        trunk_out: Option<SocketAddr>,
    ) -> Self {
        assert!(
            Path::new(KAMAILIO).exists(),
            "Kamailio is missing: install the Debian package `kamailio` (tests/run.sh does it)"
        );
        let dir = temp_dir("kamailio");
        let list = dir.join("dispatcher.list");
        std::fs::write(
            &list,
            format!(
                "1 sip:{} 0 10 duid=primary\n1 sip:{} 0 5 duid=standby\n",
                nodes[0], nodes[1]
            ),
        )
        .unwrap();
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kamailio/kamailio.cfg");
        let port = sip.port();
        let log = dir.join("kamailio.log");
        let mut command = tokio::process::Command::new(KAMAILIO);
        if let Some(out) = trunk_out {
            command.args(["-A", &format!("TRUNK_OUT=\"{out}\"")]);
        }
        let child = command
            .args(["-DD", "-E", "-Y"])
            .arg(&dir)
            .arg("-f")
            .arg(&cfg)
            .args(["-l", &format!("udp:127.0.0.1:{port}")])
            .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
            .args(["-A", &format!("NODE_A=\"sip:{}\"", nodes[0])])
            .args(["-A", &format!("NODE_B=\"sip:{}\"", nodes[1])])
            .args(["-A", &format!("TRUNK_NETS=\"{TRUNK_IP}/32\"")])
            .args(["-m", "32", "-M", "8"])
            // Its own process group: Drop kills the workers it forks too.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        udp_bound(port).await;
        Self { child, sip, log }
    }

    /// Its warnings and errors so far (for assertion messages).
    pub fn warnings(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARNING") || l.contains("ERROR"))
            .collect();
        lines.join("\n")
    }
}

impl Drop for Kamailio {
    /// Kills the whole process group: killing the main process alone (SIGKILL) leaves its
    /// forked workers running, holding their port and memory, after every test.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let group = format!("-{pid}");
            let killed = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .status();
            if killed.is_ok_and(|s| s.success()) {
                return;
            }
        }
        self.child.start_kill().ok();
    }
}

/// One router node: its process (None while down), data directory and config.
pub struct Node {
    pub process: Option<Process>,
    pub data: PathBuf,
    pub config: PathBuf,
    /// Its fixed SIP address (the dispatcher list names it).
    pub sip: SocketAddr,
}

impl Node {
    /// A node's config on `ip` (fixed SIP port, so it is the same after a restart), behind
    /// Kamailio at `edge` (`[edge] addresses`), the trunk at [`TRUNK_IP`]; with
    /// `opts.outbound` (the operator's trunk), its calls out go to Kamailio.
    pub fn setup(name: &str, ip: [u8; 4], opts: &Options, edge: SocketAddr) -> Self {
        let (data, config) = setup(name, opts);
        let ip = IpAddr::from(ip);
        let (udp, tcp) = (free_port(ip), free_port(ip));
        let text = std::fs::read_to_string(&config).unwrap();
        let trunk = "[trunk]\naddresses = [\"127.0.0.1\"]\n";
        assert!(text.contains(trunk));
        let proxy = format!(
            "[edge]\naddresses = [\"{}\"]\n[trunk]\naddresses = [\"{TRUNK_IP}\"]\n",
            edge.ip()
        );
        let mut text = text
            .replace("udp = \"127.0.0.1:0\"", &format!("udp = \"{ip}:{udp}\""))
            .replace("tcp = \"127.0.0.1:0\"", &format!("tcp = \"{ip}:{tcp}\""))
            .replace(trunk, &proxy);
        if let Some(out) = opts.outbound {
            let (to_trunk, to_edge) = (
                format!("outbound = \"{out}\""),
                format!("outbound = \"{edge}\""),
            );
            assert!(text.contains(&to_trunk));
            text = text.replace(&to_trunk, &to_edge);
        }
        std::fs::write(&config, text).unwrap();
        Self {
            process: None,
            data,
            config,
            sip: SocketAddr::new(ip, udp),
        }
    }

    /// Starts (or restarts) the node.
    pub fn start(&mut self) {
        let process = Process::start(&self.config).drain_log();
        assert_eq!(process.sip, self.sip);
        self.process = Some(process);
    }

    pub fn process(&self) -> &Process {
        self.process.as_ref().expect("node running")
    }
}

/// The two nodes (primary first) and Kamailio, the nodes sharing one digest nonce key (the
/// standby gets a copy of the primary's `nonce.key`, as docs/deployment.md says). With
/// `opts.outbound` (the operator's trunk), the nodes send their calls out through
/// Kamailio, which relays them there (`TRUNK_OUT`), as docs/deployment.md says.
pub async fn cluster(name: &str, opts: &Options) -> (Kamailio, [Node; 2]) {
    let edge = SocketAddr::from(([127, 0, 0, 1], free_port(IpAddr::from([127, 0, 0, 1]))));
    let mut primary = Node::setup(&format!("{name}-a"), [127, 0, 0, 2], opts, edge);
    let mut standby = Node::setup(&format!("{name}-b"), [127, 0, 0, 3], opts, edge);
    primary.start();
    std::fs::copy(
        primary.data.join("nonce.key"),
        standby.data.join("nonce.key"),
    )
    .unwrap();
    standby.start();
    let kamailio = Kamailio::start(edge, [primary.sip, standby.sip], opts.outbound).await;
    (kamailio, [primary, standby])
}

/// Waits until `node` sees `n` ARM seats available.
pub async fn await_arms(node: &Node, n: f64) {
    let sample = "sas_seats{role=\"arm\",state=\"available\"}";
    let process = node.process();
    for _ in 0..300 {
        if process.metric(sample).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never saw {n} ARMs available", node.sip);
}

/// A SIPp trunk caller on [`TRUNK_IP`] dialling `number` through Kamailio at `edge` with
/// `scenario_file` (one call; `duration_ms` is its pause: talk time).
pub fn trunk_caller(
    edge: SocketAddr,
    scenario_file: &str,
    number: &str,
    duration_ms: u64,
) -> tokio::process::Child {
    let (port, media) = (free_udp_port().to_string(), ports::media_port().to_string());
    let duration = duration_ms.to_string();
    let args = [
        "-s", number, "-i", TRUNK_IP, "-p", &port, "-mp", &media, "-m", "1", "-d", &duration,
        "-timeout", "60s",
    ];
    sipp(edge, scenario_file, &args).spawn().unwrap()
}
