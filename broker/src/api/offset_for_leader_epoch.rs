//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in the leader's log, so that
//! consumers (KIP-320) and followers (issue 5) can detect and cut divergent logs.

use super::{deferred, topic_name, Ctx, Deferred};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use protocol::ids::{LeaderEpoch, PartitionIndex};
use protocol::kafka::ResponseError;

fn result(partition: i32, error: ResponseError) -> EpochEndOffset {
    let mut e = EpochEndOffset::default();
    e.partition = partition;
    e.error_code = error.code();
    e.leader_epoch = -1;
    e.end_offset = -1;
    e
}

pub fn error_response(
    req: &OffsetForLeaderEpochRequest,
    error: ResponseError,
) -> OffsetForLeaderEpochResponse {
    let mut r = OffsetForLeaderEpochResponse::default();
    for t in &req.topics {
        let mut rt = OffsetForLeaderTopicResult::default();
        rt.topic = t.topic.clone();
        rt.partitions = t
            .partitions
            .iter()
            .map(|p| result(p.partition, error))
            .collect();
        r.topics.push(rt);
    }
    r
}

pub async fn handle(ctx: Ctx, req: OffsetForLeaderEpochRequest) -> Deferred {
    deferred(async move {
        let image = ctx.broker.image();
        let mut resp = OffsetForLeaderEpochResponse::default();
        for t in &req.topics {
            let mut rt = OffsetForLeaderTopicResult::default();
            rt.topic = topic_name(&t.topic.0);
            let topic = image.topic_by_name(&t.topic.0);
            for p in &t.partitions {
                let known = topic
                    .is_some_and(|tp| tp.partitions.contains_key(&PartitionIndex(p.partition)));
                let r = match (known, ctx.broker.partitions.get(&t.topic.0, p.partition)) {
                    (false, _) => result(p.partition, ResponseError::UnknownTopicOrPartition),
                    (true, None) => result(p.partition, ResponseError::NotLeaderOrFollower),
                    (true, Some(part)) => {
                        match part.end_offset_for_epoch(
                            p.current_leader_epoch,
                            LeaderEpoch(p.leader_epoch),
                        ) {
                            Ok(Some((epoch, offset))) => {
                                let mut r = result(p.partition, ResponseError::UnknownServerError);
                                r.error_code = 0;
                                r.leader_epoch = epoch.0;
                                r.end_offset = offset.0;
                                r
                            }
                            Ok(None) => {
                                let mut r = result(p.partition, ResponseError::UnknownServerError);
                                r.error_code = 0;
                                r
                            }
                            Err(e) => result(p.partition, e.kafka_error()),
                        }
                    }
                };
                rt.partitions.push(r);
            }
            resp.topics.push(rt);
        }
        ctx.reply(&resp)
    })
}
