//! `sas-router report` and `/api/reports` on a real data directory: the same figures from
//! sled (router stopped), through the running router's admin API, as CSV over HTTP, and on
//! the supervisors' page; bad requests get a clear error.

use crate::common;

use common::{Options, cli, config_text, cti_login, http_get, temp_dir};
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::record::{CallRecord, EventKind, Outcome};
use std::path::Path;

/// 2026-11-02T09:00:00Z (10:00 in Paris).
const NOV_2: u64 = 1_793_610_000_000;
const HOUR: u64 = 3_600_000;

/// Three November calls (one answered in 20 s, one in 50 s, one abandoned after 40 s on
/// the SAS line) and one on 2 December, as the router writes them.
fn seed(data: &Path) {
    let store = Store::open(data).unwrap();
    let calls = [
        (NOV_2, "samu", Some(20_000)),
        (NOV_2 + HOUR, "samu", Some(50_000)),
        (NOV_2 + 2 * HOUR, "sas", None),
        (NOV_2 + 29 * 24 * HOUR + 15 * HOUR, "samu", Some(5_000)),
    ];
    for (n, (at, line, answer)) in calls.into_iter().enumerate() {
        let id = format!("{}-{n:04}", sas_core::ids::CallId::stamp(at));
        let mut r = CallRecord::new(
            id,
            format!("sip-{n}"),
            line.into(),
            "15".into(),
            CallerNumber::new("0612345678"),
            at,
        );
        r.enter_queue(at + 1_000, "arm", "arm priority 1".into());
        match answer {
            Some(wait) => {
                r.event(at + wait, EventKind::Connect, Some("arm1"), None);
                r.seat = Some("arm1".into());
                r.outcome = Some(Outcome::Answered);
            }
            None => {
                r.event(at + 40_000, EventKind::Abandon, None, None);
                r.outcome = Some(Outcome::Abandoned);
            }
        }
        store.put_call(&r).unwrap();
    }
}

/// The CSV lines of the November report by line (header, samu, sas, TOTAL).
fn check_november_csv(csv: &str) {
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("line,received,answered,answered_30s,answered_60s,pct_30s,pct_60s,avg_wait_s,abandoned,misdials"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("samu,2,2,1,2,50.0,100.0,35.0,0,0,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("sas,1,0,0,0,0.0,0.0,,1,0,"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("TOTAL,3,2,1,2,33.3,66.7,35.0,1,0,"),
        "{}",
        lines[3]
    );
}

const NOVEMBER: [&str; 4] = ["--from", "2026-11-01", "--to", "2026-11-30"];

fn report(config: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report"];
    args.extend(NOVEMBER);
    args.extend(extra);
    cli(&args, config)
}

#[test]
fn with_the_router_stopped_the_report_reads_sled() {
    let data = temp_dir("report-cli");
    seed(&data);
    let config = data.join("test-config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();

    check_november_csv(&report(&config, &["--by", "line", "--format", "csv"]));
    let table = report(&config, &["--by", "day"]);
    let lines: Vec<&str> = table.lines().collect();
    // Title, header, 30 days, total.
    assert_eq!(lines.len(), 33, "{table}");
    assert!(lines[3].starts_with("2026-11-02         3"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&report(&config, &["--by", "seat", "--format", "json"])).unwrap();
    assert_eq!(json["total"]["received"], 3);
    assert_eq!(json["rows"][1]["key"], "arm1");

    // Bad arguments: one clear line, exit code 1, no panic.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .args(["report", "--from", "2026-11-31", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"2026-11-31\" is not a date (YYYY-MM-DD)"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_router_runs_reports_come_through_its_admin_api_and_page() {
    let data = temp_dir("report-api");
    seed(&data);
    let mut router = common::start(Options {
        data: Some(data.clone()),
        ..Options::default()
    })
    .await;
    let path = "/api/reports?from=2026-11-01&to=2026-11-30&by=line&format=csv";
    let (status, _) = http_get(router.http, path, None).await;
    assert_eq!(status, 401);
    let arm = cti_login(&router, "arm1").await;
    let (status, _) = http_get(router.http, path, Some(&arm)).await;
    assert_eq!(status, 403);

    let (status, csv) = http_get(router.http, path, Some(&router.token())).await;
    assert_eq!(status, 200, "{csv}");
    check_november_csv(&csv);
    let supervisor = cti_login(&router, "sup1").await;
    let (status, same) = http_get(router.http, path, Some(&supervisor)).await;
    assert_eq!((status, same), (200, csv));

    let bad = "/api/reports?from=2026-11-30&to=2026-11-01";
    let (status, body) = http_get(router.http, bad, Some(&supervisor)).await;
    assert_eq!(status, 400);
    assert_eq!(body, "--to 2026-11-01 is before --from 2026-11-30\n");
    let (status, body) = http_get(
        router.http,
        "/api/reports?from=2026-11-01&by=week",
        Some(&supervisor),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "unknown grouping \"week\" (day, hour, line, queue, seat, commune)\n"
        )
    );

    let (status, body) = http_get(router.http, "/api/reports", Some(&supervisor)).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "from (YYYY-MM-DD) is required\n")
    );

    // The CLI, the database held by the router: through the API, the same figures.
    let config = router.config_path.clone();
    check_november_csv(&report(&config, &["--by", "line", "--format", "csv"]));

    let (status, page) = http_get(router.http, "/reports", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/reports/reports.js"), "{page}");
    let (status, script) = http_get(router.http, "/reports/reports.js", None).await;
    assert_eq!(status, 200);
    assert!(script.contains("format=csv"), "{script}");
    router.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

/// Real calls (SIPp trunk callers and a SIPp seat): a misdial and an abandon while no seat
/// is online, then a call answered by arm1; the report reads what the router wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_the_router_add_up_in_the_report() {
    use common::{eventually, finish, seat, trunk_caller, wait_records};
    use std::time::Duration;
    let mut router = common::start(Options::default()).await; // misdial threshold 1 s
    for (n, wait_ms) in [(1, 300u64), (2, 1500)] {
        let child = trunk_caller(router.sip, "caller_cancel.xml", "15", wait_ms);
        assert!(
            finish(child, Duration::from_secs(20)).await,
            "cancel scenario"
        );
        wait_records(&router, n).await;
    }
    let arm1 = seat(&router, "arm1", 1, 300).await;
    let available = "sas_seats{role=\"arm\",state=\"available\"}";
    assert!(eventually(Duration::from_secs(15), || router.metric(available) == 1.0).await);
    let caller = trunk_caller(router.sip, "caller.xml", "15", 1500);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert!(finish(arm1, Duration::from_secs(10)).await, "seat scenario");
    let records = wait_records(&router, 3).await;

    // The Paris days the calls arrived on (a test run may straddle midnight).
    let day = |at: u64| {
        use chrono::TimeZone;
        chrono_tz::Europe::Paris
            .timestamp_millis_opt(at as i64)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let from = records.iter().map(|r| day(r.arrived_at)).min().unwrap();
    let to = records.iter().map(|r| day(r.arrived_at)).max().unwrap();
    let path = format!("/api/reports?from={from}&to={to}&by=line&format=json");
    let (status, body) = http_get(router.http, &path, Some(&router.token())).await;
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let samu = &report["rows"][0];
    assert_eq!(samu["key"], "samu", "{body}");
    for (field, value) in [
        ("received", 3),
        ("answered", 1),
        ("answered_30s", 1),
        ("answered_60s", 1),
        ("abandoned", 1),
        ("misdials", 1),
        ("handled", 1),
    ] {
        assert_eq!(samu[field], value, "{field}: {body}");
    }
    assert!(samu["talk_ms"].as_u64().unwrap() >= 1_000, "{body}");
    assert_eq!(report["total"]["received"], 3);
    router.stop().await;
}

/// The supervisors' page in Chromium: a supervisor logged in on the console sees the
/// report and its CSV link (an ARM's session is refused: see the admin API test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reads_the_report_page_in_a_browser() {
    use common::SEATS;
    use common::browser::{Browser, with_browser};
    let data = temp_dir("report-page");
    seed(&data);
    async fn login(browser: &Browser, http: std::net::SocketAddr, seat: &str) {
        let password = SEATS.iter().find(|(u, _)| *u == seat).unwrap().1;
        browser.goto(&format!("http://{http}/console")).await;
        browser.type_into("#login-seat", seat).await;
        browser.type_into("#login-password", password).await;
        browser.click("#login-submit").await;
        browser.wait_text("#who-seat", seat).await;
    }
    let dir = data.clone();
    with_browser(&dir, |browser| async move {
        let mut router = common::start(Options {
            data: Some(data.clone()),
            ..Options::default()
        })
        .await;
        let page = format!(
            "http://{}/reports?from=2026-11-01&to=2026-11-30&by=line",
            router.http
        );
        login(&browser, router.http, "sup1").await;
        browser.goto(&page).await;
        let table = browser.wait_text("#report", "TOTAL").await;
        assert!(table.contains("by line"), "{table}");
        let samu = table.lines().find(|l| l.starts_with("samu")).unwrap();
        let cells: Vec<&str> = samu.split_whitespace().take(5).collect();
        assert_eq!(cells, ["samu", "2", "2", "1", "2"], "{table}");
        assert!(browser.shown("#csv").await);

        router.stop().await;
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}
