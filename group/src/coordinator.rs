//! The async face of the coordinator: a [`GroupStateMachine`] behind a mutex, a oneshot
//! channel per waiting request, writes handed to an [`OffsetsLog`], and a periodic tick.
//!
//! Every public request method takes the decoded `kafka-protocol` request and its version
//! and returns the response to encode with that version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::api::find_coordinator::{handle_find_coordinator, CoordinatorAddress};
use crate::api::{join_group, sync_group, ClientInfo};
use crate::config::{ConfigError, GroupConfig};
use crate::group::{GroupState, WaiterId};
use crate::log::OffsetsLog;
use crate::state::{Completion, GroupStateMachine, Reply};

/// Most records in one append of a compaction snapshot.
pub const COMPACTION_BATCH_RECORDS: usize = 1_000;

/// Milliseconds since the Unix epoch (commit timestamps are wall-clock, as in Kafka).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Core {
    sm: GroupStateMachine,
    waiters: HashMap<WaiterId, oneshot::Sender<Completion>>,
}

struct Inner {
    core: Mutex<Core>,
    log: Arc<dyn OffsetsLog>,
    clock: Clock,
}

/// The group coordinator of one broker. Cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug; the state is still the best we have.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Runs `f` on the state machine, then delivers completions and starts writes.
    fn with_sm<T>(self: &Arc<Self>, f: impl FnOnce(&mut GroupStateMachine, i64) -> T) -> T {
        let now = self.now();
        let mut core = self.lock();
        let out = f(&mut core.sm, now);
        self.dispatch(&mut core);
        out
    }

    /// Like `with_sm` for a request that may wait: registers the waiter before the
    /// effects are delivered, since they may already complete it.
    fn call<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut GroupStateMachine, i64) -> Reply<T>,
    ) -> Result<T, oneshot::Receiver<Completion>> {
        let now = self.now();
        let mut core = self.lock();
        let reply = f(&mut core.sm, now);
        let out = match reply {
            Reply::Now(r) => Ok(r),
            Reply::Later(id) => {
                let (tx, rx) = oneshot::channel();
                core.waiters.insert(id, tx);
                Err(rx)
            }
        };
        self.dispatch(&mut core);
        out
    }

    fn dispatch(self: &Arc<Self>, core: &mut Core) {
        let effects = core.sm.take_effects();
        for (id, c) in effects.completions {
            if let Some(tx) = core.waiters.remove(&id) {
                // The requester may be gone; nothing to do then.
                let _ = tx.send(c);
            }
        }
        for w in effects.writes {
            // Called under the lock so that the log sees writes in emission order.
            let fut = self.log.append(w.partition, w.records);
            let inner = Arc::clone(self);
            let token = w.token;
            tokio::spawn(async move {
                let result = fut.await;
                inner.with_sm(|sm, now| sm.write_completed(token, result, now));
            });
        }
    }
}

impl Coordinator {
    /// A coordinator writing to `log`, with the system clock. Must be called inside a
    /// tokio runtime: it spawns the tick task, which ends when the last clone is dropped.
    pub fn new(config: GroupConfig, log: Arc<dyn OffsetsLog>) -> Result<Self, ConfigError> {
        Self::with_clock(config, log, Arc::new(system_clock))
    }

    /// Like [`Coordinator::new`] with a given clock (tests).
    pub fn with_clock(
        config: GroupConfig,
        log: Arc<dyn OffsetsLog>,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let tick = Duration::from_millis(config.tick_interval_ms);
        let inner = Arc::new(Inner {
            core: Mutex::new(Core {
                sm: GroupStateMachine::new(config),
                waiters: HashMap::new(),
            }),
            log,
            clock,
        });
        tokio::spawn(tick_loop(Arc::downgrade(&inner), tick));
        Ok(Self { inner })
    }

    /// Partitions of `__consumer_offsets`.
    pub fn offsets_partitions(&self) -> i32 {
        self.inner.lock().sm.config().offsets_partitions
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        self.inner.lock().sm.partition_of(group_id)
    }

    /// FindCoordinator; `leader_of(partition)` gives the leader of a `__consumer_offsets`
    /// partition (address of the listener the request came in on).
    pub fn find_coordinator(
        &self,
        version: i16,
        req: &FindCoordinatorRequest,
        leader_of: &dyn Fn(i32) -> Option<CoordinatorAddress>,
    ) -> FindCoordinatorResponse {
        handle_find_coordinator(version, req, self.offsets_partitions(), leader_of)
    }

    pub async fn join_group(
        &self,
        version: i16,
        client: &ClientInfo,
        req: &JoinGroupRequest,
    ) -> JoinGroupResponse {
        match self
            .inner
            .call(|sm, now| sm.handle_join_group(now, version, client, req))
        {
            Ok(r) => r,
            Err(rx) => match rx.await {
                Ok(Completion::Join(r)) => r,
                _ => join_group::error_response(
                    &req.member_id,
                    ResponseError::CoordinatorNotAvailable.code(),
                ),
            },
        }
    }

    pub async fn sync_group(&self, version: i16, req: &SyncGroupRequest) -> SyncGroupResponse {
        match self
            .inner
            .call(|sm, now| sm.handle_sync_group(now, version, req))
        {
            Ok(r) => r,
            Err(rx) => match rx.await {
                Ok(Completion::Sync(r)) => r,
                _ => sync_group::error_response(ResponseError::CoordinatorNotAvailable.code()),
            },
        }
    }

    pub async fn heartbeat(&self, version: i16, req: &HeartbeatRequest) -> HeartbeatResponse {
        self.inner
            .with_sm(|sm, now| sm.handle_heartbeat(now, version, req))
    }

    pub async fn leave_group(&self, version: i16, req: &LeaveGroupRequest) -> LeaveGroupResponse {
        self.inner
            .with_sm(|sm, now| sm.handle_leave_group(now, version, req))
    }

    pub async fn offset_commit(
        &self,
        version: i16,
        req: &OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        match self
            .inner
            .call(|sm, now| sm.handle_offset_commit(now, version, req))
        {
            Ok(r) => r,
            Err(rx) => match rx.await {
                Ok(Completion::Commit(r)) => r,
                _ => {
                    let mut r = OffsetCommitResponse::default();
                    for t in &req.topics {
                        let mut rt = kafka_protocol::messages::offset_commit_response::OffsetCommitResponseTopic::default();
                        rt.name = t.name.clone();
                        for p in &t.partitions {
                            let mut rp = kafka_protocol::messages::offset_commit_response::OffsetCommitResponsePartition::default();
                            rp.partition_index = p.partition_index;
                            rp.error_code = ResponseError::CoordinatorNotAvailable.code();
                            rt.partitions.push(rp);
                        }
                        r.topics.push(rt);
                    }
                    r
                }
            },
        }
    }

    pub async fn offset_fetch(
        &self,
        version: i16,
        req: &OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        self.inner
            .with_sm(|sm, now| sm.handle_offset_fetch(now, version, req))
    }

    pub async fn list_groups(&self, version: i16, req: &ListGroupsRequest) -> ListGroupsResponse {
        self.inner
            .with_sm(|sm, _| sm.handle_list_groups(version, req))
    }

    pub async fn describe_groups(
        &self,
        version: i16,
        req: &DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        self.inner
            .with_sm(|sm, _| sm.handle_describe_groups(version, req))
    }

    pub async fn delete_groups(
        &self,
        version: i16,
        req: &DeleteGroupsRequest,
    ) -> DeleteGroupsResponse {
        self.inner
            .with_sm(|sm, now| sm.handle_delete_groups(now, version, req))
    }

    /// This broker became leader of `__consumer_offsets` partition `partition`: load its
    /// groups (COORDINATOR_LOAD_IN_PROGRESS for them until done). Returns the read error if
    /// the load failed; the partition is then not served (NOT_COORDINATOR) until the next
    /// call.
    pub async fn become_leader(&self, partition: i32) -> Result<(), i16> {
        let load_id = self.inner.with_sm(|sm, _| sm.begin_load(partition));
        let read = self.inner.log.read_all(partition).await;
        match read {
            Ok(records) => {
                let n = records.len();
                let done = self
                    .inner
                    .with_sm(|sm, now| sm.finish_load(partition, load_id, records, now));
                info!(
                    partition,
                    records = n,
                    applied = done,
                    "loaded __consumer_offsets partition"
                );
                Ok(())
            }
            Err(code) => {
                warn!(
                    partition,
                    code, "loading __consumer_offsets partition failed"
                );
                self.inner.with_sm(|sm, _| sm.fail_load(partition, load_id));
                Err(code)
            }
        }
    }

    /// This broker stopped leading `partition`: its groups answer NOT_COORDINATOR.
    pub fn resign(&self, partition: i32) {
        self.inner.with_sm(|sm, _| sm.resign(partition));
    }

    /// A topic was deleted: drop its committed offsets (tombstones are written).
    pub fn topic_deleted(&self, topic: &str) {
        self.inner.with_sm(|sm, _| sm.topic_deleted(topic));
    }

    /// The live `(key, value)` records of `partition` (see the crate docs on compaction).
    pub fn compaction_snapshot(&self, partition: i32) -> Vec<(Bytes, Bytes)> {
        self.inner.lock().sm.compaction_snapshot(partition)
    }

    /// Appends the compaction snapshot of `partition` (every live key with its latest
    /// value, in batches of at most `COMPACTION_BATCH_RECORDS`) and resolves once it is
    /// committed. Taken and appended under the coordinator's lock, so every record the
    /// coordinator appended before this call is covered by the snapshot: a broker that
    /// read the log end offset `L` before calling may, after `Ok`, delete every record
    /// below `L`.
    pub async fn write_compaction_snapshot(&self, partition: i32) -> Result<(), i16> {
        let futures: Vec<_> = {
            let core = self.inner.lock();
            let live = core.sm.compaction_snapshot(partition);
            live.chunks(COMPACTION_BATCH_RECORDS)
                .map(|chunk| {
                    let records = chunk
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect();
                    self.inner.log.append(partition, records)
                })
                .collect()
        };
        for f in futures {
            f.await?;
        }
        Ok(())
    }

    /// Runs one tick now (the background task does this every `tick_interval_ms`).
    pub fn tick(&self) {
        self.inner.with_sm(|sm, now| sm.tick(now));
    }

    /// State of a group, if this broker coordinates it (diagnostics and tests).
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.inner.lock().sm.group_state(group_id)
    }
}

async fn tick_loop(inner: Weak<Inner>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.with_sm(|sm, now| sm.tick(now));
    }
}
