//! The live wallboard in a real headless Chromium, against a real router with SIPp trunk
//! callers and SIPp seat phones: a wall display (`/wallboard?token=…`) shows a 15 call
//! waiting with its wait ticking until the line turns red (and beeps), a caller who gives
//! up (CANCEL) as an abandon, the ARM's answer in the 30 s / 60 s shares, a P0 escalation
//! waiting for AMU with the ARM who accompanies it, then answered; a 116 117 switched to
//! the backup centre turns red. The supervisor's console shows the same board as a panel.
//! Screenshots go to the test's directory; with `SAS_SCREENSHOTS=1`, also to
//! `docs/screenshots/` for the README.

use crate::common;

use common::browser::{Browser, with_browser};
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "wallDisplay0123456789abcdefghijklmnop";

/// The test plans with a backup centre step on the 116 117 (so it can be switched).
fn plans() -> String {
    test_plans(false).replace(
        "[entries.sas]\nnumbers = [\"116117\"]\nline = \"sas\"\nstart = \"file\"\n",
        "[external]\ncentre_secours = \"0387000000\"\n\
         [entries.sas]\nnumbers = [\"116117\"]\nline = \"sas\"\nstart = \"file\"\n\
         backup = \"secours\"\n[entries.sas.steps.secours]\nforward = \"centre_secours\"\n",
    )
}

/// A router with the wall display's token and short thresholds (amber 3 s, red 6 s), so
/// a wait turns within the test.
fn options(data: Option<PathBuf>) -> Options {
    Options {
        plans: Some(plans()),
        outbound: Some("127.0.0.1:9".parse().unwrap()),
        ring_timeout_s: 10,
        data,
        extra: format!("[wallboard]\ntoken = \"{TOKEN}\"\nwait_amber_s = 3\nwait_red_s = 6\n"),
        ..Options::default()
    }
}

/// Saves the window as `name` in `dir` (and the README's two in docs/screenshots with
/// SAS_SCREENSHOTS=1).
async fn shot(browser: &Browser, dir: &Path, name: &str) {
    let path = dir.join(name);
    browser.screenshot(&path).await.expect("screenshot");
    eprintln!("wallboard: {}", path.display());
    let for_readme = ["wallboard.png", "wallboard-panel.png"].contains(&name);
    if for_readme && std::env::var_os("SAS_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(name)).unwrap();
    }
}

fn line(line: &str, cell: &str) -> String {
    format!("#wallboard tr[data-line=\"{line}\"] .{cell}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_follows_waits_answers_abandons_escalations_and_a_switched_line() {
    let dir = temp_dir("wallboard");
    with_browser(&dir.clone(), |browser| async move {
        let mut router = start(options(None)).await;
        // A wall display's screen.
        browser.resize(1920, 1080).await;
        browser
            .goto(&format!("http://{}/wallboard?token={TOKEN}", router.http))
            .await;
        browser.wait_text("#link", "en direct").await;
        browser.wait_text(&line("samu", "name"), "15").await;
        browser.wait_text(&line("sas", "name"), "116 117").await;
        browser.wait_text(&line("samu", "waiting"), "0").await;

        // No ARM logged in: a 15 caller waits, the longest wait ticks, amber then red.
        let waiting = trunk_caller(router.sip, "caller.xml", "15", 4_000);
        browser.wait_text(&line("samu", "waiting"), "1").await;
        let first = browser.wait_text(&line("samu", "longest"), "0:0").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let later = browser.text(&line("samu", "longest")).await;
        assert_ne!(first, later, "the longest wait ticks");
        browser
            .wait_text("#wallboard tr.level-red[data-line=\"samu\"] .name", "15")
            .await;
        let beeps = browser.attribute("#wallboard", "data-beeps").await;
        assert_ne!(beeps.as_deref(), Some("0"), "a line turning red beeps");
        // A second caller gives up after 2.5 s (over the 1 s misdial threshold): an abandon.
        let gives_up = trunk_caller(router.sip, "caller_cancel.xml", "15", 2_500);
        browser.wait_text(&line("samu", "waiting"), "2").await;
        shot(&browser, &dir, "wallboard-waiting.png").await;
        assert!(finish(gives_up, Duration::from_secs(15)).await, "CANCEL");
        browser.wait_text(&line("samu", "abandoned"), "1").await;
        assert_eq!(browser.text(&line("samu", "misdials")).await, "0");

        // An ARM's phone registers and answers the first caller (waited 7 s or more).
        let arm = seat(&router, "arm1", 2, 100).await;
        browser.wait_text(&line("samu", "waiting"), "0").await;
        browser.wait_text(&line("samu", "h30"), "50 % (1/2)").await;
        browser.wait_text(&line("samu", "d60"), "50 % (1/2)").await;
        browser
            .wait_text(
                "#wallboard li[data-seat=\"arm1\"] .state",
                "en communication",
            )
            .await;
        browser
            .wait_text("#wallboard li[data-seat=\"arm1\"] .in-state", "depuis 0:0")
            .await;
        assert!(
            finish(waiting, Duration::from_secs(15)).await,
            "first caller"
        );

        // A 116 117 call, answered by arm1, escalated P0 to AMU (no regulator yet): the
        // board says it waits for AMU with arm1, not "answered by arm1"; the board beeps.
        let escalated = trunk_caller(router.sip, "caller.xml", "116117", 15_000);
        browser
            .wait_text("#wallboard li[data-seat=\"arm1\"] .what", "116 117")
            .await;
        let token = cti_login(&router, "arm1").await;
        let transfer = json!({"target": "amu", "mode": "accompanied", "priority": "P0"});
        let (status, answer) = cti(&router, &token, "POST", "/api/cti/transfer", transfer).await;
        assert_eq!(status, 200, "{answer}");
        let row = "#wallboard .escalations tr";
        browser
            .wait_text(&format!("{row} .target"), "attente AMU")
            .await;
        browser.wait_text(&format!("{row} .urgency"), "P0").await;
        browser
            .wait_text(&format!("{row} .with"), "accompagné par arm1")
            .await;
        browser
            .wait_text(
                "#wallboard li[data-seat=\"arm1\"] .what",
                "accompagne → attente AMU (116 117 · P0)",
            )
            .await;
        browser
            .wait_text("#wallboard .alarm", "P0 en attente : 1")
            .await;
        let alarm = browser.attribute("#wallboard", "data-last-alarm").await;
        assert_eq!(alarm.as_deref(), Some("P0 en attente"));
        browser
            .wait_text("#wallboard tr[data-queue=\"amu\"] .waiting", "1")
            .await;
        shot(&browser, &dir, "wallboard.png").await;

        // An AMU regulator answers: the escalation is over, counted in AMU's queue.
        let amu = seat(&router, "amu1", 1, 100).await;
        browser
            .wait_text(
                "#wallboard tr[data-queue=\"amu\"] .escalated",
                "1/1 décrochées",
            )
            .await;
        browser.wait_text("#wallboard .escalations", "aucune").await;
        browser.wait_text(&line("sas", "d30"), "100 % (1/1)").await;

        // The 116 117 switched to the backup centre: red, and says so.
        let switch = r#"{"reason":"panne téléphonie"}"#;
        let path = "/api/supervisor/lines/sas/switch";
        let (status, body) =
            http_send(router.http, "POST", path, Some(&router.token()), switch).await;
        assert_eq!(status, 200, "{body}");
        browser
            .wait_text(
                "#wallboard tr.level-red[data-line=\"sas\"] .name",
                "BASCULÉE vers le centre de repli — panne téléphonie",
            )
            .await;
        shot(&browser, &dir, "wallboard-switched.png").await;

        assert!(
            finish(escalated, Duration::from_secs(30)).await,
            "escalated caller"
        );
        assert!(finish(arm, Duration::from_secs(15)).await, "ARM phone");
        assert!(finish(amu, Duration::from_secs(15)).await, "AMU phone");

        // The supervisor's console shows the same board as a panel.
        let password = SEATS.iter().find(|(u, _)| *u == "sup1").unwrap().1;
        browser.resize(1440, 900).await;
        browser
            .goto(&format!("http://{}/console", router.http))
            .await;
        browser.type_into("#login-seat", "sup1").await;
        browser.type_into("#login-password", password).await;
        browser.click("#login-submit").await;
        browser
            .wait_text("#wallboard-panel tr[data-line=\"samu\"] .abandoned", "1")
            .await;
        browser
            .wait_text("#wallboard-panel tr[data-queue=\"amu\"] .escalated", "1/1")
            .await;
        shot(&browser, &dir, "wallboard-panel.png").await;
        router.stop().await;
    })
    .await;
}

async fn board(router: &Router, token: Option<&str>) -> (u16, Value) {
    let (status, body) = http_get(router.http, "/api/wallboard", token).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn samu(board: &Value) -> &Value {
    let lines = board["board"]["lines"].as_array().unwrap();
    lines.iter().find(|l| l["name"] == "samu").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_figures_survive_a_restart_and_the_board_is_for_supervisors_and_displays() {
    let data = temp_dir("wallboard-restart");
    let mut router = start(options(Some(data.clone()))).await;
    // Who may read it: the display's token, the admin token, a supervisor; not an ARM.
    assert_eq!(board(&router, None).await.0, 401);
    assert_eq!(board(&router, Some("not-a-token")).await.0, 401);
    let arm = cti_login(&router, "arm1").await;
    assert_eq!(board(&router, Some(&arm)).await.0, 403);
    let sup = cti_login(&router, "sup1").await;
    assert_eq!(board(&router, Some(&sup)).await.0, 200);
    assert_eq!(board(&router, Some(&router.token())).await.0, 200);
    // Read-only; the event route is a WebSocket.
    let (status, _) = http_send(router.http, "POST", "/api/wallboard", Some(TOKEN), "{}").await;
    assert_eq!(status, 405);
    let (status, body) = http_get(router.http, "/api/wallboard/events", Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("WebSocket"), "{body}");
    assert_eq!(
        http_get(router.http, "/api/wallboard/x", Some(TOKEN))
            .await
            .0,
        404
    );

    let gives_up = trunk_caller(router.sip, "caller_cancel.xml", "15", 2_000);
    assert!(finish(gives_up, Duration::from_secs(15)).await, "CANCEL");
    let counted = async {
        for _ in 0..50 {
            let (_, b) = board(&router, Some(TOKEN)).await;
            if samu(&b)["today"]["abandoned"] == 1 {
                return b;
            }
        }
        panic!("the abandon never showed");
    };
    let before = counted.await;
    assert_eq!(samu(&before)["today"]["received"], 1);
    // Not a caller number anywhere on the board.
    assert!(!before.to_string().contains("0612345678"));
    // Flushed to sled, then a new router on the same data.
    wait_records(&router, 1).await;
    router.stop().await;
    let router = start(options(Some(data))).await;
    let (status, after) = board(&router, Some(TOKEN)).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(samu(&after)["today"], samu(&before)["today"]);
    assert_eq!(samu(&after)["last_hour"]["abandoned"], 1);
}
