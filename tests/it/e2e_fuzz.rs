//! The mutational SIP fuzzer against the real binary over loopback UDP and TCP: no answer may
//! be a 5xx other than a deliberate 501/503/505, nothing may panic (the router's log is read), and
//! the router must still answer a valid OPTIONS on both transports afterwards.
//!
//! CI sends 3,000 messages (`SAS_FUZZ_COUNT` for more, `SAS_FUZZ_SEED` for another seed):
//! `SAS_FUZZ_COUNT=50000 cargo test --release --test it e2e_fuzz:: -- --nocapture`.

use crate::common;

use common::*;
use sas_router::net::fuzz::{FuzzRun, run};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The address after `key=Some(` in the start-up log line.
fn bound(line: &str, key: &str) -> Option<SocketAddr> {
    let prefix = format!("{key}=Some(");
    let rest = &line[line.find(&prefix)? + prefix.len()..];
    rest[..rest.find(')')?].parse().ok()
}

/// Every line the router writes, on either stream, kept for the end.
fn collect(stream: impl std::io::Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_sip_over_udp_and_tcp_gets_no_5xx_and_no_panic() {
    let data = temp_dir("fuzz");
    let config = data.join("config.toml");
    // Media ports for every admitted INVITE: a pool that runs dry answers 503 before the
    // dialog code runs, and would hide its bugs. The binary's one wide range.
    let (rtp_min, rtp_max) = ports::wide_rtp_range();
    let text = config_text(&Options::default(), &data);
    let text: String = text
        .lines()
        .map(|l| match l.split(" = ").next() {
            Some("rtp_port_min") => format!("rtp_port_min = {rtp_min}"),
            Some("rtp_port_max") => format!("rtp_port_max = {rtp_max}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).unwrap();
    let mut router = Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .args(["-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    collect(router.stdout.take().unwrap(), log.clone());
    collect(router.stderr.take().unwrap(), log.clone());
    let started = eventually(std::time::Duration::from_secs(20), || {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("sas-router started"))
    })
    .await;
    assert!(started, "{:?}", log.lock().unwrap());
    let line = log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("sas-router started"))
        .cloned()
        .unwrap();

    let fuzz = FuzzRun {
        seed: env_number("SAS_FUZZ_SEED", 1),
        count: env_number("SAS_FUZZ_COUNT", 3_000),
        udp: bound(&line, "sip_udp"),
        tcp: bound(&line, "sip_tcp"),
        rate: env_number("SAS_FUZZ_RATE", 400) as u32,
    };
    assert!(fuzz.udp.is_some() && fuzz.tcp.is_some(), "{line}");
    let report = run(&fuzz).await.unwrap();
    println!("{report}");
    router.kill().ok();
    router.wait().ok();

    let panics: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("panicked"))
        .cloned()
        .collect();
    assert!(panics.is_empty(), "the router panicked: {panics:?}");
    assert!(report.findings.is_empty(), "{report}");
    assert!(report.alive, "{report}");
    assert_eq!(report.sent, fuzz.count);
    // The run reached both the guard (400s) and the handlers (401 to REGISTER, 481…).
    for code in [400, 401, 481] {
        assert!(report.statuses.contains_key(&code), "no {code}: {report}");
    }
}
