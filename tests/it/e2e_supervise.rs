//! Supervisor actions end to end, with SIPp phones: a supervisor's phone listens to a 15
//! call answered by an ARM, whispers to the ARM, barges in, and takes the call over; every
//! step is checked in the audio each party gets, and in the audit log. Then a waiting call
//! is moved and a seat unpaused and logged out, through the API and the CLI.

use crate::common;

use common::browser::{with_browser, with_browser_args};
use common::media::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) const CALLER_HZ: f32 = 500.0;
pub(crate) const ARM_HZ: f32 = 1000.0;
pub(crate) const SUP_HZ: f32 = 1800.0;

/// Packets `from..` of `packets`, a settling margin (jitter buffer, mode switch) left out.
pub(crate) fn after(packets: &[RtpPacket], from: usize, to: usize) -> Vec<i16> {
    let from = (from + 15).min(to);
    audio_of(&packets[from..to])
}

/// `who` hears each of `tones` (share of energy) above `min`, or below `max` for the others.
pub(crate) fn assert_tones(who: &str, audio: &[i16], loud: &[f32], silent: &[f32]) {
    assert!(audio.len() > 8_000, "{who}: {} samples", audio.len());
    let shares: Vec<String> = [CALLER_HZ, ARM_HZ, SUP_HZ]
        .iter()
        .map(|hz| format!("{hz} Hz {:.4}", tone_share(audio, *hz)))
        .collect();
    eprintln!("{who}: {}", shares.join(", "));
    for hz in loud {
        let share = tone_share(audio, *hz);
        assert!(share > 0.2, "{who} hears {hz} Hz: {share:.3}");
    }
    for hz in silent {
        let share = tone_share(audio, *hz);
        assert!(share < 0.01, "{who} hears no {hz} Hz: {share:.4}");
    }
}

pub(crate) async fn supervise(
    router: &Router,
    token: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    cti(router, token, "POST", path, body).await
}

/// The audit log's entries (newest first) as (actor, action, target).
async fn audit(router: &Router) -> Vec<(String, String, String)> {
    let (status, body) = http_get(router.http, "/api/audit?limit=50", Some(&router.token())).await;
    assert_eq!(status, 200, "{body}");
    let entries: Vec<Value> = serde_json::from_str(&body).unwrap();
    let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
    (entries.iter())
        .map(|e| (text(e, "actor"), text(e, "action"), text(e, "target")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_listens_whispers_barges_and_takes_over_a_call() {
    let dir = temp_dir("e2e-supervise");
    let prompts = short_tone_prompts(&dir);
    let mut router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    let empty = empty_pcap(&dir);
    let arm_sink = RtpSink::bind();
    let (arm, arm_port) = media_seat(router.sip, &empty, Some(arm_sink.port()), 1, 200);
    register(router.sip, "arm1", arm_port).await;
    let sup_sink = RtpSink::bind();
    let (sup, sup_port) = media_seat(router.sip, &empty, Some(sup_sink.port()), 1, 200);
    register(router.sip, "sup1", sup_port).await;
    let sup_token = cti_login(&router, "sup1").await;
    let arm_token = cti_login(&router, "arm1").await;

    let (caller, caller_sink, talking) =
        talking_caller(router.sip, "15", &empty, CALLER_HZ, 14_000).await;
    let voice = |hz| {
        let mut v = RtpStream::new(G711Law::Ulaw);
        v.tone(hz, 14_000);
        v.into_packets()
    };
    let arm_talking = (arm_sink)
        .play_to_sender(voice(ARM_HZ), Duration::from_secs(10))
        .await;
    let (_, status) = cti(&router, &arm_token, "GET", "/api/cti/status", json!({})).await;
    let call = status["call"]["id"]
        .as_str()
        .expect("arm1 is on the call")
        .to_string();
    let listen = format!("/api/supervisor/calls/{call}/listen");

    // Only supervisors: an ARM is refused, and nobody without a session.
    let (code, _) = supervise(&router, &arm_token, &listen, json!({})).await;
    assert_eq!(code, 403);
    let (code, _) = http_send(router.http, "POST", &listen, None, "{}").await;
    assert_eq!(code, 401);
    let (code, body) = supervise(
        &router,
        &sup_token,
        "/api/supervisor/calls/nope/listen",
        json!({}),
    )
    .await;
    assert_eq!(code, 404, "{body}");

    // Listen: the supervisor's phone rings, answers, and hears both.
    let (code, body) = supervise(&router, &sup_token, &listen, json!({"mode": "listen"})).await;
    assert_eq!(code, 200, "{body}");
    let sup_talking = (sup_sink)
        .play_to_sender(voice(SUP_HZ), Duration::from_secs(10))
        .await;
    let marks = |n: &mut Vec<[usize; 3]>| {
        n.push([caller_sink.len(), arm_sink.len(), sup_sink.len()]);
    };
    let mut at = Vec::new();
    marks(&mut at);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    marks(&mut at);
    let (code, body) = supervise(&router, &sup_token, &listen, json!({"mode": "whisper"})).await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    marks(&mut at);
    let (code, body) = supervise(&router, &sup_token, &listen, json!({"mode": "barge"})).await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    marks(&mut at);
    let takeover = format!("/api/supervisor/calls/{call}/takeover");
    let (code, body) = supervise(&router, &sup_token, &takeover, json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["replaced"], "arm1");
    assert!(
        finish(arm, Duration::from_secs(5)).await,
        "the ARM's phone got BYE"
    );
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    marks(&mut at);
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(
        finish(sup, Duration::from_secs(10)).await,
        "supervisor hung up at the end"
    );
    for t in [talking, arm_talking, sup_talking] {
        t.join().unwrap();
    }
    let record = wait_records(&router, 1).await.remove(0);
    let entries = audit(&router).await;
    router.stop().await;
    let (caller_got, arm_got, sup_got) = (caller_sink.stop(), arm_sink.stop(), sup_sink.stop());
    let window = |got: &[RtpPacket], leg: usize, phase: usize| {
        after(got, at[phase][leg], at[phase + 1][leg])
    };

    // Who hears what in each phase (listen, whisper, barge, taken over): (who, what they
    // received, their leg, the phase, tones heard, tones not heard).
    let (caller, arm, sup) = (&caller_got[..], &arm_got[..], &sup_got[..]);
    type Heard<'a> = (&'a str, &'a [RtpPacket], usize, usize, &'a [f32], &'a [f32]);
    let expected: [Heard; 9] = [
        ("supervisor (listen)", sup, 2, 0, &[CALLER_HZ, ARM_HZ], &[]),
        ("caller (listen)", caller, 0, 0, &[ARM_HZ], &[SUP_HZ]),
        ("ARM (listen)", arm, 1, 0, &[CALLER_HZ], &[SUP_HZ]),
        ("ARM (whisper)", arm, 1, 1, &[CALLER_HZ, SUP_HZ], &[]),
        ("caller (whisper)", caller, 0, 1, &[ARM_HZ], &[SUP_HZ]),
        ("caller (barge)", caller, 0, 2, &[ARM_HZ, SUP_HZ], &[]),
        ("ARM (barge)", arm, 1, 2, &[CALLER_HZ, SUP_HZ], &[]),
        ("caller (taken over)", caller, 0, 3, &[SUP_HZ], &[ARM_HZ]),
        (
            "supervisor (taken over)",
            sup,
            2,
            3,
            &[CALLER_HZ],
            &[ARM_HZ],
        ),
    ];
    for (who, got, leg, phase, loud, silent) in expected {
        assert_tones(who, &window(got, leg, phase), loud, silent);
    }

    assert_eq!(
        handlers(&record),
        [("arm1", Some("takeover")), ("sup1", Some("caller_bye"))]
    );
    let takeover = record.events.iter().find(|e| e.kind == "TAKEOVER").unwrap();
    assert_eq!(takeover.seat.as_deref(), Some("sup1"));
    let monitor: Vec<&str> = (record.events.iter())
        .filter(|e| e.kind == "MONITOR")
        .filter_map(|e| e.detail.as_deref())
        .collect();
    assert_eq!(
        monitor,
        [
            "listen by sup1 on arm1",
            "listen answered",
            "whisper by sup1",
            "barge by sup1"
        ]
    );
    let mine: Vec<(&str, &str)> = (entries.iter())
        .filter(|(actor, _, target)| actor == "sup1" && *target == call)
        .map(|(_, action, _)| (action.as_str(), ""))
        .collect();
    let actions: Vec<&str> = mine.iter().rev().map(|(a, _)| *a).collect();
    assert_eq!(
        actions,
        ["call.listen", "call.whisper", "call.barge", "call.takeover"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A 15 call waits (no ARM in distribution): the supervisor moves it to the AMU queue as
/// P1 with the CLI, and the doctor's phone gets it; arm1 is logged out and unpaused by the
/// CLI and the API, its console session ended; all audited as their actors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_call_is_moved_and_a_seat_logged_out_and_unpaused() {
    let mut router = start(Options::default()).await;
    let doctor = seat(&router, "amu1", 1, 100).await;
    let arm_phone = seat(&router, "arm1", 1, 100).await;
    let arm_token = cti_login(&router, "arm1").await;
    let sup_token = cti_login(&router, "sup1").await;
    let out = cli(&["seats", "logout", "arm1"], &router.config_path);
    assert!(out.contains("seat arm1: logout done, now paused"), "{out}");
    let (code, _) = cti(&router, &arm_token, "GET", "/api/cti/status", json!({})).await;
    assert_eq!(code, 401, "its console session is over");

    let caller = trunk_caller(router.sip, "caller.xml", "15", 3_000);
    let mut call = None;
    for _ in 0..100 {
        let (_, overview) = cti(
            &router,
            &sup_token,
            "GET",
            "/api/supervisor/overview",
            json!({}),
        )
        .await;
        if overview["calls"][0]["waiting"] == true {
            call = overview["calls"][0]["id"].as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call = call.expect("the call waits");
    let move_to = format!("/api/supervisor/calls/{call}/move");
    let (code, body) = supervise(&router, &sup_token, &move_to, json!({"queue": "urgences"})).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown queue urgences"),
        "{body}"
    );
    let (code, _) = supervise(&router, &arm_token, &move_to, json!({"queue": "amu"})).await;
    assert_eq!(code, 401);
    let out = cli(
        &["calls", "move", &call, "--queue", "amu", "--priority", "p1"],
        &router.config_path,
    );
    assert!(out.contains("moved to queue \"amu\" (P1)"), "{out}");
    assert!(finish(caller, Duration::from_secs(20)).await, "caller");
    assert!(
        finish(doctor, Duration::from_secs(10)).await,
        "the doctor answered"
    );
    let record = wait_records(&router, 1).await.remove(0);
    assert_eq!(record.queue.as_deref(), Some("amu"));
    assert_eq!(handlers(&record)[0].0, "amu1");

    // Back in distribution through the API, as the supervisor.
    let (code, body) = supervise(
        &router,
        &sup_token,
        "/api/supervisor/seats/arm1/unpause",
        json!({}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"]["state"], "available", "{body}");
    let (code, _) = supervise(
        &router,
        &sup_token,
        "/api/supervisor/seats/nobody/unpause",
        json!({}),
    )
    .await;
    assert_eq!(code, 404);
    let entries = audit(&router).await;
    let has = |actor: &str, action: &str, target: &str| {
        entries
            .iter()
            .any(|e| (e.0.as_str(), e.1.as_str(), e.2.as_str()) == (actor, action, target))
    };
    assert!(has("admin", "seat.logout", "arm1"), "{entries:?}");
    assert!(has("admin", "call.move", &call), "{entries:?}");
    assert!(has("sup1", "seat.unpause", "arm1"), "{entries:?}");
    let out = cli(&["audit", "list"], &router.config_path);
    assert!(out.contains("call.move"), "{out}");
    // Counted once done, whoever asked (CLI or API); refused ones (unknown queue or seat,
    // an ARM) are not.
    for (action, n) in [
        ("logout", 1.0),
        ("move", 1.0),
        ("unpause", 1.0),
        ("listen", 0.0),
    ] {
        let sample = format!("sas_supervisor_actions_total{{action=\"{action}\"}}");
        router.wait_metric(&sample, n).await;
    }
    drop(arm_phone);
    router.stop().await;
}

/// Waits until the audit log has `action` by `actor`.
async fn audited(router: &Router, actor: &str, action: &str) -> bool {
    for _ in 0..100 {
        if audit(router)
            .await
            .iter()
            .any(|e| e.0 == actor && e.1 == action)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The console's board: the supervisor clicks "Écouter" on a call, its SIP phone rings and
/// answers; "Quitter" hangs it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_listens_then_leaves_from_the_console_board() {
    let dir = temp_dir("console-supervise");
    with_browser(&dir.clone(), |browser| async move {
        let mut router = start(Options::default()).await;
        let arm = seat(&router, "arm1", 1, 100).await;
        let (sup, sup_port) = answering_sipp(router.sip, 1, 100);
        register(router.sip, "sup1", sup_port).await;
        crate::e2e_console::console_login(&browser, &router, "sup1").await;
        let caller = trunk_caller(router.sip, "caller.xml", "15", 10_000);
        browser.wait_text("#board-calls", "en communication").await;
        (browser)
            .click_live("#board-calls button[data-action='listen']")
            .await;
        assert!(audited(&router, "sup1", "call.listen").await, "listened");
        // Its phone answered: the supervisor is out of distribution meanwhile.
        browser.wait_text("#board-seats", "autre tâche").await;
        browser
            .click_live("#board-calls button[data-action='stop']")
            .await;
        assert!(audited(&router, "sup1", "call.monitor_stop").await, "left");
        assert!(
            finish(sup, Duration::from_secs(10)).await,
            "the supervisor's phone got BYE"
        );
        assert!(finish(caller, Duration::from_secs(20)).await, "caller");
        assert!(finish(arm, Duration::from_secs(10)).await, "ARM");
        let record = wait_records(&router, 1).await.remove(0);
        let ended = record.events.iter().rfind(|e| e.kind == "MONITOR");
        assert_eq!(
            ended.and_then(|e| e.detail.as_deref()),
            Some("ended by sup1: stopped")
        );
        router.stop().await;
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

/// The caller hangs up while a supervisor listens: the supervisor's phone gets BYE before
/// the record is written. A supervisor with no phone registered cannot listen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ending_while_monitored_hangs_up_the_supervisor() {
    let mut router = start(Options::default()).await;
    let arm = seat(&router, "arm1", 1, 100).await;
    let sup_token = cti_login(&router, "sup1").await;
    let caller = trunk_caller(router.sip, "caller.xml", "15", 4_000);
    let mut call = None;
    for _ in 0..100 {
        let (_, overview) = cti(
            &router,
            &sup_token,
            "GET",
            "/api/supervisor/overview",
            json!({}),
        )
        .await;
        if overview["calls"][0]["answered"] == true {
            call = overview["calls"][0]["id"].as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listen = format!("/api/supervisor/calls/{}/listen", call.expect("answered"));
    let (code, body) = supervise(&router, &sup_token, &listen, json!({})).await;
    assert_eq!(code, 409, "no phone yet: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no phone registered"),
        "{body}"
    );
    let (sup, sup_port) = answering_sipp(router.sip, 1, 100);
    register(router.sip, "sup1", sup_port).await;
    let (code, body) = supervise(&router, &sup_token, &listen, json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert!(finish(caller, Duration::from_secs(20)).await, "caller");
    assert!(
        finish(sup, Duration::from_secs(10)).await,
        "the supervisor's phone got BYE"
    );
    assert!(finish(arm, Duration::from_secs(10)).await, "ARM");
    let record = wait_records(&router, 1).await.remove(0);
    assert!(
        (record.events.iter())
            .any(|e| e.kind == "MONITOR" && e.detail.as_deref() == Some("listen answered")),
        "{:?}",
        record.events
    );
    router.stop().await;
}

/// A supervisor with no SIP phone, logged into the console with audio (Chromium, its fake
/// microphone playing a known tone): "Écouter" on the board offers its console a WebRTC leg
/// that the page answers by itself; it receives the call's audio (the browser's own stats),
/// neither caller nor ARM hears it. Whispering, the ARM hears it, the caller still does not;
/// taking over, the caller talks with the supervisor's browser and the ARM's phone gets BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_on_the_browser_console_listens_whispers_and_takes_over() {
    let dir = temp_dir("console-monitor");
    let prompts = short_tone_prompts(&dir);
    let empty = empty_pcap(&dir);
    write_tone_prompts(&dir, &[("microphone", SUP_HZ, 30_000)]);
    let microphone = format!(
        "--use-file-for-fake-audio-capture={}",
        dir.join("microphone.wav").display()
    );
    with_browser_args(&dir.clone(), &[&microphone], |browser| async move {
        let mut router = start(Options {
            prompts: Some(prompts),
            ..Options::default()
        })
        .await;
        let arm_sink = RtpSink::bind();
        let (arm, arm_port) = media_seat(router.sip, &empty, Some(arm_sink.port()), 1, 200);
        register(router.sip, "arm1", arm_port).await;
        let password = SEATS.iter().find(|(u, _)| *u == "sup1").unwrap().1;
        browser
            .goto(&format!("http://{}/console", router.http))
            .await;
        browser.type_into("#login-seat", "sup1").await;
        browser.type_into("#login-password", password).await;
        browser.click("#login-audio").await;
        browser.click("#login-submit").await;
        browser.wait_text("#who-seat", "sup1").await;

        let (caller, caller_sink, talking) =
            talking_caller(router.sip, "15", &empty, CALLER_HZ, 20_000).await;
        let mut arm_voice = RtpStream::new(G711Law::Ulaw);
        arm_voice.tone(ARM_HZ, 20_000);
        let arm_talking = (arm_sink)
            .play_to_sender(arm_voice.into_packets(), Duration::from_secs(10))
            .await;
        browser.wait_text("#board-calls", "en communication").await;
        (browser)
            .click_live("#board-calls button[data-action='listen']")
            .await;
        browser
            .wait_text("#media-state", "supervision : écoute")
            .await;
        // The board says who monitors the call, and how.
        browser
            .wait_text("#board-calls", "supervisé par sup1 (écoute)")
            .await;
        // The browser's own stats: the call's audio comes in.
        let mut inbound = (0, 0);
        for _ in 0..50 {
            let text = browser.text("#media-level").await;
            if !text.is_empty() {
                inbound = crate::e2e_console::packets_and_level(&text);
                if inbound.0 > 100 && inbound.1 > 0 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            inbound.0 > 100 && inbound.1 > 0,
            "supervisor's browser inbound audio: {inbound:?}"
        );
        let marks = |n: &mut Vec<[usize; 2]>| n.push([caller_sink.len(), arm_sink.len()]);
        let mut at = Vec::new();
        marks(&mut at);
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        marks(&mut at);
        (browser)
            .click_live("#board-calls button[data-action='whisper']")
            .await;
        assert!(audited(&router, "sup1", "call.whisper").await, "whisper");
        browser
            .wait_text("#board-calls", "supervisé par sup1 (soufflé)")
            .await;
        browser
            .wait_text("#media-state", "supervision : écoute (soufflé")
            .await;
        marks(&mut at);
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        marks(&mut at);
        (browser)
            .click_live("#board-calls button[data-action='takeover']")
            .await;
        assert!(audited(&router, "sup1", "call.takeover").await, "takeover");
        assert!(
            finish(arm, Duration::from_secs(5)).await,
            "the ARM's phone got BYE"
        );
        marks(&mut at);
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        marks(&mut at);
        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        browser.wait_text("#media-state", "appel terminé").await;
        for t in [talking, arm_talking] {
            t.join().unwrap();
        }
        let record = wait_records(&router, 1).await.remove(0);
        for action in ["listen", "whisper", "takeover"] {
            let sample = format!("sas_supervisor_actions_total{{action=\"{action}\"}}");
            router.wait_metric(&sample, 1.0).await;
        }
        router.stop().await;
        let (caller_got, arm_got) = (caller_sink.stop(), arm_sink.stop());
        let window = |got: &[RtpPacket], leg: usize, phase: usize| {
            after(got, at[phase][leg], at[phase + 1][leg])
        };
        assert_tones(
            "caller (listen)",
            &window(&caller_got, 0, 0),
            &[ARM_HZ],
            &[SUP_HZ],
        );
        assert_tones(
            "ARM (listen)",
            &window(&arm_got, 1, 0),
            &[CALLER_HZ],
            &[SUP_HZ],
        );
        assert_tones(
            "caller (whisper)",
            &window(&caller_got, 0, 2),
            &[ARM_HZ],
            &[SUP_HZ],
        );
        assert_tones(
            "caller (taken over)",
            &window(&caller_got, 0, 4),
            &[SUP_HZ],
            &[ARM_HZ],
        );
        assert_eq!(
            handlers(&record),
            [("arm1", Some("takeover")), ("sup1", Some("caller_bye"))]
        );
        // Whispering, the ARM hears the supervisor's browser about as loud as the caller
        // does once it took over (Chromium's capture is ~20 dB below the SIPp tones, so
        // its share of the ARM's audio stays small, but its power is the same).
        let sup_power = |a: &[i16]| mean_power(a) * tone_share(a, SUP_HZ);
        let whispered = sup_power(&window(&arm_got, 1, 2));
        let taken_over = sup_power(&window(&caller_got, 0, 4));
        eprintln!("supervisor's tone power: ARM (whisper) {whispered:.0}, caller (taken over) {taken_over:.0}");
        assert!(
            taken_over > 10_000.0 && whispered > taken_over / 4.0,
            "ARM (whisper) hears the supervisor: {whispered:.0} vs {taken_over:.0}"
        );
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}
