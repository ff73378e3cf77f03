//! Recordings are evidence: end to end, with SIPp peers and a raw-UDP caller, the WAV
//! lasts from the answer to the end of the call (within 40 ms), places the caller's audio
//! by its RTP timestamps (a burst after a network stall loses nothing), and holds silence
//! where nobody sent anything.

use crate::common;

use common::media::*;
use common::*;
use sas_router::media::g711::G711Law;
use sas_router::store::record::{CallRecord, Outcome};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CALLER_HZ: f32 = 500.0;
/// 10 ms analysis windows.
const WINDOW: usize = 80;

async fn one_record(router: &Router) -> CallRecord {
    wait_records(router, 1).await.pop().unwrap()
}

/// The recording's two channels, after checking its length against the call's answer
/// (by the router or a seat) and end.
fn recording(data: &Path, r: &CallRecord) -> Vec<Vec<i16>> {
    let rec = r.recording.as_ref().expect("recording in the record");
    let path: PathBuf = data.join("recordings").join(&rec.path);
    let (rate, channels) = read_wav_channels(&path).unwrap();
    assert_eq!((rate, channels.len()), (8000, 2));
    let wav_ms = channels[0].len() as i64 / 8;
    let answered = r.caller_answered_at.or(r.answered_at).expect("answered") as i64;
    let call_ms = r.ended_at.expect("ended") as i64 - answered;
    eprintln!("recording: {wav_ms} ms of WAV for {call_ms} ms answered");
    assert!(
        (wav_ms - call_ms).abs() <= 40,
        "{wav_ms} ms of WAV for {call_ms} ms answered"
    );
    assert!((wav_ms - rec.duration_ms as i64).abs() <= 1, "{rec:?}");
    assert_eq!(rec.unplaced_ms, 0, "every packet received is in the file");
    channels
}

/// Which 10 ms windows of `channel` carry sound.
fn loud_windows(channel: &[i16]) -> Vec<bool> {
    channel
        .chunks(WINDOW)
        .map(|w| w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64 > 1e5)
        .collect()
}

/// The reported loss: the caller's packets are held 300 ms by the network, then the
/// backlog arrives at once. Every packet reached the router; every one must be in the
/// recording, where it was spoken: the 3 s tone is one piece, 3 s long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_after_a_300_ms_stall_is_recorded_whole() {
    let dir = temp_dir("e2e-rec-burst");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut router = start(Options {
        prompts: Some(short_tone_prompts(&dir)),
        data: Some(data.clone()),
        ..Options::default()
    })
    .await;
    // The caller hears the router on a sink of ours and talks back from it, raw UDP.
    let empty = empty_pcap(&dir);
    let (caller, sink) = listening_caller(router.sip, &empty, 4500, 500);
    let mut talk = RtpStream::new(G711Law::Alaw);
    talk.tone(CALLER_HZ, 3000);
    let mut packets = talk.into_packets();
    assert_eq!(packets.len(), 150);
    // Packets 50..65 (1.0 s to 1.3 s) are stuck, then sent at once with packet 65.
    let burst_at = packets[65].0;
    for p in &mut packets[50..65] {
        p.0 = burst_at;
    }
    let talking = sink.play_to_sender(packets, Duration::from_secs(20)).await;
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert_eq!(talking.join().unwrap(), 150);
    sink.stop();

    let r = one_record(&router).await;
    assert_ne!(r.outcome, Some(Outcome::Failed), "{r:?}");
    let channels = recording(&data, &r);
    let loud = loud_windows(&channels[0]);
    let first = loud
        .iter()
        .position(|&l| l)
        .expect("the caller is recorded");
    let last = loud.iter().rposition(|&l| l).unwrap();
    let holes: Vec<usize> = (first..=last).filter(|&w| !loud[w]).collect();
    eprintln!(
        "caller tone: {} ms from first to last sound, {} ms of holes",
        (last - first + 1) * 10,
        holes.len() * 10
    );
    assert!(
        holes.is_empty(),
        "silent 10 ms windows in the tone: {holes:?}"
    );
    let tone_ms = (last - first + 1) * 10;
    assert!(
        (2980..=3020).contains(&tone_ms),
        "{tone_ms} ms of a 3000 ms tone"
    );
    let tone = &channels[0][first * WINDOW..(last + 1) * WINDOW];
    assert!(tone_share(tone, CALLER_HZ) > 0.9, "one clean tone");
    router.stop().await;
}

/// A quiet line: neither the caller nor the seat sends a single packet for 9 s (VAD
/// phones). The recording still lasts the 9 s, all silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_rtp_is_recorded_for_as_long_as_it_lasted() {
    let dir = temp_dir("e2e-rec-quiet");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // No prompts: the router does not answer; the seat does, then nobody sends audio.
    let mut router = start(Options {
        data: Some(data.clone()),
        ..Options::default()
    })
    .await;
    let empty = empty_pcap(&dir);
    let (seat, seat_port) = media_seat(router.sip, &empty, None, 1, 300);
    register(router.sip, "arm1", seat_port).await;
    let (caller, sink) = listening_caller(router.sip, &empty, 8500, 500);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "caller scenario"
    );
    assert!(finish(seat, Duration::from_secs(10)).await, "seat scenario");
    let got = sink.stop();
    assert!(got.is_empty(), "the caller got {} packets", got.len());

    let r = one_record(&router).await;
    assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
    let channels = recording(&data, &r);
    let seconds = channels[0].len() as f32 / 8000.0;
    assert!(seconds > 8.9, "{seconds} s recorded of a 9 s call");
    // A-law has no zero: its silence code decodes to 8.
    assert!(channels.iter().flatten().all(|&s| s == 8), "silence");
    router.stop().await;
}
