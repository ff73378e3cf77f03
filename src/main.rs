//! The `sas-router` binary: runs the router, and admin subcommands.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sas_router::config::Config;
use sas_router::store::Store;
use sas_router::store::record::CallRecord;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

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
    /// Print the HA1 digests of a seat password, for `[[seats]]` in the config.
    HashPassword {
        /// Seat user name.
        #[arg(long)]
        user: String,
        /// Password (read from the SAS_PASSWORD environment variable if absent).
        #[arg(long, env = "SAS_PASSWORD", hide_env_values = true)]
        password: String,
        /// Digest realm (defaults to the config's `sip.realm`).
        #[arg(long)]
        realm: Option<String>,
    },
    /// Validate the configuration file and exit.
    CheckConfig,
}

#[derive(Subcommand)]
enum CallsAction {
    /// The most recent calls, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// JSON output (caller numbers in clear).
        #[arg(long)]
        json: bool,
    },
    /// One call with its offers and timeline.
    Show {
        /// Call id (from `calls list`).
        id: String,
        /// JSON output (caller number in clear).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config),
        Command::CheckConfig => {
            let config = Config::load(&cli.config)?;
            let (_, problems) = sas_router::app::announcements(&config);
            for problem in &problems {
                eprintln!("{problem}");
            }
            if !problems.is_empty() {
                anyhow::bail!("{} problem(s) with prompts", problems.len());
            }
            println!("{}: ok", cli.config.display());
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
            println!("username = \"{user}\"");
            println!(
                "ha1_md5 = \"{}\"",
                ha1(DigestAlgorithm::Md5, &user, &realm, &password)
            );
            println!(
                "ha1_sha256 = \"{}\"",
                ha1(DigestAlgorithm::Sha256, &user, &realm, &password)
            );
            Ok(())
        }
        Command::Calls { action } => calls(&cli.config, action),
    }
}

fn run(config_path: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    init_logging(&config.log.format, &config.log.level);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let running = sas_router::app::start(config, shutdown.clone())
            .await
            .context("starting the router")?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
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
    // rsipstack logs whole SIP messages (caller numbers) at info: keep it at warn unless
    // the operator names it explicitly (e.g. RUST_LOG=info,rsipstack=debug to debug SIP).
    let mut spec = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    if !spec.contains("rsipstack") {
        spec.push_str(",rsipstack=warn");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn"));
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
    let source = RecordSource::open(&config)?;
    match action {
        CallsAction::List { limit, json } => {
            let records = source.list(limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&records)?);
                return Ok(());
            }
            println!(
                "{:<26} {:<6} {:<12} {:<10} {:<8} {:>7} {:>7}",
                "ID", "LINE", "CALLER", "OUTCOME", "SEAT", "WAIT_S", "TALK_S"
            );
            for r in records {
                println!(
                    "{:<26} {:<6} {:<12} {:<10} {:<8} {:>7} {:>7}",
                    r.id,
                    r.line,
                    r.caller.to_string(),
                    r.outcome.map(|o| o.label()).unwrap_or("live"),
                    r.seat.as_deref().unwrap_or("-"),
                    seconds(r.wait_ms),
                    seconds(r.talk_ms),
                );
            }
        }
        CallsAction::Show { id, json } => {
            let Some(r) = source.get(&id)? else {
                bail!("no call {id}");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_record(&r);
            }
        }
    }
    Ok(())
}

fn seconds(ms: Option<u64>) -> String {
    ms.map(|m| format!("{:.1}", m as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn print_record(r: &CallRecord) {
    use sas_router::time::rfc3339;
    println!("call      {}", r.id);
    println!("line      {} (dialled {})", r.line, r.called);
    println!("caller    {}", r.caller.reveal());
    println!("arrived   {}", rfc3339(r.arrived_at));
    if let Some(t) = r.answered_at {
        println!(
            "answered  {} by {}",
            rfc3339(t),
            r.seat.as_deref().unwrap_or("?")
        );
    }
    if let Some(t) = r.ended_at {
        println!(
            "ended     {} ({})",
            rfc3339(t),
            r.end_reason.as_deref().unwrap_or("-")
        );
    }
    println!(
        "outcome   {}   wait {} s   talk {} s",
        r.outcome.map(|o| o.label()).unwrap_or("live"),
        seconds(r.wait_ms),
        seconds(r.talk_ms)
    );
    for o in &r.offers {
        println!(
            "offer     {} at {} → {:?}{}",
            o.seat,
            rfc3339(o.at),
            o.result,
            o.status.map(|s| format!(" ({s})")).unwrap_or_default()
        );
    }
    if let Some(rtp) = r.rtp {
        println!(
            "rtp       caller rx {} / tx {} packets, seat rx {} / tx {} packets",
            rtp.caller.rx_packets, rtp.caller.tx_packets, rtp.seat.rx_packets, rtp.seat.tx_packets
        );
    }
    println!("timeline");
    for e in &r.events {
        println!(
            "  {}  {:<12} {} {}",
            rfc3339(e.at),
            e.kind,
            e.seat.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or("")
        );
    }
}

/// Records come from sled directly when no router holds the database, else from the
/// running router's admin API (authenticated by the token in the data directory).
enum RecordSource {
    Direct(Store),
    Router { base: String, token: String },
}

impl RecordSource {
    fn open(config: &Config) -> Result<Self> {
        match Store::open(&config.store.data_dir) {
            Ok(store) => Ok(Self::Direct(store)),
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

/// GET on the router's admin API; `None` on 404.
fn http_get(url: &str, token: &str) -> Result<Option<String>> {
    use http_body_util::{BodyExt, Empty};
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().context("URL without host")?.to_string();
    tokio::runtime::Runtime::new()?.block_on(async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .with_context(|| format!("connecting to the router at {authority}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::get(uri)
            .header("host", &authority)
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::<hyper::body::Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        match status.as_u16() {
            200 => Ok(Some(String::from_utf8_lossy(&body).into_owned())),
            404 => Ok(None),
            other => bail!("the router answered HTTP {other}"),
        }
    })
}
