//! The producer state of a log on disk: `{offset:020}.snapshot` files (Kafka's producer
//! snapshots), each the state of [`crate::producers::ProducerStates`] as of that offset,
//! and the replay of batch headers that rebuilds the state from the nearest one.
//!
//! A snapshot is written at every roll, named after the new segment's base offset (so
//! retention and truncation delete it with its segment), and at a clean close at the log
//! end. Opening and truncating load the latest intact snapshot at or below the log end and
//! replay the batches after it: after a clean close none, after a crash the active segment.
//! Snapshots are written without fsync (a lost or torn one is detected by its checksum and
//! an older one, or the whole log, is replayed instead).

use std::fs;
use std::path::{Path, PathBuf};

use protocol::ids::Offset;

use crate::batch::BatchHeader;
use crate::checkpoint;
use crate::error::LogError;
use crate::log::PartitionLog;
use crate::producers::ProducerStates;

const SUFFIX: &str = ".snapshot";
/// Bytes of the log read per step of a replay.
const REPLAY_READ_BYTES: usize = 8 << 20;
/// How often the tick looks for expired producers.
pub(crate) const EXPIRY_CHECK_MS: i64 = 60_000;

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SUFFIX}"))
}

fn parse_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The offsets of the snapshot files in `dir`, sorted.
fn list(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let entry = entry.map_err(LogError::io(dir))?;
        if let Some(offset) = entry.file_name().to_str().and_then(parse_name) {
            out.push(offset);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn remove(dir: &Path, offset: i64) -> Result<(), LogError> {
    crate::trash::remove_if_present(&snapshot_path(dir, offset))
}

impl PartitionLog {
    /// Saves the producer state as of the log end (see the module docs).
    pub(crate) fn write_producer_snapshot(&self) -> Result<(), LogError> {
        let at = self.log_end_offset().0;
        checkpoint::write_unsynced(&snapshot_path(&self.dir, at), &self.producers.to_lines())
    }

    /// Rebuilds the producer state for the log as it is now: from the latest intact
    /// snapshot at or below the log end, replaying the batches after it. Snapshots above
    /// the log end, and those of no segment (a clean close's, once loaded), are deleted;
    /// segments the replay crosses without a snapshot get one.
    pub(crate) fn rebuild_producers(&mut self) -> Result<(), LogError> {
        let end = self.log_end_offset().0;
        let mut state = ProducerStates::default();
        let mut from = self.log_start;
        for offset in list(&self.dir)?.into_iter().rev() {
            if offset > end {
                remove(&self.dir, offset)?;
                continue;
            }
            let lines = checkpoint::read(&snapshot_path(&self.dir, offset))?;
            match lines.as_deref().and_then(ProducerStates::from_lines) {
                Some(s) => {
                    state = s;
                    from = offset;
                    break;
                }
                None => {
                    tracing::warn!(partition = %self.name, offset, "ignoring a damaged producer snapshot");
                    remove(&self.dir, offset)?;
                }
            }
        }
        self.producers = state;
        self.replay_producers(from)?;
        for offset in list(&self.dir)? {
            if !self.segments.contains_key(&offset) {
                remove(&self.dir, offset)?;
            }
        }
        self.producers.evict_below(self.log_start);
        Ok(())
    }

    /// Takes every batch from `from` to the log end into the producer state.
    fn replay_producers(&mut self, from: i64) -> Result<(), LogError> {
        let end = self.log_end_offset();
        let mut at = from.max(self.log_start);
        while at < end.0 {
            self.snapshot_if_segment_start(at)?;
            let read = self.read(Offset(at), REPLAY_READ_BYTES, end)?;
            if read.records.is_empty() {
                break;
            }
            // A read covers one segment at most, so each segment start is where one begins.
            let mut rest = &read.records[..];
            while let Ok(h) = BatchHeader::parse(rest) {
                self.producers.record(&h);
                at = h.next_offset();
                rest = &rest[h.total_len()..];
            }
        }
        Ok(())
    }

    /// Writes the state as a snapshot at `offset` when a segment starts there without one.
    fn snapshot_if_segment_start(&self, offset: i64) -> Result<(), LogError> {
        let path = snapshot_path(&self.dir, offset);
        if self.segments.contains_key(&offset) && offset > self.log_start && !path.exists() {
            checkpoint::write_unsynced(&path, &self.producers.to_lines())?;
        }
        Ok(())
    }

    /// Forgets producers idle longer than the config allows (checked once a minute).
    pub(crate) fn expire_producers(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.last_producer_expiry_ms) < EXPIRY_CHECK_MS {
            return;
        }
        self.last_producer_expiry_ms = now_ms;
        let gone = self
            .producers
            .expire(now_ms, self.config.producer_id_expiration_ms);
        if gone > 0 {
            tracing::debug!(partition = %self.name, gone, "expired idle producer ids");
        }
    }

    /// The producer state (for DescribeProducers and tests).
    pub fn producers(&self) -> &ProducerStates {
        &self.producers
    }
}
