//! The group coordinator over a real broker's `__consumer_offsets` logs (one broker leading
//! every partition, files in a temp dir): a member joins and syncs, commits with a wrong
//! generation or an unknown member are refused, a good commit is stored; after a
//! compaction (snapshot + DeleteRecords) and a restart of the broker on the same
//! directory, the new coordinator loads the partition and serves the committed offset.
//! The role task compacts by itself a partition that grew past
//! `offsets_compact_after_records`.

use bytes::Bytes;
use gregor_broker::broker::Broker;
use gregor_broker::config::{Config, Listener};
use gregor_broker::group_log::{self, OFFSETS_TOPIC};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use protocol::control::{MetadataImage, MetadataRecord, PartitionState};
use protocol::ids::{BrokerId, LeaderEpoch, MetadataOffset, PartitionEpoch, PartitionIndex};
use protocol::ids::{Offset, TopicId};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const GROUP: &str = "g1";
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A broker (no controllers) leading all `__consumer_offsets` partitions in `dir`, with
/// its group coordinator started.
fn broker_at(dir: &Path) -> Arc<Broker> {
    broker_compacting_at(dir, 100_000)
}

/// As [`broker_at`], compacting a partition every `compact_after` records.
fn broker_compacting_at(dir: &Path, compact_after: i64) -> Arc<Broker> {
    let config = Config {
        node_id: BrokerId(1),
        listeners: vec![Listener {
            name: "PLAINTEXT".into(),
            bind: "127.0.0.1:0".parse().unwrap(),
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
        }],
        inter_broker_listener: "PLAINTEXT".into(),
        controllers: vec!["127.0.0.1:1".into()],
        data_dir: dir.to_path_buf(),
        rack: None,
        cluster_id: "groups".into(),
        heartbeat_interval: Duration::from_millis(200),
        auto_create_topics: true,
        max_connections: 16,
        max_inflight_requests: 8,
        max_frame_bytes: 1 << 20,
        replica_lag_time_max: Duration::from_secs(2),
        metadata_max_wait: Duration::from_millis(20),
        metrics_listen: None,
        offsets_topic_partitions: 12,
        offsets_compact_after_records: compact_after,
    };
    let broker = Arc::new(Broker::new(config));
    let id = TopicId(uuid::Uuid::from_u128(0x6f));
    let mut batch = vec![MetadataRecord::Topic {
        name: OFFSETS_TOPIC.into(),
        topic_id: id,
    }];
    for p in 0..group_log::DEFAULT_OFFSETS_PARTITIONS {
        batch.push(MetadataRecord::Partition(PartitionState {
            topic_id: id,
            partition: PartitionIndex(p),
            replicas: vec![BrokerId(1)],
            isr: vec![BrokerId(1)],
            leader: Some(BrokerId(1)),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
        }));
    }
    let mut image = MetadataImage::new("groups");
    image.apply_batch(MetadataOffset(1), &batch);
    broker.partitions.apply_image(&image, 0, true);
    broker.publish_image(Arc::new(image));
    group_log::start(&broker);
    broker
}

fn fetch_req() -> OffsetFetchRequest {
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(GROUP));
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s("t"));
    t.partition_indexes = vec![0];
    r.topics = Some(vec![t]);
    r
}

/// The committed offset of t-0 once the coordinator has loaded the group's partition.
async fn committed(broker: &Broker) -> i64 {
    let c = broker.groups.get().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.offset_fetch(7, &fetch_req()).await;
        if r.error_code == 0 {
            return r.topics[0].partitions[0].committed_offset;
        }
        assert!(
            Instant::now() < deadline,
            "group not loaded: {}",
            r.error_code
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn commit_req(generation: i32, member: &str, offset: i64) -> OffsetCommitRequest {
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(member);
    r.generation_id_or_member_epoch = generation;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s("t"));
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    t.partitions.push(p);
    r.topics.push(t);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_checked_stored_compacted_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_at(dir.path());
    assert_eq!(committed(&broker).await, -1);
    let c = broker.groups.get().unwrap().clone();

    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(s(GROUP));
    join.session_timeout_ms = 30_000;
    join.rebalance_timeout_ms = 30_000;
    join.protocol_type = s("consumer");
    let mut jp = JoinGroupRequestProtocol::default();
    jp.name = s("range");
    jp.metadata = Bytes::from_static(b"meta");
    join.protocols.push(jp);
    let first = c.join_group(7, &Default::default(), &join).await;
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    join.member_id = first.member_id.clone();
    let joined = c.join_group(7, &Default::default(), &join).await;
    assert_eq!(joined.error_code, 0);
    let (member, generation) = (joined.member_id.to_string(), joined.generation_id);
    assert_eq!(joined.leader, joined.member_id);

    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s(GROUP));
    sync.member_id = s(&member);
    sync.generation_id = generation;
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(&member);
    a.assignment = Bytes::from_static(b"all");
    sync.assignments.push(a);
    let synced = c.sync_group(5, &sync).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, Bytes::from_static(b"all"));

    let code =
        |r: kafka_protocol::messages::OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(
        code(
            c.offset_commit(8, &commit_req(generation + 1, &member, 5))
                .await
        ),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        code(
            c.offset_commit(8, &commit_req(generation, "nobody", 5))
                .await
        ),
        UNKNOWN_MEMBER_ID
    );
    for offset in [10, 20, 42] {
        assert_eq!(
            code(
                c.offset_commit(8, &commit_req(generation, &member, offset))
                    .await
            ),
            0
        );
    }
    assert_eq!(committed(&broker).await, 42);

    // Compaction as the role task does it: log end, snapshot, DeleteRecords below it.
    let p = c.partition_for(GROUP);
    let part = broker.partitions.get(OFFSETS_TOPIC, p).unwrap();
    let end = part.leader_positions(-1).unwrap().log_end_offset;
    assert!(
        end >= Offset(4),
        "group metadata and three commits were written"
    );
    c.write_compaction_snapshot(p).await.unwrap();
    assert_eq!(part.delete_records_before(-1, end).unwrap(), end);

    broker.partitions.close_all();
    drop(c);
    drop(part);
    drop(broker);

    let broker = broker_at(dir.path());
    assert_eq!(committed(&broker).await, 42, "reloaded after compaction");
    let part = broker.partitions.get(OFFSETS_TOPIC, p).unwrap();
    assert_eq!(part.leader_positions(-1).unwrap().log_start_offset, end);
    broker.partitions.close_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_task_compacts_a_partition_that_grew_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_compacting_at(dir.path(), 100);
    assert_eq!(committed(&broker).await, -1);
    let c = broker.groups.get().unwrap().clone();
    let code =
        |r: kafka_protocol::messages::OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    // Commits of a consumer outside any group (generation -1), one record each.
    for offset in 1..=250 {
        assert_eq!(
            code(c.offset_commit(8, &commit_req(-1, "", offset)).await),
            0
        );
    }
    let p = c.partition_for(GROUP);
    let part = broker.partitions.get(OFFSETS_TOPIC, p).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let start = loop {
        let pos = part.leader_positions(-1).unwrap();
        if pos.log_start_offset > Offset(0) {
            break pos.log_start_offset;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted: log {}..{}",
            pos.log_start_offset,
            pos.log_end_offset
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(start >= Offset(100), "compacted below {start}");
    assert_eq!(committed(&broker).await, 250);

    broker.partitions.close_all();
    drop(c);
    drop(part);
    drop(broker);
    let broker = broker_compacting_at(dir.path(), 100);
    assert_eq!(committed(&broker).await, 250, "reloaded after compaction");
    broker.partitions.close_all();
}
