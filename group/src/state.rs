//! The coordinator's state machine: every group of the `__consumer_offsets` partitions this
//! broker leads, with no sockets, no tasks and no clock of its own.
//!
//! ```text
//!   handle_*(now_ms, request) ──► Reply::Now(response) | Reply::Later(waiter)
//!   tick(now_ms)               ──► member expiry, rebalance deadlines, offset expiry
//!   write_completed(token, r)  ──► a write it asked for is committed (or failed)
//!                                    │
//!   take_effects() ◄─────────────────┘  completions (waiter, response) + writes to append
//! ```
//!
//! Writes go to the caller as [`WriteRequest`]s, to be appended in the order they are
//! emitted; the caller reports each result with [`GroupStateMachine::write_completed`].
//! Offsets and the group's new generation become visible only after their write is
//! committed, so nothing a client was told can be lost by a coordinator failover.
//!
//! Files: this one holds the types, the write bookkeeping and the completion of writes;
//! `state/rebalance.rs` the rebalance steps, `state/expiry.rs` everything driven by
//! `tick`, `state/load.rs` partition loading, resigning and compaction snapshots.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{JoinGroupResponse, OffsetCommitResponse, SyncGroupResponse};
use tracing::warn;

use crate::codec::{self, OffsetValue};
use crate::config::GroupConfig;
use crate::group::{Group, GroupState, WaiterId};
use crate::hash::partition_for;

mod expiry;
mod load;
mod rebalance;

/// Identifies one write handed to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteToken(pub u64);

/// Records to append to partition `partition` of `__consumer_offsets`, with acks=all.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    pub token: WriteToken,
    pub partition: i32,
    /// `(key, value)`; a `None` value is a tombstone.
    pub records: Vec<(Bytes, Option<Bytes>)>,
}

/// A response to a request that had to wait.
#[derive(Clone, Debug)]
pub enum Completion {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Commit(OffsetCommitResponse),
}

/// The answer of a `handle_*` call.
#[derive(Debug)]
pub enum Reply<T> {
    /// The response, to send now.
    Now(T),
    /// The response comes later as a [`Completion`] for this waiter.
    Later(WaiterId),
}

/// What the state machine asks its caller to do.
#[derive(Debug, Default)]
pub struct Effects {
    pub completions: Vec<(WaiterId, Completion)>,
    pub writes: Vec<WriteRequest>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.completions.is_empty() && self.writes.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartitionStatus {
    Loading(u64),
    Loaded,
}

/// What to do when a write completes.
#[derive(Debug)]
pub(crate) enum WriteKind {
    /// OffsetCommit: apply `offsets` to the group and answer the waiter.
    Commit {
        waiter: WaiterId,
        group: String,
        response: OffsetCommitResponse,
        /// `(topic index, partition index)` in `response` and the offset stored there.
        offsets: Vec<(usize, usize, String, i32, OffsetValue)>,
    },
    /// SyncGroup of the leader: the generation's assignment is stored.
    Sync { group: String, generation: i32 },
    /// Tombstones and bookkeeping nobody waits for.
    Background,
}

#[derive(Debug)]
struct PendingWrite {
    partition: i32,
    records: Vec<(Bytes, Option<Bytes>)>,
    kind: WriteKind,
}

/// Every group this broker coordinates.
#[derive(Debug)]
pub struct GroupStateMachine {
    pub(crate) config: GroupConfig,
    partitions: HashMap<i32, PartitionStatus>,
    pub(crate) groups: HashMap<String, Group>,
    pending_writes: BTreeMap<WriteToken, PendingWrite>,
    next_id: u64,
    out: Effects,
}

/// Maps an append error to the code Kafka's coordinator answers with.
pub fn map_write_error(code: i16) -> i16 {
    use ResponseError as E;
    match ResponseError::try_from_code(code) {
        None => 0,
        Some(
            E::UnknownTopicOrPartition
            | E::NotEnoughReplicas
            | E::NotEnoughReplicasAfterAppend
            | E::RequestTimedOut,
        ) => E::CoordinatorNotAvailable.code(),
        Some(E::NotLeaderOrFollower | E::KafkaStorageError) => E::NotCoordinator.code(),
        Some(E::MessageTooLarge | E::RecordListTooLarge | E::InvalidFetchSize) => {
            E::InvalidCommitOffsetSize.code()
        }
        Some(e) => e.code(),
    }
}

impl GroupStateMachine {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            partitions: HashMap::new(),
            groups: HashMap::new(),
            pending_writes: BTreeMap::new(),
            next_id: 1,
            out: Effects::default(),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Completions and writes produced since the last call.
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.out)
    }

    /// The `__consumer_offsets` partition of `group_id`.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.config.offsets_partitions)
    }

    /// The partition of `group_id` if this broker answers for it, else the error code
    /// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).
    pub fn check(&self, group_id: &str) -> Result<i32, i16> {
        let p = self.partition_of(group_id);
        match self.partitions.get(&p) {
            Some(PartitionStatus::Loaded) => Ok(p),
            Some(PartitionStatus::Loading(_)) => {
                Err(ResponseError::CoordinatorLoadInProgress.code())
            }
            None => Err(ResponseError::NotCoordinator.code()),
        }
    }

    /// Whether some partition is still loading (ListGroups answers
    /// COORDINATOR_LOAD_IN_PROGRESS then).
    pub fn any_loading(&self) -> bool {
        self.partitions
            .values()
            .any(|s| matches!(s, PartitionStatus::Loading(_)))
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) fn complete(&mut self, waiter: WaiterId, c: Completion) {
        self.out.completions.push((waiter, c));
    }

    pub(crate) fn emit_write(
        &mut self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
        kind: WriteKind,
    ) -> WriteToken {
        let token = WriteToken(self.next_id());
        self.out.writes.push(WriteRequest {
            token,
            partition,
            records: records.clone(),
        });
        self.pending_writes.insert(
            token,
            PendingWrite {
                partition,
                records,
                kind,
            },
        );
        token
    }

    /// Answers the join and sync requests `member_id` has waiting with `code`.
    pub(crate) fn fail_member_waiters(&mut self, g: &mut Group, member_id: &str, code: i16) {
        let Some(m) = g.members.get_mut(member_id) else {
            return;
        };
        if let Some(w) = m.join_waiter.take() {
            let r = crate::api::join_group::error_response(member_id, code);
            self.complete(w.id, Completion::Join(r));
        }
        if let Some(w) = m.sync_waiter.take() {
            self.complete(
                w,
                Completion::Sync(crate::api::sync_group::error_response(code)),
            );
        }
    }

    // ---- writes ------------------------------------------------------------------------

    /// A write asked for in [`Effects::writes`] finished: `Ok` once committed, else the
    /// Kafka error code of the append.
    pub fn write_completed(&mut self, token: WriteToken, result: Result<(), i16>, now_ms: i64) {
        let Some(w) = self.pending_writes.remove(&token) else {
            return;
        };
        match w.kind {
            WriteKind::Commit {
                waiter,
                group,
                response,
                offsets,
            } => {
                self.commit_written(waiter, &group, response, offsets, result);
            }
            WriteKind::Sync { group, generation } => {
                self.sync_written(&group, generation, result, now_ms)
            }
            WriteKind::Background => {
                if let Err(code) = result {
                    warn!(
                        partition = w.partition,
                        code, "background __consumer_offsets write failed"
                    );
                }
            }
        }
    }

    fn commit_written(
        &mut self,
        waiter: WaiterId,
        group: &str,
        mut response: OffsetCommitResponse,
        offsets: Vec<(usize, usize, String, i32, OffsetValue)>,
        result: Result<(), i16>,
    ) {
        let g = self.groups.get_mut(group);
        let code = match (&result, g) {
            (Ok(()), Some(g)) => {
                g.commit_waiters = g.commit_waiters.saturating_sub(1);
                0
            }
            (Ok(()), None) => ResponseError::NotCoordinator.code(),
            (Err(c), Some(g)) => {
                g.commit_waiters = g.commit_waiters.saturating_sub(1);
                map_write_error(*c)
            }
            (Err(c), None) => map_write_error(*c),
        };
        for (ti, pi, topic, partition, value) in offsets {
            if code == 0 {
                if let Some(g) = self.groups.get_mut(group) {
                    g.offsets.insert((topic, partition), value);
                }
            }
            if let Some(p) = response
                .topics
                .get_mut(ti)
                .and_then(|t| t.partitions.get_mut(pi))
            {
                p.error_code = code;
            }
        }
        self.complete(waiter, Completion::Commit(response));
    }

    fn sync_written(&mut self, group: &str, generation: i32, result: Result<(), i16>, now_ms: i64) {
        let Some(mut g) = self.groups.remove(group) else {
            return;
        };
        if g.generation == generation
            && g.state == GroupState::CompletingRebalance
            && g.sync_in_flight
        {
            g.sync_in_flight = false;
            match result {
                Ok(()) => {
                    g.set_state(GroupState::Stable, now_ms);
                    g.persisted = Some(codec::encode_group(&g.to_value()));
                    let protocol_type = g.protocol_type.clone();
                    let protocol = g.protocol.clone();
                    let mut done = Vec::new();
                    for m in g.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                            done.push((w, m.assignment.clone()));
                        }
                    }
                    for (w, assignment) in done {
                        let r = crate::api::sync_group::ok_response(
                            protocol_type.as_deref(),
                            protocol.as_deref(),
                            assignment,
                        );
                        self.complete(w, Completion::Sync(r));
                    }
                }
                Err(code) => {
                    let code = map_write_error(code);
                    let ids: Vec<String> = g.members.keys().cloned().collect();
                    for id in ids {
                        if let Some(m) = g.members.get_mut(&id) {
                            m.assignment = Bytes::new();
                            if let Some(w) = m.sync_waiter.take() {
                                self.complete(
                                    w,
                                    Completion::Sync(crate::api::sync_group::error_response(code)),
                                );
                            }
                        }
                    }
                    self.prepare_rebalance(&mut g, now_ms);
                }
            }
        }
        self.groups.insert(group.to_owned(), g);
    }

    /// Current state of a group, for tests and diagnostics.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// A group, for tests and diagnostics.
    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }
}
