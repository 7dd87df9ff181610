//! The group coordinator's side of the broker: `__consumer_offsets` as the coordinator's
//! [`OffsetsLog`], the topic's creation, and the coordinator's view of leadership.
//!
//! - [`BrokerOffsetsLog`]: `append` appends one batch to the local leader replica at once
//!   (so calls land in call order) and resolves when the high watermark passes it
//!   (acks=all) or the bound [`APPEND_TIMEOUT`] passes; `read_all` reads from the log
//!   start to the high watermark after waiting (bounded) for the high watermark to reach
//!   the log end the new leader found.
//! - [`ensure_offsets_topic`]: forwards the creation of `__consumer_offsets` to the
//!   controller, as Kafka auto-creates internal topics on the first FindCoordinator.
//! - [`start`] creates the [`Coordinator`] and the role task: every [`ROLE_POLL`] it
//!   compares the `__consumer_offsets` partitions this broker leads (and at which epoch)
//!   with those the coordinator serves and calls `become_leader` / `resign`, and tells the
//!   coordinator about deleted topics. It also compacts led partitions whose logs grew
//!   past `--offsets-compact-after-records` (default [`COMPACT_AFTER_RECORDS`]; see
//!   `gregor_group`'s crate docs: read the log end `L`, `write_compaction_snapshot`, then
//!   delete every record below `L`). Followers move their log start up to the leader's
//!   as they fetch (bounded by their high watermark), so the old records go everywhere.

use crate::broker::{now_ms, Broker};
use crate::partition::log_config::min_insync_replicas;
use crate::partition::{Partition, Reader};
use crate::purgatory::Watch;
use group::records::{decode_batches, encode_batch};
use group::{BoxFuture, Coordinator, GroupConfig, OffsetsLog, OffsetsRecord};
use protocol::control::{MetadataImage, NewTopic, TopicConfigs};
use protocol::ids::{LeaderEpoch, Offset};
use protocol::kafka::ResponseError;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Partitions of `__consumer_offsets` (Kafka's `offsets.topic.num.partitions` is 50; a
/// small cluster does not need that many).
pub const DEFAULT_OFFSETS_PARTITIONS: i32 = 12;
/// Segment size of `__consumer_offsets` (16 MiB; Kafka uses 100 MiB).
pub const OFFSETS_SEGMENT_BYTES: &str = "16777216";
/// Delay before the first rebalance of a new group completes (Kafka: 3000 ms). Shorter,
/// so that a consumer group forms quickly; members starting within it share a generation.
pub const INITIAL_REBALANCE_DELAY_MS: i64 = 1_000;
/// The longest an append waits for the high watermark (the coordinator's request bound).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a new leader waits for its high watermark to reach its log end before
/// loading (the load is retried at the next poll).
pub const LOAD_HW_TIMEOUT: Duration = Duration::from_secs(10);
/// How often leadership of `__consumer_offsets` partitions is compared with the coordinator.
pub const ROLE_POLL: Duration = Duration::from_millis(200);
/// The default of `--offsets-compact-after-records`: a led partition whose log holds more
/// records than this since its log start (and since its last compaction) is compacted:
/// snapshot of the live keys, then DeleteRecords below the log end read before the
/// snapshot.
pub const COMPACT_AFTER_RECORDS: i64 = 100_000;
/// Bytes per read while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// `__consumer_offsets` over this broker's partition replicas.
#[derive(Debug)]
pub struct BrokerOffsetsLog {
    broker: Weak<Broker>,
}

fn not_leader() -> i16 {
    ResponseError::NotLeaderOrFollower.code()
}

/// The local leader replica of `__consumer_offsets-partition`, with its leader epoch.
fn leader_replica(broker: &Broker, partition: i32) -> Result<(Arc<Partition>, LeaderEpoch), i16> {
    let part = broker
        .partitions
        .get(OFFSETS_TOPIC, partition)
        .ok_or_else(not_leader)?;
    let pos = part
        .leader_positions(-1)
        .map_err(|e| e.kafka_error().code())?;
    Ok((part, pos.leader_epoch))
}

/// Whether the high watermark of `part` at `epoch` reached `needed`: `Ok(true)` yes,
/// `Ok(false)` not yet, `Err` leadership lost.
fn reached(part: &Partition, epoch: LeaderEpoch, needed: Offset) -> Result<bool, i16> {
    match part.leader_positions(epoch.0) {
        Ok(pos) => Ok(pos.high_watermark >= needed),
        Err(_) => Err(not_leader()),
    }
}

impl OffsetsLog for BrokerOffsetsLog {
    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'static, Result<(), i16>> {
        let Some(broker) = self.broker.upgrade() else {
            return Box::pin(std::future::ready(Err(not_leader())));
        };
        let (part, epoch) = match leader_replica(&broker, partition) {
            Ok(x) => x,
            Err(code) => return Box::pin(std::future::ready(Err(code))),
        };
        let min_insync = broker
            .image()
            .topic_by_name(OFFSETS_TOPIC)
            .map_or(1, |t| min_insync_replicas(&t.configs));
        if part
            .in_sync_replicas()
            .is_some_and(|isr| isr.len() < min_insync)
        {
            return Box::pin(std::future::ready(Err(
                ResponseError::NotEnoughReplicas.code()
            )));
        }
        let now = now_ms();
        let batch = match encode_batch(&records, now) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("{e}");
                return Box::pin(std::future::ready(Err(
                    ResponseError::UnknownServerError.code()
                )));
            }
        };
        let appended = part.append_as_leader(&batch, now);
        broker.purgatory.notify();
        let needed = match appended {
            Ok(a) => a.last_offset.plus(1),
            Err(e) => {
                tracing::debug!("{OFFSETS_TOPIC}-{partition}: append refused: {e}");
                return Box::pin(std::future::ready(Err(e.kafka_error().code())));
            }
        };
        Box::pin(async move {
            let deadline = Instant::now() + APPEND_TIMEOUT;
            broker
                .purgatory
                .wait_until(Watch::HighWatermark, deadline, || {
                    reached(&part, epoch, needed) != Ok(false)
                })
                .await;
            match reached(&part, epoch, needed) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ResponseError::RequestTimedOut.code()),
                Err(code) => Err(code),
            }
        })
    }

    fn read_all(&self, partition: i32) -> BoxFuture<'static, Result<Vec<OffsetsRecord>, i16>> {
        let broker = self.broker.clone();
        Box::pin(async move {
            let broker = broker.upgrade().ok_or_else(not_leader)?;
            let (part, epoch) = leader_replica(&broker, partition)?;
            // A new leader's high watermark may trail its log end until the followers
            // catch up; records up to that log end are the partition's truth.
            let end = part
                .leader_positions(epoch.0)
                .map_err(|_| not_leader())?
                .log_end_offset;
            let deadline = Instant::now() + LOAD_HW_TIMEOUT;
            broker
                .purgatory
                .wait_until(Watch::HighWatermark, deadline, || {
                    reached(&part, epoch, end) != Ok(false)
                })
                .await;
            if !reached(&part, epoch, end)? {
                return Err(ResponseError::CoordinatorLoadInProgress.code());
            }
            tokio::task::spawn_blocking(move || read_committed(&part, epoch))
                .await
                .map_err(|_| ResponseError::UnknownServerError.code())?
        })
    }
}

/// Every record of `part` from its log start to its high watermark.
fn read_committed(part: &Partition, epoch: LeaderEpoch) -> Result<Vec<OffsetsRecord>, i16> {
    let pos = part.leader_positions(epoch.0).map_err(|_| not_leader())?;
    let mut offset = pos.log_start_offset.0;
    let mut out = Vec::new();
    while offset < pos.high_watermark.0 {
        let read = part
            .read(Reader::Consumer, epoch.0, offset, LOAD_READ_BYTES, now_ms())
            .map_err(|e| e.kafka_error().code())?;
        if read.records.is_empty() {
            break;
        }
        let decoded = decode_batches(read.records).map_err(|e| {
            tracing::error!("{OFFSETS_TOPIC}-{}: {e}", part.tp.partition.0);
            ResponseError::CorruptMessage.code()
        })?;
        out.extend(decoded.records);
        match decoded.next_offset {
            Some(next) if next > offset => offset = next,
            _ => break,
        }
    }
    Ok(out)
}

/// Creates the coordinator, stores it in `broker.groups` and starts the role task.
/// Must run inside the tokio runtime.
pub fn start(broker: &Arc<Broker>) {
    let config = GroupConfig {
        offsets_partitions: broker.config.offsets_topic_partitions,
        initial_rebalance_delay_ms: INITIAL_REBALANCE_DELAY_MS,
        ..GroupConfig::default()
    };
    let log = Arc::new(BrokerOffsetsLog {
        broker: Arc::downgrade(broker),
    });
    match Coordinator::new(config, log) {
        Ok(c) => {
            if broker.groups.set(c.clone()).is_ok() {
                tokio::spawn(roles(Arc::downgrade(broker), c));
            }
        }
        Err(e) => tracing::error!("group coordinator not started: {e}"),
    }
}

/// Forwards the creation of `__consumer_offsets` to the controller (replication factor
/// min(3, live brokers), compacted). Returns once the topic is in this broker's image or
/// the creation failed; errors are logged (FindCoordinator answers
/// COORDINATOR_NOT_AVAILABLE until the topic exists).
pub async fn ensure_offsets_topic(broker: &Broker, partitions: i32) {
    let image = broker.image();
    if image.topic_by_name(OFFSETS_TOPIC).is_some() {
        return;
    }
    let live = image.brokers.values().filter(|b| !b.fenced).count();
    if live == 0 {
        return;
    }
    let mut configs = TopicConfigs::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        OFFSETS_SEGMENT_BYTES.to_string(),
    );
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: partitions,
        replication_factor: live.min(3) as i16,
        assignments: None,
        configs,
    };
    match crate::api::admin::create_topics(broker, vec![topic], false).await {
        Ok(results) => {
            for r in results {
                if r.error != 0 && r.error != ResponseError::TopicAlreadyExists.code() {
                    tracing::warn!(
                        "creating {OFFSETS_TOPIC} failed: {} {:?}",
                        r.error,
                        r.message
                    );
                } else if r.error == 0 {
                    tracing::info!(
                        "created {OFFSETS_TOPIC} ({partitions} partitions, rf {})",
                        r.replication_factor
                    );
                }
            }
        }
        Err(e) => tracing::warn!("creating {OFFSETS_TOPIC} failed: {e}"),
    }
}

/// Which `__consumer_offsets` partitions this broker leads, at which epoch.
fn led_partitions(broker: &Broker, partitions: i32) -> HashMap<i32, LeaderEpoch> {
    (0..partitions)
        .filter_map(|p| leader_replica(broker, p).ok().map(|(_, e)| (p, e)))
        .collect()
}

fn topic_names(image: &MetadataImage) -> BTreeSet<String> {
    image.topics.values().map(|t| t.name.clone()).collect()
}

/// Keeps the coordinator's partitions in line with this broker's leadership, and tells it
/// about deleted topics. Ends when the broker is dropped.
async fn roles(broker: Weak<Broker>, coordinator: Coordinator) {
    let partitions = coordinator.offsets_partitions();
    let mut serving: HashMap<i32, Served> = HashMap::new();
    let mut names: Option<BTreeSet<String>> = None;
    let mut image_offset = None;
    let mut compacted_at: HashMap<i32, Offset> = HashMap::new();
    let mut interval = tokio::time::interval(ROLE_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(b) = broker.upgrade() else { return };
        let image = b.image();
        if image_offset != Some(image.offset) {
            image_offset = Some(image.offset);
            let now = topic_names(&image);
            if let Some(before) = &names {
                for gone in before.difference(&now) {
                    tracing::info!("topic {gone} deleted: dropping its committed offsets");
                    coordinator.topic_deleted(gone);
                }
            }
            names = Some(now);
        }
        let led = led_partitions(&b, partitions);
        let lost: Vec<i32> = serving
            .iter()
            .filter(|(p, s)| led.get(p) != Some(&s.epoch()))
            .map(|(p, _)| *p)
            .collect();
        for p in lost {
            if let Some(Served::Loading(_, load)) = serving.remove(&p) {
                load.abort();
            }
            tracing::info!("no longer coordinator for {OFFSETS_TOPIC}-{p}");
            coordinator.resign(p);
        }
        for (p, e) in led {
            match serving.remove(&p) {
                Some(Served::Loaded(_)) => {
                    serving.insert(p, Served::Loaded(e));
                    let every = b.config.offsets_compact_after_records;
                    compact_if_large(&b, &coordinator, (p, e), every, &mut compacted_at).await;
                }
                Some(Served::Loading(_, load)) if load.is_finished() => match load.await {
                    Ok(Ok(())) => {
                        serving.insert(p, Served::Loaded(e));
                    }
                    Ok(Err(code)) => {
                        tracing::info!("loading {OFFSETS_TOPIC}-{p} failed ({code}); will retry")
                    }
                    Err(e) => tracing::warn!("loading {OFFSETS_TOPIC}-{p} failed: {e}"),
                },
                Some(loading) => {
                    serving.insert(p, loading);
                }
                None => {
                    // Loads run concurrently: one may wait for its high watermark.
                    let c = coordinator.clone();
                    let load = tokio::spawn(async move { c.become_leader(p).await });
                    serving.insert(p, Served::Loading(e, load));
                }
            }
        }
    }
}

/// A `__consumer_offsets` partition this broker leads, as the role task tracks it.
enum Served {
    /// `become_leader` is running.
    Loading(LeaderEpoch, tokio::task::JoinHandle<Result<(), i16>>),
    /// Loaded: the coordinator serves its groups.
    Loaded(LeaderEpoch),
}

impl Served {
    fn epoch(&self) -> LeaderEpoch {
        match self {
            Served::Loading(e, _) | Served::Loaded(e) => *e,
        }
    }
}

/// Compacts `__consumer_offsets-partition` (led at `epoch`) when its log grew past
/// `every` records since its start and since the last compaction.
async fn compact_if_large(
    broker: &Broker,
    coordinator: &Coordinator,
    (partition, epoch): (i32, LeaderEpoch),
    every: i64,
    compacted_at: &mut HashMap<i32, Offset>,
) {
    let Some(part) = broker.partitions.get(OFFSETS_TOPIC, partition) else {
        return;
    };
    let Ok(pos) = part.leader_positions(epoch.0) else {
        return;
    };
    let since = compacted_at
        .get(&partition)
        .copied()
        .unwrap_or(pos.log_start_offset)
        .max(pos.log_start_offset);
    if pos.log_end_offset.0 - since.0 < every {
        return;
    }
    let end = pos.log_end_offset;
    if let Err(code) = coordinator.write_compaction_snapshot(partition).await {
        tracing::info!("compaction snapshot of {OFFSETS_TOPIC}-{partition} failed ({code})");
        return;
    }
    match part.delete_records_before(epoch.0, end) {
        Ok(start) => {
            tracing::info!("compacted {OFFSETS_TOPIC}-{partition}: log starts at {start}");
            // The snapshot itself sits above `end`; count from after it.
            let after = part
                .leader_positions(epoch.0)
                .map_or(end, |p| p.log_end_offset);
            compacted_at.insert(partition, after);
        }
        Err(e) => tracing::warn!("compacting {OFFSETS_TOPIC}-{partition} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_apis_are_advertised_with_the_coordinators_versions() {
        for r in group::GROUP_APIS {
            assert_eq!(
                protocol::kafka::supported_versions(r.key),
                Some((r.min, r.max)),
                "{:?}",
                r.key
            );
        }
    }
}
