//! Durable state through the real binary: a `kill -9` with calls in flight leaves a record
//! of each (`interrupted`, timeline, recording) after the restart; registrations and seat
//! pauses survive a restart; SIGTERM drains (the call in progress finishes, a new one gets
//! 503 with Retry-After) and the router exits even with its log pipe closed.

use crate::common::process::{Process, setup};
use crate::common::sip::{options, status};
use crate::common::*;
use sas_router::store::record::{CallRecord, Outcome};
use std::path::Path;
use std::time::Duration;

fn cli_records(config: &Path) -> Vec<CallRecord> {
    serde_json::from_str(&cli(&["calls", "list", "--json"], config)).unwrap()
}

/// `kill -9` with three calls in flight (one answered and recording, two waiting in the
/// queue): after the restart, each has a record `interrupted` with its timeline, and the
/// answered one its recording, readable to its last frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_at_a_kill_9_are_recorded_interrupted_after_restart() {
    let (data, config) = setup("durable-kill", &Options::default());
    let mut router = Process::start(&config).drain_log();
    let (phone, port) = answering_sipp(router.sip, 1, 100);
    register(router.sip, "arm1", port).await;
    let talking = trunk_caller(router.sip, "caller.xml", "15", 60_000);
    router
        .await_metric("sas_seats{role=\"arm\",state=\"busy\"}", 1.0)
        .await;
    let waiting: Vec<_> = (0..2)
        .map(|_| trunk_caller(router.sip, "caller.xml", "15", 60_000))
        .collect();
    router.await_metric("sas_active_calls", 3.0).await;
    // Two seconds of conversation recorded, and the journal past its flush interval.
    tokio::time::sleep(Duration::from_secs(2)).await;
    router.crash();
    drop((phone, talking, waiting));

    let mut restarted = Process::start(&config).drain_log();
    let records = cli_records(&config);
    assert_eq!(records.len(), 3, "{records:#?}");
    for r in &records {
        assert_eq!(r.outcome, Some(Outcome::Interrupted), "{r:#?}");
        assert_eq!(r.end_reason.as_deref(), Some("router_stopped"));
        let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds.first(), Some(&"ARRIVED"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"ROUTER_STOPPED"), "{kinds:?}");
        assert!(kinds.contains(&"ENTERQUEUE"), "{kinds:?}");
    }
    // The listing keeps its columns with the longest outcome: each row's ANSWERED_BY starts
    // where its header does.
    let listing = cli(&["calls", "list"], &config);
    let column = listing.find("ANSWERED_BY").unwrap();
    for row in listing.lines().skip(1) {
        assert!(row.contains("interrupted "), "{listing}");
        let (before, at) = (&row[column - 1..column], &row[column..column + 1]);
        assert!(before == " " && at != " ", "{listing}");
    }
    let answered: Vec<&CallRecord> = records.iter().filter(|r| r.seat.is_some()).collect();
    assert_eq!(answered.len(), 1, "{records:#?}");
    let answered = answered[0];
    assert_eq!(answered.seat.as_deref(), Some("arm1"));
    assert_eq!(handlers(answered), [("arm1", Some("router_stopped"))]);
    let recording = answered.recording.as_ref().expect("recording linked");
    // Two seconds talked; a frame is final 1 s after it (the jitter buffer's depth) and on
    // disk once the 8 KiB (256 ms) write buffer fills: at least ~0.75 s salvaged.
    assert!(recording.duration_ms >= 700, "{recording:?}");
    let file = data.join("recordings").join(&recording.path);
    let (_, channels) = crate::common::media::read_wav_channels(&file).unwrap();
    assert_eq!(
        channels[0].len() as u64 * 1000 / 8000,
        recording.duration_ms
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), recording.bytes);

    let shown = cli(&["calls", "show", &answered.id], &config);
    assert!(shown.contains("interrupted"), "{shown}");
    assert!(shown.contains("ROUTER_STOPPED"), "{shown}");
    assert!(shown.contains(&recording.path), "{shown}");
    let listed = cli(&["calls", "list"], &config);
    assert_eq!(listed.matches("interrupted").count(), 3, "{listed}");
    let line = "sas_calls_total{line=\"samu\",outcome=\"interrupted\"}";
    assert_eq!(restarted.metric(line).await, 3.0);
    restarted.crash();
}

/// Seats registered before a restart are offered calls at once after it, without
/// registering again; a seat paused stays paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_seats_take_calls_at_once_after_a_restart_and_pauses_hold() {
    let (data, config) = setup("durable-seats", &Options::default());
    let mut router = Process::start(&config).drain_log();
    let (phone1, port1) = answering_sipp(router.sip, 1, 100);
    register(router.sip, "arm1", port1).await;
    let (phone2, port2) = answering_sipp(router.sip, 1, 100);
    register(router.sip, "arm2", port2).await;
    let harness = router.as_router(&data, &config);
    let token = cti_login(&harness, "arm2").await;
    let pause = serde_json::json!({ "reason": "break" });
    let (status, answer) = cti(&harness, &token, "POST", "/api/cti/pause", pause).await;
    assert_eq!(status, 200, "{answer}");
    router
        .await_metric("sas_seats{role=\"arm\",state=\"paused\"}", 1.0)
        .await;
    // Past `store.flush_every_ms` (200 ms): what a crash may lose. sled's flusher is a
    // thread of its own, late on a loaded machine (600 ms failed once in a full run).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    router.crash();

    let mut router = Process::start(&config).drain_log();
    assert_eq!(
        router
            .metric("sas_seats{role=\"arm\",state=\"paused\"}")
            .await,
        1.0
    );
    assert_eq!(
        router
            .metric("sas_seats{role=\"arm\",state=\"available\"}")
            .await,
        1.0
    );
    let caller = trunk_caller(router.sip, "caller.xml", "15", 1_000);
    assert!(finish(caller, Duration::from_secs(20)).await);
    assert!(finish(phone1, Duration::from_secs(20)).await);
    drop(phone2);
    router
        .await_metric("sas_calls_total{line=\"samu\",outcome=\"answered\"}", 1.0)
        .await;
    let harness = router.as_router(&data, &config);
    let list = records(&harness).await;
    assert_eq!(list[0].seat.as_deref(), Some("arm1"));
    let offered: Vec<&str> = list[0].offers.iter().map(|o| o.seat.as_str()).collect();
    assert_eq!(offered, ["arm1"], "the paused seat is not offered");
    router.crash();
}

/// SIGTERM: a new call gets 503 with Retry-After, so does an OPTIONS probe (Kamailio's
/// dispatcher then sends new calls to another node), the call in progress finishes normally
/// and is recorded answered, then the router exits by itself, its log pipe long closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_calls_in_progress_and_refuses_new_ones() {
    let (_data, config) = setup("durable-drain", &Options::default());
    let router = Process::start(&config).close_log();
    let (phone, port) = answering_sipp(router.sip, 1, 100);
    register(router.sip, "arm1", port).await;
    let talking = trunk_caller(router.sip, "caller.xml", "15", 4_000);
    router
        .await_metric("sas_seats{role=\"arm\",state=\"busy\"}", 1.0)
        .await;
    assert_eq!(status(&options(router.sip).await), 200);
    router.terminate();
    router.await_metric("sas_draining", 1.0).await;
    assert_eq!(http_get(router.http, "/healthz", None).await.0, 503);
    let probe = options(router.sip).await;
    assert_eq!(status(&probe), 503, "{probe}");
    assert!(probe.contains("Retry-After:"), "{probe}");
    let port = free_udp_port().to_string();
    let refused = sipp(
        router.sip,
        "caller_draining.xml",
        &["-s", "15", "-p", &port, "-m", "1", "-timeout", "10s"],
    )
    .spawn()
    .unwrap();
    assert!(finish(refused, Duration::from_secs(15)).await);
    assert!(finish(talking, Duration::from_secs(20)).await);
    assert!(finish(phone, Duration::from_secs(20)).await);
    let status = router.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}");

    let records = cli_records(&config);
    assert_eq!(records.len(), 2, "{records:#?}");
    let answered = records.iter().find(|r| r.seat.is_some()).unwrap();
    assert_eq!(answered.outcome, Some(Outcome::Answered));
    assert_eq!(answered.end_reason.as_deref(), Some("caller_bye"));
    let refused = records.iter().find(|r| r.seat.is_none()).unwrap();
    assert_eq!(refused.outcome, Some(Outcome::Failed));
    assert_eq!(refused.end_reason.as_deref(), Some("shutting_down"));
}

/// A call still going when `[shutdown] drain_s` is over is ended and recorded, and the
/// router exits; a second SIGTERM does not wait for that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_outlasting_the_drain_are_ended_and_recorded_and_a_second_sigterm_stops_at_once() {
    for second_signal in [false, true] {
        let (_data, config) = setup("durable-drain-limit", &Options::default());
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("\n[shutdown]\ndrain_s = 60\n");
        if !second_signal {
            text = text.replace("drain_s = 60", "drain_s = 2");
        }
        std::fs::write(&config, text).unwrap();
        let router = Process::start(&config).drain_log();
        let (phone, port) = answering_sipp(router.sip, 1, 100);
        register(router.sip, "arm1", port).await;
        let talking = trunk_caller(router.sip, "caller.xml", "15", 60_000);
        router
            .await_metric("sas_seats{role=\"arm\",state=\"busy\"}", 1.0)
            .await;
        let signalled = std::time::Instant::now();
        router.terminate();
        router.await_metric("sas_draining", 1.0).await;
        if second_signal {
            router.terminate();
        }
        let status = router.exited(Duration::from_secs(20)).await;
        assert!(status.success(), "{status:?}");
        let took = signalled.elapsed();
        assert!(took < Duration::from_secs(10), "{second_signal}: {took:?}");
        if !second_signal {
            assert!(took >= Duration::from_secs(2), "{took:?}");
        }
        drop((phone, talking));
        let records = cli_records(&config);
        assert_eq!(records.len(), 1, "{records:#?}");
        // As before the drain existed: ended by the router, `failed`, answered by arm1.
        assert_eq!(records[0].outcome, Some(Outcome::Failed));
        assert_eq!(records[0].seat.as_deref(), Some("arm1"));
        assert_eq!(records[0].end_reason.as_deref(), Some("router_shutdown"));
    }
}

/// `kill -9` right after a burst of calls ends, as soon as `sas_calls_total` counts them:
/// every counted call has its own record after the restart (the counter moves only once
/// the store writer has flushed the record), none `interrupted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_right_after_a_burst_of_calls_ends_loses_no_counted_record() {
    const CALLS: usize = 30;
    let options = Options {
        // Not shed: past the test's small RTP range, calls fail (and are recorded) instead.
        overload: "max_calls = 0\nmax_queue_delay_ms = 0\n".into(),
        ..Options::default()
    };
    let (_data, config) = setup("durable-burst", &options);
    let mut router = Process::start(&config).drain_log();
    let port = free_udp_port().to_string();
    let media = ports::media_port().to_string();
    let calls = CALLS.to_string();
    // Calls with RTP ports wait in the queue (no seat) and hang up after 1.5 s, together;
    // the others fail at once for want of ports.
    let args = [
        "-s", "15", "-p", &port, "-mp", &media, "-m", &calls, "-r", &calls, "-l", &calls, "-d",
        "1500", "-timeout", "60s",
    ];
    let mut callers = sipp(router.sip, "caller_cancel.xml", &args)
        .spawn()
        .unwrap();
    let counted = |outcome: &str| format!("sas_calls_total{{line=\"samu\",outcome=\"{outcome}\"}}");
    let mut tally = (0.0, 0.0);
    for _ in 0..4000 {
        tally = (
            router.metric(&counted("abandoned")).await,
            router.metric(&counted("failed")).await,
        );
        if tally.0 + tally.1 >= CALLS as f64 {
            break;
        }
        // Polled back to back: the kill follows the count as closely as it can.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    router.crash();
    callers.kill().await.ok();

    let restarted = Process::start(&config).drain_log();
    let listed = cli(&["calls", "list", "--json", "--limit", "100"], &config);
    let records: Vec<CallRecord> = serde_json::from_str(&listed).unwrap();
    assert_eq!(tally.0 + tally.1, CALLS as f64, "{tally:?}");
    assert!(tally.0 >= 1.0, "some calls waited and abandoned: {tally:?}");
    assert_eq!(records.len(), CALLS, "{records:#?}");
    let count = |o: Outcome| records.iter().filter(|r| r.outcome == Some(o)).count() as f64;
    assert_eq!((count(Outcome::Abandoned), count(Outcome::Failed)), tally);
    assert_eq!(restarted.metric(&counted("interrupted")).await, 0.0);
    let mut restarted = restarted;
    restarted.crash();
}

/// `kill -9` as soon as a burst of recorded calls is counted: every counted call has its
/// recording after the restart, complete and matching its record's hash (computed while
/// writing; the file synced with the record's group commit, not one fsync per call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_right_after_recorded_calls_end_loses_no_counted_recording() {
    const CALLS: usize = 3;
    let (data, config) = setup("durable-recordings", &Options::default());
    let mut router = Process::start(&config).drain_log();
    let (phone, port) = answering_sipp(router.sip, CALLS, 100);
    for seat in ["arm1", "arm2", "arm3"] {
        register(router.sip, seat, port).await;
    }
    let caller_port = free_udp_port().to_string();
    let media = ports::media_port().to_string();
    let calls = CALLS.to_string();
    // Answered together, two seconds of audio each, hung up together.
    let args = [
        "-s",
        "15",
        "-p",
        &caller_port,
        "-mp",
        &media,
        "-m",
        &calls,
        "-r",
        &calls,
        "-l",
        &calls,
        "-d",
        "2000",
        "-timeout",
        "60s",
    ];
    let mut callers = sipp(router.sip, "caller.xml", &args).spawn().unwrap();
    let counted = "sas_calls_total{line=\"samu\",outcome=\"answered\"}";
    let mut tally = 0.0;
    for _ in 0..30_000 {
        tally = router.metric(counted).await;
        if tally >= CALLS as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Synced by the store writer before it confirmed their records (read just after the
    // count: a few milliseconds before the kill).
    let synced = router
        .metric("sas_store_writer_recordings_synced_total")
        .await;
    router.crash();
    callers.kill().await.ok();
    drop(phone);
    assert_eq!(tally, CALLS as f64);
    assert_eq!(synced, CALLS as f64);

    let mut restarted = Process::start(&config).drain_log();
    let records = cli_records(&config);
    assert_eq!(records.len(), CALLS, "{records:#?}");
    for r in &records {
        assert_eq!(r.outcome, Some(Outcome::Answered), "{r:#?}");
        let info = r.recording.as_ref().expect("recording linked");
        assert!(info.duration_ms >= 1_000, "{info:?}");
        let file = data.join("recordings").join(&info.path);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), info.bytes);
        let wav = std::fs::File::open(&file).unwrap();
        sas_router::media::recording::verify(std::io::BufReader::new(wav), info).unwrap();
        let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
        assert!(!kinds.contains(&"RECORDING_FAILED"), "{kinds:?}");
    }
    restarted.crash();
}
