//! The media engine end to end, with SIPp peers and known audio: what the caller hears
//! (greeting, hold, reassurance, then the seat, as one continuous stream), the digits the
//! caller sends three ways, the two-channel recording, and the quality figures.

use crate::common;

use common::media::*;
use common::*;
use sas_router::media::dtmf::DtmfSource;
use sas_router::media::g711::G711Law;
use sas_router::store::record::{CallRecord, Outcome};
use std::path::{Path, PathBuf};
use std::time::Duration;

const GREETING_HZ: f32 = 440.0;
const HOLD_HZ: f32 = 660.0;
const REASSURANCE_HZ: f32 = 880.0;
const CALLER_HZ: f32 = 500.0;
const SEAT_HZ: f32 = 1800.0;

/// Prompts that are pure tones, so what the caller hears can be told apart.
fn tone_prompts(dir: &Path) {
    write_tone_prompts(
        dir,
        &[
            ("greeting", GREETING_HZ, 600),
            ("hold", HOLD_HZ, 3000),
            ("reassurance", REASSURANCE_HZ, 200),
        ],
    );
}

/// A router (default options) playing the tone prompts, and its test directory.
async fn start_with_tones(name: &str) -> (PathBuf, Router) {
    let dir = temp_dir(name);
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    let router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    (dir, router)
}

async fn one_record(router: &Router) -> CallRecord {
    wait_records(router, 1).await.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hears_greeting_and_hold_then_the_seat_with_digits_and_a_recording() {
    let dir = temp_dir("e2e-media");
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut router = start(Options {
        prompts: Some(prompts),
        data: Some(data.clone()),
        ..Options::default()
    })
    .await;
    // The seat answers after 2.5 s of ringing, in PCMU while the caller speaks PCMA.
    let seat_pcap = seat_pcap(&dir, SEAT_HZ, 4000, G711Law::Ulaw);
    let (seat, seat_port) = media_seat(router.sip, &seat_pcap, None, 1, 2500);
    register(router.sip, "arm1", seat_port).await;

    // The caller's media is a sink of ours: it hears everything the router sends and talks
    // back from the same port (tone, keys 1 5 # as RFC 4733, tone), once it hears the greeting.
    let empty = empty_pcap(&dir);
    let (caller, sink) = listening_caller(router.sip, &empty, 4000, 1500);
    let mut talk = RtpStream::new(G711Law::Alaw);
    talk.tone(CALLER_HZ, 800)
        .digits("15#", Some(CALLER_HZ))
        .tone(CALLER_HZ, 4000);
    let talking = sink
        .play_to_sender(talk.into_packets(), Duration::from_secs(20))
        .await;
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert!(finish(seat, Duration::from_secs(10)).await, "seat scenario");
    assert!(talking.join().unwrap() > 200);
    let got = sink.stop();

    let r = one_record(&router).await;
    assert_eq!(r.outcome, Some(Outcome::Answered));
    let answered = r.caller_answered_at.expect("answered by the router");
    assert!(answered - r.arrived_at < 100, "answered at once: {r:?}");

    // Digits, three keys by RFC 4733 while queued and one by SIP INFO once bridged, in order.
    let keys: String = r.dtmf.iter().map(|d| d.digit).collect();
    assert_eq!(keys, "15#9", "{:?}", r.dtmf);
    assert!(r.dtmf[..3].iter().all(|d| d.source == DtmfSource::Rfc4733));
    assert_eq!(r.dtmf[3].source, DtmfSource::SipInfo);
    assert!(r.dtmf.windows(2).all(|w| w[0].at <= w[1].at));

    // One stream towards the caller: one SSRC, no sequence gap, timestamps that never go
    // back and move by whole 20 ms packets even across a switch (no overlap), a marker at
    // each change of source.
    assert!(got.len() > 200, "caller got {} packets", got.len());
    assert!(got.iter().all(|p| p.ssrc == got[0].ssrc), "one SSRC");
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence continuous");
        let step = w[1].ts.wrapping_sub(w[0].ts);
        assert!((1..8000).contains(&step), "timestamps move on: {step}");
        assert_eq!(
            step % FRAME_SAMPLES as u32,
            0,
            "whole packets at seq {} (marker {})",
            w[1].seq,
            w[1].marker
        );
    }
    let markers = got.iter().filter(|p| p.marker).count();
    assert!(
        markers >= 4,
        "greeting, hold, reassurance, hold, seat: {markers}"
    );

    // What the caller heard: greeting, hold (with the reassurance), then the seat (μ-law
    // converted to A-law on the way).
    assert!(tone_share(&heard(&got, 0.0, 0.5), GREETING_HZ) > 0.8);
    assert!(tone_share(&heard(&got, 0.7, 1.5), HOLD_HZ) > 0.8);
    let queued = heard(&got, 0.6, 2.4);
    assert!(
        tone_share(&queued, REASSURANCE_HZ) > 0.05,
        "reassurance while queued"
    );
    let end = got.last().unwrap().arrival.as_secs_f32();
    assert!(
        tone_share(&heard(&got, end - 1.5, end), SEAT_HZ) > 0.8,
        "then the seat"
    );

    // The recording: left the caller, right what the caller heard.
    let rec = r.recording.as_ref().expect("recording in the record");
    let path = data.join("recordings").join(&rec.path);
    let (rate, channels) = read_wav_channels(&path).unwrap();
    assert_eq!((rate, channels.len()), (8000, 2));
    let seconds = channels[0].len() as f32 / 8000.0;
    assert!(
        (seconds * 1000.0 - rec.duration_ms as f32).abs() < 50.0,
        "{seconds} s vs {rec:?}"
    );
    let (caller_ch, plateau) = (&channels[0], &channels[1]);
    let mid = |ch: &[i16], from: f32, to: f32| {
        ch[(from * 8000.0) as usize..(to * 8000.0) as usize].to_vec()
    };
    assert!(
        tone_share(&mid(caller_ch, 3.0, 5.0), CALLER_HZ) > 0.8,
        "caller on the left"
    );
    assert!(
        tone_share(&mid(plateau, 0.0, 0.5), GREETING_HZ) > 0.8,
        "greeting on the right"
    );
    let last = seconds - 1.0;
    assert!(
        tone_share(&mid(plateau, last - 1.0, last), SEAT_HZ) > 0.8,
        "the seat on the right"
    );
    assert!(
        tone_share(&mid(caller_ch, last - 1.0, last), SEAT_HZ) < 0.05,
        "no bleed"
    );

    // Quality figures, per leg.
    let q = r.quality.expect("quality");
    assert!(
        q.caller.packets_received > 200 && q.caller.packets_lost == 0,
        "{q:?}"
    );
    assert!(q.seat.packets_received > 50, "{q:?}");
    let metrics = http_get(router.http, "/metrics", None).await.1;
    assert!(
        metrics.contains("sas_rtp_jitter_seconds_count{leg=\"caller\"} 1"),
        "{metrics}"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_band_digits_are_heard_when_the_trunk_has_no_telephone_event() {
    let dir = temp_dir("e2e-inband");
    let mut router = start(Options::default()).await;
    let seat_pcap = seat_pcap(&dir, SEAT_HZ, 3000, G711Law::Alaw);
    let (seat, seat_port) = media_seat(router.sip, &seat_pcap, None, 1, 100);
    register(router.sip, "arm2", seat_port).await;
    let keys = inband_pcap(&dir, "3114", G711Law::Alaw);
    let caller = media_caller(
        router.sip,
        &MediaCall {
            scenario: "caller_inband.xml",
            info_at_ms: 3500,
            tail_ms: 200,
            ..MediaCall::new("116117", &keys)
        },
    );
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert!(finish(seat, Duration::from_secs(10)).await, "seat scenario");
    let r = one_record(&router).await;
    let keys: String = r.dtmf.iter().map(|d| d.digit).collect();
    assert_eq!(keys, "3114", "{:?}", r.dtmf);
    assert!(r.dtmf.iter().all(|d| d.source == DtmfSource::InBand));
    assert!(
        r.recording.is_some(),
        "answered by the seat: recorded from then on"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prompts_are_named_and_the_router_still_serves() {
    let dir = temp_dir("bad-prompts");
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    std::fs::write(prompts.join("hold.wav"), b"this is not audio").unwrap();
    std::fs::write(prompts.join("reassurance.wav"), b"RIFF").unwrap();
    let mut router = start(Options {
        prompts: Some(prompts),
        ..Options::default()
    })
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .args(["check-config", "-c"])
        .arg(&router.config_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config fails on bad prompts");
    assert!(
        stderr.contains("hold.wav") && stderr.contains("not a WAV file"),
        "{stderr}"
    );
    assert!(stderr.contains("reassurance.wav"), "{stderr}");
    // The router started anyway, and a caller still hears the greeting.
    let empty = empty_pcap(&dir);
    let (caller, sink) = listening_caller(router.sip, &empty, 500, 200);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    let got = sink.stop();
    assert!(tone_share(&heard(&got, 0.0, 0.5), GREETING_HZ) > 0.8);
    let r = one_record(&router).await;
    assert!(
        matches!(r.outcome, Some(Outcome::Misdial | Outcome::Abandoned)),
        "hung up while queued: {:?}",
        r.outcome
    );
    assert_eq!(r.dtmf.len(), 1, "the INFO digit while queued");
    router.stop().await;
}

/// A dial plan naming a greeting whose file is missing: the router still starts and
/// answers the 15, plays silence where the greeting would be, then the hold audio; the log
/// names the prompt and the plan, the metric counts it, and `check`/`check-config` report
/// it (exit code 2: valid, served, but incomplete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_greeting_is_silence_and_the_15_is_still_answered() {
    let dir = temp_dir("missing-greeting");
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    std::fs::remove_file(prompts.join("greeting.wav")).unwrap();
    let opts = Options {
        prompts: Some(prompts),
        ..Options::default()
    };
    let mut router = start(opts.clone()).await;
    assert_eq!(router.metric("sas_prompts_missing"), 1.0);

    // The admin's tools say so, with the plan's place, and exit 2.
    let plans = router.data.join("dialplans");
    for args in [vec!["check-config"], vec!["check", plans.to_str().unwrap()]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
            .args(&args)
            .arg("-c")
            .arg(&router.config_path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("test.toml:")
                && stderr.contains("plays \"greeting\", but there is no prompt file greeting.wav"),
            "{args:?}: {stderr}"
        );
    }

    // The caller is answered at once, hears silence, then the hold audio.
    let empty = empty_pcap(&dir);
    let (caller, sink) = listening_caller(router.sip, &empty, 2200, 200);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    let got = sink.stop();
    let r = one_record(&router).await;
    let answered = r.caller_answered_at.expect("answered by the router");
    assert!(answered - r.arrived_at < 100, "answered at once: {r:?}");
    assert!(
        got.len() > 90,
        "a stream from the start: {} packets",
        got.len()
    );
    let start = got[0].arrival.as_secs_f32();
    let silence = heard(&got, start, start + 0.9);
    assert!(
        silence.iter().all(|s| s.abs() < 100),
        "silence in place of the greeting"
    );
    assert!(
        tone_share(&heard(&got, start + 1.1, start + 2.0), HOLD_HZ) > 0.8,
        "then the hold audio"
    );
    router.stop().await;

    // The real binary starts with it too, and logs it loudly, naming prompt and plan.
    let data = dir.join("binary");
    std::fs::create_dir_all(&data).unwrap();
    let config = data.join("config.toml");
    std::fs::write(&config, config_text(&opts, &data)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
        .arg("-c")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut before_start = Vec::new();
    for line in std::io::BufRead::lines(log).map_while(Result::ok) {
        if line.contains("sip_udp=Some(") {
            break;
        }
        before_start.push(line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let logged = before_start
        .iter()
        .find(|l| l.contains("prompt file missing"))
        .unwrap_or_else(|| panic!("{before_start:#?}"));
    assert!(
        logged.contains("ERROR") && logged.contains("greeting") && logged.contains("test.toml"),
        "{logged}"
    );
}

const MENU_PLAN: &str = r#"
[queues.arm]
role = "arm"

[queues.psy]
role = "psy"

[entries.sas]
numbers = ["116117"]
line = "sas"
start = "menu"

[entries.sas.steps.menu]
menu = "greeting"
choices = { "2" = "psy", "1" = "ferme" }
timeout_s = 2
retries = 0
default = "ferme"

[entries.sas.steps.psy]
tags = { motif = "psy" }
next = "file_psy"

[entries.sas.steps.file_psy]
queue = "psy"
hold = "hold"

[entries.sas.steps.ferme]
hangup = "reassurance"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_menu_key_routes_the_call_and_silence_takes_the_default() {
    let dir = temp_dir("e2e-menu");
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    let mut router = start(Options {
        prompts: Some(prompts),
        plans: Some(MENU_PLAN.into()),
        roles: vec![("arm2", "psy")],
        ..Options::default()
    })
    .await;
    // An ARM and a psy responder are both free; key 2 must reach the psy one.
    let seat_pcap = seat_pcap(&dir, SEAT_HZ, 2000, G711Law::Alaw);
    let (seat, seat_port) = media_seat(router.sip, &seat_pcap, None, 1, 100);
    register(router.sip, "arm2", seat_port).await;
    let (_arm, arm_port) = media_seat(router.sip, &seat_pcap, None, 1, 100);
    register(router.sip, "arm1", arm_port).await;

    // Key 2 by RFC 4733 during the menu: tagged psy, queued, answered by the seat.
    let keys = caller_pcap(&dir, CALLER_HZ, "2", G711Law::Alaw);
    let caller = media_caller(
        router.sip,
        &MediaCall {
            info_at_ms: 3000,
            tail_ms: 500,
            ..MediaCall::new("116117", &keys)
        },
    );
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert!(finish(seat, Duration::from_secs(10)).await, "seat scenario");
    let r = one_record(&router).await;
    assert_eq!(r.outcome, Some(Outcome::Answered), "{:#?}", r.route);
    assert_eq!(r.tags.get("motif").map(String::as_str), Some("psy"));
    assert_eq!(r.seat.as_deref(), Some("arm2"), "answered in the psy queue");
    assert!(r.offers.iter().all(|o| o.seat == "arm2"), "{:?}", r.offers);
    assert!(
        r.route.iter().any(|l| l == "menu: key 2 → psy"),
        "{:#?}",
        r.route
    );
    assert!(r.plan_version.as_ref().is_some_and(|v| v.len() == 12));

    // No key: the menu times out, its default plays the closing message and hangs up.
    let silent = trunk_caller(router.sip, "caller_stays.xml", "116117", 0);
    assert!(
        finish(silent, Duration::from_secs(30)).await,
        "the router hung up on the caller after the message"
    );
    let closed = wait_records(&router, 2).await.remove(0);
    assert_eq!(closed.outcome, Some(Outcome::Closed), "{:#?}", closed.route);
    assert!(
        closed
            .route
            .iter()
            .any(|l| l == "menu: no key, no retry left → ferme"),
        "{:#?}",
        closed.route
    );
    assert!(
        closed
            .route
            .last()
            .unwrap()
            .contains("hang up after reassurance")
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_phone_holding_its_caller_gives_it_the_hold_audio() {
    let (dir, mut router) = start_with_tones("seat-hold").await;
    // The ARM's phone answers, talks 1 s, holds its caller (re-INVITE sendonly) for 2 s,
    // then takes it back (sendrecv); the router must answer recvonly, then sendrecv.
    let (phone, port) = seat_sipp(router.sip, "seat_holds.xml", &[], 1, 1000, true);
    register(router.sip, "arm1", port).await;

    let empty = empty_pcap(&dir);
    let (caller, sink, talking) = talking_caller(router.sip, "15", &empty, CALLER_HZ, 7000).await;
    let bound = sas_router::time::wall_clock_now();
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    talking.join().unwrap();
    assert!(
        finish(phone, Duration::from_secs(10)).await,
        "the phone's holds were answered"
    );

    let r = one_record(&router).await;
    let at = |kind: &str| {
        let e = r.events.iter().find(|e| e.kind == kind);
        let e = e.unwrap_or_else(|| panic!("{kind} in {r:?}"));
        e.at.saturating_sub(bound) as f32 / 1000.0
    };
    let (held, resumed) = (at("HOLD"), at("RESUME"));
    let got = sink.stop();
    assert_hears(&got, held + 0.3, resumed, HOLD_HZ);
    // Taken back: the caller hears its own voice echoed by the phone, not the hold audio.
    assert_hears(&got, resumed + 0.3, resumed + 1.3, CALLER_HZ);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_seat_phone_dies_silently_waits_again_for_the_next_seat() {
    let dir = temp_dir("seat-dies");
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    let mut router = start(Options {
        prompts: Some(prompts),
        seat_rtp_timeout_s: 2,
        ..Options::default()
    })
    .await;
    // arm1's phone echoes the caller's voice, then dies: no BYE, no more RTP.
    let arm1 = seat(&router, "arm1", 1, 100).await;
    let empty = empty_pcap(&dir);
    let (caller, _sink, talking) =
        talking_caller(router.sip, "15", &empty, CALLER_HZ, 12_000).await;
    let busy = eventually(Duration::from_secs(10), || {
        router.metric("sas_seats{role=\"arm\",state=\"busy\"}") == 1.0
    })
    .await;
    assert!(busy, "arm1 took the call");
    // Talking for a while first: the watch must not fire while audio flows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(arm1);
    let arm2 = seat(&router, "arm2", 1, 100).await;

    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    talking.join().unwrap();
    assert!(finish(arm2, Duration::from_secs(10)).await, "arm2's phone");
    let r = one_record(&router).await;
    let handlers = handlers(&r);
    assert_eq!(handlers[0], ("arm1", Some("lost")), "{r:?}");
    assert_eq!(handlers[1].0, "arm2", "{r:?}");
    let connected = r.events.iter().find(|e| e.kind == "CONNECT").unwrap().at;
    let lost = r.events.iter().find(|e| e.kind == "SEAT_LOST").unwrap().at;
    assert!(
        lost - connected >= 3000,
        "not declared dead while it talked: {} ms",
        lost - connected
    );
    router.stop().await;
}

/// A seat lost mid-call, then its caller hanging up while it waits again: the call was
/// answered (by that seat), not abandoned, and `calls show` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hanging_up_while_requeued_after_its_seat_died_was_answered() {
    let dir = temp_dir("seat-dies-caller-leaves");
    let prompts = dir.join("prompts");
    tone_prompts(&prompts);
    let mut router = start(Options {
        prompts: Some(prompts),
        seat_rtp_timeout_s: 2,
        ..Options::default()
    })
    .await;
    let arm1 = seat(&router, "arm1", 1, 100).await;
    let empty = empty_pcap(&dir);
    let (caller, _sink, talking) = talking_caller(router.sip, "15", &empty, CALLER_HZ, 8_000).await;
    let busy = eventually(Duration::from_secs(10), || {
        router.metric("sas_seats{role=\"arm\",state=\"busy\"}") == 1.0
    })
    .await;
    assert!(busy, "arm1 took the call");
    drop(arm1);
    // No other seat: the caller waits again, then hangs up.
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    talking.join().unwrap();
    let r = one_record(&router).await;
    assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
    assert_eq!(r.seat.as_deref(), Some("arm1"));
    assert!(r.talk_ms.unwrap() > 5_000, "{r:?}");
    assert_eq!(handlers(&r)[0], ("arm1", Some("lost")), "{r:?}");
    let shown = cli(&["calls", "show", &r.id], &router.config_path);
    assert!(shown.contains(" by arm1"), "{shown}");
    assert!(shown.contains("outcome   answered"), "{shown}");
    router.stop().await;
}

/// `check-config` warns (exit code unchanged) when the RTP range overlaps the kernel's
/// ephemeral ports, where outgoing connections would take RTP ports from calls.
#[test]
fn check_config_warns_when_the_rtp_range_overlaps_the_ephemeral_ports() {
    let Some(ephemeral) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| sas_router::media::ports::parse_port_range(&t))
    else {
        return; // not Linux: nothing to compare with
    };
    let data = temp_dir("ephemeral-overlap");
    let text = config_text(&Options::default(), &data);
    let config = data.join("config.toml");
    let range = |min: u16, max: u16| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        for line in &mut lines {
            if line.starts_with("rtp_port_min") {
                *line = format!("rtp_port_min = {min}");
            } else if line.starts_with("rtp_port_max") {
                *line = format!("rtp_port_max = {max}");
            }
        }
        std::fs::write(&config, lines.join("\n")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sas-router"))
            .args(["check-config", "-c"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let inside = range(ephemeral.0, ephemeral.0 + 99);
    assert!(
        inside.contains("warning: media.rtp_port_min..max")
            && inside.contains("ephemeral port range"),
        "{inside}"
    );
    if ephemeral.0 > 1200 {
        let below = range(1024, 1123);
        assert!(!below.contains("ephemeral"), "{below}");
    }
}

/// The router binds a leg's RTP/RTCP sockets only once an SDP is negotiated for it: during
/// a call between a caller and one seat, the caller's and the seat's pairs are bound, and
/// the third leg's (transfers, supervision) is not. Used to be all three at the INVITE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_negotiated_legs_hold_rtp_ports() {
    let (dir, mut router) = start_with_tones("lazy-ports").await;
    let config = std::fs::read_to_string(&router.config_path).unwrap();
    let setting = |key: &str| -> u16 {
        let line = config.lines().find(|l| l.starts_with(key)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let range = setting("rtp_port_min")..=setting("rtp_port_max");
    let seat_pcap = seat_pcap(&dir, SEAT_HZ, 4000, G711Law::Ulaw);
    let (seat, seat_port) = media_seat(router.sip, &seat_pcap, None, 1, 300);
    register(router.sip, "arm1", seat_port).await;
    let empty = empty_pcap(&dir);
    let (caller, sink) = listening_caller(router.sip, &empty, 4000, 1500);
    // Bridged to the seat (answered after 300 ms) and talking.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let held: Vec<u16> = range
        .filter(|&p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_err())
        .collect();
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(seat, Duration::from_secs(10)).await, "seat");
    assert!(sink.stop().len() > 100, "the caller heard the call");
    assert_eq!(held.len(), 4, "two legs' RTP and RTCP: {held:?}");
    router.stop().await;
}
