//! Reads (zero-copy `Bytes` views of whole batches, with where they lie in their file) and
//! timestamp lookups.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use protocol::ids::Offset;

use crate::batch::{BatchError, BatchHeader};
use crate::error::LogError;
use crate::index::SegmentIndex;
use crate::log::{LogRead, PartitionLog, TimestampOffset};
use crate::mmap::Mapping;
use crate::segment;

/// Where a read's bytes lie in a segment file: the same bytes as the read's `Bytes` view, so
/// a server can hand them to the socket with `sendfile` instead of copying them out of the
/// map. Valid while that view is alive: the log never shrinks or rewrites a file below the
/// readable length of a map a view holds (see `mmap.rs`).
#[derive(Clone, Debug)]
pub struct FileRange {
    pub file: Arc<File>,
    pub position: u64,
}

impl PartitionLog {
    /// Reads whole batches starting with the one containing `from`, from one segment: at
    /// most `max_bytes`, but always at least one batch if one lies entirely below
    /// `upper_bound` (the high watermark for consumers); never a batch reaching
    /// `upper_bound`. Every batch header on the way is checked (length, magic, offsets), so
    /// a segment the log cannot walk is a [`LogError::Corrupt`]; CRCs are checked on
    /// append and recovery, not here (Kafka's consumers check them).
    pub fn read(
        &self,
        from: Offset,
        max_bytes: usize,
        upper_bound: Offset,
    ) -> Result<LogRead, LogError> {
        let (start, end) = (self.log_start, self.log_end_offset().0);
        if from.0 < start || from.0 > end {
            return Err(LogError::OffsetOutOfRange {
                partition: self.name.clone(),
                requested: from,
                log_start: Offset(start),
                log_end: Offset(end),
            });
        }
        let upper = upper_bound.0.min(end);
        let (mut records, mut file) = (Bytes::new(), None);
        if from.0 < upper {
            let first = *self
                .segments
                .range(..=from.0)
                .next_back()
                .expect("from >= first base")
                .0;
            for (&base, meta) in self.segments.range(first..) {
                if meta.size == 0 || meta.next_offset <= from.0 {
                    continue;
                }
                if base >= upper {
                    break;
                }
                let found = self.with_segment(base, |map, index| {
                    let Some(map) = map else { return Ok(None) };
                    self.read_segment(base, map, index, meta.size, from.0, max_bytes, upper)
                })?;
                if let Some((bytes, range)) = found {
                    (records, file) = (bytes, Some(range));
                    break;
                }
            }
        }
        Ok(LogRead {
            records,
            file,
            log_start_offset: Offset(start),
            log_end_offset: Offset(end),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn read_segment(
        &self,
        base: i64,
        map: &Arc<Mapping>,
        index: &SegmentIndex,
        size: u32,
        from: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<Option<(Bytes, FileRange)>, LogError> {
        let rel = u32::try_from(from - base).unwrap_or(u32::MAX);
        let mut pos = index.position_for(rel) as usize;
        let size = size as usize;
        // Find the batch containing `from`.
        let start = loop {
            if pos >= size {
                return Ok(None);
            }
            let h = self.checked_header(base, map, pos, size)?;
            if h.last_offset() >= from {
                break pos;
            }
            pos += h.total_len();
        };
        let mut end = start;
        let mut prev_next = None;
        while end < size {
            let h = self.checked_header(base, map, end, size)?;
            if prev_next.is_some_and(|n| h.base_offset != n) {
                let e = BatchError::UnexpectedOffset {
                    expected: prev_next.unwrap_or(0),
                    found: h.base_offset,
                };
                return Err(self.corrupt(base, end, e));
            }
            let len = h.total_len();
            if h.last_offset() >= upper || (end > start && end - start + len > max_bytes) {
                break;
            }
            // Whole batches only; CRCs were checked on append (and on recovery of the
            // unflushed tail), so reads do not recompute them, as in Kafka: a consumer
            // that wants to check them has each batch's CRC.
            if map.slice(end..end + len).is_none() {
                return Err(self.corrupt(base, end, truncated(len, size - end)));
            }
            prev_next = Some(h.next_offset());
            end += len;
        }
        let range = FileRange {
            file: map.file().clone(),
            position: start as u64,
        };
        Ok(Some((map.bytes(start..end).unwrap_or_default(), range)))
    }

    /// Parses the stored header at `pos` and checks it stays inside the segment.
    fn checked_header(
        &self,
        base: i64,
        map: &Mapping,
        pos: usize,
        size: usize,
    ) -> Result<BatchHeader, LogError> {
        let rest = map
            .slice(pos..size)
            .ok_or_else(|| self.corrupt(base, pos, truncated(0, 0)))?;
        let h = BatchHeader::parse(rest).map_err(|e| self.corrupt(base, pos, e))?;
        if h.base_offset < base || h.last_offset() < h.base_offset {
            let e = BatchError::UnexpectedOffset {
                expected: base,
                found: h.base_offset,
            };
            return Err(self.corrupt(base, pos, e));
        }
        Ok(h)
    }

    fn corrupt(&self, base: i64, pos: usize, source: BatchError) -> LogError {
        LogError::Corrupt {
            partition: self.name.clone(),
            file: segment::log_path(&self.dir, base),
            position: pos as u64,
            source,
        }
    }

    /// The first batch whose max timestamp is at least `timestamp_ms`: its first offset
    /// (or the log start, if later), its max timestamp and the batch itself. Records are
    /// not decoded here (they may be compressed); the broker finds the exact record in
    /// `batch`. `None` if no batch qualifies.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        for (&base, meta) in &self.segments {
            if meta.size == 0
                || meta.max_timestamp < timestamp_ms
                || meta.next_offset <= self.log_start
            {
                continue;
            }
            let found = self.with_segment(base, |map, index| {
                let Some(map) = map else { return Ok(None) };
                let rel = index.offset_for_time(timestamp_ms);
                let mut pos = index.position_for(rel) as usize;
                let size = meta.size as usize;
                while pos < size {
                    let h = self.checked_header(base, map, pos, size)?;
                    if h.max_timestamp >= timestamp_ms && h.last_offset() >= self.log_start {
                        return Ok(Some(TimestampOffset {
                            offset: Offset(h.base_offset.max(self.log_start)),
                            timestamp: h.max_timestamp,
                            batch: map.bytes(pos..pos + h.total_len()).unwrap_or_default(),
                        }));
                    }
                    pos += h.total_len();
                }
                Ok(None)
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

fn truncated(needed: usize, available: usize) -> BatchError {
    BatchError::TruncatedBatch { needed, available }
}
