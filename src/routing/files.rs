//! The one place routing touches the disk: reading the dial plan directory. Everything
//! else in `routing` works on texts and instants given to it.

use std::path::{Path, PathBuf};

use super::plan::{PlanError, PlanSet, load_texts};

/// Loads and validates every `*.toml` file of `dir` (sorted by name). `prompts` are the
/// prompt names that exist; `schedules` the names of schedules defined outside the files
/// (built in).
pub fn load_dir(
    dir: &Path,
    prompts: &[&str],
    schedules: &[&str],
) -> Result<PlanSet, Vec<PlanError>> {
    let unreadable = |e: std::io::Error| {
        vec![PlanError {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the dial plan directory: {e}"),
        }]
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => texts.push((path, text)),
            Err(e) => errors.push(PlanError {
                file: path,
                line: 0,
                column: 0,
                message: format!("cannot be read: {e}"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    load_texts(texts, prompts, schedules)
}
