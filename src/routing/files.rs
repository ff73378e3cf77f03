//! The one place routing touches the disk: reading the dial plan directory. Everything
//! else in `routing` works on texts and instants given to it.

use std::path::{Path, PathBuf};

use super::builtin::BUILTIN_NAMES;
use super::plan::{PlanError, PlanSet, load_texts};
use crate::media::prompts::{PromptError, PromptSet};

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

/// Loads the dial plans of `dir`, checking the prompts they name against the WAV files of
/// `prompts_dir` (a bad prompt file is a problem too: it would play silence).
pub fn load_plans(dir: &Path, prompts_dir: &Path) -> Result<PlanSet, Vec<PlanError>> {
    let (plans, _, bad) = load_with_prompts(dir, prompts_dir);
    let mut errors: Vec<PlanError> = bad
        .into_iter()
        .map(|e| PlanError {
            file: e.path,
            line: 0,
            column: 0,
            message: e.reason.to_string(),
        })
        .collect();
    match plans {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

/// The prompts of `prompts_dir`, and the plans of `dir` checked against them. A bad prompt
/// file counts as present (a plan may name it: it plays silence there) and comes back in
/// the third value; a prompt with no file at all makes the plans invalid.
pub fn load_with_prompts(
    dir: &Path,
    prompts_dir: &Path,
) -> (Result<PlanSet, Vec<PlanError>>, PromptSet, Vec<PromptError>) {
    let (prompts, bad) = PromptSet::load_dir(prompts_dir);
    let mut names: Vec<&str> = prompts.names();
    names.extend(bad.iter().filter_map(|e| e.path.file_stem()?.to_str()));
    let plans = load_dir(dir, &names, &BUILTIN_NAMES);
    (plans, prompts, bad)
}
