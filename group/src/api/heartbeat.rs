//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::opt_str;
use crate::group::GroupState;
use crate::state::GroupStateMachine;

fn response(code: i16) -> HeartbeatResponse {
    let mut r = HeartbeatResponse::default();
    r.error_code = code;
    r
}

impl GroupStateMachine {
    /// Handles Heartbeat; always answers at once.
    pub fn handle_heartbeat(
        &mut self,
        now_ms: i64,
        _version: i16,
        req: &HeartbeatRequest,
    ) -> HeartbeatResponse {
        let group_id = req.group_id.as_str();
        if let Err(code) = self.check(group_id) {
            return response(code);
        }
        let Some(g) = self.groups.get_mut(group_id) else {
            return response(ResponseError::UnknownMemberId.code());
        };
        let member_id = req.member_id.as_str();
        if g.state == GroupState::Dead {
            return response(ResponseError::CoordinatorNotAvailable.code());
        }
        if g.is_fenced(opt_str(&req.group_instance_id).as_deref(), member_id) {
            return response(ResponseError::FencedInstanceId.code());
        }
        let Some(m) = g.members.get_mut(member_id) else {
            return response(ResponseError::UnknownMemberId.code());
        };
        if req.generation_id != g.generation {
            return response(ResponseError::IllegalGeneration.code());
        }
        m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        match g.state {
            GroupState::PreparingRebalance => response(ResponseError::RebalanceInProgress.code()),
            GroupState::CompletingRebalance | GroupState::Stable => response(0),
            GroupState::Empty | GroupState::Dead => response(ResponseError::UnknownMemberId.code()),
        }
    }
}
