//! Segments that retention took out of a log, deleted later without the log's lock.
//!
//! Deleting a segment frees its page-cache pages and disk blocks, which can take long
//! under write load (ext4 journals the freeing). Like Kafka (`.deleted` files, deleted after
//! `file.delete.delay.ms`), retention only renames a segment's files to `<name>.deleted`
//! while it holds the log, and [`Trash::empty`] removes them afterwards. Files left behind
//! by a crash are removed when the log opens.
//!
//! A large file is shortened step by step before it is removed ([`shrink_in_steps`]): on a
//! filesystem mounted with online discard (`-o discard`, common on cloud disks) freeing a
//! gigabyte segment at once sends the disk one discard of a gigabyte, and the appends'
//! writeback queued behind it stalled produce requests for up to 1.3 s here. RocksDB's file
//! deletion does the same for the same reason. A file is only shortened when the process
//! maps no part of it (`/proc/self/maps`; views never see past the end of file); otherwise
//! it is just removed, and the last view frees it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::CachedSegment;
use crate::error::LogError;

/// Suffix of a segment file that is no longer part of its log.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// How much a file is shortened per step before it is removed.
pub(crate) const DELETE_STEP_BYTES: u64 = 32 << 20;
/// The longest pause after a step (each pause is as long as its step took, so the disk
/// spends at most half its time on a deletion).
const MAX_STEP_PAUSE: Duration = Duration::from_millis(50);

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

    /// Deletes the files (and drops the maps no view holds any more). Blocks for as long as
    /// the deletion takes (pausing between steps of a large file): call it where blocking
    /// is fine.
    pub fn empty(self) -> Result<(), LogError> {
        self.empty_in_steps(DELETE_STEP_BYTES)
    }

    fn empty_in_steps(self, step: u64) -> Result<(), LogError> {
        // The maps this trash holds go now. A map of the file elsewhere in the process (a
        // view still being sent, or an older map of the segment the cache let go of while a
        // view held it) shows in /proc/self/maps, and then the file is removed whole: cut
        // under a map, its pages would fault (SIGBUS). No new map can appear, as the
        // segment is no longer in its log.
        drop(self.maps);
        if self.paths.is_empty() {
            return Ok(());
        }
        let mapped = mapped_files();
        for path in self.paths {
            if is_unmapped(&path, mapped.as_deref()) {
                shrink_in_steps(&path, step)?;
            }
            remove_if_present(&path)?;
        }
        Ok(())
    }
}

/// Whether `name` is a file [`Trash`] renamed (left behind by a crash).
pub(crate) fn is_deleted_name(name: &str) -> bool {
    name.ends_with(DELETED_SUFFIX)
}

/// The files this process maps (the path column of `/proc/self/maps`); `None` where it
/// cannot be read.
pub(crate) fn mapped_files() -> Option<Vec<String>> {
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    Some(
        maps.lines()
            .filter_map(|l| l.find(" /").map(|at| l[at + 1..].to_owned()))
            .collect(),
    )
}

/// Whether `path` is certainly not mapped: it resolves to a plain path that is not among
/// `mapped` (a path the maps file would escape, or no maps file, counts as mapped).
pub(crate) fn is_unmapped(path: &Path, mapped: Option<&[String]>) -> bool {
    let (Some(mapped), Ok(full)) = (mapped, fs::canonicalize(path)) else {
        return false;
    };
    match full.to_str() {
        Some(full) if !full.contains(['\n', '\\']) => !mapped.iter().any(|m| m == full),
        _ => false,
    }
}

/// Shortens the file at `path` by `step` bytes at a time down to nothing, pausing after
/// each step as long as it took (at most [`MAX_STEP_PAUSE`]). A file already gone is not an
/// error.
pub(crate) fn shrink_in_steps(path: &Path, step: u64) -> Result<(), LogError> {
    let io = |source| LogError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mut len = file.metadata().map_err(io)?.len();
    while len > step {
        len -= step;
        let started = Instant::now();
        file.set_len(len).map_err(io)?;
        std::thread::sleep(started.elapsed().min(MAX_STEP_PAUSE));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::SegmentIndex;
    use crate::mmap::Mapping;
    use std::sync::Arc;

    fn file_of(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
        let path = dir.join(name);
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    #[test]
    fn a_file_is_shortened_step_by_step_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = file_of(dir.path(), "a.log.deleted", 10 * 4096 + 100);
        shrink_in_steps(&path, 4096).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 100);
        shrink_in_steps(&dir.path().join("gone"), 4096).unwrap();
    }

    /// A file of `len` bytes with a map of all of it.
    fn mapped_file(dir: &Path, len: usize) -> (PathBuf, Vec<u8>, Arc<Mapping>) {
        let (path, bytes) = file_of(dir, "0.log.deleted", len);
        let file = Arc::new(fs::File::open(&path).unwrap());
        let map = Mapping::map_read_only(file, len).unwrap().unwrap();
        (path, bytes, map)
    }

    /// A trash of `path`, holding `map` if given.
    fn trash_of(path: &Path, map: Option<Arc<Mapping>>) -> Trash {
        Trash {
            paths: vec![path.to_owned()],
            maps: map
                .into_iter()
                .map(|m| CachedSegment {
                    map: Some(m),
                    index: Arc::new(SegmentIndex::default()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_file_counts_as_mapped_exactly_while_a_map_of_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = file_of(dir.path(), "0.log.deleted", 64 * 1024);
        assert!(is_unmapped(&path, mapped_files().as_deref()));
        let (path, _, map) = mapped_file(dir.path(), 64 * 1024);
        assert!(!is_unmapped(&path, mapped_files().as_deref()));
        drop(map);
        assert!(is_unmapped(&path, mapped_files().as_deref()));
        assert!(!is_unmapped(&path, None), "no maps file: counts as mapped");
    }

    #[test]
    fn a_segment_only_the_trash_maps_is_shortened_before_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, map) = mapped_file(dir.path(), 10 * 4096 + 100);
        // An open file (not a map) outlives the removal and shows what was left of it.
        let open = fs::File::open(&path).unwrap();
        trash_of(&path, Some(map)).empty_in_steps(4096).unwrap();
        assert!(!path.exists());
        assert_eq!(
            open.metadata().unwrap().len(),
            100,
            "shortened in steps first"
        );
    }

    /// Empties a trash of `path` that holds `map` (or none) and checks that `view` still
    /// reads `bytes`: had the file been shortened under a live map, the read would fault
    /// (SIGBUS) instead.
    fn empty_and_read_view(path: PathBuf, map: Option<Arc<Mapping>>, view: &[u8], bytes: &[u8]) {
        trash_of(&path, map).empty_in_steps(4096).unwrap();
        assert!(!path.exists());
        assert_eq!(view, bytes);
    }

    #[test]
    fn a_segment_viewed_through_a_map_the_trash_lacks_is_not_shortened() {
        // The cache let the map go while a view held it: the trash has no map of the file.
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, map) = mapped_file(dir.path(), 64 * 1024);
        let view = map.bytes(0..bytes.len()).unwrap();
        drop(map);
        empty_and_read_view(path, None, &view, &bytes);
    }

    #[test]
    fn a_viewed_segment_is_not_shortened_under_its_view() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, map) = mapped_file(dir.path(), 64 * 1024);
        let view = map.bytes(0..bytes.len()).unwrap();
        empty_and_read_view(path, Some(map), &view, &bytes);
    }
}
