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
//! relays carry the same media from the same generator ([`rtp`]: one socket, a sending and a
//! receiving thread, `sendmmsg`/`recvmmsg`; [`batch`]). With `--relay-pid` it also measures the relay's CPU (utime +
//! stime from /proc) and RSS over the steady window, and prints the relayed packets per
//! CPU-second of the relay. The last line, `RESULT k=v …`, is for scripts.

mod batch;
#[path = "../bencode.rs"]
mod bencode;
mod ng;
mod procfs;
mod rtp;
#[path = "../sdp_text.rs"]
mod sdp_text;
mod sip;
#[path = "../sip_text.rs"]
mod sip_text;
mod stats;

use std::collections::BTreeMap;
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

/// Where each call's endpoints send: the relay's address for the caller and for the seat;
/// how the set-up went.
pub struct Setup {
    pub caller: Vec<Option<SocketAddrV4>>,
    pub seat: Vec<Option<SocketAddrV4>>,
    pub bridged: usize,
    pub failed: usize,
    /// Final refusals: by SIP status code, or rtpengine's error reason.
    pub refused: BTreeMap<String, u64>,
    /// Set-ups (or hang-ups) that got no answer after every retransmission.
    pub timeouts: u64,
    /// Requests and answers sent again for want of a reply.
    pub retransmits: u64,
}

impl Setup {
    pub fn new(calls: usize) -> Self {
        Setup {
            caller: vec![None; calls],
            seat: vec![None; calls],
            bridged: 0,
            failed: 0,
            refused: BTreeMap::new(),
            timeouts: 0,
            retransmits: 0,
        }
    }

    /// The set-up's counts as `k=v` fields: 503s apart (ports or admission ran out).
    pub fn counts(&self) -> String {
        let r503 = self.refused.get("503").copied().unwrap_or(0);
        let other: u64 = self.refused.values().sum::<u64>() - r503;
        format!(
            "refused_503={r503} refused_other={other} timeouts={} retransmits={}",
            self.timeouts, self.retransmits
        )
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
    let mut rss0 = args.relay_pid.and_then(procfs::rss_kib);
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
            rss0 = args.relay_pid.and_then(procfs::rss_kib);
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
            let rate = args.rate;
            let setup = while_draining(&mut engine, || ng.setup(calls, args.rtp_port, rate))?;
            let hang_up = move |_: &mut Engine| Ok(format!("deleted={}", ng.delete(calls)));
            (setup, Box::new(hang_up))
        }
    };
    eprintln!(
        "{} calls bridged, {} failed ({}; refusals {:?}), in {:.1} s; streaming {} s",
        setup.bridged,
        setup.failed,
        setup.counts(),
        setup.refused,
        t0.elapsed().as_secs_f64(),
        args.hold
    );
    for i in 0..args.calls {
        let (caller, seat) = (engine.index(0, i), engine.index(1, i));
        if let (Some(c), Some(s)) = (setup.caller[i], setup.seat[i]) {
            engine.outbox.senders[caller].remote = Some(c);
            engine.outbox.senders[seat].remote = Some(s);
        }
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
        for (i, rx) in engine.inbox.receivers.iter().enumerate() {
            let peer = engine.peer(i);
            let expected = engine.outbox.senders[peer].sent;
            if expected == 0 {
                continue;
            }
            t.sent += expected;
            t.received += rx.unique();
            let lost = expected.saturating_sub(rx.unique());
            if lost > 0 {
                lossy.insert(i.min(peer));
            }
            t.lost += lost;
            t.gaps += rx.gaps;
            t.late += rx.late;
            t.duplicates += rx.duplicates;
            let (j, jmax) = rx.jitter_ms();
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
            let rx = &engine.inbox.receivers[to];
            let sent = engine.outbox.senders[engine.peer(to)].sent;
            let (j, jmax) = rx.jitter_ms();
            writeln!(
                out,
                "{i}\t{dir}\t{sent}\t{}\t{}\t{}\t{}\t{}\t{j:.2}\t{jmax:.2}",
                rx.unique(),
                sent.saturating_sub(rx.unique()),
                rx.gaps,
                rx.late,
                rx.duplicates,
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
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let late = &r.send.lateness;
    let (p50, p99, max) = (
        ms(late.percentile(50.0)),
        ms(late.percentile(99.0)),
        ms(late.percentile(100.0)),
    );
    println!(
        "relayed {pps:.0} packets/s over the window; generator CPU {:.1} % of a core, \
         {gen_us:.2} µs per packet sent or received (sending {:.2} s, receiving {:.2} s of \
         the hold, {} waits for a full send buffer); {} stray packets; {} dropped by the \
         generator's socket",
        100.0 * r.gen_cpu.as_secs_f64() / secs,
        r.send.send_time.as_secs_f64(),
        r.recv_time.as_secs_f64(),
        r.send.send_waits,
        r.stray,
        r.socket_drops
    );
    let behind = r.generator_behind();
    println!(
        "generator clock: {} sub-ticks of {:.0} ms, started late by p50 {p50:.2} ms, p99 \
         {p99:.2} ms, max {max:.2} ms; {} over a period late; {} skipped ({} packets not sent); \
         its threads waited {:.2} s runnable but not running (the machine's load){}",
        late.samples(),
        ms(rtp::PTIME) / rtp::SUB_TICKS as f64,
        late.at_least(rtp::PTIME),
        r.send.skipped_ticks,
        r.send.skipped_packets,
        r.gen_starved.as_secs_f64(),
        if behind {
            " — GENERATOR BEHIND: this run measured the generator, not the relay"
        } else {
            ""
        }
    );
    let mut result = format!(
        "RESULT mode={mode} calls={} bridged={} failed={} {} sent={} received={} lost={} \
         loss_pct={loss_pct:.4} gaps={} late={} dup={} jitter_ms={:.2} jitter_max_ms={:.2} \
         pps={pps:.0} gen_cpu_pct={:.1} gen_us_per_pkt={gen_us:.2} gen_late_p50_ms={p50:.2} \
         gen_late_p99_ms={p99:.2} gen_late_max_ms={max:.2} skipped_ticks={} \
         skipped_packets={} gen_starved_s={:.2} gen_behind={} gen_drops={} {ended}",
        args.calls,
        setup.bridged,
        setup.failed,
        setup.counts(),
        t.sent,
        t.received,
        t.lost,
        t.gaps,
        t.late,
        t.duplicates,
        t.jitter_mean_ms,
        t.jitter_max_ms,
        100.0 * r.gen_cpu.as_secs_f64() / secs,
        r.send.skipped_ticks,
        r.send.skipped_packets,
        r.gen_starved.as_secs_f64(),
        u8::from(behind),
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
    // Everything the relaying cost, wherever the kernel ran it: on loopback a packet's
    // softirq runs in the sender's context (the generator's or the relay's CPU) or in
    // ksoftirqd; a relay in the kernel has no process of its own.
    let all = r.gen_cpu + r.relay_cpu.unwrap_or_default() + r.ksoftirqd_cpu;
    let all_us = all.as_secs_f64() * 1e6 / r.window_packets.max(1) as f64;
    println!(
        "ksoftirqd {:.1} % of a core, softirq machine-wide {:.1} %; generator + relay + \
         ksoftirqd {:.1} %: {all_us:.2} µs per relayed packet",
        100.0 * r.ksoftirqd_cpu.as_secs_f64() / secs,
        100.0 * r.softirq.as_secs_f64() / secs,
        100.0 * all.as_secs_f64() / secs
    );
    result += &format!(
        " ksoftirqd_cpu_pct={:.1} softirq_pct={:.1} all_cpu_pct={:.1} all_us_per_pkt={all_us:.3}",
        100.0 * r.ksoftirqd_cpu.as_secs_f64() / secs,
        100.0 * r.softirq.as_secs_f64() / secs,
        100.0 * all.as_secs_f64() / secs
    );
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
    if let Some(mean) = r.relay_rss_mean_kib {
        let per_call = mean.saturating_sub(rss0.unwrap_or(0)) as f64 / setup.bridged.max(1) as f64;
        println!(
            "relay RSS over the window, mean {:.1} MiB: {per_call:.1} KiB per concurrent call",
            mean as f64 / 1024.0
        );
        result += &format!(" rss_mean_kib={mean} kib_per_call_mean={per_call:.1}");
    }
    println!("{result}");
}
