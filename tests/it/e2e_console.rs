//! The seat console in a real headless Chromium, against a real router with SIPp phones: an
//! ARM pauses and resumes; an ARM qualifies a 15 call and escalates it to AMU; a supervisor
//! watches the queue board. On failure, a screenshot lands in the test's directory.

use crate::common;

use common::browser::{Browser, with_browser};
use common::*;
use sas_router::store::record::Outcome;
use serde_json::Value;
use std::time::Duration;

/// Logs `seat` in on the console page (the test password) and waits for the desk.
pub(crate) async fn console_login(browser: &Browser, router: &Router, seat: &str) {
    let password = SEATS.iter().find(|(u, _)| *u == seat).unwrap().1;
    // `/` redirects to the console.
    browser.goto(&format!("http://{}/", router.http)).await;
    browser.type_into("#login-seat", seat).await;
    browser.type_into("#login-password", password).await;
    browser.click("#login-submit").await;
    browser.wait_text("#who-seat", seat).await;
    browser.wait_text("#link", "en ligne").await;
}

/// A seat's state as the supervisor overview (admin token) shows it.
async fn seat_state(router: &Router, seat: &str) -> Value {
    let (status, body) = http_get(
        router.http,
        "/api/supervisor/overview",
        Some(&router.token()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let overview: Value = serde_json::from_str(&body).unwrap();
    let seats = overview["seats"].as_array().unwrap();
    seats.iter().find(|s| s["seat"] == seat).unwrap()["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_pauses_with_a_reason_and_resumes_from_the_console() {
    let dir = temp_dir("console-pause");
    with_browser(&dir, |browser| async move {
        let mut router = start(Options::default()).await;
        let _phone = seat(&router, "arm1", 1, 100).await;
        console_login(&browser, &router, "arm1").await;
        browser.wait_text("#seat-state", "disponible").await;

        // Alt+P pauses with the reason picked.
        browser.select("#pause-reason", "other_task").await;
        browser.alt('p').await;
        browser.wait_text("#seat-state", "en pause").await;
        browser.wait_text("#seat-reason", "autre tâche").await;
        let paused = "sas_seats{role=\"arm\",state=\"paused\"}";
        router.wait_metric(paused, 1.0).await;
        let state = seat_state(&router, "arm1").await;
        assert_eq!(state["detail"]["reason"], "other_task", "{state}");
        browser.wait_text("#history-list", "autre tâche").await;

        browser.click("#resume").await;
        browser.wait_text("#seat-state", "disponible").await;
        router.wait_metric(paused, 0.0).await;
        assert_eq!(seat_state(&router, "arm1").await["state"], "available");
        browser.wait_text("#events-list", "reprise").await;
        router.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_qualifies_a_15_call_and_escalates_it_to_amu_from_the_console() {
    let dir = temp_dir("console-escalate");
    with_browser(&dir, |browser| async move {
        let mut router = start(Options::default()).await;
        let arm_phone = seat(&router, "arm1", 1, 200).await;
        let amu_phone = seat(&router, "amu2", 1, 300).await;
        console_login(&browser, &router, "arm1").await;

        // The caller talks 6 s after the ARM's phone answers, then hangs up (on the doctor).
        let caller = trunk_caller(router.sip, "caller.xml", "15", 6000);
        browser.wait_text("#seat-state", "en communication").await;
        browser.wait_text("#call-line", "15").await;
        browser.wait_text("#call-caller", "0612345678").await;
        browser.wait_text("#call-waited", " s").await;
        browser.wait_text("#call-handlers", "arm1").await;

        browser.select("#file-priority", "P2").await;
        browser.type_into("#file-reason", "fièvre enfant").await;
        browser.type_into("#file-postcode", "69003").await;
        browser.select("#file-decision", "teleconsultation").await;
        browser.click("#file-save").await;
        browser.wait_text("#file-saved", "enregistrée").await;
        browser.wait_text("#call-file", "fièvre enfant").await;

        browser
            .click("#transfer-targets [data-target=\"amu\"]")
            .await;
        browser.wait_text("#transfer-done", "AMU").await;
        // Blind: the ARM leaves at once (its wrap-up shows the call), the AMU regulator's
        // phone answers.
        browser.wait_text("#call-title", "post-appel").await;
        browser.wait_text("#call-ended", "transmis").await;
        assert!(
            browser.enabled("#file-save").await,
            "the file stays editable"
        );
        let amu_busy = eventually(Duration::from_secs(15), || {
            router.metric("sas_seats{role=\"regulateur_amu\",state=\"busy\"}") == 1.0
        })
        .await;
        assert!(amu_busy, "amu2 took the call");

        assert!(finish(caller, Duration::from_secs(15)).await, "caller");
        assert!(
            finish(arm_phone, Duration::from_secs(15)).await,
            "ARM phone"
        );
        assert!(
            finish(amu_phone, Duration::from_secs(15)).await,
            "AMU phone"
        );
        let r = wait_records(&router, 1).await.remove(0);
        assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
        let file = &r.file[0];
        assert_eq!(file.seat, "arm1");
        assert!(file.at >= r.arrived_at);
        let data = serde_json::to_value(&file.data).unwrap();
        assert_eq!(data["priority"], "P2");
        assert_eq!(data["reason"], "fièvre enfant");
        assert_eq!(data["postcode"], "69003");
        assert_eq!(data["decision"], "teleconsultation");
        assert!(r.events.iter().any(|e| e.kind == "TRANSFER"), "{r:?}");
        let handlers: Vec<&str> = r.handlers.iter().map(|h| h.seat.as_str()).collect();
        assert_eq!(handlers, ["arm1", "amu2"]);
        browser.wait_text("#history-list", "transfert").await;
        router.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_the_queue_board_follow_the_calls() {
    let dir = temp_dir("console-board");
    with_browser(&dir, |browser| async move {
        let mut router = start(Options::default()).await;
        console_login(&browser, &router, "sup1").await;
        browser.wait_text("#board-waiting", "0").await;

        // No ARM yet: the call waits, and the board says so. Once answered it lasts 4 s: a
        // loaded browser may take seconds to show it (500 ms was missed at 6 test threads).
        let caller = trunk_caller(router.sip, "caller.xml", "15", 4000);
        browser.wait_text("#board-waiting", "1").await;
        browser.wait_text("#board-calls", "15").await;
        browser.wait_text("#board-seats", "arm1").await;

        // An ARM's phone registers and takes it: the board follows.
        let phone = seat(&router, "arm1", 1, 100).await;
        browser.wait_text("#board-waiting", "0").await;
        browser.wait_text("#board-calls", "en communication").await;
        assert!(finish(caller, Duration::from_secs(10)).await, "caller");
        assert!(finish(phone, Duration::from_secs(15)).await, "ARM phone");
        router.stop().await;
    })
    .await;
}

/// The number in "reçus : N paquets, niveau L %".
pub(crate) fn packets_and_level(text: &str) -> (u64, u64) {
    let numbers: Vec<u64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_answers_a_15_call_in_the_browser_and_audio_flows_both_ways() {
    use common::media::*;
    let dir = temp_dir("console-audio");
    let prompts = short_tone_prompts(&dir);
    let empty = empty_pcap(&dir);
    with_browser(&dir, |browser| async move {
        let mut router = start(Options {
            prompts: Some(prompts),
            // A loaded browser may take seconds to answer: no ring-no-answer meanwhile.
            ring_timeout_s: 15,
            ..Options::default()
        })
        .await;
        // No SIP phone: the console takes arm1's calls with audio in the browser.
        let password = SEATS.iter().find(|(u, _)| *u == "arm1").unwrap().1;
        browser
            .goto(&format!("http://{}/console", router.http))
            .await;
        browser.type_into("#login-seat", "arm1").await;
        browser.type_into("#login-password", password).await;
        browser.click("#login-audio").await;
        browser.click("#login-submit").await;
        browser.wait_text("#who-seat", "arm1").await;
        browser.wait_text("#seat-state", "disponible").await;

        // The caller talks (500 Hz) from the greeting on, for 8 s, then hangs up.
        let (caller, caller_sink, talking) =
            talking_caller(router.sip, "15", &empty, 500.0, 10_000).await;
        let since_call = std::time::Instant::now();
        browser.wait_text("#media-state", "appel entrant").await;
        browser.click("#media-answer").await;
        browser.wait_text("#media-state", "en communication").await;
        browser.wait_text("#seat-state", "en communication").await;
        // The browser's own stats: packets and a level from the caller's tone.
        let mut inbound = (0, 0);
        for _ in 0..40 {
            let text = browser.text("#media-level").await;
            if !text.is_empty() {
                inbound = packets_and_level(&text);
                if inbound.0 > 100 && inbound.1 > 0 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            inbound.0 > 100 && inbound.1 > 0,
            "browser inbound audio: {inbound:?}"
        );

        // "Attente": the caller hears the hold audio (660 Hz) until the seat takes it back.
        browser.click("#media-hold").await;
        let held = since_call.elapsed().as_secs_f32();
        // The scenario: 1.5 s on hold, the window the caller's recording is checked in.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let resumed = since_call.elapsed().as_secs_f32();
        browser.click("#media-hold").await;

        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        talking.join().unwrap();
        browser.wait_text("#media-state", "appel terminé").await;
        // The caller got the browser's (fake microphone) audio, relayed from the WebRTC leg.
        let got = caller_sink.stop();
        assert_hears(&got, held + 0.5, resumed, HOLD_HZ);
        assert_hears_browser_microphone(&got);
        let r = wait_records(&router, 1).await.remove(0);
        assert_eq!(r.seat.as_deref(), Some("arm1"));
        assert_held_then_resumed(&r);
        let rtp = r.rtp.expect("bridged");
        assert!(
            rtp.seat.rx_packets > 100 && rtp.seat.tx_packets > 100,
            "{rtp:?}"
        );

        // The next call starts with an empty meter, not the last call's figures.
        assert!(!browser.text("#media-level").await.is_empty());
        let next = trunk_caller(router.sip, "caller.xml", "15", 3000);
        browser.wait_text("#media-state", "appel entrant").await;
        assert_eq!(browser.text("#media-level").await, "", "meter reset");
        let events = browser.text("#events-list").await;
        assert_eq!(
            events.matches("appel présenté").count(),
            2,
            "one per call: {events}"
        );
        assert!(finish(next, Duration::from_secs(15)).await, "second caller");
        router.stop().await;
    })
    .await;
}

/// Saves what the console shows at 1440×900 (an agent's screen) as `name` in `dir`.
async fn screen(browser: &Browser, dir: &std::path::Path, name: &str) {
    browser.resize(1440, 900).await;
    let path = dir.join(name);
    browser.screenshot(&path).await.expect("screenshot");
    eprintln!("console at 1440×900: {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_finishes_the_call_file_in_wrap_up_after_the_caller_hung_up() {
    let dir = temp_dir("console-wrap-up");
    with_browser(&dir.clone(), |browser| async move {
        let mut router = start(Options::default()).await;
        let phone = seat(&router, "arm1", 1, 100).await;
        console_login(&browser, &router, "arm1").await;
        browser.wait_text("#seat-state", "disponible").await;

        // The caller talks 2 s, then hangs up before the ARM wrote anything.
        let caller = trunk_caller(router.sip, "caller.xml", "15", 2000);
        browser.wait_text("#seat-state", "en communication").await;
        browser.wait_text("#call-route", "file ARM").await;
        assert!(finish(caller, Duration::from_secs(15)).await, "caller");
        assert!(finish(phone, Duration::from_secs(15)).await, "ARM phone");

        // Wrap-up: the last call's file is still open to the ARM.
        browser.wait_text("#call-title", "post-appel").await;
        browser.wait_text("#call-ended", "terminé à").await;
        assert!(browser.enabled("#file-save").await, "save button enabled");
        assert!(!browser.shown("#hangup").await, "nothing to hang up");
        browser.select("#file-priority", "P3").await;
        browser
            .type_into("#file-reason", "renouvellement ordonnance")
            .await;
        browser.select("#file-decision", "conseil_medical").await;
        browser.click("#file-save").await;
        browser.wait_text("#file-saved", "enregistrée").await;
        browser
            .wait_text("#call-file", "renouvellement ordonnance")
            .await;
        // The ARM reads French only: no internal reason or route word.
        let events = browser
            .wait_text("#events-list", "l'appelant a raccroché")
            .await;
        for raw in ["caller_bye", "hangup", "samu arm"] {
            assert!(!events.contains(raw), "{raw} in {events}");
        }
        assert_eq!(events.matches("appel présenté").count(), 1, "{events}");
        screen(&browser, &dir, "wrap-up.png").await;

        // The same through the CTI API (a token session of the same seat).
        let token = cti_login(&router, "arm1").await;
        let note = serde_json::json!({"note": "rappel prévu à 18 h"});
        let (status, answer) = cti(&router, &token, "POST", "/api/cti/file", note).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["wrap_up"]["file"].as_array().unwrap().len(),
            2,
            "{answer}"
        );

        // Both writes are in the stored record, with who and when.
        let r = wait_records(&router, 1).await.remove(0);
        let ended = r.ended_at.unwrap();
        let shown = cli(&["calls", "show", &r.id, "--json"], &router.config_path);
        let shown: Value = serde_json::from_str(&shown).unwrap();
        let file = shown["file"].as_array().unwrap();
        assert_eq!(file.len(), 2, "{shown}");
        assert_eq!(file[0]["reason"], "renouvellement ordonnance");
        assert_eq!(file[0]["decision"], "conseil_medical");
        assert_eq!(file[1]["note"], "rappel prévu à 18 h");
        for entry in file {
            assert_eq!(entry["seat"], "arm1");
            assert!(
                entry["at"].as_u64().unwrap() >= ended,
                "written after the call"
            );
        }

        // The router's icon, built in (binary: read raw).
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut http = tokio::net::TcpStream::connect(router.http).await.unwrap();
        let ask = b"GET /favicon.ico HTTP/1.0\r\nConnection: close\r\n\r\n";
        http.write_all(ask).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15), http.read_to_end(&mut answer));
        read.await.expect("the icon within 5 s").unwrap();
        let head = String::from_utf8_lossy(&answer[..answer.len().min(300)]).to_lowercase();
        assert!(
            head.starts_with("http/1.0 200") || head.starts_with("http/1.1 200"),
            "{head}"
        );
        assert!(head.contains("content-type: image/x-icon"), "{head}");
        router.stop().await;
    })
    .await;
}

/// The test plans with an AMU step that overflows to the backup centre (through the trunk).
fn plans_with_amu_overflow() -> String {
    let amu = "[entries.escalade.steps.amu]\nqueue = \"amu\"\npriority = 0\n";
    let plans = test_plans(false);
    assert!(plans.contains(amu));
    plans.replace(
        amu,
        &format!("{amu}max_wait_s = 120\noverflow = \"secours\"\n"),
    ) + "[entries.escalade.steps.secours]\nforward = \"centre_secours\"\n\
         [external]\ncentre_secours = \"0387000000\"\n"
}

/// The digits of the first waiting time on the board after `what` ("attente AMU 12 s").
async fn board_wait(browser: &Browser, what: &str) -> u64 {
    let text = browser.wait_text("#board-calls", what).await;
    let after = text.split(what).nth(1).unwrap();
    let digits: String = after
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_an_escalated_p0_wait_for_amu_and_is_alerted_when_the_arm_leaves() {
    let dir = temp_dir("console-p0-board");
    with_browser(&dir.clone(), |browser| async move {
        // The backup centre: a SIPp UAS answering through the trunk.
        let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
        let mut router = start(Options {
            plans: Some(plans_with_amu_overflow()),
            outbound: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            ..Options::default()
        })
        .await;
        let phone = seat(&router, "arm1", 1, 100).await;
        let arm = cti_login(&router, "arm1").await;
        console_login(&browser, &router, "sup1").await;

        // Long enough for the board's checks on a loaded machine.
        let caller = trunk_caller(router.sip, "caller.xml", "15", 25_000);
        browser.wait_text("#board-calls", "en communication").await;
        browser.wait_text("#board-waiting", "0").await;
        // P0 to AMU (accompanied), no AMU regulator logged in.
        let body = serde_json::json!({"target": "amu", "priority": "P0"});
        let (status, answer) = cti(&router, &arm, "POST", "/api/cti/transfer", body).await;
        assert_eq!(
            (status, &answer["mode"]),
            (200, &"accompanied".into()),
            "{answer}"
        );

        // The board: waiting for AMU (not "answered by arm1"), in the wallboard's words,
        // counted, and ticking.
        browser.wait_text("#board-waiting", "1").await;
        let row = browser.wait_text("#board-calls", "attente AMU").await;
        assert!(
            row.contains("accompagné par arm1")
                && row.contains("P0")
                && !row.contains("en communication"),
            "{row}"
        );
        // Nothing changes on the router meanwhile: only the page's own clock moves it.
        let first = board_wait(&browser, "attente AMU").await;
        let mut later = first;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            later = board_wait(&browser, "attente AMU").await;
            if later >= first + 2 {
                break;
            }
        }
        assert!(
            later >= first + 2,
            "waiting time ticks: {first} then {later}"
        );
        screen(&browser, &dir, "board-p0-waiting.png").await;

        // The ARM leaves anyway: supervisors alerted, and with no AMU regulator to reach
        // the plan's overflow applies at once (backup centre), not a 120 s wait for nobody.
        let (status, answer) = cti(&router, &arm, "POST", "/api/cti/hangup", Value::Null).await;
        assert_eq!(status, 200, "{answer}");
        let alert = browser
            .wait_text("#board-alerts", "laissé seul par arm1")
            .await;
        assert!(alert.contains("débordement"), "{alert}");
        router.wait_metric("sas_p0_unaccompanied_total", 1.0).await;
        // The board follows: no longer waiting, sent on to the backup centre.
        browser
            .wait_text("#board-calls", "renvoyé vers l'extérieur")
            .await;
        browser.wait_text("#board-waiting", "0").await;
        screen(&browser, &dir, "board-p0-alert.png").await;

        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        assert!(
            finish(centre, Duration::from_secs(10)).await,
            "backup centre"
        );
        assert!(finish(phone, Duration::from_secs(15)).await, "ARM phone");
        let r = wait_records(&router, 1).await.remove(0);
        assert_eq!(r.outcome, Some(Outcome::Forwarded), "{:#?}", r.events);
        let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
        let alone = kinds
            .iter()
            .position(|k| *k == "P0_UNACCOMPANIED")
            .expect("alert");
        let forward = kinds.iter().position(|k| *k == "FORWARD").expect("forward");
        assert!(alone < forward, "{kinds:?}");
        let alone_at = r.events[alone].at;
        assert!(r.events[forward].at - alone_at < 2000, "overflowed at once");
        let overflow = "amu: no seat can answer → overflow to secours";
        assert!(r.route.iter().any(|l| l == overflow), "{:?}", r.route);
        router.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_is_asked_before_leaving_a_p0_no_regulator_answered_yet() {
    let dir = temp_dir("console-p0-confirm");
    with_browser(&dir.clone(), |browser| async move {
        let mut router = start(Options::default()).await;
        let phone = seat(&router, "arm1", 1, 100).await;
        console_login(&browser, &router, "arm1").await;
        let caller = trunk_caller(router.sip, "caller.xml", "15", 8000);
        browser.wait_text("#seat-state", "en communication").await;
        browser.select("#file-priority", "P0").await;
        browser
            .click("#transfer-targets [data-target=\"amu\"]")
            .await;
        browser.wait_text("#transfer-done", "accompagné").await;

        // Alt+H asks first; "Rester" keeps the ARM with the caller.
        browser.alt('h').await;
        browser
            .wait_text("#hangup-confirm", "aucun régulateur")
            .await;
        screen(&browser, &dir, "p0-confirm.png").await;
        browser.click("#hangup-stay").await;
        assert!(!browser.shown("#hangup-confirm").await);
        // Nothing must happen: a wrongly sent hang-up gets 300 ms to show before the check.
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.wait_text("#seat-state", "en communication").await;

        // Asked again, the ARM leaves anyway: the caller waits for AMU on hold.
        browser.click("#hangup").await;
        browser
            .wait_text("#hangup-confirm", "aucun régulateur")
            .await;
        browser.click("#hangup-leave").await;
        browser.wait_text("#call-title", "post-appel").await;
        router.wait_metric("sas_p0_unaccompanied_total", 1.0).await;

        assert!(finish(caller, Duration::from_secs(20)).await, "caller");
        assert!(finish(phone, Duration::from_secs(15)).await, "ARM phone");
        let r = wait_records(&router, 1).await.remove(0);
        let alone = r.events.iter().find(|e| e.kind == "P0_UNACCOMPANIED");
        assert_eq!(
            alone.and_then(|e| e.seat.as_deref()),
            Some("arm1"),
            "{r:#?}"
        );
        let left = r.events.iter().filter(|e| e.kind == "LEFT").count();
        assert_eq!(left, 1, "the ARM left once, after confirming");
        router.stop().await;
    })
    .await;
}
