//! The admin CLI as a shell user meets it: output cut short by a pipe (`| head`) is not a
//! crash, errors are one readable message whatever `RUST_BACKTRACE` says, and listings name
//! the seat that answered an escalated call.

use crate::common;

use common::{Options, config_text, temp_dir};
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::record::{CallRecord, Handler, Outcome};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ID: &str = "20261123T071502.123Z-0001";
/// 2026-11-23T07:15:02.123Z
const ANSWERED: u64 = 1_795_418_102_123;

/// A data directory holding one call answered by arm4 and escalated to amu2, and its config.
fn escalated_call() -> PathBuf {
    let data = temp_dir("cli-output");
    let mut record = CallRecord::new(
        ID.into(),
        "sip-call-id".into(),
        "samu".into(),
        "15".into(),
        CallerNumber::new("0612345678"),
        ANSWERED - 5_000,
    );
    record.answered_at = Some(ANSWERED);
    record.seat = Some("arm4".into());
    record.outcome = Some(Outcome::Answered);
    record.ended_at = Some(ANSWERED + 60_000);
    let handler = |seat: &str, role: &str, from: u64, until: u64, left: &str| Handler {
        seat: seat.into(),
        role: role.into(),
        from,
        until: Some(until),
        left: Some(left.into()),
    };
    record.handlers = vec![
        handler("arm4", "arm", ANSWERED, ANSWERED + 20_000, "transfer"),
        handler(
            "amu2",
            "regulateur_amu",
            ANSWERED + 23_500,
            ANSWERED + 60_000,
            "caller_bye",
        ),
    ];
    Store::open(&data).unwrap().put_call(&record).unwrap();
    let config = data.join("test-config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();
    config
}

fn router_cli(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sas-router"));
    command.args(args).arg("-c").arg(config);
    command
}

#[test]
fn calls_show_into_a_closed_pipe_ends_quietly() {
    let config = escalated_call();
    for args in [&["calls", "show", ID][..], &["calls", "list"]] {
        let mut child = router_cli(&config, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader leaves before the first line, as `| head -0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
}

#[test]
fn errors_are_one_message_without_a_backtrace() {
    let dir = temp_dir("cli-error");
    std::fs::write(dir.join("bad.toml"), "[entries.samu\nnumbers = [\"15\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .args(["check"])
        .arg(&dir)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.toml"), "names the file: {stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = router_cli(&config_missing(&dir), &["calls", "show", "nope"])
        .env("RUST_BACKTRACE", "full")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
}

fn config_missing(dir: &Path) -> PathBuf {
    dir.join("no-such-config.toml")
}

#[test]
fn an_escalated_call_is_listed_as_answered_by_the_arm() {
    let config = escalated_call();
    let list = String::from_utf8(
        router_cli(&config, &["calls", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(list.contains("ANSWERED_BY"), "{list}");
    assert!(list.contains("arm4→amu2"), "{list}");
    let show = String::from_utf8(
        router_cli(&config, &["calls", "show", ID])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        show.contains("answered  2026-11-23T07:15:02.123Z by arm4"),
        "{show}"
    );
    assert!(show.contains("handler   amu2"), "{show}");
}

/// `calls list` run just as the router stops (its database still locked a moment, its API
/// no longer answering) waits for the database, rather than failing on the API.
#[test]
fn the_cli_waits_for_a_stopping_router_s_database() {
    let config = escalated_call();
    let data = config.parent().unwrap().to_path_buf();
    let held = Store::open_retrying(&data, std::time::Duration::from_secs(5)).unwrap();
    let cli = std::thread::spawn(move || router_cli(&config, &["calls", "list"]).output());
    std::thread::sleep(std::time::Duration::from_millis(700));
    drop(held);
    let out = cli.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(ID));
}
