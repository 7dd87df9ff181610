//! The replica fetcher: one task per source broker carrying every partition this broker
//! follows from it (Kafka's ReplicaFetcherThread).
//!
//! ```text
//!  partitions (watch) ──> for each partition at a new leader epoch:
//!                           OffsetForLeaderEpoch ──> truncation point ──> truncate_to
//!                         then, in a loop:
//!                           Fetch(replica_id = self) ──> append_as_follower, follower HW
//! ```
//!
//! Errors: NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH back the
//! partition off until the metadata moves; OFFSET_OUT_OF_RANGE restarts a log behind the
//! leader's start there, or cuts a log ahead of the leader at its high watermark. A broken
//! connection is dropped and re-made with backoff.

use super::client::{BrokerConnection, ClientError};
use super::truncation::{truncation_point, LeaderAnswer};
use crate::broker::{now_ms, Broker};
use crate::partition::{FollowerFetch, FollowerView, Partition, PartitionError};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use protocol::ids::{BrokerId, LeaderEpoch, Offset, TopicPartition};
use protocol::kafka::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Fetch version sent (topic names, no topic ids).
pub const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch version sent (replica_id present).
pub const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 3;
/// How long the leader may hold a fetch with no new data.
pub const FETCH_MAX_WAIT_MS: i32 = 500;
/// Bytes per partition and per fetch (Kafka: `replica.fetch.max.bytes` 1 MiB; larger here
/// so that a follower behind a fast producer catches up in fewer round trips).
pub const PARTITION_MAX_BYTES: i32 = 8 << 20;
pub const FETCH_MAX_BYTES: i32 = 16 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A call's limit beyond the long-poll wait.
const CALL_SLACK: Duration = Duration::from_secs(3);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a partition waits after a leadership error before it is fetched again.
const PARTITION_BACKOFF: Duration = Duration::from_millis(200);

/// The partitions a fetcher carries; the manager replaces the list on role changes and
/// drops the sender to stop the fetcher.
pub type Assigned = watch::Receiver<Vec<Arc<Partition>>>;

struct State {
    broker: Arc<Broker>,
    source: BrokerId,
    conn: Option<BrokerConnection>,
    /// The leader epoch each partition was last truncated for.
    truncated: HashMap<TopicPartition, LeaderEpoch>,
    /// Partitions backed off after an error, until the given instant.
    delayed: HashMap<TopicPartition, Instant>,
    backoff: Duration,
}

/// Fetches from `source` for the assigned partitions until the sender is dropped.
pub async fn run(broker: Arc<Broker>, source: BrokerId, mut assigned: Assigned) {
    let mut st = State {
        broker,
        source,
        conn: None,
        truncated: HashMap::new(),
        delayed: HashMap::new(),
        backoff: MIN_BACKOFF,
    };
    tracing::info!("replica fetcher for broker {source} started");
    loop {
        if assigned.has_changed().is_err() {
            break;
        }
        let parts = assigned.borrow_and_update().clone();
        let now = Instant::now();
        st.delayed.retain(|_, until| *until > now);
        let views: Vec<(Arc<Partition>, FollowerView)> = parts
            .into_iter()
            .filter_map(|p| {
                let v = p.follower_view()?;
                (v.leader == Some(source) && !st.delayed.contains_key(&p.tp)).then_some((p, v))
            })
            .collect();
        if views.is_empty() {
            tokio::select! {
                r = assigned.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            continue;
        }
        let result = st.round(views).await;
        match result {
            Ok(()) => st.backoff = MIN_BACKOFF,
            Err(e) => {
                tracing::debug!("replica fetcher for broker {source}: {e}");
                st.conn = None;
                tokio::select! {
                    r = assigned.changed() => if r.is_err() { break },
                    _ = tokio::time::sleep(st.backoff) => {}
                }
                st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!("replica fetcher for broker {source} stopped");
}

/// Why a fetch round failed as a whole.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("broker {0} has no address on the inter-broker listener in the metadata")]
    NoAddress(BrokerId),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("top-level error {0:?}")]
    Response(ResponseError),
}

impl State {
    async fn connection(&mut self) -> Result<&mut BrokerConnection, RoundError> {
        if self.conn.is_none() {
            let image = self.broker.image();
            let listener = &self.broker.config.inter_broker_listener;
            let addr = image
                .brokers
                .get(&self.source)
                .and_then(|b| b.endpoint(listener))
                .map(|e| format!("{}:{}", e.host, e.port))
                .ok_or(RoundError::NoAddress(self.source))?;
            let client_id = format!("gregor-replica-fetcher-{}", self.broker.config.node_id);
            self.conn = Some(BrokerConnection::connect(&addr, &client_id, CONNECT_TIMEOUT).await?);
        }
        Ok(self.conn.as_mut().expect("connection just made"))
    }

    /// Truncates the partitions at a new epoch, then fetches once for the others.
    async fn round(
        &mut self,
        views: Vec<(Arc<Partition>, FollowerView)>,
    ) -> Result<(), RoundError> {
        let (ready, fresh): (Vec<_>, Vec<_>) = views
            .into_iter()
            .partition(|(p, v)| self.truncated.get(&p.tp) == Some(&v.leader_epoch));
        if !fresh.is_empty() {
            self.truncate(fresh).await?;
        }
        if ready.is_empty() {
            return Ok(());
        }
        self.fetch(ready).await
    }

    async fn truncate(
        &mut self,
        parts: Vec<(Arc<Partition>, FollowerView)>,
    ) -> Result<(), RoundError> {
        let mut req = OffsetForLeaderEpochRequest::default();
        req.replica_id = kafka_protocol::messages::BrokerId(self.broker.config.node_id.0);
        let mut by_topic: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        let mut asked: Vec<(Arc<Partition>, FollowerView)> = Vec::new();
        for (p, v) in parts {
            let Some(epoch) = v.latest_epoch else {
                // No epoch in the log: the high watermark is the only safe point.
                let point = v.high_watermark.min(v.log_end_offset);
                self.apply_truncation(&p, &v, point);
                continue;
            };
            let mut op = OffsetForLeaderPartition::default();
            op.partition = p.tp.partition.0;
            op.current_leader_epoch = v.leader_epoch.0;
            op.leader_epoch = epoch.0;
            by_topic.entry(p.tp.topic.clone()).or_default().push(op);
            asked.push((p, v));
        }
        if asked.is_empty() {
            return Ok(());
        }
        for (topic, partitions) in by_topic {
            let mut t = OffsetForLeaderTopic::default();
            t.topic = TopicName(StrBytes::from_string(topic));
            t.partitions = partitions;
            req.topics.push(t);
        }
        let conn = self.connection().await?;
        let resp: OffsetForLeaderEpochResponse = conn
            .call(
                ApiKey::OffsetForLeaderEpoch,
                OFFSET_FOR_LEADER_EPOCH_VERSION,
                &req,
                CALL_SLACK,
            )
            .await?;
        for t in &resp.topics {
            for r in &t.partitions {
                let Some((p, v)) = asked.iter().find(|(p, _)| {
                    p.tp.topic == t.topic.0.as_str() && p.tp.partition.0 == r.partition
                }) else {
                    continue;
                };
                if r.error_code != 0 {
                    tracing::debug!(
                        "{}: OffsetForLeaderEpoch from broker {} failed: {:?}",
                        p.tp,
                        self.source,
                        ResponseError::try_from_code(r.error_code)
                    );
                    self.delayed
                        .insert(p.tp.clone(), Instant::now() + PARTITION_BACKOFF);
                    continue;
                }
                let answer = if r.leader_epoch < 0 || r.end_offset < 0 {
                    LeaderAnswer::Unknown
                } else {
                    LeaderAnswer::EpochEnd(LeaderEpoch(r.leader_epoch), Offset(r.end_offset))
                };
                let point = truncation_point(
                    v.log_end_offset,
                    v.high_watermark,
                    v.latest_epoch,
                    answer,
                    |e| p.own_end_offset_for_epoch(e),
                );
                self.apply_truncation(p, v, point);
            }
        }
        Ok(())
    }

    fn apply_truncation(&mut self, p: &Arc<Partition>, v: &FollowerView, point: Offset) {
        let result = if point < v.log_start_offset {
            p.restart_as_follower_at(v.leader_epoch, point)
        } else {
            p.truncate_as_follower(v.leader_epoch, point)
        };
        match result {
            Ok(()) => {
                if point < v.log_end_offset {
                    tracing::info!(
                        "{}: truncated from {} to {} following broker {} at epoch {}",
                        p.tp,
                        v.log_end_offset,
                        point,
                        self.source,
                        v.leader_epoch
                    );
                }
                self.truncated.insert(p.tp.clone(), v.leader_epoch);
            }
            Err(e) => {
                tracing::warn!("{}: truncation to {point} failed: {e}", p.tp);
                self.delayed
                    .insert(p.tp.clone(), Instant::now() + PARTITION_BACKOFF);
            }
        }
    }

    async fn fetch(
        &mut self,
        parts: Vec<(Arc<Partition>, FollowerView)>,
    ) -> Result<(), RoundError> {
        let mut req = FetchRequest::default();
        req.replica_id = kafka_protocol::messages::BrokerId(self.broker.config.node_id.0);
        req.max_wait_ms = FETCH_MAX_WAIT_MS;
        req.min_bytes = 1;
        req.max_bytes = FETCH_MAX_BYTES;
        req.session_id = 0;
        req.session_epoch = -1;
        let mut by_topic: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for (p, v) in &parts {
            let mut fp = FetchPartition::default();
            fp.partition = p.tp.partition.0;
            fp.current_leader_epoch = v.leader_epoch.0;
            fp.fetch_offset = v.log_end_offset.0;
            fp.last_fetched_epoch = -1;
            fp.log_start_offset = v.log_start_offset.0;
            fp.partition_max_bytes = PARTITION_MAX_BYTES;
            by_topic.entry(p.tp.topic.clone()).or_default().push(fp);
        }
        for (topic, partitions) in by_topic {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(topic));
            t.partitions = partitions;
            req.topics.push(t);
        }
        let limit = Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + CALL_SLACK;
        let conn = self.connection().await?;
        let resp: FetchResponse = conn.call(ApiKey::Fetch, FETCH_VERSION, &req, limit).await?;
        if resp.error_code != 0 {
            return Err(RoundError::Response(
                ResponseError::try_from_code(resp.error_code)
                    .unwrap_or(ResponseError::UnknownServerError),
            ));
        }
        let now = now_ms();
        for t in &resp.responses {
            for pd in &t.partitions {
                let Some((p, v)) = parts.iter().find(|(p, _)| {
                    p.tp.topic == t.topic.0.as_str() && p.tp.partition.0 == pd.partition_index
                }) else {
                    continue;
                };
                self.handle_partition(p, v, pd, now);
            }
        }
        Ok(())
    }

    fn handle_partition(
        &mut self,
        p: &Arc<Partition>,
        v: &FollowerView,
        pd: &kafka_protocol::messages::fetch_response::PartitionData,
        now: i64,
    ) {
        let delay = |st: &mut Self| {
            st.delayed
                .insert(p.tp.clone(), Instant::now() + PARTITION_BACKOFF);
        };
        let error = match pd.error_code {
            0 => None,
            code => Some(
                ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
            ),
        };
        match error {
            None => {
                let records = pd.records.as_deref().unwrap_or(&[]);
                let fetched = FollowerFetch {
                    records,
                    leader_hw: Offset(pd.high_watermark),
                    leader_log_start: Offset(pd.log_start_offset),
                };
                match p.append_as_follower(v.leader_epoch, fetched, now) {
                    Ok(_) => {}
                    Err(PartitionError::Log(e)) => {
                        // The log no longer lines up with the leader's: find out again where.
                        tracing::warn!("{}: follower append failed: {e}", p.tp);
                        self.truncated.remove(&p.tp);
                        delay(self);
                    }
                    Err(e) => {
                        tracing::debug!("{}: fetched data dropped: {e}", p.tp);
                    }
                }
            }
            Some(ResponseError::OffsetOutOfRange) => {
                let leader_start = Offset(pd.log_start_offset);
                let result = if pd.log_start_offset >= 0 && v.log_end_offset < leader_start {
                    tracing::info!(
                        "{}: log end {} is below broker {}'s log start {leader_start}; restarting there",
                        p.tp,
                        v.log_end_offset,
                        self.source
                    );
                    p.restart_as_follower_at(v.leader_epoch, leader_start)
                } else if pd.high_watermark >= 0 {
                    tracing::info!(
                        "{}: log end {} is past broker {}'s log; cutting at its high watermark {}",
                        p.tp,
                        v.log_end_offset,
                        self.source,
                        pd.high_watermark
                    );
                    p.truncate_as_follower(v.leader_epoch, Offset(pd.high_watermark))
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    tracing::warn!("{}: out-of-range recovery failed: {e}", p.tp);
                }
                delay(self);
            }
            Some(e) => {
                tracing::debug!(
                    "{}: fetch from broker {} answered {e:?}; backing off",
                    p.tp,
                    self.source
                );
                delay(self);
            }
        }
    }
}
