//! Grafana shows the report's numbers: a real Prometheus (Debian's `prometheus`, its own
//! process, the shipped configuration and rules, 1 s scrapes) scrapes a router while SIPp
//! calls go through it: answered within 30 s, answered after 30 s, abandoned, a misdial, a
//! P0 escalation to the AMU. The Grafana dashboard's own panel expressions, read from its
//! JSON, are then queried over `/api/v1/query` and must give what
//! `sas-router report --by line --format csv` gives for the same calls.
//!
//! And alerts fire for real on that Prometheus (the shipped rules with `for: 1s`): no seat
//! logged in, a line switched to the backup centre, the trunk not answering OPTIONS; each
//! resolves once fixed.

use crate::common;
use crate::monitoring::OptionsTrunk;

use common::prometheus_server::{Prometheus, Sample};
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The expression of target `ref_id` of the dashboard's panel `id`, with Grafana's range
/// variables given values: `$__range` is `range_s` seconds.
fn panel_expr(id: u64, ref_id: &str, range_s: u64) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("monitoring/grafana/dashboards/sas-router.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panel = json["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no panel {id} in the dashboard"));
    let target = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("no target {ref_id} in panel {id}"));
    target["expr"]
        .as_str()
        .unwrap()
        .replace("$__range", &format!("{range_s}s"))
        .replace("$__rate_interval", "4s")
}

/// Samples keyed by one label's value.
fn by(label: &str, samples: Vec<Sample>) -> BTreeMap<String, f64> {
    samples
        .into_iter()
        .map(|(labels, v)| (labels.get(label).cloned().unwrap_or_default(), v))
        .collect()
}

/// The CSV report: each row's cells by column name, rows by key (`TOTAL` included).
fn parse_report(csv: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lines = csv.lines().filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{line}");
            let row = header[1..]
                .iter()
                .zip(&cells[1..])
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect();
            (cells[0].to_string(), row)
        })
        .collect()
}

/// One report's rows by line, its cells as numbers (empty: 0).
struct Report(BTreeMap<String, BTreeMap<String, String>>);

impl Report {
    fn get(&self, row: &str, column: &str) -> f64 {
        let cell = &self.0[row][column];
        if cell.is_empty() {
            return 0.0;
        }
        cell.parse()
            .unwrap_or_else(|_| panic!("{row}.{column} = {cell:?}"))
    }

    fn lines(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "TOTAL")
            .collect()
    }

    fn cells(&self, row: &str, columns: &[&str]) -> Vec<f64> {
        columns.iter().map(|c| self.get(row, c)).collect()
    }
}

/// Asserts the panel's value for each line is the report's (a line the panel shows and the
/// report has not must be 0: the dial plans' lines without calls).
fn assert_per_line(panel: &str, shown: &BTreeMap<String, f64>, report: &Report, column: &str) {
    for line in report.lines() {
        let want = report.get(line, column);
        let got = shown.get(line).copied().unwrap_or(0.0);
        assert!(
            (got - want).abs() < 1e-9,
            "{panel}, line {line}: Prometheus {got}, report {column} {want}\n{shown:?}"
        );
    }
    for (line, got) in shown {
        if !report.0.contains_key(line) {
            assert!(got.abs() < 1e-9, "{panel}, line {line}: {got} with no call");
        }
    }
}

/// `close` within 1e-9 of `want`.
fn assert_close(what: &str, got: Option<f64>, want: f64) {
    let got = got.unwrap_or_else(|| panic!("{what}: no sample"));
    assert!((got - want).abs() < 1e-9, "{what}: {got}, want {want}");
}

/// Phase one, nobody logged in: a 116 117 call waits 32 s until arm1 logs in and answers
/// it, a misdial (gone after 0.5 s), a 15 abandon (after 4 s); then arm1 answers another
/// 116 117 call at once, and logs out.
async fn first_level_calls(router: &Router) {
    let slow_at = tokio::time::Instant::now();
    let slow = trunk_caller(router.sip, "caller.xml", "116117", 1_000);
    let misdial = trunk_caller(router.sip, "caller_cancel.xml", "116117", 500);
    let abandon = trunk_caller(router.sip, "caller_cancel.xml", "15", 4_000);
    assert!(finish(misdial, Duration::from_secs(10)).await, "misdial");
    assert!(finish(abandon, Duration::from_secs(10)).await, "abandon");
    tokio::time::sleep_until(slow_at + Duration::from_secs(32)).await;
    let (phone, port) = answering_sipp(router.sip, 2, 200);
    register(router.sip, "arm1", port).await;
    assert!(
        finish(slow, Duration::from_secs(20)).await,
        "answered after 32 s"
    );
    wait_records(router, 3).await;
    let quick = trunk_caller(router.sip, "caller.xml", "116117", 1_000);
    assert!(
        finish(quick, Duration::from_secs(20)).await,
        "answered at once"
    );
    assert!(finish(phone, Duration::from_secs(10)).await, "arm1");
    // Its phone is gone: out of distribution before the next call.
    unregister(router.sip, "arm1", port).await;
    router
        .wait_metric("sas_seats{role=\"arm\",state=\"available\"}", 0.0)
        .await;
}

/// Phase two: a 15 call arm2 answers and escalates P0 to the AMU by REFER, amu1 answers.
async fn escalated_p0(router: &Router) {
    let keys = [("target", "2001"), ("priority", "P0")];
    let (arm, port) = seat_sipp(router.sip, "seat_refers.xml", &keys, 1, 1_000, true);
    register(router.sip, "arm2", port).await;
    let amu = seat(router, "amu1", 1, 200).await;
    router
        .wait_metric(
            "sas_seats{role=\"regulateur_amu\",state=\"available\"}",
            1.0,
        )
        .await;
    let caller = trunk_caller(router.sip, "caller.xml", "15", 8_000);
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(arm, Duration::from_secs(10)).await, "arm2");
    assert!(finish(amu, Duration::from_secs(10)).await, "amu1");
    wait_records(router, 5).await;
}

/// The report by line over yesterday to tomorrow (UTC: the test's calls, whatever the
/// hour in Paris).
fn report_by_line(router: &Router) -> Report {
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let (from, to) = (
        day(today.pred_opt().unwrap()),
        day(today.succ_opt().unwrap()),
    );
    let csv = cli(
        &[
            "report", "--from", &from, "--to", &to, "--by", "line", "--format", "csv",
        ],
        &router.config_path,
    );
    Report(parse_report(&csv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_panels_show_the_report_figures() {
    let mut router = start(Options {
        misdial_threshold_s: 2,
        ..Options::default()
    })
    .await;
    // The dashboard's range starts before Prometheus's first scrape, where every series of
    // the dial plans' lines is at 0.
    let range_start = unix_now().floor() - 1.0;
    let prometheus = Prometheus::start(router.http, None);
    let up = "up{job=\"sas-router\"}";
    for _ in 0..100 {
        if prometheus.query(up, None).await.first().map(|s| s.1) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_close(
        "up",
        prometheus.query(up, None).await.first().map(|s| s.1),
        1.0,
    );

    first_level_calls(&router).await;
    escalated_p0(&router).await;
    // Scraped after the last call; evaluated at that scrape, so that increase() has
    // nothing to extrapolate at the range's end (see docs/monitoring.md).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let at = prometheus
        .query(&format!("timestamp({up})"), None)
        .await
        .first()
        .map(|s| s.1)
        .unwrap();
    let range_s = (at - range_start).ceil() as u64;
    let panel = |id: u64, ref_id: &str| panel_expr(id, ref_id, range_s);
    let query = async |expr: String| prometheus.query(&expr, Some(at)).await;

    let report = report_by_line(&router);
    // The calls as placed: samu (15) an abandon and the escalated call, sas (116 117) the
    // call answered after 32 s, one at once, a misdial.
    let columns = [
        "received",
        "answered",
        "answered_30s",
        "answered_60s",
        "abandoned",
        "misdials",
        "overflows",
        "l2_amu",
        "l2_amu_answered",
        "l2_p0",
        "l2_p0_answered",
    ];
    let samu = report.cells("samu", &columns);
    assert_eq!(samu, [2., 1., 1., 1., 1., 0., 0., 1., 1., 1., 1.], "samu");
    let sas = report.cells("sas", &columns);
    assert_eq!(sas, [3., 2., 1., 2., 0., 1., 0., 0., 0., 0., 0.], "sas");

    // "Calls per line, as the report counts them" and "Abandons and misdials per line".
    for (id, ref_id, column) in [
        (30, "A", "received"),
        (30, "B", "answered"),
        (30, "C", "answered_30s"),
        (30, "D", "answered_60s"),
        (13, "A", "abandoned"),
        (13, "B", "misdials"),
        (13, "C", "overflows"),
    ] {
        let shown = by("line", query(panel(id, ref_id)).await);
        assert_per_line(&format!("panel {id}{ref_id}"), &shown, &report, column);
    }

    // "Answered within 30 s / 60 s per line": shares of the calls that were not misdials
    // (the report's pct_30s and pct_60s, exact here as every call waited in a queue).
    for (ref_id, column) in [("A", "answered_30s"), ("B", "answered_60s")] {
        let shown = by("line", query(panel(11, ref_id)).await);
        for line in report.lines() {
            let demand = report.get(line, "received") - report.get(line, "misdials");
            let want = report.get(line, column) / demand;
            assert_close(
                &format!("panel 11{ref_id} {line}"),
                shown.get(line).copied(),
                want,
            );
            let pct = format!("{:.1}", want * 100.0);
            let pct_column = column.replace("answered", "pct");
            assert_eq!(report.0[line][&pct_column], pct, "{line} {pct_column}");
        }
    }
    // "Answered within 60 s per line, last hour": the shipped recording rule, the same.
    let rule = panel_expr(12, "A", range_s);
    let mut shown = BTreeMap::new();
    for _ in 0..20 {
        shown = by("line", prometheus.query(&rule, None).await);
        if shown.get("sas") == Some(&1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_close("panel 12 samu", shown.get("samu").copied(), 0.5);
    assert_close("panel 12 sas", shown.get("sas").copied(), 1.0);

    // Second level: "Escalations per target" against the report's total row (its l2
    // columns per target, and P0 apart).
    for (ref_id, suffix) in [("A", ""), ("B", "_answered")] {
        let shown = by("target", query(panel(31, ref_id)).await);
        for target in ["amu", "liberal", "psy"] {
            let want = report.get("TOTAL", &format!("l2_{target}{suffix}"));
            assert_close(
                &format!("panel 31{ref_id} {target}"),
                shown.get(target).copied(),
                want,
            );
        }
    }
    for (ref_id, column) in [("C", "l2_p0"), ("D", "l2_p0_answered")] {
        let shown = query(panel(31, ref_id)).await;
        assert_close(
            &format!("panel 31{ref_id}"),
            shown.first().map(|s| s.1),
            report.get("TOTAL", column),
        );
    }
    // "Escalations answered within 60 s" and "P0 within 30 s": the report gives the longest
    // second-level wait, under 30 s here, so every answered escalation is in.
    assert!(report.get("TOTAL", "l2_amu_max_s") <= 30.0);
    let within = by("target", query(panel(18, "A")).await);
    assert_close("panel 18A amu", within.get("amu").copied(), 1.0);
    let p0 = query(panel(18, "B")).await;
    assert_close("panel 18B", p0.first().map(|s| s.1), 1.0);
    // "Escalations abandoned or overflowed": escalated minus answered, none.
    let lost: f64 = query(panel(19, "A")).await.iter().map(|s| s.1).sum();
    let want = report.get("TOTAL", "l2_amu") - report.get("TOTAL", "l2_amu_answered");
    assert_close("panel 19A", Some(lost), want);

    // The "now" panels have no report column: nothing waits, nothing is in progress.
    let waiting: f64 = query(panel(2, "A")).await.iter().map(|s| s.1).sum();
    assert_close("panel 2A", Some(waiting), 0.0);
    assert_close(
        "panel 4A",
        query(panel(4, "A")).await.first().map(|s| s.1),
        0.0,
    );
    assert_close(
        "panel 5A",
        query(panel(5, "A")).await.first().map(|s| s.1),
        0.0,
    );

    drop(prometheus);
    router.stop().await;
}

/// `alerts` has `name` firing with `label` = `value`.
fn firing(
    alerts: &[(String, BTreeMap<String, String>, String)],
    name: &str,
    (label, value): (&str, &str),
) -> bool {
    alerts.iter().any(|(n, l, s)| {
        n == name && l.get(label).map(String::as_str) == Some(value) && s == "firing"
    })
}

fn named(alerts: &[(String, BTreeMap<String, String>, String)], name: &str) -> bool {
    alerts.iter().any(|(n, _, _)| n == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_and_resolve_on_a_real_prometheus() {
    let trunk = OptionsTrunk::start();
    let target = trunk.addr.to_string();
    let mut router = start(Options {
        // The 15 with a `backup` step, so that it can be switched.
        plans: Some(backup_centre_plan(60).replace(
            "start = \"file\"\n",
            "start = \"file\"\nbackup = \"secours\"\n",
        )),
        ..trunk.options()
    })
    .await;
    let prometheus = Prometheus::start(router.http, Some("1s"));
    let within = Duration::from_secs(20);

    // Nobody logged in for the 15's ARM queue.
    prometheus
        .wait_alerts(within, "no seat for the ARM queue", |a| {
            firing(a, "SasNoSeatLoggedIn", ("queue", "arm"))
        })
        .await;
    let alerts = prometheus.alerts().await;
    assert!(!named(&alerts, "SasTrunkDown"), "{alerts:?}");
    register(router.sip, "arm1", free_udp_port()).await;
    prometheus
        .wait_alerts(within, "arm1 logged in", |a| !named(a, "SasNoSeatLoggedIn"))
        .await;

    // The 15 switched to the backup centre, then restored.
    let path = "/api/supervisor/lines/samu/switch";
    let body = r#"{"reason":"exercice"}"#;
    let (status, answer) = http_send(router.http, "POST", path, Some(&router.token()), body).await;
    assert_eq!(status, 200, "{answer}");
    prometheus
        .wait_alerts(within, "line switched", |a| {
            firing(a, "SasLineSwitchedToBackup", ("line", "samu"))
        })
        .await;
    cli(
        &["lines", "restore", "samu", "--reason", "fin"],
        &router.config_path,
    );
    prometheus
        .wait_alerts(within, "line restored", |a| {
            !named(a, "SasLineSwitchedToBackup")
        })
        .await;

    // The trunk stops answering OPTIONS, then comes back on its port.
    drop(trunk);
    prometheus
        .wait_alerts(within, "trunk down", |a| {
            firing(a, "SasTrunkDown", ("target", &target))
        })
        .await;
    let trunk = OptionsTrunk::start_on(target.parse().unwrap());
    prometheus
        .wait_alerts(within, "trunk back", |a| !named(a, "SasTrunkDown"))
        .await;

    drop((prometheus, trunk));
    router.stop().await;
}

/// `monitoring/run.sh` with `PATH` holding only the tools it needs and `extra`: its exit
/// code and stderr.
fn run_sh_with_only(extra: &[&str]) -> (Option<i32>, String) {
    let dir = temp_dir("run-sh");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["bash", "sed", "cp", "mkdir", "dirname"]
        .iter()
        .chain(extra)
    {
        let found = std::process::Command::new("which")
            .arg(tool)
            .output()
            .unwrap();
        let path = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/run.sh");
    let out = std::process::Command::new(bin.join("bash"))
        .arg(script)
        .args(["--dir", dir.join("m").to_str().unwrap()])
        .env("PATH", &bin)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sh_starts_prometheus_on_the_shipped_files_and_names_what_is_missing() {
    let (code, err) = run_sh_with_only(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("apt-get install prometheus"), "{err}");
    let (code, err) = run_sh_with_only(&["prometheus", "promtool"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("apt.grafana.com") && err.contains("grafana/grafana-oss"),
        "{err}"
    );

    // Without Grafana: Prometheus on the shipped configuration and rules, aimed at a router.
    let mut router = start(Options::default()).await;
    let dir = temp_dir("run-sh");
    let port = free_udp_port();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/run.sh");
    let run = std::process::Command::new("bash")
        .arg(script)
        .args(["--no-grafana", "--router", &router.http.to_string()])
        .args(["--prometheus-port", &port.to_string()])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut run = Terminated(Some(run));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let listening = eventually(Duration::from_secs(15), || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .await;
    assert!(listening, "Prometheus of run.sh on {addr}");
    let url = format!("http://{}/metrics", router.http);
    let mut targets = serde_json::Value::Null;
    // Prometheus answers before its scrape manager has the targets: up to 15 s on a busy
    // machine (5 s was seen short once in CI).
    for _ in 0..150 {
        targets = common::prometheus_server::api_get(addr, "/api/v1/targets").await;
        if targets["activeTargets"][0]["scrapeUrl"] == url.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        targets["activeTargets"][0]["scrapeUrl"],
        url.as_str(),
        "{targets}"
    );
    let rules = common::prometheus_server::api_get(addr, "/api/v1/rules").await;
    assert!(rules.to_string().contains("SasTrunkDown"), "{rules}");

    // Stopped (SIGTERM to the script): its Prometheus stops with it.
    assert!(run.stop().success());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "Prometheus left running"
    );
    std::fs::remove_dir_all(&dir).ok();
    router.stop().await;
}

/// The script, sent SIGTERM (its trap stops what it started) when stopped or dropped.
struct Terminated(Option<std::process::Child>);

impl Terminated {
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("running");
        let pid = child.id().to_string();
        std::process::Command::new("kill").arg(&pid).status().ok();
        child.wait().unwrap()
    }
}

impl Drop for Terminated {
    fn drop(&mut self) {
        if self.0.is_some() {
            self.stop();
        }
    }
}
