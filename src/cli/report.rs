//! `sas-router report`: reads sled directly when the router is stopped, else asks the
//! running router's admin API for the report (JSON) and renders it here, the same way.

use super::{Config, RecordSource, http_get};
use anyhow::{Context, Result};
use sas_core::report::render::{Format, render};
use sas_core::report::{GroupBy, Period, Report};
use sas_router::http::query::encode;
use std::io::Write;
use std::path::Path;

pub(super) fn run(
    config_path: &Path,
    from: &str,
    to: Option<&str>,
    by: &str,
    format: &str,
) -> Result<()> {
    // Bad arguments are refused before the database is opened.
    let period = Period::parse(from, to.unwrap_or(from))?;
    let by: GroupBy = by.parse()?;
    let format: Format = format.parse()?;
    let config = Config::load(config_path)?;
    let report = match RecordSource::open(&config)? {
        RecordSource::Direct(store) => store.report(period, by)?,
        RecordSource::Router { base, token } => {
            let url = format!(
                "{base}/api/reports?from={}&to={}&by={}&format=json",
                encode(&period.from.to_string()),
                encode(&period.to.to_string()),
                by.label()
            );
            let body = http_get(&url, &token)?.context("the router has no /api/reports")?;
            serde_json::from_str::<Report>(&body).context("the router's report")?
        }
    };
    let text = render(&report, format);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(())
}
