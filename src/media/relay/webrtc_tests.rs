//! A relay whose caller leg is plain RTP (or SRTP) and whose seat leg is WebRTC (an
//! in-process browser peer), all on 127.0.0.1: tones both ways with law conversion,
//! recording taps, the browser hanging up.

use super::*;
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicUsize;
use tokio::net::UdpSocket;

use tokio::time::timeout;

use crate::media::dtmf::testutil::{g711, power_at, tones};
use crate::media::g711::G711Law;
use crate::media::recording::{RecordingError, RecordingInfo};
use crate::media::session::{FinishedRecording, Tap};
use crate::media::webrtc::testutil::Browser;
use crate::media::webrtc::{WebRtcConfig, WebRtcLeg, WebRtcState};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Packets each way the test waits for (a second of audio).
const PACKETS: usize = 50;
const CALLER_HZ: f32 = 500.0;
const SEAT_HZ: f32 = 1800.0;

/// `freq` dominates a decoded 20 ms frame (the other tone is absent).
fn hears(payload: &[u8], law: G711Law, freq: f32, not: f32) -> bool {
    let pcm: Vec<i16> = payload.iter().map(|&b| law.decode(b)).collect();
    power_at(&pcm, freq) > 1e6 && power_at(&pcm, not) < 1e4
}

/// Counts the recorded frames that carry the expected tone on each channel.
#[derive(Clone, Default)]
struct ToneTaps {
    caller: Arc<AtomicUsize>,
    plateau: Arc<AtomicUsize>,
}

impl RecordSink for ToneTaps {
    fn caller_audio(&mut self, tap: Tap<'_>) {
        if hears(tap.payload, tap.law, CALLER_HZ, SEAT_HZ) {
            self.caller.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn plateau_audio(&mut self, tap: Tap<'_>) {
        if hears(tap.payload, tap.law, SEAT_HZ, CALLER_HZ) {
            self.plateau.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn tick(&mut self, _at: u64) {}
    fn end(&mut self, _at: u64) {}
    fn lost(&mut self, _samples: u64) {}
    fn finish(self: Box<Self>) -> Result<FinishedRecording, RecordingError> {
        Ok(RecordingInfo {
            path: "memory".into(),
            duration_ms: 0,
            bytes: 0,
            sha256: String::new(),
            hashed: Default::default(),
            unplaced_ms: 0,
        }
        .into())
    }
}

fn rtp(seq: u16, pt: u8, payload: &[u8]) -> Vec<u8> {
    let [s0, s1] = seq.to_be_bytes();
    let mut p = vec![0x80, pt, s0, s1, 0, 0, 0, 160, 0xCA, 0x11, 0xE2, 0x01];
    p.extend_from_slice(payload);
    p
}

const PCMA: LegCodecs = LegCodecs {
    audio_pt: 8,
    law: G711Law::Alaw,
    dtmf_pt: None,
    other_pt: None,
};

/// The caller's end of leg A: plain RTP, or SRTP with its own contexts.
struct Caller {
    socket: UdpSocket,
    srtp: Option<crate::media::srtp::SrtpLeg>,
    seq: u16,
}

impl Caller {
    /// Sends the next packet of `payload` (PCMA) to `to`.
    async fn say(&mut self, to: SocketAddr, payload: &[u8]) {
        self.seq = self.seq.wrapping_add(1);
        let packet = rtp(self.seq, 8, payload);
        let wire = match &mut self.srtp {
            Some(srtp) => srtp.protect_rtp(&packet).unwrap().to_vec(),
            None => packet,
        };
        self.socket.send_to(&wire, to).await.unwrap();
    }

    /// What the relay sent, as RTP.
    fn read(&mut self, wire: &[u8]) -> Vec<u8> {
        match &mut self.srtp {
            Some(srtp) => srtp.unprotect_rtp(wire).expect("authenticated").to_vec(),
            None => wire.to_vec(),
        }
    }
}

#[tokio::test]
async fn caller_over_udp_and_browser_over_webrtc_hear_each_other() {
    caller_and_browser_hear_each_other(42400, None).await;
}

#[tokio::test]
async fn an_srtp_caller_and_a_webrtc_browser_hear_each_other() {
    use crate::media::srtp::{KEY_MATERIAL_LEN, MasterKey, SrtpKeys, SrtpLeg, SrtpSuite};
    let (ours, theirs) = (
        MasterKey::new([3; KEY_MATERIAL_LEN]),
        MasterKey::new([4; KEY_MATERIAL_LEN]),
    );
    let keys = |local, remote| SrtpKeys {
        tag: 1,
        suite: SrtpSuite::AesCm128HmacSha1_32,
        local,
        remote,
    };
    let caller = SrtpLeg::new(&keys(theirs, ours)).unwrap();
    caller_and_browser_hear_each_other(42900, Some((keys(ours, theirs), caller))).await;
}

/// Tones both ways between a caller on leg A (SRTP with `srtp`: the relay's keys and the
/// caller's contexts) and a browser on leg B, recorded; then the browser leaves and a SIP
/// seat takes leg B. Ports from `base`.
async fn caller_and_browser_hear_each_other(
    base: u16,
    srtp: Option<(SrtpKeys, crate::media::srtp::SrtpLeg)>,
) {
    let pool = Arc::new(PortPool::new(base, base + 99).unwrap());
    let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
    let (relay_keys, caller_srtp) = srtp.unzip();
    let mut caller = Caller {
        socket: UdpSocket::bind((LOCALHOST, 0)).await.unwrap(),
        srtp: caller_srtp,
        seq: 0,
    };
    let a_local = relay.local_addr(Leg::A);
    relay.set_remote(Leg::A, caller.socket.local_addr().unwrap());
    relay.set_codecs(Leg::A, PCMA);
    relay.set_srtp(Leg::A, relay_keys);

    // The driver's part: offer in the caller's law, the seat answers (PCMU only here).
    let config = WebRtcConfig {
        bind_ip: LOCALHOST,
        public_ip: None,
        gather_timeout: Duration::from_secs(5),
    };
    let (mut leg, offer) = WebRtcLeg::offer(&config, G711Law::Alaw).await.unwrap();
    let (mut browser, answer) = Browser::answer(&offer).await;
    let codecs = leg.set_answer(&answer).await.unwrap();
    assert_eq!(codecs.law, G711Law::Ulaw, "the browser took PCMU");
    relay.set_codecs(Leg::B, codecs);
    relay.attach_webrtc(Leg::B, leg.take_io().unwrap());
    let taps = ToneTaps::default();
    relay.record(Box::new(taps.clone()));
    relay.bridge(Leg::B);
    relay.start(RelayMetrics::default(), Box::new(|_| {}));
    let mut state = leg.state();
    timeout(
        Duration::from_secs(5),
        state.wait_for(|s| *s == WebRtcState::Connected),
    )
    .await
    .expect("connected")
    .unwrap();
    browser.connected().await;

    let caller_says = g711(&tones(&[(CALLER_HZ, 8000.0)], 20), G711Law::Alaw);
    let seat_says = g711(&tones(&[(SEAT_HZ, 8000.0)], 20), G711Law::Ulaw);
    let (mut at_caller, mut at_browser) = (0, 0);
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while at_caller < PACKETS || at_browser < PACKETS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "at caller {at_caller}, at browser {at_browser}: {:?} {:?}",
            relay.stats(),
            leg.stats()
        );
        caller.say(a_local, &caller_says).await;
        browser.send(&seat_says).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok((n, from)) = caller.socket.try_recv_from(&mut buf) {
            assert_eq!(from, a_local);
            let packet = caller.read(&buf[..n]);
            assert_eq!(packet[1] & 0x7f, 8, "PCMA towards the caller");
            if hears(&packet[12..], G711Law::Alaw, SEAT_HZ, CALLER_HZ) {
                at_caller += 1;
            }
        }
        while let Ok(p) = browser.received.try_recv() {
            assert_eq!(p.header.payload_type, 0, "PCMU towards the browser");
            if hears(&p.payload, G711Law::Ulaw, CALLER_HZ, SEAT_HZ) {
                at_browser += 1;
            }
        }
    }
    assert!(
        taps.caller.load(Ordering::Relaxed) >= PACKETS,
        "caller taps"
    );
    assert!(
        taps.plateau.load(Ordering::Relaxed) >= PACKETS,
        "plateau taps"
    );
    let s = relay.stats();
    assert_eq!(s.b.dropped, 0, "{s:?}");
    assert_eq!(s.a.srtp_rejected, 0, "{s:?}");
    assert_eq!(relay.remote(Leg::B), None, "no UDP remote for a WebRTC leg");

    // The browser hangs up: the leg says so, the caller's audio goes on being taken.
    browser.close().await;
    timeout(
        Duration::from_secs(5),
        state.wait_for(|s| *s != WebRtcState::Connected),
    )
    .await
    .expect("leg sees the browser gone")
    .unwrap();
    leg.close().await;
    let before = relay.stats().a.rx_packets;
    caller.say(a_local, &caller_says).await;
    let s = wait_for_stats(&relay, |s| s.a.rx_packets > before).await;
    assert!(s.b.tx_packets >= PACKETS as u64);

    // Detached, the leg is back on its socket for a SIP seat.
    relay.detach_webrtc(Leg::B);
    let seat = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    relay.set_remote(Leg::B, seat.local_addr().unwrap());
    relay.set_codecs(Leg::B, PCMA);
    caller.say(a_local, &caller_says).await;
    let (n, from) = timeout(Duration::from_secs(2), seat.recv_from(&mut buf))
        .await
        .expect("the SIP seat hears the caller")
        .unwrap();
    assert_eq!(from, relay.local_addr(Leg::B));
    assert!(hears(&buf[12..n], G711Law::Alaw, CALLER_HZ, SEAT_HZ));
    let report = relay.finish().await;
    assert!(report.recorder.is_some());
}

async fn wait_for_stats(relay: &MediaRelay, cond: impl Fn(&RelayStats) -> bool) -> RelayStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let s = relay.stats();
        if cond(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "stats: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// User + system CPU of this process so far, in clock ticks (/proc/self/stat, Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (in parentheses): utime and stime are the 12th and 13th.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// CPU of `CALLS` bridged calls (UDP caller ↔ WebRTC seat) for 10 s. Both ends of each
/// DTLS-SRTP connection run in this process, so this is an upper bound of the router's part.
/// `cargo test --release --lib cpu_of_bridged_webrtc_legs -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, ~12 s"]
async fn cpu_of_bridged_webrtc_legs() {
    const CALLS: usize = 20;
    const SECONDS: u64 = 10;
    let pool = Arc::new(PortPool::new(42500, 42799).unwrap());
    let config = WebRtcConfig {
        bind_ip: LOCALHOST,
        public_ip: None,
        gather_timeout: Duration::from_secs(5),
    };
    let caller_says = rtp(0, 8, &[0xd5; 160]);
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let relay = MediaRelay::bind(LOCALHOST, &pool).await.unwrap();
        let caller = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        relay.set_remote(Leg::A, caller.local_addr().unwrap());
        relay.set_codecs(Leg::A, PCMA);
        let (mut leg, offer) = WebRtcLeg::offer(&config, G711Law::Alaw).await.unwrap();
        let (mut browser, answer) = Browser::answer(&offer).await;
        relay.set_codecs(Leg::B, leg.set_answer(&answer).await.unwrap());
        relay.attach_webrtc(Leg::B, leg.take_io().unwrap());
        relay.bridge(Leg::B);
        relay.start(RelayMetrics::default(), Box::new(|_| {}));
        browser.connected().await;
        calls.push((relay, leg, browser, caller));
    }
    let before = cpu_ticks();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (relay, leg, mut browser, caller) in calls {
        let caller_says = caller_says.clone();
        tasks.push(tokio::spawn(async move {
            let a_local = relay.local_addr(Leg::A);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut buf = [0u8; 2048];
            let (mut at_caller, mut at_browser) = (0u64, 0u64);
            let mut packet = caller_says;
            for seq in 0..SECONDS as u16 * 50 {
                tick.tick().await;
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                caller.send_to(&packet, a_local).await.unwrap();
                browser.send(&[0xff; 160]).await;
                while caller.try_recv_from(&mut buf).is_ok() {
                    at_caller += 1;
                }
                while browser.received.try_recv().is_ok() {
                    at_browser += 1;
                }
            }
            leg.close().await;
            (at_caller, at_browser)
        }));
    }
    let mut delivered = (0, 0);
    for task in tasks {
        let (c, b) = task.await.unwrap();
        delivered = (delivered.0 + c, delivered.1 + b);
    }
    let ticks = cpu_ticks() - before;
    let wall = started.elapsed().as_secs_f64();
    let cpu = ticks as f64 / 100.0; // USER_HZ
    println!(
        "{CALLS} bridged WebRTC calls, {wall:.1} s: CPU {cpu:.2} s ({:.0}% of one core), \
         delivered to callers {}, to browsers {} (of {} each way)",
        100.0 * cpu / wall,
        delivered.0,
        delivered.1,
        CALLS as u64 * SECONDS * 50
    );
    assert!(delivered.0 > 0 && delivered.1 > 0);
}
