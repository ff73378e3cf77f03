//! `sas-router lines list|switch|restore`: a line's switch to the backup centre is state of
//! the running router, so these always go through its admin API (the token in the data
//! directory), as the supervisor console does; the audit log names the actor `admin`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sas_router::config::Config;
use serde_json::{Value, json};
use std::io::Write;

#[derive(Subcommand)]
pub(super) enum LinesAction {
    /// Every line of the dial plans in force, and whether it is switched.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Send the line's new calls to its backup centre (the entry's `backup` step).
    Switch {
        /// The line (`samu`, `sas`, `psy`: an entry's `line`).
        line: String,
        /// Why (written in the audit log).
        #[arg(long)]
        reason: String,
        /// Also move the calls of the line waiting for a seat now.
        #[arg(long)]
        move_waiting: bool,
    },
    /// Queue the line's new calls again.
    Restore {
        /// The line.
        line: String,
        /// Why (written in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs one `lines` command against the running router.
pub(super) fn run(config: &Config, action: LinesAction) -> Result<()> {
    let token_path = config.store.data_dir.join("admin.token");
    let token = std::fs::read_to_string(&token_path).with_context(|| {
        format!(
            "{} is unreadable: is the router running?",
            token_path.display()
        )
    })?;
    let base = format!("http://{}/api/supervisor/lines", config.http.listen);
    let token = token.trim();
    let (method, url, body) = match &action {
        LinesAction::List { .. } => ("GET", base, None),
        LinesAction::Switch {
            line,
            reason,
            move_waiting,
        } => (
            "POST",
            format!("{base}/{line}/switch"),
            Some(json!({ "reason": reason, "move_waiting": move_waiting })),
        ),
        LinesAction::Restore { line, reason } => (
            "POST",
            format!("{base}/{line}/restore"),
            Some(json!({ "reason": reason })),
        ),
    };
    let (status, bytes) = admin_request(method, &url, token, body)?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != 200 {
        let why = answer["error"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_string,
        );
        bail!("the router refused (HTTP {status}): {why}");
    }
    let mut out = std::io::stdout().lock();
    match action {
        LinesAction::List { json: true } => {
            writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?
        }
        LinesAction::List { json: false } => {
            writeln!(
                out,
                "{:<10} {:<9} {:<14} {:<12} {:<16} REASON",
                "LINE", "STATE", "BACKUP", "BY", "NODE"
            )?;
            for l in answer["lines"].as_array().into_iter().flatten() {
                let state = if l["switched"] == true {
                    "SWITCHED"
                } else {
                    "normal"
                };
                let text = |k: &str| l[k].as_str().unwrap_or("-").to_string();
                let row = [
                    text("line"),
                    state.into(),
                    text("backup"),
                    text("by"),
                    text("node"),
                    text("reason"),
                ];
                writeln!(
                    out,
                    "{:<10} {:<9} {:<14} {:<12} {:<16} {}",
                    row[0], row[1], row[2], row[3], row[4], row[5]
                )?;
            }
        }
        LinesAction::Switch { line, .. } => writeln!(
            out,
            "line {line} switched to the backup centre ({} waiting calls moved)",
            answer["moved"]
        )?,
        LinesAction::Restore { line, .. } => writeln!(out, "line {line} restored")?,
    }
    Ok(())
}

/// One request to the router's admin API (bearer token, optional JSON body): status and
/// body.
pub(super) fn admin_request(
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Vec<u8>)> {
    use http_body_util::{BodyExt, Full};
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().context("URL without host")?.to_string();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    tokio::runtime::Runtime::new()?.block_on(async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .with_context(|| format!("connecting to the router at {authority}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", &authority)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(hyper::body::Bytes::from(body)))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body.to_vec()))
    })
}
