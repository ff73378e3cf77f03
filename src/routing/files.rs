//! The one place routing touches the disk: reading the dial plan directory. Everything
//! else in `routing` works on texts and instants given to it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::builtin::BUILTIN_NAMES;
use super::plan::{PlanError, PlanSet, load_texts};
use crate::media::prompts::{Prompt, PromptError, PromptSet};

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
    let Loaded { plans, bad, .. } = load_with_prompts(dir, prompts_dir);
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

/// Dial plans and the prompts they play, as loaded from disk.
pub struct Loaded {
    /// The plans, or every problem that keeps them from going live.
    pub plans: Result<PlanSet, Vec<PlanError>>,
    /// The prompts, stand-ins included.
    pub prompts: PromptSet,
    /// Prompt files that could not be read or decoded.
    pub bad: Vec<PromptError>,
    /// Prompts the plans name that play silence instead (no file, or a bad one), sorted.
    pub stand_ins: Vec<String>,
}

/// The prompts of `prompts_dir`, and the plans of `dir` checked against them. A bad prompt
/// file comes back in [`Loaded::bad`]; a prompt with no file at all is listed in the set's
/// [`PlanSet::missing_prompts`]. Either way, a prompt the plans name but cannot play gets a
/// silent stand-in ([`Prompt::stand_in`]): the call is answered and its plan goes on as if
/// the prompt had played.
pub fn load_with_prompts(dir: &Path, prompts_dir: &Path) -> Loaded {
    let (mut prompts, bad) = crate::media::prompts::load_dir(prompts_dir);
    let mut names: Vec<&str> = prompts.names();
    names.extend(bad.iter().filter_map(|e| e.path.file_stem()?.to_str()));
    let plans = load_dir(dir, &names, &BUILTIN_NAMES);
    let stand_ins = match &plans {
        Ok(set) => unplayable(set, &prompts),
        Err(_) => Vec::new(),
    };
    for name in &stand_ins {
        prompts.insert(Prompt::stand_in(name.as_str()));
    }
    Loaded {
        plans,
        prompts,
        bad,
        stand_ins,
    }
}

/// The prompts `set` names that `prompts` cannot play (no file, or a bad one), sorted.
pub fn unplayable(set: &PlanSet, prompts: &PromptSet) -> Vec<String> {
    let named: BTreeSet<&str> = set
        .entries
        .values()
        .flat_map(|e| e.steps.values())
        .flat_map(|s| s.action.prompts())
        .collect();
    named
        .into_iter()
        .filter(|name| prompts.get(name).is_none())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan naming a greeting with no file and hold audio in a bad file loads; both get
    /// a silent stand-in, the missing one is listed with its place.
    #[test]
    fn unplayable_prompts_get_stand_ins() {
        let dir = tempfile::tempdir().unwrap();
        let prompts = dir.path().join("prompts");
        std::fs::create_dir_all(&prompts).unwrap();
        std::fs::write(prompts.join("hold.wav"), b"not a wav").unwrap();
        std::fs::write(
            dir.path().join("p.toml"),
            "[queues.arm]\nrole = \"arm\"\n[entries.samu]\nnumbers = [\"15\"]\nline = \"samu\"\n\
             start = \"file\"\n[entries.samu.steps.file]\nqueue = \"arm\"\n\
             greeting = \"accueil\"\nhold = \"hold\"\n",
        )
        .unwrap();
        let loaded = load_with_prompts(dir.path(), &prompts);
        let set = loaded.plans.unwrap();
        assert_eq!(loaded.stand_ins, ["accueil", "hold"]);
        assert_eq!(loaded.bad.len(), 1);
        let missing: Vec<&str> = set
            .missing_prompts
            .iter()
            .map(|m| m.prompt.as_str())
            .collect();
        assert_eq!(
            missing,
            ["accueil"],
            "a bad file is reported as bad, not missing"
        );
        for name in ["accueil", "hold"] {
            assert_eq!(
                loaded.prompts.get(name).unwrap().frame_count(),
                50,
                "{name}"
            );
        }
    }
}
