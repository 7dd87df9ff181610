//! Produce (key 0): validate and append record batches as partition leader.
//!
//! Appends happen inline, in request order (a pipelining producer relies on that); with
//! acks=all the response then waits in the purgatory until the high watermark passes the
//! last appended offset of every partition, or the request's timeout expires. acks=0 gets
//! no response at all.
//!
//! acks=all is refused with NOT_ENOUGH_REPLICAS when the ISR is smaller than the topic's
//! `min.insync.replicas`, answered NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below
//! it while waiting, and NOT_LEADER_OR_FOLLOWER when leadership moved (the wait is tied to
//! the leader epoch of the append).

use super::{deferred, ready, topic_name, Ctx, Deferred, Reply};
use crate::broker::now_ms;
use crate::partition::log_config::min_insync_replicas;
use crate::partition::Partition;
use crate::purgatory::Watch;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use protocol::ids::{LeaderEpoch, Offset};
use protocol::kafka::ResponseError;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The longest an acks=all produce waits, whatever its timeout says.
const MAX_ACK_WAIT: Duration = Duration::from_secs(60);

fn partition_response(index: i32, error: ResponseError) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = error.code();
    p.base_offset = -1;
    p.log_append_time_ms = -1;
    p.log_start_offset = -1;
    p
}

pub fn error_response(req: &ProduceRequest, error: ResponseError) -> ProduceResponse {
    let mut r = ProduceResponse::default();
    for t in &req.topic_data {
        let mut rt = TopicProduceResponse::default();
        rt.name = t.name.clone();
        rt.partition_responses = t
            .partition_data
            .iter()
            .map(|p| partition_response(p.index, error))
            .collect();
        r.responses.push(rt);
    }
    r
}

/// A successful append that acks=all must see replicated.
struct Pending {
    topic: usize,
    slot: usize,
    partition: Arc<Partition>,
    needed: Offset,
    /// The leader epoch of the append: a later leadership never acknowledges it.
    epoch: LeaderEpoch,
    min_insync: usize,
}

pub async fn handle(ctx: Ctx, req: ProduceRequest) -> Deferred {
    let acks = req.acks;
    if !(-1..=1).contains(&acks) {
        return ready(ctx.reply(&error_response(&req, ResponseError::InvalidRequiredAcks)));
    }
    let image = ctx.broker.image();
    let now = now_ms();
    let mut resp = ProduceResponse::default();
    let mut pending = Vec::new();
    let (mut appended, mut hw_moved) = (false, false);
    for (ti, t) in req.topic_data.iter().enumerate() {
        let mut rt = TopicProduceResponse::default();
        rt.name = topic_name(&t.name.0);
        let topic = image.topic_by_name(&t.name.0);
        for (pi, p) in t.partition_data.iter().enumerate() {
            let known = topic.is_some_and(|tp| {
                tp.partitions
                    .contains_key(&protocol::ids::PartitionIndex(p.index))
            });
            let local = ctx.broker.partitions.get(&t.name.0, p.index);
            let mut pr = partition_response(p.index, ResponseError::UnknownTopicOrPartition);
            match (known, local, &p.records) {
                (false, _, _) => {}
                (true, None, _) => pr.error_code = ResponseError::NotLeaderOrFollower.code(),
                (true, Some(_), None) => pr.error_code = ResponseError::CorruptMessage.code(),
                (true, Some(part), Some(_))
                    if acks == -1
                        && part.in_sync_replicas().is_some_and(|isr| {
                            isr.len() < topic.map_or(1, |t| min_insync_replicas(&t.configs))
                        }) =>
                {
                    pr.error_code = ResponseError::NotEnoughReplicas.code();
                }
                (true, Some(part), Some(records)) => {
                    let epoch = part.leader_epoch();
                    match part.append_as_leader(records, now) {
                        Ok(a) => {
                            appended = true;
                            hw_moved |= a.high_watermark_moved;
                            pr.error_code = 0;
                            pr.base_offset = a.first_offset.0;
                            pr.log_start_offset = a.log_start_offset.0;
                            if acks == -1 && a.high_watermark <= a.last_offset {
                                pending.push(Pending {
                                    topic: ti,
                                    slot: pi,
                                    partition: part,
                                    needed: a.last_offset.plus(1),
                                    epoch,
                                    min_insync: topic
                                        .map_or(1, |t| min_insync_replicas(&t.configs)),
                                });
                            }
                        }
                        Err(e) => {
                            tracing::debug!("produce to {}-{} refused: {e}", t.name.0, p.index);
                            pr.error_code = e.kafka_error().code();
                        }
                    }
                }
            }
            rt.partition_responses.push(pr);
        }
        resp.responses.push(rt);
    }
    if appended {
        ctx.broker.purgatory.notify_of(Watch::LogEnd);
    }
    if hw_moved {
        ctx.broker.purgatory.notify_of(Watch::HighWatermark);
    }
    if acks == 0 {
        return ready(Reply::None);
    }
    if pending.is_empty() {
        return ready(ctx.reply(&resp));
    }
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64).min(MAX_ACK_WAIT);
    deferred(async move {
        let deadline = Instant::now() + timeout;
        let replicated = |p: &Pending| match p.partition.leader_positions(p.epoch.0) {
            Ok(pos) => pos.high_watermark >= p.needed,
            Err(_) => true,
        };
        ctx.broker
            .purgatory
            .wait_until(Watch::HighWatermark, deadline, || {
                pending.iter().all(replicated)
            })
            .await;
        for p in &pending {
            let pr = &mut resp.responses[p.topic].partition_responses[p.slot];
            match p.partition.leader_positions(p.epoch.0) {
                Ok(pos) if pos.high_watermark >= p.needed => {
                    let isr = p.partition.in_sync_replicas().map_or(0, |i| i.len());
                    if isr < p.min_insync {
                        pr.error_code = ResponseError::NotEnoughReplicasAfterAppend.code();
                    }
                }
                Ok(_) => pr.error_code = ResponseError::RequestTimedOut.code(),
                // Leadership moved on while waiting: the write may be truncated away.
                Err(_) => pr.error_code = ResponseError::NotLeaderOrFollower.code(),
            }
        }
        ctx.reply(&resp)
    })
}
