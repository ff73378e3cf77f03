//! The kernel media path (`[media] kernel_relay`, src/media/kernel) end to end: a real call
//! through the router, both sides ours (RTP sinks that talk back), bridged in the same
//! codec, so the call qualifies; the audio must cross both ways, as one continuous stream
//! per side across the switch from userspace to the kernel, the kernel's counters must have
//! grown (so the test fails if the packets went through userspace), and the recording (on,
//! as shipped) must have both sides' audio, fed from the kernel's tap, nothing lost.
//!
//! A second test drives one call's relay directly: the call leaves the kernel at once when
//! a command changes what a leg hears (a prompt), comes back when bridged again, and the
//! stream each side receives stays one continuous stream through all of it.
//!
//! Both need root (or `CAP_BPF` and `CAP_NET_ADMIN`), BTF and TCX (kernel >= 6.6) to load the
//! program: without them they fail, naming what is missing. So they are `#[ignore]`d in the
//! plain suite, and `tests/run.sh` runs them (`cargo test --test it e2e_kernel_relay --
//! --ignored`) wherever the machine has all of that, or prints a banner saying what it
//! lacks. They do not test the fallback (the router relaying in
//! userspace when the program cannot load): that is `sas_media_kernel_relay_active` 0 and
//! every other media test.

use crate::common;

use common::media::*;
use common::*;
use sas_router::media::g711::G711Law;
use sas_router::media::kernel::{self, Legs};
use sas_router::media::playback::Announcement;
use sas_router::media::ports::PortPool;
use sas_router::media::relay::{KernelPath, Leg, MediaRelay, RelayMetrics};
use sas_router::media::sdp::LegCodecs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLER_HZ: f32 = 500.0;
const SEAT_HZ: f32 = 1800.0;

fn tone_stream(hz: f32, ms: u32) -> Vec<(u64, Vec<u8>)> {
    let mut s = RtpStream::new(G711Law::Alaw);
    s.tone(hz, ms);
    s.into_packets()
}

/// Fails, naming what the kernel relay needs.
fn not_loaded() -> ! {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let ids: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("CapEff:"))
        .collect();
    panic!(
        "the kernel relay did not load ({ids:?}): this test needs root, or CAP_BPF and \
         CAP_NET_ADMIN, and a kernel with BPF, TCX (>= 6.6) and ring buffers; the warning \
         logged says why"
    );
}

/// One SSRC, the sequence numbers one by one, timestamps that move on by whole packets.
fn assert_one_stream(got: &[RtpPacket], side: &str) {
    assert!(
        got.iter().all(|p| p.ssrc == got[0].ssrc),
        "{side}: one SSRC"
    );
    for w in got.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{side}: sequence continuous"
        );
        let step = w[1].ts.wrapping_sub(w[0].ts);
        assert!(
            (1..8000).contains(&step) && step % FRAME_SAMPLES as u32 == 0,
            "{side}: timestamps move on by packets at seq {}: {step}",
            w[1].seq
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "loads an eBPF program: tests/run.sh runs it where the machine allows (root, BTF, TCX), and says loudly where it does not"]
async fn a_plain_bridge_is_relayed_by_the_kernel_both_ways() {
    let dir = temp_dir("e2e-kernel-relay");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut router = start(Options {
        prompts: Some(short_tone_prompts(&dir)),
        data: Some(data.clone()),
        kernel_relay: true,
        ..Options::default()
    })
    .await;
    if router.metric("sas_media_kernel_relay_active") != 1.0 {
        not_loaded();
    }
    let seat_sink = RtpSink::bind();
    let (seat, port) = media_seat(
        router.sip,
        &empty_pcap(&dir),
        Some(seat_sink.port()),
        1,
        200,
    );
    register(router.sip, "arm1", port).await;
    // PCMA first, as the seat answers: no transcoding.
    let caller_sink = RtpSink::bind();
    let caller = media_caller(
        router.sip,
        &MediaCall {
            rtp_port: Some(caller_sink.port()),
            info_at_ms: 6000,
            tail_ms: 500,
            offer: "8 0 101",
            ..MediaCall::new("15", &empty_pcap(&dir))
        },
    );
    let caller_talks = caller_sink
        .play_to_sender(tone_stream(CALLER_HZ, 7000), Duration::from_secs(5))
        .await;
    let seat_talks = seat_sink
        .play_to_sender(tone_stream(SEAT_HZ, 5000), Duration::from_secs(10))
        .await;
    let seat_sent = seat_talks.join().unwrap();
    assert!(finish(caller, Duration::from_secs(30)).await, "caller");
    assert!(finish(seat, Duration::from_secs(10)).await, "seat");
    // Read once the call ended: its media's end folds the kernel's last counters in.
    let record = wait_records(&router, 1).await.pop().unwrap();
    let kernel = router.metric("sas_media_kernel_relayed_total");
    let caller_sent = caller_talks.join().unwrap();
    let (to_caller, to_seat) = (caller_sink.stop(), seat_sink.stop());

    // Most packets went by the kernel: all but the first of each side.
    let both = (seat_sent + to_seat.len()) as f64;
    assert!(
        kernel > 0.95 * both,
        "kernel relayed {kernel} of about {both} bridged packets"
    );
    // Nothing lost in the seat's 5 s (the caller heard prompts before).
    assert!(
        to_caller.len() >= seat_sent,
        "the caller got {} packets, the seat sent {seat_sent}",
        to_caller.len()
    );
    assert!(
        to_seat.len() > 200,
        "the seat got {} packets",
        to_seat.len()
    );
    assert!(caller_sent > 300);
    assert_one_stream(&to_caller, "to the caller");
    assert_one_stream(&to_seat, "to the seat");
    let end = to_caller.last().unwrap().arrival.as_secs_f32();
    assert!(tone_share(&heard(&to_caller, end - 2.0, end), SEAT_HZ) > 0.8);
    let end = to_seat.last().unwrap().arrival.as_secs_f32();
    assert!(tone_share(&heard(&to_seat, end - 2.0, end), CALLER_HZ) > 0.8);
    // The call's figures include the kernel's packets (the dead-leg timeouts read them), and
    // so do its quality figures (fed from the tap).
    let relayed = router.metric("sas_rtp_packets_relayed_total{direction=\"caller_to_seat\"}");
    assert!(relayed >= kernel / 2.0, "relayed caller to seat: {relayed}");
    let q = record.quality.expect("quality");
    assert!(
        q.caller.packets_received as usize >= to_seat.len() && q.caller.packets_lost == 0,
        "{q:?}"
    );
    assert!(q.seat.packets_received as usize >= seat_sent, "{q:?}");

    // The recording: the caller on the left, the seat on the right, nothing missing.
    let rec = record.recording.expect("recorded");
    assert_eq!(rec.unplaced_ms, 0, "{rec:?}");
    let (rate, channels) = read_wav_channels(&data.join("recordings").join(&rec.path)).unwrap();
    assert_eq!((rate, channels.len()), (8000, 2));
    let seconds = channels[0].len() as f32 / 8000.0;
    let window = |ch: &[i16]| {
        ch[((seconds - 3.0) * 8000.0) as usize..((seconds - 1.0) * 8000.0) as usize].to_vec()
    };
    assert!(
        tone_share(&window(&channels[0]), CALLER_HZ) > 0.8,
        "the caller on the left"
    );
    assert!(
        tone_share(&window(&channels[1]), SEAT_HZ) > 0.8,
        "the seat on the right"
    );
    router.stop().await;
}

const PCMA: LegCodecs = LegCodecs {
    audio_pt: 8,
    law: G711Law::Alaw,
    dtmf_pt: Some(101),
    other_pt: None,
};

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("IPv6 {a}"),
    }
}

/// A phone: sends numbered 20 ms packets from its one socket, receives what is sent to it.
struct Phone {
    socket: UdpSocket,
    ssrc: u32,
    seq: u16,
}

impl Phone {
    fn new(ssrc: u32) -> Phone {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        Phone {
            socket,
            ssrc,
            seq: 1000,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn say(&mut self, to: SocketAddr) {
        self.seq = self.seq.wrapping_add(1);
        let ts = u32::from(self.seq) * 160;
        let packet = rtp_packet(false, 8, self.seq, ts, self.ssrc, &[0xd5; 160]);
        self.socket.send_to(&packet, to).unwrap();
    }

    /// The next packet's sequence number, or `None` if nothing came.
    fn hear(&self) -> Option<u16> {
        let mut buf = [0; 2048];
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        (n >= 12).then(|| u16::from_be_bytes([buf[2], buf[3]]))
    }
}

/// Waits until the map entry for `at` is there (`true`) or gone (`false`).
fn until_entry(legs: &Legs, at: SocketAddr, there: bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while legs.read(v4(at)).is_some() != there {
        assert!(Instant::now() < deadline, "entry for {at} never {there}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `n` packets each way, each heard on the other side; what the caller heard.
fn talk(caller: &mut Phone, seat: &mut Phone, a: SocketAddr, b: SocketAddr, n: usize) -> Vec<u16> {
    let mut heard = Vec::new();
    for _ in 0..n {
        caller.say(a);
        assert!(seat.hear().is_some(), "the seat hears the caller");
        seat.say(b);
        heard.push(seat_heard(caller));
    }
    heard
}

fn seat_heard(caller: &Phone) -> u16 {
    caller.hear().expect("the caller hears the seat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "loads an eBPF program: tests/run.sh runs it where the machine allows (root, BTF, TCX), and says loudly where it does not"]
async fn a_prompt_takes_the_call_out_of_the_kernel_at_once_and_the_streams_stay_continuous() {
    let Some(legs) = kernel::start(Ipv4Addr::LOCALHOST.into()) else {
        not_loaded();
    };
    let pool = Arc::new(PortPool::new(46_000, 46_099).unwrap());
    let relay = MediaRelay::bind(Ipv4Addr::LOCALHOST.into(), &pool)
        .await
        .unwrap();
    let (mut caller, mut seat) = (Phone::new(0xca11), Phone::new(0x5ea7));
    let (a, b) = (relay.local_addr(Leg::A), relay.local_addr(Leg::B));
    relay.set_remote(Leg::A, caller.addr());
    relay.set_remote(Leg::B, seat.addr());
    relay.set_codecs(Leg::A, PCMA);
    relay.set_codecs(Leg::B, PCMA);
    let metrics = RelayMetrics {
        kernel: Some(KernelPath {
            legs,
            relayed: None,
        }),
        ..RelayMetrics::default()
    };
    relay.start(metrics, Box::new(|_| {}));
    relay.bridge(Leg::B);

    // The first packets latch both legs in userspace; the call then goes to the kernel.
    let mut heard = talk(&mut caller, &mut seat, a, b, 2);
    until_entry(legs, a, true);
    until_entry(legs, b, true);
    heard.extend(talk(&mut caller, &mut seat, a, b, 20));
    let counted = |at| legs.read(v4(at)).map_or(0, |v| v.packets);
    assert!(
        counted(a) >= 19 && counted(b) >= 19,
        "the kernel relayed them: {} and {}",
        counted(a),
        counted(b)
    );

    // A prompt for the caller (an empty one): out of the kernel before anything else.
    // Whatever the caller hears meanwhile is part of its one stream.
    relay.play(Announcement::default(), 1);
    until_entry(legs, a, false);
    until_entry(legs, b, false);
    seat.say(b);
    let prompt = Instant::now();
    while prompt.elapsed() < Duration::from_millis(100) {
        heard.extend(caller.hear());
    }

    // Bridged again: userspace for a packet, then the kernel again.
    relay.bridge(Leg::B);
    heard.extend(talk(&mut caller, &mut seat, a, b, 2));
    until_entry(legs, b, true);
    heard.extend(talk(&mut caller, &mut seat, a, b, 20));
    assert!(counted(b) >= 19, "back in the kernel: {}", counted(b));
    let stats = relay.finish().await.stats;
    assert!(
        stats.a.rx_packets >= 44 && stats.b.tx_packets >= 44,
        "the kernel's packets are in the call's counters: {stats:?}"
    );
    assert!(
        legs.read(v4(a)).is_none(),
        "the call's end removed its entries"
    );

    // One stream to the caller through userspace, kernel, userspace and kernel again.
    for w in heard.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "continuous: {heard:?}");
    }
}
