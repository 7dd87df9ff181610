//! Leader appends in three steps, so that the write into the page cache needs no access
//! to the log: [`PartitionLog::prepare_append`] validates the batches, assigns their
//! offsets and reserves room at the end of the active segment; [`PreparedAppend::write`]
//! puts the bytes there with one `pwritev`; [`PartitionLog::finish_append`] indexes them
//! and makes them readable.
//!
//! A caller that keeps the log behind a lock holds it for the first and last steps only.
//! The write is the one step that can wait for the disk (ext4's delayed allocation blocks
//! a `pwritev` for up to a second under heavy writeback), and meanwhile readers — follower
//! fetches that move the high watermark, consumers — go on with everything already
//! readable, as Kafka's reads go on without its log lock. Writers stay one at a time: while
//! a prepared append is outstanding, every other change to the active segment (appends,
//! rolls, truncation, close) is refused with [`LogError::AppendInProgress`], so the caller
//! serializes its writers and finishes each prepared append.

use std::fs::File;
use std::sync::Arc;

use protocol::ids::{LeaderEpoch, Offset};

use crate::active::write_all_at;
use crate::batch::{self, BatchHeader, PATCHED_PREFIX};
use crate::error::LogError;
use crate::log::{AppendInfo, PartitionLog};
use crate::producers::{BatchRange, Verdict};

/// One batch of a prepared append: where it lies in the request, its header with the
/// assigned base offset, and its patched first bytes.
#[derive(Debug)]
struct PreparedBatch {
    at: usize,
    header: BatchHeader,
    prefix: [u8; PATCHED_PREFIX],
}

/// A leader append with offsets assigned and room reserved, not yet written (see the
/// module docs). Finish it with [`PartitionLog::finish_append`], written or not.
#[derive(Debug)]
#[must_use = "a prepared append must be finished with PartitionLog::finish_append"]
pub struct PreparedAppend {
    file: Arc<File>,
    segment_base: i64,
    pos: u32,
    batches: Vec<PreparedBatch>,
    info: AppendInfo,
    /// The request did not fit one segment: `prepare_append` wrote it batch by batch.
    done: bool,
}

impl PreparedAppend {
    /// What the append will have done once finished.
    pub fn info(&self) -> &AppendInfo {
        &self.info
    }

    /// Writes the batches into the reserved room with one `pwritev`. `batches` must be the
    /// bytes given to [`PartitionLog::prepare_append`].
    pub fn write(&self, batches: &[u8]) -> std::io::Result<()> {
        if self.done {
            return Ok(());
        }
        let mut parts: Vec<&[u8]> = Vec::with_capacity(self.batches.len() * 2);
        for b in &self.batches {
            let bytes = &batches[b.at..b.at + b.header.total_len()];
            parts.push(&b.prefix);
            parts.push(&bytes[PATCHED_PREFIX..]);
        }
        write_all_at(&self.file, u64::from(self.pos), &parts)
    }
}

impl PartitionLog {
    /// Refuses a change to the active segment while a prepared append is outstanding.
    pub(crate) fn check_no_append_in_progress(&self) -> Result<(), LogError> {
        match self.reserved {
            false => Ok(()),
            true => Err(LogError::AppendInProgress {
                partition: self.name.clone(),
            }),
        }
    }

    /// The first step of a leader append (see the module docs): validates every batch of
    /// `batches` (length, magic, CRC-32C, record count), assigns offsets from the log end
    /// (each batch's `baseOffset` and `partitionLeaderEpoch` are replaced in its written
    /// copy; `batches` itself is not changed), rolls the segment if the request does not
    /// fit, and reserves its room. A request larger than a whole segment is written here,
    /// batch by batch across segments, and its `write` does nothing.
    ///
    /// Batches of idempotent producers are checked against the producer state first
    /// (`producers.rs`): a retry of a stored batch is a duplicate (nothing is written, and
    /// the info gives the stored offsets with `duplicate` set); a sequence gap or a fenced
    /// epoch is [`LogError::Sequence`].
    pub fn prepare_append(
        &mut self,
        batches: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<PreparedAppend, LogError> {
        self.check_no_append_in_progress()?;
        let headers = self.validate(batches)?;
        let verdict = self
            .producers
            .check(headers.iter().map(|(_, h)| h))
            .map_err(|source| LogError::Sequence {
                partition: self.name.clone(),
                source,
            })?;
        if let Verdict::Duplicate(stored) = verdict {
            return Ok(self.duplicate_of(stored));
        }
        let first = self.log_end_offset();
        let total: usize = headers.iter().map(|(_, h)| h.total_len()).sum();
        let deltas: i64 = headers
            .iter()
            .map(|(_, h)| h.next_offset() - h.base_offset)
            .sum();
        self.maybe_roll(total, first.0 + deltas - 1, now_ms)?;
        self.epochs.assign(leader_epoch, first)?;
        let limit = (self.config.segment_bytes as usize).min(self.active.capacity());
        let pos = self.active_meta().size;
        let mut info = AppendInfo::empty(first);
        let mut prepared = Vec::with_capacity(headers.len());
        let mut base = first.0;
        for (at, header) in headers {
            let bytes = &batches[at..at + header.total_len()];
            let header = BatchHeader {
                base_offset: base,
                ..header
            };
            base = header.next_offset();
            info.add(&header);
            prepared.push(PreparedBatch {
                at,
                prefix: batch::patched_prefix(bytes, header.base_offset, leader_epoch.0),
                header,
            });
        }
        let done = pos as usize + total > limit;
        if done {
            // Larger than a segment: batch by batch, rolling on the way, under the caller's lock.
            for b in &prepared {
                let bytes = &batches[b.at..b.at + b.header.total_len()];
                self.append_batch(&[&b.prefix, &bytes[PATCHED_PREFIX..]], &b.header, now_ms)?;
            }
            self.after_append(info.record_count)?;
        } else {
            self.reserved = true;
        }
        Ok(PreparedAppend {
            file: self.active.file.clone(),
            segment_base: self.active.base,
            pos,
            batches: prepared,
            info,
            done,
        })
    }

    /// An append that writes nothing: its batches are stored already at `stored`.
    fn duplicate_of(&self, stored: BatchRange) -> PreparedAppend {
        let mut info = AppendInfo::empty(Offset(stored.first_offset));
        info.last_offset = Offset(stored.last_offset);
        info.duplicate = true;
        PreparedAppend {
            file: self.active.file.clone(),
            segment_base: self.active.base,
            pos: self.active_meta().size,
            batches: Vec::new(),
            info,
            done: true,
        }
    }

    /// The last step of a leader append: given how its [`PreparedAppend::write`] went,
    /// indexes the batches and makes them readable, or (the write failed) leaves the log
    /// as it was and returns that error, naming the segment file. Either way the
    /// reservation ends.
    pub fn finish_append(
        &mut self,
        prepared: PreparedAppend,
        written: std::io::Result<()>,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if prepared.done {
            return Ok(prepared.info);
        }
        assert!(
            self.reserved
                && self.active.base == prepared.segment_base
                && self.active_meta().size == prepared.pos,
            "{}: finish_append for an append this log did not reserve",
            self.name
        );
        self.reserved = false;
        written.map_err(|source| LogError::Io {
            path: crate::segment::log_path(&self.dir, self.active.base),
            source,
        })?;
        let mut pos = prepared.pos;
        for b in &prepared.batches {
            self.note_batch(pos, &b.header, now_ms);
            pos += b.header.total_len() as u32;
        }
        self.active.map.publish(pos as usize);
        self.after_append(prepared.info.record_count)?;
        Ok(prepared.info)
    }
}
