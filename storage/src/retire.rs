//! Whole log directories that are no longer logs (topic deleted, replica moved away),
//! renamed at once and deleted later, in steps.
//!
//! As in Kafka, a deleted log's directory `<topic>-<partition>` is first renamed to
//! `<topic>-<partition>.<unique>-delete` ([`retire_dir`]): cheap, so the caller (the metadata
//! thread) goes on, and a topic recreated under the same name gets a fresh directory at
//! once. [`RetiredDir::remove`] then deletes its files one by one, each shortened in steps
//! as retention's [`Trash`](crate::Trash) does (a gigabyte freed at once is one gigabyte
//! discard on a disk mounted with online discard, and the appends' writeback waits behind
//! it). A retired directory left by a crash is found again by its name
//! ([`is_retired_dir_name`]) and removed the same way.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::checkpoint::sync_dir;
use crate::error::LogError;
use crate::trash::{
    is_unmapped, mapped_files, remove_if_present, shrink_in_steps, DELETE_STEP_BYTES,
};

/// Suffix of a retired log directory (Kafka's).
pub const RETIRED_DIR_SUFFIX: &str = "-delete";

/// Whether a directory name is that of a retired log. A live log's directory always ends
/// in `-<partition number>`, so it never matches.
pub fn is_retired_dir_name(name: &str) -> bool {
    name.ends_with(RETIRED_DIR_SUFFIX)
}

/// A log directory renamed out of the way, waiting to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the directory stays on disk until it is removed"]
pub struct RetiredDir {
    path: PathBuf,
}

/// Renames `dir` to `<name>.<unique>-delete` beside it and syncs the parent directory, so
/// the log is gone under its name even after a crash.
pub fn retire_dir(dir: &Path) -> Result<RetiredDir, LogError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |source| LogError::Io {
        path: dir.to_owned(),
        source,
    };
    let name = dir
        .file_name()
        .ok_or_else(|| io(std::io::ErrorKind::InvalidInput.into()))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let unique = format!(
        ".{nanos:x}{:x}{RETIRED_DIR_SUFFIX}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut retired = name.to_owned();
    retired.push(unique);
    let path = dir.with_file_name(retired);
    fs::rename(dir, &path).map_err(io)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(RetiredDir { path })
}

impl RetiredDir {
    /// A retired directory found on disk (named as [`is_retired_dir_name`] says).
    pub fn found(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the directory: each file shortened in steps (unless the process still maps
    /// it: a view being sent), then removed. Blocks for as long as that takes; call it
    /// where blocking is fine. A directory already gone is not an error.
    pub fn remove(self) -> Result<(), LogError> {
        self.remove_in_steps(DELETE_STEP_BYTES)
    }

    fn remove_in_steps(self, step: u64) -> Result<(), LogError> {
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let mapped = mapped_files();
        for entry in entries {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            if entry.file_type().map_err(io)?.is_dir() {
                // Logs hold no subdirectories; whatever put one here, it goes whole.
                fs::remove_dir_all(&path).map_err(|source| LogError::Io { path, source })?;
                continue;
            }
            if is_unmapped(&path, mapped.as_deref()) {
                shrink_in_steps(&path, step)?;
            }
            remove_if_present(&path)?;
        }
        match fs::remove_dir(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Mapping;
    use std::sync::Arc;

    fn write(path: &Path, len: usize) -> Vec<u8> {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        fs::write(path, &bytes).unwrap();
        bytes
    }

    #[test]
    fn a_retired_directory_gets_a_unique_name_that_reads_as_retired() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t-0");
        fs::create_dir(&log).unwrap();
        write(&log.join("0.log"), 100);
        let first = retire_dir(&log).unwrap();
        fs::create_dir(&log).unwrap();
        let second = retire_dir(&log).unwrap();
        assert_ne!(first, second);
        for r in [&first, &second] {
            let name = r.path().file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("t-0.") && is_retired_dir_name(name),
                "{name}"
            );
        }
        assert!(!log.exists());
        assert!(first.path().join("0.log").exists());
        assert!(!is_retired_dir_name("t-delete-0"));
        assert!(retire_dir(&log).is_err(), "nothing to retire");
    }

    #[test]
    fn removal_shortens_unmapped_files_and_leaves_mapped_ones_readable() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t-0");
        fs::create_dir(&log).unwrap();
        let plain = log.join("0.log");
        write(&plain, 10 * 4096 + 100);
        let viewed = log.join("1.log");
        let bytes = write(&viewed, 64 * 1024);
        let map = Mapping::map_read_only(Arc::new(fs::File::open(&viewed).unwrap()), bytes.len())
            .unwrap()
            .unwrap();
        let view = map.bytes(0..bytes.len()).unwrap();
        drop(map);
        let retired = retire_dir(&log).unwrap();
        let path = retired.path().to_owned();
        // An open file (not a map) outlives the removal and shows what was left of it.
        let open = fs::File::open(path.join("0.log")).unwrap();
        retired.remove_in_steps(4096).unwrap();
        assert!(!path.exists());
        assert_eq!(open.metadata().unwrap().len(), 100, "shortened in steps");
        // Had the viewed file been cut under its map, this read would fault (SIGBUS).
        assert_eq!(&view[..], &bytes[..]);
        RetiredDir::found(path).remove().unwrap();
    }
}
