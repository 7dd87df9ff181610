//! [`PartitionLog`]: the segments of one partition, its offsets, and opening/recovery.
//! Appends live in `append.rs`, reads in `read.rs`, truncation/retention/flush in
//! `maintain.rs`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use protocol::ids::{LeaderEpoch, Offset};

use crate::active::Active;
use crate::cache::{CachedSegment, MapCache};
use crate::checkpoint;
use crate::config::LogConfig;
use crate::epoch::{self, EpochCache};
use crate::error::LogError;
use crate::index::SegmentIndex;
use crate::mmap::Mapping;
use crate::producers::ProducerStates;
use crate::read::FileRange;
use crate::segment::{self, IndexBuilder, SegmentMeta};
use crate::spare::Spare;
use crate::trash::{self, Trash};

/// Present only while the log is cleanly closed.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
pub(crate) const LOG_START_FILE: &str = "log-start-offset";
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: i64,
    pub record_count: u64,
    pub batch_count: u32,
    pub bytes: usize,
    /// A retry of batches already stored (idempotent producer): nothing was appended, and
    /// the offsets are those of the stored batch.
    pub duplicate: bool,
}

/// The answer to a read: whole batches, zero-copy, plus the log's bounds at that moment.
#[derive(Clone, Debug)]
pub struct LogRead {
    pub records: Bytes,
    /// Where `records` lie in their segment file (`None` when empty).
    pub file: Option<FileRange>,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

/// The answer to `offset_for_timestamp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: Offset,
    pub timestamp: i64,
    /// The whole batch holding `offset` (a view of the segment).
    pub batch: Bytes,
}

/// One partition's log: a directory of segments (see the crate docs).
#[derive(Debug)]
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    pub(crate) config: LogConfig,
    /// Every segment by base offset; the last one is `active`.
    pub(crate) segments: BTreeMap<i64, SegmentMeta>,
    pub(crate) active: Active,
    pub(crate) log_start: i64,
    pub(crate) epochs: EpochCache,
    pub(crate) cache: Mutex<MapCache>,
    /// Persisted: every segment below this base offset is known to be on disk.
    pub(crate) recovery_point: i64,
    /// Rolled segments not fsynced yet: (base offset, roll number).
    pub(crate) unflushed_rolled: Vec<(i64, u64)>,
    /// How many segments this log has rolled since it was opened.
    pub(crate) rolls: u64,
    pub(crate) unflushed_records: u64,
    pub(crate) last_flush_ms: Option<i64>,
    /// Segments retention took out, until [`PartitionLog::take_trash`].
    pub(crate) trash: Trash,
    /// A prepared append holds room at the end of the active segment (`prepared.rs`).
    pub(crate) reserved: bool,
    /// The next segment, allocated ahead (`spare.rs`).
    pub(crate) spare: Option<Spare>,
    /// Making a spare failed; not tried again until the log is reopened.
    pub(crate) spare_failed: bool,
    /// Idempotent producers' sequences (`producers.rs`, `producer_snapshots.rs`).
    pub(crate) producers: ProducerStates,
    pub(crate) last_producer_expiry_ms: i64,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering it when it was not cleanly closed:
    /// segments from the recovery point on are rescanned batch by batch (header, CRC,
    /// dense offsets), the log is cut at the first invalid batch (later segments are
    /// deleted), and their indexes are rebuilt.
    pub fn open(
        dir: impl AsRef<Path>,
        name: &str,
        config: LogConfig,
    ) -> Result<PartitionLog, LogError> {
        let dir = dir.as_ref().to_path_buf();
        config
            .validate()
            .map_err(|reason| LogError::InvalidConfig {
                partition: name.to_owned(),
                reason,
            })?;
        fs::create_dir_all(&dir).map_err(LogError::io(&dir))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let mut bases = list_segments(&dir)?;
        let start_cp = read_offset(&dir.join(LOG_START_FILE))?;
        let recovery_cp = read_offset(&dir.join(RECOVERY_POINT_FILE))?;
        let new_log = bases.is_empty();
        if new_log {
            bases.push(start_cp.unwrap_or(0).max(0));
        }
        let scan_from = if clean {
            i64::MAX
        } else {
            let rp = recovery_cp.unwrap_or(i64::MIN);
            bases
                .iter()
                .copied()
                .filter(|&b| b <= rp)
                .max()
                .unwrap_or(bases[0])
        };
        let (segments, last_builder) = load_segments(&dir, name, &config, &bases, scan_from)?;
        let last = segments
            .values()
            .next_back()
            .expect("at least one segment")
            .clone();
        // A new log of a preallocating topic starts on an allocated segment too (made here,
        // where no append waits for it).
        let first_spare = if new_log && config.preallocate {
            Spare::prepare(&dir, config.segment_bytes)
                .map_err(|e| tracing::warn!(partition = name, "cannot preallocate: {e}"))
                .ok()
        } else {
            None
        };
        let mut active = match first_spare {
            Some(spare) => Active::from_spare(&dir, last.base, last_builder, spare)?,
            None => Active::open(
                &dir,
                last.base,
                last.size,
                last_builder,
                config.segment_bytes,
            )?,
        };
        active.inherited = last.size > 0;
        let first_base = *segments.keys().next().expect("at least one segment");
        let log_end = last.next_offset;
        let log_start = start_cp.unwrap_or(first_base).max(first_base).min(log_end);
        let mut epochs = EpochCache::load(dir.join(epoch::FILE))?;
        epochs.truncate_from_end(Offset(log_end))?;
        epochs.truncate_from_start(Offset(log_start))?;
        let recovery_point = recovery_cp.unwrap_or(first_base).min(last.base);
        if clean {
            fs::remove_file(&marker).map_err(LogError::io(&marker))?;
        }
        checkpoint::sync_dir(&dir)?;
        if !clean {
            tracing::info!(
                partition = name,
                log_end,
                "recovered log after unclean shutdown"
            );
        }
        let mut log = PartitionLog {
            dir,
            name: name.to_owned(),
            config,
            segments,
            active,
            log_start,
            epochs,
            cache: Mutex::new(MapCache::default()),
            recovery_point,
            unflushed_rolled: Vec::new(),
            rolls: 0,
            unflushed_records: 0,
            last_flush_ms: None,
            trash: Trash::default(),
            reserved: false,
            spare: None,
            spare_failed: false,
            producers: ProducerStates::default(),
            last_producer_expiry_ms: i64::MIN,
        };
        log.rebuild_producers()?;
        Ok(log)
    }

    pub fn log_start_offset(&self) -> Offset {
        Offset(self.log_start)
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.active_meta().next_offset)
    }

    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest_epoch()
    }

    /// Kafka's OffsetsForLeaderEpoch answer: the largest epoch <= `epoch` and the start
    /// offset of the next higher epoch (the log end for the latest epoch). An epoch below
    /// the first known one answers with itself and the first epoch's start offset; `None`
    /// when the cache is empty or `epoch` is above the latest.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch cache's entries (epoch, start offset), oldest first.
    pub fn epoch_entries(&self) -> &[(LeaderEpoch, Offset)] {
        self.epochs.entries()
    }

    /// Replaces the settings; they apply from the next append, roll or retention run. An
    /// invalid config is refused (logged) and the old one stays.
    pub fn set_config(&mut self, config: LogConfig) {
        match config.validate() {
            Ok(()) => self.config = config,
            Err(reason) => {
                tracing::warn!(partition = %self.name, reason, "ignoring invalid log config")
            }
        }
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.segments.keys().map(|&b| Offset(b)).collect()
    }

    /// How many inactive segments are mapped right now (bounded by `max_mapped_segments`).
    pub fn mapped_segments(&self) -> usize {
        self.lock_cache().len()
    }

    /// Total logical size of all segments in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| u64::from(s.size)).sum()
    }

    pub(crate) fn active_meta(&self) -> &SegmentMeta {
        self.segments
            .get(&self.active.base)
            .expect("active segment has metadata")
    }

    pub(crate) fn active_meta_mut(&mut self) -> &mut SegmentMeta {
        self.segments
            .get_mut(&self.active.base)
            .expect("active segment has metadata")
    }

    pub(crate) fn lock_cache(&self) -> MutexGuard<'_, MapCache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the map and index of segment `base`, mapping it lazily if inactive.
    pub(crate) fn with_segment<T>(
        &self,
        base: i64,
        f: impl FnOnce(Option<&std::sync::Arc<Mapping>>, &SegmentIndex) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        if base == self.active.base {
            return f(Some(self.active.map.shared()), &self.active.builder.index);
        }
        let cached = self.cached_segment(base)?;
        f(cached.map.as_ref(), &cached.index)
    }

    pub(crate) fn cached_segment(&self, base: i64) -> Result<CachedSegment, LogError> {
        if let Some(c) = self.lock_cache().get(base) {
            return Ok(c);
        }
        let meta = self.segments.get(&base).expect("segment exists");
        let loaded = map_segment(&self.dir, meta, self.config.index_interval_bytes)?;
        self.lock_cache()
            .insert(base, loaded.clone(), self.config.max_mapped_segments);
        Ok(loaded)
    }

    /// Deletes segment `base`'s files and forgets it (not the active segment).
    pub(crate) fn remove_segment(&mut self, base: i64) -> Result<(), LogError> {
        self.take_out_segment(base);
        remove_segment_files(&self.dir, base)
    }

    /// Takes the segment at `base` out of the log into the trash (see `trash.rs`).
    pub(crate) fn retire_segment(&mut self, base: i64) -> Result<(), LogError> {
        let map = self.take_out_segment(base);
        self.trash.add(segment_files(&self.dir, base), map)
    }

    /// Forgets the segment at `base` (its files stay); returns its cached map, if any.
    fn take_out_segment(&mut self, base: i64) -> Option<CachedSegment> {
        self.segments.remove(&base);
        self.unflushed_rolled.retain(|&(b, _)| b != base);
        self.lock_cache().remove(base)
    }

    /// The segments retention took out since the last call, for the caller to delete
    /// ([`Trash::empty`]) after it lets go of the log.
    pub fn take_trash(&mut self) -> Trash {
        self.trash.take()
    }

    pub(crate) fn persist_log_start(&self) -> Result<(), LogError> {
        checkpoint::write(
            &self.dir.join(LOG_START_FILE),
            &[self.log_start.to_string()],
        )
    }

    /// Saves the recovery point. A lower one (a truncation) is written durably before
    /// anything relies on it; a higher one without fsync: everything below it is already
    /// on disk, and if the write is lost, recovery rescans from the older point.
    pub(crate) fn persist_recovery_point(&mut self, rp: i64) -> Result<(), LogError> {
        if rp != self.recovery_point {
            let path = self.dir.join(RECOVERY_POINT_FILE);
            if rp > self.recovery_point {
                checkpoint::write_unsynced(&path, &[rp.to_string()])?;
            } else {
                checkpoint::write(&path, &[rp.to_string()])?;
            }
            self.recovery_point = rp;
        }
        Ok(())
    }
}

/// Maps an inactive segment read-only and loads (or rebuilds) its indexes; the map keeps
/// the file open (reads can be sent from it with `sendfile`).
fn map_segment(dir: &Path, meta: &SegmentMeta, interval: u32) -> Result<CachedSegment, LogError> {
    let path = segment::log_path(dir, meta.base);
    let file = File::open(&path).map_err(LogError::io(&path))?;
    let file_len = file.metadata().map_err(LogError::io(&path))?.len();
    if file_len < u64::from(meta.size) {
        let source = std::io::Error::other(format!(
            "file is {file_len} bytes but the segment holds {} bytes",
            meta.size
        ));
        return Err(LogError::Io { path, source });
    }
    let map =
        Mapping::map_read_only(Arc::new(file), meta.size as usize).map_err(LogError::io(&path))?;
    let rel_end = u32::try_from(meta.next_offset - meta.base).unwrap_or(u32::MAX);
    let (ip, tp) = (
        segment::index_path(dir, meta.base),
        segment::time_index_path(dir, meta.base),
    );
    let index = match SegmentIndex::load(&ip, &tp, meta.size.max(1), rel_end.max(1)) {
        Some(index) => index,
        None => {
            let data = map
                .as_ref()
                .and_then(|m| m.slice(0..m.readable()))
                .unwrap_or(&[]);
            let mut scan = segment::scan(data, meta.base, interval);
            scan.builder.seal();
            let _ = scan.builder.index.save(&ip, &tp);
            scan.builder.index
        }
    };
    Ok(CachedSegment {
        map,
        index: std::sync::Arc::new(index),
    })
}

fn segment_files(dir: &Path, base: i64) -> [PathBuf; 4] {
    [
        segment::log_path(dir, base),
        segment::index_path(dir, base),
        segment::time_index_path(dir, base),
        crate::producer_snapshots::snapshot_path(dir, base),
    ]
}

pub(crate) fn remove_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    for path in segment_files(dir, base) {
        trash::remove_if_present(&path)?;
    }
    Ok(())
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftover temporary files and
/// segment files retention renamed but did not delete before a crash.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let entry = entry.map_err(LogError::io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") || name.ends_with(".swap") || trash::is_deleted_name(name) {
            let path = entry.path();
            fs::remove_file(&path).map_err(LogError::io(&path))?;
        } else if let Some(base) = segment::parse_log_name(name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn read_offset(path: &Path) -> Result<Option<i64>, LogError> {
    Ok(checkpoint::read(path)?.and_then(|lines| lines.first()?.parse().ok()))
}

/// Builds the segment table. Segments at or after `scan_from`, the last segment, and any
/// whose index files are unusable are scanned; the first invalid batch ends the log.
/// Returns the table and the index builder of the last segment.
fn load_segments(
    dir: &Path,
    name: &str,
    config: &LogConfig,
    bases: &[i64],
    scan_from: i64,
) -> Result<(BTreeMap<i64, SegmentMeta>, IndexBuilder), LogError> {
    let mut segments = BTreeMap::new();
    let interval = config.index_interval_bytes;
    for (i, &base) in bases.iter().enumerate() {
        let path = segment::log_path(dir, base);
        let next_base = bases.get(i + 1).copied();
        let file_len = match fs::metadata(&path) {
            Ok(m) => m.len().min(u64::from(u32::MAX)) as u32,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(LogError::Io { path, source: e }),
        };
        if base < scan_from && next_base.is_some() {
            let rel_end = u32::try_from(next_base.unwrap_or(base) - base).unwrap_or(u32::MAX);
            let (ip, tp) = (
                segment::index_path(dir, base),
                segment::time_index_path(dir, base),
            );
            if let Some(index) = SegmentIndex::load(&ip, &tp, file_len.max(1), rel_end.max(1)) {
                let max_timestamp = index.max_timestamp().map_or(-1, |(t, _)| t);
                let next_offset = next_base.unwrap_or(base);
                let meta = SegmentMeta {
                    base,
                    size: file_len,
                    next_offset,
                    max_timestamp,
                    created_ms: None,
                };
                segments.insert(base, meta);
                continue;
            }
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .ok()
            .map(Arc::new);
        let map = match &file {
            Some(f) => {
                Mapping::map_read_only(f.clone(), file_len as usize).map_err(LogError::io(&path))?
            }
            None => None,
        };
        let data = map
            .as_ref()
            .and_then(|m| m.slice(0..m.readable()))
            .unwrap_or(&[]);
        let mut scan = segment::scan(data, base, interval);
        drop(map);
        if let Some((position, error)) = &scan.stopped {
            tracing::warn!(partition = name, file = %path.display(), position, %error,
                "truncating log at invalid batch");
        }
        let meta = SegmentMeta {
            base,
            size: scan.valid_len,
            next_offset: scan.next_offset,
            max_timestamp: scan.builder.max_timestamp,
            created_ms: None,
        };
        segments.insert(base, meta);
        // A zero tail alone is not damage (a roll that crashed before trimming the file);
        // the offsets of the next segment tell whether anything is missing.
        let broken = scan.stopped.is_some();
        let gap = next_base.is_some_and(|nb| nb != scan.next_offset);
        if next_base.is_none() || broken || gap {
            // This is the last segment now: the rest of the log cannot be trusted.
            for &later in &bases[i + 1..] {
                tracing::warn!(
                    partition = name,
                    segment = later,
                    "deleting segment after invalid data"
                );
                remove_segment_files(dir, later)?;
            }
            return Ok((segments, scan.builder));
        }
        if let Some(f) = &file {
            f.set_len(u64::from(scan.valid_len))
                .map_err(LogError::io(&path))?;
        }
        scan.builder.seal();
        scan.builder.index.save(
            &segment::index_path(dir, base),
            &segment::time_index_path(dir, base),
        )?;
    }
    unreachable!("the last segment returns from the loop")
}
