//! The async `Coordinator` over real `storage::PartitionLog`s: groups form through the
//! public API, offsets are committed to disk, and a second coordinator that reopens the
//! same logs (a failover) carries on with the same groups and offsets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gregor_group::records::{decode_batches, encode_batch};
use gregor_group::{
    BoxFuture, ClientInfo, Coordinator, GroupConfig, GroupState, OffsetsLog, OffsetsRecord,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol::ids::{LeaderEpoch, Offset};
use storage::{LogConfig, PartitionLog};

const PARTITIONS: i32 = 3;
const GROUP: &str = "async-group";

/// `__consumer_offsets` as real partition logs of one (single-replica) broker: an append
/// is committed as soon as it is in the log.
struct DiskOffsetsLog {
    logs: Mutex<HashMap<i32, PartitionLog>>,
}

impl DiskOffsetsLog {
    fn open(dir: &Path) -> Arc<Self> {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        };
        let logs = (0..PARTITIONS)
            .map(|p| {
                let name = format!("__consumer_offsets-{p}");
                (
                    p,
                    PartitionLog::open(dir.join(&name), &name, config.clone()).expect("open log"),
                )
            })
            .collect();
        Arc::new(Self {
            logs: Mutex::new(logs),
        })
    }

    fn close(&self) {
        for (_, log) in self.logs.lock().unwrap().drain() {
            log.close().expect("close log");
        }
    }
}

impl OffsetsLog for DiskOffsetsLog {
    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'static, Result<(), i16>> {
        let result = (|| {
            let batch = encode_batch(&records, 0).map_err(|_| -1i16)?;
            let mut logs = self.logs.lock().unwrap();
            let log = logs.get_mut(&partition).ok_or(6i16)?;
            log.append(&batch, LeaderEpoch(0), 0).map_err(|_| -1i16)?;
            Ok(())
        })();
        Box::pin(async move { result })
    }

    fn read_all(&self, partition: i32) -> BoxFuture<'static, Result<Vec<OffsetsRecord>, i16>> {
        let result = (|| {
            let logs = self.logs.lock().unwrap();
            let log = logs.get(&partition).ok_or(6i16)?;
            let end = log.log_end_offset();
            let mut from = log.log_start_offset();
            let mut out = Vec::new();
            while from < end {
                let read = log.read(from, 1 << 20, end).map_err(|_| -1i16)?;
                let decoded = decode_batches(read.records).map_err(|_| -1i16)?;
                out.extend(decoded.records);
                from = Offset(decoded.next_offset.ok_or(-1i16)?);
            }
            Ok(out)
        })();
        Box::pin(async move { result })
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn config() -> GroupConfig {
    GroupConfig {
        offsets_partitions: PARTITIONS,
        initial_rebalance_delay_ms: 50,
        tick_interval_ms: 20,
        ..GroupConfig::default()
    }
}

async fn coordinator(dir: &Path) -> (Coordinator, Arc<DiskOffsetsLog>) {
    let log = DiskOffsetsLog::open(dir);
    let c = Coordinator::new(config(), log.clone()).expect("valid config");
    for p in 0..PARTITIONS {
        c.become_leader(p).await.expect("load");
    }
    (c, log)
}

async fn deadline<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("response before the deadline")
}

fn join_req(member: &str) -> JoinGroupRequest {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(member);
    r.session_timeout_ms = 30_000;
    r.rebalance_timeout_ms = 60_000;
    r.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"subscription");
    r.protocols = vec![p];
    r
}

/// Joins the v4+ way: MEMBER_ID_REQUIRED, then again with the given id.
async fn join(c: &Coordinator) -> JoinGroupResponse {
    let client = ClientInfo {
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
    };
    let first = c.join_group(7, &client, &join_req("")).await;
    assert_eq!(first.error_code, 79);
    deadline(c.join_group(7, &client, &join_req(first.member_id.as_str()))).await
}

async fn sync(
    c: &Coordinator,
    member: &str,
    generation: i32,
    assignments: &[(String, String)],
) -> SyncGroupResponse {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(member);
    r.generation_id = generation;
    for (m, a) in assignments {
        let mut sa = SyncGroupRequestAssignment::default();
        sa.member_id = s(m);
        sa.assignment = Bytes::from(a.clone());
        r.assignments.push(sa);
    }
    deadline(c.sync_group(5, &r)).await
}

async fn commit(c: &Coordinator, member: &str, generation: i32, offset: i64) -> i16 {
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(member);
    r.generation_id_or_member_epoch = generation;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s("topic"));
    for p in 0..2 {
        let mut pp = OffsetCommitRequestPartition::default();
        pp.partition_index = p;
        pp.committed_offset = offset + i64::from(p);
        t.partitions.push(pp);
    }
    r.topics.push(t);
    let resp = deadline(c.offset_commit(8, &r)).await;
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .max()
        .unwrap_or(-1)
}

async fn fetch(c: &Coordinator) -> (i16, Vec<i64>) {
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(GROUP));
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s("topic"));
    t.partition_indexes = vec![0, 1];
    r.topics = Some(vec![t]);
    let resp = c.offset_fetch(7, &r).await;
    let offsets = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect();
    (resp.error_code, offsets)
}

async fn heartbeat(c: &Coordinator, member: &str, generation: i32) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(member);
    r.generation_id = generation;
    c.heartbeat(4, &r).await.error_code
}

#[tokio::test]
async fn group_and_offsets_survive_a_coordinator_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (c, log) = coordinator(&path).await;

    let (a, b) = tokio::join!(join(&c), join(&c));
    assert_eq!((a.error_code, b.error_code), (0, 0));
    assert_eq!(a.generation_id, b.generation_id, "one generation for both");
    let generation = a.generation_id;
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader.members.len(), 2);
    let assignments = vec![
        (leader.member_id.to_string(), "for-leader".to_owned()),
        (follower.member_id.to_string(), "for-follower".to_owned()),
    ];
    let (sl, sf) = tokio::join!(
        sync(&c, &leader.member_id, generation, &assignments),
        sync(&c, &follower.member_id, generation, &[])
    );
    assert_eq!(&sl.assignment[..], b"for-leader");
    assert_eq!(&sf.assignment[..], b"for-follower");
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));

    assert_eq!(commit(&c, &follower.member_id, generation, 100).await, 0);
    assert_eq!(
        commit(&c, &leader.member_id, generation + 1, 5).await,
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        commit(&c, "stranger", generation, 5).await,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(fetch(&c).await, (0, vec![100, 101]));

    // Failover: this coordinator resigns, another one opens the same logs.
    let p = c.partition_for(GROUP);
    c.resign(p);
    assert_eq!(fetch(&c).await.0, 16, "NOT_COORDINATOR after resign");
    drop(c);
    log.close();
    let (c2, _log2) = coordinator(&path).await;
    assert_eq!(fetch(&c2).await, (0, vec![100, 101]));
    assert_eq!(c2.group_state(GROUP), Some(GroupState::Stable));
    assert_eq!(heartbeat(&c2, &follower.member_id, generation).await, 0);
    let again = sync(&c2, &follower.member_id, generation, &[]).await;
    assert_eq!(&again.assignment[..], b"for-follower");
    assert_eq!(commit(&c2, &leader.member_id, generation, 200).await, 0);
    assert_eq!(fetch(&c2).await, (0, vec![200, 201]));
}

#[tokio::test]
async fn a_member_leaving_rebalances_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _log) = coordinator(dir.path()).await;
    let (a, b) = tokio::join!(join(&c), join(&c));
    let generation = a.generation_id;
    let assignments: Vec<(String, String)> = [&a, &b]
        .iter()
        .map(|r| (r.member_id.to_string(), "x".to_owned()))
        .collect();
    let leader = if a.leader == a.member_id { &a } else { &b };
    let other = if a.leader == a.member_id { &b } else { &a };
    let (_, _) = tokio::join!(
        sync(&c, &leader.member_id, generation, &assignments),
        sync(&c, &other.member_id, generation, &[])
    );
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s(GROUP));
    leave.member_id = s(&other.member_id);
    assert_eq!(c.leave_group(1, &leave).await.error_code, 0);
    assert_eq!(
        heartbeat(&c, &leader.member_id, generation).await,
        27,
        "REBALANCE_IN_PROGRESS"
    );
    let client = ClientInfo::default();
    let rejoin = deadline(c.join_group(7, &client, &join_req(&leader.member_id))).await;
    assert_eq!(rejoin.generation_id, generation + 1);
    assert_eq!(rejoin.members.len(), 1);
}

#[tokio::test]
async fn compaction_snapshot_then_prefix_delete_keeps_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (c, log) = coordinator(dir.path()).await;
    for i in 0..50 {
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(s(GROUP));
        r.generation_id_or_member_epoch = -1;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(s("topic"));
        for p in 0..2 {
            let mut pp = OffsetCommitRequestPartition::default();
            pp.partition_index = p;
            pp.committed_offset = i * 10 + i64::from(p);
            t.partitions.push(pp);
        }
        r.topics.push(t);
        let resp = deadline(c.offset_commit(8, &r)).await;
        assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    }
    let p = c.partition_for(GROUP);
    let end = log.logs.lock().unwrap()[&p].log_end_offset();
    assert_eq!(end, Offset(100));
    c.write_compaction_snapshot(p)
        .await
        .expect("snapshot written");
    {
        let mut logs = log.logs.lock().unwrap();
        let l = logs.get_mut(&p).unwrap();
        l.delete_records_before(end).expect("prefix deleted");
        assert_eq!(l.log_start_offset(), end);
        assert_eq!(l.log_end_offset(), Offset(102), "two live keys");
    }
    c.resign(p);
    c.become_leader(p).await.expect("reload");
    assert_eq!(fetch(&c).await, (0, vec![490, 491]));
}
