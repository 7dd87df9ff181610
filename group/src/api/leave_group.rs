//! LeaveGroup (key 13): members leave at once instead of waiting for their session to
//! expire. v0-2 name one member; v3+ a batch of members, possibly by group.instance.id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{opt_str, sb};
use crate::group::Group;
use crate::state::GroupStateMachine;

impl GroupStateMachine {
    /// Handles LeaveGroup; always answers at once.
    pub fn handle_leave_group(
        &mut self,
        now_ms: i64,
        version: i16,
        req: &LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let mut r = LeaveGroupResponse::default();
        let group_id = req.group_id.to_string();
        if let Err(code) = self.check(&group_id) {
            r.error_code = code;
            return r;
        }
        let Some(mut g) = self.groups.remove(&group_id) else {
            r.error_code = ResponseError::UnknownMemberId.code();
            return r;
        };
        let leaving: Vec<(String, Option<String>)> = if version >= 3 {
            req.members
                .iter()
                .map(|m| (m.member_id.to_string(), opt_str(&m.group_instance_id)))
                .collect()
        } else {
            vec![(req.member_id.to_string(), None)]
        };
        for (member_id, instance_id) in leaving {
            let code = self.leave_one(&mut g, now_ms, &member_id, instance_id.as_deref());
            if version >= 3 {
                let mut m = MemberResponse::default();
                m.member_id = sb(&member_id);
                m.group_instance_id = instance_id.as_deref().map(sb);
                m.error_code = code;
                r.members.push(m);
            } else {
                r.error_code = code;
            }
        }
        self.groups.insert(group_id, g);
        r
    }

    fn leave_one(
        &mut self,
        g: &mut Group,
        now_ms: i64,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let target = match instance_id {
            Some(i) => match g.static_members.get(i) {
                Some(holder) if !member_id.is_empty() && holder != member_id => {
                    return ResponseError::FencedInstanceId.code();
                }
                Some(holder) => holder.clone(),
                None => return ResponseError::UnknownMemberId.code(),
            },
            None => member_id.to_owned(),
        };
        if g.members.contains_key(&target) {
            self.remove_member(g, &target, now_ms);
            0
        } else if g.pending_members.remove(&target).is_some() {
            self.maybe_complete_join(g, now_ms);
            0
        } else {
            ResponseError::UnknownMemberId.code()
        }
    }
}
