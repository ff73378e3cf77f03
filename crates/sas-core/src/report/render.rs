//! A report as text: an aligned table for the terminal, CSV (RFC 4180, one header line,
//! the rows, then `TOTAL`) for spreadsheets, JSON for programs.
//!
//! Counts and durations are exact (durations in seconds, with their milliseconds when
//! any), so a column's total is the sum of its rows; percentages and averages are derived
//! from those sums, one decimal, and are empty when nothing was counted.

use super::{Level2, Report, ReportError, Row};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(ReportError::BadFormat(other.to_string())),
        }
    }
}

impl Format {
    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Csv => csv(report),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
    }
}

type Cell = fn(&Row) -> String;

/// Seconds, exact: `62`, `62.5`, `0.125`.
fn secs(ms: u64) -> String {
    match ms % 1000 {
        0 => (ms / 1000).to_string(),
        rest => {
            let frac = format!("{rest:03}");
            format!("{}.{}", ms / 1000, frac.trim_end_matches('0'))
        }
    }
}

/// One decimal of `part / whole × scale`; empty when `whole` is 0.
fn ratio(part: u64, whole: u64, scale: f64) -> String {
    if whole == 0 {
        return String::new();
    }
    format!("{:.1}", part as f64 * scale / whole as f64)
}

macro_rules! level2 {
    ($field:ident, $name:literal) => {
        [
            ($name, (|r: &Row| r.$field.escalated.to_string()) as Cell),
            (concat!($name, "_answered"), |r| {
                r.$field.answered.to_string()
            }),
            (concat!($name, "_avg_s"), |r| avg(&r.$field)),
            (concat!($name, "_max_s"), |r| secs(r.$field.max_ms)),
        ]
    };
}

fn avg(l2: &Level2) -> String {
    ratio(l2.wait_ms, l2.answered, 0.001)
}

/// Every column after the key, in order.
pub fn columns() -> Vec<(&'static str, Cell)> {
    let mut cols: Vec<(&'static str, Cell)> = vec![
        ("received", |r| r.received.to_string()),
        ("answered", |r| r.answered.to_string()),
        ("answered_30s", |r| r.answered_30s.to_string()),
        ("answered_60s", |r| r.answered_60s.to_string()),
        ("pct_30s", |r| ratio(r.answered_30s, r.demand(), 100.0)),
        ("pct_60s", |r| ratio(r.answered_60s, r.demand(), 100.0)),
        ("avg_wait_s", |r| ratio(r.answer_wait_ms, r.answered, 0.001)),
        ("abandoned", |r| r.abandoned.to_string()),
        ("misdials", |r| r.misdials.to_string()),
        ("overflows", |r| r.overflows.to_string()),
        ("forwards", |r| r.forwards.to_string()),
        ("forwards_3114", |r| r.forwards_3114.to_string()),
        ("psy", |r| r.psy.to_string()),
    ];
    cols.extend(level2!(l2_amu, "l2_amu"));
    cols.extend(level2!(l2_liberal, "l2_liberal"));
    cols.extend(level2!(l2_psy, "l2_psy"));
    cols.extend(level2!(l2_p0, "l2_p0"));
    cols.extend([
        ("handled", (|r: &Row| r.handled.to_string()) as Cell),
        ("talk_s", |r| secs(r.talk_ms)),
        ("wrap_up_s", |r| secs(r.wrap_up_ms)),
        ("decisions", |r| r.decisions.to_string()),
        ("decisions_rdv", |r| r.decisions_rdv.to_string()),
        ("decisions_3114", |r| r.decisions_3114.to_string()),
    ]);
    cols
}

/// The header and every line (rows, then the total), as cells.
fn lines(report: &Report) -> Vec<Vec<String>> {
    let cols = columns();
    let mut header = vec![report.by.label().to_string()];
    header.extend(cols.iter().map(|(name, _)| name.to_string()));
    let mut out = vec![header];
    for row in report.rows.iter().chain([&report.total]) {
        let mut line = vec![row.key.clone()];
        line.extend(cols.iter().map(|(_, cell)| cell(row)));
        out.push(line);
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// RFC 4180, CRLF line ends (what spreadsheets expect).
pub fn csv(report: &Report) -> String {
    lines(report)
        .iter()
        .map(|l| {
            let cells: Vec<String> = l.iter().map(|c| csv_field(c)).collect();
            cells.join(",") + "\r\n"
        })
        .collect()
}

/// Columns aligned; empty cells shown as `-`.
pub fn table(report: &Report) -> String {
    let lines = lines(report);
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "report {} .. {} (Europe/Paris) by {}\n",
        report.period.from,
        report.period.to,
        report.by.label()
    );
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let c = if c.is_empty() { "-" } else { c };
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}
