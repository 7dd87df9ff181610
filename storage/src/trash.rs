//! Segments that retention took out of a log, deleted later without the log's lock.
//!
//! Deleting a segment frees its page-cache pages and disk blocks, which can take long
//! under write load (ext4 journals the freeing). Like Kafka (`.deleted` files, deleted after
//! `file.delete.delay.ms`), retention only renames a segment's files to `<name>.deleted`
//! while it holds the log, and [`Trash::empty`] removes them afterwards. Files left behind
//! by a crash are removed when the log opens.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::CachedSegment;
use crate::error::LogError;

/// Suffix of a segment file that is no longer part of its log.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// Segment files taken out of a log, waiting to be deleted.
#[derive(Debug, Default)]
#[must_use = "the files stay on disk (as *.deleted) until the trash is emptied"]
pub struct Trash {
    paths: Vec<PathBuf>,
    /// The segments' maps: dropped here, outside the log's lock, if no view holds them.
    maps: Vec<CachedSegment>,
}

impl Trash {
    /// Renames `files` (those that exist) to `<name>.deleted` and keeps the segment's map.
    pub(crate) fn add(
        &mut self,
        files: impl IntoIterator<Item = PathBuf>,
        map: Option<CachedSegment>,
    ) -> Result<(), LogError> {
        for path in files {
            let mut name = path.clone().into_os_string();
            name.push(DELETED_SUFFIX);
            let deleted = PathBuf::from(name);
            match fs::rename(&path, &deleted) {
                Ok(()) => self.paths.push(deleted),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::Io { path, source: e }),
            }
        }
        self.maps.extend(map);
        Ok(())
    }

    pub(crate) fn take(&mut self) -> Trash {
        std::mem::take(self)
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.maps.is_empty()
    }

    /// Deletes the files (and drops the maps no view holds any more).
    pub fn empty(self) -> Result<(), LogError> {
        drop(self.maps);
        for path in self.paths {
            remove_if_present(&path)?;
        }
        Ok(())
    }
}

/// Whether `name` is a file [`Trash`] renamed (left behind by a crash).
pub(crate) fn is_deleted_name(name: &str) -> bool {
    name.ends_with(DELETED_SUFFIX)
}

/// Removes `path`; a file already gone is not an error.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}
