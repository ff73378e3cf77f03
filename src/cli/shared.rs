//! `sas-router calls list --shared`, `calls show ID --shared` and `audit list --shared`:
//! the calls and audit entries of every node, read straight from the shared store
//! (PostgreSQL) named in `[shared_store]`, with no router running. Same output as the local
//! reads, with the node in front (JSON: the record or entry plus `"node"`).

use super::{audit_header, audit_row, list_header, list_row, print_record};
use anyhow::{Context, Result, bail};
use sas_router::config::Config;
use sas_router::shared_store::pg::Reader;
use std::io::Write;

fn reader(config: &Config) -> Result<(tokio::runtime::Runtime, Reader)> {
    let shared = config
        .shared_store
        .as_ref()
        .context("no shared store configured ([shared_store] url)")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reader = runtime
        .block_on(Reader::connect(shared))
        .context("connecting to the shared store")?;
    Ok((runtime, reader))
}

/// `calls list --shared`.
pub(super) fn list(config: &Config, limit: usize, json: bool) -> Result<()> {
    let (runtime, reader) = reader(config)?;
    let records = runtime.block_on(reader.recent_calls(limit))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
        return Ok(());
    }
    writeln!(out, "{:<16} {}", "NODE", list_header())?;
    for r in &records {
        writeln!(out, "{:<16} {}", r.node, list_row(&r.record))?;
    }
    Ok(())
}

/// `calls show ID --shared [--node NAME]`.
pub(super) fn show(config: &Config, id: &str, node: Option<&str>, json: bool) -> Result<()> {
    let (runtime, reader) = reader(config)?;
    let mut found: Vec<_> = runtime
        .block_on(reader.calls_by_id(id))?
        .into_iter()
        .filter(|r| node.is_none_or(|n| n == r.node))
        .collect();
    let r = match found.len() {
        0 => bail!("no call {id} in the shared store"),
        1 => found.remove(0),
        _ => {
            let nodes: Vec<&str> = found.iter().map(|r| r.node.as_str()).collect();
            bail!(
                "call {id} is on several nodes ({}): add --node NAME",
                nodes.join(", ")
            );
        }
    };
    if json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&r)?
        )?;
        return Ok(());
    }
    writeln!(std::io::stdout().lock(), "node      {}", r.node)?;
    print_record(&r.record)
}

/// `audit list --shared`.
pub(super) fn audit(config: &Config, limit: usize, json: bool) -> Result<()> {
    let (runtime, reader) = reader(config)?;
    let entries = runtime.block_on(reader.audit_entries(limit))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(());
    }
    writeln!(out, "{:<16} {}", "NODE", audit_header())?;
    for e in &entries {
        writeln!(out, "{:<16} {}", e.node, audit_row(&e.entry))?;
    }
    Ok(())
}
