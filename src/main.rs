//! The `sas-router` binary: runs the router, and admin subcommands.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sas_router::config::Config;
use sas_router::store::Store;
use sas_router::store::audit::AuditEntry;
use sas_router::store::record::CallRecord;
use sas_router::store::recordings::Recordings;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// `calls list/show --shared`, `audit list --shared`: the binary's reads of the shared
/// store.
#[path = "cli/lines.rs"]
mod lines;
#[path = "cli/shared.rs"]
mod shared;
/// `seats unpause|logout`, `calls move`: supervisors' actions through the running router.
#[path = "cli/supervise.rs"]
mod supervise;

/// `report`: activity reports, from sled or through the running router.
#[path = "cli/report.rs"]
mod report;

/// SIP call router for SAMU (15) and SAS / PDSA (116 117) regulation centres.
///
/// With no subcommand, runs the router on the configuration file.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file.
    #[arg(short, long, default_value = "config/sas-router.toml", global = true)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (the default).
    Run,
    /// Read call records (works while the router runs, through its local admin API).
    Calls {
        #[command(subcommand)]
        action: CallsAction,
    },
    /// Activity report of a period (Europe/Paris dates, both included): received,
    /// answered within 30/60 s, abandons, misdials, escalations, decisions… (works while
    /// the router runs, through its local admin API).
    Report {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD; default: the first).
        #[arg(long)]
        to: Option<String>,
        /// Rows: day, hour, line, queue, seat or commune.
        #[arg(long, default_value = "day")]
        by: String,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Unpause or log out a seat (through the running router's admin API; audited).
    Seats {
        #[command(subcommand)]
        action: supervise::SeatsAction,
    },
    /// Switch a line to its backup centre, restore it, list the lines (through the running
    /// router's admin API; audited).
    Lines {
        #[command(subcommand)]
        action: lines::LinesAction,
    },
    /// Copy out a call's recording (audited), or purge recordings past retention.
    Recordings {
        #[command(subcommand)]
        action: RecordingsAction,
    },
    /// The audit log: who read or purged which recording, when.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print the HA1 digests of a seat password and its argon2 console hash, for
    /// `[[seats]]` in the config.
    HashPassword {
        /// Seat user name.
        #[arg(long)]
        user: String,
        /// Password (from SAS_PASSWORD if absent, else asked once on standard input).
        #[arg(long, env = "SAS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Digest realm (defaults to the config's `sip.realm`).
        #[arg(long)]
        realm: Option<String>,
    },
    /// Validate the configuration file, its dial plans and prompts, and exit (codes as
    /// `check`).
    CheckConfig,
    /// Send seeded, mutated SIP to a running router over UDP and TCP (a test router, never
    /// a production one: fuzzed INVITEs from a trunk address become calls). Exit code 1 if
    /// any answer is a 5xx other than 501/503/505, or the router stops answering OPTIONS.
    Fuzz {
        /// The router's SIP UDP address.
        #[arg(long)]
        udp: Option<std::net::SocketAddr>,
        /// The router's SIP TCP address.
        #[arg(long)]
        tcp: Option<std::net::SocketAddr>,
        /// Messages to send (both transports together).
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// Generator seed: the same seed sends the same messages.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Messages per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
    },
    /// Validate the dial plans (every problem listed): exit code 1 on errors, 2 when they
    /// are valid but name prompts with no file (served with silence in their place).
    Check {
        /// Dial plan directory.
        #[arg(default_value = "dialplans")]
        dir: PathBuf,
    },
    /// Which way a call goes: each step and the schedule decisions that led there.
    Simulate {
        /// The number called (15, 116117, +33116117…).
        #[arg(long)]
        to: String,
        /// When, Paris time (2026-12-25T03:00) or with an offset; default now.
        #[arg(long)]
        at: Option<String>,
        /// Keys the caller presses, one per menu (none: every menu times out).
        #[arg(long, default_value = "")]
        digits: String,
        /// Dial plan directory.
        #[arg(long, default_value = "dialplans")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum CallsAction {
    /// The most recent calls, newest first.
    List {
        /// How many (at most 1,000 while the router runs: its admin API's bound).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// JSON output (caller numbers in clear).
        #[arg(long)]
        json: bool,
        /// The calls of every node, from the shared store (`[shared_store]`), each with
        /// its node.
        #[arg(long)]
        shared: bool,
    },
    /// Move a waiting call to another queue of its dial plans and/or another priority
    /// (through the running router's admin API; audited). It keeps its place in line.
    Move {
        /// Call id (from `calls list` or the console).
        id: String,
        /// The queue (a `[queues.*]` name of the call's dial plans).
        #[arg(long)]
        queue: Option<String>,
        /// Hub Santé priority: P0, P1, P2, P3 or NR.
        #[arg(long)]
        priority: Option<String>,
    },
    /// One call with its offers and timeline.
    Show {
        /// Call id (from `calls list`).
        id: String,
        /// JSON output (caller number in clear).
        #[arg(long)]
        json: bool,
        /// Read it from the shared store (`[shared_store]`).
        #[arg(long)]
        shared: bool,
        /// The node whose call it is, when several nodes used the id (with `--shared`).
        #[arg(long, requires = "shared")]
        node: Option<String>,
    },
}

#[derive(Subcommand)]
enum RecordingsAction {
    /// Copy a call's recording to a file. The read is written to the audit log under NAME
    /// first (works while the router runs, through its local admin API).
    Get {
        /// Call id (from `calls list`).
        id: String,
        /// Who is reading (recorded in the audit log).
        #[arg(long = "as", value_name = "NAME")]
        actor: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        purpose: Option<String>,
        /// Where to write the WAV (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete recordings past `recording.retention_days` now, each deletion audited as `cli`
    /// (the router must be stopped; while it runs it purges on its own schedule).
    Purge,
}

#[derive(Subcommand)]
enum AuditAction {
    /// The most recent entries, newest first.
    List {
        /// How many (at most 1,000 while the router runs: its admin API's bound).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Every node's entries, from the shared store (`[shared_store]`).
        #[arg(long)]
        shared: bool,
    },
}

/// Writes a line to standard output, returning the error (a closed pipe: `| head`) instead
/// of panicking as `println!` does.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// Runs the command; an error is printed as one line with its causes, never as a panic or
/// a backtrace (admins need the reason, whatever `RUST_BACKTRACE` says), and output cut
/// short by a reader that left (`calls show ID | head -3`) is not an error.
fn main() -> ExitCode {
    match run_command(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run_command(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config),
        Command::Check { dir } => {
            let set = load_plans(&cli.config, &dir)?;
            for w in &set.warnings {
                eprintln!("warning: {w}");
            }
            let entries: Vec<String> = set
                .entries
                .values()
                .map(|e| format!("{} ({})", e.name, e.numbers.join(", ")))
                .collect();
            if warn_missing_prompts(&set) {
                say!(
                    "{}: valid, with prompts missing (silence plays in their place), entries: {}",
                    dir.display(),
                    entries.join("; ")
                );
                std::process::exit(EXIT_PROMPTS_MISSING);
            }
            say!("{}: ok, entries: {}", dir.display(), entries.join("; "));
            Ok(())
        }
        Command::Simulate {
            to,
            at,
            digits,
            dir,
        } => {
            let set = std::sync::Arc::new(load_plans(&cli.config, &dir)?);
            let when = match at {
                Some(text) => sas_router::routing::simulate::parse_instant(&text)
                    .map_err(|e| anyhow::anyhow!(e))?,
                None => sas_router::time::wall_clock_now(),
            };
            let run = sas_router::routing::simulate::simulate(set, &to, when, &digits)
                .map_err(|e| anyhow::anyhow!(e))?;
            say!(
                "{to} at {} → entry {}",
                sas_router::time::rfc3339(when),
                run.entry
            );
            for step in &run.steps {
                say!("  {step}");
            }
            // The backup centre and its triggers, then where the call ends up, last.
            for line in &run.backup {
                say!("  backup: {line}");
            }
            say!("→ {}", run.outcome);
            Ok(())
        }
        Command::CheckConfig => {
            let config = Config::load(&cli.config)?;
            // The dial plans and prompts it names are part of a working configuration.
            let (min, max) = (config.media.rtp_port_min, config.media.rtp_port_max);
            if let Some(conflict) = sas_router::media::ports::ephemeral_conflict(min, max) {
                // Not fatal: calls work while the ports are free; the admin should know.
                eprintln!("warning: {conflict}");
            }
            for warning in config.transport_warnings() {
                eprintln!("warning: {warning}");
            }
            let set = load_plans(&cli.config, &config.routing.dialplans_dir)?;
            if warn_missing_prompts(&set) {
                say!(
                    "{}: valid, with prompts missing (silence plays in their place)",
                    cli.config.display()
                );
                std::process::exit(EXIT_PROMPTS_MISSING);
            }
            say!("{}: ok", cli.config.display());
            Ok(())
        }
        Command::HashPassword {
            user,
            password,
            realm,
        } => {
            let realm = match realm {
                Some(r) => r,
                None => Config::load(&cli.config)?.sip.realm,
            };
            use sas_router::sip::digest::{DigestAlgorithm, ha1};
            let password = match password {
                Some(p) => p,
                None => ask_password()?,
            };
            say!("username = \"{user}\"");
            say!(
                "ha1_md5 = \"{}\"",
                ha1(DigestAlgorithm::Md5, &user, &realm, &password)
            );
            say!(
                "ha1_sha256 = \"{}\"",
                ha1(DigestAlgorithm::Sha256, &user, &realm, &password)
            );
            say!("console_password = \"{}\"", console_hash(&password)?);
            Ok(())
        }
        Command::Fuzz {
            udp,
            tcp,
            count,
            seed,
            rate,
        } => {
            if udp.is_none() && tcp.is_none() {
                bail!("give the router's address: --udp and/or --tcp");
            }
            let run = sas_router::net::fuzz::FuzzRun {
                seed,
                count,
                udp,
                tcp,
                rate,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(sas_router::net::fuzz::run(&run))?;
            print!("{report}");
            if !report.findings.is_empty() || !report.alive {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Calls { action } => calls(&cli.config, action),
        Command::Report {
            from,
            to,
            by,
            format,
        } => report::run(&cli.config, &from, to.as_deref(), &by, &format),
        Command::Recordings { action } => recordings(&cli.config, action),
        Command::Lines { action } => lines::run(&Config::load(&cli.config)?, action),
        Command::Seats { action } => supervise::seats(&Config::load(&cli.config)?, action),
        Command::Audit {
            action:
                AuditAction::List {
                    limit,
                    json,
                    shared,
                },
        } => audit(&cli.config, limit, json, shared),
    }
}

/// Threads for blocking disk work (record and recording syncs, reloads). Tokio's default
/// (512) let a slow disk at 40 calls/s grow the router from 30 to 116 threads, each keeping
/// its stack and malloc arena (+44 MiB RSS, loadtest/README.md); a sync waits its turn
/// instead, which the disk imposes anyway.
const BLOCKING_THREADS: usize = 8;

fn run(config_path: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    init_logging(&config.log.format, &config.log.level);
    let runtime = config
        .runtime
        .builder()
        .on_thread_park(|| {
            sas_router::heap::collect_before_waiting();
        })
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = sas_router::app::start(config, shutdown.clone())
            .await
            .context("starting the router")?;
        let (stop, drain) = (shutdown.clone(), running.drain.clone());
        tokio::spawn(async move {
            // SIGTERM (or SIGINT) drains; a second one stops at once.
            wait_for_signal().await;
            tokio::select! {
                _ = drain.run() => {}
                _ = wait_for_signal() => tracing::warn!("second signal: stopping now"),
            }
            tracing::info!("shutting down");
            stop.cancel();
        });
        running.wait().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_logging(format: &str, level: &str) {
    // Quieter libraries unless the operator names them (e.g. RUST_LOG=info,rsipstack=debug):
    // rsipstack logs whole SIP messages (caller numbers) at info; the WebRTC stack's packet
    // handlers warn for every early ICE check a phone sends before its answer reached us
    // (expected, refused and retried): a WARN line per call would hide the real ones.
    const QUIET: [(&str, &str); 2] = [
        ("rsipstack", "warn"),
        ("rtc::peer_connection::handler", "error"),
    ];
    let mut spec = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    for (target, level) in QUIET {
        if !spec.contains(target) {
            spec.push_str(&format!(",{target}={level}"));
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,rsipstack=warn,rtc::peer_connection::handler=error",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn calls(config_path: &Path, action: CallsAction) -> Result<()> {
    let config = Config::load(config_path)?;
    match action {
        CallsAction::List {
            limit,
            json,
            shared: true,
        } => shared::list(&config, limit, json),
        CallsAction::Show {
            id,
            json,
            shared: true,
            node,
        } => shared::show(&config, &id, node.as_deref(), json),
        CallsAction::Move {
            id,
            queue,
            priority,
        } => supervise::move_call(&config, &id, queue, priority),
        action => local_calls(&config, action),
    }
}

/// `calls list/show` from this node's records.
fn local_calls(config: &Config, action: CallsAction) -> Result<()> {
    let source = RecordSource::open(config)?;
    match action {
        CallsAction::List { limit, json, .. } => {
            let records = source.list(limit)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&records)?);
                return Ok(());
            }
            say!("{}", list_header());
            for r in records {
                say!("{}", list_row(&r));
            }
        }
        CallsAction::Show { id, json, .. } => {
            let Some(r) = source.get(&id)? else {
                bail!("no call {id}");
            };
            if json {
                say!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_record(&r)?;
            }
        }
        CallsAction::Move { .. } => bail!("calls move goes through the running router"),
    }
    Ok(())
}

/// The header of `calls list`.
fn list_header() -> String {
    let cells = [
        "ID",
        "LINE",
        "CALLER",
        "OUTCOME",
        "ANSWERED_BY",
        "WAIT_S",
        "TALK_S",
    ];
    list_line(cells.map(String::from))
}

/// One row of `calls list`.
fn list_row(r: &CallRecord) -> String {
    list_line([
        r.id.clone(),
        r.line.clone(),
        r.caller.to_string(),
        r.outcome.map(|o| o.label()).unwrap_or("live").to_string(),
        seats_label(r),
        seconds(r.wait_ms),
        seconds(r.talk_ms),
    ])
}

fn list_line(c: [String; 7]) -> String {
    format!(
        "{:<26} {:<6} {:<12} {:<11} {:<15} {:>7} {:>7}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    )
}

/// The seat that answered, and the last one that handled the call when another did
/// (`arm4→amu2` for an escalated call).
fn seats_label(r: &CallRecord) -> String {
    let answered = r.seat.as_deref().unwrap_or("-");
    match r.handlers.last() {
        Some(last) if last.seat != answered => format!("{answered}→{}", last.seat),
        _ => answered.to_string(),
    }
}

fn seconds(ms: Option<u64>) -> String {
    ms.map(|m| format!("{:.1}", m as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn print_record(r: &CallRecord) -> Result<()> {
    use sas_router::time::rfc3339;
    say!("call      {}", r.id);
    say!("line      {} (dialled {})", r.line, r.called);
    say!("caller    {}", r.caller.reveal());
    say!("arrived   {}", rfc3339(r.arrived_at));
    if let Some(t) = r.answered_at {
        say!(
            "answered  {} by {}",
            rfc3339(t),
            r.seat.as_deref().unwrap_or("?")
        );
    }
    if let Some(t) = r.ended_at {
        say!(
            "ended     {} ({})",
            rfc3339(t),
            r.end_reason.as_deref().unwrap_or("-")
        );
    }
    say!(
        "outcome   {}   wait {} s   talk {} s",
        r.outcome.map(|o| o.label()).unwrap_or("live"),
        seconds(r.wait_ms),
        seconds(r.talk_ms)
    );
    if let Some(u) = r.urgency {
        say!("priority  {}", u.label());
    }
    for h in &r.handlers {
        say!(
            "handler   {} ({}) {} → {}{}",
            h.seat,
            h.role,
            rfc3339(h.from),
            h.until.map(rfc3339).unwrap_or_else(|| "…".into()),
            h.left
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        );
    }
    for f in &r.file {
        let data = serde_json::to_string(&f.data).unwrap_or_default();
        say!("file      {} by {}: {data}", rfc3339(f.at), f.seat);
    }
    for o in &r.offers {
        say!(
            "offer     {} at {} → {:?}{}",
            o.seat,
            rfc3339(o.at),
            o.result,
            o.status.map(|s| format!(" ({s})")).unwrap_or_default()
        );
    }
    if let Some(rtp) = r.rtp {
        say!(
            "rtp       caller rx {} / tx {} packets, seat rx {} / tx {} packets",
            rtp.caller.rx_packets,
            rtp.caller.tx_packets,
            rtp.seat.rx_packets,
            rtp.seat.tx_packets
        );
    }
    if let Some(q) = &r.quality {
        let second = q.second_seat.as_ref().map(|l| ("second seat", l));
        for (leg, l) in [("caller", &q.caller), ("seat", &q.seat)]
            .into_iter()
            .chain(second)
        {
            say!(
                "quality   {leg}: {} received, {} lost, jitter {:.1} ms{}",
                l.packets_received,
                l.packets_lost,
                l.jitter_ms,
                l.rtt_ms
                    .map(|t| format!(", rtt {t:.0} ms"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(rec) = &r.recording {
        say!(
            "recording {} ({} s, sha256 {})",
            rec.path,
            seconds(Some(rec.duration_ms)),
            rec.sha256
        );
    }
    if !r.dtmf.is_empty() {
        let keys: Vec<String> = r
            .dtmf
            .iter()
            .map(|d| format!("{} ({})", d.digit, d.source.label()))
            .collect();
        say!("keys      {}", keys.join(", "));
    }
    if let Some(version) = &r.plan_version {
        say!("dial plan {version}");
        for step in &r.route {
            say!("  {step}");
        }
    }
    if !r.tags.is_empty() {
        let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        say!("tags      {}", tags.join(", "));
    }
    say!("timeline");
    for e in &r.events {
        say!(
            "  {}  {:<12} {} {}",
            rfc3339(e.at),
            e.kind,
            e.seat.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

fn recordings(config_path: &Path, action: RecordingsAction) -> Result<()> {
    use sas_router::time::wall_clock_now;
    let config = Config::load(config_path)?;
    let source = RecordSource::open(&config)?;
    let recordings = Recordings::from_config(&config);
    match action {
        RecordingsAction::Get {
            id,
            actor,
            purpose,
            out,
        } => {
            let mut target = std::fs::File::create_new(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let copied = copy_recording(&source, &recordings, &id, &actor, purpose, &mut target)
                .and_then(|bytes| {
                    target.sync_all()?;
                    Ok(bytes)
                });
            let bytes = match copied {
                Ok(bytes) => bytes,
                Err(e) => {
                    std::fs::remove_file(&out).ok();
                    return Err(e);
                }
            };
            drop(target);
            // The copy must be the file the call record vouches for.
            let Some(info) = source.get(&id)?.and_then(|r| r.recording) else {
                bail!("call {id} has no recording any more");
            };
            let copy = std::fs::File::open(&out)?;
            match sas_router::media::recording::verify(std::io::BufReader::new(copy), &info) {
                Ok(digest) => say!(
                    "{}: {bytes} bytes, sha256 {digest}{} (matches the call record)",
                    out.display(),
                    match info.hashed {
                        sas_router::media::recording::HashScope::File => "",
                        sas_router::media::recording::HashScope::Audio =>
                            " of the audio after the 44-byte header",
                    }
                ),
                Err(e) => bail!("{}: {e}", out.display()),
            }
        }
        RecordingsAction::Purge => {
            let RecordSource::Direct(store) = &source else {
                bail!(
                    "the router is running and holds the database; it purges every {} h \
                     (recording.purge_interval_h)",
                    config.recording.purge_interval_h
                );
            };
            let report = recordings.purge(wall_clock_now(), store, "cli")?;
            say!(
                "deleted {} ({} bytes), kept {}, failed {}, unrecognised entries {}",
                report.deleted,
                report.bytes_freed,
                report.kept,
                report.failed,
                report.unrecognised
            );
        }
    }
    Ok(())
}

/// Copies the recording of `id` into `target` through the audited accessor (directly, or
/// through the running router's); returns the bytes copied.
fn copy_recording(
    source: &RecordSource,
    recordings: &Recordings,
    id: &str,
    actor: &str,
    purpose: Option<String>,
    target: &mut std::fs::File,
) -> Result<u64> {
    match source {
        RecordSource::Direct(store) => {
            let now = sas_router::time::wall_clock_now();
            let (_, mut file) =
                recordings.open_for_reading(now, store, id, actor, purpose.as_deref())?;
            Ok(std::io::copy(&mut file, target)?)
        }
        RecordSource::Router { base, token } => {
            use sas_router::http::query::encode;
            let mut url = format!("{base}/api/calls/{id}/recording?as={}", encode(actor));
            if let Some(p) = &purpose {
                url.push_str(&format!("&purpose={}", encode(p)));
            }
            let (status, body) = http_get_bytes(&url, token)?;
            if status != 200 {
                bail!("HTTP {status}: {}", String::from_utf8_lossy(&body).trim());
            }
            std::io::Write::write_all(target, &body)?;
            Ok(body.len() as u64)
        }
    }
}

fn audit(config_path: &Path, limit: usize, json: bool, shared: bool) -> Result<()> {
    let config = Config::load(config_path)?;
    if shared {
        return shared::audit(&config, limit, json);
    }
    let entries: Vec<AuditEntry> = match RecordSource::open(&config)? {
        RecordSource::Direct(store) => store.audit_entries(limit)?,
        RecordSource::Router { base, token } => {
            let body = http_get(&format!("{base}/api/audit?limit={limit}"), &token)?
                .context("the router answered 404")?;
            serde_json::from_str(&body)?
        }
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    say!("{}", audit_header());
    for e in &entries {
        say!("{}", audit_row(e));
    }
    Ok(())
}

/// The header of `audit list`.
fn audit_header() -> String {
    format!(
        "{:<24} {:<16} {:<16} {:<40} DETAIL",
        "AT", "ACTOR", "ACTION", "TARGET"
    )
}

/// One row of `audit list`.
fn audit_row(e: &AuditEntry) -> String {
    format!(
        "{:<24} {:<16} {:<16} {:<40} {}",
        sas_router::time::rfc3339(e.at),
        e.actor,
        e.action,
        e.target,
        e.detail.as_deref().unwrap_or("")
    )
}

/// Records come from sled directly when no router holds the database, else from the
/// running router's admin API (authenticated by the token in the data directory).
enum RecordSource {
    Direct(Store),
    Router { base: String, token: String },
}

impl RecordSource {
    fn open(config: &Config) -> Result<Self> {
        let dir = &config.store.data_dir;
        let opened = Store::open(dir).or_else(|e| {
            if router_answers(&config.http.listen) {
                return Err(e);
            }
            // Held by a router that no longer answers: one stopping, whose last writes let
            // go of the database in a moment.
            Store::open_retrying(dir, std::time::Duration::from_secs(5))
        });
        match opened {
            // Audits written here (reads, purges) ship with the router's next start.
            Ok(store) => Ok(Self::Direct(
                store.with_outbox(config.shared_store.is_some()),
            )),
            Err(_) => {
                let token_path = config.store.data_dir.join("admin.token");
                let token = std::fs::read_to_string(&token_path).with_context(|| {
                    format!(
                        "the database is in use and {} is unreadable",
                        token_path.display()
                    )
                })?;
                Ok(Self::Router {
                    base: format!("http://{}", config.http.listen),
                    token: token.trim().to_string(),
                })
            }
        }
    }

    fn list(&self, limit: usize) -> Result<Vec<CallRecord>> {
        match self {
            Self::Direct(store) => Ok(store.recent_calls(limit)?),
            Self::Router { base, token } => {
                let body = http_get(&format!("{base}/api/calls?limit={limit}"), token)?
                    .context("the router answered 404")?;
                Ok(serde_json::from_str(&body)?)
            }
        }
    }

    fn get(&self, id: &str) -> Result<Option<CallRecord>> {
        match self {
            Self::Direct(store) => Ok(store.get_call(id)?),
            Self::Router { base, token } => {
                match http_get(&format!("{base}/api/calls/{id}"), token)? {
                    Some(body) => Ok(Some(serde_json::from_str(&body)?)),
                    None => Ok(None),
                }
            }
        }
    }
}

/// Whether something accepts connections on the router's HTTP address (where the CLI
/// would reach its admin API).
fn router_answers(listen: &std::net::SocketAddr) -> bool {
    let timeout = std::time::Duration::from_millis(500);
    std::net::TcpStream::connect_timeout(listen, timeout).is_ok()
}

/// GET on the router's admin API; `None` on 404.
fn http_get(url: &str, token: &str) -> Result<Option<String>> {
    let (status, body) = http_get_bytes(url, token)?;
    match status {
        200 => Ok(Some(String::from_utf8_lossy(&body).into_owned())),
        404 => Ok(None),
        other => bail!("the router answered HTTP {other}"),
    }
}

/// GET on the router's admin API: status and body.
fn http_get_bytes(url: &str, token: &str) -> Result<(u16, Vec<u8>)> {
    lines::admin_request("GET", url, token, None)
}

/// One line of standard input, without its line end (asked once: the HA1s and the argon2
/// hash come from the same answer).
fn ask_password() -> anyhow::Result<String> {
    eprint!("password: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(password)
}

/// The argon2id PHC string of a console password (default parameters, random salt).
fn console_hash(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Exit code of `check` and `check-config` when the plans are valid and would be served,
/// but name prompts that have no file (1 is for errors: nothing would go live).
const EXIT_PROMPTS_MISSING: i32 = 2;

/// Prints a warning per step naming a prompt with no file; true if there was any.
fn warn_missing_prompts(set: &sas_router::routing::plan::PlanSet) -> bool {
    for missing in &set.missing_prompts {
        eprintln!("warning: {missing}");
    }
    !set.missing_prompts.is_empty()
}

/// The dial plans of `dir`, prompts checked against the configured prompt directory (the
/// default one when the configuration file cannot be read). Problems are printed one per
/// line, then the command fails.
fn load_plans(config: &Path, dir: &Path) -> Result<sas_router::routing::plan::PlanSet> {
    let prompts = Config::load(config)
        .map(|c| c.media.prompts_dir)
        .unwrap_or_else(|_| PathBuf::from("dialplans/prompts"));
    sas_router::routing::files::load_plans(dir, &prompts).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!(
            "{} problem(s) in the dial plans: nothing changed",
            errors.len()
        )
    })
}
