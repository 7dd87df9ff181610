//! ListOffsets (key 2): the earliest offset, the latest (the high watermark, which is also
//! the last stable offset: Gregor has no transactions), or the first offset at or after a
//! timestamp.

use super::{deferred, topic_name, Ctx, Deferred};
use crate::partition::{Partition, PartitionError};
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use protocol::ids::PartitionIndex;
use protocol::kafka::{list_offsets, ResponseError};

fn partition_response(index: i32, error: ResponseError) -> ListOffsetsPartitionResponse {
    let mut p = ListOffsetsPartitionResponse::default();
    p.partition_index = index;
    p.error_code = error.code();
    p.timestamp = -1;
    p.offset = -1;
    p.leader_epoch = -1;
    p
}

pub fn error_response(req: &ListOffsetsRequest, error: ResponseError) -> ListOffsetsResponse {
    let mut r = ListOffsetsResponse::default();
    for t in &req.topics {
        let mut rt = ListOffsetsTopicResponse::default();
        rt.name = t.name.clone();
        rt.partitions = t
            .partitions
            .iter()
            .map(|p| partition_response(p.partition_index, error))
            .collect();
        r.topics.push(rt);
    }
    r
}

pub async fn handle(ctx: Ctx, req: ListOffsetsRequest) -> Deferred {
    deferred(async move {
        let image = ctx.broker.image();
        let mut resp = ListOffsetsResponse::default();
        for t in &req.topics {
            let mut rt = ListOffsetsTopicResponse::default();
            rt.name = topic_name(&t.name.0);
            let topic = image.topic_by_name(&t.name.0);
            for p in &t.partitions {
                let known = topic.is_some_and(|tp| {
                    tp.partitions
                        .contains_key(&PartitionIndex(p.partition_index))
                });
                let pr = match (
                    known,
                    ctx.broker.partitions.get(&t.name.0, p.partition_index),
                ) {
                    (false, _) => partition_response(
                        p.partition_index,
                        ResponseError::UnknownTopicOrPartition,
                    ),
                    (true, None) => {
                        partition_response(p.partition_index, ResponseError::NotLeaderOrFollower)
                    }
                    (true, Some(part)) => match lookup(&part, p, ctx.version) {
                        Ok(r) => r,
                        Err(e) => partition_response(p.partition_index, e.kafka_error()),
                    },
                };
                rt.partitions.push(pr);
            }
            resp.topics.push(rt);
        }
        ctx.reply(&resp)
    })
}

fn lookup(
    part: &Partition,
    p: &ListOffsetsPartition,
    version: i16,
) -> Result<ListOffsetsPartitionResponse, PartitionError> {
    let pos = part.leader_positions(p.current_leader_epoch)?;
    let mut r = partition_response(p.partition_index, ResponseError::UnknownServerError);
    r.error_code = 0;
    match p.timestamp {
        list_offsets::LATEST => {
            r.offset = pos.high_watermark.0;
            if version >= 4 {
                r.leader_epoch = pos.leader_epoch.0;
            }
        }
        list_offsets::EARLIEST | -4 => {
            r.offset = pos.log_start_offset.0;
        }
        ts if ts >= 0 => {
            if let Some((offset, timestamp)) =
                part.offset_for_timestamp(p.current_leader_epoch, ts)?
            {
                r.offset = offset.0;
                r.timestamp = timestamp;
            }
        }
        _ => r.error_code = ResponseError::InvalidRequest.code(),
    }
    Ok(r)
}
