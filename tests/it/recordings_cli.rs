//! The `recordings` and `audit` subcommands on a real data directory: reading a recording
//! copies the exact file and writes who and why to the audit log, with sled opened directly
//! (router stopped) and through the running router's admin API.

use crate::common;

use common::{Options, cli, config_text, http_get, temp_dir};
use sas_router::media::g711::G711Law;
use sas_router::media::recording::{Channel, Recorder, RecordingInfo, RtpMeta};
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::audit::AuditEntry;
use sas_router::store::record::CallRecord;
use sas_router::store::recordings::{RECORDINGS_DIR, Recordings};
use std::path::{Path, PathBuf};

const ID: &str = "20261123T071502.123Z-0001";
/// 2026-11-23T07:15:02.123Z
const ANSWERED: u64 = 1_795_418_102_123;

/// A one-second recording and the answered call's record pointing at it.
fn seed(data: &Path) -> (PathBuf, RecordingInfo) {
    let rel = Recordings::relative_path(ID, ANSWERED);
    let root = data.join(RECORDINGS_DIR);
    let mut recorder = Recorder::create(&root, &rel).unwrap();
    for i in 0..50 {
        let rtp = |ssrc| RtpMeta {
            ssrc,
            timestamp: i as u32 * 160,
        };
        let (loud, soft) = (G711Law::Alaw.encode(1000), G711Law::Alaw.encode(-1000));
        recorder.push_g711(
            Channel::Caller,
            i * 160,
            rtp(1),
            &[loud; 160],
            G711Law::Alaw,
        );
        recorder.push_g711(
            Channel::Plateau,
            i * 160,
            rtp(2),
            &[soft; 160],
            G711Law::Alaw,
        );
        recorder.flush(i * 160).unwrap();
    }
    let info = recorder.finish(Some(50 * 160)).unwrap().info;
    let mut record = CallRecord::new(
        ID.into(),
        "sip-call-id".into(),
        "samu".into(),
        "15".into(),
        CallerNumber::new("0612345678"),
        ANSWERED - 5_000,
    );
    record.answered_at = Some(ANSWERED);
    record.recording = Some(info.clone());
    Store::open(data).unwrap().put_call(&record).unwrap();
    (root.join(rel), info)
}

fn audit(config: &Path) -> Vec<AuditEntry> {
    serde_json::from_str(&cli(&["audit", "list", "--json"], config)).unwrap()
}

#[test]
fn reading_a_recording_with_the_router_stopped_is_audited() {
    let data = temp_dir("rec-cli");
    let (wav, info) = seed(&data);
    assert_eq!(info.path, format!("2026/11/23/{ID}.wav"));
    let config = data.join("test-config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();

    let out = data.join("copy.wav");
    let printed = cli(
        &[
            "recordings",
            "get",
            ID,
            "--as",
            "dr-martin",
            "--purpose",
            "réquisition 2026-118",
            "--out",
            out.to_str().unwrap(),
        ],
        &config,
    );
    assert!(printed.contains("matches the call record"), "{printed}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&wav).unwrap());

    let entries = audit(&config);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "dr-martin");
    assert_eq!(entries[0].action, "recording.read");
    assert_eq!(entries[0].target, ID);
    assert_eq!(entries[0].detail.as_deref(), Some("réquisition 2026-118"));
    let table = cli(&["audit", "list"], &config);
    assert!(table.contains("dr-martin") && table.contains(ID), "{table}");

    // A young recording survives a purge.
    let purged = cli(&["recordings", "purge"], &config);
    assert!(purged.starts_with("deleted 0"), "{purged}");
    assert!(wav.exists());
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_router_runs_the_cli_reads_through_its_admin_api() {
    let data = temp_dir("rec-api");
    let (wav, _) = seed(&data);
    let mut router = common::start(Options {
        data: Some(data.clone()),
        ..Options::default()
    })
    .await;
    let config = router.config_path.clone();

    let (status, _) = http_get(router.http, "/api/audit", None).await;
    assert_eq!(status, 401);
    let path = format!("/api/calls/{ID}/recording");
    let (status, body) = http_get(router.http, &path, Some(&router.token())).await;
    assert_eq!(status, 400, "{body}");

    let out = data.join("copy.wav");
    let (cfg, target) = (config.clone(), out.clone());
    let printed = tokio::task::spawn_blocking(move || {
        cli(
            &[
                "recordings",
                "get",
                ID,
                "--as",
                "Dr Martin & Co",
                "--out",
                target.to_str().unwrap(),
            ],
            &cfg,
        )
    })
    .await
    .unwrap();
    assert!(printed.contains("matches the call record"), "{printed}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&wav).unwrap());

    let entries = tokio::task::spawn_blocking(move || audit(&config))
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "Dr Martin & Co");
    assert_eq!(entries[0].target, ID);
    assert_eq!(entries[0].detail, None);
    router.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

/// `recordings get` checks the copy against the record: a new recording's hash covers the
/// audio behind the header its length implies, a record from before hashes the whole file
/// (still verified as then), and a recording changed on disk is refused.
#[test]
fn get_verifies_new_and_old_hashes_and_refuses_a_changed_file() {
    use sas_router::media::recording::HashScope;
    use sha2::{Digest, Sha256};
    let data = temp_dir("rec-verify");
    let (wav, info) = seed(&data);
    assert_eq!(info.hashed, HashScope::Audio);
    let config = data.join("test-config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();
    let get = |out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
            .args(["recordings", "get", ID, "--as", "dr-martin", "--out"])
            .arg(data.join(out))
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap()
    };
    let ok = get("new.wav");
    let printed = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{ok:?}");
    assert!(printed.contains(&info.sha256), "{printed}");
    assert!(
        printed.contains("of the audio after the 44-byte header"),
        "{printed}"
    );

    // The record as written before hashes were computed while writing.
    let bytes = std::fs::read(&wav).unwrap();
    let store = Store::open(&data).unwrap();
    let mut record = store.get_call(ID).unwrap().unwrap();
    let old = RecordingInfo {
        sha256: hex::encode(Sha256::digest(&bytes)),
        hashed: HashScope::File,
        ..info.clone()
    };
    record.recording = Some(old.clone());
    store.put_call(&record).unwrap();
    drop(store);
    let ok = get("old.wav");
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&old.sha256));

    // One sample changed on disk: refused.
    let mut changed = bytes;
    changed[100] ^= 1;
    std::fs::write(&wav, changed).unwrap();
    let refused = get("changed.wav");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(said.contains("differs from the call record"), "{said}");
    std::fs::remove_dir_all(&data).ok();
}
