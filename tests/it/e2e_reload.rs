//! Dial plan hot reload while calls are up: an HTTP reload swaps the plans without
//! dropping a call (calls in progress keep their version), a broken edit is refused with
//! its place and the live set stays, a file change alone is picked up, and so is SIGHUP.

use crate::common;

use common::*;
use sas_router::store::record::Outcome;
use std::time::Duration;

/// Asks for a reload through the admin API: its status and body.
async fn reload(router: &Router) -> (u16, String) {
    http_request(
        router.http,
        "POST",
        "/api/dialplans/reload",
        Some(&router.token()),
    )
    .await
}

async fn in_force(router: &Router) -> String {
    let (status, body) = http_get(router.http, "/api/dialplans", Some(&router.token())).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["version"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_under_calls_drops_nothing_and_refuses_a_broken_edit() {
    let mut router = start(Options::default()).await;
    let plan_file = router.data.join("dialplans/test.toml");
    let first = in_force(&router).await;

    // Two seats on one SIPp answering, two callers talking 5 s each.
    let (seats, port) = answering_sipp(router.sip, 3, 100);
    for user in ["arm1", "arm2"] {
        register(router.sip, user, port).await;
    }
    let callers: Vec<_> = (0..2)
        .map(|_| trunk_caller(router.sip, "caller.xml", "15", 5000))
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || router
            .metric("sas_active_calls")
            >= 2.0)
        .await,
        "two calls up"
    );

    // Reload through the admin API with the calls up: a new version, tagged calls.
    let tagged = test_plans(false).replace(
        "start = \"file\"\n[entries.samu.steps.file]",
        "start = \"tag\"\n[entries.samu.steps.tag]\ntags = { version = \"deux\" }\nnext = \"file\"\n[entries.samu.steps.file]",
    );
    std::fs::write(&plan_file, &tagged).unwrap();
    let (status, body) = reload(&router).await;
    assert_eq!(status, 200, "{body}");
    let second = in_force(&router).await;
    assert_ne!(second, first, "{body}");

    // A broken edit: refused with file, line, column; the live set stays.
    std::fs::write(
        &plan_file,
        tagged.replace("next = \"file\"", "next = \"fille\""),
    )
    .unwrap();
    let (status, body) = reload(&router).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("test.toml:") && body.contains("no step named \\\"fille\\\""),
        "{body}"
    );
    assert_eq!(in_force(&router).await, second);
    assert_eq!(router.metric("sas_dialplan_last_reload_ok"), 0.0);
    assert_eq!(
        router.metric("sas_dialplan_reloads_total{result=\"refused\"}"),
        1.0
    );

    // Every call up during the reloads ends normally, on the version it started with.
    for caller in callers {
        assert!(
            finish(caller, Duration::from_secs(30)).await,
            "a caller was dropped"
        );
    }
    let done = wait_records(&router, 2).await;
    for r in &done {
        assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
        assert_eq!(r.end_reason.as_deref(), Some("caller_bye"));
        assert_eq!(r.plan_version.as_deref(), Some(first.as_str()));
    }

    // Fixing the file is enough: the change is seen without any command.
    std::fs::write(&plan_file, &tagged).unwrap();
    std::fs::write(
        &plan_file,
        tagged.replace("version = \"deux\"", "version = \"trois\""),
    )
    .unwrap();
    let mut third = String::new();
    for _ in 0..100 {
        third = in_force(&router).await;
        if third != second {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(third, second, "the file change was picked up");
    assert_eq!(router.metric("sas_dialplan_last_reload_ok"), 1.0);

    // A new call follows the new version.
    let caller = trunk_caller(router.sip, "caller.xml", "15", 300);
    assert!(finish(caller, Duration::from_secs(30)).await);
    let latest = wait_records(&router, 3).await.remove(0);
    assert_eq!(latest.plan_version.as_deref(), Some(third.as_str()));
    assert_eq!(
        latest.tags.get("version").map(String::as_str),
        Some("trois")
    );
    assert!(
        finish(seats, Duration::from_secs(10)).await,
        "three calls answered"
    );

    // SIGHUP: an edit the poller cannot see (same size, mtime put back) is loaded on the
    // signal alone.
    let stamp = router.data.join("stamp");
    let run = |args: &[&str]| {
        assert!(
            std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .unwrap()
                .success()
        )
    };
    run(&[
        "touch",
        "-r",
        plan_file.to_str().unwrap(),
        stamp.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&plan_file).unwrap();
    std::fs::write(&plan_file, text.replace("\"trois\"", "\"seize\"")).unwrap();
    run(&[
        "touch",
        "-r",
        stamp.to_str().unwrap(),
        plan_file.to_str().unwrap(),
    ]);
    // Nothing must happen: the poller gets 2.5 s (a round is 2 s) to wrongly see the change.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(in_force(&router).await, third, "the poller did not see it");
    run(&["kill", "-HUP", &std::process::id().to_string()]);
    let mut fourth = third.clone();
    for _ in 0..50 {
        fourth = in_force(&router).await;
        if fourth != third {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(fourth, third, "SIGHUP reloaded the plans");
    router.stop().await;
}

/// A line and a queue a reload adds have their series at 0 at once, as those of the start
/// do: Prometheus's `increase()` counts from a series' first scrape, so a series born at 1
/// would hide the new line's first call from the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_added_by_a_reload_has_its_series_at_zero() {
    let router = start(Options::default()).await;
    let series = [
        "sas_calls_total{line=\"pdsa\",outcome=\"answered\"} 0",
        "sas_line_wait_seconds_count{line=\"pdsa\",outcome=\"abandoned\"} 0",
        "sas_queue_wait_seconds_count{outcome=\"overflowed\",queue=\"pdsa\"} 0",
    ];
    let shown = |metrics: &str, sample: &str| metrics.lines().any(|l| l == sample);
    let before = router.metrics();
    assert!(series.iter().all(|s| !shown(&before, s)), "{before}");

    let added = format!(
        "{}[queues.pdsa]\nrole = \"arm\"\n[entries.pdsa]\nnumbers = [\"3966\"]\nline = \"pdsa\"\n\
         start = \"file\"\n[entries.pdsa.steps.file]\nqueue = \"pdsa\"\npriority = 1\n",
        test_plans(false)
    );
    std::fs::write(router.data.join("dialplans/test.toml"), added).unwrap();
    let (status, body) = reload(&router).await;
    assert_eq!(status, 200, "{body}");
    let after = router.metrics();
    for sample in series {
        assert!(shown(&after, sample), "{sample} missing:\n{after}");
    }
}
