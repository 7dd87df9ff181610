//! One partition this broker holds a replica of: its log, its role (leader or follower)
//! at a leader epoch, and the leader's replication state.
//!
//! All operations take the partition's lock briefly, never across an await. Changes to the
//! log (appends, truncation, rolls, role changes) also take a writer lock first, one at a
//! time; a leader append holds the partition's lock only to prepare and to finish, and
//! writes its bytes into the page cache between the two without it (storage's
//! `prepared.rs`). That write is the step that can wait for the disk (up to a second under
//! heavy writeback), and meanwhile follower fetches move the high watermark and consumers
//! read, as in Kafka, where reads do not take the log's lock. Every release of the lock
//! publishes the partition's positions (role, leader epoch, log start and end, high
//! watermark) into a third, tiny lock, so that the waiters that re-check them on every
//! append or follower fetch ([`Partition::leader_positions`]) never wait at all.

use super::log_config::{log_config, max_message_bytes};
use super::replica::LeaderReplicaState;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use protocol::control::{PartitionState, TopicConfigs};
use protocol::ids::{BrokerId, LeaderEpoch, Offset, PartitionEpoch, TopicId, TopicPartition};
use protocol::kafka::ResponseError;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use storage::{LogError, PartitionLog, TimestampOffset};

/// Why a partition operation was refused; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("{0}: this broker is not the leader")]
    NotLeader(TopicPartition),
    #[error("{tp}: request epoch {requested} is older than the current leader epoch {current}")]
    FencedLeaderEpoch {
        tp: TopicPartition,
        requested: i32,
        current: LeaderEpoch,
    },
    #[error("{tp}: request epoch {requested} is newer than the current leader epoch {current}")]
    UnknownLeaderEpoch {
        tp: TopicPartition,
        requested: i32,
        current: LeaderEpoch,
    },
    #[error("{tp}: offset {requested} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        tp: TopicPartition,
        requested: i64,
        log_start: Offset,
        log_end: Offset,
    },
    #[error("{tp}: {size} bytes of records exceed max.message.bytes {max}")]
    MessageTooLarge {
        tp: TopicPartition,
        size: usize,
        max: usize,
    },
    #[error("{0}: the replica was removed")]
    Removed(TopicPartition),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl PartitionError {
    /// The Kafka error a client gets for this failure.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            PartitionError::NotLeader(_) | PartitionError::Removed(_) => {
                ResponseError::NotLeaderOrFollower
            }
            PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            PartitionError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            PartitionError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            PartitionError::Log(e) => match e {
                LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
                LogError::InvalidBatch { .. } => ResponseError::CorruptMessage,
                LogError::BatchTooLarge { .. } => ResponseError::RecordListTooLarge,
                LogError::Sequence { source, .. } => match source {
                    storage::SequenceError::StaleEpoch { .. } => {
                        ResponseError::InvalidProducerEpoch
                    }
                    storage::SequenceError::OutOfOrder { .. } => {
                        ResponseError::OutOfOrderSequenceNumber
                    }
                },
                _ => ResponseError::KafkaStorageError,
            },
        }
    }
}

/// The replica's role.
#[derive(Debug)]
pub enum Role {
    Leader(LeaderReplicaState),
    /// Following `leader` (issue 5 adds the fetcher that feeds this replica).
    Follower {
        leader: Option<BrokerId>,
        high_watermark: Offset,
    },
}

#[derive(Debug)]
struct Inner {
    log: Option<PartitionLog>,
    role: Role,
    leader_epoch: LeaderEpoch,
    partition_epoch: PartitionEpoch,
    replicas: Vec<BrokerId>,
    max_message_bytes: usize,
}

/// A partition replica held by this broker.
#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: TopicId,
    self_id: BrokerId,
    inner: Mutex<Inner>,
    /// Held by whoever changes the log, before `inner` (see the module docs).
    writer: Mutex<()>,
    /// The positions as of the last release of `inner`.
    published: Mutex<Published>,
}

/// What the replica is, as [`Published`] records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PublishedRole {
    Removed,
    Follower,
    Leader,
}

/// The positions of the partition when its lock was last released.
#[derive(Clone, Copy, Debug)]
struct Published {
    role: PublishedRole,
    leader_epoch: LeaderEpoch,
    log_start_offset: Offset,
    log_end_offset: Offset,
    high_watermark: Offset,
}

impl Published {
    fn of(inner: &Inner) -> Self {
        let (role, hw) = match (&inner.log, &inner.role) {
            (None, _) => (PublishedRole::Removed, Offset(0)),
            (Some(_), Role::Leader(rs)) => (PublishedRole::Leader, rs.high_watermark()),
            (Some(_), Role::Follower { high_watermark, .. }) => {
                (PublishedRole::Follower, *high_watermark)
            }
        };
        let (start, end) = inner.log.as_ref().map_or((Offset(0), Offset(0)), |l| {
            (l.log_start_offset(), l.log_end_offset())
        });
        Self {
            role,
            leader_epoch: inner.leader_epoch,
            log_start_offset: start,
            log_end_offset: end,
            high_watermark: hw,
        }
    }
}

/// The partition's lock; releasing it publishes the positions.
struct Locked<'a> {
    guard: MutexGuard<'a, Inner>,
    published: &'a Mutex<Published>,
    /// The writer lock, when this change of the log took it (released after `guard`).
    _writer: Option<MutexGuard<'a, ()>>,
}

impl Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.guard
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let now = Published::of(&self.guard);
        *unpoisoned(self.published) = now;
    }
}

/// The outcome of a leader append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub log_start_offset: Offset,
    pub high_watermark: Offset,
    /// Whether this append moved the high watermark (an ISR of the leader alone).
    pub high_watermark_moved: bool,
    /// A retry of batches already stored (idempotent producer): nothing was appended.
    pub duplicate: bool,
}

/// Records read for a fetch, with the offsets a fetch response reports.
#[derive(Clone, Debug)]
pub struct ReadResult {
    pub records: bytes::Bytes,
    /// Where `records` lie in their segment file (`None` when empty).
    pub file: Option<storage::FileRange>,
    pub high_watermark: Offset,
    /// Whether this (follower's) fetch moved the high watermark.
    pub high_watermark_moved: bool,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

/// Who is reading: a consumer stops at the high watermark, a follower at the log end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    Consumer,
    Follower(BrokerId),
}

/// The positions of a partition at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions {
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
    pub leader_epoch: LeaderEpoch,
    pub is_leader: bool,
}

fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug; the data is still the log's own state.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Refuses a client's `current_leader_epoch` (-1: not given) that is not `current`.
fn check_epoch(
    tp: &TopicPartition,
    current: LeaderEpoch,
    requested: i32,
) -> Result<(), PartitionError> {
    if requested < 0 || requested == current.0 {
        return Ok(());
    }
    let tp = tp.clone();
    if requested < current.0 {
        Err(PartitionError::FencedLeaderEpoch {
            tp,
            requested,
            current,
        })
    } else {
        Err(PartitionError::UnknownLeaderEpoch {
            tp,
            requested,
            current,
        })
    }
}

impl Partition {
    /// A replica over an opened log, in the role `state` gives it.
    pub fn new(
        self_id: BrokerId,
        tp: TopicPartition,
        log: PartitionLog,
        state: &PartitionState,
        configs: &TopicConfigs,
        now_ms: i64,
    ) -> Self {
        let inner = Inner {
            log: Some(log),
            role: Role::Follower {
                leader: None,
                high_watermark: Offset(0),
            },
            leader_epoch: LeaderEpoch(-1),
            partition_epoch: PartitionEpoch(-1),
            replicas: Vec::new(),
            max_message_bytes: max_message_bytes(configs),
        };
        let published = Published::of(&inner);
        let p = Self {
            tp,
            topic_id: state.topic_id,
            self_id,
            inner: Mutex::new(inner),
            writer: Mutex::new(()),
            published: Mutex::new(published),
        };
        p.apply_state(state, configs, now_ms);
        p
    }

    /// Applies the partition's committed state. Returns a description of a role change,
    /// if one happened. States from older leader epochs are ignored.
    pub fn apply_state(
        &self,
        state: &PartitionState,
        configs: &TopicConfigs,
        now_ms: i64,
    ) -> Option<String> {
        let mut g = self.lock_to_change();
        let inner = &mut *g;
        inner.max_message_bytes = max_message_bytes(configs);
        if let Some(log) = inner.log.as_mut() {
            log.set_config(log_config(configs));
        }
        if state.leader_epoch < inner.leader_epoch
            || (state.leader_epoch == inner.leader_epoch
                && state.partition_epoch <= inner.partition_epoch)
        {
            return None;
        }
        let new_leadership = state.leader_epoch > inner.leader_epoch;
        inner.partition_epoch = state.partition_epoch;
        inner.replicas = state.replicas.clone();
        let log = inner.log.as_ref()?;
        let is_leader = state.leader == Some(self.self_id);
        if !new_leadership {
            // Same epoch: only the ISR or replicas changed.
            if let Role::Leader(rs) = &mut inner.role {
                rs.on_isr_committed(&state.isr);
            }
            return None;
        }
        inner.leader_epoch = state.leader_epoch;
        let known_hw = match &inner.role {
            Role::Leader(rs) => rs.high_watermark(),
            Role::Follower { high_watermark, .. } => *high_watermark,
        };
        if is_leader {
            let hw = known_hw.max(log.log_start_offset());
            inner.role = Role::Leader(LeaderReplicaState::new(
                self.self_id,
                &state.replicas,
                &state.isr,
                log.log_end_offset(),
                hw,
                now_ms,
            ));
            Some(format!(
                "{}: leader at epoch {}",
                self.tp, state.leader_epoch
            ))
        } else {
            inner.role = Role::Follower {
                leader: state.leader,
                high_watermark: known_hw,
            };
            Some(format!(
                "{}: follower of {} at epoch {}",
                self.tp,
                state.leader.map_or("none".to_string(), |l| l.to_string()),
                state.leader_epoch
            ))
        }
    }

    /// The partition's lock, for reads and for changes of the replication state only.
    fn lock(&self) -> Locked<'_> {
        self.lock_holding(None)
    }

    /// The writer lock, then the partition's lock: for changes of the log or the role.
    fn lock_to_change(&self) -> Locked<'_> {
        self.lock_holding(Some(unpoisoned(&self.writer)))
    }

    /// The partition's lock, keeping `writer` (taken before it) until it is released.
    fn lock_holding<'a>(&'a self, writer: Option<MutexGuard<'a, ()>>) -> Locked<'a> {
        Locked {
            guard: unpoisoned(&self.inner),
            published: &self.published,
            _writer: writer,
        }
    }

    fn leader_check<'a>(
        &self,
        inner: &'a mut Inner,
        epoch: i32,
    ) -> Result<(&'a mut PartitionLog, &'a mut LeaderReplicaState), PartitionError> {
        check_epoch(&self.tp, inner.leader_epoch, epoch)?;
        let Some(log) = inner.log.as_mut() else {
            return Err(PartitionError::Removed(self.tp.clone()));
        };
        match &mut inner.role {
            Role::Leader(rs) => Ok((log, rs)),
            Role::Follower { .. } => Err(PartitionError::NotLeader(self.tp.clone())),
        }
    }

    /// Appends a producer's record batches as leader (offsets are assigned in place). The
    /// bytes are written without the partition's lock (see the module docs).
    pub fn append_as_leader(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Appended, PartitionError> {
        let writer = unpoisoned(&self.writer);
        let prepared = {
            let mut g = self.lock();
            let max = g.max_message_bytes;
            let epoch = g.leader_epoch;
            let (log, _) = self.leader_check(&mut g, -1)?;
            if records.len() > max {
                return Err(PartitionError::MessageTooLarge {
                    tp: self.tp.clone(),
                    size: records.len(),
                    max,
                });
            }
            log.prepare_append(records, epoch, now_ms)?
        };
        let written = prepared.write(records);
        let mut g = self.lock_holding(Some(writer));
        // Holding the writer lock, nothing else changed the log or the role meanwhile.
        let inner = &mut *g;
        let Some(log) = inner.log.as_mut() else {
            return Err(PartitionError::Removed(self.tp.clone()));
        };
        let info = log.finish_append(prepared, written, now_ms)?;
        let Role::Leader(rs) = &mut inner.role else {
            return Err(PartitionError::NotLeader(self.tp.clone()));
        };
        let moved = rs.on_leader_append(log.log_end_offset()).is_some();
        Ok(Appended {
            first_offset: info.first_offset,
            last_offset: info.last_offset,
            log_start_offset: log.log_start_offset(),
            high_watermark: rs.high_watermark(),
            high_watermark_moved: moved,
            duplicate: info.duplicate,
        })
    }

    /// Reads from `offset` up to `max_bytes` (at least one whole batch when any is
    /// readable). A consumer reads below the high watermark; a follower fetch is recorded
    /// in the replication state first (issue 5's fetcher sends those).
    pub fn read(
        &self,
        reader: Reader,
        current_leader_epoch: i32,
        offset: i64,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<ReadResult, PartitionError> {
        let mut g = self.lock();
        let (log, rs) = self.leader_check(&mut g, current_leader_epoch)?;
        let (log_start, log_end) = (log.log_start_offset(), log.log_end_offset());
        if offset < log_start.0 || offset > log_end.0 {
            return Err(PartitionError::OffsetOutOfRange {
                tp: self.tp.clone(),
                requested: offset,
                log_start,
                log_end,
            });
        }
        let mut moved = false;
        let upper = match reader {
            Reader::Consumer => rs.high_watermark(),
            Reader::Follower(id) => {
                moved = rs.on_follower_fetch(id, Offset(offset), now_ms).is_some();
                log_end
            }
        };
        let (records, file) = if Offset(offset) >= upper {
            (bytes::Bytes::new(), None)
        } else {
            let read = log.read(Offset(offset), max_bytes, upper)?;
            (read.records, read.file)
        };
        Ok(ReadResult {
            records,
            file,
            high_watermark: rs.high_watermark(),
            high_watermark_moved: moved,
            log_start_offset: log_start,
            log_end_offset: log_end,
        })
    }

    /// The partition's offsets, as the leader (errors if not leader), as of the last
    /// release of the partition's lock: this never waits for an append in progress.
    pub fn leader_positions(&self, current_leader_epoch: i32) -> Result<Positions, PartitionError> {
        let p = *unpoisoned(&self.published);
        check_epoch(&self.tp, p.leader_epoch, current_leader_epoch)?;
        match p.role {
            PublishedRole::Removed => Err(PartitionError::Removed(self.tp.clone())),
            PublishedRole::Follower => Err(PartitionError::NotLeader(self.tp.clone())),
            PublishedRole::Leader => Ok(Positions {
                log_start_offset: p.log_start_offset,
                log_end_offset: p.log_end_offset,
                high_watermark: p.high_watermark,
                leader_epoch: p.leader_epoch,
                is_leader: true,
            }),
        }
    }

    /// The first offset whose timestamp is at least `timestamp`, below the high watermark.
    pub fn offset_for_timestamp(
        &self,
        current_leader_epoch: i32,
        timestamp: i64,
    ) -> Result<Option<(Offset, i64)>, PartitionError> {
        let (found, hw, start) = {
            let mut g = self.lock();
            let (log, rs) = self.leader_check(&mut g, current_leader_epoch)?;
            let found = log.offset_for_timestamp(timestamp)?;
            (found, rs.high_watermark(), log.log_start_offset())
        };
        // The batch is a view of the segment: it is decoded without the lock.
        Ok(found
            .map(|t| first_record_at(&t, timestamp, start))
            .filter(|(offset, _)| *offset < hw))
    }

    /// Where `epoch` ends in this replica's log (OffsetForLeaderEpoch), answered by the
    /// leader. `None`: the epoch is unknown (older than the log).
    pub fn end_offset_for_epoch(
        &self,
        current_leader_epoch: i32,
        epoch: LeaderEpoch,
    ) -> Result<Option<(LeaderEpoch, Offset)>, PartitionError> {
        let mut g = self.lock();
        let (log, _) = self.leader_check(&mut g, current_leader_epoch)?;
        Ok(log.end_offset_for_epoch(epoch))
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        unpoisoned(&self.published).leader_epoch
    }

    /// DeleteRecords as leader (the group coordinator's compaction of
    /// `__consumer_offsets`): the log now starts at `offset`, which must not pass the high
    /// watermark; whole segments below it are deleted. Returns the new log start.
    pub fn delete_records_before(
        &self,
        current_leader_epoch: i32,
        offset: Offset,
    ) -> Result<Offset, PartitionError> {
        let mut g = self.lock_to_change();
        let (log, rs) = self.leader_check(&mut g, current_leader_epoch)?;
        let hw = rs.high_watermark();
        if offset > hw {
            return Err(PartitionError::OffsetOutOfRange {
                tp: self.tp.clone(),
                requested: offset.0,
                log_start: log.log_start_offset(),
                log_end: hw,
            });
        }
        log.delete_records_before(offset)?;
        Ok(log.log_start_offset())
    }

    /// Flushes and closes the log (broker shutdown).
    pub fn close(&self) {
        if let Some(log) = self.lock_to_change().log.take() {
            if let Err(e) = log.close() {
                tracing::warn!("{}: closing the log failed: {e}", self.tp);
            }
        }
    }

    /// Closes the log and renames its directory out of the way (topic removed or replica
    /// moved away); the returned directory is for the caller to remove.
    pub fn retire(&self) -> Option<storage::RetiredDir> {
        let log = self.lock_to_change().log.take()?;
        log.retire()
            .map_err(|e| tracing::warn!("{}: retiring the log failed: {e}", self.tp))
            .ok()
    }

    /// Holds the writer lock, as an append in its write does (tests).
    #[cfg(test)]
    pub(crate) fn hold_writer_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allocates the next segment file without the partition's lock (topic config
    /// `preallocate`) and hands it to the log for its next roll.
    fn make_spare(&self, request: &storage::SpareRequest) {
        let made = request.prepare();
        let mut g = self.lock_to_change();
        let Some(log) = g.log.as_mut() else {
            // Deleted meanwhile: the file went with the directory, or is removed at open.
            return;
        };
        let result = match made {
            Ok(spare) => log.install_spare(spare),
            Err(e) => {
                log.spare_failed();
                tracing::warn!(
                    "{}: cannot allocate the next segment ahead ({e}); segments stay sparse",
                    self.tp
                );
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!("{}: log maintenance failed: {e}", self.tp);
        }
    }

    /// Periodic log housekeeping (segment rolls by time, retention, flushes).
    ///
    /// The fsync of a rolled segment and the deletion of segments retention took out run
    /// without the partition's lock: they can take long under write load, and appends and
    /// fetches of this partition go on meanwhile.
    pub fn tick(&self, now_ms: i64) {
        let (pending, trash, spare) = {
            let mut g = self.lock_to_change();
            let Some(log) = g.log.as_mut() else { return };
            if let Err(e) = log
                .tick_except_sync(now_ms)
                .and_then(|_| log.enforce_retention_deferred(now_ms))
            {
                tracing::warn!("{}: log maintenance failed: {e}", self.tp);
            }
            (
                log.next_pending_sync(),
                log.take_trash(),
                log.spare_wanted(),
            )
        };
        // The next segment first: a roll may be close, and a large deletion takes seconds.
        if let Some(request) = spare {
            self.make_spare(&request);
        }
        if let Err(e) = trash.empty() {
            tracing::warn!("{}: deleting old segments failed: {e}", self.tp);
        }
        let Some(pending) = pending else { return };
        if let Err(e) = pending.sync() {
            tracing::warn!("{}: fsync of a rolled segment failed: {e}", self.tp);
            return;
        }
        if let Some(log) = self.lock().log.as_mut() {
            if let Err(e) = log.mark_synced(&pending) {
                tracing::warn!("{}: log maintenance failed: {e}", self.tp);
            }
        }
    }
}

/// What a follower got for one partition from the leader's fetch response.
#[derive(Clone, Copy, Debug)]
pub struct FollowerFetch<'a> {
    /// Record batches, with the leader's offsets and epochs.
    pub records: &'a [u8],
    /// The leader's high watermark.
    pub leader_hw: Offset,
    /// The leader's log start offset.
    pub leader_log_start: Offset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerView {
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
    /// The latest leader epoch in this replica's log (`None`: no epoch known).
    pub latest_epoch: Option<LeaderEpoch>,
}

/// Follower-side operations (issue 5's replica fetcher). Each checks that the replica is
/// still a follower at the leader epoch the fetcher worked with, so nothing a stale fetch
/// brought back is written after a role change.
impl Partition {
    /// The replica's follower state; `None` if it leads or was removed.
    pub fn follower_view(&self) -> Option<FollowerView> {
        let g = self.lock();
        let log = g.log.as_ref()?;
        match &g.role {
            Role::Leader(_) => None,
            Role::Follower {
                leader,
                high_watermark,
            } => Some(FollowerView {
                leader: *leader,
                leader_epoch: g.leader_epoch,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: *high_watermark,
                latest_epoch: log.latest_epoch(),
            }),
        }
    }

    fn follower_check<'a>(
        &self,
        inner: &'a mut Inner,
        leader_epoch: LeaderEpoch,
    ) -> Result<(&'a mut PartitionLog, &'a mut Offset), PartitionError> {
        check_epoch(&self.tp, inner.leader_epoch, leader_epoch.0)?;
        let Some(log) = inner.log.as_mut() else {
            return Err(PartitionError::Removed(self.tp.clone()));
        };
        match &mut inner.role {
            Role::Follower { high_watermark, .. } => Ok((log, high_watermark)),
            Role::Leader(_) => Err(PartitionError::NotLeader(self.tp.clone())),
        }
    }

    /// Where `epoch` ends in this replica's own log.
    pub fn own_end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.lock()
            .log
            .as_ref()
            .and_then(|l| l.end_offset_for_epoch(epoch))
    }

    /// Cuts this follower's log at `offset` (a divergence found with OffsetForLeaderEpoch).
    pub fn truncate_as_follower(
        &self,
        leader_epoch: LeaderEpoch,
        offset: Offset,
    ) -> Result<(), PartitionError> {
        let mut g = self.lock_to_change();
        let (log, hw) = self.follower_check(&mut g, leader_epoch)?;
        log.truncate_to(offset)?;
        *hw = (*hw).min(log.log_end_offset());
        Ok(())
    }

    /// Empties this follower's log and restarts it at `offset` (behind the leader's start).
    pub fn restart_as_follower_at(
        &self,
        leader_epoch: LeaderEpoch,
        offset: Offset,
    ) -> Result<(), PartitionError> {
        let mut g = self.lock_to_change();
        let (log, hw) = self.follower_check(&mut g, leader_epoch)?;
        log.truncate_fully_and_start_at(offset)?;
        *hw = offset;
        Ok(())
    }

    /// Appends batches fetched from the leader (keeping their offsets and epochs), takes
    /// the high watermark `min(leader_hw, own log end)`, and moves the log start up to the
    /// leader's (as far as that high watermark), so that records the leader deleted
    /// (retention, DeleteRecords, the compaction of `__consumer_offsets`) go here too.
    /// Returns the new log end.
    pub fn append_as_follower(
        &self,
        leader_epoch: LeaderEpoch,
        fetched: FollowerFetch<'_>,
        now_ms: i64,
    ) -> Result<Offset, PartitionError> {
        let mut g = self.lock_to_change();
        let (log, hw) = self.follower_check(&mut g, leader_epoch)?;
        if !fetched.records.is_empty() {
            log.append_as_follower(fetched.records, now_ms)?;
        }
        let end = log.log_end_offset();
        *hw = fetched.leader_hw.min(end).max(log.log_start_offset());
        let start = fetched.leader_log_start.min(*hw);
        if start > log.log_start_offset() {
            log.delete_records_before(start)?;
        }
        Ok(end)
    }

    /// As leader: the ISR, or `None` if this replica does not lead.
    pub fn in_sync_replicas(&self) -> Option<Vec<BrokerId>> {
        match &self.lock().role {
            Role::Leader(rs) => Some(rs.isr().to_vec()),
            Role::Follower { .. } => None,
        }
    }

    /// As leader: the ISR change replication calls for now (shrink lagging members first,
    /// else add caught-up replicas), with the epochs the controller checks.
    pub fn isr_change(&self, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        let g = self.lock();
        let Role::Leader(rs) = &g.role else {
            return None;
        };
        let new_isr = crate::replication::isr::next_isr(rs, now_ms, lag_max_ms)?;
        Some(IsrChange {
            leader_epoch: g.leader_epoch,
            partition_epoch: g.partition_epoch,
            new_isr,
        })
    }

    /// Applies a partition state the controller committed (AlterPartition's answer).
    pub fn apply_committed(&self, state: &PartitionState) {
        let mut g = self.lock();
        if state.leader_epoch != g.leader_epoch || state.partition_epoch <= g.partition_epoch {
            return;
        }
        g.partition_epoch = state.partition_epoch;
        if let Role::Leader(rs) = &mut g.role {
            rs.on_isr_committed(&state.isr);
        }
    }
}

/// An ISR change to propose with AlterPartition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<BrokerId>,
}

/// Kafka's ListOffsets answer inside the batch the log found: the first record (at or
/// after the log start) whose timestamp is at least `timestamp`, with its own timestamp.
/// A batch with log-append time, or one that does not decode, gives the batch's answer.
fn first_record_at(found: &TimestampOffset, timestamp: i64, log_start: Offset) -> (Offset, i64) {
    let batch_answer = (found.offset, found.timestamp);
    let Ok(set) = RecordBatchDecoder::decode(&mut found.batch.clone()) else {
        return batch_answer;
    };
    // Every record of a batch has the batch's timestamp type.
    if set
        .records
        .first()
        .is_none_or(|r| r.timestamp_type == TimestampType::LogAppend)
    {
        return batch_answer;
    }
    set.records
        .iter()
        .find(|r| r.offset >= log_start.0 && r.timestamp >= timestamp)
        .map_or(batch_answer, |r| (Offset(r.offset), r.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;
    use storage::batch::build_test_batch;
    use storage::LogConfig;

    const B1: BrokerId = BrokerId(1);
    const B2: BrokerId = BrokerId(2);

    fn leader(dir: &std::path::Path) -> Partition {
        let state = PartitionState {
            topic_id: TopicId(uuid::Uuid::nil()),
            partition: protocol::ids::PartitionIndex(0),
            replicas: vec![B1, B2],
            isr: vec![B1, B2],
            leader: Some(B1),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
        };
        let log = PartitionLog::open(dir, "t-0", LogConfig::default()).unwrap();
        let tp = TopicPartition::new("t", 0);
        Partition::new(B1, tp, log, &state, &TopicConfigs::new(), 0)
    }

    #[test]
    fn the_tick_allocates_the_next_segment_of_a_preallocating_topic() {
        use std::os::unix::fs::MetadataExt;
        const SEGMENT: u64 = 64 << 10;
        let dir = tempfile::tempdir().unwrap();
        let mut configs = TopicConfigs::new();
        configs.insert("preallocate".into(), "true".into());
        configs.insert("segment.bytes".into(), SEGMENT.to_string());
        let state = PartitionState {
            topic_id: TopicId(uuid::Uuid::nil()),
            partition: protocol::ids::PartitionIndex(0),
            replicas: vec![B1],
            isr: vec![B1],
            leader: Some(B1),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
        };
        let config = crate::partition::log_config::log_config(&configs);
        let log = PartitionLog::open(dir.path(), "t-0", config).unwrap();
        let p = Partition::new(B1, TopicPartition::new("t", 0), log, &state, &configs, 0);
        let allocated =
            |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().blocks() * 512;
        let spares = || -> Vec<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("next-segment."))
                .collect()
        };
        let batch = build_test_batch(0, 0, 1, 1_000, &[7u8; 4000]);
        let per_segment = SEGMENT as usize / batch.len();
        for _ in 0..per_segment / 2 + 1 {
            p.append_as_leader(&batch, 1_000).unwrap();
        }
        assert!(spares().is_empty(), "made by the tick, not by appends");
        p.tick(1_000);
        let made = spares();
        assert_eq!(made.len(), 1, "the tick made the next segment");
        assert!(allocated(&made[0]) >= SEGMENT);
        for _ in 0..per_segment {
            p.append_as_leader(&batch, 1_000).unwrap();
        }
        assert!(spares().is_empty(), "the roll took it");
        let second = format!("{:020}.log", per_segment);
        assert!(
            allocated(&second) >= SEGMENT,
            "{second} is the allocated spare"
        );
    }

    #[test]
    fn fetches_move_the_high_watermark_while_an_append_holds_the_writer_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = std::sync::Arc::new(leader(dir.path()));
        let batch = build_test_batch(0, 0, 4, 1_000, b"abcd");
        p.append_as_leader(&batch, 1_000).unwrap();

        // An append in its write (waiting for the disk) holds the writer lock.
        let writing = p.writer.lock().unwrap();
        let (tx, rx) = mpsc::channel();
        let follower = {
            let (p, tx) = (p.clone(), tx.clone());
            std::thread::spawn(move || {
                let r = p.read(Reader::Follower(B2), 0, 4, 1 << 20, 2_000).unwrap();
                tx.send(("fetch", r.high_watermark)).unwrap();
            })
        };
        let got = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the fetch waited");
        assert_eq!(
            got,
            ("fetch", Offset(4)),
            "the follower's fetch moved the HW"
        );
        let consumer = p.read(Reader::Consumer, 0, 0, 1 << 20, 2_000).unwrap();
        assert_eq!(consumer.records.len(), batch.len());

        // Another append waits for the writer lock.
        let producer = {
            let p = p.clone();
            std::thread::spawn(move || {
                let b = build_test_batch(0, 0, 2, 1_000, b"ef");
                let a = p.append_as_leader(&b, 3_000).unwrap();
                tx.send(("append", a.last_offset)).unwrap();
            })
        };
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(writing);
        let got = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the append finished");
        assert_eq!(got, ("append", Offset(5)));
        follower.join().unwrap();
        producer.join().unwrap();
        assert_eq!(p.leader_positions(-1).unwrap().log_end_offset, Offset(6));
    }
}
