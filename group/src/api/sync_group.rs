//! SyncGroup (key 14): the leader hands in the assignment of the generation; it is written
//! to `__consumer_offsets`, then every member gets its part.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{opt_str, sb};
use crate::group::{Group, GroupState};
use crate::state::{Completion, GroupStateMachine, Reply, WriteKind};

/// A SyncGroup error.
pub fn error_response(code: i16) -> SyncGroupResponse {
    let mut r = SyncGroupResponse::default();
    r.error_code = code;
    r
}

/// A member's assignment.
pub fn ok_response(
    protocol_type: Option<&str>,
    protocol: Option<&str>,
    assignment: Bytes,
) -> SyncGroupResponse {
    let mut r = SyncGroupResponse::default();
    r.protocol_type = protocol_type.map(sb);
    r.protocol_name = protocol.map(sb);
    r.assignment = assignment;
    r
}

impl GroupStateMachine {
    /// Handles SyncGroup.
    pub fn handle_sync_group(
        &mut self,
        now_ms: i64,
        _version: i16,
        req: &SyncGroupRequest,
    ) -> Reply<SyncGroupResponse> {
        let group_id = req.group_id.to_string();
        if let Err(code) = self.check(&group_id) {
            return Reply::Now(error_response(code));
        }
        let Some(mut g) = self.groups.remove(&group_id) else {
            return Reply::Now(error_response(ResponseError::UnknownMemberId.code()));
        };
        let reply = self.sync(&mut g, now_ms, req);
        self.groups.insert(group_id, g);
        reply
    }

    fn sync(
        &mut self,
        g: &mut Group,
        now_ms: i64,
        req: &SyncGroupRequest,
    ) -> Reply<SyncGroupResponse> {
        let member_id = req.member_id.to_string();
        let err = |e: ResponseError| Reply::Now(error_response(e.code()));
        if g.is_fenced(opt_str(&req.group_instance_id).as_deref(), &member_id) {
            return err(ResponseError::FencedInstanceId);
        }
        if !g.members.contains_key(&member_id) {
            return err(ResponseError::UnknownMemberId);
        }
        if req.generation_id != g.generation {
            return err(ResponseError::IllegalGeneration);
        }
        let type_ok = req
            .protocol_type
            .as_ref()
            .is_none_or(|t| g.protocol_type.as_deref() == Some(t.as_str()));
        let name_ok = req
            .protocol_name
            .as_ref()
            .is_none_or(|n| g.protocol.as_deref() == Some(n.as_str()));
        if !type_ok || !name_ok {
            return err(ResponseError::InconsistentGroupProtocol);
        }
        match g.state {
            GroupState::Empty | GroupState::Dead => err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => err(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let Some(m) = g.members.get_mut(&member_id) else {
                    return err(ResponseError::UnknownMemberId);
                };
                m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                Reply::Now(ok_response(
                    g.protocol_type.as_deref(),
                    g.protocol.as_deref(),
                    m.assignment.clone(),
                ))
            }
            GroupState::CompletingRebalance => {
                let waiter = self.next_id();
                let Some(m) = g.members.get_mut(&member_id) else {
                    return err(ResponseError::UnknownMemberId);
                };
                m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                if let Some(old) = m.sync_waiter.replace(waiter) {
                    self.complete(
                        old,
                        Completion::Sync(error_response(ResponseError::RebalanceInProgress.code())),
                    );
                }
                let is_leader = g.leader.as_deref() == Some(member_id.as_str());
                if is_leader && !g.sync_in_flight {
                    let mut assignments: HashMap<&str, &Bytes> = HashMap::new();
                    for a in &req.assignments {
                        assignments.insert(a.member_id.as_str(), &a.assignment);
                    }
                    for m in g.members.values_mut() {
                        m.assignment = assignments
                            .get(m.id.as_str())
                            .map(|b| (*b).clone())
                            .unwrap_or_default();
                    }
                    g.sync_in_flight = true;
                    let generation = g.generation;
                    self.write_group_record(
                        g,
                        WriteKind::Sync {
                            group: g.id.clone(),
                            generation,
                        },
                    );
                }
                Reply::Later(waiter)
            }
        }
    }
}
