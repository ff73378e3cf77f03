//! A real Prometheus server (Debian's `prometheus` package) scraping a test router: its
//! configuration is the shipped `monitoring/prometheus/prometheus.yml` aimed at the router
//! with a 1 s scrape and evaluation interval, its rules the shipped rules file (optionally
//! with every `for:` shortened, so alerts fire within a test), its data in a temporary
//! directory removed on drop. Never the system service: its own process on a free port.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One sample of an instant query: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// A running Prometheus, stopped and its directory removed on drop.
pub struct Prometheus {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `text` with `from` replaced by `to`, which must be there (the shipped file changed?).
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "{from:?} not in the shipped file:\n{text}"
    );
    text.replace(from, to)
}

/// The shipped rules with every `for:` set to `for_`, when given.
fn rules(for_: Option<&str>) -> String {
    let text =
        std::fs::read_to_string(root().join("monitoring/prometheus/sas-router.rules.yml")).unwrap();
    let Some(for_) = for_ else { return text };
    text.lines()
        .map(|line| match line.trim_start().strip_prefix("for:") {
            Some(_) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}for: {for_}\n")
            }
            None => format!("{line}\n"),
        })
        .collect()
}

/// Percent-encoding of a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET `path` of the HTTP API of a Prometheus on `addr` (HTTP/1.0: a plain body, no
/// chunks); the JSON answer's `data`. Retried while it answers 503: Prometheus listens
/// before its storage is open.
pub async fn api_get(addr: SocketAddr, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = String::new();
    for _ in 0..150 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        buf.clear();
        s.read_to_string(&mut buf).await.unwrap();
        if buf.split(' ').nth(1) != Some("503") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = buf.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}\n{buf}"));
    assert_eq!(json["status"], "success", "GET {path}: {json}");
    json["data"].clone()
}

impl Prometheus {
    /// Starts Prometheus on the shipped configuration, scraping `router` (its `/metrics`
    /// on plain HTTP) every second; `for_` replaces the rules' `for:` durations. Returns
    /// once it is ready. Fails naming the package when the binary is missing.
    pub fn start(router: SocketAddr, for_: Option<&str>) -> Self {
        let dir = super::temp_dir("prometheus");
        let shipped =
            std::fs::read_to_string(root().join("monitoring/prometheus/prometheus.yml")).unwrap();
        let config = replaced(&shipped, "127.0.0.1:8080", &router.to_string());
        let config = replaced(&config, "scrape_interval: 15s", "scrape_interval: 1s");
        let config = replaced(
            &config,
            "evaluation_interval: 15s",
            "evaluation_interval: 1s",
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        std::fs::write(dir.join("sas-router.rules.yml"), rules(for_)).unwrap();
        let port = super::free_udp_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "prometheus not found ({e}): install Debian's `prometheus` package \
                     (apt-get install prometheus; tests/run.sh does)"
                )
            });
        let prometheus = Self { addr, dir, child };
        prometheus.wait_ready();
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        for _ in 0..150 {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not start:\n{}", self.log());
    }

    /// GET `path` of its HTTP API; the answer's `data`.
    async fn get(&self, path: &str) -> Value {
        api_get(self.addr, path).await
    }

    /// An instant query (`/api/v1/query`) at `at` (Unix seconds) or now: its samples.
    pub async fn query(&self, expr: &str, at: Option<f64>) -> Vec<Sample> {
        let mut path = format!("/api/v1/query?query={}", encode(expr));
        if let Some(t) = at {
            path.push_str(&format!("&time={t:.3}"));
        }
        let data = self.get(&path).await;
        assert_eq!(data["resultType"], "vector", "{expr}: {data}");
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// The alerts pending or firing now (`/api/v1/alerts`): (name, labels, state).
    pub async fn alerts(&self) -> Vec<(String, BTreeMap<String, String>, String)> {
        let data = self.get("/api/v1/alerts").await;
        data["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let labels: BTreeMap<String, String> = a["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let name = labels["alertname"].clone();
                (name, labels, a["state"].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// Waits (up to `within`) until `check` holds on the alerts; fails showing them.
    pub async fn wait_alerts<F>(&self, within: Duration, what: &str, mut check: F)
    where
        F: FnMut(&[(String, BTreeMap<String, String>, String)]) -> bool,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let alerts = self.alerts().await;
            if check(&alerts) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: alerts are {alerts:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[test]
fn queries_are_percent_encoded() {
    assert_eq!(
        encode("sum by (line) (x{a=\"b\"}[5s])"),
        "sum%20by%20%28line%29%20%28x%7Ba%3D%22b%22%7D%5B5s%5D%29"
    );
}
