//! A member of a consumer group (Kafka's classic protocol): find the coordinator, join and
//! sync (the leader assigns partitions with the range assignor), heartbeat, fetch and
//! commit offsets, leave.
//!
//! The subscription and assignment blobs are Kafka's `ConsumerProtocol` layouts (an `i16`
//! version, then the message), so Java and librdkafka consumers can share a group with it.

use super::client::{Client, REQUEST_TIMEOUT};
use super::conn::Connection;
use super::error::KafkaError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const FIND_COORDINATOR_MAX_VERSION: i16 = 3;
const JOIN_GROUP_MAX_VERSION: i16 = 7;
const SYNC_GROUP_MAX_VERSION: i16 = 5;
const HEARTBEAT_MAX_VERSION: i16 = 4;
const OFFSET_FETCH_MAX_VERSION: i16 = 7;
const OFFSET_COMMIT_MAX_VERSION: i16 = 8;
const LEAVE_GROUP_MAX_VERSION: i16 = 4;
/// The consumer protocol's subscription/assignment version written.
const CONSUMER_PROTOCOL_VERSION: i16 = 0;
const ASSIGNOR: &str = "range";
/// How long joining (with coordinator moves and rebalances) may take.
const JOIN_WINDOW: Duration = Duration::from_secs(60);
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// How often a member heartbeats (a third of the session timeout, as Kafka advises).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(SESSION_TIMEOUT_MS as u64 / 3);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A subscription blob for `topics`.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes, KafkaError> {
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = topics.iter().map(|t| s(t)).collect();
    encode_versioned(&sub)
}

/// The topics of a member's subscription blob.
pub fn decode_subscription(blob: &Bytes) -> Result<Vec<String>, KafkaError> {
    let (version, mut body) = split_version(blob)?;
    let sub = ConsumerProtocolSubscription::decode(&mut body, version.min(3))
        .map_err(|e| bad(e.to_string()))?;
    Ok(sub.topics.iter().map(|t| t.to_string()).collect())
}

/// An assignment blob.
pub fn encode_assignment(parts: &BTreeMap<String, Vec<i32>>) -> Result<Bytes, KafkaError> {
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = parts
        .iter()
        .map(|(t, ps)| {
            let mut tp = AssignedPartitions::default();
            tp.topic = TopicName(s(t));
            tp.partitions = ps.clone();
            tp
        })
        .collect();
    encode_versioned(&a)
}

/// The partitions of an assignment blob (an empty blob is no assignment).
pub fn decode_assignment(blob: &Bytes) -> Result<BTreeMap<String, Vec<i32>>, KafkaError> {
    if blob.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (version, mut body) = split_version(blob)?;
    let a = ConsumerProtocolAssignment::decode(&mut body, version.min(3))
        .map_err(|e| bad(e.to_string()))?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

fn encode_versioned<M: Encodable>(m: &M) -> Result<Bytes, KafkaError> {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    m.encode(&mut buf, CONSUMER_PROTOCOL_VERSION)
        .map_err(|e| bad(e.to_string()))?;
    Ok(buf.freeze())
}

fn split_version(blob: &Bytes) -> Result<(i16, Bytes), KafkaError> {
    if blob.len() < 2 {
        return Err(bad("consumer protocol blob shorter than its version".into()));
    }
    let mut body = blob.clone();
    let version = body.get_i16();
    if version < 0 {
        return Err(bad(format!("consumer protocol version {version}")));
    }
    Ok((version, body))
}

fn bad(message: String) -> KafkaError {
    KafkaError::Protocol {
        addr: "group member".into(),
        message,
    }
}

/// Kafka's range assignor: for each topic, partitions in order, split into contiguous
/// ranges over the members subscribed to it (sorted by member id); the first
/// `partitions % members` members get one extra.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            if take > 0 {
                let entry = out.entry((*m).clone()).or_default();
                entry.insert(topic.clone(), (next..next + take).collect());
            }
            next += take;
        }
    }
    out
}

/// A joined member: its coordinator, id and generation, and its assignment for one topic.
#[derive(Debug)]
pub struct Member {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
    pub coordinator: Arc<Connection>,
    pub assigned: Vec<i32>,
}

fn group_error(what: &str, group: &str, code: i16) -> Option<KafkaError> {
    KafkaError::api(format!("{what} (group '{group}')"), code, None)
}

fn is_coordinator_moving(code: i16) -> bool {
    code == ResponseError::NotCoordinator.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::CoordinatorLoadInProgress.code()
}

/// The coordinator of `group`, retrying while it is being elected or loaded.
pub async fn find_coordinator(
    client: &mut Client,
    group: &str,
) -> Result<Arc<Connection>, KafkaError> {
    let deadline = Instant::now() + JOIN_WINDOW;
    loop {
        let conn = client.any_conn().await?;
        let mut req = FindCoordinatorRequest::default();
        req.key = s(group);
        req.key_type = 0;
        let (resp, _) = conn
            .call(&req, FIND_COORDINATOR_MAX_VERSION, REQUEST_TIMEOUT)
            .await?;
        match group_error("find coordinator", group, resp.error_code) {
            None => {
                return client
                    .conn_to(&format!("{}:{}", resp.host.as_str(), resp.port))
                    .await
            }
            Some(e) if is_coordinator_moving(resp.error_code) && Instant::now() < deadline => {
                tracing::debug!("{e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(e) => return Err(e),
        }
    }
}

/// Joins `group` subscribed to `topic` and returns the member with its partitions of it.
/// `member_id` is the id of a previous generation ("" for a new member).
pub async fn join(
    client: &mut Client,
    group: &str,
    topic: &str,
    member_id: &str,
) -> Result<Member, KafkaError> {
    let deadline = Instant::now() + JOIN_WINDOW;
    let mut member_id = member_id.to_string();
    let mut coordinator = find_coordinator(client, group).await?;
    loop {
        let retry = |e: KafkaError| {
            if Instant::now() < deadline {
                Ok(())
            } else {
                Err(e)
            }
        };
        let mut proto = JoinGroupRequestProtocol::default();
        proto.name = s(ASSIGNOR);
        proto.metadata = encode_subscription(&[topic.to_string()])?;
        let mut req = JoinGroupRequest::default();
        req.group_id = GroupId(s(group));
        req.session_timeout_ms = SESSION_TIMEOUT_MS;
        req.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
        req.member_id = s(&member_id);
        req.protocol_type = s("consumer");
        req.protocols = vec![proto];
        let limit = Duration::from_millis(REBALANCE_TIMEOUT_MS as u64) + REQUEST_TIMEOUT;
        let (resp, _) = coordinator
            .call(&req, JOIN_GROUP_MAX_VERSION, limit)
            .await?;
        let code = resp.error_code;
        if code == ResponseError::MemberIdRequired.code() {
            member_id = resp.member_id.to_string();
            continue;
        }
        if code == ResponseError::UnknownMemberId.code() {
            member_id.clear();
            continue;
        }
        if let Some(e) = group_error("join", group, code) {
            if is_coordinator_moving(code) {
                retry(e)?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                coordinator = find_coordinator(client, group).await?;
                continue;
            }
            if code == ResponseError::RebalanceInProgress.code() {
                retry(e)?;
                continue;
            }
            return Err(e);
        }
        member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        let assignments = if resp.leader.as_str() == member_id {
            leader_assignments(client, &resp.members).await?
        } else {
            Vec::new()
        };
        let mut sync = SyncGroupRequest::default();
        sync.group_id = GroupId(s(group));
        sync.generation_id = generation;
        sync.member_id = s(&member_id);
        sync.protocol_type = Some(s("consumer"));
        sync.protocol_name = Some(s(ASSIGNOR));
        sync.assignments = assignments;
        let (sresp, v) = coordinator
            .call(&sync, SYNC_GROUP_MAX_VERSION, limit)
            .await?;
        let _ = v;
        if let Some(e) = group_error("sync", group, sresp.error_code) {
            if sresp.error_code == ResponseError::RebalanceInProgress.code() {
                retry(e)?;
                continue;
            }
            if is_coordinator_moving(sresp.error_code) {
                retry(e)?;
                coordinator = find_coordinator(client, group).await?;
                continue;
            }
            return Err(e);
        }
        let assigned = decode_assignment(&sresp.assignment)?
            .remove(topic)
            .unwrap_or_default();
        return Ok(Member {
            group: group.to_string(),
            member_id,
            generation,
            coordinator,
            assigned,
        });
    }
}

/// The leader's work: decode every member's subscription, look up partition counts, and
/// assign with the range assignor.
async fn leader_assignments(
    client: &mut Client,
    members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
) -> Result<Vec<SyncGroupRequestAssignment>, KafkaError> {
    let mut subs = BTreeMap::new();
    for m in members {
        subs.insert(m.member_id.to_string(), decode_subscription(&m.metadata)?);
    }
    let mut topics: Vec<String> = subs.values().flatten().cloned().collect();
    topics.sort();
    topics.dedup();
    let meta = client.refresh(Some(&topics)).await?;
    let counts: BTreeMap<String, i32> = topics
        .iter()
        .filter_map(|t| {
            meta.topics
                .get(t)
                .map(|tm| (t.clone(), tm.partitions.len() as i32))
        })
        .collect();
    range_assign(&subs, &counts)
        .into_iter()
        .map(|(member, parts)| {
            let mut a = SyncGroupRequestAssignment::default();
            a.member_id = s(&member);
            a.assignment = encode_assignment(&parts)?;
            Ok(a)
        })
        .collect()
}

/// Committed offsets of a group, per (topic, partition); `None` asks for every topic.
pub async fn fetch_committed(
    coordinator: &Connection,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Result<BTreeMap<(String, i32), i64>, KafkaError> {
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(s(group));
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, parts)| {
                let mut t = OffsetFetchRequestTopic::default();
                t.name = TopicName(s(name));
                t.partition_indexes = parts.clone();
                t
            })
            .collect()
    });
    let (resp, _) = coordinator
        .call(&req, OFFSET_FETCH_MAX_VERSION, REQUEST_TIMEOUT)
        .await?;
    if let Some(e) = group_error("fetch committed offsets", group, resp.error_code) {
        return Err(e);
    }
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if let Some(e) = group_error("fetch committed offsets", group, p.error_code) {
                return Err(e);
            }
            out.insert(
                (t.name.0.to_string(), p.partition_index),
                p.committed_offset,
            );
        }
    }
    Ok(out)
}

/// What a heartbeat said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    Ok,
    /// The group is rebalancing (or forgot this member): rejoin.
    Rejoin,
}

impl Member {
    pub async fn heartbeat(&self) -> Result<Heartbeat, KafkaError> {
        let mut req = HeartbeatRequest::default();
        req.group_id = GroupId(s(&self.group));
        req.generation_id = self.generation;
        req.member_id = s(&self.member_id);
        let (resp, _) = self
            .coordinator
            .call(&req, HEARTBEAT_MAX_VERSION, REQUEST_TIMEOUT)
            .await?;
        let code = resp.error_code;
        if code == 0 {
            return Ok(Heartbeat::Ok);
        }
        let rejoin = [
            ResponseError::RebalanceInProgress,
            ResponseError::IllegalGeneration,
            ResponseError::UnknownMemberId,
            ResponseError::NotCoordinator,
            ResponseError::CoordinatorNotAvailable,
        ];
        if rejoin.iter().any(|e| e.code() == code) {
            return Ok(Heartbeat::Rejoin);
        }
        Err(group_error("heartbeat", &self.group, code).expect("non-zero code"))
    }

    /// Committed offsets of the assigned partitions (-1: none committed).
    pub async fn committed(&self, topic: &str) -> Result<BTreeMap<i32, i64>, KafkaError> {
        let wanted = [(topic.to_string(), self.assigned.clone())];
        let all = fetch_committed(&self.coordinator, &self.group, Some(&wanted)).await?;
        Ok(all
            .into_iter()
            .filter(|((t, _), _)| t == topic)
            .map(|((_, p), o)| (p, o))
            .collect())
    }

    /// Commits `positions` (the next offset to read, per partition).
    pub async fn commit(
        &self,
        topic: &str,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<(), KafkaError> {
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = positions
            .iter()
            .map(|(&p, &o)| {
                let mut cp = OffsetCommitRequestPartition::default();
                cp.partition_index = p;
                cp.committed_offset = o;
                cp.committed_leader_epoch = -1;
                cp
            })
            .collect();
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(s(&self.group));
        req.generation_id_or_member_epoch = self.generation;
        req.member_id = s(&self.member_id);
        req.retention_time_ms = -1;
        req.topics = vec![t];
        let (resp, _) = self
            .coordinator
            .call(&req, OFFSET_COMMIT_MAX_VERSION, REQUEST_TIMEOUT)
            .await?;
        for t in resp.topics {
            for p in t.partitions {
                if let Some(e) = group_error("commit offsets", &self.group, p.error_code) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Leaves the group, so the others rebalance at once instead of after a session timeout.
    pub async fn leave(&self) -> Result<(), KafkaError> {
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(s(&self.group));
        let v = self
            .coordinator
            .version::<LeaveGroupRequest>(LEAVE_GROUP_MAX_VERSION)?;
        if v >= 3 {
            let mut m = MemberIdentity::default();
            m.member_id = s(&self.member_id);
            req.members = vec![m];
        } else {
            req.member_id = s(&self.member_id);
        }
        let resp = self.coordinator.call_at(&req, v, REQUEST_TIMEOUT).await?;
        match group_error("leave", &self.group, resp.error_code) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignor_matches_kafkas() {
        let subs: BTreeMap<String, Vec<String>> = [
            ("m1".to_string(), vec!["a".to_string(), "b".to_string()]),
            ("m2".to_string(), vec!["a".to_string()]),
            ("m3".to_string(), vec!["a".to_string(), "b".to_string()]),
        ]
        .into_iter()
        .collect();
        let counts: BTreeMap<String, i32> = [("a".to_string(), 7), ("b".to_string(), 1)]
            .into_iter()
            .collect();
        let out = range_assign(&subs, &counts);
        assert_eq!(out["m1"]["a"], vec![0, 1, 2]);
        assert_eq!(out["m2"]["a"], vec![3, 4]);
        assert_eq!(out["m3"]["a"], vec![5, 6]);
        assert_eq!(out["m1"]["b"], vec![0]);
        assert!(!out["m3"].contains_key("b"));
        assert!(!out["m2"].contains_key("b"));
    }

    #[test]
    fn subscription_and_assignment_blobs_round_trip() {
        let blob = encode_subscription(&["orders".to_string()]).unwrap();
        assert_eq!(&blob[..2], &[0, 0], "version prefix");
        assert_eq!(decode_subscription(&blob).unwrap(), vec!["orders"]);
        let parts: BTreeMap<String, Vec<i32>> =
            [("orders".to_string(), vec![0, 2])].into_iter().collect();
        assert_eq!(
            decode_assignment(&encode_assignment(&parts).unwrap()).unwrap(),
            parts
        );
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_subscription(&Bytes::from_static(&[0])).is_err());
    }
}
