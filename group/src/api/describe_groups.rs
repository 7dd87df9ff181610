//! DescribeGroups (key 15, v0-5): state, protocol and members of groups. Member metadata
//! and assignments are shown only when the group is Stable, as Kafka does.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::sb;
use crate::group::GroupState;
use crate::state::GroupStateMachine;

impl GroupStateMachine {
    /// Handles DescribeGroups; always answers at once.
    pub fn handle_describe_groups(
        &mut self,
        _version: i16,
        req: &DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let mut r = DescribeGroupsResponse::default();
        for id in &req.groups {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            if let Err(code) = self.check(id.as_str()) {
                d.error_code = code;
                r.groups.push(d);
                continue;
            }
            let Some(g) = self.groups.get(id.as_str()) else {
                d.group_state = sb(GroupState::Dead.as_str());
                r.groups.push(d);
                continue;
            };
            let stable = g.state == GroupState::Stable;
            d.group_state = sb(g.state.as_str());
            d.protocol_type = sb(g.protocol_type.as_deref().unwrap_or_default());
            if stable {
                d.protocol_data = sb(g.protocol.as_deref().unwrap_or_default());
            }
            for m in g.members.values() {
                let mut dm = DescribedGroupMember::default();
                dm.member_id = sb(&m.id);
                dm.group_instance_id = m.instance_id.as_deref().map(sb);
                dm.client_id = sb(&m.client_id);
                dm.client_host = sb(&m.client_host);
                if stable {
                    dm.member_metadata = m.metadata_for(g.protocol.as_deref().unwrap_or_default());
                    dm.member_assignment = m.assignment.clone();
                }
                d.members.push(dm);
            }
            r.groups.push(d);
        }
        r
    }
}
