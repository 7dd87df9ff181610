//! A driver for [`GroupStateMachine`]: logical time, an in-memory record of the writes it
//! asks for (completed at once unless told otherwise), and the completions it emits.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::api::ClientInfo;
use crate::config::GroupConfig;
use crate::state::{Completion, GroupStateMachine, Reply, WriteRequest};
use crate::WaiterId;

pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;
pub const PARTITIONS: i32 = 4;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub fn config() -> GroupConfig {
    GroupConfig {
        offsets_partitions: PARTITIONS,
        ..GroupConfig::default()
    }
}

#[derive(Debug)]
pub struct H {
    pub sm: GroupStateMachine,
    pub now: i64,
    /// Every committed write, in order, per partition.
    pub log: HashMap<i32, Vec<(Bytes, Option<Bytes>)>>,
    pub done: HashMap<WaiterId, Completion>,
    /// When false, writes stay in `held` until `release`.
    pub auto_write: bool,
    pub held: Vec<WriteRequest>,
}

impl H {
    pub fn new() -> Self {
        let mut h = Self::unloaded(config());
        for p in 0..PARTITIONS {
            let id = h.sm.begin_load(p);
            assert!(h.sm.finish_load(p, id, Vec::new(), h.now));
        }
        h
    }

    pub fn unloaded(config: GroupConfig) -> Self {
        Self {
            sm: GroupStateMachine::new(config),
            now: 1_000_000,
            log: HashMap::new(),
            done: HashMap::new(),
            auto_write: true,
            held: Vec::new(),
        }
    }

    pub fn pump(&mut self) {
        loop {
            let e = self.sm.take_effects();
            if e.is_empty() {
                return;
            }
            for (w, c) in e.completions {
                assert!(
                    self.done.insert(w, c).is_none(),
                    "waiter {w} completed twice"
                );
            }
            for w in e.writes {
                if self.auto_write {
                    self.log
                        .entry(w.partition)
                        .or_default()
                        .extend(w.records.clone());
                    self.sm.write_completed(w.token, Ok(()), self.now);
                } else {
                    self.held.push(w);
                }
            }
        }
    }

    /// Completes held writes with `result`.
    pub fn release(&mut self, result: Result<(), i16>) {
        for w in std::mem::take(&mut self.held) {
            if result.is_ok() {
                self.log
                    .entry(w.partition)
                    .or_default()
                    .extend(w.records.clone());
            }
            self.sm.write_completed(w.token, result, self.now);
        }
        self.pump();
    }

    pub fn advance(&mut self, ms: i64) {
        self.now += ms;
        self.sm.tick(self.now);
        self.pump();
    }

    pub fn join_req(
        group: &str,
        member: &str,
        instance: Option<&str>,
        protocols: &[&str],
    ) -> JoinGroupRequest {
        let mut r = JoinGroupRequest::default();
        r.group_id = GroupId(s(group));
        r.member_id = s(member);
        r.group_instance_id = instance.map(s);
        r.session_timeout_ms = SESSION_MS;
        r.rebalance_timeout_ms = REBALANCE_MS;
        r.protocol_type = s("consumer");
        r.protocols = protocols
            .iter()
            .map(|p| {
                let mut jp = JoinGroupRequestProtocol::default();
                jp.name = s(p);
                jp.metadata = Bytes::from(format!("meta-{member}-{p}"));
                jp
            })
            .collect();
        r
    }

    pub fn join_with(&mut self, version: i16, req: &JoinGroupRequest) -> Reply<JoinGroupResponse> {
        let client = ClientInfo {
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
        };
        let r = self.sm.handle_join_group(self.now, version, &client, req);
        self.pump();
        r
    }

    /// JoinGroup v7 with the "range" protocol.
    pub fn join(&mut self, group: &str, member: &str) -> Reply<JoinGroupResponse> {
        self.join_with(7, &Self::join_req(group, member, None, &["range"]))
    }

    /// Joins a new member the v4+ way (MEMBER_ID_REQUIRED, then again); returns its id
    /// and the waiter of the second join.
    pub fn join_new(&mut self, group: &str) -> (String, WaiterId) {
        let Reply::Now(r) = self.join(group, "") else {
            panic!("first join must answer at once")
        };
        assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED");
        let id = r.member_id.to_string();
        match self.join(group, &id) {
            Reply::Later(w) => (id, w),
            Reply::Now(r) => panic!("second join answered at once: {r:?}"),
        }
    }

    pub fn join_done(&mut self, w: WaiterId) -> JoinGroupResponse {
        match self.done.remove(&w) {
            Some(Completion::Join(r)) => r,
            other => panic!("waiter {w}: expected a join completion, got {other:?}"),
        }
    }

    pub fn sync_done(&mut self, w: WaiterId) -> SyncGroupResponse {
        match self.done.remove(&w) {
            Some(Completion::Sync(r)) => r,
            other => panic!("waiter {w}: expected a sync completion, got {other:?}"),
        }
    }

    pub fn commit_done(&mut self, w: WaiterId) -> OffsetCommitResponse {
        match self.done.remove(&w) {
            Some(Completion::Commit(r)) => r,
            other => panic!("waiter {w}: expected a commit completion, got {other:?}"),
        }
    }

    pub fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &str)],
    ) -> Reply<SyncGroupResponse> {
        let mut r = SyncGroupRequest::default();
        r.group_id = GroupId(s(group));
        r.member_id = s(member);
        r.generation_id = generation;
        r.assignments = assignments
            .iter()
            .map(|(m, a)| {
                let mut sa = SyncGroupRequestAssignment::default();
                sa.member_id = s(m);
                sa.assignment = Bytes::from(a.to_string());
                sa
            })
            .collect();
        let out = self.sm.handle_sync_group(self.now, 5, &r);
        self.pump();
        out
    }

    pub fn heartbeat(&mut self, group: &str, member: &str, generation: i32) -> i16 {
        let mut r = HeartbeatRequest::default();
        r.group_id = GroupId(s(group));
        r.member_id = s(member);
        r.generation_id = generation;
        let out = self.sm.handle_heartbeat(self.now, 4, &r);
        self.pump();
        out.error_code
    }

    pub fn heartbeat_static(
        &mut self,
        group: &str,
        member: &str,
        instance: &str,
        generation: i32,
    ) -> i16 {
        let mut r = HeartbeatRequest::default();
        r.group_id = GroupId(s(group));
        r.member_id = s(member);
        r.group_instance_id = Some(s(instance));
        r.generation_id = generation;
        let out = self.sm.handle_heartbeat(self.now, 4, &r);
        self.pump();
        out.error_code
    }

    pub fn leave(&mut self, group: &str, member: &str) -> LeaveGroupResponse {
        let mut r = LeaveGroupRequest::default();
        r.group_id = GroupId(s(group));
        let mut m = MemberIdentity::default();
        m.member_id = s(member);
        r.members = vec![m];
        let out = self.sm.handle_leave_group(self.now, 4, &r);
        self.pump();
        out
    }

    pub fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> Reply<OffsetCommitResponse> {
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(s(group));
        r.member_id = s(member);
        r.generation_id_or_member_epoch = generation;
        for (topic, partition, offset) in offsets {
            let mut t = OffsetCommitRequestTopic::default();
            t.name = TopicName(s(topic));
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            p.committed_leader_epoch = 3;
            p.committed_metadata = Some(s("m"));
            t.partitions.push(p);
            r.topics.push(t);
        }
        let out = self.sm.handle_offset_commit(self.now, 8, &r);
        self.pump();
        out
    }

    /// Commits and returns the per-partition error codes once the write is done.
    pub fn commit_codes(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> Vec<i16> {
        let r = match self.commit(group, member, generation, offsets) {
            Reply::Now(r) => r,
            Reply::Later(w) => self.commit_done(w),
        };
        r.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    /// Committed offset of one partition (-1 if none), or the top-level error.
    pub fn fetch(&mut self, group: &str, topic: &str, partition: i32) -> Result<i64, i16> {
        let mut r = OffsetFetchRequest::default();
        r.group_id = GroupId(s(group));
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partition_indexes = vec![partition];
        r.topics = Some(vec![t]);
        let out = self.sm.handle_offset_fetch(self.now, 7, &r);
        if out.error_code != 0 {
            return Err(out.error_code);
        }
        Ok(out.topics[0].partitions[0].committed_offset)
    }

    /// Forms a stable group of `n` members through one rebalance; returns member ids
    /// (leader first) and the generation.
    pub fn stable_group(&mut self, group: &str, n: usize) -> (Vec<String>, i32) {
        let joins: Vec<(String, WaiterId)> = (0..n).map(|_| self.join_new(group)).collect();
        self.advance(self.sm.config().initial_rebalance_delay_ms);
        let mut leader = None;
        let mut generation = 0;
        for (id, w) in &joins {
            let r = self.join_done(*w);
            assert_eq!(r.error_code, 0);
            generation = r.generation_id;
            if r.leader.as_str() == id {
                assert_eq!(r.members.len(), n);
                leader = Some(id.clone());
            } else {
                assert!(r.members.is_empty());
            }
        }
        let leader = leader.expect("a leader");
        let mut ids: Vec<String> = vec![leader.clone()];
        ids.extend(
            joins
                .iter()
                .map(|(id, _)| id.clone())
                .filter(|id| *id != leader),
        );
        let assignments: Vec<(String, String)> = ids
            .iter()
            .map(|id| (id.clone(), format!("a-{id}")))
            .collect();
        let refs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut waits = Vec::new();
        for id in ids.iter().skip(1) {
            let Reply::Later(w) = self.sync(group, id, generation, &[]) else {
                panic!("follower sync must wait")
            };
            waits.push((id.clone(), w));
        }
        let Reply::Later(w) = self.sync(group, &leader, generation, &refs) else {
            panic!("leader sync must wait")
        };
        waits.push((leader.clone(), w));
        for (id, w) in waits {
            let r = self.sync_done(w);
            assert_eq!(r.error_code, 0);
            assert_eq!(r.assignment, Bytes::from(format!("a-{id}")));
        }
        (ids, generation)
    }
}
