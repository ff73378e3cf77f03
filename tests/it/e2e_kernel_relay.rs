//! The kernel media path (`[media] kernel_relay`, src/media/kernel) end to end: a real call
//! through the router, both sides ours (RTP sinks that talk back), bridged in the same
//! codec and not recorded, so the call qualifies; the audio must cross both ways, as one
//! continuous stream per side across the switch from userspace to the kernel, and the
//! kernel's counters must have grown, so the test fails if the packets went through
//! userspace.
//!
//! It needs root (or `CAP_BPF` and `CAP_NET_ADMIN`) to load the program: without them it
//! fails, naming what is missing. It does not test the fallback (the router relaying in
//! userspace when the program cannot load): that is `sas_media_kernel_relay_active` 0 and
//! every other media test.

use crate::common;

use common::media::*;
use common::*;
use sas_router::media::g711::G711Law;
use std::time::Duration;

const CALLER_HZ: f32 = 500.0;
const SEAT_HZ: f32 = 1800.0;

fn tone_stream(hz: f32, ms: u32) -> Vec<(u64, Vec<u8>)> {
    let mut s = RtpStream::new(G711Law::Alaw);
    s.tone(hz, ms);
    s.into_packets()
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
async fn a_plain_bridge_is_relayed_by_the_kernel_both_ways() {
    let dir = temp_dir("e2e-kernel-relay");
    let mut router = start(Options {
        prompts: Some(short_tone_prompts(&dir)),
        kernel_relay: true,
        // Recorded calls stay in userspace (the kernel does not feed the recorder yet).
        extra: "[recording]\nenabled = false\n".into(),
        ..Options::default()
    })
    .await;
    if router.metric("sas_media_kernel_relay_active") != 1.0 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let ids: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("CapEff:"))
            .collect();
        panic!(
            "the kernel relay did not load ({ids:?}): this test needs root, or CAP_BPF and \
             CAP_NET_ADMIN, and a kernel with BPF, TCX (>= 6.6) and ring buffers; the \
             router's warning says why"
        );
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
    wait_records(&router, 1).await;
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
    // The call's figures include the kernel's packets (the dead-leg timeouts read them).
    let relayed = router.metric("sas_rtp_packets_relayed_total{direction=\"caller_to_seat\"}");
    assert!(relayed >= kernel / 2.0, "relayed caller to seat: {relayed}");
    router.stop().await;
}
