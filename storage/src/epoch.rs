//! The leader-epoch cache: (epoch, start offset) for every leader epoch that appended to the
//! log, persisted in `leader-epoch-checkpoint` (see `checkpoint`) on every change.
//!
//! Followers use it through OffsetsForLeaderEpoch to find where their log diverges from the
//! leader's; it is truncated together with the log.

use std::path::PathBuf;

use protocol::ids::{LeaderEpoch, Offset};

use crate::checkpoint;
use crate::error::LogError;

pub(crate) const FILE: &str = "leader-epoch-checkpoint";

#[derive(Debug)]
pub(crate) struct EpochCache {
    path: PathBuf,
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl EpochCache {
    /// Loads the checkpoint (a missing or damaged file gives an empty cache).
    pub(crate) fn load(path: PathBuf) -> Result<EpochCache, LogError> {
        let mut entries = Vec::new();
        for line in checkpoint::read(&path)?.unwrap_or_default() {
            let mut it = line.split(' ').map(str::parse::<i64>);
            if let (Some(Ok(e)), Some(Ok(o))) = (it.next(), it.next()) {
                let epoch = LeaderEpoch(i32::try_from(e).unwrap_or(-1));
                let sorted = entries
                    .last()
                    .is_none_or(|&(le, lo)| epoch > le && Offset(o) >= lo);
                if epoch.0 >= 0 && sorted {
                    entries.push((epoch, Offset(o)));
                }
            }
        }
        Ok(EpochCache { path, entries })
    }

    pub(crate) fn entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Records that `epoch` starts at `start` if it is newer than the latest epoch.
    pub(crate) fn assign(&mut self, epoch: LeaderEpoch, start: Offset) -> Result<(), LogError> {
        if epoch.0 < 0 || self.latest_epoch().is_some_and(|e| e >= epoch) {
            return Ok(());
        }
        self.entries.push((epoch, start));
        self.persist()
    }

    /// Kafka's `endOffsetFor`: see [`crate::PartitionLog::end_offset_for_epoch`].
    pub(crate) fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let &(latest, _) = self.entries.last()?;
        if epoch == latest {
            return Some((latest, log_end));
        }
        let higher = self.entries.iter().find(|&&(e, _)| e > epoch)?;
        match self.entries.iter().rev().find(|&&(e, _)| e <= epoch) {
            Some(&(floor, _)) => Some((floor, higher.1)),
            None => Some((epoch, higher.1)),
        }
    }

    /// Drops entries starting at or after `end` (the log was truncated to `end`).
    pub(crate) fn truncate_from_end(&mut self, end: Offset) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < end);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// The log now starts at `start`: entries wholly before it go, except the latest of
    /// them, which now starts at `start`.
    pub(crate) fn truncate_from_start(&mut self, start: Offset) -> Result<(), LogError> {
        let keep_from = self.entries.iter().rposition(|&(_, o)| o <= start);
        let Some(i) = keep_from else { return Ok(()) };
        if i == 0 && self.entries[0].1 == start {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].1 = start;
        // Not fsynced (Kafka does the same since KAFKA-15046, for the same stall): the log
        // applies its start to the cache again when it opens, so an older file is safe.
        checkpoint::write_unsynced(&self.path, &self.lines())
    }

    pub(crate) fn clear(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.persist()
    }

    fn persist(&self) -> Result<(), LogError> {
        checkpoint::write(&self.path, &self.lines())
    }

    fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(e, o)| format!("{} {}", e.0, o.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut c = EpochCache::load(path.clone()).unwrap();
        assert_eq!(c.end_offset_for(LeaderEpoch(0), Offset(0)), None);
        c.assign(LeaderEpoch(1), Offset(0)).unwrap();
        c.assign(LeaderEpoch(1), Offset(5)).unwrap();
        c.assign(LeaderEpoch(3), Offset(10)).unwrap();
        c.assign(LeaderEpoch(5), Offset(20)).unwrap();
        let end = Offset(30);
        assert_eq!(
            c.end_offset_for(LeaderEpoch(5), end),
            Some((LeaderEpoch(5), end))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(4), end),
            Some((LeaderEpoch(3), Offset(20)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(1), end),
            Some((LeaderEpoch(1), Offset(10)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(0), end),
            Some((LeaderEpoch(0), Offset(0)))
        );
        assert_eq!(c.end_offset_for(LeaderEpoch(6), end), None);
        let reloaded = EpochCache::load(path.clone()).unwrap();
        assert_eq!(reloaded.entries(), c.entries());
        c.truncate_from_end(Offset(20)).unwrap();
        assert_eq!(c.latest_epoch(), Some(LeaderEpoch(3)));
        c.truncate_from_start(Offset(12)).unwrap();
        assert_eq!(c.entries(), &[(LeaderEpoch(3), Offset(12))]);
        assert_eq!(EpochCache::load(path).unwrap().entries(), c.entries());
    }
}
