//! The active (last) segment: its file, read-write map and index builder.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::path::{Path, PathBuf};

use crate::cache::CachedSegment;
use crate::error::LogError;
use crate::mmap::WritableMap;
use crate::segment::{self, IndexBuilder};
use crate::spare::Spare;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) base: i64,
    /// Shared with the map, which keeps it open for views sent from the file.
    pub(crate) file: Arc<File>,
    pub(crate) map: WritableMap,
    pub(crate) builder: IndexBuilder,
    /// Bytes below this were `msync`ed.
    pub(crate) flushed_to: u32,
    /// Opened from a file an earlier instance of the log wrote: views that instance handed
    /// out may still map it, so it is never rewound in place (truncation copies instead).
    pub(crate) inherited: bool,
    path: PathBuf,
}

// No blocks are allocated ahead of the writes (Kafka's `log.preallocate` is off by default
// too). Gregor once `fallocate`d a window ahead of the write position, to spare ext4 the
// delayed-allocation work of each page (a 1 GiB `dd`: 0.14 s of system time against 0.23 s).
// But `fallocate` changes the file system's block bitmaps, and while any fsync on the same
// file system was writing those out (the maintenance tick's fsync of a rolled segment, in
// this broker or another one), it waited for the disk: strace showed it taking 0.4-0.77 s
// inside an append, under the partition's lock, and acks=all produces stalled for as long
// (ISR shrinks, NOT_ENOUGH_REPLICAS_AFTER_APPEND). A write into a hole only reserves blocks.

impl Active {
    /// Opens (creating if needed) the segment file at `base` whose first `size` bytes are
    /// valid, zeroes everything after them, sizes it to `capacity` (sparse) and maps it.
    pub(crate) fn open(
        dir: &Path,
        base: i64,
        size: u32,
        builder: IndexBuilder,
        capacity: u64,
    ) -> Result<Active, LogError> {
        let path = segment::log_path(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map(Arc::new)
            .map_err(LogError::io(&path))?;
        let len = capacity.max(u64::from(size)).max(1);
        // Cut then extend: whatever followed the valid bytes (a torn batch, or batches a
        // truncation removed) becomes zeroes, so no later scan can resurrect it.
        file.set_len(u64::from(size)).map_err(LogError::io(&path))?;
        file.set_len(len).map_err(LogError::io(&path))?;
        Self::map_file(dir, base, path, file, len, size, builder)
    }

    /// The active segment at `base` over `file` (`len` bytes, the first `size` valid).
    fn map_file(
        dir: &Path,
        base: i64,
        path: PathBuf,
        file: Arc<File>,
        len: u64,
        size: u32,
        builder: IndexBuilder,
    ) -> Result<Active, LogError> {
        let map = WritableMap::map(file.clone(), len as usize, size as usize)
            .map_err(LogError::io(&path))?;
        // The active segment's indexes live in memory and are written when it stops being
        // active (recovery always rescans it); empty files mark that the segment has them.
        builder_files_placeholder(dir, base)?;
        Ok(Active {
            base,
            file,
            map,
            builder,
            flushed_to: size,
            inherited: false,
            path,
        })
    }

    /// Makes `spare` (a file allocated ahead, see `spare.rs`) the empty segment at `base`.
    /// Its blocks were never written, so it reads as zeroes and needs no cut.
    pub(crate) fn from_spare(
        dir: &Path,
        base: i64,
        builder: IndexBuilder,
        spare: Spare,
    ) -> Result<Active, LogError> {
        let path = segment::log_path(dir, base);
        std::fs::rename(&spare.path, &path).map_err(LogError::io(&path))?;
        let len = spare.capacity.max(1);
        Self::map_file(dir, base, path, Arc::new(spare.file), len, 0, builder)
    }

    /// Free bytes in the map.
    pub(crate) fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Writes one batch at the end of the segment and makes it readable through the map.
    /// `parts` are the batch's bytes in order (a leader append passes its patched
    /// 16-byte prefix and the request's bytes after it, so the batch is never copied in
    /// user space).
    ///
    /// The bytes go in with one `pwritev` on the mapped file: the map is `MAP_SHARED`, so
    /// it shows the same page-cache pages, and `Bytes` views of them need no copy. Storing
    /// through the map instead (what DESIGN.md describes) was measured erratic here,
    /// 0.14-0.37x of `write(2)`: every store into a hole of the sparse file takes a fault
    /// that zero-fills it through readahead. A write call runs at full speed and turns a
    /// full disk into an `Io` error instead of a `SIGBUS` on a store. The write lands at or
    /// after the readable length, where no view looks (see `mmap.rs`).
    pub(crate) fn write(&mut self, pos: u32, parts: &[&[u8]]) -> Result<(), LogError> {
        let end = self.write_parts(pos, parts)?;
        self.map.publish(end);
        Ok(())
    }

    /// Writes `bytes` at `pos` without making them readable: the caller indexes what it
    /// wrote first and then publishes the end.
    pub(crate) fn write_unpublished(&mut self, pos: u32, bytes: &[u8]) -> Result<(), LogError> {
        self.write_parts(pos, &[bytes]).map(|_| ())
    }

    fn write_parts(&mut self, pos: u32, parts: &[&[u8]]) -> Result<usize, LogError> {
        let pos = pos as usize;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let end = pos + len;
        assert!(pos >= self.map.readable() && end <= self.map.len());
        write_all_at(&self.file, pos as u64, parts).map_err(LogError::io(&self.path))?;
        Ok(end)
    }

    /// Stops being active: seals and saves the indexes and trims the file to `size`.
    /// Views already handed out only cover bytes below `size`, so trimming is safe for them.
    pub(crate) fn finish(mut self, dir: &Path, size: u32) -> Result<CachedSegment, LogError> {
        self.builder.seal();
        let index = std::mem::take(&mut self.builder.index);
        index.save(
            &segment::index_path(dir, self.base),
            &segment::time_index_path(dir, self.base),
        )?;
        let path = segment::log_path(dir, self.base);
        self.file
            .set_len(u64::from(size))
            .map_err(LogError::io(&path))?;
        let map = (size > 0).then(|| self.map.into_shared());
        Ok(CachedSegment {
            map,
            index: Arc::new(index),
        })
    }
}

fn builder_files_placeholder(dir: &Path, base: i64) -> Result<(), LogError> {
    for path in [
        segment::index_path(dir, base),
        segment::time_index_path(dir, base),
    ] {
        File::create(&path).map_err(LogError::io(&path))?;
    }
    Ok(())
}

/// Writes all of `parts` at `offset` with one `pwritev` (more only after a short write).
pub(crate) fn write_all_at(file: &File, mut offset: u64, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match rustix::io::pwritev(file, bufs, offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut bufs, n);
                offset += n as u64;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
