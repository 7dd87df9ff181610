//! The only module with `unsafe`: memory maps of segment files and zero-copy views into them.
//!
//! A [`Mapping`] is a shared, file-backed map with a *readable length*. Bytes below it were
//! written once and never change again while anyone can see them; bytes at or above it are
//! invisible to readers and are where the single writer puts new batches (with `pwrite` on
//! the mapped file, see `active.rs`; the shared map shows the same page-cache pages).
//!
//! ```text
//!   0                         readable                 map len (segment.bytes)
//!   |==== immutable, viewable ====|---- writer only ----|
//! ```
//!
//! - [`WritableMap`] is the unique writer's handle (not `Clone`; `&mut self` to change it).
//!   It moves the readable length forward with `publish` once bytes are written, and can
//!   move it back (`rewind`, for truncation) only when `Arc::get_mut` proves no view or
//!   other handle exists.
//! - [`Mapping::bytes`] hands out `Bytes` views (`Bytes::from_owner`) that keep the map
//!   alive; [`Mapping::slice`] borrows for header scans. A map keeps its file open, so a
//!   server can also send a view's bytes straight from the file (`sendfile`, see
//!   [`crate::FileRange`]).
//!
//! The log never shrinks a file below the readable length of a live map (it copies into a
//! fresh file instead), so views never touch pages past the end of file. As with every
//! memory map, another process truncating or rewriting the files under the data directory
//! is outside what this module can defend against.
#![allow(unsafe_code)]

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A file-backed memory map with an immutable readable prefix.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: MmapRaw,
    readable: AtomicUsize,
    /// The mapped file, from position 0.
    file: Arc<File>,
}

impl Mapping {
    /// Maps `file` read-only; everything in it is readable. `None` for an empty file (a
    /// zero-length map is not allowed).
    pub(crate) fn map_read_only(file: Arc<File>, len: usize) -> io::Result<Option<Arc<Mapping>>> {
        if len == 0 {
            return Ok(None);
        }
        let raw = MmapOptions::new().len(len).map_raw_read_only(&*file)?;
        Ok(Some(Arc::new(Mapping {
            raw,
            readable: AtomicUsize::new(len),
            file,
        })))
    }

    /// The mapped file (map position = file position).
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Length of the readable prefix.
    pub(crate) fn readable(&self) -> usize {
        self.readable.load(Ordering::Acquire)
    }

    /// Borrows `range` of the readable prefix; `None` if it reaches past it.
    pub(crate) fn slice(&self, range: Range<usize>) -> Option<&[u8]> {
        if range.start > range.end || range.end > self.readable() {
            return None;
        }
        // SAFETY: `range` lies inside the map (readable <= map len) and below the readable
        // length, which only the unique `WritableMap` moves: forward after writing (so these
        // bytes are initialised and never written again), or backward only when it holds the
        // sole reference (`Arc::get_mut`), which cannot be while `self` is borrowed through
        // another handle. The log never truncates the file below the readable length of a
        // live map, so the pages exist.
        Some(unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(range.start), range.len()) })
    }

    /// A zero-copy `Bytes` over `range` that keeps the map alive; `None` if out of range.
    pub(crate) fn bytes(self: &Arc<Self>, range: Range<usize>) -> Option<Bytes> {
        self.slice(range.clone())?;
        Some(Bytes::from_owner(View {
            map: Arc::clone(self),
            range,
        }))
    }
}

/// The owner behind a `Bytes` view: a map and a checked range of its readable prefix.
#[derive(Debug)]
struct View {
    map: Arc<Mapping>,
    range: Range<usize>,
}

impl AsRef<[u8]> for View {
    fn as_ref(&self) -> &[u8] {
        // The range was checked against the readable prefix when the view was made, and the
        // readable prefix cannot shrink while this `Arc` exists (see `WritableMap::rewind`).
        self.map.slice(self.range.clone()).unwrap_or(&[])
    }
}

/// The single writer of an active segment's map.
#[derive(Debug)]
pub(crate) struct WritableMap {
    map: Arc<Mapping>,
}

impl WritableMap {
    /// Maps `len` bytes of `file` (already at least that long) read-write, with the first
    /// `readable` bytes visible.
    pub(crate) fn map(file: Arc<File>, len: usize, readable: usize) -> io::Result<WritableMap> {
        assert!(
            readable <= len && len > 0,
            "readable {readable} map length {len}"
        );
        let raw = MmapOptions::new().len(len).map_raw(&*file)?;
        Ok(WritableMap {
            map: Arc::new(Mapping {
                raw,
                readable: AtomicUsize::new(readable),
                file,
            }),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.map.raw.len()
    }

    pub(crate) fn readable(&self) -> usize {
        self.map.readable()
    }

    /// Zeroes `range` (at or after the readable length), so stale batches left behind by a
    /// truncation can never be mistaken for data by a later recovery scan.
    pub(crate) fn zero(&mut self, range: Range<usize>) {
        let end = range.end.min(self.len());
        if range.start >= end {
            return;
        }
        assert!(range.start >= self.readable(), "zeroing readable bytes");
        // SAFETY: the range is inside the map (clamped above) and at or past the readable
        // length (asserted), so no `slice` or `Bytes` view covers it, and `&mut self` on the
        // unique writer handle means nothing else writes there at the same time.
        unsafe {
            std::ptr::write_bytes(
                self.map.raw.as_mut_ptr().add(range.start),
                0,
                end - range.start,
            );
        }
    }

    /// Makes everything below `len` readable (it must have been written).
    pub(crate) fn publish(&mut self, len: usize) {
        assert!(len >= self.readable() && len <= self.len());
        self.map.readable.store(len, Ordering::Release);
    }

    /// Moves the readable length back to `len` so the tail can be overwritten. Only possible
    /// when no view or other handle to the map exists; returns whether it happened.
    pub(crate) fn rewind(&mut self, len: usize) -> bool {
        match Arc::get_mut(&mut self.map) {
            Some(map) if len <= map.raw.len() => {
                *map.readable.get_mut() = len;
                true
            }
            _ => false,
        }
    }

    /// A shared handle for readers.
    pub(crate) fn shared(&self) -> &Arc<Mapping> {
        &self.map
    }

    /// Ends writing; the map lives on as a read-only handle.
    pub(crate) fn into_shared(self) -> Arc<Mapping> {
        self.map
    }

    /// `msync`s `range` (clamped to the map).
    pub(crate) fn flush_range(&self, range: Range<usize>) -> io::Result<()> {
        let end = range.end.min(self.len());
        if range.start >= end {
            return Ok(());
        }
        self.map.raw.flush_range(range.start, end - range.start)
    }
}
