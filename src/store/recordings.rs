//! Recording files: where they live (`<data_dir>/recordings/YYYY/MM/DD/<call id>.wav`, dates
//! in UTC), the retention purge, and [`Recordings::open_for_reading`], the one way to read
//! one. Both deletions and reads are written to the audit log before they happen.

use super::audit::AuditEntry;
use super::{Store, StoreError};
use crate::config::Config;
use crate::media::recording::resolve;
use crate::time::EpochMillis;
use chrono::{DateTime, Datelike, NaiveDate};
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The recordings root, under the data directory.
pub const RECORDINGS_DIR: &str = "recordings";
const DAY_MS: u64 = 86_400_000;
/// Longest file name kept from a call id (file systems allow 255 bytes).
const MAX_NAME: usize = 128;

/// Audit action of a recording read.
pub const ACTION_READ: &str = "recording.read";
/// Audit action of a recording deleted by the retention purge.
pub const ACTION_PURGE: &str = "recording.purge";

/// What a purge did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Recordings deleted (each one audited first).
    pub deleted: usize,
    /// Recordings younger than the retention, kept.
    pub kept: usize,
    /// Recordings past retention that could not be deleted (retried next run).
    pub failed: usize,
    /// Entries outside the `YYYY/MM/DD/*.wav` layout (symlinks included), left alone.
    pub unrecognised: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// Purge failures that stop the run.
#[derive(Debug, Error)]
pub enum PurgeError {
    /// A directory of the tree could not be listed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The audit log refused an entry: nothing more is deleted.
    #[error("audit log unavailable, purge stopped: {0}")]
    Audit(#[source] StoreError),
}

/// Why a recording was not handed out.
#[derive(Debug, Error)]
pub enum RecordingAccessError {
    /// The reader must say who they are (non-empty, at most 128 characters, printable).
    #[error("the reader's name is missing or malformed")]
    InvalidActor,
    /// No such call in the store.
    #[error("no call {0}")]
    UnknownCall(String),
    /// The call has no recording (not answered, or recorded before recordings existed).
    #[error("call {0} has no recording")]
    NoRecording(String),
    /// The record's path would leave the recordings root.
    #[error("recording path {0:?} would leave the recordings directory")]
    UnsafePath(String),
    /// The call store could not be read.
    #[error("call store: {0}")]
    Store(#[source] StoreError),
    /// The audit entry could not be written: the recording is not opened.
    #[error("audit log unavailable, recording not opened: {0}")]
    Audit(#[source] StoreError),
    /// The file could not be opened (purged, moved, unreadable).
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The recordings directory and its retention.
#[derive(Debug, Clone)]
pub struct Recordings {
    root: PathBuf,
    retention_days: u32,
}

impl Recordings {
    /// Recordings under `root`, kept at least `retention_days`.
    pub fn new(root: PathBuf, retention_days: u32) -> Self {
        Self {
            root,
            retention_days,
        }
    }

    /// `<store.data_dir>/recordings` with `recording.retention_days`.
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            config.store.data_dir.join(RECORDINGS_DIR),
            config.recording.retention_days,
        )
    }

    /// The root directory (relative paths in records are relative to it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `YYYY/MM/DD/<call id>.wav` for a call recorded from `at` (UTC). Characters other than
    /// ASCII letters, digits, `.`, `-` and `_` become `_`, so the name stays one plain file
    /// name inside its date directory.
    pub fn relative_path(call_id: &str, at: EpochMillis) -> String {
        let date = i64::try_from(at)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let name: String = call_id
            .chars()
            .take(MAX_NAME)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // Numbers, not `format("%Y/%m/%d")`: that parses its pattern on every call.
        let (year, month, day) = (date.year(), date.month(), date.day());
        format!("{year:04}/{month:02}/{day:02}/{name}.wav")
    }

    /// Deletes the `.wav` files past retention. A file's age counts from the later of the end
    /// of the day its directory names and its modification time, so a misplaced or re-dated
    /// file is never deleted early. Each deletion is audited (as `actor`) before the file is
    /// removed; an audit failure stops the run. Emptied date directories past retention are
    /// removed; symlinks and anything outside the layout are left alone.
    pub fn purge(
        &self,
        now: EpochMillis,
        store: &Store,
        actor: &str,
    ) -> Result<PurgeReport, PurgeError> {
        let mut pass = Pass {
            recordings: self,
            now,
            store,
            actor,
            report: PurgeReport::default(),
        };
        if self.root.is_dir() {
            pass.tree()?;
        }
        Ok(pass.report)
    }

    /// Whether something last touched at `newest` is older than the retention at `now`.
    fn expired(&self, now: EpochMillis, newest: EpochMillis) -> bool {
        now.saturating_sub(newest) > u64::from(self.retention_days) * DAY_MS
    }

    /// Opens the recording of `call_id` for `actor`, after writing who, when (`now`) and why
    /// to the audit log. If the audit entry cannot be written, the file is not opened. Every
    /// read of a recording goes through here.
    pub fn open_for_reading(
        &self,
        now: EpochMillis,
        store: &Store,
        call_id: &str,
        actor: &str,
        purpose: Option<&str>,
    ) -> Result<(PathBuf, File), RecordingAccessError> {
        let actor = actor.trim();
        if actor.is_empty() || actor.chars().count() > 128 || actor.chars().any(char::is_control) {
            return Err(RecordingAccessError::InvalidActor);
        }
        let record = store
            .get_call(call_id)
            .map_err(RecordingAccessError::Store)?
            .ok_or_else(|| RecordingAccessError::UnknownCall(call_id.to_string()))?;
        let info = record
            .recording
            .ok_or_else(|| RecordingAccessError::NoRecording(call_id.to_string()))?;
        let path = resolve(&self.root, &info.path)
            .map_err(|_| RecordingAccessError::UnsafePath(info.path.clone()))?;
        store
            .audit(&AuditEntry {
                at: now,
                actor: actor.to_string(),
                action: ACTION_READ.into(),
                target: call_id.to_string(),
                detail: purpose.map(str::to_string),
            })
            .map_err(RecordingAccessError::Audit)?;
        let file = File::open(&path).map_err(|source| RecordingAccessError::Io {
            path: path.clone(),
            source,
        })?;
        Ok((path, file))
    }
}

/// One purge run over the tree.
struct Pass<'a> {
    recordings: &'a Recordings,
    now: EpochMillis,
    store: &'a Store,
    actor: &'a str,
    report: PurgeReport,
}

impl Pass<'_> {
    fn tree(&mut self) -> Result<(), PurgeError> {
        let root = self.recordings.root.clone();
        for (year, year_dir, y) in dated_subdirs(&root, 4, &mut self.report)? {
            for (month, month_dir, m) in dated_subdirs(&year_dir, 2, &mut self.report)? {
                for (day, day_dir, d) in dated_subdirs(&month_dir, 2, &mut self.report)? {
                    let Some(date) = NaiveDate::from_ymd_opt(year as i32, month, day) else {
                        self.report.unrecognised += 1;
                        continue;
                    };
                    // The directory's date means "recorded at the latest by the end of it".
                    let day_end = date
                        .succ_opt()
                        .and_then(|next| next.and_hms_opt(0, 0, 0))
                        .map_or(u64::MAX, |t| t.and_utc().timestamp_millis().max(0) as u64);
                    self.day(&day_dir, &format!("{y}/{m}/{d}"), day_end)?;
                    if self.recordings.expired(self.now, day_end)
                        && std::fs::remove_dir(&day_dir).is_ok()
                    {
                        // Parents go only once empty: remove_dir refuses otherwise.
                        let _ = std::fs::remove_dir(&month_dir);
                        let _ = std::fs::remove_dir(&year_dir);
                    }
                }
            }
        }
        Ok(())
    }

    fn day(&mut self, dir: &Path, prefix: &str, day_end: EpochMillis) -> Result<(), PurgeError> {
        for entry in list(dir)? {
            let name = entry.file_name();
            let is_wav = name.to_str().is_some_and(|n| n.ends_with(".wav"));
            // DirEntry::file_type does not follow symlinks.
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if !is_wav || !is_file {
                self.report.unrecognised += 1;
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                self.report.kept += 1;
                continue;
            };
            // Without a readable mtime the file counts as new: never delete on a guess.
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(u64::MAX, |d| d.as_millis() as u64);
            let newest = day_end.max(modified);
            if !self.recordings.expired(self.now, newest) {
                self.report.kept += 1;
                continue;
            }
            let target = format!("{prefix}/{}", name.to_string_lossy());
            let age_days = self.now.saturating_sub(newest) / DAY_MS;
            self.store
                .audit(&AuditEntry {
                    at: self.now,
                    actor: self.actor.to_string(),
                    action: ACTION_PURGE.into(),
                    target: target.clone(),
                    detail: Some(format!(
                        "age {age_days} days, retention {} days",
                        self.recordings.retention_days
                    )),
                })
                .map_err(PurgeError::Audit)?;
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    self.report.deleted += 1;
                    self.report.bytes_freed += meta.len();
                }
                Err(e) => {
                    tracing::warn!(recording = %target, error = %e, "purge could not delete");
                    self.report.failed += 1;
                }
            }
        }
        Ok(())
    }
}

fn list(dir: &Path) -> Result<Vec<std::fs::DirEntry>, PurgeError> {
    let io = |source| PurgeError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)
}

/// Real (not symlinked) subdirectories of `dir` named by `digits` digits: (value, path,
/// name). Everything else is counted as unrecognised.
fn dated_subdirs(
    dir: &Path,
    digits: usize,
    report: &mut PurgeReport,
) -> Result<Vec<(u32, PathBuf, String)>, PurgeError> {
    let mut found = Vec::new();
    for entry in list(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let value = (name.len() == digits && name.bytes().all(|b| b.is_ascii_digit()))
            .then(|| name.parse().ok())
            .flatten();
        match value {
            Some(v) if is_dir => found.push((v, entry.path(), name)),
            _ => report.unrecognised += 1,
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
