//! One segment: `{base:020}.log` plus its indexes, what the log remembers about it, and the
//! validating scan used by recovery and index rebuilds.

use std::path::{Path, PathBuf};

use crate::batch::{BatchError, BatchHeader};
use crate::index::SegmentIndex;

/// What the log keeps in memory for every segment (a few words; maps and indexes of
/// inactive segments live in the bounded map cache instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) base: i64,
    /// Logical size in bytes (valid batches).
    pub(crate) size: u32,
    /// The offset after the last batch (`base` when empty).
    pub(crate) next_offset: i64,
    /// Largest batch max timestamp, or -1.
    pub(crate) max_timestamp: i64,
    /// Wall time of the first append into this segment, for `segment.ms`.
    pub(crate) created_ms: Option<i64>,
}

impl SegmentMeta {
    pub(crate) fn empty(base: i64) -> SegmentMeta {
        SegmentMeta {
            base,
            size: 0,
            next_offset: base,
            max_timestamp: -1,
            created_ms: None,
        }
    }
}

pub(crate) fn log_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}
pub(crate) fn index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}
pub(crate) fn time_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

/// Parses `00000000000000000042.log` into 42.
pub(crate) fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Builds a segment's sparse indexes as batches go by (appends and scans share it, so a
/// rebuilt index equals the one written during appends).
#[derive(Clone, Debug)]
pub(crate) struct IndexBuilder {
    pub(crate) index: SegmentIndex,
    pub(crate) bytes_since_entry: u32,
    pub(crate) max_timestamp: i64,
    /// Relative offset of the batch holding `max_timestamp`.
    pub(crate) rel_of_max_timestamp: u32,
}

impl IndexBuilder {
    pub(crate) fn new() -> IndexBuilder {
        IndexBuilder {
            index: SegmentIndex::default(),
            bytes_since_entry: 0,
            max_timestamp: -1,
            rel_of_max_timestamp: 0,
        }
    }

    /// Records a batch at `pos` of `len` bytes starting at relative offset `rel`.
    pub(crate) fn on_batch(&mut self, rel: u32, pos: u32, len: u32, max_ts: i64, interval: u32) {
        if max_ts > self.max_timestamp {
            self.max_timestamp = max_ts;
            self.rel_of_max_timestamp = rel;
        }
        if pos > 0 && self.bytes_since_entry >= interval {
            self.index.offsets.push((rel, pos));
            self.index
                .push_time(self.max_timestamp, self.rel_of_max_timestamp);
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry = self.bytes_since_entry.saturating_add(len);
    }

    /// The segment stops being active: the time index gets its final maximum.
    pub(crate) fn seal(&mut self) {
        if self.max_timestamp >= 0 {
            self.index
                .push_time(self.max_timestamp, self.rel_of_max_timestamp);
        }
    }
}

/// The result of validating a segment's bytes from the start.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) valid_len: u32,
    pub(crate) next_offset: i64,
    pub(crate) builder: IndexBuilder,
    /// Why the scan stopped before the end of `data`, and where (`None`: clean end, or
    /// only zero bytes after the last batch, as in a sparse active segment).
    pub(crate) stopped: Option<(u32, BatchError)>,
}

/// Validates every batch of `data` (header, CRC, record count, dense offsets starting at
/// `base`) and rebuilds the indexes, stopping at the first invalid batch.
pub(crate) fn scan(data: &[u8], base: i64, interval: u32) -> Scan {
    let mut builder = IndexBuilder::new();
    let mut pos = 0usize;
    let mut next = base;
    let mut stopped = None;
    while pos < data.len() {
        let rest = &data[pos..];
        let checked = BatchHeader::parse_and_validate(rest).and_then(|h| {
            // Offsets must be dense and stay addressable relative to the segment base.
            if h.base_offset != next || h.next_offset() - base > i64::from(u32::MAX) {
                Err(BatchError::UnexpectedOffset {
                    expected: next,
                    found: h.base_offset,
                })
            } else {
                Ok(h)
            }
        });
        match checked {
            Ok(h) => {
                let len = h.total_len();
                builder.on_batch(
                    (next - base) as u32,
                    pos as u32,
                    len as u32,
                    h.max_timestamp,
                    interval,
                );
                next = h.next_offset();
                pos += len;
            }
            Err(e) => {
                if rest[..rest.len().min(4096)].iter().any(|&b| b != 0) {
                    stopped = Some((pos as u32, e));
                }
                break;
            }
        }
    }
    Scan {
        valid_len: pos as u32,
        next_offset: next,
        builder,
        stopped,
    }
}
