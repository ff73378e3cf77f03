//! `sas-router seats unpause|logout SEAT` and `sas-router calls move ID`: supervisors'
//! actions on the running router, through its admin API (the token in the data directory),
//! as the console does; the audit log names the actor `admin`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sas_router::config::Config;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum SeatsAction {
    /// Put a paused seat back in distribution.
    Unpause {
        /// The seat (its username).
        seat: String,
    },
    /// Log a seat out: out of distribution (after its call, if it is on one), its console
    /// sessions ended.
    Logout {
        /// The seat.
        seat: String,
    },
}

/// Runs one `seats` command against the running router.
pub(super) fn seats(config: &Config, action: SeatsAction) -> Result<()> {
    let (seat, verb) = match &action {
        SeatsAction::Unpause { seat } => (seat, "unpause"),
        SeatsAction::Logout { seat } => (seat, "logout"),
    };
    let answer = post(
        config,
        &format!("/api/supervisor/seats/{seat}/{verb}"),
        json!({}),
    )?;
    let state = answer["state"]["state"].as_str().unwrap_or("?");
    println!("seat {seat}: {verb} done, now {state}");
    Ok(())
}

/// `calls move ID [--queue Q] [--priority P]`.
pub(super) fn move_call(
    config: &Config,
    call: &str,
    queue: Option<String>,
    priority: Option<String>,
) -> Result<()> {
    let body = json!({ "queue": queue, "priority": priority.map(|p| p.to_uppercase()) });
    let answer = post(config, &format!("/api/supervisor/calls/{call}/move"), body)?;
    let priority = answer["priority"].as_str().unwrap_or("NR");
    println!(
        "call {call} moved to queue {} ({priority})",
        answer["queue"]
    );
    Ok(())
}

/// POSTs `body` to `path` with the admin token; the JSON answer, or the router's refusal.
fn post(config: &Config, path: &str, body: Value) -> Result<Value> {
    let token_path = config.store.data_dir.join("admin.token");
    let token = std::fs::read_to_string(&token_path).with_context(|| {
        format!(
            "{} is unreadable: is the router running?",
            token_path.display()
        )
    })?;
    let url = format!("http://{}{path}", config.http.listen);
    let (status, bytes) = super::lines::admin_request("POST", &url, token.trim(), Some(body))?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != 200 {
        let why = answer["error"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_string,
        );
        bail!("the router refused (HTTP {status}): {why}");
    }
    Ok(answer)
}
