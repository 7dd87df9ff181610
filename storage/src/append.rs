//! Leader and follower appends, and rolling the active segment.

use protocol::ids::{LeaderEpoch, Offset};

use crate::active::Active;
use crate::batch::{self, BatchHeader};
use crate::error::LogError;
use crate::log::{AppendInfo, PartitionLog};
use crate::segment::{IndexBuilder, SegmentMeta};

impl PartitionLog {
    /// Leader append: validates every batch of `batches` (length, magic, CRC-32C, record
    /// count) before writing any, then assigns offsets: each batch goes into the active
    /// segment with `baseOffset` and `partitionLeaderEpoch` (which the CRC does not cover)
    /// replaced in its written copy; `batches` itself is not changed.
    ///
    /// All three steps of `prepared.rs` at once; a caller that shares the log behind a
    /// lock can run the write without it instead.
    pub fn append(
        &mut self,
        batches: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let prepared = self.prepare_append(batches, leader_epoch, now_ms)?;
        let written = prepared.write(batches);
        self.finish_append(prepared, written, now_ms)
    }

    /// Follower append: the batches keep the leader's offsets and epochs. The first must
    /// start at the log end and each must follow the previous one, or nothing is written.
    /// Like a leader's request, the batches go whole into one segment (rolled first if
    /// they do not fit) with one write; more than a segment holds goes batch by batch.
    pub fn append_as_follower(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let headers = self.validate(batches)?;
        let log_end = self.log_end_offset();
        let mut expected = log_end.0;
        for (_, h) in &headers {
            if h.base_offset > expected {
                return Err(LogError::FollowerGap {
                    partition: self.name.clone(),
                    first_offset: Offset(h.base_offset),
                    log_end: Offset(expected),
                });
            }
            if h.base_offset < expected {
                return Err(LogError::FollowerOverlap {
                    partition: self.name.clone(),
                    first_offset: Offset(h.base_offset),
                    log_end: Offset(expected),
                });
            }
            expected = h.next_offset();
        }
        let mut info = AppendInfo::empty(log_end);
        let (Some((first, _)), Some((last, last_header))) = (headers.first(), headers.last())
        else {
            return Ok(info);
        };
        let (start, end) = (*first, last + last_header.total_len());
        self.check_no_append_in_progress()?;
        self.maybe_roll(end - start, last_header.last_offset(), now_ms)?;
        let limit = (self.config.segment_bytes as usize).min(self.active.capacity());
        for (_, header) in &headers {
            self.epochs.assign(
                LeaderEpoch(header.partition_leader_epoch),
                Offset(header.base_offset),
            )?;
        }
        let pos = self.active_meta().size;
        if pos as usize + (end - start) <= limit {
            // The usual case: the batches arrived back to back and go into the active
            // segment back to back, with one write (a fetch reply holds a batch per
            // leader request, so one write per batch cost a syscall each).
            self.active.write_unpublished(pos, &batches[start..end])?;
            let mut at = pos;
            for (_, header) in &headers {
                self.note_batch(at, header, now_ms);
                at += header.total_len() as u32;
                info.add(header);
            }
            self.active.map.publish(at as usize);
        } else {
            // More than a segment holds: batch by batch, rolling on the way.
            for (pos, header) in &headers {
                self.append_batch(&[&batches[*pos..pos + header.total_len()]], header, now_ms)?;
                info.add(header);
            }
        }
        self.after_append(info.record_count)?;
        Ok(info)
    }

    /// Parses and validates all batches of a request; positions are request-relative.
    pub(crate) fn validate(&self, batches: &[u8]) -> Result<Vec<(usize, BatchHeader)>, LogError> {
        let mut out = Vec::new();
        let mut pos = 0;
        let invalid = |position, source| LogError::InvalidBatch {
            partition: self.name.clone(),
            position,
            source,
        };
        if batches.is_empty() {
            return Err(invalid(
                0,
                batch::BatchError::TruncatedHeader { available: 0 },
            ));
        }
        while pos < batches.len() {
            let header =
                BatchHeader::parse_and_validate(&batches[pos..]).map_err(|e| invalid(pos, e))?;
            let size = header.total_len();
            if size as u64 > self.config.segment_bytes {
                return Err(LogError::BatchTooLarge {
                    partition: self.name.clone(),
                    size,
                    segment_bytes: self.config.segment_bytes,
                });
            }
            out.push((pos, header));
            pos += size;
        }
        Ok(out)
    }

    /// Writes one batch, given as consecutive `parts`, at the log end.
    pub(crate) fn append_batch(
        &mut self,
        parts: &[&[u8]],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.check_no_append_in_progress()?;
        let len = header.total_len();
        self.maybe_roll(len, header.last_offset(), now_ms)?;
        let pos = self.active_meta().size;
        self.active.write(pos, parts)?;
        self.note_batch(pos, header, now_ms);
        Ok(())
    }

    /// Indexes a batch written at `pos` of the active segment and moves the segment's end,
    /// size and timestamps past it (making it readable is the caller's part).
    pub(crate) fn note_batch(&mut self, pos: u32, header: &BatchHeader, now_ms: i64) {
        let len = header.total_len() as u32;
        let rel = (header.base_offset - self.active.base) as u32;
        let interval = self.config.index_interval_bytes;
        self.active
            .builder
            .on_batch(rel, pos, len, header.max_timestamp, interval);
        let meta = self.active_meta_mut();
        meta.size = pos + len;
        meta.next_offset = header.next_offset();
        meta.max_timestamp = meta.max_timestamp.max(header.max_timestamp);
        meta.created_ms.get_or_insert(now_ms);
        self.producers.record(header);
    }

    pub(crate) fn maybe_roll(
        &mut self,
        len: usize,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let meta = self.active_meta();
        let limit = (self.config.segment_bytes as usize).min(self.active.capacity());
        let size = meta.size as usize;
        if size == 0 {
            if len > self.active.capacity() {
                // An empty segment mapped smaller than segment.bytes grew since: re-map.
                let base = self.active.base;
                self.active = Active::open(
                    &self.dir,
                    base,
                    0,
                    IndexBuilder::new(),
                    self.config.segment_bytes,
                )?;
            }
            return Ok(());
        }
        let full = size + len > limit;
        let index_full =
            self.active.builder.index.offsets.len() >= self.config.max_index_entries as usize;
        let expired = self.segment_expired(now_ms);
        let rel_overflow = last_offset - self.active.base >= i64::from(u32::MAX);
        if full || index_full || expired || rel_overflow {
            self.roll()?;
        }
        Ok(())
    }

    pub(crate) fn segment_expired(&self, now_ms: i64) -> bool {
        let meta = self.active_meta();
        match (self.config.segment_ms, meta.created_ms) {
            (Some(ms), Some(created)) => {
                meta.size > 0 && now_ms.saturating_sub(created) >= ms as i64
            }
            _ => false,
        }
    }

    /// Starts a new active segment at the log end; the old one is sealed and trimmed.
    pub(crate) fn roll(&mut self) -> Result<(), LogError> {
        self.check_no_append_in_progress()?;
        let old = self.active_meta().clone();
        if old.size == 0 {
            return Ok(());
        }
        let new_base = old.next_offset;
        let fresh = match self.take_spare()? {
            Some(spare) => Active::from_spare(&self.dir, new_base, IndexBuilder::new(), spare)?,
            None => Active::open(
                &self.dir,
                new_base,
                0,
                IndexBuilder::new(),
                self.config.segment_bytes,
            )?,
        };
        let previous = std::mem::replace(&mut self.active, fresh);
        self.segments.insert(new_base, SegmentMeta::empty(new_base));
        let cached = previous.finish(&self.dir, old.size)?;
        self.lock_cache()
            .insert(old.base, cached, self.config.max_mapped_segments);
        self.rolls += 1;
        self.unflushed_rolled.push((old.base, self.rolls));
        if let Err(e) = self.write_producer_snapshot() {
            // The state in memory is right; a later open replays from an older snapshot.
            tracing::warn!(partition = %self.name, new_base, "cannot save the producer state: {e}");
        }
        tracing::debug!(partition = %self.name, new_base, "rolled segment");
        Ok(())
    }

    pub(crate) fn after_append(&mut self, records: u64) -> Result<(), LogError> {
        self.unflushed_records += records;
        if self
            .config
            .flush_messages
            .is_some_and(|n| self.unflushed_records >= n)
        {
            self.flush()?;
        }
        Ok(())
    }
}

impl AppendInfo {
    pub(crate) fn empty(first: Offset) -> AppendInfo {
        AppendInfo {
            first_offset: first,
            last_offset: Offset(first.0 - 1),
            max_timestamp: -1,
            record_count: 0,
            batch_count: 0,
            bytes: 0,
            duplicate: false,
        }
    }

    pub(crate) fn add(&mut self, h: &BatchHeader) {
        self.last_offset = Offset(h.last_offset());
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        self.record_count += h.record_count as u64;
        self.batch_count += 1;
        self.bytes += h.total_len();
    }
}
