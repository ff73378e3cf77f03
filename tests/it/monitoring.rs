//! The shipped monitoring (`monitoring/`) against a real router: SIPp calls (one abandoned,
//! one escalated P0 to the AMU by REFER) and a trunk answering OPTIONS, then a scrape of
//! `/metrics` over HTTP, and Debian's `promtool` (package `prometheus`) on everything:
//! `check config` on both Prometheus configurations (the remote one with the router's real
//! `metrics.token`), `check rules`, `test rules` (tests/monitoring/rules_test.yml), `check
//! metrics` on the scrape; and every metric the rules and the Grafana dashboard name is in
//! the scrape. Also: the trunk probe sees a trunk that stops answering.

use crate::common;

use common::*;
use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A trunk that answers OPTIONS with 200 until dropped (then its port is closed).
pub(crate) struct OptionsTrunk {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OptionsTrunk {
    pub(crate) fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// On `addr` (a trunk back on the port it left).
    pub(crate) fn start_on(addr: SocketAddr) -> Self {
        let socket = UdpSocket::bind(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                if !request.starts_with("OPTIONS ") {
                    continue;
                }
                let mut answer = String::from("SIP/2.0 200 OK\r\n");
                for line in request.lines() {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
                        answer.push_str(&format!("{line}\r\n"));
                    }
                }
                answer.push_str("Content-Length: 0\r\n\r\n");
                socket.send_to(answer.as_bytes(), from).ok();
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// A router whose outbound trunk this is, probed every second.
    pub(crate) fn options(&self) -> Options {
        Options {
            outbound: Some(self.addr),
            trunk_extra: "options_interval_s = 1\n".into(),
            ..Options::default()
        }
    }

    pub(crate) fn up_sample(&self) -> String {
        format!("sas_trunk_up{{target=\"{}\"}}", self.addr)
    }
}

impl Drop for OptionsTrunk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs promtool; its output. Fails with the package to install when it is missing.
fn promtool(args: &[&str], stdin: Option<&str>, dir: &Path) -> String {
    let mut command = Command::new("promtool");
    command.args(args).current_dir(dir);
    command.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "promtool not found ({e}): install Debian's `prometheus` package \
             (apt-get install prometheus; tests/run.sh does)"
        )
    });
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Metric names a PromQL text refers to: words beginning `sas_` outside quoted strings
/// (recording rules, `level:metric:operation`, have colons and are left out).
fn metric_names(promql: &str) -> BTreeSet<String> {
    let mut unquoted = String::new();
    let mut quote = None;
    for c in promql.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) => unquoted.push(c),
            _ => {}
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("sas_") && !w.contains(':'))
        .map(str::to_string)
        .collect()
}

/// The `expr`s of the Grafana dashboard, with Grafana's range variables given values.
fn dashboard_exprs() -> Vec<String> {
    let path = root().join("monitoring/grafana/dashboards/sas-router.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            exprs.push(
                expr.replace("$__rate_interval", "1m")
                    .replace("$__range", "1h"),
            );
        }
    }
    assert!(exprs.len() >= 20, "{exprs:?}");
    exprs
}

/// The rules file without its comments and annotations (text, not PromQL).
fn rule_exprs() -> String {
    let text =
        std::fs::read_to_string(root().join("monitoring/prometheus/sas-router.rules.yml")).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("summary:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sample names of a scrape (`name{…} value` or `name value`).
fn scraped_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// A router, a caller abandoning with nobody logged in, then a 15 call that arm1 answers
/// and escalates P0 to the AMU by REFER: amu1 answers while the caller stays on.
async fn router_with_calls(trunk: &OptionsTrunk) -> Router {
    let router = start(trunk.options()).await;
    router.wait_metric(&trunk.up_sample(), 1.0).await;
    let abandoning = trunk_caller(router.sip, "caller_cancel.xml", "116117", 2_000);
    assert!(finish(abandoning, Duration::from_secs(20)).await, "abandon");
    wait_records(&router, 1).await;

    let keys = [("target", "2001"), ("priority", "P0")];
    let (arm, port) = seat_sipp(router.sip, "seat_refers.xml", &keys, 1, 1_000, true);
    register(router.sip, "arm1", port).await;
    let amu = seat(&router, "amu1", 1, 200).await;
    router
        .wait_metric(
            "sas_seats{role=\"regulateur_amu\",state=\"available\"}",
            1.0,
        )
        .await;
    let caller = trunk_caller(router.sip, "caller.xml", "15", 8_000);
    // The second décroché counts when the regulator answers, not when the call ends.
    let p0_amu = "sas_escalation_wait_seconds_count{outcome=\"answered\",\
                  priority_class=\"p0\",target=\"amu\"}";
    router.wait_metric(p0_amu, 1.0).await;
    assert_eq!(router.metric("sas_active_calls"), 1.0, "the call goes on");
    let amu1_busy = "sas_seat_state{role=\"regulateur_amu\",seat=\"amu1\",state=\"busy\"}";
    router.wait_metric(amu1_busy, 1.0).await;
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(arm, Duration::from_secs(10)).await, "arm1");
    assert!(finish(amu, Duration::from_secs(10)).await, "amu1");
    wait_records(&router, 2).await;
    router
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rules_and_dashboard_check_against_a_real_scrape() {
    let trunk = OptionsTrunk::start();
    let mut router = router_with_calls(&trunk).await;
    let (status, scrape) = http_get(router.http, "/metrics", None).await;
    assert_eq!(status, 200);
    for sample in [
        "sas_line_wait_seconds_count{line=\"sas\",outcome=\"abandoned\"} 1",
        "sas_line_wait_seconds_count{line=\"samu\",outcome=\"answered\"} 1",
        "sas_escalation_wait_seconds_count{outcome=\"answered\",priority_class=\"p0\",target=\"amu\"} 1",
        "sas_queue_wait_seconds_count{outcome=\"answered\",queue=\"amu\"} 1",
        "sas_queue_role{queue=\"amu\",role=\"regulateur_amu\"} 1",
    ] {
        assert!(scrape.lines().any(|l| l == sample), "{sample}\n{scrape}");
    }

    let dir = temp_dir("monitoring");
    let shipped = root().join("monitoring/prometheus");
    for file in [
        "prometheus.yml",
        "prometheus-remote.yml",
        "sas-router.rules.yml",
    ] {
        let text = std::fs::read_to_string(shipped.join(file)).unwrap();
        // Aimed at this router, with its own metrics token.
        let token = router.data.join("metrics.token");
        let text = text
            .replace("127.0.0.1:8080", &router.http.to_string())
            .replace(
                "/etc/prometheus/sas-router-metrics.token",
                token.to_str().unwrap(),
            );
        std::fs::write(dir.join(file), text).unwrap();
    }
    for config in ["prometheus.yml", "prometheus-remote.yml"] {
        promtool(&["check", "config", config], None, &dir);
    }
    promtool(&["check", "rules", "sas-router.rules.yml"], None, &dir);
    let tests: PathBuf = root().join("tests/monitoring/rules_test.yml");
    promtool(&["test", "rules", tests.to_str().unwrap()], None, root());
    promtool(&["check", "metrics"], Some(&scrape), &dir);

    // The dashboard's queries parse: promtool checks them as recording rules.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in dashboard_exprs().iter().enumerate() {
        let expr = serde_json::to_string(expr).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: {expr}\n"
        ));
    }
    std::fs::write(dir.join("dashboard.rules.yml"), rules).unwrap();
    promtool(&["check", "rules", "dashboard.rules.yml"], None, &dir);

    // Every metric they name is in the scrape.
    let scraped = scraped_names(&scrape);
    let mut named = metric_names(&rule_exprs());
    for expr in dashboard_exprs() {
        named.extend(metric_names(&expr));
    }
    assert!(named.len() >= 15, "{named:?}");
    let missing: Vec<&String> = named.difference(&scraped).collect();
    assert!(
        missing.is_empty(),
        "not in the scrape: {missing:?}\n{scrape}"
    );
    std::fs::remove_dir_all(&dir).ok();
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_stops_answering_options_is_down() {
    let trunk = OptionsTrunk::start();
    let (up, target) = (trunk.up_sample(), trunk.addr.to_string());
    let mut router = start(trunk.options()).await;
    router.wait_metric(&up, 1.0).await;
    drop(trunk);
    router.wait_metric(&up, 0.0).await;
    let unanswered =
        format!("sas_trunk_options_total{{result=\"unanswered\",target=\"{target}\"}}");
    assert!(router.metric(&unanswered) >= 1.0, "{}", router.metrics());
    router.stop().await;
}

#[test]
fn metric_names_skip_strings_and_recording_rules() {
    let names = metric_names(
        "line:sas_x:ratio_1h < 0.99 and up{job=~\"sas_not_a_metric\"} \
         and sum by (le) (rate(sas_queue_wait_seconds_bucket[1m]))",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["sas_queue_wait_seconds_bucket"]
    );
}
