//! The real binary as a child process: started on a config file, its SIP and HTTP
//! addresses read from its start-up line, stopped by SIGTERM or SIGKILL.

use super::{Router, http_get};
use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

pub struct Process {
    child: Child,
    pub sip: SocketAddr,
    /// SIP over TCP, when configured.
    pub sip_tcp: Option<SocketAddr>,
    pub http: SocketAddr,
    log: Option<Lines<BufReader<ChildStdout>>>,
}

/// One `key=value` of the start-up line (`sip_udp=Some(…)`, `http=…`).
fn field(line: &str, key: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.strip_prefix("Some(").unwrap_or(rest);
    let end = rest.find([')', ' ']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Process {
    /// Starts the router on `config` (info-level log on a pipe) and waits for its
    /// start-up line. The rest of the log stays on the pipe: read it with [`Self::log`],
    /// drain it with [`Self::drain_log`] or close it with [`Self::close_log`].
    pub fn start(config: &Path) -> Self {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_sas-router")), config)
    }

    /// [`Self::start`] under an open-file limit of `files` (soft and hard, `prlimit`).
    pub fn start_with_open_files(config: &Path, files: u32) -> Self {
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={files}:{files}"));
        command.arg(env!("CARGO_BIN_EXE_sas-router"));
        Self::spawn(command, config)
    }

    fn spawn(mut command: Command, config: &Path) -> Self {
        let mut child = command
            .args(["-c"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("sas-router started"))
            .expect("start-up line");
        let sip = field(&started, "sip_udp=").expect("SIP address");
        let http = field(&started, "http=").expect("HTTP address");
        let sip_tcp = field(&started, "sip_tcp=");
        Self {
            child,
            sip,
            sip_tcp,
            http,
            log: Some(lines),
        }
    }

    /// Reads (and drops) the log to its end on a thread, so the router never blocks on it.
    pub fn drain_log(mut self) -> Self {
        if let Some(lines) = self.log.take() {
            std::thread::spawn(move || lines.for_each(drop));
        }
        self
    }

    /// Closes the log pipe, as when a log reader dies.
    pub fn close_log(mut self) -> Self {
        self.log = None;
        self
    }

    /// The log lines after the start-up line, up to the router's exit.
    pub fn log(&mut self) -> Vec<String> {
        let lines = self.log.take().expect("the log pipe is open");
        lines.map_while(Result::ok).collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (`kill -TERM`).
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no shutdown path runs.
    pub fn crash(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the process to exit by itself; its status.
    pub async fn exited(mut self, within: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > within {
                self.child.kill().ok();
                panic!("the router did not exit within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A sample of its `/metrics` (`name{labels}` exactly as rendered; 0 if absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        let (_, body) = http_get(self.http, "/metrics", None).await;
        body.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits (up to 20 s: the machine may be loaded) until a metric reads `value`.
    pub async fn await_metric(&self, sample: &str, value: f64) {
        for _ in 0..400 {
            if self.metric(sample).await == value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, body) = http_get(self.http, "/metrics", None).await;
        panic!("{sample} never reached {value}:\n{body}");
    }

    /// The in-process harness's view of it (CTI and admin helpers).
    pub fn as_router(&self, data: &Path, config: &Path) -> Router {
        Router {
            running: None,
            sip: self.sip,
            http: self.http,
            data: data.to_path_buf(),
            config_path: config.to_path_buf(),
        }
    }
}

impl Drop for Process {
    /// A failed test leaves no router running.
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A data directory and a config whose HTTP port is fixed (the CLI reads a running
/// router's records through it) and the same across restarts.
pub fn setup(name: &str, opts: &super::Options) -> (PathBuf, PathBuf) {
    let data = super::temp_dir(name);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = super::config_text(opts, &data).replace(
        "[http]\nlisten = \"127.0.0.1:0\"",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")));
    let config = data.join("config.toml");
    std::fs::write(&config, text).unwrap();
    (data, config)
}
