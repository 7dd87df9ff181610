//! OffsetCommit (key 8, v2-8): members of the current generation (or, with generation -1,
//! clients that manage partitions themselves) store their positions. The answer goes out
//! only once the offset records are committed in `__consumer_offsets`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::opt_str;
use crate::codec::{self, OffsetValue, RecordKey};
use crate::group::{Group, GroupState};
use crate::state::{GroupStateMachine, Reply, WriteKind};

/// The response with every requested partition and error 0.
fn skeleton(req: &OffsetCommitRequest) -> OffsetCommitResponse {
    let mut r = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rt.partitions.push(rp);
        }
        r.topics.push(rt);
    }
    r
}

fn fill(mut r: OffsetCommitResponse, code: i16) -> OffsetCommitResponse {
    for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
        p.error_code = code;
    }
    r
}

impl GroupStateMachine {
    /// Handles OffsetCommit.
    pub fn handle_offset_commit(
        &mut self,
        now_ms: i64,
        _version: i16,
        req: &OffsetCommitRequest,
    ) -> Reply<OffsetCommitResponse> {
        let r = skeleton(req);
        let group_id = req.group_id.to_string();
        if group_id.is_empty() {
            return Reply::Now(fill(r, ResponseError::InvalidGroupId.code()));
        }
        let partition = match self.check(&group_id) {
            Ok(p) => p,
            Err(code) => return Reply::Now(fill(r, code)),
        };
        let generation = req.generation_id_or_member_epoch;
        let mut g = match self.groups.remove(&group_id) {
            Some(g) => g,
            None if generation < 0 => Group::new(group_id.clone(), partition, now_ms),
            None => return Reply::Now(fill(r, ResponseError::IllegalGeneration.code())),
        };
        let reply = match self.commit_check(&mut g, now_ms, req) {
            Err(code) => Reply::Now(fill(r, code)),
            Ok(()) => self.store_offsets(&mut g, now_ms, req, r),
        };
        self.groups.insert(group_id, g);
        reply
    }

    /// Kafka's `doCommitOffsets` checks.
    fn commit_check(
        &mut self,
        g: &mut Group,
        now_ms: i64,
        req: &OffsetCommitRequest,
    ) -> Result<(), i16> {
        let member_id = req.member_id.as_str();
        let generation = req.generation_id_or_member_epoch;
        if g.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        }
        if g.is_fenced(opt_str(&req.group_instance_id).as_deref(), member_id) {
            return Err(ResponseError::FencedInstanceId.code());
        }
        if generation < 0 && g.state == GroupState::Empty {
            return Ok(());
        }
        let Some(m) = g.members.get_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId.code());
        };
        if generation != g.generation {
            return Err(ResponseError::IllegalGeneration.code());
        }
        match g.state {
            GroupState::Stable | GroupState::PreparingRebalance => {
                m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                Ok(())
            }
            GroupState::CompletingRebalance => Err(ResponseError::RebalanceInProgress.code()),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId.code()),
        }
    }

    fn store_offsets(
        &mut self,
        g: &mut Group,
        now_ms: i64,
        req: &OffsetCommitRequest,
        mut r: OffsetCommitResponse,
    ) -> Reply<OffsetCommitResponse> {
        if g.commit_waiters >= self.config.max_pending_waiters_per_group {
            return Reply::Now(fill(r, ResponseError::CoordinatorNotAvailable.code()));
        }
        let mut records = Vec::new();
        let mut offsets = Vec::new();
        for (ti, t) in req.topics.iter().enumerate() {
            for (pi, p) in t.partitions.iter().enumerate() {
                let metadata = p.committed_metadata.as_deref().unwrap_or_default();
                if metadata.len() > self.config.max_offset_metadata_bytes {
                    r.topics[ti].partitions[pi].error_code =
                        ResponseError::OffsetMetadataTooLarge.code();
                    continue;
                }
                let value = OffsetValue {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: metadata.to_owned(),
                    commit_timestamp_ms: now_ms,
                };
                let key = RecordKey::Offset {
                    group: g.id.clone(),
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                };
                records.push((codec::encode_key(&key), Some(codec::encode_offset(&value))));
                offsets.push((ti, pi, t.name.to_string(), p.partition_index, value));
            }
        }
        if records.is_empty() {
            return Reply::Now(r);
        }
        let waiter = self.next_id();
        g.commit_waiters += 1;
        let kind = WriteKind::Commit {
            waiter,
            group: g.id.clone(),
            response: r,
            offsets,
        };
        self.emit_write(g.partition, records, kind);
        Reply::Later(waiter)
    }
}
