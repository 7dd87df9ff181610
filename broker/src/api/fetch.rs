//! Fetch (key 1): read record batches below the high watermark (consumers) or the log end
//! (followers), with the `min_bytes`/`max_wait_ms` long-poll and per-partition and total
//! `max_bytes` limits.
//!
//! Fetch sessions (KIP-227) are declined: every response carries session id 0, so clients
//! keep sending full fetch requests, and an incremental fetch gets
//! FETCH_SESSION_ID_NOT_FOUND. Requests with `replica_id >= 0` are follower fetches: the
//! leader records the follower's log end offset (issue 5's replica fetcher sends them).

use super::{deferred, topic_name, Ctx, Deferred};
use crate::broker::now_ms;
use crate::partition::Reader;
use crate::purgatory::Watch;
use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use protocol::ids::{BrokerId, PartitionIndex};
use protocol::kafka::ResponseError;
use std::time::Duration;
use storage::FileRange;
use tokio::time::Instant;

/// The longest a fetch long-polls, whatever its `max_wait_ms` says.
const MAX_WAIT: Duration = Duration::from_secs(30);

fn partition_data(index: i32, error: ResponseError) -> PartitionData {
    let mut p = PartitionData::default();
    p.partition_index = index;
    p.error_code = error.code();
    p.high_watermark = -1;
    p.last_stable_offset = -1;
    p.log_start_offset = -1;
    p.aborted_transactions = Some(Vec::new());
    p.records = Some(Bytes::new());
    p
}

pub fn error_response(req: &FetchRequest, error: ResponseError) -> FetchResponse {
    let mut r = FetchResponse::default();
    r.error_code = error.code();
    for t in &req.topics {
        let mut rt = FetchableTopicResponse::default();
        rt.topic = t.topic.clone();
        rt.partitions = t
            .partitions
            .iter()
            .map(|p| partition_data(p.partition, error))
            .collect();
        r.responses.push(rt);
    }
    r
}

pub async fn handle(ctx: Ctx, req: FetchRequest) -> Deferred {
    deferred(async move {
        if req.session_id != 0 {
            let mut r = FetchResponse::default();
            r.error_code = ResponseError::FetchSessionIdNotFound.code();
            return ctx.reply(&r);
        }
        let replica_id = if ctx.version >= 15 {
            req.replica_state.replica_id.0
        } else {
            req.replica_id.0
        };
        let reader = if replica_id >= 0 {
            Reader::Follower(BrokerId(replica_id))
        } else {
            Reader::Consumer
        };
        let deadline =
            Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
        let (mut resp, mut records) = read_all(&ctx, &req, reader);
        let bytes: usize = records.iter().map(|(r, _)| r.len()).sum();
        let min_bytes = req.min_bytes.max(0) as usize;
        if bytes < min_bytes.max(1) && req.max_wait_ms > 0 && !has_errors(&resp) {
            let watch = match reader {
                Reader::Consumer => Watch::HighWatermark,
                Reader::Follower(_) => Watch::LogEnd,
            };
            ctx.broker
                .purgatory
                .wait_until(watch, deadline, || has_new_data(&ctx, &req, reader))
                .await;
            (resp, records) = read_all(&ctx, &req, reader);
        }
        ctx.reply_spliced(&resp, &records)
    })
}

fn has_errors(resp: &FetchResponse) -> bool {
    resp.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.error_code != 0)
}

/// Whether any requested partition has readable data at or past its fetch offset, or
/// stopped being readable here (an error to report now).
fn has_new_data(ctx: &Ctx, req: &FetchRequest, reader: Reader) -> bool {
    req.topics.iter().any(|t| {
        t.partitions.iter().any(
            |p| match ctx.broker.partitions.get(&t.topic.0, p.partition) {
                None => true,
                Some(part) => match part.leader_positions(p.current_leader_epoch) {
                    Err(_) => true,
                    Ok(pos) => {
                        let upper = if reader == Reader::Consumer {
                            pos.high_watermark
                        } else {
                            pos.log_end_offset
                        };
                        upper.0 > p.fetch_offset
                    }
                },
            },
        )
    })
}

/// The record data of a response: views of the segment maps, with where they lie in
/// their files.
type Records = Vec<(Bytes, FileRange)>;

/// Reads every requested partition; returns the response and its record data. A
/// follower's fetch that moved a high watermark wakes what waits for one (acks=all
/// produces, consumer long-polls).
fn read_all(ctx: &Ctx, req: &FetchRequest, reader: Reader) -> (FetchResponse, Records) {
    let image = ctx.broker.image();
    let now = now_ms();
    let mut remaining = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut records = Records::new();
    let mut hw_moved = false;
    let mut resp = FetchResponse::default();
    for t in &req.topics {
        let mut rt = FetchableTopicResponse::default();
        rt.topic = topic_name(&t.topic.0);
        let topic = image.topic_by_name(&t.topic.0);
        for p in &t.partitions {
            let known =
                topic.is_some_and(|tp| tp.partitions.contains_key(&PartitionIndex(p.partition)));
            let mut pd = partition_data(p.partition, ResponseError::UnknownTopicOrPartition);
            if known {
                match ctx.broker.partitions.get(&t.topic.0, p.partition) {
                    None => pd.error_code = ResponseError::NotLeaderOrFollower.code(),
                    Some(part) => {
                        let max = (p.partition_max_bytes.max(0) as usize).min(remaining);
                        let read = if max == 0 {
                            part.leader_positions(p.current_leader_epoch).map(|pos| {
                                (Bytes::new(), None, pos.high_watermark, pos.log_start_offset)
                            })
                        } else {
                            part.read(reader, p.current_leader_epoch, p.fetch_offset, max, now)
                                .map(|r| {
                                    hw_moved |= r.high_watermark_moved;
                                    (r.records, r.file, r.high_watermark, r.log_start_offset)
                                })
                        };
                        match read {
                            Ok((data, file, hw, log_start)) => {
                                pd.error_code = 0;
                                pd.high_watermark = hw.0;
                                pd.last_stable_offset = hw.0;
                                pd.log_start_offset = log_start.0;
                                remaining = remaining.saturating_sub(data.len());
                                if let Some(file) = file.filter(|_| !data.is_empty()) {
                                    records.push((data.clone(), file));
                                }
                                pd.records = Some(data);
                            }
                            Err(e) => {
                                pd.error_code = e.kafka_error().code();
                                if let Ok(pos) = part.leader_positions(-1) {
                                    pd.high_watermark = pos.high_watermark.0;
                                    pd.last_stable_offset = pos.high_watermark.0;
                                    pd.log_start_offset = pos.log_start_offset.0;
                                }
                            }
                        }
                    }
                }
            }
            rt.partitions.push(pd);
        }
        resp.responses.push(rt);
    }
    if hw_moved {
        ctx.broker.purgatory.notify_of(Watch::HighWatermark);
    }
    (resp, records)
}
