//! A crash (SIGKILL of the real binary) loses no finished call: the record of a call that
//! ended just before is read back by the CLI afterwards. And the log shows no caller number.

use crate::common;

use common::process::Process;
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_sigkill() {
    let data = temp_dir("crash");
    let config = data.join("config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();
    let mut router = Process::start(&config);
    let (sip, http) = (router.sip, router.http);

    // A caller who gives up while waiting: the call ends and its record is written.
    let child = trunk_caller(sip, "caller_cancel.xml", "15", 1500);
    assert!(finish(child, Duration::from_secs(20)).await);
    // Killed once the admin API shows the record and its flush had time to end: the store
    // inserts, then flushes, and the flush is not observable from outside (killed as soon as
    // the record showed, it was lost once under load).
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let mut stored = false;
    for _ in 0..200 {
        let (status, body) = http_get(http, "/api/calls", Some(&token)).await;
        let listed = serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap_or_default();
        if status == 200 && !listed.is_empty() {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "the record was never stored");
    tokio::time::sleep(Duration::from_secs(1)).await;
    router.crash();
    // Health data stays out of the info-level log.
    let rest = router.log();
    assert!(rest.iter().any(|l| l.contains("call ended")), "{rest:?}");
    assert!(!rest.iter().any(|l| l.contains("0612345678")), "{rest:?}");

    let listing = cli(&["calls", "list", "--json"], &config);
    let records: Vec<sas_router::store::record::CallRecord> =
        serde_json::from_str(&listing).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].outcome,
        Some(sas_router::store::record::Outcome::Abandoned)
    );
}

/// `kill -9` as soon as a call is counted (its record confirmed), with sled flushed neither
/// by checkpoint nor on its own for minutes: the record is only in the commit log, and the
/// next open of the store (the CLI here) replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_confirmed_only_in_the_commit_log_survives_sigkill() {
    let data = temp_dir("crash-log");
    let config = data.join("config.toml");
    let text = config_text(&Options::default(), &data).replacen(
        "[store]\n",
        "[store]\ncheckpoint_ms = 600000\nflush_every_ms = 60000\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let mut router = Process::start(&config).drain_log();
    let child = trunk_caller(router.sip, "caller_cancel.xml", "15", 1500);
    let counted = "sas_calls_total{line=\"samu\",outcome=\"abandoned\"}";
    let mut tally = 0.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        tally = router.metric(counted).await;
        if tally >= 1.0 {
            break;
        }
        // Polled back to back: the kill follows the confirmation as closely as it can.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if tally < 1.0 {
        let (_, body) = http_get(router.http, "/metrics", None).await;
        let calls: Vec<&str> = body.lines().filter(|l| l.contains("calls_total")).collect();
        panic!("never counted: {calls:?}");
    }
    router.crash();
    assert!(finish(child, Duration::from_secs(20)).await);
    assert_eq!(tally, 1.0);

    let log = data.join("commit.log");
    let left = sas_router::store::wal::read(&log).unwrap();
    assert!(!left.frames.is_empty(), "the record is in the commit log");
    let listing = cli(&["calls", "list", "--json"], &config);
    let records: Vec<sas_router::store::record::CallRecord> =
        serde_json::from_str(&listing).unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        records[0].outcome,
        Some(sas_router::store::record::Outcome::Abandoned)
    );
    // Replayed once: the log starts a new generation, nothing left to replay.
    let after = sas_router::store::wal::read(&log).unwrap();
    assert_eq!(after.generation, left.generation + 1);
    assert!(after.frames.is_empty());
}
