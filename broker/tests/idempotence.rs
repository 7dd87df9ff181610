//! Idempotent produce against a real cluster (3 controllers, 3 brokers) over raw sockets:
//! a retried batch is answered with its first offsets and stored once, sequence gaps and
//! fenced epochs get Kafka's errors, and after the leader shuts down the new leader (a
//! follower until then) still recognises the retry.

mod common;

use bytes::{Bytes, BytesMut};
use common::{now_ms, wait_for, Client, Cluster};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use protocol::kafka::ResponseError;
use std::time::Duration;

const TOPIC: &str = "idempotent";
const PID: i64 = 4242;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A batch of `n` records of producer [`PID`] at `epoch`, sequences `seq..seq + n`.
fn batch(epoch: i16, seq: i32, n: usize) -> Bytes {
    let ts = now_ms();
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: PID,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: ts,
            key: None,
            value: Some(Bytes::from(format!("e{epoch}-s{}", seq + i as i32))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// Produces `records` to partition 0 with acks=all; returns (error code, base offset).
fn produce(c: &mut Client, records: Bytes) -> (i16, i64) {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = name(TOPIC);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data = vec![t];
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// The leader of partition 0 and its ISR size, once it has a leader.
fn leader(c: &mut Client) -> Option<(i32, usize)> {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(TOPIC));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let m: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    let p = m.topics.first()?.partitions.first()?;
    (p.leader_id.0 > 0).then_some((p.leader_id.0, p.isr_nodes.len()))
}

/// The partition's high watermark, read from `c` (the leader).
fn high_watermark(c: &mut Client) -> i64 {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = name(TOPIC);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req);
    r.topics[0].partitions[0].offset
}

#[test]
fn retries_are_stored_once_and_recognised_by_the_next_leader() {
    let mut cluster = Cluster::start(3);
    let addrs = cluster.broker_addrs.clone();
    let mut c = Client::connect(&addrs[0]).unwrap();
    let mut topic = create_topics_request::CreatableTopic::default();
    topic.name = name(TOPIC);
    topic.num_partitions = 1;
    topic.replication_factor = 3;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    req.timeout_ms = 10_000;
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let (lead, _) = wait_for("a leader with a full ISR", Duration::from_secs(30), || {
        leader(&mut c).filter(|&(_, isr)| isr == 3)
    });
    let mut l = Client::connect(&addrs[lead as usize - 1]).unwrap();

    assert_eq!(produce(&mut l, batch(0, 0, 3)), (0, 0));
    assert_eq!(produce(&mut l, batch(0, 3, 2)), (0, 3));
    // The retry of a stored batch: acknowledged with its first offset, not stored again.
    assert_eq!(produce(&mut l, batch(0, 3, 2)), (0, 3), "duplicate");
    assert_eq!(produce(&mut l, batch(0, 0, 3)), (0, 0), "older duplicate");
    assert_eq!(high_watermark(&mut l), 5);
    // A gap in the sequences, and an epoch older than the one seen.
    let gap = produce(&mut l, batch(0, 9, 1)).0;
    assert_eq!(gap, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(
        produce(&mut l, batch(1, 0, 1)),
        (0, 5),
        "a new epoch starts at 0"
    );
    let stale = produce(&mut l, batch(0, 5, 1)).0;
    assert_eq!(stale, ResponseError::InvalidProducerEpoch.code());
    assert_eq!(produce(&mut l, batch(1, 1, 2)), (0, 6));
    assert_eq!(high_watermark(&mut l), 8);

    // The leader goes away; a follower that only replicated these batches leads now.
    cluster.stop_broker(lead as usize);
    let other = addrs
        .iter()
        .enumerate()
        .find(|(i, _)| *i + 1 != lead as usize)
        .map(|(_, a)| a.clone())
        .unwrap();
    let mut c = Client::connect(&other).unwrap();
    let (new_lead, _) = wait_for("a new leader", Duration::from_secs(30), || {
        leader(&mut c).filter(|&(l, _)| l != lead)
    });
    let mut n = Client::connect(&addrs[new_lead as usize - 1]).unwrap();
    let retried = wait_for(
        "the new leader to take produce requests",
        Duration::from_secs(30),
        || {
            let r = produce(&mut n, batch(1, 1, 2));
            (r.0 != ResponseError::NotLeaderOrFollower.code()).then_some(r)
        },
    );
    assert_eq!(retried, (0, 6), "the new leader knows the batch");
    let gap = produce(&mut n, batch(1, 4, 1)).0;
    assert_eq!(gap, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(produce(&mut n, batch(1, 3, 1)), (0, 8));
    assert_eq!(high_watermark(&mut n), 9, "nothing stored twice");

    // The old leader comes back as a follower, rebuilding its state from its own log.
    cluster.restart_broker(lead as usize);
    wait_for("the ISR to be whole again", Duration::from_secs(30), || {
        leader(&mut c).filter(|&(_, isr)| isr == 3)
    });
}
