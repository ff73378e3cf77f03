//! Syncing a group commit's recordings with one `syncfs(2)` per file system, rather than an
//! `fdatasync` per file and an `fsync` per directory. On ext4 each of those waits for a
//! journal commit of its own, one after the other; one `syncfs` writes every file out and
//! commits once (at 1,000 calls/s: the kernel's IO threads 0.25 → 0.09 ms a call,
//! docs/performance.md).
//!
//! A `syncfs` says nothing of which file failed, and says it through the descriptor it is
//! given: each writeback error on the file system since that descriptor last asked (since
//! Linux 5.8; before, never). So the writer holds a directory open on each file system it
//! has seen, and syncs through it: an error anywhere on that file system since the previous
//! group sends the group's recordings to the one-by-one syncs, which say which of them
//! failed. A file system seen for the first time goes one by one too: its descriptor,
//! opened now, would not report an error from before.
//!
//! A `syncfs` also writes out every other file's dirty pages: the recordings of the calls
//! still going first of all, whose last page it would write again at every group. So it
//! is used only while the group's recordings are at least as many as those still being
//! written (short calls, a burst of ends); with many long calls going, each finished one
//! goes one by one, as a `syncfs` would cost more than it saves.

use sas_core::id_map::IdMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The directories held open, by file system.
pub(super) struct FileSystems {
    /// `syncfs` reports writeback errors (Linux 5.8 or later); if not, every file goes
    /// one by one.
    reports_errors: bool,
    held: IdMap<u64, File>,
}

impl FileSystems {
    /// For the running kernel.
    pub(super) fn new() -> Self {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self::with_errors_reported(reports_errors(&release))
    }

    fn with_errors_reported(reports_errors: bool) -> Self {
        Self {
            reports_errors,
            held: IdMap::default(),
        }
    }

    /// Syncs, file system by file system, the `files` (open, written; each with the path it
    /// has), unless fewer than the `writing` recordings still being written: those on a file
    /// system whose `syncfs` succeeded are on disk, names included. Returns the others, for
    /// the one-by-one syncs.
    pub(super) fn sync<T>(
        &mut self,
        files: Vec<T>,
        writing: usize,
        open: impl Fn(&T) -> (&Path, &File),
    ) -> Vec<T> {
        if !self.reports_errors || files.is_empty() || files.len() < writing {
            return files;
        }
        let mut by_device: IdMap<u64, Vec<T>> = IdMap::default();
        let mut one_by_one = Vec::new();
        for item in files {
            match open(&item).1.metadata() {
                Ok(meta) => by_device.entry(meta.dev()).or_default().push(item),
                Err(_) => one_by_one.push(item),
            }
        }
        for (device, group) in by_device {
            match self.held.get(&device) {
                Some(dir) => match nix::unistd::syncfs(dir) {
                    Ok(()) => continue,
                    Err(e) => tracing::warn!(
                        error = %e,
                        "a write on the recordings' file system failed: each recording synced on its own"
                    ),
                },
                None => {
                    let dir = open(&group[0]).0.parent().and_then(|d| File::open(d).ok());
                    if let Some(dir) = dir {
                        self.held.insert(device, dir);
                    }
                }
            }
            one_by_one.extend(group);
        }
        one_by_one
    }
}

/// Whether a kernel of this release (`/proc/sys/kernel/osrelease`) reports writeback errors
/// through `syncfs` (5.8 or later).
fn reports_errors(release: &str) -> bool {
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (5, 8),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    #[test]
    fn syncfs_reports_errors_from_linux_5_8() {
        assert!(reports_errors("6.1.0-18-amd64\n"));
        assert!(reports_errors("5.8.0"));
        assert!(!reports_errors("5.4.0-150-generic"));
        assert!(!reports_errors("4.19.0"));
        assert!(!reports_errors(""));
        assert!(!reports_errors("garbage"));
    }

    fn open((path, file): &(PathBuf, File)) -> (&Path, &File) {
        (path, file)
    }

    fn written(dir: &Path, name: &str) -> (PathBuf, File) {
        let path = dir.join(name);
        let mut file = File::create(&path).unwrap();
        file.write_all(b"RIFF").unwrap();
        (path, file)
    }

    /// A file system seen for the first time goes one by one (its descriptor, opened now,
    /// would miss an earlier error); after that one `syncfs` covers a group, unless more
    /// recordings are still being written than the group holds; a kernel that does not
    /// report errors through it sends every file one by one.
    #[test]
    fn a_known_file_system_takes_one_syncfs_for_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut fs = FileSystems::with_errors_reported(true);
        let first = vec![written(dir.path(), "a.wav")];
        assert_eq!(fs.sync(first, 0, open).len(), 1, "first seen: one by one");
        let group = vec![written(dir.path(), "b.wav"), written(dir.path(), "c.wav")];
        assert!(fs.sync(group, 2, open).is_empty(), "synced by one syncfs");
        assert_eq!(fs.held.len(), 1);
        let group = vec![written(dir.path(), "d.wav"), written(dir.path(), "e.wav")];
        assert_eq!(
            fs.sync(group, 3, open).len(),
            2,
            "more recordings going than ending: one by one"
        );

        let mut old = FileSystems::with_errors_reported(false);
        let group = vec![written(dir.path(), "f.wav"), written(dir.path(), "g.wav")];
        assert_eq!(old.sync(group, 0, open).len(), 2);
        assert!(old.held.is_empty());
    }
}
