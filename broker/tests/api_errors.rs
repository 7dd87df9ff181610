//! Focused tests of every served API against a real cluster (3 controllers, 3 brokers),
//! over a raw socket with `kafka-protocol`'s encoders: each API at every served version,
//! and its error paths (unknown topic, wrong leader, bad version, oversized frame, ...).

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{record_batch, wait_for, Client, Cluster};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record};
use protocol::kafka::ResponseError;
use std::time::Duration;

const TOPIC: &str = "errors";

/// Record timestamps: recent (old ones would be deleted by retention), fixed per run.
fn base_ts() -> i64 {
    static TS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *TS.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 60_000
    })
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(n: usize, compression: Compression) -> Bytes {
    let records = (0..n).map(|i| {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        (Some(Bytes::from(key)), Some(Bytes::from(value)))
    });
    record_batch(records, base_ts(), compression)
}

fn metadata(c: &mut Client, version: i16, topics: Option<Vec<&str>>) -> MetadataResponse {
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|t| {
        t.iter()
            .map(|n| {
                let mut m = metadata_request::MetadataRequestTopic::default();
                m.name = Some(name(n));
                m
            })
            .collect()
    });
    c.call(ApiKey::Metadata, version, &req)
}

fn produce_req(topic: &str, partition: i32, acks: i16, records: Option<Bytes>) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = records;
    let mut t = produce_request::TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    r
}

fn produce_code(c: &mut Client, version: i16, req: &ProduceRequest) -> (i16, i64) {
    let r: ProduceResponse = c.call(ApiKey::Produce, version, req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_req(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    r.topics = vec![t];
    r
}

fn list_offsets_req(topic: &str, partition: i32, timestamp: i64, epoch: i32) -> ListOffsetsRequest {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    p.current_leader_epoch = epoch;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    r
}

/// (leader broker id, follower-less non-leader broker id) of partition 0 of `topic`.
fn leader_of(c: &mut Client, topic: &str, partition: i32) -> i32 {
    let m = metadata(c, 12, Some(vec![topic]));
    m.topics[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .unwrap()
        .leader_id
        .0
}

#[test]
fn kafka_api_error_paths() {
    let cluster = Cluster::start(3);
    let addrs = cluster.broker_addrs.clone();
    let mut c = Client::connect(&addrs[0]).unwrap();

    // ApiVersions: every served version, then an unknown one answered as v0 with error 35.
    for v in 0..=3 {
        let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, v, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 0);
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16 && k.max_version == 9));
    }
    c.send_raw(&Client::frame(ApiKey::ApiVersions, 3, 77, &ApiVersionsRequest::default())[..4])
        .unwrap();
    let mut raw = Client::frame(ApiKey::ApiVersions, 3, 77, &ApiVersionsRequest::default());
    raw[6..8].copy_from_slice(&9i16.to_be_bytes());
    c.send_raw(&raw[4..]).unwrap();
    let mut body = c.recv_frame().expect("answer to ApiVersions v9");
    let r: ApiVersionsResponse =
        Client::decode_response(ApiKey::ApiVersions, 0, 77, &mut body).unwrap();
    assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    assert!(!r.api_keys.is_empty());

    // CreateTopics (every version; each creates its own topic), then the main topic.
    for v in 2..=7 {
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = name(&format!("created-v{v}"));
        t.num_partitions = 2;
        t.replication_factor = 1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, v, &req);
        assert_eq!(
            r.topics[0].error_code, 0,
            "CreateTopics v{v}: {:?}",
            r.topics[0].error_message
        );
        // Answered only once applied here: the metadata already has it.
        let m = metadata(&mut c, 1, Some(vec![&format!("created-v{v}")]));
        assert_eq!(m.topics[0].error_code, 0);
        assert_eq!(m.topics[0].partitions.len(), 2);
    }
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(TOPIC);
    t.num_partitions = 3;
    t.replication_factor = 1;
    let mut cfg = create_topics_request::CreatableTopicConfig::default();
    cfg.name = StrBytes::from_static_str("max.message.bytes");
    cfg.value = Some(StrBytes::from_static_str("2000"));
    t.configs = vec![cfg];
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    assert!(!r.topics[0].topic_id.is_nil());
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );

    // Metadata: every version lists 3 brokers; unknown topics are refused.
    for v in 0..=12 {
        let m = metadata(&mut c, v, Some(vec![TOPIC, "no-such-topic"]));
        assert_eq!(m.brokers.len(), 3, "Metadata v{v}");
        assert_eq!(m.topics[0].error_code, 0);
        assert_eq!(m.topics[0].partitions.len(), 3);
        assert_eq!(
            m.topics[1].error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        if v >= 10 {
            assert!(!m.topics[0].topic_id.is_nil());
        }
    }
    let all = metadata(&mut c, 12, None);
    assert!(all.topics.len() >= 7);

    // Find a partition led by broker 1 (the connection) and one led elsewhere.
    let leaders: Vec<i32> = (0..3).map(|p| leader_of(&mut c, TOPIC, p)).collect();
    let mine = leaders
        .iter()
        .position(|l| *l == 1)
        .expect("broker 1 leads a partition") as i32;
    let other = leaders
        .iter()
        .position(|l| *l != 1)
        .expect("another broker leads a partition") as i32;

    // Produce: every version, acks 1 and -1; then the error paths.
    let mut expected = 0i64;
    for v in 3..=9 {
        for acks in [1i16, -1] {
            let (code, base) = produce_code(
                &mut c,
                v,
                &produce_req(TOPIC, mine, acks, Some(batch(3, Compression::None))),
            );
            assert_eq!((code, base), (0, expected), "Produce v{v} acks={acks}");
            expected += 3;
        }
    }
    let (code, _) = produce_code(
        &mut c,
        9,
        &produce_req(TOPIC, mine, 1, Some(batch(2, Compression::Gzip))),
    );
    assert_eq!(code, 0);
    expected += 2;
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req("no-such-topic", 0, 1, Some(batch(1, Compression::None)))
        )
        .0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req(TOPIC, 17, 1, Some(batch(1, Compression::None)))
        )
        .0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req(TOPIC, other, 1, Some(batch(1, Compression::None)))
        )
        .0,
        ResponseError::NotLeaderOrFollower.code()
    );
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req(TOPIC, mine, 2, Some(batch(1, Compression::None)))
        )
        .0,
        ResponseError::InvalidRequiredAcks.code()
    );
    let mut corrupt = BytesMut::from(&batch(2, Compression::None)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req(TOPIC, mine, 1, Some(corrupt.freeze()))
        )
        .0,
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req(TOPIC, mine, 1, Some(Bytes::from_static(b"garbage")))
        )
        .0,
        ResponseError::CorruptMessage.code()
    );
    let big: Vec<Record> = Vec::new();
    drop(big);
    let large = batch(200, Compression::None);
    assert!(large.len() > 2000);
    assert_eq!(
        produce_code(&mut c, 9, &produce_req(TOPIC, mine, 1, Some(large))).0,
        ResponseError::MessageTooLarge.code()
    );
    // acks=0: no response; the next request's answer comes back instead.
    c.send_raw(&Client::frame(
        ApiKey::Produce,
        9,
        5000,
        &produce_req(TOPIC, mine, 0, Some(batch(1, Compression::None))),
    ))
    .unwrap();
    expected += 1;
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    // An unsupported version of a served API: UNSUPPORTED_VERSION per partition.
    let r: ProduceResponse = c.call(
        ApiKey::Produce,
        11,
        &produce_req(TOPIC, mine, 1, Some(batch(1, Compression::None))),
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::UnsupportedVersion.code()
    );

    // Fetch: every version reads everything; errors per partition.
    for v in 4..=12 {
        let r: FetchResponse = c.call(ApiKey::Fetch, v, &fetch_req(TOPIC, mine, 0, 100));
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, expected, "Fetch v{v}");
        assert!(!p.records.as_ref().unwrap().is_empty());
    }
    let r: FetchResponse = c.call(
        ApiKey::Fetch,
        12,
        &fetch_req(TOPIC, mine, expected + 10, 100),
    );
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req(TOPIC, other, 0, 100));
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("no-such-topic", 0, 0, 100));
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let mut session = fetch_req(TOPIC, mine, 0, 100);
    session.session_id = 1234;
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &session);
    assert_eq!(r.error_code, ResponseError::FetchSessionIdNotFound.code());
    // Long-poll at the end of the log: answered empty once max_wait passes.
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req(TOPIC, mine, expected, 300));
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert!(r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
    // Long-poll woken by a produce on another connection.
    let mut waiter = Client::connect(&addrs[0]).unwrap();
    waiter
        .send_raw(&Client::frame(
            ApiKey::Fetch,
            12,
            9,
            &fetch_req(TOPIC, mine, expected, 15_000),
        ))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        produce_code(
            &mut c,
            9,
            &produce_req(TOPIC, mine, 1, Some(batch(1, Compression::None)))
        )
        .0,
        0
    );
    let mut body = waiter.recv_frame().unwrap();
    let r: FetchResponse = Client::decode_response(ApiKey::Fetch, 12, 9, &mut body).unwrap();
    assert!(!r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
    expected += 1;

    // ListOffsets: every version; earliest, latest, by timestamp; errors.
    for v in 1..=7 {
        let r: ListOffsetsResponse = c.call(
            ApiKey::ListOffsets,
            v,
            &list_offsets_req(TOPIC, mine, -1, -1),
        );
        assert_eq!(
            (
                r.topics[0].partitions[0].error_code,
                r.topics[0].partitions[0].offset
            ),
            (0, expected),
            "ListOffsets v{v}"
        );
        let r: ListOffsetsResponse = c.call(
            ApiKey::ListOffsets,
            v,
            &list_offsets_req(TOPIC, mine, -2, -1),
        );
        assert_eq!(r.topics[0].partitions[0].offset, 0);
        let r: ListOffsetsResponse = c.call(
            ApiKey::ListOffsets,
            v,
            &list_offsets_req(TOPIC, mine, base_ts() + 1, -1),
        );
        assert_eq!(r.topics[0].partitions[0].offset, 1);
    }
    let r: ListOffsetsResponse = c.call(
        ApiKey::ListOffsets,
        7,
        &list_offsets_req(TOPIC, other, -1, -1),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    let r: ListOffsetsResponse = c.call(
        ApiKey::ListOffsets,
        7,
        &list_offsets_req("no-such-topic", 0, -1, -1),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let r: ListOffsetsResponse = c.call(
        ApiKey::ListOffsets,
        7,
        &list_offsets_req(TOPIC, mine, -1, 5),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );

    // OffsetForLeaderEpoch: every version.
    for v in 2..=4 {
        let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
        p.partition = mine;
        p.leader_epoch = 0;
        p.current_leader_epoch = -1;
        let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
        t.topic = name(TOPIC);
        t.partitions = vec![p.clone()];
        let mut bad = t.clone();
        bad.topic = name("no-such-topic");
        let mut req = OffsetForLeaderEpochRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t, bad];
        let r: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, v, &req);
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(
            r.topics[0].partitions[0].end_offset, expected,
            "OffsetForLeaderEpoch v{v}"
        );
        assert_eq!(
            r.topics[1].partitions[0].error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
    }

    // Configs: describe, alter (legacy and incremental), describe again.
    for v in 1..=4 {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_static_str(TOPIC);
        res.configuration_keys = None;
        let mut unknown = res.clone();
        unknown.resource_name = StrBytes::from_static_str("no-such-topic");
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![res, unknown];
        let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, v, &req);
        assert_eq!(r.results[0].error_code, 0);
        let mmb = r.results[0]
            .configs
            .iter()
            .find(|c| &*c.name == "max.message.bytes")
            .unwrap();
        assert_eq!(mmb.value.as_deref(), Some("2000"));
        assert!(r.results[0]
            .configs
            .iter()
            .any(|c| &*c.name == "retention.ms"));
        assert_eq!(
            r.results[1].error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
    }
    for v in 0..=2 {
        let mut cfg = alter_configs_request::AlterableConfig::default();
        cfg.name = StrBytes::from_static_str("retention.ms");
        cfg.value = Some(StrBytes::from_string(format!("{}", 1000 + v)));
        let mut res = alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_static_str(TOPIC);
        res.configs = vec![cfg];
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![res];
        let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, v, &req);
        assert_eq!(
            r.responses[0].error_code, 0,
            "AlterConfigs v{v}: {:?}",
            r.responses[0].error_message
        );
    }
    for v in 0..=1 {
        let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
        cfg.name = StrBytes::from_static_str("retention.ms");
        cfg.config_operation = 0;
        cfg.value = Some(StrBytes::from_static_str("86400000"));
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_static_str(TOPIC);
        res.configs = vec![cfg];
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![res];
        let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, v, &req);
        assert_eq!(
            r.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{v}: {:?}",
            r.responses[0].error_message
        );
    }
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str(TOPIC);
    res.configuration_keys = Some(vec![StrBytes::from_static_str("retention.ms")]);
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req);
    assert_eq!(r.results[0].configs.len(), 1);
    assert_eq!(r.results[0].configs[0].value.as_deref(), Some("86400000"));

    // CreatePartitions: every version grows a topic; unknown topic refused.
    for (i, v) in (0..=3).enumerate() {
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = name("created-v2");
        t.count = 3 + i as i32;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, v, &req);
        assert_eq!(
            r.results[0].error_code, 0,
            "CreatePartitions v{v}: {:?}",
            r.results[0].error_message
        );
        assert_eq!(
            metadata(&mut c, 1, Some(vec!["created-v2"])).topics[0]
                .partitions
                .len(),
            3 + i
        );
    }

    // DescribeCluster.
    for v in 0..=1 {
        let r: DescribeClusterResponse = c.call(
            ApiKey::DescribeCluster,
            v,
            &DescribeClusterRequest::default(),
        );
        assert_eq!(r.error_code, 0);
        assert_eq!(r.brokers.len(), 3);
        assert_eq!(&*r.cluster_id, common::CLUSTER_ID);
    }

    // InitProducerId (idempotent producers).
    for v in 0..=4 {
        let mut req = InitProducerIdRequest::default();
        req.producer_id = ProducerId(-1);
        req.producer_epoch = -1;
        req.transactional_id = None;
        let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, v, &req);
        assert_eq!(r.error_code, 0);
        assert!(r.producer_id.0 >= 0);
    }

    // DeleteTopics: by name (v1..5) and by id (v6); the data directory goes away.
    for v in 1..=5 {
        let topic = format!("created-v{}", v + 2);
        let mut req = DeleteTopicsRequest::default();
        req.topic_names = vec![name(&topic)];
        req.timeout_ms = 10_000;
        let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, v, &req);
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
        assert_eq!(
            metadata(&mut c, 1, Some(vec![&topic])).topics[0].error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
    }
    let id = metadata(&mut c, 12, Some(vec!["created-v2"])).topics[0].topic_id;
    let mut st = delete_topics_request::DeleteTopicState::default();
    st.name = None;
    st.topic_id = id;
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![st];
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 6, &req);
    assert_eq!(r.responses[0].error_code, 0);
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![name("no-such-topic")];
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &req);
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    wait_for(
        "deleted topic directories to go",
        Duration::from_secs(10),
        || {
            let gone = (1..=3).all(|b| {
                !cluster
                    .dir
                    .path()
                    .join(format!("b{b}/created-v2-0"))
                    .exists()
            });
            gone.then_some(())
        },
    );

    // An API the broker does not serve: an error answer, and the connection stays usable.
    c.send_raw(&Client::frame(
        // A broker-to-broker transaction API Gregor does not serve.
        ApiKey::WriteTxnMarkers,
        1,
        4242,
        &WriteTxnMarkersRequest::default(),
    ))
    .unwrap();
    let mut body = c.recv_frame().expect("answer to an unserved API");
    assert_eq!(&body[..4], &4242i32.to_be_bytes());
    assert_eq!(
        &body.split_off(4)[..2],
        &ResponseError::UnsupportedVersion.code().to_be_bytes()
    );
    let mut unknown_key = BytesMut::new();
    unknown_key.put_i32(10);
    unknown_key.put_i16(999);
    unknown_key.put_i16(0);
    unknown_key.put_i32(31);
    unknown_key.put_i16(-1);
    c.send_raw(&unknown_key).unwrap();
    let body = c.recv_frame().expect("answer to an unknown API key");
    assert_eq!(&body[..4], &31i32.to_be_bytes());
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);

    // Pipelining: many requests written at once are answered in order.
    let mut pipe = BytesMut::new();
    for cid in 100..120 {
        if cid % 2 == 0 {
            pipe.extend_from_slice(&Client::frame(
                ApiKey::Metadata,
                12,
                cid,
                &MetadataRequest::default(),
            ));
        } else {
            pipe.extend_from_slice(&Client::frame(
                ApiKey::Fetch,
                12,
                cid,
                &fetch_req(TOPIC, mine, 0, 0),
            ));
        }
    }
    c.send_raw(&pipe).unwrap();
    for cid in 100i32..120 {
        let body = c.recv_frame().unwrap();
        assert_eq!(&body[..4], &cid.to_be_bytes(), "responses out of order");
    }

    // A request body that does not decode closes the connection (and nothing else).
    let mut bad = Client::connect(&addrs[0]).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(12);
    frame.put_i16(ApiKey::Produce as i16);
    frame.put_i16(9);
    frame.put_i32(1);
    frame.put_i16(5);
    frame.put_i16(0x7fff);
    bad.send_raw(&frame).unwrap();
    assert!(bad.is_closed());

    // Oversized and negative frame sizes close the connection before any allocation.
    let mut big = Client::connect(&addrs[0]).unwrap();
    big.send_raw(&(2_000_000i32).to_be_bytes()).unwrap();
    assert!(big.is_closed());
    let mut neg = Client::connect(&addrs[0]).unwrap();
    neg.send_raw(&(-1i32).to_be_bytes()).unwrap();
    assert!(neg.is_closed());

    // The broker is still healthy and the log intact.
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req(TOPIC, mine, 0, 0));
    assert_eq!(r.responses[0].partitions[0].high_watermark, expected);
}
