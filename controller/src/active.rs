//! The controller task: the one place decisions are made and written.
//!
//! Mutating requests arrive through a bounded channel and are handled one at a time: decide
//! against the committed image ([`crate::decide`]), write the batch with
//! `raft.client_write`, and answer once it is committed and applied. A ticker fences brokers
//! whose sessions expired and moves leaderships back to preferred replicas. The task only
//! acts while this node is the Raft leader and has applied everything committed before its
//! term (`ensure_linearizable`); otherwise requests get NOT_CONTROLLER.

use crate::decide::brokers::{self, Registration};
use crate::decide::sessions::Sessions;
use crate::decide::topics::{self, TopicDefaults};
use crate::decide::{alter_partition, code, producer_ids};
use crate::feed::Feed;
use crate::raft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use protocol::control::{
    BrokerHeartbeatResponse, BrokerRegistrationResponse, ControlError, ControlRequest,
    ControlResponse, ControllerAddr, MetadataBatch, MetadataImage, MetadataRecord,
};
use protocol::ids::{BrokerEpoch, MetadataOffset, NodeId, TopicId};
use protocol::kafka::ResponseError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Depth of the request queue in front of the controller task.
pub const QUEUE_DEPTH: usize = 256;
/// Longest wait for a write to commit before the request fails with REQUEST_TIMED_OUT.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most queued requests served before each periodic decision ([`QUEUE_DEPTH`] bounds the
/// queue; this bounds the drain when requests keep coming).
const MAX_DRAIN: usize = 2 * QUEUE_DEPTH;

/// A mutating request and where to send its answer.
#[derive(Debug)]
pub struct Command {
    pub req: ControlRequest,
    pub reply: oneshot::Sender<ControlResponse>,
}

/// What the controller task needs to know about the node.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_id: u64,
    pub voters: BTreeMap<u64, String>,
    pub session_timeout_ms: u64,
    pub defaults: TopicDefaults,
}

/// The NOT_CONTROLLER answer, naming the leader when known.
pub fn not_controller(raft: &Raft, voters: &BTreeMap<u64, String>) -> ControlResponse {
    let leader = raft.metrics().borrow().current_leader;
    ControlResponse::Error(ControlError {
        code: code(ResponseError::NotController),
        message: "this controller is not the active controller".into(),
        leader: leader.and_then(|id| {
            voters.get(&id).map(|addr| ControllerAddr {
                node_id: NodeId(id),
                addr: addr.clone(),
            })
        }),
    })
}

fn error(e: ResponseError, message: String) -> ControlResponse {
    ControlResponse::Error(ControlError {
        code: code(e),
        message,
        leader: None,
    })
}

/// The controller task's state.
pub struct Controller {
    raft: Raft,
    feed: Arc<Feed>,
    settings: Settings,
    sessions: Sessions,
    active: bool,
    base: Instant,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("settings", &self.settings)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Controller {
    pub fn new(raft: Raft, feed: Arc<Feed>, settings: Settings) -> Controller {
        let sessions = Sessions::new(settings.session_timeout_ms);
        Controller {
            raft,
            feed,
            settings,
            sessions,
            active: false,
            base: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Runs until the channel closes.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut metrics = self.raft.metrics();
        let period = Duration::from_millis((self.settings.session_timeout_ms / 10).clamp(10, 100));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    self.serve(cmd).await;
                }
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.check_leadership().await;
                }
                _ = tick.tick() => {
                    // Requests that queued up while an earlier write waited for its commit
                    // (a slow fsync) come first: among them are heartbeats, and a session
                    // must not expire because the controller itself was slow to read them.
                    for _ in 0..MAX_DRAIN {
                        match rx.try_recv() {
                            Ok(cmd) => self.serve(cmd).await,
                            Err(_) => break,
                        }
                    }
                    self.check_leadership().await;
                    if self.active && self.applied_everything().await {
                        self.periodic().await;
                    }
                }
            }
        }
    }

    /// Answers one request.
    async fn serve(&mut self, cmd: Command) {
        self.check_leadership().await;
        let resp = if !self.active {
            self.not_controller()
        } else if !self.applied_everything().await {
            let msg = "earlier metadata writes are not committed yet";
            error(ResponseError::RequestTimedOut, msg.into())
        } else {
            self.handle(cmd.req).await
        };
        let _ = cmd.reply.send(resp);
    }

    fn not_controller(&self) -> ControlResponse {
        not_controller(&self.raft, &self.settings.voters)
    }

    fn is_leader(&self) -> (bool, u64) {
        let m = self.raft.metrics();
        let m = m.borrow();
        (
            m.state == ServerState::Leader && m.current_leader == Some(self.settings.node_id),
            m.current_term,
        )
    }

    /// Becomes active once leader and caught up with everything committed before; steps
    /// down when no longer leader.
    async fn check_leadership(&mut self) {
        let (leader, term) = self.is_leader();
        if self.active && !leader {
            self.active = false;
            tracing::info!(
                node_id = self.settings.node_id,
                term,
                "no longer the active controller"
            );
        }
        if !self.active && leader {
            match tokio::time::timeout(WRITE_TIMEOUT, self.raft.ensure_linearizable()).await {
                Ok(Ok(_)) => {
                    self.active = true;
                    let now = self.now_ms();
                    self.feed.with_image(|img| self.sessions.reset(img, now));
                    tracing::info!(
                        node_id = self.settings.node_id,
                        term,
                        applied = self.feed.applied().0,
                        "became the active controller; every broker has a fresh session"
                    );
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "not yet able to act as controller"),
                Err(_) => tracing::warn!(term, "timed out confirming leadership"),
            }
        }
    }

    /// Waits until every entry in the log has been applied, so a decision never misses an
    /// earlier write whose commit timed out but may still succeed.
    async fn applied_everything(&self) -> bool {
        let last = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        if self.feed.applied().0 >= last {
            return true;
        }
        self.raft
            .wait(Some(WRITE_TIMEOUT))
            .applied_index_at_least(Some(last), "decide on the latest image")
            .await
            .is_ok()
    }

    /// Writes `batch` and waits until it is committed and applied; returns its offset.
    async fn write(&mut self, batch: MetadataBatch) -> Result<MetadataOffset, ControlResponse> {
        let before = self.feed.image();
        let result =
            tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(batch.clone())).await;
        match result {
            Ok(Ok(resp)) => {
                let offset = MetadataOffset(resp.log_id.index);
                log_changes(&before, &batch, offset, resp.log_id.leader_id.term);
                Ok(offset)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                self.active = false;
                Err(self.not_controller())
            }
            Ok(Err(e)) => {
                self.active = false;
                tracing::warn!(error = %e, "metadata write failed");
                Err(self.not_controller())
            }
            Err(_) => Err(error(
                ResponseError::RequestTimedOut,
                format!("metadata write not committed within {WRITE_TIMEOUT:?}"),
            )),
        }
    }

    /// One periodic change (a fencing, a preferred leader election) per tick, so that
    /// requests queued during its write are served before the next decision.
    async fn periodic(&mut self) {
        let now = self.now_ms();
        let sessions = &mut self.sessions;
        let Some((label, batch)) = self
            .feed
            .with_image(|img| brokers::periodic(img, sessions, now))
        else {
            return;
        };
        tracing::info!("{label}");
        let _ = self.write(batch).await;
    }

    async fn handle(&mut self, req: ControlRequest) -> ControlResponse {
        match req {
            ControlRequest::BrokerRegistration(r) => {
                let decided = self.feed.with_image(|img| brokers::register(img, &r));
                let epoch = match decided {
                    Err((error, message)) => {
                        return ControlResponse::BrokerRegistration(BrokerRegistrationResponse {
                            error,
                            message: Some(message),
                            broker_epoch: BrokerEpoch(-1),
                        })
                    }
                    Ok(Registration::Existing(epoch)) => epoch,
                    Ok(Registration::New(batch)) => match self.write(batch).await {
                        Ok(offset) => BrokerEpoch(offset.0 as i64),
                        Err(resp) => return resp,
                    },
                };
                let now = self.now_ms();
                self.sessions.registered(r.broker_id, epoch, now);
                ControlResponse::BrokerRegistration(BrokerRegistrationResponse {
                    error: 0,
                    message: None,
                    broker_epoch: epoch,
                })
            }
            ControlRequest::BrokerHeartbeat(r) => {
                let now = self.now_ms();
                let session = self
                    .sessions
                    .heartbeat(r.broker_id, r.broker_epoch, r.current_metadata_offset, now)
                    .clone();
                let outcome = match self
                    .feed
                    .with_image(|img| brokers::heartbeat(img, &session, &r))
                {
                    Ok(o) => o,
                    Err(error) => {
                        return ControlResponse::BrokerHeartbeat(BrokerHeartbeatResponse {
                            error,
                            is_caught_up: false,
                            is_fenced: true,
                            should_shutdown: false,
                        })
                    }
                };
                if !outcome.records.is_empty() {
                    match self.write(outcome.records).await {
                        Ok(offset) if outcome.starts_shutdown => {
                            self.sessions.shutdown_committed(r.broker_id, offset)
                        }
                        Ok(_) => {}
                        Err(resp) => return resp,
                    }
                }
                ControlResponse::BrokerHeartbeat(outcome.reply)
            }
            ControlRequest::AlterPartition(r) => {
                let (batch, partitions) = self
                    .feed
                    .with_image(|img| alter_partition::alter_partition(img, &r));
                self.write_then(
                    batch,
                    ControlResponse::AlterPartition(protocol::control::AlterPartitionResponse {
                        partitions,
                    }),
                )
                .await
            }
            ControlRequest::CreateTopics(r) => {
                let defaults = self.settings.defaults;
                let (batch, results) = self.feed.with_image(|img| {
                    topics::create_topics(img, &r, defaults, &mut TopicId::random)
                });
                self.write_then(batch, ControlResponse::CreateTopics(results))
                    .await
            }
            ControlRequest::DeleteTopics(r) => {
                let (batch, results) = self.feed.with_image(|img| topics::delete_topics(img, &r));
                self.write_then(batch, ControlResponse::DeleteTopics(results))
                    .await
            }
            ControlRequest::CreatePartitions(r) => {
                let (batch, results) = self
                    .feed
                    .with_image(|img| topics::create_partitions(img, &r));
                self.write_then(batch, ControlResponse::CreatePartitions(results))
                    .await
            }
            ControlRequest::AlterConfigs(r) => {
                let (batch, results) = self.feed.with_image(|img| topics::alter_configs(img, &r));
                self.write_then(batch, ControlResponse::AlterConfigs(results))
                    .await
            }
            ControlRequest::AllocateProducerIds(r) => {
                // Decided and written before the next request is read: no two blocks overlap.
                let (batch, resp) = self.feed.with_image(|img| producer_ids::allocate(img, &r));
                if resp.error != 0 {
                    tracing::info!(
                        broker = %r.broker_id, epoch = %r.broker_epoch, error = resp.error,
                        "AllocateProducerIds refused"
                    );
                }
                self.write_then(batch, ControlResponse::AllocateProducerIds(resp))
                    .await
            }
            ControlRequest::FetchMetadata(_)
            | ControlRequest::DescribeQuorum
            | ControlRequest::Raft { .. } => error(
                ResponseError::InvalidRequest,
                "not a controller-task request".into(),
            ),
        }
    }

    async fn write_then(&mut self, batch: MetadataBatch, resp: ControlResponse) -> ControlResponse {
        if batch.is_empty() {
            return resp;
        }
        match self.write(batch).await {
            Ok(_) => resp,
            Err(e) => e,
        }
    }
}

/// One log line per registration, fencing, unfencing, shutdown, leadership or ISR change.
fn log_changes(before: &MetadataImage, batch: &MetadataBatch, offset: MetadataOffset, term: u64) {
    for record in batch {
        match record {
            MetadataRecord::RegisterBroker {
                broker_id, rack, ..
            } => {
                tracing::info!(broker = %broker_id, epoch = offset.0, rack = ?rack, term, "broker registered")
            }
            MetadataRecord::FenceBroker { broker_id, epoch } => {
                tracing::info!(broker = %broker_id, epoch = %epoch, offset = offset.0, "broker fenced")
            }
            MetadataRecord::UnfenceBroker { broker_id, epoch } => {
                tracing::info!(broker = %broker_id, epoch = %epoch, offset = offset.0, "broker unfenced")
            }
            MetadataRecord::BrokerShuttingDown { broker_id, epoch } => {
                tracing::info!(broker = %broker_id, epoch = %epoch, offset = offset.0, "broker in controlled shutdown")
            }
            MetadataRecord::Topic { name, topic_id } => {
                tracing::info!(topic = %name, id = %topic_id, offset = offset.0, "topic created")
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                tracing::info!(id = %topic_id, offset = offset.0, "topic removed")
            }
            MetadataRecord::Partition(new) => {
                let Some(old) = before.partition(new.topic_id, new.partition) else {
                    continue;
                };
                let name = before
                    .topics
                    .get(&new.topic_id)
                    .map_or("?", |t| t.name.as_str());
                if old.leader != new.leader {
                    tracing::info!(
                        partition = %format!("{name}-{}", new.partition),
                        from = ?old.leader.map(|b| b.0), to = ?new.leader.map(|b| b.0),
                        leader_epoch = %new.leader_epoch, partition_epoch = %new.partition_epoch,
                        isr = ?new.isr.iter().map(|b| b.0).collect::<Vec<_>>(),
                        "leadership change"
                    );
                } else if old.isr != new.isr {
                    tracing::info!(
                        partition = %format!("{name}-{}", new.partition),
                        from = ?old.isr.iter().map(|b| b.0).collect::<Vec<_>>(),
                        to = ?new.isr.iter().map(|b| b.0).collect::<Vec<_>>(),
                        partition_epoch = %new.partition_epoch,
                        "ISR change"
                    );
                }
            }
            MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            } => {
                tracing::info!(
                    broker = %broker_id, epoch = %broker_epoch,
                    start = next_producer_id - i64::from(protocol::control::PRODUCER_ID_BLOCK_SIZE),
                    next = next_producer_id, offset = offset.0,
                    "producer id block allocated"
                )
            }
            MetadataRecord::TopicConfig { .. } | MetadataRecord::NoOp => {}
        }
    }
}
