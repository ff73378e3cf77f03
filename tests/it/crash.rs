//! A crash (SIGKILL of the real binary) loses no finished call: the record of a call that
//! ended just before is read back by the CLI afterwards. And the log shows no caller number.

use crate::common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Reads the router's start-up log line for the SIP UDP address it bound.
fn bound_sip_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("sip_udp=Some(")? + "sip_udp=Some(".len()..];
    rest[..rest.find(')')?].parse().ok()
}

/// Reads the start-up log line for the HTTP address it bound (`http=…`).
fn bound_http_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("http=")? + "http=".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_sigkill() {
    let data = temp_dir("crash");
    let config = data.join("config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();
    let mut router = Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .args(["-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(router.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let started = log
        .find(|l| l.contains("sas-router started"))
        .expect("start-up line");
    let sip = bound_sip_address(&started).expect("the SIP address");
    let http = bound_http_address(&started).expect("the HTTP address");

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
    router.kill().unwrap(); // SIGKILL: no shutdown path runs
    router.wait().unwrap();
    // Health data stays out of the info-level log.
    let rest: Vec<String> = log.collect();
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
