//! The bounded set of read-only maps (with their indexes) of inactive segments.
//!
//! Segments are mapped lazily on first read and the `capacity` most recently used stay
//! mapped; the file descriptor is closed right after mapping. Evicting only drops the
//! cache's handle: `Bytes` views already handed out keep their map alive until dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::index::SegmentIndex;
use crate::mmap::Mapping;

#[derive(Clone, Debug)]
pub(crate) struct CachedSegment {
    /// `None` for an empty segment (nothing to map).
    pub(crate) map: Option<Arc<Mapping>>,
    pub(crate) index: Arc<SegmentIndex>,
}

#[derive(Debug, Default)]
pub(crate) struct MapCache {
    /// Most recently used at the back.
    entries: VecDeque<(i64, CachedSegment)>,
}

impl MapCache {
    pub(crate) fn get(&mut self, base: i64) -> Option<CachedSegment> {
        let i = self.entries.iter().position(|(b, _)| *b == base)?;
        let entry = self.entries.remove(i)?;
        let seg = entry.1.clone();
        self.entries.push_back(entry);
        Some(seg)
    }

    pub(crate) fn insert(&mut self, base: i64, seg: CachedSegment, capacity: usize) {
        self.remove(base);
        self.entries.push_back((base, seg));
        while self.entries.len() > capacity.max(1) {
            self.entries.pop_front();
        }
    }

    /// Takes the segment at `base` out of the cache.
    pub(crate) fn remove(&mut self, base: i64) -> Option<CachedSegment> {
        let i = self.entries.iter().position(|(b, _)| *b == base)?;
        self.entries.remove(i).map(|(_, seg)| seg)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
