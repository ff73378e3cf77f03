//! Media load generator for `loadtest/media_sidebyside.sh`: N concurrent G.711 calls through
//! a relay, 20 ms RTP packets both ways (50/s each way per call, real headers: sequence,
//! timestamp, SSRC; a 1000 Hz tone from the caller, 440 Hz from the seat) for `--hold`
//! seconds, then per-call and total counts: packets sent and received, loss, sequence gaps,
//! late and duplicate packets, jitter.
//!
//! ```sh
//! cargo run --release --example mediagen -- router --router 127.0.0.1:15060 --calls 2000
//! cargo run --release --example mediagen -- rtpengine --ng 127.0.0.1:22222 --calls 2000
//! ```
//!
//! Signalling: `router` is the SIP trunk and every registered seat of a sas-router (module
//! [`sip`]); `rtpengine` drives rtpengine's ng protocol (module [`ng`]). Either way both
//! relays carry the same media from the same generator ([`rtp`]: one socket, one thread,
//! `sendmmsg`/`recvmmsg`). With `--relay-pid` it also measures the relay's CPU (utime +
//! stime from /proc) and RSS over the steady window, and prints the relayed packets per
//! CPU-second of the relay. The last line, `RESULT k=v …`, is for scripts.

mod ng;
mod rtp;
mod sip;
#[path = "../sip_text.rs"]
mod sip_text;
mod stats;

use std::io::Write;
use std::net::{SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use rtp::Engine;

#[derive(Parser)]
#[command(about = "G.711 media load through sas-router or rtpengine")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
    /// Concurrent calls.
    #[arg(long, default_value_t = 100, global = true)]
    calls: usize,
    /// Seconds of media both ways once every call is set up.
    #[arg(long, default_value_t = 10, global = true)]
    hold: u64,
    /// Seconds at the start of the hold left out of the measurement window.
    #[arg(long, default_value_t = 2, global = true)]
    warm_up: u64,
    /// Calls set up (and hung up) per second.
    #[arg(long, default_value_t = 200, global = true)]
    rate: u32,
    /// The generator's RTP port (every endpoint's), RTCP on the next one.
    #[arg(long, default_value_t = 17400, global = true)]
    rtp_port: u16,
    /// The relay's process, to measure its CPU and RSS.
    #[arg(long, global = true)]
    relay_pid: Option<u32>,
    /// Write one line per call (tab-separated) to this file.
    #[arg(long, global = true)]
    per_call: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Mode {
    /// Through sas-router: trunk calls to registered seats.
    Router {
        /// The router's SIP UDP address.
        #[arg(long, default_value = "127.0.0.1:5060")]
        router: SocketAddr,
        /// Service number dialled by the trunk.
        #[arg(long, default_value = "15")]
        service: String,
        /// Seat usernames are PREFIX0000, PREFIX0001…
        #[arg(long, default_value = "load")]
        prefix: String,
        /// Every seat's SIP password.
        #[arg(long, default_value = "load-pw")]
        password: String,
    },
    /// Through rtpengine: offer/answer/delete on its ng port.
    Rtpengine {
        #[arg(long, default_value = "127.0.0.1:22222")]
        ng: SocketAddr,
    },
}

/// Ends every call (BYE or ng delete) once the media stopped; says how many ended.
type HangUp = Box<dyn FnOnce(&mut Engine) -> anyhow::Result<String>>;

/// Where each call's endpoints send: the relay's address for the caller and for the seat.
pub struct Setup {
    pub caller: Vec<Option<SocketAddrV4>>,
    pub seat: Vec<Option<SocketAddrV4>>,
    pub bridged: usize,
    pub failed: usize,
}

impl Setup {
    pub fn new(calls: usize) -> Self {
        Setup {
            caller: vec![None; calls],
            seat: vec![None; calls],
            bridged: 0,
            failed: 0,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.calls == 0 || args.calls > 65_536 {
        bail!("--calls must be 1..=65536 (one loopback address per endpoint)");
    }
    if args.hold <= args.warm_up {
        bail!("--hold must be longer than --warm-up");
    }
    let mut engine = Engine::bind(args.rtp_port, args.calls)
        .with_context(|| format!("binding RTP port {}", args.rtp_port))?;
    // The relay's RSS before the calls (after the seats registered): the base of RSS per call.
    let mut rss0 = args.relay_pid.and_then(rtp::rss_kib);
    let t0 = Instant::now();
    let deadline = Duration::from_secs(args.calls as u64 / u64::from(args.rate) + 30);
    let (setup, hang_up): (Setup, HangUp) = match &args.mode {
        Mode::Router {
            router,
            service,
            prefix,
            password,
        } => {
            let mut sip = sip::RouterSip::new(
                *router,
                args.calls,
                prefix,
                password,
                service,
                args.rtp_port,
            )?;
            let n = sip.register(args.rate.max(500), deadline)?;
            if n < args.calls {
                bail!("only {n} of {} seats registered", args.calls);
            }
            eprintln!(
                "{n} seats registered in {:.1} s",
                t0.elapsed().as_secs_f64()
            );
            rss0 = args.relay_pid.and_then(rtp::rss_kib);
            let rate = args.rate;
            let setup = while_draining(&mut engine, || sip.call(rate, deadline))?;
            if sip.unknown_invites > 0 {
                eprintln!("{} seat INVITEs named no call of ours", sip.unknown_invites);
            }
            let hang_up = move |engine: &mut Engine| {
                let ended = while_draining(engine, || sip.hang_up(rate, deadline))?;
                Ok(format!("hung_up={ended}"))
            };
            (setup, Box::new(hang_up))
        }
        Mode::Rtpengine { ng } => {
            let mut ng = ng::Ng::connect(*ng)?;
            ng.ping().context("rtpengine ng ping")?;
            let calls = args.calls;
            let setup = while_draining(&mut engine, || ng.setup(calls, args.rtp_port))?;
            let hang_up = move |_: &mut Engine| Ok(format!("deleted={}", ng.delete(calls)));
            (setup, Box::new(hang_up))
        }
    };
    eprintln!(
        "{} calls bridged, {} failed, in {:.1} s; streaming {} s",
        setup.bridged,
        setup.failed,
        t0.elapsed().as_secs_f64(),
        args.hold
    );
    for i in 0..args.calls {
        let (caller, seat) = (engine.index(0, i), engine.index(1, i));
        if let (Some(c), Some(s)) = (setup.caller[i], setup.seat[i]) {
            engine.endpoints[caller].remote = Some(c);
            engine.endpoints[seat].remote = Some(s);
        }
        engine.endpoints[caller].peer = Some(seat);
        engine.endpoints[seat].peer = Some(caller);
    }
    let report = engine.stream(
        Duration::from_secs(args.hold),
        Duration::from_secs(args.warm_up),
        Duration::from_millis(300),
        args.relay_pid,
    )?;
    let t1 = Instant::now();
    let ended = hang_up(&mut engine)?;
    eprintln!("{ended} in {:.1} s", t1.elapsed().as_secs_f64());
    let totals = Totals::of(&engine);
    if let Some(path) = &args.per_call {
        write_per_call(path, &engine, args.calls)?;
    }
    print_report(&args, &setup, &report, &totals, rss0, &ended);
    Ok(())
}

/// Runs `f` (signalling) on a thread while this one keeps the RTP socket drained.
fn while_draining<T: Send>(
    engine: &mut Engine,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    thread::scope(|scope| {
        let h = scope.spawn(f);
        while !h.is_finished() {
            engine.drain()?;
            thread::sleep(Duration::from_millis(5));
        }
        h.join()
            .map_err(|_| anyhow::anyhow!("signalling thread panicked"))?
    })
}

/// Sums over every endpoint that streamed.
#[derive(Default)]
struct Totals {
    sent: u64,
    received: u64,
    lost: u64,
    gaps: u64,
    late: u64,
    duplicates: u64,
    jitter_mean_ms: f64,
    jitter_max_ms: f64,
    /// Calls with any loss.
    calls_with_loss: u64,
}

impl Totals {
    fn of(engine: &Engine) -> Self {
        let mut t = Totals::default();
        let (mut jitter_sum, mut streams) = (0.0, 0);
        let mut lossy = std::collections::HashSet::new();
        for (i, e) in engine.endpoints.iter().enumerate() {
            let Some(peer) = e.peer else { continue };
            let expected = engine.endpoints[peer].sent;
            if expected == 0 {
                continue;
            }
            t.sent += expected;
            t.received += e.rx.unique();
            let lost = expected.saturating_sub(e.rx.unique());
            if lost > 0 {
                lossy.insert(i.min(peer));
            }
            t.lost += lost;
            t.gaps += e.rx.gaps;
            t.late += e.rx.late;
            t.duplicates += e.rx.duplicates;
            let (j, jmax) = e.rx.jitter_ms();
            jitter_sum += j;
            streams += 1;
            t.jitter_max_ms = t.jitter_max_ms.max(jmax);
        }
        t.jitter_mean_ms = if streams > 0 {
            jitter_sum / f64::from(streams)
        } else {
            0.0
        };
        t.calls_with_loss = lossy.len() as u64;
        t
    }
}

fn write_per_call(path: &std::path::Path, engine: &Engine, calls: usize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "call\tdirection\tsent\treceived\tlost\tgaps\tlate\tduplicates\tjitter_ms\tjitter_max_ms"
    )?;
    for i in 0..calls {
        for (dir, to) in [
            ("caller->seat", engine.index(1, i)),
            ("seat->caller", engine.index(0, i)),
        ] {
            let e = &engine.endpoints[to];
            let sent = e.peer.map_or(0, |p| engine.endpoints[p].sent);
            let (j, jmax) = e.rx.jitter_ms();
            writeln!(
                out,
                "{i}\t{dir}\t{sent}\t{}\t{}\t{}\t{}\t{}\t{j:.2}\t{jmax:.2}",
                e.rx.unique(),
                sent.saturating_sub(e.rx.unique()),
                e.rx.gaps,
                e.rx.late,
                e.rx.duplicates,
            )?;
        }
    }
    Ok(())
}

fn print_report(
    args: &Args,
    setup: &Setup,
    r: &rtp::StreamReport,
    t: &Totals,
    rss0: Option<u64>,
    ended: &str,
) {
    let mode = match args.mode {
        Mode::Router { .. } => "router",
        Mode::Rtpengine { .. } => "rtpengine",
    };
    let secs = r.window.as_secs_f64();
    let pps = r.window_packets as f64 / secs;
    let loss_pct = if t.sent > 0 {
        100.0 * t.lost as f64 / t.sent as f64
    } else {
        0.0
    };
    println!(
        "{mode}: {} calls ({} bridged, {} failed), {} s of media, window {secs:.1} s",
        args.calls, setup.bridged, setup.failed, args.hold
    );
    println!(
        "packets: sent {} received {} lost {} ({loss_pct:.3} %), {} calls with loss; \
         gaps {} late {} duplicates {}; jitter mean {:.2} ms, max {:.2} ms",
        t.sent,
        t.received,
        t.lost,
        t.calls_with_loss,
        t.gaps,
        t.late,
        t.duplicates,
        t.jitter_mean_ms,
        t.jitter_max_ms
    );
    let gen_us = r.gen_cpu.as_secs_f64() * 1e6 / r.window_io.max(1) as f64;
    println!(
        "relayed {pps:.0} packets/s over the window; generator CPU {:.1} % of a core, \
         {gen_us:.2} µs per packet sent or received (sending {:.2} s, receiving {:.2} s of \
         the hold, {} waits for a full send buffer); {} late ticks, {} skipped; {} stray \
         packets; {} dropped by the generator's socket",
        100.0 * r.gen_cpu.as_secs_f64() / secs,
        r.send_time.as_secs_f64(),
        r.recv_time.as_secs_f64(),
        r.send_waits,
        r.late_ticks,
        r.skipped_ticks,
        r.stray,
        r.socket_drops
    );
    let mut result = format!(
        "RESULT mode={mode} calls={} bridged={} failed={} sent={} received={} lost={} \
         loss_pct={loss_pct:.4} gaps={} late={} dup={} jitter_ms={:.2} jitter_max_ms={:.2} \
         pps={pps:.0} gen_us_per_pkt={gen_us:.2} late_ticks={} skipped_ticks={} gen_drops={} {ended}",
        args.calls,
        setup.bridged,
        setup.failed,
        t.sent,
        t.received,
        t.lost,
        t.gaps,
        t.late,
        t.duplicates,
        t.jitter_mean_ms,
        t.jitter_max_ms,
        r.late_ticks,
        r.skipped_ticks,
        r.socket_drops
    );
    if let Some(cpu) = r.relay_cpu {
        let cpu_s = cpu.as_secs_f64();
        let per_cpu_s = r.window_packets as f64 / cpu_s.max(1e-9);
        println!(
            "relay CPU {:.1} % of a core over the window: {per_cpu_s:.0} packets relayed per CPU-second",
            100.0 * cpu_s / secs
        );
        result += &format!(
            " relay_cpu_pct={:.1} pkts_per_cpu_s={per_cpu_s:.0}",
            100.0 * cpu_s / secs
        );
    }
    if let Some(rss) = r.relay_rss_kib {
        let per_call = rss.saturating_sub(rss0.unwrap_or(0)) as f64 / setup.bridged.max(1) as f64;
        println!(
            "relay RSS {:.1} MiB ({:.1} MiB before the calls): {per_call:.1} KiB per concurrent call",
            rss as f64 / 1024.0,
            rss0.unwrap_or(0) as f64 / 1024.0
        );
        result += &format!(
            " rss_kib={rss} rss0_kib={} kib_per_call={per_call:.1}",
            rss0.unwrap_or(0)
        );
    }
    println!("{result}");
}
