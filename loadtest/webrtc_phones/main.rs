//! WebRTC phones for `loadtest/webrtc.sh`: N seats register over SIP WebSocket (RFC 7118)
//! and answer every INVITE with a real WebRTC peer connection (the `webrtc` crate, as a
//! browser would: ICE host candidates, DTLS-SRTP), talk a G.711 tone and count the RTP
//! that reaches them.
//!
//! Why a separate process: measured inside the router's own test binary, the "browsers"
//! share the process and their encryption is counted with the router's. Here the router's
//! CPU is its own, and every packet crosses real sockets both ways.
//!
//! ```sh
//! cargo run --release --example webrtc_phones -- --ws ws://127.0.0.1:15066/ --phones 20
//! ```
//!
//! Phone `i` is seat `{prefix}{i:04}` (the `loadNNNN` seats of `loadtest/router.sh`): one
//! task, one WebSocket, one call at a time. The driver stops once every phone has seen
//! `--calls` calls hung up, after `--max-seconds`, or on SIGINT/SIGTERM, and prints one
//! line per phone and a total (calls answered, connected, RTP packets sent and received).

mod peer;
mod sip;
#[path = "../sip_text.rs"]
mod sip_text;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

#[derive(Parser)]
#[command(about = "SIP-over-WebSocket WebRTC phones that answer calls, for load tests")]
struct Args {
    /// The router's SIP WebSocket listener (`[sip] ws`), e.g. ws://127.0.0.1:15066/.
    #[arg(long)]
    ws: String,
    /// How many phones (seats) to register.
    #[arg(long, default_value_t = 20)]
    phones: usize,
    /// Seat usernames are PREFIX0000, PREFIX0001…
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Every seat's SIP password.
    #[arg(long, default_value = "load-pw")]
    password: String,
    /// Calls each phone answers and sees hung up before it stops.
    #[arg(long, default_value_t = 1)]
    calls: u64,
    /// Stop anyway after this many seconds.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
}

/// One phone's totals, updated by its SIP task and its calls' media tasks.
#[derive(Default)]
pub struct Counts {
    registered: AtomicU64,
    /// INVITEs answered 200 with a WebRTC answer.
    answered: AtomicU64,
    /// Calls whose peer connection reached `connected` (ICE and DTLS done).
    connected: AtomicU64,
    /// Calls hung up (BYE answered).
    ended: AtomicU64,
    /// INVITEs refused: the offer could not be answered.
    refused: AtomicU64,
    /// RTP packets written to the phone's track.
    sent: AtomicU64,
    /// RTP packets that arrived on the remote track (decrypted).
    received: AtomicU64,
    /// Packets missing between two received ones (sequence number gaps): loss in the
    /// middle of a call, unlike what the router drops before the connection is up.
    gaps: AtomicU64,
}

impl Counts {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn values(&self) -> [u64; 8] {
        [
            &self.registered,
            &self.answered,
            &self.connected,
            &self.ended,
            &self.refused,
            &self.sent,
            &self.received,
            &self.gaps,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

fn line(name: &str, v: [u64; 8]) -> String {
    format!(
        "{name}: registered={} answered={} connected={} ended={} refused={} sent={} received={} \
         gaps={}",
        v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut phones = JoinSet::new();
    let mut all = Vec::new();
    for i in 0..args.phones {
        let user = format!("{}{i:04}", args.prefix);
        let counts = Arc::new(Counts::default());
        all.push((user.clone(), Arc::clone(&counts)));
        let (url, password, calls) = (args.ws.clone(), args.password.clone(), args.calls);
        phones.spawn(async move {
            let result = sip::Phone::run(&url, &user, &password, calls, counts).await;
            if let Err(e) = result {
                eprintln!("{user}: {e:#}");
            }
        });
    }
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = async { while phones.join_next().await.is_some() {} } => {}
        _ = tokio::time::sleep(Duration::from_secs(args.max_seconds)) => {
            eprintln!("--max-seconds {} reached", args.max_seconds);
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    phones.abort_all();
    let mut total = [0; 8];
    for (user, counts) in &all {
        let v = counts.values();
        println!("{}", line(&format!("phone {user}"), v));
        for (t, x) in total.iter_mut().zip(v) {
            *t += x;
        }
    }
    println!("{}", line(&format!("total {} phones", all.len()), total));
    Ok(())
}
