//! Large fetch responses, pipelined and read slowly, over a real socket: the broker writes
//! record data straight from the segment maps in vectored writes that the socket takes in
//! parts, and gathers ready responses into one write. Every response must arrive whole,
//! in request order, with exactly the records that were produced.

mod common;

use bytes::{Buf, Bytes, BytesMut};
use common::{now_ms, record_batch, wait_for, Client, Cluster};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use std::io::Read;
use std::time::Duration;

const TOPIC: &str = "pipelined";
const RECORDS_PER_BATCH: usize = 500;
const BATCHES: usize = 12;
const VALUE_BYTES: usize = 1024;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn value(offset: usize) -> Bytes {
    let mut v = format!("{offset:>10}:").into_bytes();
    v.resize(VALUE_BYTES, b'a' + (offset % 26) as u8);
    Bytes::from(v)
}

fn batch(first: usize) -> Bytes {
    let records = (0..RECORDS_PER_BATCH).map(|i| (None, Some(value(first + i))));
    record_batch(records, now_ms(), Compression::None)
}

fn fetch_req(offset: i64) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = 64 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = name(TOPIC);
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = 0;
    r.min_bytes = 0;
    r.max_bytes = 64 << 20;
    r.topics = vec![t];
    r
}

/// Reads one frame in small pieces with pauses, so the broker's writes stay partial.
fn slow_frame(c: &mut Client) -> Bytes {
    let mut size = [0u8; 4];
    c.stream.read_exact(&mut size).unwrap();
    let size = i32::from_be_bytes(size) as usize;
    let mut body = vec![0u8; size];
    let mut at = 0;
    let mut reads = 0u32;
    while at < size {
        let end = (at + 64 * 1024).min(size);
        let n = c.stream.read(&mut body[at..end]).unwrap();
        assert!(n > 0, "connection closed mid-frame at {at} of {size}");
        at += n;
        reads += 1;
        if reads.is_multiple_of(16) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Bytes::from(body)
}

#[test]
fn pipelined_large_fetches_arrive_whole_and_in_order() {
    let cluster = Cluster::start(1);
    let mut c = Client::connect(&cluster.broker_addrs[0]).unwrap();
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(TOPIC);
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);

    for b in 0..BATCHES {
        let mut p = produce_request::PartitionProduceData::default();
        p.index = 0;
        p.records = Some(batch(b * RECORDS_PER_BATCH));
        let mut t = produce_request::TopicProduceData::default();
        t.name = name(TOPIC);
        t.partition_data = vec![p];
        let mut r = ProduceRequest::default();
        r.acks = 1;
        r.timeout_ms = 5000;
        r.topic_data = vec![t];
        let resp: ProduceResponse = wait_for("the topic's leader", Duration::from_secs(10), || {
            let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &r);
            (resp.responses[0].partition_responses[0].error_code == 0).then_some(resp)
        });
        assert_eq!(
            resp.responses[0].partition_responses[0].base_offset,
            (b * RECORDS_PER_BATCH) as i64
        );
    }
    let total = BATCHES * RECORDS_PER_BATCH;

    // Fetches from several offsets, all sent before any response is read.
    let starts: Vec<usize> = (0..24).map(|i| (i * 977) % total).collect();
    let mut wire = BytesMut::new();
    for (i, start) in starts.iter().enumerate() {
        for v in [4i16, 12] {
            let cid = 1000 + (i as i32) * 2 + i32::from(v == 12);
            wire.extend_from_slice(&Client::frame(
                ApiKey::Fetch,
                v,
                cid,
                &fetch_req(*start as i64),
            ));
        }
    }
    c.send_raw(&wire).unwrap();

    for (i, start) in starts.iter().enumerate() {
        for v in [4i16, 12] {
            let cid = 1000 + (i as i32) * 2 + i32::from(v == 12);
            let mut body = slow_frame(&mut c);
            let r: FetchResponse = Client::decode_response(ApiKey::Fetch, v, cid, &mut body)
                .unwrap_or_else(|e| panic!("fetch {i} v{v}: {e}"));
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            assert_eq!(p.high_watermark, total as i64);
            let mut records = p.records.clone().unwrap();
            let mut next = *start;
            while records.has_remaining() {
                let set = RecordBatchDecoder::decode(&mut records).unwrap();
                for rec in set.records {
                    if (rec.offset as usize) < *start {
                        continue; // the batch holding the fetch offset starts before it
                    }
                    assert_eq!(rec.offset as usize, next, "fetch {i} v{v}");
                    assert_eq!(rec.value.as_ref(), Some(&value(next)), "offset {next}");
                    next += 1;
                }
            }
            assert_eq!(next, total, "fetch {i} v{v} from {start} read to the end");
        }
    }
}
