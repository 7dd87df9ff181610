//! Truncation, retention, flushing and shutdown.

use std::fs::{self, File};
use std::io::Write;

use protocol::ids::Offset;

use crate::active::Active;
use crate::checkpoint;
use crate::error::LogError;
use crate::log::{PartitionLog, CLEAN_SHUTDOWN_FILE};
use crate::retire::{retire_dir, RetiredDir};
use crate::segment::{self, IndexBuilder, SegmentMeta};
use crate::trash;

impl PartitionLog {
    /// Drops every offset >= `offset` (a follower diverged from its leader). If `offset`
    /// falls inside a batch, that whole batch goes. Below the log start this is
    /// [`PartitionLog::truncate_fully_and_start_at`]; at or past the log end, nothing.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<(), LogError> {
        self.check_no_append_in_progress()?;
        self.check_not_negative(offset)?;
        if offset.0 >= self.log_end_offset().0 {
            return Ok(());
        }
        if offset.0 < self.log_start {
            return self.truncate_fully_and_start_at(offset);
        }
        let base = *self
            .segments
            .range(..=offset.0)
            .next_back()
            .expect("offset >= first base")
            .0;
        let (pos, new_end) = self.batch_position(base, offset.0)?;
        let later: Vec<i64> = self.segments.range(base + 1..).map(|(&b, _)| b).collect();
        for b in later {
            if b != self.active.base {
                self.remove_segment(b)?;
            }
        }
        let was_active = base == self.active.base;
        let old_active = self.active.base;
        let old_size = self.active_meta().size;
        let rewound = was_active && !self.active.inherited && self.active.map.rewind(pos as usize);
        if rewound {
            self.active.map.zero(pos as usize..old_size as usize);
            let data = self
                .active
                .map
                .shared()
                .slice(0..pos as usize)
                .unwrap_or(&[]);
            self.active.builder =
                segment::scan(data, base, self.config.index_interval_bytes).builder;
            self.active.flushed_to = self.active.flushed_to.min(pos);
        } else {
            self.reactivate_by_copy(base, pos)?;
            if !was_active {
                self.segments.remove(&old_active);
                self.unflushed_rolled.retain(|&(b, _)| b != old_active);
                crate::log::remove_segment_files(&self.dir, old_active)?;
            }
        }
        let meta = self
            .segments
            .get_mut(&base)
            .expect("truncated segment exists");
        meta.size = pos;
        meta.next_offset = new_end;
        meta.max_timestamp = self.active.builder.max_timestamp;
        self.epochs.truncate_from_end(Offset(new_end))?;
        if new_end < self.log_start {
            // The batch holding `offset` began below the log start: the log is now empty
            // at `new_end`, and the persisted log start must say so too, or a reopen
            // would start the log past records appended from here.
            self.log_start = new_end;
            self.persist_log_start()?;
        }
        if self.recovery_point > base {
            self.persist_recovery_point(base)?;
        }
        self.rebuild_producers()
    }

    fn check_not_negative(&self, offset: Offset) -> Result<(), LogError> {
        if offset.0 < 0 {
            return Err(LogError::InvalidOffset {
                partition: self.name.clone(),
                offset,
                reason: "offsets are not negative",
            });
        }
        Ok(())
    }

    /// Position and first offset of the batch containing `offset` in segment `base`.
    fn batch_position(&self, base: i64, offset: i64) -> Result<(u32, i64), LogError> {
        let meta = self.segments.get(&base).expect("segment exists").clone();
        let read = self.read(Offset(offset), 1, Offset(i64::MAX))?;
        // `read` returns the batch containing `offset`; find its position by scanning.
        let first = crate::batch::peek(&read.records).map_or(offset, |(b, _, _)| b);
        self.with_segment(base, |map, index| {
            let Some(map) = map else { return Ok((0, base)) };
            let mut pos =
                index.position_for(u32::try_from(first - base).unwrap_or(u32::MAX)) as usize;
            while pos < meta.size as usize {
                let rest = map.slice(pos..meta.size as usize).unwrap_or(&[]);
                let Some((b, len, _)) = crate::batch::peek(rest) else {
                    break;
                };
                if b >= first {
                    return Ok((pos as u32, b));
                }
                pos += len;
            }
            Ok((meta.size, meta.next_offset))
        })
    }

    /// Makes segment `base` the active one holding its first `len` bytes, written into a
    /// fresh file: maps of the old file (and `Bytes` views into them) stay valid and
    /// unchanged, because the old inode lives on until they are dropped.
    fn reactivate_by_copy(&mut self, base: i64, len: u32) -> Result<(), LogError> {
        let path = segment::log_path(&self.dir, base);
        let swap = path.with_extension("swap");
        let source = if base == self.active.base {
            Some(self.active.map.shared().clone())
        } else {
            self.cached_segment(base)?.map
        };
        {
            let mut f = File::create(&swap).map_err(LogError::io(&swap))?;
            let data = source
                .as_ref()
                .and_then(|m| m.slice(0..len as usize))
                .unwrap_or(&[]);
            f.write_all(data).map_err(LogError::io(&swap))?;
        }
        fs::rename(&swap, &path).map_err(LogError::io(&path))?;
        let data = source
            .as_ref()
            .and_then(|m| m.slice(0..len as usize))
            .unwrap_or(&[]);
        let builder = segment::scan(data, base, self.config.index_interval_bytes).builder;
        self.lock_cache().remove(base);
        self.active = Active::open(&self.dir, base, len, builder, self.config.segment_bytes)?;
        Ok(())
    }

    /// Empties the log and restarts it at `offset` (a follower far behind the leader's log
    /// start). Clears the leader-epoch cache.
    pub fn truncate_fully_and_start_at(&mut self, offset: Offset) -> Result<(), LogError> {
        self.check_no_append_in_progress()?;
        self.check_not_negative(offset)?;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for b in bases {
            crate::log::remove_segment_files(&self.dir, b)?;
        }
        self.lock_cache().clear();
        self.segments.clear();
        self.unflushed_rolled.clear();
        self.active = Active::open(
            &self.dir,
            offset.0,
            0,
            IndexBuilder::new(),
            self.config.segment_bytes,
        )?;
        self.segments.insert(offset.0, SegmentMeta::empty(offset.0));
        self.log_start = offset.0;
        self.persist_log_start()?;
        self.epochs.clear()?;
        self.recovery_point = i64::MIN;
        self.persist_recovery_point(offset.0)?;
        self.rebuild_producers()
    }

    /// Deletes whole segments by `retention.ms` (newest timestamp older than the limit; the
    /// active segment is rolled first if it has expired too) and `retention.bytes`, and
    /// advances the log start. Returns how many segments were deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let deleted = self.enforce_retention_deferred(now_ms)?;
        self.take_trash().empty()?;
        Ok(deleted)
    }

    /// [`Self::enforce_retention`], leaving the segments' files in the trash
    /// ([`Self::take_trash`]) for the caller to delete without holding the log.
    pub fn enforce_retention_deferred(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let mut deleted = 0;
        if let Some(retention_ms) = self.config.retention_ms {
            let cutoff = now_ms.saturating_sub(retention_ms);
            let active = self.active_meta().clone();
            let all_old = self.segments.values().all(|s| s.max_timestamp < cutoff);
            if all_old && active.size > 0 {
                self.roll()?;
            }
            while let Some(first) = self.oldest_inactive() {
                if first.max_timestamp >= cutoff {
                    break;
                }
                self.retire_segment(first.base)?;
                deleted += 1;
            }
        }
        if let Some(limit) = self.config.retention_bytes {
            let mut total = self.size_bytes();
            while let Some(first) = self.oldest_inactive() {
                if total - u64::from(first.size) < limit {
                    break;
                }
                total -= u64::from(first.size);
                self.retire_segment(first.base)?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.advance_log_start(*self.segments.keys().next().expect("active remains"))?;
        }
        Ok(deleted)
    }

    fn oldest_inactive(&self) -> Option<SegmentMeta> {
        let first = self.segments.values().next()?;
        (first.base != self.active.base).then(|| first.clone())
    }

    /// DeleteRecords: the log now starts at `offset`; whole segments below it are deleted.
    pub fn delete_records_before(&mut self, offset: Offset) -> Result<(), LogError> {
        let end = self.log_end_offset();
        if offset > end {
            return Err(LogError::OffsetOutOfRange {
                partition: self.name.clone(),
                requested: offset,
                log_start: self.log_start_offset(),
                log_end: end,
            });
        }
        if offset.0 <= self.log_start {
            return Ok(());
        }
        while let Some(first) = self.oldest_inactive() {
            if first.next_offset > offset.0 {
                break;
            }
            self.remove_segment(first.base)?;
        }
        self.advance_log_start(offset.0)?;
        self.persist_log_start()
    }

    fn advance_log_start(&mut self, start: i64) -> Result<(), LogError> {
        if start > self.log_start {
            self.log_start = start;
            self.epochs.truncate_from_start(Offset(start))?;
            self.producers.evict_below(start);
        }
        Ok(())
    }

    /// Periodic work, cheap when nothing is due: a `segment.ms` roll, fsync of one rolled
    /// segment (then the recovery point advances), and a `flush.ms` flush.
    pub fn tick(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.tick_except_sync(now_ms)?;
        if let Some(pending) = self.next_pending_sync() {
            pending.sync()?;
            self.mark_synced(&pending)?;
        }
        Ok(())
    }

    /// The rolled segment whose fsync is due next, if any. The fsync itself
    /// ([`PendingSync::sync`]) needs no access to the log, so a caller that shares the log
    /// behind a lock runs it without the lock and then calls [`Self::mark_synced`].
    pub fn next_pending_sync(&self) -> Option<PendingSync> {
        self.unflushed_rolled
            .first()
            .map(|&(base, roll)| PendingSync {
                base,
                roll,
                path: segment::log_path(&self.dir, base),
            })
    }

    /// Records that `pending` reached the disk (file and directory, see
    /// [`PendingSync::sync`]); once no rolled segment waits, the recovery point advances.
    /// A segment deleted or rolled anew in between (another roll number) is left as it is.
    pub fn mark_synced(&mut self, pending: &PendingSync) -> Result<(), LogError> {
        let before = self.unflushed_rolled.len();
        self.unflushed_rolled
            .retain(|&(b, r)| (b, r) != (pending.base, pending.roll));
        if before != self.unflushed_rolled.len() && self.unflushed_rolled.is_empty() {
            self.persist_recovery_point(self.active.base)?;
        }
        Ok(())
    }

    /// [`Self::tick`] without the fsync of a rolled segment (see [`Self::next_pending_sync`]).
    pub fn tick_except_sync(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.expire_producers(now_ms);
        if self.segment_expired(now_ms) {
            self.roll()?;
        }
        if let Some(flush_ms) = self.config.flush_ms {
            let last = *self.last_flush_ms.get_or_insert(now_ms);
            if now_ms.saturating_sub(last) >= flush_ms as i64 {
                self.flush()?;
                self.last_flush_ms = Some(now_ms);
            }
        }
        Ok(())
    }

    /// Makes everything appended so far durable (fsync of rolled segments, `msync` of the
    /// active one) and advances the recovery point.
    pub fn flush(&mut self) -> Result<(), LogError> {
        let rolled = std::mem::take(&mut self.unflushed_rolled);
        for &(base, _) in &rolled {
            sync_file(&segment::log_path(&self.dir, base))?;
        }
        let size = self.active_meta().size;
        let path = segment::log_path(&self.dir, self.active.base);
        self.active
            .map
            .flush_range(self.active.flushed_to as usize..size as usize)
            .map_err(LogError::io(&path))?;
        self.active.flushed_to = size;
        self.unflushed_records = 0;
        if !rolled.is_empty() {
            // New segment files were created since the last flush.
            checkpoint::sync_dir(&self.dir)?;
        }
        self.persist_recovery_point(self.active.base)
    }

    /// Flushes, seals and trims the active segment and writes the clean-shutdown marker, so
    /// the next `open` skips recovery.
    pub fn close(mut self) -> Result<(), LogError> {
        self.check_no_append_in_progress()?;
        self.flush()?;
        if let Some(spare) = self.spare.take() {
            drop(spare.file);
            trash::shrink_in_steps(&spare.path, trash::DELETE_STEP_BYTES)?;
            trash::remove_if_present(&spare.path)?;
        }
        self.write_producer_snapshot()?;
        let dir = self.dir.clone();
        let size = self.active_meta().size;
        let base = self.active.base;
        let active = self.active.builder.clone();
        let mut builder = active;
        builder.seal();
        builder.index.save(
            &segment::index_path(&dir, base),
            &segment::time_index_path(&dir, base),
        )?;
        let path = segment::log_path(&dir, base);
        self.active
            .file
            .set_len(u64::from(size))
            .map_err(LogError::io(&path))?;
        self.active.file.sync_all().map_err(LogError::io(&path))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(LogError::io(&marker))?;
        checkpoint::sync_dir(&dir)
    }

    /// Closes the log and renames its directory out of the way (the topic was deleted); the
    /// caller removes the returned directory where blocking is fine. Outstanding `Bytes`
    /// views stay readable: a mapped file is never shortened, and lives on while mapped.
    pub fn retire(self) -> Result<RetiredDir, LogError> {
        let dir = self.dir.clone();
        drop(self);
        retire_dir(&dir)
    }

    /// Removes the whole log directory now (retires it, then removes it).
    pub fn delete(self) -> Result<(), LogError> {
        self.retire()?.remove()
    }
}

/// A rolled segment file waiting for its fsync (see [`PartitionLog::next_pending_sync`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSync {
    pub base: i64,
    roll: u64,
    pub path: std::path::PathBuf,
}

impl PendingSync {
    /// fsyncs the segment file (a file deleted meanwhile needs nothing), then its
    /// directory, so the names of the files the roll created are on disk too.
    pub fn sync(&self) -> Result<(), LogError> {
        sync_file(&self.path)?;
        match self.path.parent() {
            Some(dir) => checkpoint::sync_dir(dir),
            None => Ok(()),
        }
    }
}

fn sync_file(path: &std::path::Path) -> Result<(), LogError> {
    match File::open(path) {
        Ok(f) => f.sync_all().map_err(LogError::io(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}
