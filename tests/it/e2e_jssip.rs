//! A real third-party WebRTC SIP phone: JsSIP 3.13.8 in headless Chromium
//! (tests/jssip/phone.html, with dist/jssip.js bundled by `npm run build`), against a router
//! with SIP over secure WebSocket and a self-signed certificate. JsSIP answers 15 calls as
//! an ARM's phone, and a supervisor's monitor calls as its phone.

use crate::common;

use common::browser::{self, Browser, with_browser_args};
use common::*;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Chromium trusts the router's self-signed certificate (WSS). The page is a `file://`
/// one: it may open WebSockets and capture the (fake) microphone, and a page capturing
/// plays the remote audio without a click, so no autoplay flag either.
const CHROMIUM_ARGS: [&str; 1] = ["--ignore-certificate-errors"];

/// The JsSIP phone page for `user` (test password) on the router's WSS `addr`.
fn phone_page(addr: SocketAddr, user: &str) -> String {
    let password = SEATS.iter().find(|(u, _)| *u == user).unwrap().1;
    browser::phone_page("phone.html", "jssip.js", addr, user, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_registers_over_wss() {
    // arm1 has both HA1s, as the shipped seats; JsSIP keeps only the last challenge and
    // knows only MD5.
    let dir = temp_dir("jssip-register");
    let (cert, key, _) = tls::self_signed(&dir);
    let mut router = start(Options {
        sip_ws: true,
        tls: Some((cert, key)),
        ..Options::default()
    })
    .await;
    let wss = router.running.as_ref().unwrap().sip_wss.unwrap();
    let page = phone_page(wss, "arm1");
    with_browser_args(&dir, &CHROMIUM_ARGS, |browser| async move {
        browser.goto(&page).await;
        browser.wait_text_is("#reg", "registered").await;
        assert!(
            eventually(Duration::from_secs(15), || router
                .metric("sas_seats{role=\"arm\",state=\"available\"}")
                == 1.0)
            .await,
            "arm1 available after JsSIP's REGISTER"
        );
        router.stop().await;
    })
    .await;
}

/// `#stats` as (packets in, inbound audio level 0..1, packets out).
fn phone_stats(text: &str) -> Option<(u64, f64, u64)> {
    let mut words = text.split_whitespace();
    let mut after = |name: &str| {
        words.find(|w| *w == name)?;
        words.next()
    };
    let inbound = after("in")?.parse().ok()?;
    let level = after("level")?.parse().ok()?;
    let outbound = after("out")?.parse().ok()?;
    Some((inbound, level, outbound))
}

/// Waits until the phone's own stats say it receives audio with a level and sends; returns
/// them.
async fn audio_flowing(browser: &common::browser::Browser, more_than: u64) -> (u64, f64, u64) {
    let mut last = None;
    for _ in 0..60 {
        last = phone_stats(&browser.text("#stats").await);
        if let Some((inbound, level, outbound)) = last
            && inbound > more_than
            && level > 0.0
            && outbound > more_than
        {
            return (inbound, level, outbound);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the phone's audio is not flowing: {last:?} (wanted more than {more_than} packets)");
}

/// A router with SIP over WSS (self-signed) and tone prompts, for calls to JsSIP.
async fn router_for_calls(dir: &std::path::Path) -> Router {
    let prompts = media::short_tone_prompts(dir);
    let (cert, key, _) = tls::self_signed(dir);
    start(Options {
        sip_ws: true,
        tls: Some((cert, key)),
        prompts: Some(prompts),
        // A loaded browser may take seconds to answer: no ring-no-answer meanwhile.
        ring_timeout_s: 15,
        ..Options::default()
    })
    .await
}

/// Runs `test` with a router for calls and JsSIP registered as arm1 in Chromium (and the
/// test's directory).
async fn with_registered_jssip<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<Browser>, Router, PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = temp_dir(name);
    let router = router_for_calls(&dir).await;
    let wss = router.running.as_ref().unwrap().sip_wss.unwrap();
    let page = phone_page(wss, "arm1");
    let test_dir = dir.clone();
    with_browser_args(&dir, &CHROMIUM_ARGS, |browser| async move {
        browser.goto(&page).await;
        browser.wait_text_is("#reg", "registered").await;
        test(browser, router, test_dir).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_takes_a_15_call_with_audio_both_ways_and_holds_it() {
    use common::media::*;
    with_registered_jssip("jssip-call", |browser, mut router, dir| async move {
        let empty = empty_pcap(&dir);

        // The caller talks (500 Hz) from the greeting on, for 10 s, then hangs up.
        let (caller, caller_sink, talking) =
            talking_caller(router.sip, "15", &empty, 500.0, 10_000).await;
        let since_call = std::time::Instant::now();
        browser.wait_text_is("#call", "ringing").await;
        assert!(
            !browser.text("#headers").await.is_empty(),
            "the INVITE names the router's call (X-Sas-Call)"
        );
        browser.click("#answer").await;
        browser.wait_text_is("#call", "answered").await;
        // Chromium's own stats: the caller's audio arrives with a level, and it sends.
        let (inbound, _, _) = audio_flowing(&browser, 50).await;

        // Hold and resume: JsSIP re-INVITEs, the router's WebRTC leg answers both, and the
        // caller hears the hold audio (660 Hz) meanwhile, not silence.
        browser.click("#hold").await;
        browser.wait_text_is("#call", "on hold").await;
        let held = since_call.elapsed().as_secs_f32();
        // The scenario: 1.5 s on hold, the window the caller's recording is checked in.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let resumed = since_call.elapsed().as_secs_f32();
        browser.click("#unhold").await;
        browser.wait_text_is("#call", "answered").await;
        audio_flowing(&browser, inbound + 50).await;

        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        talking.join().unwrap();
        browser.wait_text("#call", "ended").await;
        // The caller got the browser's (fake microphone) audio through the WebRTC leg.
        let got = caller_sink.stop();
        assert_hears(&got, held + 0.3, resumed, HOLD_HZ);
        assert_hears_browser_microphone(&got);
        let r = wait_records(&router, 1).await.remove(0);
        assert_eq!(r.seat.as_deref(), Some("arm1"));
        assert_eq!(r.end_reason.as_deref(), Some("caller_bye"), "{r:?}");
        assert_held_then_resumed(&r);
        let rtp = r.rtp.expect("bridged");
        assert!(
            rtp.seat.rx_packets > 100 && rtp.seat.tx_packets > 100,
            "{rtp:?}"
        );
        router.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_jssip_phone_dies_mid_call_waits_again_for_the_next_seat() {
    with_registered_jssip("jssip-lost", |browser, mut router, dir| async move {
        let empty = media::empty_pcap(&dir);
        let (caller, _sink, talking) =
            media::talking_caller(router.sip, "15", &empty, 500.0, 20_000).await;
        browser.wait_text_is("#call", "ringing").await;
        browser.click("#answer").await;
        browser.wait_text_is("#call", "answered").await;
        audio_flowing(&browser, 25).await;

        // A second ARM comes online on a SIP phone; then arm1's tab is gone, without a BYE.
        let arm2 = seat(&router, "arm2", 1, 100).await;
        browser.goto("about:blank").await;

        // The caller is not hung up: it waits again and arm2 answers it.
        assert!(finish(caller, Duration::from_secs(40)).await, "caller");
        talking.join().unwrap();
        assert!(finish(arm2, Duration::from_secs(10)).await, "arm2's phone");
        let r = wait_records(&router, 1).await.remove(0);
        let handlers = handlers(&r);
        assert_eq!(handlers[0], ("arm1", Some("lost")), "{r:?}");
        assert_eq!(handlers[1].0, "arm2", "{r:?}");
        assert_eq!(
            r.seat.as_deref(),
            Some("arm1"),
            "the seat that answered first"
        );
        assert!(r.events.iter().any(|e| e.kind == "SEAT_LOST"), "{r:?}");
        router.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jssip_arm_refers_its_caller_to_amu() {
    with_registered_jssip("jssip-refer", |browser, mut router, _dir| async move {
        let doctor = seat(&router, "amu1", 1, 100).await;
        let caller = trunk_caller(router.sip, "caller.xml", "15", 6000);
        browser.wait_text_is("#call", "ringing").await;
        browser.click("#answer").await;
        browser.wait_text_is("#call", "answered").await;
        audio_flowing(&browser, 25).await;

        // A blind REFER to 2001 over the WebSocket: 202, NOTIFY 200, then the router
        // releases the phone's leg and the AMU regulator takes the caller.
        browser.click("#transfer").await;
        browser.wait_text_is("#refer", "succeeded").await;
        browser.wait_text("#call", "ended").await;
        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        assert!(finish(doctor, Duration::from_secs(10)).await, "AMU phone");
        let r = wait_records(&router, 1).await.remove(0);
        let handlers = handlers(&r);
        let expected = [("arm1", Some("transfer")), ("amu1", Some("caller_bye"))];
        assert_eq!(handlers, expected, "{r:?}");
        assert_eq!(r.seat.as_deref(), Some("arm1"), "the seat that answered");
        router.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jssip_arm_dials_2001_and_talks_with_the_amu_regulator() {
    with_registered_jssip("jssip-dials", |browser, mut router, _dir| async move {
        // The AMU phone echoes what it hears: the ARM hears its own microphone back.
        let doctor = seat(&router, "amu1", 1, 100).await;
        browser.click("#dial").await;
        browser.wait_text_is("#call", "answered").await;
        audio_flowing(&browser, 50).await;
        browser.click("#hangup").await;
        browser.wait_text("#call", "ended").await;
        // Its checks hold for a seat's call too (JsSIP sends Max-Forwards 69, the doctor
        // gets 68: below 70, above 0).
        assert!(
            finish(doctor, Duration::from_secs(10)).await,
            "the AMU phone's SIPp failed the call"
        );

        let r = wait_records(&router, 1).await.remove(0);
        assert_eq!(r.called, "2001");
        assert_eq!(r.seat.as_deref(), Some("amu1"));
        assert_eq!(r.end_reason.as_deref(), Some("caller_bye"), "{r:?}");
        let rtp = r.rtp.expect("bridged");
        assert!(
            rtp.caller.rx_packets > 50 && rtp.caller.tx_packets > 50,
            "the browser's leg carried audio both ways: {rtp:?}"
        );
        router.stop().await;
    })
    .await;
}

/// A 15 call talking with arm1 (a SIPp phone) that sup1, whose phone is JsSIP in Chromium,
/// listens to: the monitor call rang the browser, which answered and receives the call's
/// audio (its own stats).
struct Monitored {
    browser: Arc<Browser>,
    router: Router,
    call: String,
    sup_token: String,
    arm: tokio::process::Child,
    caller: tokio::process::Child,
    caller_sink: media::RtpSink,
    /// The caller's and the ARM's voices.
    talking: [std::thread::JoinHandle<usize>; 2],
}

/// Runs `test` on a [`Monitored`] call; the browser's microphone plays `SUP_HZ`.
async fn with_jssip_monitor<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Monitored) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use crate::e2e_supervise::{ARM_HZ, CALLER_HZ, SUP_HZ, supervise};
    use common::media::*;
    let dir = temp_dir(name);
    let router = router_for_calls(&dir).await;
    let empty = empty_pcap(&dir);
    // The supervisor's browser talks at its own pitch: the caller must not hear it before
    // the take over.
    write_tone_prompts(&dir, &[("microphone", SUP_HZ, 30_000)]);
    let microphone = format!(
        "--use-file-for-fake-audio-capture={}",
        dir.join("microphone.wav").display()
    );
    let wss = router.running.as_ref().unwrap().sip_wss.unwrap();
    let page = phone_page(wss, "sup1");
    let args = [CHROMIUM_ARGS[0], microphone.as_str()];
    with_browser_args(&dir.clone(), &args, |browser| async move {
        browser.goto(&page).await;
        browser.wait_text_is("#reg", "registered").await;
        let arm_sink = RtpSink::bind();
        let (arm, arm_port) = media_seat(router.sip, &empty, Some(arm_sink.port()), 1, 200);
        register(router.sip, "arm1", arm_port).await;
        let sup_token = cti_login(&router, "sup1").await;
        let arm_token = cti_login(&router, "arm1").await;
        let (caller, caller_sink, talking) =
            talking_caller(router.sip, "15", &empty, CALLER_HZ, 20_000).await;
        let mut arm_voice = RtpStream::new(G711Law::Ulaw);
        arm_voice.tone(ARM_HZ, 20_000);
        let arm_talking = (arm_sink)
            .play_to_sender(arm_voice.into_packets(), Duration::from_secs(10))
            .await;
        let (_, status) = cti(&router, &arm_token, "GET", "/api/cti/status", json!({})).await;
        let call = status["call"]["id"].as_str().expect("arm1 is on the call");
        let listen = format!("/api/supervisor/calls/{call}/listen");

        // The supervisor's WebSocket phone rings with a WebRTC offer and answers.
        let (code, body) = supervise(&router, &sup_token, &listen, json!({"mode": "listen"})).await;
        assert_eq!(code, 200, "{body}");
        browser.wait_text_is("#call", "ringing").await;
        browser.click("#answer").await;
        browser.wait_text_is("#call", "answered").await;
        audio_flowing(&browser, 50).await;
        let call = call.to_string();
        test(Monitored {
            browser,
            router,
            call,
            sup_token,
            arm,
            caller,
            caller_sink,
            talking: [talking, arm_talking],
        })
        .await;
    })
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_jssip_phone_listens_then_takes_over() {
    use crate::e2e_supervise::{ARM_HZ, SUP_HZ, after, assert_tones, supervise};
    with_jssip_monitor("jssip-monitor", |m| async move {
        let Monitored {
            browser,
            mut router,
            call,
            sup_token,
            arm,
            caller,
            caller_sink,
            talking,
        } = m;
        let mut at = vec![caller_sink.len()];
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        at.push(caller_sink.len());

        // Take over: the ARM's phone gets BYE, the caller talks with the supervisor.
        let takeover = format!("/api/supervisor/calls/{call}/takeover");
        let (code, body) = supervise(&router, &sup_token, &takeover, json!({})).await;
        assert_eq!(code, 200, "{body}");
        assert!(
            finish(arm, Duration::from_secs(5)).await,
            "the ARM's phone got BYE"
        );
        at.push(caller_sink.len());
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        at.push(caller_sink.len());
        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        browser.wait_text("#call", "ended").await;
        for t in talking {
            t.join().unwrap();
        }
        let record = wait_records(&router, 1).await.remove(0);
        router.stop().await;
        let got = caller_sink.stop();
        let listening = after(&got, at[0], at[1]);
        assert_tones("caller (listen)", &listening, &[ARM_HZ], &[SUP_HZ]);
        let taken_over = after(&got, at[2], at[3]);
        assert_tones("caller (taken over)", &taken_over, &[SUP_HZ], &[ARM_HZ]);
        assert_eq!(
            handlers(&record),
            [("arm1", Some("takeover")), ("sup1", Some("caller_bye"))]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_jssip_phone_whose_tab_dies_ends_its_monitor_only() {
    use crate::e2e_supervise::{ARM_HZ, SUP_HZ, after, assert_tones};
    with_jssip_monitor("jssip-monitor-lost", |m| async move {
        let Monitored {
            browser,
            mut router,
            sup_token,
            arm,
            caller,
            caller_sink,
            talking,
            ..
        } = m;
        // The tab is gone without a BYE: its WebRTC media dies, the monitor ends, and the
        // caller keeps talking with the ARM.
        browser.goto("about:blank").await;
        // Back from its monitor's pause.
        crate::e2e_cti::status_until(&router, &sup_token, |s| s["state"]["state"] != "paused")
            .await;
        let from = caller_sink.len();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let to = caller_sink.len();
        assert!(finish(caller, Duration::from_secs(30)).await, "caller");
        assert!(
            finish(arm, Duration::from_secs(10)).await,
            "the ARM's phone"
        );
        for t in talking {
            t.join().unwrap();
        }
        let record = wait_records(&router, 1).await.remove(0);
        router.stop().await;
        let got = caller_sink.stop();
        assert_tones(
            "caller (after)",
            &after(&got, from, to),
            &[ARM_HZ],
            &[SUP_HZ],
        );
        assert_eq!(handlers(&record), [("arm1", Some("caller_bye"))]);
        let ended = (record.events.iter())
            .filter(|e| e.kind == "MONITOR")
            .filter_map(|e| e.detail.as_deref())
            .any(|d| d == "ended by sup1: supervisor left");
        assert!(ended, "{record:?}");
    })
    .await;
}
