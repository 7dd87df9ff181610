//! A segment's sparse indexes, kept in memory and written to `.index` / `.timeindex`.
//!
//! - offset index: (offset relative to the segment base, file position) of a batch, one
//!   entry every `index.interval.bytes`; 8 bytes per entry on disk (big-endian u32, u32).
//! - time index: (largest timestamp so far, relative offset of the batch that has it),
//!   appended with the offset index when the largest timestamp grew, plus once when the
//!   segment stops being active; 12 bytes per entry (i64, u32).
//!
//! Indexes are derived data: a missing or inconsistent file is rebuilt by scanning the
//! segment, and recovery always rebuilds the indexes of the segments it rescans.

use std::fs;
use std::path::Path;

use crate::error::LogError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub(crate) offsets: Vec<(u32, u32)>,
    pub(crate) times: Vec<(i64, u32)>,
}

impl SegmentIndex {
    /// The position to start scanning from for relative offset `rel`.
    pub(crate) fn position_for(&self, rel: u32) -> u32 {
        let i = self.offsets.partition_point(|&(o, _)| o <= rel);
        if i == 0 {
            0
        } else {
            self.offsets[i - 1].1
        }
    }

    /// The relative offset to start scanning from for the first batch with a max timestamp
    /// of at least `ts`.
    pub(crate) fn offset_for_time(&self, ts: i64) -> u32 {
        let i = self.times.partition_point(|&(t, _)| t < ts);
        if i == 0 {
            0
        } else {
            self.times[i - 1].1
        }
    }

    /// The largest timestamp recorded in the time index.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, u32)> {
        self.times.last().copied()
    }

    /// Appends to the time index if `ts` is larger than its last entry.
    pub(crate) fn push_time(&mut self, ts: i64, rel: u32) {
        if self.times.last().is_none_or(|&(t, _)| ts > t) {
            self.times.push((ts, rel));
        }
    }

    /// Writes both files (whole, not incrementally: they are small and written on roll,
    /// flush and close).
    pub(crate) fn save(&self, index_path: &Path, time_path: &Path) -> Result<(), LogError> {
        let mut buf = Vec::with_capacity(self.offsets.len() * 8);
        for &(o, p) in &self.offsets {
            buf.extend_from_slice(&o.to_be_bytes());
            buf.extend_from_slice(&p.to_be_bytes());
        }
        fs::write(index_path, &buf).map_err(LogError::io(index_path))?;
        buf.clear();
        for &(t, o) in &self.times {
            buf.extend_from_slice(&t.to_be_bytes());
            buf.extend_from_slice(&o.to_be_bytes());
        }
        fs::write(time_path, &buf).map_err(LogError::io(time_path))
    }

    /// Loads both files and checks them against a segment of `size` bytes whose relative
    /// offsets end before `rel_end`; `None` if missing or inconsistent.
    pub(crate) fn load(
        index_path: &Path,
        time_path: &Path,
        size: u32,
        rel_end: u32,
    ) -> Option<Self> {
        let raw = fs::read(index_path).ok()?;
        let rawt = fs::read(time_path).ok()?;
        if raw.len() % 8 != 0 || rawt.len() % 12 != 0 {
            return None;
        }
        let offsets: Vec<(u32, u32)> = raw
            .chunks_exact(8)
            .map(|c| (be_u32(&c[0..4]), be_u32(&c[4..8])))
            .collect();
        let times: Vec<(i64, u32)> = rawt
            .chunks_exact(12)
            .map(|c| {
                (
                    i64::from_be_bytes(c[0..8].try_into().expect("8")),
                    be_u32(&c[8..12]),
                )
            })
            .collect();
        let offsets_ok = offsets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && offsets.iter().all(|&(o, p)| o < rel_end && p < size);
        let times_ok = times
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            && times.iter().all(|&(_, o)| o < rel_end);
        (offsets_ok && times_ok).then_some(SegmentIndex { offsets, times })
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}
