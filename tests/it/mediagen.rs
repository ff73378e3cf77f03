//! The media load generator of `loadtest/media_sidebyside.sh` (`loadtest/mediagen`) through
//! the real router binary and through rtpengine (userspace, our own process): a few calls
//! for a few seconds must relay G.711 both ways with no loss, so the yardstick the
//! side-by-side depends on cannot rot. The generator is the
//! example binary, built next to this test binary (`cargo test --all-targets` builds it,
//! as tests/run.sh does; alone: `cargo build --example mediagen` first).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use sas_router::sip::digest::{DigestAlgorithm, ha1};

use crate::common::{Options, ports, process};

const CALLS: usize = 4;

/// target/<profile>/examples/mediagen, beside this test's deps/ directory.
fn mediagen() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = profile.join("examples/mediagen");
    assert!(
        bin.exists(),
        "{} missing: `cargo build --example mediagen` (cargo test --all-targets builds it)",
        bin.display()
    );
    bin
}

/// The `RESULT k=v …` line of the generator's output.
fn result(stdout: &str) -> HashMap<String, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Runs the generator (`mode` and its arguments) for CALLS calls held 3 s against the relay
/// `relay_pid`; checks every call relayed both ways without loss; the RESULT fields.
fn run_and_check(
    mode: &[String],
    relay_pid: u32,
    per_call: &std::path::Path,
) -> HashMap<String, String> {
    let out = Command::new(mediagen())
        .args(mode)
        .args([
            "--calls",
            &CALLS.to_string(),
            "--hold",
            "3",
            "--warm-up",
            "1",
        ])
        .args(["--rtp-port", &ports::media_port().to_string()])
        .args(["--relay-pid", &relay_pid.to_string()])
        .arg("--per-call")
        .arg(per_call)
        .output()
        .expect("run mediagen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mediagen failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = result(&stdout);
    let n = |k: &str| -> f64 { r[k].parse().unwrap_or_else(|_| panic!("{k}={}", r[k])) };
    assert_eq!(n("bridged"), CALLS as f64, "{stdout}");
    assert_eq!(n("lost"), 0.0, "{stdout}");
    // 3 s at 50 packets/s, both ways, every call (slack for a loaded machine's late ticks).
    assert!(n("received") >= (CALLS * 2 * 140) as f64, "{stdout}");
    assert!(n("pkts_per_cpu_s") > 0.0, "relay CPU measured: {stdout}");
    // Every call, each way: packets arrived, none lost.
    let rows = std::fs::read_to_string(per_call).expect("per-call file");
    let rows: Vec<Vec<&str>> = rows
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), CALLS * 2);
    for row in &rows {
        assert!(row[3].parse::<u64>().unwrap() > 100, "{row:?}");
        assert_eq!(row[4], "0", "lost: {row:?}");
    }
    r
}

#[test]
fn mediagen_relays_g711_both_ways_through_the_router_without_loss() {
    // The generator's seats, load0000…, with its default password.
    let seats: String = (0..CALLS)
        .map(|i| {
            let user = format!("load{i:04}");
            let md5 = ha1(DigestAlgorithm::Md5, &user, "sas-router", "load-pw");
            format!("[[seats]]\nusername = \"{user}\"\nrole = \"arm\"\nha1_md5 = \"{md5}\"\n\n")
        })
        .collect();
    let opts = Options {
        extra: seats,
        ..Options::default()
    };
    let (data, config) = process::setup("mediagen", &opts);
    let router = process::Process::start(&config).drain_log();
    let mode = ["router".into(), "--router".into(), router.sip.to_string()];
    let r = run_and_check(&mode, router.pid(), &data.join("per_call.tsv"));
    assert_eq!(r["hung_up"], CALLS.to_string(), "every BYE answered: {r:?}");
}

/// rtpengine killed when the test ends, passed or not.
struct Rtpengine(Child);

impl Drop for Rtpengine {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn mediagen_relays_g711_both_ways_through_rtpengine_without_loss() {
    // Userspace only, no config file, ports of this test's own (tests/run.sh installs it).
    let ng = ports::signal_port();
    let (min, max) = ports::rtp_range();
    let child = Command::new("rtpengine")
        .args([
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--log-level=3",
        ])
        .args(["--table=-1", "--interface=127.0.0.1", "--num-threads=1"])
        .arg(format!("--listen-ng=127.0.0.1:{ng}"))
        .args([format!("--port-min={min}"), format!("--port-max={max}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rtpengine (Debian rtpengine-daemon; tests/run.sh installs it)");
    let rtpengine = Rtpengine(child);
    // The generator pings the ng port (retrying) before the first offer.
    std::thread::sleep(Duration::from_millis(200));
    let dir = crate::common::temp_dir("mediagen-rtpe");
    let mode = ["rtpengine".into(), "--ng".into(), format!("127.0.0.1:{ng}")];
    let r = run_and_check(&mode, rtpengine.0.id(), &dir.join("per_call.tsv"));
    assert_eq!(r["deleted"], CALLS.to_string(), "every call deleted: {r:?}");
}

/// A router that registers every seat but refuses even calls with 503 and never answers odd
/// ones: the generator's set-up must count both and finish once the last INVITE's
/// retransmissions are spent (3.5 s), not wait for its deadline (calls / rate + 30 s).
#[test]
fn mediagen_set_up_counts_503s_and_timeouts_and_does_not_hang() {
    let router = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the fake router");
    let addr = router.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65535];
        while let Ok((n, from)) = router.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let status = if text.starts_with("REGISTER ") {
                "200 OK"
            } else if text.starts_with("INVITE ")
                && (text.contains("Call-ID: mg-0-") || text.contains("Call-ID: mg-2-"))
            {
                "503 Service Unavailable"
            } else {
                continue; // odd calls: silence; ACKs need no answer
            };
            // A response echoes the request's Via, From, To, Call-ID and CSeq.
            let head: String = text
                .lines()
                .filter(|l| {
                    ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                        .iter()
                        .any(|h| l.starts_with(h))
                })
                .map(|l| format!("{l}\r\n"))
                .collect();
            let answer = format!("SIP/2.0 {status}\r\n{head}Content-Length: 0\r\n\r\n");
            router.send_to(answer.as_bytes(), from).ok();
        }
    });
    let started = std::time::Instant::now();
    let out = Command::new(mediagen())
        .args(["router", "--router", &addr.to_string()])
        .args([
            "--calls",
            &CALLS.to_string(),
            "--hold",
            "2",
            "--warm-up",
            "1",
        ])
        .args(["--rtp-port", &ports::media_port().to_string()])
        .output()
        .expect("run mediagen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mediagen failed: {stdout}\n{stderr}");
    let r = result(&stdout);
    assert_eq!(r["bridged"], "0", "{stdout}");
    assert_eq!(r["failed"], CALLS.to_string(), "{stdout}");
    assert_eq!(r["refused_503"], "2", "calls 0 and 2: {stdout}");
    assert_eq!(r["timeouts"], "2", "calls 1 and 3: {stdout}");
    assert!(r["retransmits"].parse::<u64>().unwrap() >= 12, "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "set-up waited for its deadline: {:?}\n{stderr}",
        started.elapsed()
    );
}
